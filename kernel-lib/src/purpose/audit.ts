/**
 * The audit log: every notebook call, granted or refused, as a hash-chained entry in the
 * room's sqlite database (the DP ledger's db), with Ed25519-signed heads.
 *
 * Chain: hash_i = SHA-256(canonical JSON {prev: hash_{i-1}, entry_i}), genesis bound to the
 * room; each entry carries its own `seq` and `roomId`, so moving rows is visible. Each row
 * also carries mac_i = HMAC-SHA256(k_mac, hash_i) with k_mac derived (HKDF) from the audit
 * signing key: an attacker who edits the db and recomputes the public hashes still cannot
 * forge macs, so `verify()` names the exact first bad entry. Heads {count, hash, signedAt}
 * are signed (RFC 8032) every `headEvery` entries and on demand; the signed count catches
 * truncation, and the instance remembers the latest head it signed or saw and the longest
 * chain it appended or verified (so deleting unsigned tail entries, or the heads table too, is
 * caught in a running kernel). Across a restart, pass an `anchor` that keeps the latest signed
 * head outside the database (or a `trustedHead` to `verify`); see anchor.ts.
 *
 * Evidence cannot be laundered by using the room: a head is signed and published only over a
 * chain that EXTENDS the anchored head (the anchored head's hash is the hash of entry
 * #count-1). The first append, verify or signing that finds the chain not extending it records
 * the finding (truncated at entry i / head mismatch) in the anchor for good, and no head is
 * signed over that chain again. Crash safety: heads are signed in the same transaction as the
 * entry and published to the anchor only after COMMIT (`atomic()` lets a caller put a budget
 * charge and its audit entry in one IMMEDIATE transaction), so a kill leaves the anchor at
 * most one step behind the database — which verifies — and never ahead of it.
 *
 * What is recorded is fixed by a strict zod schema: action, who (party/analyst names),
 * purpose, grant id, template hash, dataset ids, privacy cost, outcome, error code. No free
 * text, no numbers other than the cost, and every string must be a short safe name that does
 * not look like an identifier — so identifiers and pre-noise values cannot enter the log, and
 * rejections never echo the offending value. `review()` is the misuse view: refusals,
 * repeated denials, purpose switching after a refusal, and bursts.
 */
import type { Database } from "better-sqlite3";
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { z } from "zod";
import { CleanRoomError, ERROR_CODES, invalid } from "../errors.js";
import { ed25519Sign, ed25519Verify, equalBytes, fromHex, hex, hkdfSha256, utf8 } from "../crypto/primitives.js";
import { canonicalJson } from "../crypto/canonical.js";
import { looksLikeIdentifier, SAFE_NAME, sha256Canonical, sha256Hex } from "./canonical.js";
import { reviewEntries, type MisuseReview, type ReviewOptions } from "./review.js";
import { faultPoint } from "../faults.js";
import type { AuditAnchor, AuditHead, TamperEvidence } from "./anchor.js";

export type { AuditAnchor, AuditHead, TamperEvidence } from "./anchor.js";

const name = z
  .string()
  .regex(SAFE_NAME)
  .refine((s) => !looksLikeIdentifier(s));
/** A rational "num/den" (or "num") no larger than `max`: costs are small, so a cost field cannot smuggle an ID number. */
const ratStr = (max: bigint) =>
  z.string().refine((s) => {
    if (!/^\d{1,40}(\/[1-9]\d{0,39})?$/.test(s)) return false;
    const [n, d = "1"] = s.split("/");
    return BigInt(n!) <= max * BigInt(d);
  });
export const AuditCostSchema = z.discriminatedUnion("kind", [
  z.strictObject({ kind: z.literal("pureDp"), epsilon: ratStr(100n) }),
  z.strictObject({ kind: z.literal("approxDp"), epsilon: ratStr(100n), delta: ratStr(1n) }),
  z.strictObject({ kind: z.literal("zCdp"), rho: ratStr(100n) }),
]);
export type AuditCost = z.infer<typeof AuditCostSchema>;

