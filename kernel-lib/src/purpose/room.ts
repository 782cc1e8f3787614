/**
 * `PurposeRoom`: the purpose layer wired together for one clean room — taxonomy, deny
 * rules, the grant authority (room policy key), the key gate and its sealed table store,
 * and the audit log — so `session.ts` calls one object per notebook verb:
 *   declarePurpose → `declarePurpose` (grants kept in the room db, `findGrant`), upload → `upload`,
 *   cleanRoomQuery → `authorizeQuery` (grant passed, or found by requester + purpose)
 *   then `recordQuery`, audit() → `auditReport`.
 * Every call, granted or refused, leaves an audit entry (refusals here; the final query
 * outcome with its privacy cost via `recordQuery`, after the budget charge). Requester names
 * that look like identifiers are recorded as "redacted" and the call is refused.
 *
 * Charges: `chargeQuery` runs the budget charge and its `charge` audit entry (cost, every
 * budget charged) in ONE IMMEDIATE transaction, so a kill leaves both or neither; the signed
 * head is published after COMMIT. `auditReport` reconciles the ledger with those entries
 * (when the room was given its ledger): a ledger zeroed or emptied by SQL is reported as
 * `ledger_mismatch` naming the budget and the audit entry range.
 *
 * Threat model: see policy.ts (grants), gate.ts (keys), audit.ts (log). Secrets default to
 * fresh random values from `rng`; pass them in to survive a kernel restart.
 */
import type { Database } from "better-sqlite3";
import { CleanRoomError, isCleanRoomError, type ErrorCode } from "../errors.js";
import type { Rng } from "../rng.js";
import { AuditLog, type AuditAnchor, type AuditCost, type AuditEntry, type AuditInput } from "./audit.js";
import { looksLikeIdentifier, SAFE_NAME } from "./canonical.js";
import { GatedTableStore, PurposeKeyService, type GatedDatasetInfo } from "./gate.js";
import { type DatasetTagsInput, type PurposeLabel } from "./labels.js";
import {
  compileRules,
  evaluatePurpose,
  PurposeAuthority,
  type DenyRule,
  type PurposeDecision,
  type PurposeGrant,
  type Requester,
} from "./policy.js";
import type { ReviewOptions } from "./review.js";
import { faultPoint } from "../faults.js";
import { defaultTaxonomy, isWithin, type Taxonomy, type TaxonomyKind } from "./taxonomy.js";

export interface PurposeRoomOptions {
  roomId: string;
  rng: Rng;
  clock?: () => Date;
  /** 32-byte secrets; fresh from `rng` when omitted (then they live only in this process). */
  policySecretKey?: Uint8Array;
  gateMasterSecret?: Uint8Array;
  auditSigningKey?: Uint8Array;
  /** Sign an audit head every N entries (default 16). */
  headEvery?: number;
  /** Keeps the latest signed audit head outside the database (survives restarts; see AuditLog). */
  auditAnchor?: AuditAnchor;
  taxonomy?: Taxonomy;
  rules?: DenyRule[];
  /** The room's privacy ledger (structurally: `PrivacyLedger.verify`), reconciled with the audited charges by `auditReport`. */
  ledger?: LedgerReconciler;
}

/** What `auditReport` needs of the privacy ledger (dp/ledger.ts `PrivacyLedger` fits). */
export interface LedgerReconciler {
  verify(
    roomId: string,
    opts: { audited: Array<{ index: number; ts: string; cost: AuditCost; budgets: string[] }> },
  ): { ok: boolean; problems: string[]; mismatches?: Array<{ budget: string; entries: [number, number] | null; detail: string }> };
}

const safe = (s: unknown): string => (typeof s === "string" && SAFE_NAME.test(s) && !looksLikeIdentifier(s) ? s : "redacted");

/** Requester names safe to record: anything that could be an identifier becomes "redacted". */
export function auditWho(who: { party?: unknown; analyst?: unknown } | undefined): { party: string; analyst?: string } {
  return who?.analyst === undefined ? { party: safe(who?.party) } : { party: safe(who?.party), analyst: safe(who.analyst) };
}

const purposeOrNull = (p: unknown): string | null => (typeof p === "string" && /^[a-z][a-z0-9_.]{0,127}$/.test(p) ? p : null);

/**
 * The purpose layer of one room.
 *
 * @example
 * const pr = new PurposeRoom(db, { roomId: "room-1", rng })
 * pr.upload({ party: "retailer", datasetId: "purchases", bytes, tags: { purposes: ["measurement"] } })
 * const grant = pr.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 lift" })
 * const { tables, decision } = pr.authorizeQuery({ grant, requester: { party: "advertiser", analyst: "bo" }, inputs: [{ datasetId: "purchases" }] })
 */
