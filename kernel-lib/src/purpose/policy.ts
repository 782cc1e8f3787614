/**
 * Declared purposes and their evaluation at query time.
 *
 * `PurposeAuthority.declare` issues a `PurposeGrant` — who (party + analyst), which data use,
 * why, until when — signed with the room's Ed25519 policy key (RFC 8032) over the grant's
 * canonical JSON. `evaluatePurpose` decides a request in Ranger's order (deny wins):
 *   1. grant: present, well-formed, signed by the room's policy key, for this room and this
 *      requester, not expired (`GRANT_INVALID` / `GRANT_EXPIRED`);
 *   2. purpose: the query's data use resolves in the taxonomy and lies within the grant's;
 *   3. explicit deny rules (Fides-style `matches: ANY|ALL|NONE|OTHER` over data uses,
 *      categories, subjects) — any match refuses, whatever the tags allow;
 *   4. labels: EVERY input's label must permit the purpose (label deny overlaps refuse; an
 *      allow tag must cover the purpose, hierarchy included).
 * A refusal is a plain `PurposeDecision` with a code; `enforcePurpose` throws it instead.
 *
 * Threat model: grants are bearer-like but bound to room + requester + expiry and cannot be
 * forged or widened without the policy key (any field change breaks the signature). Decision
 * text names fields and safe names only (no identifiers). Policy checks are one layer: the
 * encryption gate (gate.ts) enforces the same rule with keys, so skipping this code does not
 * expose plaintext.
 */
import { z } from "zod";
import { CleanRoomError, invalid, isCleanRoomError, type ErrorCode } from "../errors.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { ed25519Sign, ed25519Verify, fromHex, hex, utf8 } from "../crypto/primitives.js";
import type { Rng } from "../rng.js";
import { canonicalJson } from "../crypto/canonical.js";
import { echoSafe, looksLikeIdentifier, SAFE_NAME } from "./canonical.js";
import { combineLabels, explainPermit, type PurposeLabel } from "./labels.js";
import { isWithin, overlaps, type Taxonomy } from "./taxonomy.js";

export interface Requester {
  party: string;
  analyst: string;
}

export interface PurposeGrant {
  version: 1;
  id: string;
  roomId: string;
  who: Requester;
  /** Canonical data use (aliases resolved at declaration). */
  purpose: string;
  justification: string;
  issuedAt: string;
  expiresAt: string;
  /** Hex Ed25519 public key of the room policy key that signed. */
  policyKey: string;
  /** Hex Ed25519 signature over the canonical JSON of every other field. */
  signature: string;
}

const safeName = z
  .string()
  .regex(SAFE_NAME)
  .refine((s) => !looksLikeIdentifier(s));
const iso = z.string().refine((s) => !Number.isNaN(Date.parse(s)));
const RequesterSchema = z.strictObject({ party: safeName, analyst: safeName });
const GrantSchema = z.strictObject({
  version: z.literal(1),
  id: z.string().regex(/^[0-9a-f]{32}$/),
  roomId: safeName,
  who: RequesterSchema,
  purpose: z.string().regex(/^[a-z][a-z0-9_.]{0,127}$/),
  justification: z.string().max(1000),
  issuedAt: iso,
  expiresAt: iso,
  policyKey: z.string().regex(/^[0-9a-f]{64}$/),
  signature: z.string().regex(/^[0-9a-f]{128}$/),
});

const signedBytes = (g: Omit<PurposeGrant, "signature">): Uint8Array => utf8(`cleanroom-lab/purpose-grant/v1\n${canonicalJson(g)}`);

function requester(who: unknown, field: string): Requester {
  const r = RequesterSchema.safeParse(who);
  if (!r.success)
    return invalid(field, "{ party, analyst } as short names (letters, digits, _.:-; no emails or phone numbers)", who, "INPUT_INVALID");
  return r.data;
}