/** What a caller may record. Anything else is refused. */
export const AuditInputSchema = z.strictObject({
  action: z.string().regex(/^[a-z][A-Za-z0-9_.]{0,39}$/),
  who: z.strictObject({ party: name, analyst: name.optional() }),
  purpose: z
    .string()
    .regex(/^[a-z][a-z0-9_.]{0,127}$/)
    .nullable()
    .optional(),
  grantId: z
    .string()
    .regex(/^[0-9a-f]{32}$/)
    .nullable()
    .optional(),
  templateHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .nullable()
    .optional(),
  datasets: z.array(name).max(32).optional(),
  privacyCost: AuditCostSchema.nullable().optional(),
  outcome: z.enum(["granted", "refused"]),
  errorCode: z.enum(ERROR_CODES).nullable().optional(),
  /** How many refusals this one entry stands for (the room server's per-window summary of unauthenticated refusals). */
  count: z.number().int().min(1).max(1_000_000_000).optional(),
  /** Budgets a charge entry charged: "collaboration/<room>", "party/<name>", "dataset/sha256:<content hash>". */
  budgets: z
    .array(z.string().regex(/^(collaboration|party|dataset)\/[A-Za-z0-9_:.-]{1,80}$/))
    .min(1)
    .max(40)
    .optional(),
});
export type AuditInput = z.input<typeof AuditInputSchema>;

