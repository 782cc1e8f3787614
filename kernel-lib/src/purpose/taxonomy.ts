/**
 * The purpose taxonomy: hierarchical data uses, data categories and data subjects in the
 * vocabulary of Fides (fideslang, now IAB Tech Lab; `src/fideslang/default_taxonomy/*.py`),
 * so privacy engineers recognise the keys. Keys are dotted paths; a key covers its whole
 * subtree (`marketing.advertising` covers `marketing.advertising.measurement`).
 *
 * cleanroom-lab adds three data uses that fideslang lacks and a clean room needs, marked
 * `origin: "cleanroom-lab"`:
 *  - `marketing.advertising.measurement` — measuring campaign outcomes (lift, reach,
 *    conversion) without changing who is targeted. We put it under `marketing.advertising`
 *    (not `analytics.*`) because the seed's rule is that data tagged `ads` also serves
 *    measurement: a grant for measurement is allowed by data tagged `marketing.advertising`.
 *  - `research` (+ `research.academic`) — scientific research on the collaboration's data.
 *  - `safety` (+ `safety.integrity`) — trust & safety / integrity work.
 *
 * Short aliases (documented in `DEFAULT_ALIASES`) let notebook cells read naturally:
 * `ads` → `marketing.advertising`, `measurement` → `marketing.advertising.measurement`,
 * `targeting` → `marketing.advertising.third_party.targeted` (targeting with another
 * party's data — the clean-room case), `fraud` → `essential.fraud_detection`,
 * `ai_training` → `train_ai_system`, `reporting` → `analytics.reporting`.
 *
 * Threat model: a misspelt purpose must never silently become "no restriction"; every name
 * is resolved here and unknown names fail with `PURPOSE_UNKNOWN` listing the closest valid
 * names (Levenshtein distance). Error text echoes the input only if it is a safe name.
 * A Taxonomy is immutable: `extend` / `withAlias` return a new one.
 */
import { CleanRoomError, invalid } from "../errors.js";
import { echoSafe } from "./canonical.js";

export type TaxonomyKind = "dataUse" | "dataCategory" | "dataSubject";

export interface TaxonomyNode {
  key: string;
  kind: TaxonomyKind;
  name: string;
  description: string;
  origin: "fideslang" | "cleanroom-lab" | "user";
}

const KEY_RE = /^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$/;

type Seed = [key: string, name: string, description?: string];

const FIDES_USES: Seed[] = [
  ["analytics", "Analytics", "System and advertising performance reporting, insights, fraud detection."],
  ["analytics.reporting", "Analytics for Reporting"],
  ["analytics.reporting.ad_performance", "Analytics for Advertising Performance"],
  ["analytics.reporting.content_performance", "Analytics for Content Performance"],
  ["analytics.reporting.campaign_insights", "Analytics for Insights"],
  ["analytics.reporting.system", "Analytics for System Activity"],
  ["analytics.reporting.system.performance", "Analytics for System Performance"],
  ["collect", "Collect", "Stores data for a purpose not yet expressly defined."],
  ["employment", "Employment"],
  ["employment.recruitment", "Employment Recruitment"],
  ["essential", "Essential", "Operates the service, incl. legal obligations and support."],
  ["essential.fraud_detection", "Essential Fraud Detection"],
  ["essential.legal_obligation", "Essential Legal Obligation"],
  ["essential.service", "Essential for Service"],
  ["essential.service.authentication", "Essential Service Authentication"],
  ["essential.service.notifications", "Essential Service Notifications"],
  ["essential.service.operations", "Essential for Operations"],
  ["essential.service.payment_processing", "Essential for Payment Processing"],
  ["essential.service.security", "Essential for Security"],
  ["finance", "Finance"],
  ["functional", "Functional"],
  ["functional.storage", "Local Data Storage"],
  ["functional.service", "Functional Service"],
  ["functional.service.improve", "Improve Service"],
  ["marketing", "Marketing"],
  ["marketing.advertising", "Advertising, Marketing or Promotion"],
  ["marketing.advertising.first_party", "First Party Advertising"],
  ["marketing.advertising.first_party.contextual", "First Party Contextual Advertising"],
  ["marketing.advertising.first_party.targeted", "First Party Personalized Advertising"],
  ["marketing.advertising.frequency_capping", "Frequency Capping"],
  ["marketing.advertising.negative_targeting", "Negative Targeting"],
  ["marketing.advertising.profiling", "Profiling for Advertising"],
  ["marketing.advertising.serving", "Essential for Serving Ads"],
  ["marketing.advertising.third_party", "Third Party Advertising"],
  ["marketing.advertising.third_party.targeted", "Third Party Targeted Advertising"],
  ["marketing.communications", "Marketing Communications"],
  ["marketing.communications.email", "Marketing Email Communications"],
  ["marketing.communications.sms", "Marketing SMS Communications"],
  ["operations", "Operations"],
  ["personalize", "Personalize"],
  ["personalize.content", "Content Personalization"],
  ["personalize.profiling", "Personalized Profiling"],
  ["personalize.system", "System Personalization"],
  ["sales", "Sales"],
  ["third_party_sharing", "Third Party Sharing"],
  ["third_party_sharing.legal_obligation", "Sharing for Legal Obligation"],
  ["train_ai_system", "Train AI System"],
];