/**
 * Holds the room's Ed25519 policy key and issues signed purpose grants (`declarePurpose`).
 *
 * @example
 * const authority = PurposeAuthority.generate("room-1", rng)
 * const grant = authority.declare(taxonomy, { party: "retailer", analyst: "ana", purpose: "measurement",
 *   justification: "Q3 campaign lift study", ttlSeconds: 86400 }, rng)
 */
export class PurposeAuthority {
  readonly roomId: string;
  /** Hex public policy key: what verifiers (the gate, other parties) trust. */
  readonly publicKey: string;
  readonly #secretKey: Uint8Array;
  readonly #clock: () => Date;

  constructor(opts: { roomId: string; secretKey: Uint8Array; clock?: () => Date }) {
    if (!safeName.safeParse(opts.roomId).success) invalid("roomId", "short name", opts.roomId, "INPUT_INVALID");
    if (!(opts.secretKey instanceof Uint8Array) || opts.secretKey.length !== 32)
      invalid("secretKey", "32-byte Ed25519 secret key", opts.secretKey, "CRYPTO_INVALID_KEY");
    this.roomId = opts.roomId;
    this.#secretKey = opts.secretKey.slice();
    this.publicKey = hex(ed25519.getPublicKey(this.#secretKey));
    this.#clock = opts.clock ?? (() => new Date());
  }

  /** A fresh policy key from `rng`. */
  static generate(roomId: string, rng: Rng, clock?: () => Date): PurposeAuthority {
    return new PurposeAuthority({ roomId, secretKey: rng.bytes(32), ...(clock ? { clock } : {}) });
  }

  /**
   * Issue a signed grant. `purpose` may be an alias; it is stored canonical. The justification
   * is free text but must not contain identifiers (emails, phone numbers).
   *
   * @example
   * authority.declare(taxonomy, { party: "advertiser", analyst: "bo", purpose: "ads", justification: "lift", ttlSeconds: 3600 }, rng)
   */
  declare(
    taxonomy: Taxonomy,
    input: { party: string; analyst: string; purpose: string; justification: string; ttlSeconds?: number; expiresAt?: string },
    rng: Rng,
  ): PurposeGrant {
    if (typeof input !== "object" || input === null)
      return invalid("input", "{ party, analyst, purpose, justification }", input, "INPUT_INVALID");
    const who = requester({ party: input.party, analyst: input.analyst }, "who");
    const purpose = taxonomy.resolveUse(input.purpose);
    if (typeof input.justification !== "string" || input.justification.trim().length < 3 || input.justification.length > 1000)
      invalid("justification", "a sentence (3–1000 characters)", input.justification, "INPUT_INVALID");
    if (looksLikeIdentifier(input.justification))
      invalid("justification", "text without personal identifiers (emails, phone numbers)", input.justification, "INPUT_INVALID");
    const issued = this.#clock();
    let expires: Date;
    if (input.expiresAt !== undefined) {
      expires = new Date(input.expiresAt);
      if (Number.isNaN(expires.getTime()) || expires <= issued)
        invalid("expiresAt", "ISO time after now", input.expiresAt, "INPUT_INVALID");
    } else {
      const ttl = input.ttlSeconds ?? 86_400;
      if (!Number.isInteger(ttl) || ttl < 1 || ttl > 366 * 86_400) invalid("ttlSeconds", "integer in [1, 31622400]", ttl, "INPUT_INVALID");
      expires = new Date(issued.getTime() + ttl * 1000);
    }
    const body: Omit<PurposeGrant, "signature"> = {
      version: 1,
      id: hex(rng.bytes(16)),
      roomId: this.roomId,
      who,
      purpose,
      justification: input.justification,
      issuedAt: issued.toISOString(),
      expiresAt: expires.toISOString(),
      policyKey: this.publicKey,
    };
    return Object.freeze({ ...body, signature: hex(ed25519Sign(this.#secretKey, signedBytes(body))) });
  }
}

/** What a verifier trusts. */
export interface GrantTrust {
  roomId: string;
  /** Hex Ed25519 public policy key of the room. */
  policyPublicKey: string;
  now: Date;
}

/**
 * Verify a grant's form, signature, room and validity window; returns it typed, or throws
 * `GRANT_INVALID` / `GRANT_EXPIRED`.
 *
 * @example
 * verifyGrant(grant, { roomId: "room-1", policyPublicKey: authority.publicKey, now: new Date() })
 */
export function verifyGrant(grant: unknown, trust: GrantTrust): PurposeGrant {
  if (grant === undefined || grant === null)
    throw new CleanRoomError("GRANT_INVALID", `"grant" expected a PurposeGrant from declarePurpose, got ${grant}`, { field: "grant" });
  const parsed = GrantSchema.safeParse(grant);
  if (!parsed.success) {
    const fields = [
      ...new Set(
        parsed.error.issues.map(
          (i) =>
            i.path
              .map(String)
              .filter((p) => SAFE_NAME.test(p))
              .join(".") || "grant",
        ),
      ),
    ];
    throw new CleanRoomError("GRANT_INVALID", `"grant" is malformed at ${fields.join(", ")}`, { field: "grant", fields });
  }
  const g = parsed.data as PurposeGrant;
  if (g.policyKey !== trust.policyPublicKey.toLowerCase())
    throw new CleanRoomError("GRANT_INVALID", `"grant.policyKey" expected this room's policy key, got another key`, {
      field: "grant.policyKey",
    });
  const { signature, ...body } = g;
  if (!ed25519Verify(fromHex(trust.policyPublicKey), signedBytes(body), fromHex(signature)))
    throw new CleanRoomError("GRANT_INVALID", `"grant.signature" does not verify under the room's policy key (forged or altered grant)`, {
      field: "grant.signature",
      grantId: g.id,
    });
  if (g.roomId !== trust.roomId)
    throw new CleanRoomError("GRANT_INVALID", `"grant.roomId" expected ${echoSafe(trust.roomId)}, got ${echoSafe(g.roomId)}`, {
      field: "grant.roomId",
    });
  const now = trust.now.getTime();
  if (now < Date.parse(g.issuedAt))
    throw new CleanRoomError("GRANT_INVALID", `"grant.issuedAt" is in the future`, { field: "grant.issuedAt", grantId: g.id });
  if (now >= Date.parse(g.expiresAt))
    throw new CleanRoomError("GRANT_EXPIRED", `grant ${g.id} expired at ${g.expiresAt}; declare the purpose again`, {
      field: "grant.expiresAt",
      grantId: g.id,
      expiresAt: g.expiresAt,
    });
  return g;
}

export type Matches = "ANY" | "ALL" | "NONE" | "OTHER";
export interface RuleCondition {
  matches: Matches;
  values: string[];
}
/** An explicit deny rule (Fides policy rule with action REJECT; Ranger deny policy). */
export interface DenyRule {
  name: string;
  dataUses: RuleCondition;
  dataCategories?: RuleCondition;
  dataSubjects?: RuleCondition;
}

const CondSchema = z.strictObject({ matches: z.enum(["ANY", "ALL", "NONE", "OTHER"]), values: z.array(z.string()).min(1).max(256) });
const RuleSchema = z.strictObject({
  name: safeName,
  dataUses: CondSchema,
  dataCategories: CondSchema.optional(),
  dataSubjects: CondSchema.optional(),
});

/**
 * Validate deny rules and resolve their names through the taxonomy.
 *
 * @example
 * compileRules(taxonomy, [{ name: "no-ads-on-contact", dataUses: { matches: "ANY", values: ["ads"] },
 *   dataCategories: { matches: "ANY", values: ["user.contact"] } }])
 */
export function compileRules(taxonomy: Taxonomy, rules: readonly DenyRule[]): DenyRule[] {
  if (!Array.isArray(rules)) return invalid("rules", "array of deny rules", rules, "INPUT_INVALID");
  return rules.map((raw, i) => {
    const r = RuleSchema.safeParse(raw);
    if (!r.success)
      return invalid(`rules[${i}]`, "{ name, dataUses: { matches, values }, dataCategories?, dataSubjects? }", raw, "RULE_INVALID");
    const res = (c: RuleCondition | undefined, kind: "dataUse" | "dataCategory" | "dataSubject", f: string) =>
      c && { matches: c.matches, values: c.values.map((v, j) => taxonomy.resolve(kind, v, `rules[${i}].${f}.values[${j}]`)) };
    const out: DenyRule = { name: r.data.name, dataUses: res(r.data.dataUses, "dataUse", "dataUses")! };
    const cats = res(r.data.dataCategories, "dataCategory", "dataCategories");
    const subs = res(r.data.dataSubjects, "dataSubject", "dataSubjects");
    if (cats) out.dataCategories = cats;
    if (subs) out.dataSubjects = subs;
    return out;
  });
}

/** Fides `matches` semantics, hierarchical (a value covers its subtree; broad data overlaps). */
export function conditionMatches(cond: RuleCondition | undefined, present: readonly string[]): boolean {
  if (cond === undefined) return true;
  const hit = (s: string) => cond.values.some((v) => overlaps(s, v));
  switch (cond.matches) {
    case "ANY":
      return present.some(hit);
    case "ALL":
      return cond.values.every((v) => present.some((s) => overlaps(s, v)));
    case "NONE":
      return !present.some(hit);
    case "OTHER":
      return present.some((s) => !cond.values.some((v) => isWithin(s, v)));
  }
}

/** An error's message without its "[CODE] " prefix. */
const plain = (e: CleanRoomError): string => e.message.replace(/^\[[A-Z_]+\] /, "");

export interface PurposeRequest {
  grant: PurposeGrant | null | undefined;
  requester: Requester;
  /** The query's declared data use (alias ok); defaults to the grant's purpose. */
  purpose?: string;
  inputs: ReadonlyArray<{ datasetId: string; label: PurposeLabel }>;
}

export interface PurposeContext extends GrantTrust {
  taxonomy: Taxonomy;
  /** Compiled deny rules (see `compileRules`). */
  rules?: readonly DenyRule[];
}

export interface PurposeDecision {
  outcome: "granted" | "refused";
  code: ErrorCode | null;
  purpose: string | null;
  grantId: string | null;
  reason: string;
  steps: Array<{ step: "grant" | "purpose" | "denyRules" | "labels"; ok: boolean; detail: string }>;
  inputs: Array<{ datasetId: string; permitted: boolean; coveredBy: string | null; deniedBy: string | null }>;
  /** The label the result carries (inputs combined) — present when granted. */
  resultLabel: PurposeLabel | null;
}

/**
 * Decide a purpose request (plain data; never throws for a refusal).
 *
 * @example
 * const d = evaluatePurpose({ grant, requester: { party: "advertiser", analyst: "bo" }, inputs: [{ datasetId: "exposures", label }] },
 *   { taxonomy, roomId: "room-1", policyPublicKey: authority.publicKey, now: new Date() })
 * d.outcome // "granted" | "refused"
 */
export function evaluatePurpose(req: PurposeRequest, ctx: PurposeContext): PurposeDecision {
  const steps: PurposeDecision["steps"] = [];
  const refuse = (
    code: ErrorCode,
    reason: string,
    purpose: string | null,
    grantId: string | null,
    inputs: PurposeDecision["inputs"] = [],
  ): PurposeDecision => ({
    outcome: "refused",
    code,
    purpose,
    grantId,
    reason,
    steps,
    inputs,
    resultLabel: null,
  });
  if (!Array.isArray(req?.inputs) || req.inputs.length === 0)
    return invalid("inputs", "at least one { datasetId, label }", req?.inputs, "INPUT_INVALID");
  req.inputs.forEach((inp, i) => {
    if (!safeName.safeParse(inp?.datasetId).success)
      invalid(`inputs[${i}].datasetId`, "short dataset name (no identifiers)", inp?.datasetId, "INPUT_INVALID");
    if (!Array.isArray(inp.label?.allow) || !Array.isArray(inp.label.deny))
      invalid(`inputs[${i}].label`, "a PurposeLabel from makeLabel/tagDataset", inp.label, "INPUT_INVALID");
  });
  let grant: PurposeGrant;
  try {
    grant = verifyGrant(req.grant, ctx);
    const who = requester(req.requester, "requester");
    if (who.party !== grant.who.party || who.analyst !== grant.who.analyst)
      throw new CleanRoomError("GRANT_INVALID", `grant ${grant.id} was issued to another party or analyst`, { field: "grant.who" });
    steps.push({ step: "grant", ok: true, detail: `grant ${grant.id} valid until ${grant.expiresAt}` });
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    steps.push({ step: "grant", ok: false, detail: plain(e) });
    return refuse(e.code, plain(e), null, null);
  }
  let purpose: string;
  try {
    purpose = req.purpose === undefined ? grant.purpose : ctx.taxonomy.resolveUse(req.purpose);
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    steps.push({ step: "purpose", ok: false, detail: plain(e) });
    return refuse(e.code, plain(e), null, grant.id);
  }
  if (!isWithin(purpose, grant.purpose)) {
    const reason = `declared purpose "${purpose}" is outside grant ${grant.id} (for "${grant.purpose}")`;
    steps.push({ step: "purpose", ok: false, detail: reason });
    return refuse("PURPOSE_DENIED", reason, purpose, grant.id);
  }
  steps.push({ step: "purpose", ok: true, detail: `"${purpose}" within granted "${grant.purpose}"` });

  const combined = combineLabels(...req.inputs.map((i) => i.label));
  for (const rule of ctx.rules ?? []) {
    if (
      conditionMatches(rule.dataUses, [purpose]) &&
      conditionMatches(rule.dataCategories, combined.categories) &&
      conditionMatches(rule.dataSubjects, combined.subjects)
    ) {
      const reason = `deny rule ${echoSafe(rule.name)} matches purpose "${purpose}" on these inputs (deny wins over allow)`;
      steps.push({ step: "denyRules", ok: false, detail: reason });
      return refuse("PURPOSE_DENIED", reason, purpose, grant.id);
    }
  }
  steps.push({ step: "denyRules", ok: true, detail: `${(ctx.rules ?? []).length} deny rule(s), none matched` });

  const inputs = req.inputs.map((i) => ({ datasetId: i.datasetId, ...explainPermit(i.label, purpose) }));
  const bad = inputs.find((i) => !i.permitted);
  if (bad) {
    const why = bad.deniedBy
      ? `its tags deny "${bad.deniedBy}"`
      : `its tags allow only ${
          req.inputs
            .find((i) => i.datasetId === bad.datasetId)!
            .label.allow.map((a: string) => `"${a}"`)
            .join(", ") || "nothing"
        }`;
    const reason = `purpose "${purpose}" is not allowed by input ${echoSafe(bad.datasetId)}: ${why}`;
    steps.push({ step: "labels", ok: false, detail: reason });
    return refuse("PURPOSE_DENIED", reason, purpose, grant.id, inputs);
  }
  steps.push({ step: "labels", ok: true, detail: `all ${inputs.length} input(s) permit "${purpose}"` });
  return {
    outcome: "granted",
    code: null,
    purpose,
    grantId: grant.id,
    reason: `granted for "${purpose}"`,
    steps,
    inputs,
    resultLabel: combined,
  };
}

/**
 * Like `evaluatePurpose`, but throws the refusal as a `CleanRoomError` (code from the
 * decision, decision attached as `details.decision`).
 *
 * @example
 * const decision = enforcePurpose(request, ctx) // throws PURPOSE_DENIED when refused
 */
export function enforcePurpose(req: PurposeRequest, ctx: PurposeContext): PurposeDecision {
  const d = evaluatePurpose(req, ctx);
  if (d.outcome === "refused") throw new CleanRoomError(d.code ?? "PURPOSE_DENIED", d.reason, { decision: d });
  return d;
}
