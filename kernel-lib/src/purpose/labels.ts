/**
 * Purpose labels: what a dataset (or column) may be used for, attached at ingestion and
 * carried by everything derived from it.
 *
 * A label is `{ allow, deny, categories, subjects }`:
 *  - `allow`: data uses the owner permits; each entry covers its subtree (tag
 *    `marketing.advertising` permits a query for `marketing.advertising.measurement`).
 *  - `deny`: explicit restrictions; a purpose is refused when it overlaps a denied subtree in
 *    either direction (a broad `marketing` query includes denied `marketing.advertising.profiling`).
 *  - `categories` / `subjects`: fideslang data categories and subjects present in the data
 *    (used by Fides-style deny rules, see policy.ts).
 *
 * Propagation (Meta Policy Zones' rule "downstream restrictions ≥ upstream"): a derived result
 * gets `combineLabels(inputs)` = intersection of allowed subtrees, union of denies, union of
 * categories and subjects. So `permits(combine(a, b), p) === permits(a, p) && permits(b, p)`:
 * associative, commutative, idempotent, monotone, never looser than any input (property
 * tests in test/purpose/labels.test.ts). Labels are canonical (sorted antichains), so equal
 * meaning ⇔ equal JSON.
 */
import { z } from "zod";
import { invalid } from "../errors.js";
import { isWithin, overlaps, type Taxonomy } from "./taxonomy.js";

export interface PurposeLabel {
  /** Allowed data uses, canonical antichain (no entry within another), sorted. */
  allow: string[];
  /** Denied data uses, canonical antichain, sorted. */
  deny: string[];
  /** Data categories present, sorted. */
  categories: string[];
  /** Data subjects present, sorted. */
  subjects: string[];
}

/** Keep only the top-most keys (drop any key within another), dedupe, sort. */
function tops(keys: Iterable<string>): string[] {
  const uniq = [...new Set(keys)].sort();
  return uniq.filter((k) => !uniq.some((o) => o !== k && isWithin(k, o)));
}

function sortedUnion(...lists: string[][]): string[] {
  return [...new Set(lists.flat())].sort();
}

/** The set of purposes in both unions-of-subtrees, as a canonical antichain. */
function intersectAllow(a: string[], b: string[]): string[] {
  const out: string[] = [];
  for (const x of a) for (const y of b) if (overlaps(x, y)) out.push(isWithin(x, y) ? x : y);
  return tops(out);
}

const names = z.union([z.string(), z.array(z.string()).max(256)]);
const labelSpec = z.strictObject({
  purposes: names,
  deny: names.optional(),
  categories: names.optional(),
  subjects: names.optional(),
});
const columnSpec = labelSpec.partial();
/** Ingestion-time tagging input, zod-validated (`z.strictObject`: a typo fails loudly). */
export const DatasetTagsSchema = z.strictObject({ ...labelSpec.shape, columns: z.record(z.string(), columnSpec).optional() });
export type DatasetTagsInput = z.input<typeof DatasetTagsSchema>;

const asList = (v: string | string[] | undefined): string[] => (v === undefined ? [] : typeof v === "string" ? [v] : v);

/**
 * Build a canonical label, resolving every name through the taxonomy (aliases allowed).
 *
 * @example
 * makeLabel(defaultTaxonomy(), { purposes: ["ads", "measurement"], categories: ["user.behavior.purchase_history"] })
 * // { allow: ["marketing.advertising"], deny: [], categories: [...], subjects: [] }
 */
export function makeLabel(
  taxonomy: Taxonomy,
  spec: { purposes: string | string[]; deny?: string | string[]; categories?: string | string[]; subjects?: string | string[] },
  field = "purposes",
): PurposeLabel {
  const parsed = labelSpec.safeParse(spec);
  if (!parsed.success)
    return invalid(field, "{ purposes, deny?, categories?, subjects? } with string or string[] values", spec, "INPUT_INVALID");
  const p = parsed.data;
  const allow = asList(p.purposes).map((n, i) => taxonomy.resolveUse(n, `${field}[${i}]`));
  if (allow.length === 0) invalid(field, "at least one allowed purpose", p.purposes, "INPUT_INVALID");
  return {
    allow: tops(allow),
    deny: tops(asList(p.deny).map((n, i) => taxonomy.resolveUse(n, `deny[${i}]`))),
    categories: sortedUnion(asList(p.categories).map((n, i) => taxonomy.resolve("dataCategory", n, `categories[${i}]`))),
    subjects: sortedUnion(asList(p.subjects).map((n, i) => taxonomy.resolve("dataSubject", n, `subjects[${i}]`))),
  };
}