const LAB_USES: Seed[] = [
  [
    "marketing.advertising.measurement",
    "Advertising Measurement",
    "Measures campaign outcomes (lift, reach, conversions) without changing who is targeted.",
  ],
  ["research", "Research", "Scientific research on the collaboration's data."],
  ["research.academic", "Academic Research"],
  ["safety", "Safety", "Trust & safety and integrity work."],
  ["safety.integrity", "Platform Integrity"],
];

const FIDES_CATEGORIES: Seed[] = [
  ["user", "User Data"],
  ["user.contact", "Contact Data"],
  ["user.contact.email", "Email"],
  ["user.contact.phone_number", "Phone Number"],
  ["user.contact.address", "Postal Address"],
  ["user.name", "Name"],
  ["user.unique_id", "Unique ID"],
  ["user.unique_id.pseudonymous", "Pseudonymous Unique ID"],
  ["user.device", "Device Data"],
  ["user.device.cookie_id", "Cookie ID"],
  ["user.device.ip_address", "IP Address"],
  ["user.behavior", "Behavior Data"],
  ["user.behavior.purchase_history", "Purchase History"],
  ["user.behavior.browsing_history", "Browsing History"],
  ["user.behavior.media_consumption", "Media Consumption"],
  ["user.demographic", "Demographic Data"],
  ["user.demographic.age_range", "Age Range"],
  ["user.demographic.gender", "Gender"],
  ["user.location", "Location Data"],
  ["user.location.imprecise", "Imprecise Location"],
  ["user.location.precise", "Precise Location"],
  ["user.financial", "Financial Data"],
  ["user.health_and_medical", "Health and Medical Data"],
  ["system", "System Data"],
  ["system.operations", "Operations Data"],
];

const FIDES_SUBJECTS: Seed[] = [
  ["anonymous_user", "Anonymous User"],
  ["customer", "Customer"],
  ["consumer", "Consumer"],
  ["employee", "Employee"],
  ["prospect", "Prospect"],
  ["visitor", "Visitor"],
];

/** Short names for the purposes the seed's examples use. `alias → canonical data use`. */
export const DEFAULT_ALIASES: Readonly<Record<string, string>> = Object.freeze({
  ads: "marketing.advertising",
  advertising: "marketing.advertising",
  measurement: "marketing.advertising.measurement",
  targeting: "marketing.advertising.third_party.targeted",
  reporting: "analytics.reporting",
  fraud: "essential.fraud_detection",
  ai_training: "train_ai_system",
});

function nodes(kind: TaxonomyKind, seeds: Seed[], origin: TaxonomyNode["origin"]): TaxonomyNode[] {
  return seeds.map(([key, name, description]) => ({ key, kind, name, description: description ?? name, origin }));
}

/** True when `key` equals `ancestor` or lies in its subtree (`a.b.c` within `a.b`). */
export function isWithin(key: string, ancestor: string): boolean {
  return key === ancestor || key.startsWith(ancestor + ".");
}

/** True when one key is within the other (the two subtrees overlap). */
export function overlaps(a: string, b: string): boolean {
  return isWithin(a, b) || isWithin(b, a);
}

/** Levenshtein distance (small strings only). */
export function editDistance(a: string, b: string): number {
  const prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let diag = prev[0]!;
    prev[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const up = prev[j]!;
      prev[j] = Math.min(up + 1, prev[j - 1]! + 1, diag + (a[i - 1] === b[j - 1] ? 0 : 1));
      diag = up;
    }
  }
  return prev[b.length]!;
}