const EntrySchema = z.strictObject({
  v: z.literal(1),
  roomId: name,
  seq: z.number().int().nonnegative(),
  ts: z.string().regex(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
  action: AuditInputSchema.shape.action,
  who: AuditInputSchema.shape.who,
  purpose: AuditInputSchema.shape.purpose.unwrap(),
  grantId: AuditInputSchema.shape.grantId.unwrap(),
  templateHash: AuditInputSchema.shape.templateHash.unwrap(),
  datasets: z.array(name).max(32),
  privacyCost: AuditCostSchema.nullable(),
  outcome: AuditInputSchema.shape.outcome,
  errorCode: AuditInputSchema.shape.errorCode.unwrap(),
  budgets: AuditInputSchema.shape.budgets,
  count: AuditInputSchema.shape.count,
});
/** A stored audit entry (plain data). */
export type AuditEntry = z.infer<typeof EntrySchema>;

export type AuditProblem =
  | "missing"
  | "out_of_order"
  | "malformed"
  | "chain_broken"
  | "modified"
  | "forged"
  | "truncated"
  | "head_signature"
  | "head_mismatch"
  | "ledger_mismatch";

export interface AuditVerification {
  ok: boolean;
  roomId: string;
  entries: number;
  /** Index (= seq) of the first entry that is missing, moved, altered or forged; null when ok. */
  firstBadIndex: number | null;
  problem: AuditProblem | null;
  detail: string;
  lastSignedHead: { count: number; hash: string; signedAt: string } | null;
  tipHash: string;
}

/**
 * Convert a dp `PrivacyCost` (bigint rationals) to the audit's string form.
 *
 * @example
 * auditCost({ kind: "pureDp", epsilon: { num: 1n, den: 10n } }) // { kind: "pureDp", epsilon: "1/10" }
 */
export function auditCost(cost: {
  kind: string;
  epsilon?: { num: bigint; den: bigint };
  delta?: { num: bigint; den: bigint };
  rho?: { num: bigint; den: bigint };
}): AuditCost {
  const s = (r: { num: bigint; den: bigint } | undefined, f: string): string => {
    if (!r || typeof r.num !== "bigint" || typeof r.den !== "bigint" || r.num < 0n || r.den <= 0n)
      return invalid(`privacyCost.${f}`, "non-negative rational {num, den}", r, "INPUT_INVALID");
    return r.den === 1n ? `${r.num}` : `${r.num}/${r.den}`;
  };
  if (cost?.kind === "pureDp") return { kind: "pureDp", epsilon: s(cost.epsilon, "epsilon") };
  if (cost?.kind === "approxDp") return { kind: "approxDp", epsilon: s(cost.epsilon, "epsilon"), delta: s(cost.delta, "delta") };
  if (cost?.kind === "zCdp") return { kind: "zCdp", rho: s(cost.rho, "rho") };
  return invalid("privacyCost.kind", `"pureDp" | "approxDp" | "zCdp"`, cost?.kind, "INPUT_INVALID");
}

const headBytes = (h: Omit<AuditHead, "signature" | "publicKey">) =>
  utf8(`cleanroom-lab/audit-head/v1\n${canonicalJson({ roomId: h.roomId, count: h.count, hash: h.hash, signedAt: h.signedAt })}`);

interface Row {
  seq: number;
  entry: string;
  prev_hash: string;
  hash: string;
  mac: string;
}

/**
 * Tamper-evident audit log for one room, stored in the room's better-sqlite3 database.
 *
 * @example
 * const audit = new AuditLog(db, { roomId: "room-1", signingKey: rng.bytes(32) })
 * audit.append({ action: "query", who: { party: "advertiser", analyst: "bo" }, purpose: "marketing.advertising.measurement",
 *   templateHash, privacyCost: auditCost(cost), outcome: "granted" })
 * audit.verify().ok // true
 */
export class AuditLog {
  readonly roomId: string;
  /** Hex Ed25519 public key that signs heads. */
  readonly publicKey: string;
  readonly headEvery: number;
  readonly #sk: Uint8Array;
  readonly #macKey: Uint8Array;
  readonly #clock: () => Date;
  #knownHead: AuditHead | null = null;
  /**
   * The longest chain prefix this instance appended or saw verify (count + tip hash): MAC-checked,
   * so a later, shorter chain is a truncation even before a head is signed over it.
   */
  #knownTip: { count: number; hash: string } | null = null;
  readonly #anchor: AuditAnchor | undefined;
  /** Sticky: the chain stopped extending the anchored head (loaded from the anchor, never cleared). */
  #evidence: TamperEvidence | null = null;
  /** A head signed inside a caller's transaction, published once that transaction committed. */
  #pending: AuditHead | null = null;

  constructor(
    private readonly db: Database,
    opts: { roomId: string; signingKey: Uint8Array; headEvery?: number; clock?: () => Date; anchor?: AuditAnchor },
  ) {
    if (!name.safeParse(opts?.roomId).success) invalid("roomId", "short name", opts?.roomId, "INPUT_INVALID");
    if (!(opts.signingKey instanceof Uint8Array) || opts.signingKey.length !== 32)
      invalid("signingKey", "32-byte Ed25519 secret key", opts.signingKey, "CRYPTO_INVALID_KEY");
    const every = opts.headEvery ?? 16;
    if (!Number.isInteger(every) || every < 1 || every > 10_000) invalid("headEvery", "integer in [1, 10000]", every, "INPUT_INVALID");
    this.roomId = opts.roomId;
    this.headEvery = every;
    this.#sk = opts.signingKey.slice();
    this.publicKey = hex(ed25519.getPublicKey(this.#sk));
    this.#macKey = hkdfSha256(this.#sk, utf8("cleanroom-lab/audit/v1"), utf8(`mac\0${this.roomId}`), 32);
    this.#clock = opts.clock ?? (() => new Date());
    if (opts.anchor !== undefined && (typeof opts.anchor?.load !== "function" || typeof opts.anchor?.save !== "function"))
      invalid("anchor", "{ load(): AuditHead | null, save(head) }", opts.anchor, "INPUT_INVALID");
    this.#anchor = opts.anchor;
    // A head kept outside the database survives a restart: truncating the log AND its heads table is still caught.
    this.#knownHead = opts.anchor?.load() ?? null;
    this.#evidence = opts.anchor?.loadEvidence?.() ?? null;
    db.exec(`CREATE TABLE IF NOT EXISTS purpose_audit_log (
        room_id TEXT NOT NULL, seq INTEGER NOT NULL, entry TEXT NOT NULL,
        prev_hash TEXT NOT NULL, hash TEXT NOT NULL, mac TEXT NOT NULL, PRIMARY KEY (room_id, seq));
      CREATE TABLE IF NOT EXISTS purpose_audit_heads (
        room_id TEXT NOT NULL, count INTEGER NOT NULL, hash TEXT NOT NULL, signed_at TEXT NOT NULL,
        public_key TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (room_id, count));`);
  }

  private get genesis(): string {
    return sha256Hex(`cleanroom-lab/audit/v1/genesis\0${this.roomId}`);
  }

  private mac(hash: string): string {
    return hex(hmac(sha256, this.#macKey, utf8(hash)));
  }

  /**
   * Append one entry (validated against the strict schema; refused with `INPUT_INVALID`
   * naming only the offending field paths). Signs a head every `headEvery` entries.
   *
   * @example
   * audit.append({ action: "query", who: { party: "retailer", analyst: "ana" }, purpose: "research", outcome: "refused", errorCode: "PURPOSE_DENIED" })
   */
  append(input: AuditInput): AuditEntry {
    const parsed = AuditInputSchema.safeParse(input);
    if (!parsed.success) {
      const fields = [
        ...new Set(
          parsed.error.issues.map(
            (i) =>
              i.path
                .map(String)
                .filter((p) => /^[A-Za-z0-9_]{1,32}$/.test(p))
                .join(".") || "entry",
          ),
        ),
      ];
      throw new CleanRoomError(
        "INPUT_INVALID",
        `audit entry refused at ${fields.map((f) => `"${f}"`).join(", ")}: ` +
          `only short names, hashes, codes and costs may be recorded (no identifiers, no free text, no values)`,
        { field: fields[0], fields },
      );
    }
    const p = parsed.data;
    // Inside a caller's transaction the entry may still be rolled back: remember the tip (and
    // publish a head signed here) only once it committed.
    const remember = !this.db.inTransaction;
    if (remember) this.#flushPending();
    const tip: { count?: number; hash?: string } = {};
    const out = this.db
      .transaction((): AuditEntry => {
        const last = this.db
          .prepare(`SELECT seq, hash FROM purpose_audit_log WHERE room_id = ? ORDER BY seq DESC LIMIT 1`)
          .get(this.roomId) as { seq: number; hash: string } | undefined;
        // before writing: does the chain still extend the anchored head? (found at the exact place, for good)
        if (!this.#active(last ? last.seq + 1 : 0)) {
          const d = this.#divergence(last ? last.seq + 1 : 0);
          if (d) this.#recordEvidence(d);
        }
        const seq = last ? last.seq + 1 : 0;
        const prev = last ? last.hash : this.genesis;
        const entry: AuditEntry = {
          v: 1,
          roomId: this.roomId,
          seq,
          ts: this.#clock().toISOString(),
          action: p.action,
          who: p.who,
          purpose: p.purpose ?? null,
          grantId: p.grantId ?? null,
          templateHash: p.templateHash ?? null,
          datasets: p.datasets ?? [],
          privacyCost: p.privacyCost ?? null,
          outcome: p.outcome,
          errorCode: p.errorCode ?? null,
          ...(p.budgets ? { budgets: p.budgets } : {}),
          ...(p.count !== undefined ? { count: p.count } : {}),
        };
        const hash = sha256Canonical({ prev, entry });
        this.db
          .prepare(`INSERT INTO purpose_audit_log (room_id, seq, entry, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?)`)
          .run(this.roomId, seq, canonicalJson(entry), prev, hash, this.mac(hash));
        faultPoint("audit.append.beforeCommit");
        if ((seq + 1) % this.headEvery === 0 && !this.#evidence) this.signHeadAt(seq + 1, hash);
        tip.count = seq + 1;
        tip.hash = hash;
        return entry;
      })
      .immediate();
    if (remember && tip.count !== undefined) {
      this.#noteTip(tip.count, tip.hash!);
      this.#flushPending();
    }
    return out;
  }

  /**
   * Run `fn` (e.g. a budget charge, then `append`) as ONE IMMEDIATE transaction: all of it
   * commits or none; a head signed inside is published to the anchor only after COMMIT.
   * Nested in a caller's transaction it just runs `fn` (the outermost commit publishes later).
   *
   * @example
   * const receipt = audit.atomic(() => { const r = ledger.chargeAtomic(...); audit.append({ action: "charge", ... }); return r })
   */
  atomic<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    const out = this.db.transaction(fn).immediate();
    this.#flushPending();
    return out;
  }

  /** Sign a head in the database (inside the caller's transaction); published after COMMIT. */
  private signHeadAt(count: number, hash: string): AuditHead {
    const body = { roomId: this.roomId, count, hash, signedAt: this.#clock().toISOString() };
    const head: AuditHead = { ...body, publicKey: this.publicKey, signature: hex(ed25519Sign(this.#sk, headBytes(body))) };
    this.db
      .prepare(
        `INSERT OR REPLACE INTO purpose_audit_heads (room_id, count, hash, signed_at, public_key, signature) VALUES (?, ?, ?, ?, ?, ?)`,
      )
      .run(this.roomId, count, hash, head.signedAt, head.publicKey, head.signature);
    faultPoint("audit.head.beforeCommit");
    if (!this.#pending || count >= this.#pending.count) this.#pending = head;
    return head;
  }

  /** Publish the pending head if its transaction committed (its row is in the database). */
  #flushPending(): void {
    const h = this.#pending;
    if (!h || this.db.inTransaction) return;
    this.#pending = null;
    const row = this.db
      .prepare(`SELECT signature FROM purpose_audit_heads WHERE room_id = ? AND count = ? AND hash = ?`)
      .get(this.roomId, h.count, h.hash) as { signature: string } | undefined;
    if (row?.signature === h.signature) this.#publish(h);
  }

  /** Publish a committed head: only over a chain that extends the anchored head. */
  #publish(head: AuditHead): void {
    if (this.#active(this.#count())) return;
    const stored = this.#anchor?.load() ?? null;
    for (const known of [this.#knownHead, stored]) {
      if (!known || !this.#signedByUs(known)) continue;
      if (!this.#knownHead || known.count > this.#knownHead.count) this.#knownHead = known;
    }
    const d = this.#divergence(this.#count());
    if (d) return this.#recordEvidence(d);
    faultPoint("audit.publish.beforeSave");
    if (!stored || head.count >= stored.count) this.#anchor?.save(head);
    if (!this.#knownHead || head.count >= this.#knownHead.count) this.#knownHead = head;
  }

  #verifiedSig: string | null = null;
  #signedByUs(h: AuditHead): boolean {
    if (h.signature === this.#verifiedSig) return true;
    const ok =
      h.publicKey === this.publicKey &&
      h.roomId === this.roomId &&
      /^[0-9a-f]{128}$/.test(h.signature) &&
      ed25519Verify(fromHex(this.publicKey), headBytes(h), fromHex(h.signature));
    if (ok) this.#verifiedSig = h.signature;
    return ok;
  }

  #count(): number {
    const last = this.db.prepare(`SELECT seq FROM purpose_audit_log WHERE room_id = ? ORDER BY seq DESC LIMIT 1`).get(this.roomId) as
      { seq: number } | undefined;
    return last ? last.seq + 1 : 0;
  }

  /** Does a chain of `count` entries (in the db) fail to extend the best head known from outside? */
  #divergence(count: number): Omit<TamperEvidence, "detectedAt" | "roomId"> | null {
    const h = this.#knownHead;
    if (!h || h.count === 0 || !this.#signedByUs(h)) return null; // a head that does not verify is reported by verify() (head_signature), not trusted here
    const head = { count: h.count, hash: h.hash, signedAt: h.signedAt };
    if (count < h.count)
      return {
        problem: "truncated",
        firstBadIndex: count,
        head,
        entriesAtDetection: count,
        detail: `a signed head covers ${h.count} entries but only ${count} remain — entries ${count}..${h.count - 1} were removed`,
      };
    const row = this.db.prepare(`SELECT hash FROM purpose_audit_log WHERE room_id = ? AND seq = ?`).get(this.roomId, h.count - 1) as
      { hash: string } | undefined;
    if (row?.hash !== h.hash)
      return {
        problem: "head_mismatch",
        firstBadIndex: h.count - 1,
        head,
        entriesAtDetection: count,
        detail: `signed head at count ${h.count} does not match the chain — entries up to ${h.count - 1} were replaced`,
      };
    return null;
  }

  /**
   * The evidence, while the chain still fails to extend the head it names. A chain restored to
   * extend that head again (the removed entries put back exactly — their MACed hashes match) has
   * lost nothing, so the evidence lapses; entries appended over the hole never match it.
   */
  #active(count: number, hashAt?: (i: number) => string | undefined): TamperEvidence | null {
    const ev = this.#evidence;
    if (!ev) return null;
    const at =
      hashAt ??
      ((i: number) =>
        (
          this.db.prepare(`SELECT hash FROM purpose_audit_log WHERE room_id = ? AND seq = ?`).get(this.roomId, i) as
            { hash: string } | undefined
        )?.hash);
    if (ev.head.count <= count && (ev.head.count === 0 || at(ev.head.count - 1) === ev.head.hash)) {
      this.#evidence = null;
      return null;
    }
    return ev;
  }

  #recordEvidence(d: Omit<TamperEvidence, "detectedAt" | "roomId">): void {
    if (this.#evidence) return;
    this.#evidence = { roomId: this.roomId, ...d, detectedAt: this.#clock().toISOString() };
    this.#anchor?.saveEvidence?.(this.#evidence);
  }

  /** The sticky tamper evidence, if the chain ever stopped extending the anchored head. */
  get evidence(): TamperEvidence | null {
    return this.#evidence;
  }

  #noteTip(count: number, hash: string): void {
    if (!this.#knownTip || count >= this.#knownTip.count) this.#knownTip = { count, hash };
  }

  /**
   * Sign the current tip now (e.g. at the end of every notebook cell). Returns the head, which
   * a party may keep as its `trustedHead`.
   *
   * @example
   * const head = audit.signHead()
   */
  signHead(): AuditHead {
    const head = this.atomic((): AuditHead => {
      const last = this.db
        .prepare(`SELECT seq, hash FROM purpose_audit_log WHERE room_id = ? ORDER BY seq DESC LIMIT 1`)
        .get(this.roomId) as { seq: number; hash: string } | undefined;
      if (!this.#active(last ? last.seq + 1 : 0)) {
        const d = this.#divergence(last ? last.seq + 1 : 0);
        if (d) this.#recordEvidence(d);
      }
      const ev = this.#evidence;
      if (ev)
        throw new CleanRoomError(
          "AUDIT_TAMPERED",
          `refusing to sign a head over a tampered chain (${ev.problem} at entry ${ev.firstBadIndex}): ${ev.detail}`,
          { field: "audit" },
        );
      return this.signHeadAt(last ? last.seq + 1 : 0, last ? last.hash : this.genesis);
    });
    return head;
  }

  /**
   * Verify the whole chain and every signed head. Reports the first bad entry index and what
   * is wrong: missing (deletion), out_of_order (reorder), chain_broken, modified, forged
   * (hash recomputed without the audit key, e.g. an insertion), truncated (fewer entries than
   * a signed head or the `trustedHead` says).
   *
   * @example
   * const v = audit.verify(); if (!v.ok) console.log(v.problem, v.firstBadIndex)
   */
  verify(opts: { trustedHead?: AuditHead } = {}): AuditVerification {
    const outside = !this.db.inTransaction;
    if (outside) this.#flushPending();
    // the anchor first, then one snapshot of rows and heads: another kernel committing (and
    // publishing) meanwhile can only make the snapshot newer than the anchor, never older
    const anchored = this.#anchor?.load() ?? null;
    const { rows, heads } = this.db.transaction(() => ({
      rows: this.db
        .prepare(`SELECT seq, entry, prev_hash, hash, mac FROM purpose_audit_log WHERE room_id = ? ORDER BY seq`)
        .all(this.roomId) as Row[],
      heads: (
        this.db
          .prepare(`SELECT count, hash, signed_at, public_key, signature FROM purpose_audit_heads WHERE room_id = ? ORDER BY count`)
          .all(this.roomId) as Array<{ count: number; hash: string; signed_at: string; public_key: string; signature: string }>
      ).map((h): AuditHead => ({
        roomId: this.roomId,
        count: h.count,
        hash: h.hash,
        signedAt: h.signed_at,
        publicKey: h.public_key,
        signature: h.signature,
      })),
    }))();
    const hashes: string[] = [];
    let prev = this.genesis;
    const result = (
      ok: boolean,
      firstBadIndex: number | null,
      problem: AuditProblem | null,
      detail: string,
      lastSignedHead: AuditHead | null,
    ): AuditVerification => ({
      ok,
      roomId: this.roomId,
      entries: rows.length,
      firstBadIndex,
      problem,
      detail,
      lastSignedHead: lastSignedHead && { count: lastSignedHead.count, hash: lastSignedHead.hash, signedAt: lastSignedHead.signedAt },
      tipHash: prev,
    });
    for (let i = 0; i < rows.length; i++) {
      const row = rows[i]!;
      const bad = (problem: AuditProblem, detail: string) => result(false, i, problem, `entry ${i}: ${detail}`, null);
      if (row.seq !== i) return bad("missing", `expected seq ${i}, found seq ${row.seq} — entries were deleted`);
      let entry: AuditEntry;
      try {
        entry = EntrySchema.parse(JSON.parse(row.entry));
      } catch {
        return bad("malformed", "entry is not a valid audit record");
      }
      if (entry.seq !== i || entry.roomId !== this.roomId)
        return bad("out_of_order", `entry records seq ${entry.seq} — rows were reordered or moved`);
      if (row.prev_hash !== prev) return bad("chain_broken", "previous-hash link does not match the preceding entry");
      const h = sha256Canonical({ prev, entry });
      if (h !== row.hash) return bad("modified", "content does not match its hash — entry was modified");
      if (!/^[0-9a-f]{64}$/.test(row.mac) || !equalBytes(fromHex(row.mac), fromHex(this.mac(h))))
        return bad("forged", "hash was recomputed without the audit key — entry was inserted or rewritten");
      hashes.push(h);
      prev = h;
    }
    // Evidence found earlier stands, however the chain grew since (using the room cannot launder it).
    const ev = this.#active(rows.length, (i) => hashes[i]);
    if (ev)
      return result(
        false,
        ev.firstBadIndex,
        ev.problem,
        `${ev.detail} (found ${ev.detectedAt} with ${ev.entriesAtDetection} entries; further use of the room does not clear it)`,
        null,
      );
    // a finding against a signed head or the remembered tip is recorded for good (outside a transaction: it is about committed state)
    const found = (
      firstBadIndex: number,
      problem: "truncated" | "head_mismatch" | "chain_broken",
      detail: string,
      head: AuditHead | null,
    ): AuditVerification => {
      if (outside && head && problem !== "chain_broken")
        this.#recordEvidence({
          problem,
          firstBadIndex,
          detail,
          head: { count: head.count, hash: head.hash, signedAt: head.signedAt },
          entriesAtDetection: rows.length,
        });
      return result(false, firstBadIndex, problem, detail, head);
    };
    const candidates = [...heads];
    if (this.#knownHead) candidates.push(this.#knownHead);
    if (anchored) candidates.push(anchored);
    if (opts.trustedHead) candidates.push(opts.trustedHead);
    let best: AuditHead | null = null;
    for (const h of candidates) {
      if (
        h.publicKey !== this.publicKey ||
        h.roomId !== this.roomId ||
        !ed25519Verify(fromHex(this.publicKey), headBytes(h), fromHex(h.signature))
      )
        return result(
          false,
          Math.max(0, Math.min(h.count, rows.length) - 1),
          "head_signature",
          `signed head at count ${h.count} has an invalid signature`,
          null,
        );
      if (h.count > rows.length)
        return found(
          rows.length,
          "truncated",
          `a signed head covers ${h.count} entries but only ${rows.length} remain — entries ${rows.length}..${h.count - 1} were removed`,
          h,
        );
      const expected = h.count === 0 ? this.genesis : hashes[h.count - 1]!;
      if (expected !== h.hash) return found(h.count - 1, "head_mismatch", `signed head at count ${h.count} does not match the chain`, h);
      if (!best || h.count > best.count) best = h;
    }
    const tip = this.#knownTip;
    if (tip && tip.count > rows.length)
      return result(
        false,
        rows.length,
        "truncated",
        `this log held ${tip.count} verified entries but only ${rows.length} remain — entries ${rows.length}..${tip.count - 1} were removed`,
        best,
      );
    if (tip && tip.count > 0 && hashes[tip.count - 1] !== tip.hash)
      return found(
        tip.count - 1,
        "chain_broken",
        `entry ${tip.count - 1} no longer has the hash this log recorded for it — the tail was replaced`,
        best,
      );
    if (best && (!this.#knownHead || best.count > this.#knownHead.count)) this.#knownHead = best;
    // a crash between COMMIT and publication leaves the anchor one step behind: catch it up (the chain verified)
    let recovered = "";
    if (outside && best && this.#anchor && (!anchored || best.count > anchored.count)) {
      this.#anchor.save(best);
      if (anchored)
        recovered =
          `; the head file was ${best.count - anchored.count} entries behind the database ` +
          `(an interrupted publication, not tampering) and was brought up to date`;
    }
    if (rows.length > 0 && outside) this.#noteTip(rows.length, prev);
    const unsigned = rows.length - (best?.count ?? 0);
    return result(true, null, null, `${rows.length} entries verified; ${unsigned} after the last signed head${recovered}`, best);
  }

  /** Throw `AUDIT_TAMPERED` (with the verification in details) unless `verify()` is ok. */
  assertIntact(opts: { trustedHead?: AuditHead } = {}): AuditVerification {
    const v = this.verify(opts);
    if (!v.ok)
      throw new CleanRoomError("AUDIT_TAMPERED", `audit log tampered at entry ${v.firstBadIndex} (${v.problem}): ${v.detail}`, {
        verification: v,
      });
    return v;
  }

  /**
   * Stored entries in order (plain data), optionally the last `limit`.
   *
   * @example
   * audit.entries({ limit: 20 })
   */
  entries(opts: { limit?: number } = {}): AuditEntry[] {
    const rows = this.db.prepare(`SELECT entry FROM purpose_audit_log WHERE room_id = ? ORDER BY seq`).all(this.roomId) as Array<{
      entry: string;
    }>;
    const out = rows.map((r) => JSON.parse(r.entry) as AuditEntry);
    return opts.limit === undefined ? out : out.slice(Math.max(0, out.length - opts.limit));
  }

  /**
   * Stored rows with their chain hashes (for display: index, hash, prevHash, entry).
   *
   * @example
   * audit.rows({ limit: 10 }).map((r) => r.hash.slice(0, 12))
   */
  rows(opts: { limit?: number } = {}): Array<{ index: number; hash: string; prevHash: string; entry: AuditEntry }> {
    const rows = this.db
      .prepare(`SELECT seq, entry, prev_hash, hash FROM purpose_audit_log WHERE room_id = ? ORDER BY seq`)
      .all(this.roomId) as Row[];
    const out = rows.map((r) => ({ index: r.seq, hash: r.hash, prevHash: r.prev_hash, entry: JSON.parse(r.entry) as AuditEntry }));
    return opts.limit === undefined ? out : out.slice(Math.max(0, out.length - opts.limit));
  }

  /**
   * Signed heads stored for this room, each with whether its signature verifies.
   *
   * @example
   * audit.heads().filter((h) => !h.verified)
   */
  heads(): Array<AuditHead & { verified: boolean }> {
    const hs = this.db
      .prepare(`SELECT count, hash, signed_at, public_key, signature FROM purpose_audit_heads WHERE room_id = ? ORDER BY count`)
      .all(this.roomId) as Array<{ count: number; hash: string; signed_at: string; public_key: string; signature: string }>;
    return hs.map((h) => {
      const head: AuditHead = {
        roomId: this.roomId,
        count: h.count,
        hash: h.hash,
        signedAt: h.signed_at,
        publicKey: h.public_key,
        signature: h.signature,
      };
      const verified =
        /^[0-9a-f]{128}$/.test(h.signature) &&
        h.public_key === this.publicKey &&
        ed25519Verify(fromHex(this.publicKey), headBytes(head), fromHex(h.signature));
      return { ...head, verified };
    });
  }

  /**
   * The misuse review: refused requests and unusual patterns.
   *
   * @example
   * audit.review({ repeatedDenials: 3 }).flags
   */
  review(opts: ReviewOptions = {}): MisuseReview<AuditEntry> {
    return reviewEntries(
      this.entries().filter((e) => e.action !== "charge"),
      opts,
    ); // a charge entry is bookkeeping of its query
  }

  /**
   * Everything `audit()` shows: verification, the latest entries and the misuse review.
   *
   * @example
   * const { verification, entries, review } = audit.report({ limit: 50 })
   */
  report(opts: { limit?: number } & ReviewOptions = {}): {
    verification: AuditVerification;
    entries: AuditEntry[];
    rows: ReturnType<AuditLog["rows"]>;
    heads: ReturnType<AuditLog["heads"]>;
    review: MisuseReview<AuditEntry>;
    publicKey: string;
  } {
    const limit = opts.limit ?? 50;
    return {
      verification: this.verify(),
      entries: this.entries({ limit }),
      rows: this.rows({ limit }),
      heads: this.heads(),
      review: this.review(opts),
      publicKey: this.publicKey,
    };
  }
}