export class PurposeRoom {
  readonly roomId: string;
  readonly authority: PurposeAuthority;
  readonly keys: PurposeKeyService;
  readonly store: GatedTableStore;
  readonly audit: AuditLog;
  #taxonomy: Taxonomy;
  #rules: DenyRule[];
  readonly #rng: Rng;
  readonly #clock: () => Date;
  readonly #db: Database;
  readonly #ledger: LedgerReconciler | undefined;

  constructor(db: Database, opts: PurposeRoomOptions) {
    this.roomId = opts.roomId;
    this.#db = db;
    this.#ledger = opts.ledger;
    this.#rng = opts.rng;
    this.#clock = opts.clock ?? (() => new Date());
    this.#taxonomy = opts.taxonomy ?? defaultTaxonomy();
    this.#rules = compileRules(this.#taxonomy, opts.rules ?? []);
    this.authority = new PurposeAuthority({
      roomId: opts.roomId,
      secretKey: opts.policySecretKey ?? opts.rng.bytes(32),
      clock: this.#clock,
    });
    this.keys = new PurposeKeyService({
      roomId: opts.roomId,
      masterSecret: opts.gateMasterSecret ?? opts.rng.bytes(32),
      policyPublicKey: this.authority.publicKey,
      taxonomy: () => this.#taxonomy,
      rules: () => this.#rules,
      clock: this.#clock,
    });
    this.store = new GatedTableStore(this.keys, () => this.#taxonomy, opts.rng.fork("purpose-gate"), db);
    this.audit = new AuditLog(db, {
      roomId: opts.roomId,
      signingKey: opts.auditSigningKey ?? opts.rng.bytes(32),
      headEvery: opts.headEvery ?? 16,
      clock: this.#clock,
      ...(opts.auditAnchor ? { anchor: opts.auditAnchor } : {}),
    });
    db.exec(`CREATE TABLE IF NOT EXISTS purpose_grants (room_id TEXT NOT NULL, id TEXT NOT NULL, party TEXT NOT NULL, analyst TEXT NOT NULL,
      expires_at TEXT NOT NULL, grant_json TEXT NOT NULL, PRIMARY KEY (room_id, id))`);
  }

  /**
   * The most recently issued grant of `requester` that is unexpired and covers `purpose`
   * (alias ok; any purpose when omitted), or null. Grants are kept in the room db.
   *
   * @example
   * pr.findGrant({ party: "advertiser", analyst: "bo" }, "measurement")
   */
  findGrant(requester: Requester, purpose?: string, opts: { expired?: boolean } = {}): PurposeGrant | null {
    const want = purpose === undefined ? null : this.tryResolve(purpose);
    if (purpose !== undefined && want === null) return null;
    const rows = this.#db
      .prepare(
        `SELECT grant_json FROM purpose_grants WHERE room_id = ? AND party = ? AND analyst = ?
         AND expires_at ${opts.expired ? "<=" : ">"} ? ORDER BY rowid DESC`,
      )
      .all(this.roomId, String(requester?.party), String(requester?.analyst), this.#clock().toISOString()) as Array<{ grant_json: string }>;
    for (const r of rows) {
      const g = JSON.parse(r.grant_json) as PurposeGrant;
      if (want === null || isWithin(want, g.purpose)) return g;
    }
    return null;
  }

  get taxonomy(): Taxonomy {
    return this.#taxonomy;
  }

  /** Add a data use / category / subject to this room's taxonomy. */
  extendTaxonomy(node: { kind: TaxonomyKind; key: string; name?: string; description?: string }): Taxonomy {
    return (this.#taxonomy = this.#taxonomy.extend(node));
  }

  /** Add a purpose alias to this room's taxonomy. */
  addAlias(alias: string, target: string): Taxonomy {
    return (this.#taxonomy = this.#taxonomy.withAlias(alias, target));
  }

  /** Replace the room's explicit deny rules (validated and resolved). */
  setRules(rules: DenyRule[]): DenyRule[] {
    this.#rules = compileRules(this.#taxonomy, rules);
    return this.#rules.map((r) => ({ ...r }));
  }

  /** Run `f`; on a CleanRoomError append a refused entry built by `entry`, then rethrow. */
  private audited<T>(entry: (code: ErrorCode | null) => AuditInput, f: () => T): T {
    try {
      return f();
    } catch (e) {
      if (isCleanRoomError(e)) this.audit.append(entry(e.code));
      throw e;
    }
  }

  /**
   * `declarePurpose`: issue a signed grant (audited either way).
   *
   * @example
   * pr.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "ads", justification: "campaign lift", ttlSeconds: 86400 })
   */
  declarePurpose(input: {
    party: string;
    analyst: string;
    purpose: string;
    justification: string;
    ttlSeconds?: number;
    expiresAt?: string;
  }): PurposeGrant {
    const base = { action: "declarePurpose", who: auditWho(input) };
    const grant = this.audited(
      (errorCode) => ({ ...base, purpose: purposeOrNull(this.tryResolve(input?.purpose)), outcome: "refused", errorCode }),
      () => this.authority.declare(this.#taxonomy, input, this.#rng),
    );
    this.#db
      .prepare(`INSERT INTO purpose_grants (room_id, id, party, analyst, expires_at, grant_json) VALUES (?, ?, ?, ?, ?, ?)`)
      .run(this.roomId, grant.id, grant.who.party, grant.who.analyst, grant.expiresAt, JSON.stringify(grant));
    this.audit.append({ ...base, purpose: grant.purpose, grantId: grant.id, outcome: "granted" });
    return grant;
  }

  private tryResolve(p: unknown): string | null {
    try {
      return this.#taxonomy.resolveUse(p);
    } catch {
      return null;
    }
  }

  /**
   * `upload(..., { purposes })`: tag and seal a dataset's bytes (audited either way).
   *
   * @example
   * pr.upload({ party: "retailer", analyst: "ana", datasetId: "purchases", bytes: serializeTable(t),
   *   tags: { purposes: ["measurement"], categories: ["user.behavior.purchase_history"] } })
   */
  upload(input: {
    party: string;
    analyst?: string;
    datasetId: string;
    bytes: Uint8Array;
    tags: string | string[] | DatasetTagsInput;
  }): GatedDatasetInfo {
    const base = { action: "upload", who: auditWho(input), datasets: [safe(input?.datasetId)] };
    const info = this.audited(
      (errorCode) => ({ ...base, outcome: "refused", errorCode }),
      () => {
        if (safe(input.party) === "redacted" || (input.analyst !== undefined && safe(input.analyst) === "redacted"))
          throw new CleanRoomError("INPUT_INVALID", `"party"/"analyst" expected short names (no identifiers)`, { field: "party" });
        return this.store.put(input.datasetId, input.bytes, input.tags);
      },
    );
    this.audit.append({ ...base, outcome: "granted" });
    return info;
  }

  /**
   * The purpose step of `cleanRoomQuery`: evaluate the grant against every input's label
   * (dataset + the columns read) and the deny rules, then release each input's bytes through
   * the key gate. A refusal is audited and thrown (`PURPOSE_DENIED`, `GRANT_INVALID`,
   * `GRANT_EXPIRED`, `PURPOSE_UNKNOWN`, `KEY_RELEASE_DENIED`); on success nothing is audited
   * yet — call `recordQuery` with the final outcome and cost.
   *
   * @example
   * const { tables, resultLabel } = pr.authorizeQuery({ grant, requester: { party: "advertiser", analyst: "bo" },
   *   purpose: "measurement", templateHash, inputs: [{ datasetId: "exposures" }, { datasetId: "purchases", columns: ["value_cents"] }] })
   */
  authorizeQuery(input: {
    /** The grant to use; when omitted, `findGrant(requester, purpose)` picks one. */
    grant?: PurposeGrant | null;
    requester: Requester;
    purpose?: string;
    templateHash?: string;
    inputs: Array<{ datasetId: string; columns?: string[] }>;
  }): { decision: PurposeDecision; tables: Record<string, Uint8Array>; resultLabel: PurposeLabel; purpose: string; grantId: string } {
    const base = {
      action: "query",
      who: auditWho(input?.requester),
      templateHash: /^[0-9a-f]{64}$/.test(String(input?.templateHash)) ? input.templateHash! : null,
      datasets: (input?.inputs ?? []).map((i) => safe(i?.datasetId)),
    };
    let decision: PurposeDecision | undefined;
    return this.audited(
      (errorCode) => ({
        ...base,
        purpose: purposeOrNull(decision?.purpose),
        grantId: decision?.grantId ?? null,
        outcome: "refused",
        errorCode,
      }),
      () => {
        // no live grant but an expired one that covered the purpose: refuse as GRANT_EXPIRED, saying when it ended
        const grant =
          input.grant === undefined
            ? (this.findGrant(input.requester, input.purpose) ?? this.findGrant(input.requester, input.purpose, { expired: true }))
            : input.grant;
        if (input.grant === undefined && grant === null) {
          // an unknown purpose name is a typo to fix, not a grant to declare: name the closest ones
          if (input.purpose !== undefined && this.tryResolve(input.purpose) === null) this.#taxonomy.resolveUse(input.purpose, "purpose");
          const who = auditWho(input.requester);
          const use = purposeOrNull(this.tryResolve(input.purpose));
          throw new CleanRoomError(
            "GRANT_INVALID",
            `no unexpired purpose grant of ${who.party}/${who.analyst ?? "?"} covers ${use ? `"${use}"` : "the requested purpose"}: ` +
              `declare it first with declarePurpose(...)`,
            { field: "grant" },
          );
        }
        const inputs = (input.inputs ?? []).map((i) => ({ datasetId: i.datasetId, label: this.store.labelFor(i.datasetId, i.columns) }));
        decision = evaluatePurpose(
          { grant, requester: input.requester, ...(input.purpose === undefined ? {} : { purpose: input.purpose }), inputs },
          {
            taxonomy: this.#taxonomy,
            roomId: this.roomId,
            policyPublicKey: this.authority.publicKey,
            now: this.#clock(),
            rules: this.#rules,
          },
        );
        if (decision.outcome === "refused") throw new CleanRoomError(decision.code ?? "PURPOSE_DENIED", decision.reason, { decision });
        const tables: Record<string, Uint8Array> = {};
        for (const i of inputs)
          tables[i.datasetId] = this.store.get(i.datasetId, grant!, { requester: input.requester, purpose: decision.purpose! });
        return { decision, tables, resultLabel: decision.resultLabel!, purpose: decision.purpose!, grantId: decision.grantId! };
      },
    );
  }

  /**
   * Record a query's final outcome (after budget charge and release, or its refusal there).
   *
   * @example
   * pr.recordQuery({ requester, purpose, grantId, templateHash, datasets: ["exposures", "purchases"],
   *   privacyCost: auditCost(cost), outcome: "granted" })
   */
  recordQuery(input: {
    requester: Requester;
    purpose: string | null;
    grantId: string | null;
    templateHash: string | null;
    datasets: string[];
    privacyCost: AuditCost | null;
    outcome: "granted" | "refused";
    errorCode?: ErrorCode | null;
  }): AuditEntry {
    return this.audit.append({
      action: "query",
      who: auditWho(input.requester),
      purpose: input.purpose,
      grantId: input.grantId,
      templateHash: input.templateHash,
      datasets: input.datasets.map(safe),
      privacyCost: input.privacyCost,
      outcome: input.outcome,
      errorCode: input.errorCode ?? null,
    });
  }

  /**
   * A budget charge and its audit entry as one unit: `charge()` (e.g. `ledger.chargeAtomic`)
   * and a `charge` entry (who, purpose, template, cost, every budget charged) commit in ONE
   * IMMEDIATE transaction, or neither does (a refusal from `charge` rolls back and is rethrown;
   * the caller audits the refusal as before). The head is published after COMMIT.
   *
   * @example
   * const receipt = pr.chargeQuery({ party: "advertiser", purpose, templateHash, cost: auditCost(cost), budgets: ["collaboration/lab", "party/advertiser"] },
   *   () => ledger.chargeAtomic("lab", keys, cost, meta))
   */
  chargeQuery<T>(
    input: { party: string; purpose: string | null; templateHash: string | null; cost: AuditCost; budgets: string[] },
    charge: () => T,
  ): T {
    const out = this.audit.atomic(() => {
      const r = charge();
      this.audit.append({
        action: "charge",
        who: auditWho({ party: input.party }),
        purpose: purposeOrNull(input.purpose),
        templateHash: input.templateHash,
        privacyCost: input.cost,
        outcome: "granted",
        budgets: input.budgets,
      });
      faultPoint("room.charge.beforeCommit");
      return r;
    });
    faultPoint("room.charge.afterCommit");
    return out;
  }

  /**
   * `audit()`: verify the chain, sign the current head if it verifies, return entries and the misuse review.
   *
   * @example
   * const { verification, entries, review } = pr.auditReport({ limit: 50 })
   */
  auditReport(opts: { limit?: number } & ReviewOptions = {}): ReturnType<AuditLog["report"]> {
    // sign only a chain that verifies: signing first would overwrite a genuine head with one over a rewritten chain
    if (this.audit.verify().ok) this.audit.signHead();
    const report = this.audit.report(opts);
    if (!report.verification.ok || !this.#ledger) return report;
    // the chain verifies: the ledger must hold exactly the charges it records (one snapshot of both:
    // a charge and its entry commit together, so a concurrent kernel cannot split them here)
    const ledger = this.#ledger;
    const l = this.#db.transaction(() => {
      const audited = this.audit
        .entries()
        .filter((e) => e.action === "charge" && e.outcome === "granted" && e.privacyCost && e.budgets)
        .map((e) => ({ index: e.seq, ts: e.ts, cost: e.privacyCost!, budgets: e.budgets! }));
      return ledger.verify(this.roomId, { audited });
    })();
    if (l.ok) return report;
    const first = l.mismatches?.[0];
    return {
      ...report,
      verification: {
        ...report.verification,
        ok: false,
        problem: "ledger_mismatch",
        firstBadIndex: first?.entries?.[0] ?? null,
        detail: `the privacy ledger does not match the audit chain: ${l.problems.join("; ")}`,
      },
    };
  }
}