/**
 * The names among `names` closest to `input` (edit distance, case-insensitive), best first:
 * the cheap "did you mean" of every error that echoes a schema name (columns, parameters,
 * purposes — never values). Empty when nothing is plausibly close.
 *
 * @example closestNames("startDy", ["startDay", "endDay"]) // ["startDay"]
 */
export function closestNames(input: string, names: readonly string[], n = 1): string[] {
  if (input.length > 128) return [];
  const low = input.toLowerCase();
  const limit = Math.max(2, Math.floor(input.length / 3));
  return names
    .map((name) => [name, editDistance(low, name.toLowerCase())] as const)
    .filter(([, d]) => d <= limit)
    .sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1))
    .slice(0, n)
    .map(([name]) => name);
}

/** " (did you mean x?)" for the closest of `names`, or "" when none is close. */
export function didYouMean(input: string, names: readonly string[]): string {
  const [best] = closestNames(input, names);
  return best === undefined ? "" : ` (did you mean ${best}?)`;
}

const KIND_FIELD: Record<TaxonomyKind, string> = { dataUse: "purpose", dataCategory: "category", dataSubject: "subject" };

/**
 * An immutable taxonomy of data uses, categories and subjects, plus purpose aliases.
 *
 * @example
 * const tx = defaultTaxonomy()
 * tx.resolveUse("ads")                           // "marketing.advertising"
 * tx.resolveUse("reserch")                       // throws PURPOSE_UNKNOWN: did you mean "research"?
 * const mine = tx.extend({ kind: "dataUse", key: "research.epidemiology", name: "Epidemiology" })
 */
export class Taxonomy {
  private readonly byKey: ReadonlyMap<string, TaxonomyNode>;
  readonly aliases: Readonly<Record<string, string>>;

  constructor(all: readonly TaxonomyNode[], aliases: Readonly<Record<string, string>>) {
    const m = new Map<string, TaxonomyNode>();
    for (const n of all) {
      if (!KEY_RE.test(n.key)) invalid("key", "dotted snake_case key like marketing.advertising", n.key, "INPUT_INVALID");
      const id = `${n.kind}:${n.key}`;
      if (m.has(id)) invalid("key", "a key not already in the taxonomy", n.key, "ALREADY_EXISTS");
      const parent = n.key.includes(".") ? n.key.slice(0, n.key.lastIndexOf(".")) : null;
      if (parent !== null && !m.has(`${n.kind}:${parent}`))
        invalid("key", `a child of an existing ${n.kind} (parent "${parent}" is missing)`, n.key, "PURPOSE_UNKNOWN");
      m.set(id, Object.freeze({ ...n }));
    }
    for (const [alias, target] of Object.entries(aliases)) {
      if (!/^[a-z][a-z0-9_]*$/.test(alias)) invalid("alias", "snake_case word", alias, "INPUT_INVALID");
      if (!m.has(`dataUse:${target}`)) invalid(`aliases.${alias}`, "an existing data use", target, "PURPOSE_UNKNOWN");
      if (m.has(`dataUse:${alias}`) && alias !== target) invalid("alias", "a name that is not already a data use", alias, "ALREADY_EXISTS");
    }
    this.byKey = m;
    this.aliases = Object.freeze({ ...aliases });
    Object.freeze(this);
  }

  /** All nodes of one kind, sorted by key (plain data for display). */
  list(kind: TaxonomyKind): TaxonomyNode[] {
    return [...this.byKey.values()].filter((n) => n.kind === kind).sort((a, b) => (a.key < b.key ? -1 : 1));
  }

  has(kind: TaxonomyKind, key: string): boolean {
    return this.byKey.has(`${kind}:${key}`);
  }

  node(kind: TaxonomyKind, key: string): TaxonomyNode | undefined {
    return this.byKey.get(`${kind}:${key}`);
  }

  /** Resolve a data use or alias to its canonical key; `PURPOSE_UNKNOWN` with suggestions otherwise. */
  resolveUse(name: unknown, field = "purpose"): string {
    return this.resolve("dataUse", name, field);
  }