/**
 * The label of data derived from all `labels`: never looser than any input.
 *
 * @example
 * combineLabels(adsLabel, safetyLabel).allow // [] — nothing is permitted for both
 */
export function combineLabels(...labels: PurposeLabel[]): PurposeLabel {
  if (labels.length === 0) return invalid("labels", "at least one label", labels, "INPUT_INVALID");
  let allow = tops(labels[0]!.allow);
  for (const l of labels.slice(1)) allow = intersectAllow(allow, l.allow);
  return {
    allow,
    deny: tops(labels.flatMap((l) => l.deny)),
    categories: sortedUnion(...labels.map((l) => l.categories)),
    subjects: sortedUnion(...labels.map((l) => l.subjects)),
  };
}

export interface PermitExplanation {
  permitted: boolean;
  /** The allow tag that covers the purpose (its subtree contains it), if any. */
  coveredBy: string | null;
  /** The deny entry that overlaps the purpose, if any (deny wins). */
  deniedBy: string | null;
}

/**
 * Why `label` does or does not permit the (canonical) data use `purpose`.
 *
 * @example
 * explainPermit(label, "marketing.advertising.measurement") // { permitted: true, coveredBy: "marketing.advertising", deniedBy: null }
 */
export function explainPermit(label: PurposeLabel, purpose: string): PermitExplanation {
  const deniedBy = label.deny.find((d) => overlaps(purpose, d)) ?? null;
  const coveredBy = label.allow.find((a) => isWithin(purpose, a)) ?? null;
  return { permitted: deniedBy === null && coveredBy !== null, coveredBy, deniedBy };
}

/** True when `label` permits the canonical data use `purpose` (covered by an allow, no deny overlap). */
export function permits(label: PurposeLabel, purpose: string): boolean {
  return explainPermit(label, purpose).permitted;
}

/** Labels of one uploaded dataset: the dataset-level label and per-column labels. */
export interface DatasetLabels {
  dataset: PurposeLabel;
  /** Column label = dataset label combined with the column's own tags (never looser). */
  columns: Record<string, PurposeLabel>;
}

/**
 * Tag a dataset at ingestion (dataset- and column-level allowed purposes).
 *
 * @example
 * tagDataset(defaultTaxonomy(), {
 *   purposes: ["ads", "measurement"], categories: ["user.behavior.purchase_history"],
 *   columns: { value_cents: { deny: ["marketing.advertising.profiling"], categories: ["user.financial"] } },
 * })
 */
export function tagDataset(taxonomy: Taxonomy, spec: DatasetTagsInput): DatasetLabels {
  const parsed = DatasetTagsSchema.safeParse(spec);
  if (!parsed.success) return invalid("purposes", "{ purposes, deny?, categories?, subjects?, columns? }", spec, "INPUT_INVALID");
  const { columns, ...ds } = parsed.data;
  const dataset = makeLabel(taxonomy, ds);
  const cols: Record<string, PurposeLabel> = {};
  for (const [col, c] of Object.entries(columns ?? {})) {
    const own = makeLabel(taxonomy, { ...c, purposes: c.purposes ?? dataset.allow }, `columns.${col}.purposes`);
    cols[col] = combineLabels(dataset, own);
  }
  return { dataset, columns: cols };
}

/**
 * The effective label when a query reads `columns` of a dataset (all tagged columns when
 * omitted — the most restrictive reading).
 *
 * @example
 * labelForColumns(labels, ["join_key", "value_cents"])
 */
export function labelForColumns(labels: DatasetLabels, columns?: readonly string[]): PurposeLabel {
  const used = columns ?? Object.keys(labels.columns);
  return combineLabels(labels.dataset, ...used.filter((c) => Object.hasOwn(labels.columns, c)).map((c) => labels.columns[c]!));
}

/**
 * True when `a` is at least as restrictive as `b` over the given purposes (every purpose `a`
 * permits, `b` permits too). Used by property tests and by "never looser" assertions.
 *
 * @example
 * atLeastAsRestrictive(combineLabels(a, b), a, taxonomy.list("dataUse").map((n) => n.key)) // true
 */
export function atLeastAsRestrictive(a: PurposeLabel, b: PurposeLabel, purposes: readonly string[]): boolean {
  return purposes.every((p) => !permits(a, p) || permits(b, p));
}