  /**
   * Resolve a name of `kind` (aliases apply to data uses only).
   *
   * @example
   * defaultTaxonomy().resolve("dataCategory", "user.contact.email") // "user.contact.email"
   */
  resolve(kind: TaxonomyKind, name: unknown, field = KIND_FIELD[kind]): string {
    if (typeof name !== "string" || name.length === 0) return invalid(field, `a ${kind} name`, name, "PURPOSE_UNKNOWN");
    const trimmed = name.trim();
    if (kind === "dataUse" && Object.hasOwn(this.aliases, trimmed)) return this.aliases[trimmed]!;
    if (this.byKey.has(`${kind}:${trimmed}`)) return trimmed;
    const suggestions = this.closest(kind, trimmed);
    throw new CleanRoomError(
      "PURPOSE_UNKNOWN",
      `"${field}" expected a ${kind} from the taxonomy, got ${echoSafe(name)}; ` +
        `closest valid names: ${suggestions.join(", ")} (did you mean ${suggestions[0]}?)`,
      { field, expected: `a ${kind} from the taxonomy`, got: echoSafe(name), suggestions },
    );
  }

  /** Up to `n` valid names of `kind` closest to `input` (full key, last segment, or alias). */
  closest(kind: TaxonomyKind, input: string, n = 3): string[] {
    const cands: Array<[string, number]> = [];
    const low = input.toLowerCase();
    for (const node of this.list(kind)) {
      const last = node.key.slice(node.key.lastIndexOf(".") + 1);
      cands.push([node.key, Math.min(editDistance(low, node.key), editDistance(low, last) + 0.5)]);
    }
    if (kind === "dataUse") for (const a of Object.keys(this.aliases)) cands.push([a, editDistance(low, a)]);
    cands.sort((a, b) => a[1] - b[1] || (a[0] < b[0] ? -1 : 1));
    return cands.slice(0, n).map(([k]) => k);
  }

  /**
   * A new taxonomy with an extra node (its parent must exist). Notebook users extend the
   * vocabulary this way; nodes they add carry `origin: "user"`.
   *
   * @example
   * const tx = defaultTaxonomy().extend({ kind: "dataUse", key: "research.epidemiology", name: "Epidemiology" })
   */
  extend(node: { kind: TaxonomyKind; key: string; name?: string; description?: string }): Taxonomy {
    if (typeof node !== "object" || node === null) return invalid("node", "{ kind, key, name? }", node, "INPUT_INVALID");
    if (!(node.kind in KIND_FIELD)) return invalid("node.kind", `"dataUse" | "dataCategory" | "dataSubject"`, node.kind, "INPUT_INVALID");
    if (typeof node.key !== "string" || !KEY_RE.test(node.key))
      return invalid("node.key", "dotted snake_case key like research.epidemiology", node.key, "INPUT_INVALID");
    const added: TaxonomyNode = {
      key: node.key,
      kind: node.kind,
      name: node.name ?? node.key,
      description: node.description ?? node.name ?? node.key,
      origin: "user",
    };
    return new Taxonomy([...this.byKey.values(), added], this.aliases);
  }

  /**
   * A new taxonomy with `alias` standing for the data use `target`.
   *
   * @example
   * const tx = defaultTaxonomy().withAlias("lift", "marketing.advertising.measurement")
   */
  withAlias(alias: string, target: string): Taxonomy {
    const canonical = this.resolveUse(target, "target");
    return new Taxonomy([...this.byKey.values()], { ...this.aliases, [alias]: canonical });
  }
}

let DEFAULT: Taxonomy | undefined;

/**
 * The built-in taxonomy: fideslang data uses/categories/subjects + cleanroom-lab additions
 * + `DEFAULT_ALIASES`.
 *
 * @example
 * defaultTaxonomy().list("dataUse").map((n) => n.key)
 */
export function defaultTaxonomy(): Taxonomy {
  DEFAULT ??= new Taxonomy(
    [
      ...nodes("dataUse", FIDES_USES, "fideslang"),
      ...nodes("dataUse", LAB_USES, "cleanroom-lab"),
      ...nodes("dataCategory", FIDES_CATEGORIES, "fideslang"),
      ...nodes("dataSubject", FIDES_SUBJECTS, "fideslang"),
    ].sort((a, b) => a.key.split(".").length - b.key.split(".").length),
    DEFAULT_ALIASES,
  );
  return DEFAULT;
}
