/**
 * The privacy ledger: budgets, charges and refresh, in the room's SQLite file.
 *
 * Threat model: an analyst (or a buggy notebook) who runs queries concurrently, from two
 * kernels, across a kernel restart, or who kills the kernel mid-query, must not get more
 * privacy loss than the budget. So:
 *  - check-and-charge is ONE `BEGIN IMMEDIATE` transaction over every listed budget (the
 *    write lock is taken before reading, so two connections cannot both read "enough left");
 *    all-or-nothing; SQLite's journal makes a `kill -9` roll it back;
 *  - the charge is made BEFORE the query executes (the session calls `chargeAtomic` first);
 *  - amounts are exact rationals stored as JSON `{num, den}` decimal strings (no floats);
 *  - state lives only in the db: reopening it (a kernel restart) resets nothing;
 *  - refresh (daily / monthly) restores the per-period allowance, but every charge stays in
 *    the history and `lifetimeSpent` shows the true cumulative loss, with a warning.
 *
 *  - dataset budgets (keyed by content fingerprint) are STORE-WIDE: one row per fingerprint
 *    whichever room of the file created it (room id `*`), so opening more room ids on the same
 *    store cannot multiply the budget of the same data; the first total set for a dataset
 *    stands (a later room asking for a larger one gets the existing budget, never a new one).
 *    `dp_budget_rooms` links a room to the dataset budgets it uses (for its status view);
 *    every charge row keeps the room that made it;
 *  - `verify(roomId, { audited })` reconciles the ledger with the charges the verified audit
 *    chain records (one `charge` entry per charge, committed in the same transaction): a
 *    zeroed or deleted ledger no longer passes.
 *
 * Tables: `dp_budgets`, `dp_charges`, `dp_budget_rooms` (other layers add their own tables to the same db).
 * Spec: the contract in .scratch/CONTRACTS.md (dp/ledger.ts); Tumult's InsufficientBudgetError
 * (Requested / Remaining / Difference); AWS Clean Rooms' refresh warning (dp-settings).
 */
import type { Database } from "better-sqlite3";
import { randomUUID } from "node:crypto";
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { faultPoint } from "../faults.js";
import { type AuditedCharge, type LedgerMismatch, reconcileCharges } from "./reconcile.js";

export type { AuditedCharge, LedgerMismatch } from "./reconcile.js";
import { type Rational, ratAdd, ratSub, ratCompare, ratFrom, ratToJson, ratToDecimal, type RationalJson } from "./rational.js";
import {
  type PrivacyCost,
  type AccountantKind,
  type PrivacyCostJson,
  parseCost,
  costIn,
  costToJson,
  zeroCost,
  fits,
  deltaText,
} from "./accountant.js";
import { type BudgetScope, type BudgetKey, type RefreshPolicy, BUDGET_SCOPES, periodOf, nextRefreshOf, refreshWarning } from "./budget.js";

export {
  type BudgetScope,
  type BudgetKey,
  type RefreshPolicy,
  BUDGET_SCOPES,
  periodOf,
  refreshWarning,
  datasetBudgetKey,
  datasetFingerprint,
} from "./budget.js";

/** What a charge is for (stored with it; never row data). */
export interface ChargeMeta {
  templateHash?: string;
  purpose?: string;
  party?: string;
  queryId?: string;
  note?: string;
}

export interface ChargeRecord {
  chargeId: string;
  scope: BudgetScope;
  subject: string;
  period: string;
  cost: PrivacyCostJson;
  requested: PrivacyCostJson;
  meta: ChargeMeta;
  at: string;
}

export interface BudgetStatus {
  roomId: string;
  scope: BudgetScope;
  subject: string;
  accountant: AccountantKind;
  total: PrivacyCostJson;
  /** Spent in the current refresh period. */
  spent: PrivacyCostJson;
  remaining: PrivacyCostJson;
  /** Everything ever charged, across refreshes: the real cumulative privacy loss. */
  lifetimeSpent: PrivacyCostJson;
  refresh: RefreshPolicy;
  period: string;
  nextRefresh: string | null;
  refreshWarning: string | null;
  charges: number;
  history: ChargeRecord[];
}

export interface ChargeReceipt {
  chargeId: string;
  roomId: string;
  requested: PrivacyCostJson;
  at: string;
  budgets: { scope: BudgetScope; subject: string; spent: PrivacyCostJson; remaining: PrivacyCostJson }[];
}

export interface LedgerOptions {
  /** Clock (tests). Default `() => new Date()`. */
  now?: () => Date;
  /** Fault injection for crash tests: called inside the transaction after the writes, before COMMIT. */
  onBeforeCommit?: (chargeId: string) => void;
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS dp_budgets (
  room_id TEXT NOT NULL,
  scope TEXT NOT NULL CHECK (scope IN ('collaboration','party','dataset')),
  subject TEXT NOT NULL,
  accountant TEXT NOT NULL CHECK (accountant IN ('pureDp','approxDp','zCdp')),
  total_json TEXT NOT NULL,
  spent_json TEXT NOT NULL,
  lifetime_json TEXT NOT NULL,
  refresh TEXT NOT NULL CHECK (refresh IN ('none','daily','monthly')),
  period TEXT NOT NULL,
  created_at TEXT NOT NULL,
  PRIMARY KEY (room_id, scope, subject)
);
CREATE TABLE IF NOT EXISTS dp_charges (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  charge_id TEXT NOT NULL,
  room_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  subject TEXT NOT NULL,
  period TEXT NOT NULL,
  cost_json TEXT NOT NULL,
  requested_json TEXT NOT NULL,
  meta_json TEXT NOT NULL,
  at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS dp_charges_budget ON dp_charges (room_id, scope, subject, period);
CREATE INDEX IF NOT EXISTS dp_charges_subject ON dp_charges (scope, subject);
CREATE TABLE IF NOT EXISTS dp_budget_rooms (
  room_id TEXT NOT NULL, scope TEXT NOT NULL, subject TEXT NOT NULL,
  PRIMARY KEY (room_id, scope, subject)
);
`;

/** Room id under which store-wide (dataset) budgets are kept. */
export const STORE_WIDE = "*";
/** The `dp_budgets.room_id` of a budget key: dataset budgets bind across every room of the store. */
const budgetRoom = (roomId: string, k: BudgetKey): string => (k.scope === "dataset" ? STORE_WIDE : roomId);

interface BudgetRow {
  room_id: string;
  scope: BudgetScope;
  subject: string;
  accountant: AccountantKind;
  total_json: string;
  spent_json: string;
  lifetime_json: string;
  refresh: RefreshPolicy;
  period: string;
  created_at: string;
}

/** Stored cost: dims as exact `{num, den}` strings. */
function encode(c: PrivacyCost): string {
  const o: Record<string, unknown> = { kind: c.kind };
  if (c.kind === "zCdp") o.rho = ratToJson(c.rho);
  else {
    o.epsilon = ratToJson(c.epsilon);
    if (c.kind === "approxDp") o.delta = ratToJson(c.delta);
  }
  return JSON.stringify(o);
}
function decode(s: string): PrivacyCost {
  const o = JSON.parse(s) as { kind: AccountantKind; epsilon?: RationalJson; delta?: RationalJson; rho?: RationalJson };
  const r = (x: RationalJson | undefined, f: string) => (x ? ratFrom(x, f) : invalid(f, "stored rational", x, "LEDGER_ERROR"));
  if (o.kind === "pureDp") return { kind: "pureDp", epsilon: r(o.epsilon, "epsilon") };
  if (o.kind === "approxDp") return { kind: "approxDp", epsilon: r(o.epsilon, "epsilon"), delta: r(o.delta, "delta") };
  if (o.kind === "zCdp") return { kind: "zCdp", rho: r(o.rho, "rho") };
  return invalid("stored cost", "a known kind", o.kind, "LEDGER_ERROR");
}

function mapDims(a: PrivacyCost, b: PrivacyCost, f: (x: Rational, y: Rational) => Rational): PrivacyCost {
  if (a.kind === "pureDp" && b.kind === "pureDp") return { kind: "pureDp", epsilon: f(a.epsilon, b.epsilon) };
  if (a.kind === "approxDp" && b.kind === "approxDp")
    return { kind: "approxDp", epsilon: f(a.epsilon, b.epsilon), delta: f(a.delta, b.delta) };
  if (a.kind === "zCdp" && b.kind === "zCdp") return { kind: "zCdp", rho: f(a.rho, b.rho) };
  return invalid("cost.kind", a.kind, b.kind, "LEDGER_ERROR");
}

function str(x: unknown, field: string, max: number): string {
  if (typeof x !== "string" || x.length === 0 || x.length > max) return invalid(field, `non-empty string of at most ${max} characters`, x);
  return x;
}

function checkKey(k: unknown, field: string): BudgetKey {
  if (typeof k !== "object" || k === null) return invalid(field, "{ scope, subject }", k);
  const { scope, subject } = k as BudgetKey;
  if (!BUDGET_SCOPES.includes(scope)) invalid(`${field}.scope`, `"collaboration" | "party" | "dataset"`, scope);
  return { scope, subject: str(subject, `${field}.subject`, 500) };
}

function checkMeta(m: unknown): ChargeMeta {
  if (m === undefined) return {};
  if (typeof m !== "object" || m === null) return invalid("meta", "object", m);
  const out: ChargeMeta = {};
  for (const [k, v] of Object.entries(m)) {
    if (!["templateHash", "purpose", "party", "queryId", "note"].includes(k))
      invalid(`meta.${k}`, "one of templateHash, purpose, party, queryId, note", v);
    if (v !== undefined) (out as Record<string, string>)[k] = str(v, `meta.${k}`, 2000);
  }
  return out;
}

/**
 * Budgets and charges of every room in one database.
 * @example
 * const ledger = new PrivacyLedger(new Database("room.db"));
 * ledger.createBudget("room-1", { scope: "collaboration", subject: "room-1" }, pureDp("1"));
 * ledger.chargeAtomic("room-1", [{ scope: "collaboration", subject: "room-1" }], pureDp("0.1"), { templateHash: "ab12…" });
 */
export class PrivacyLedger {
  private readonly db: Database;
  private readonly now: () => Date;
  private readonly onBeforeCommit: ((chargeId: string) => void) | undefined;

  constructor(db: Database, opts: LedgerOptions = {}) {
    if (!db || typeof (db as Database).prepare !== "function") invalid("db", "a better-sqlite3 Database", db);
    this.db = db;
    this.now = opts.now ?? (() => new Date());
    this.onBeforeCommit = opts.onBeforeCommit;
    try {
      if (!db.memory) db.pragma("journal_mode = WAL");
      const t = db.pragma("busy_timeout", { simple: true }) as number;
      if (t < 10_000) db.pragma("busy_timeout = 10000");
      db.exec(SCHEMA);
      // dataset budgets made per room by an older version become store-wide (unless another room's already is)
      db.transaction(() => {
        db.prepare(
          `INSERT OR IGNORE INTO dp_budget_rooms (room_id, scope, subject) ` +
            `SELECT room_id, scope, subject FROM dp_budgets WHERE scope = 'dataset' AND room_id <> ?`,
        ).run(STORE_WIDE);
        db.prepare(`UPDATE OR IGNORE dp_budgets SET room_id = ? WHERE scope = 'dataset' AND room_id <> ?`).run(STORE_WIDE, STORE_WIDE);
      }).immediate();
    } catch (e) {
      throw new CleanRoomError("LEDGER_ERROR", `could not open the privacy ledger: ${(e as Error).message}`);
    }
  }

  /**
   * Create a budget (idempotent: the same total and refresh again returns the existing budget
   * unchanged — a restart never resets it; a different total is `ALREADY_EXISTS`).
   * @example ledger.createBudget("room-1", { scope: "party", subject: "retailer" }, zCdp("0.5"), { refresh: "monthly" })
   */
  createBudget(roomId: string, key: BudgetKey, total: PrivacyCost, opts: { refresh?: RefreshPolicy } = {}): BudgetStatus {
    // (a dataset budget is store-wide: when it exists — made by this or another room of the
    // store — it is linked to this room and returned unchanged, whatever total is asked now)
    str(roomId, "roomId", 200);
    const k = checkKey(key, "key");
    const t = parseCost(total, "total");
    const refresh = opts.refresh ?? "none";
    if (!["none", "daily", "monthly"].includes(refresh)) invalid("refresh", `"none" | "daily" | "monthly"`, refresh, "DP_PARAM_INVALID");
    const now = this.now();
    this.tx(() => {
      const row = this.row(roomId, k);
      if (k.scope === "dataset")
        this.db.prepare(`INSERT OR IGNORE INTO dp_budget_rooms (room_id, scope, subject) VALUES (?,?,?)`).run(roomId, k.scope, k.subject);
      if (row && k.scope === "dataset") return faultPoint("ledger.createBudget.beforeCommit");
      if (row) {
        if (row.total_json !== encode(t) || row.refresh !== refresh)
          throw new CleanRoomError(
            "ALREADY_EXISTS",
            `budget ${k.scope}/${k.subject} of room ${roomId} already exists with a different total or refresh policy`,
            { roomId, ...k },
          );
        return;
      }
      const zero = encode(zeroCost(t.kind));
      this.db
        .prepare(
          `INSERT INTO dp_budgets (room_id, scope, subject, accountant, total_json, spent_json, lifetime_json, refresh, period, created_at) ` +
            `VALUES (?,?,?,?,?,?,?,?,?,?)`,
        )
        .run(budgetRoom(roomId, k), k.scope, k.subject, t.kind, encode(t), zero, zero, refresh, periodOf(refresh, now), now.toISOString());
      faultPoint("ledger.createBudget.beforeCommit");
    });
    return this.budgetStatus(roomId, k);
  }

  /**
   * Check every listed budget and charge all of them, in one IMMEDIATE transaction; or charge
   * none and throw `BUDGET_EXCEEDED` (Requested / Remaining / Difference). Call BEFORE executing.
   * @example
   * ledger.chargeAtomic(
   *   "room-1",
   *   [{ scope: "collaboration", subject: "room-1" }, { scope: "party", subject: "advertiser" }],
   *   pureDp("0.1"),
   *   { templateHash, purpose: "measurement" },
   * )
   */
  chargeAtomic(roomId: string, budgetKeys: readonly BudgetKey[], cost: PrivacyCost, meta?: ChargeMeta): ChargeReceipt {
    str(roomId, "roomId", 200);
    if (!Array.isArray(budgetKeys) || budgetKeys.length === 0 || budgetKeys.length > 100)
      invalid("budgetKeys", "non-empty array of at most 100 budget keys", budgetKeys);
    const keys = budgetKeys.map((k, i) => checkKey(k, `budgetKeys[${i}]`));
    const seen = new Set(keys.map((k) => `${k.scope}\u0000${k.subject}`));
    if (seen.size !== keys.length) invalid("budgetKeys", "distinct budget keys", budgetKeys);
    const c = parseCost(cost, "cost");
    const m = checkMeta(meta);
    const chargeId = randomUUID();
    const now = this.now();
    const at = now.toISOString();
    const budgets: ChargeReceipt["budgets"] = [];
    this.tx(() => {
      const plans: {
        k: BudgetKey;
        row: BudgetRow;
        period: string;
        inUnits: PrivacyCost;
        spent: PrivacyCost;
        lifetime: PrivacyCost;
        total: PrivacyCost;
      }[] = [];
      for (const k of keys) {
        const row = this.row(roomId, k);
        if (!row)
          throw new CleanRoomError("BUDGET_NOT_FOUND", `no ${k.scope} budget "${k.subject}" in room ${roomId}: create it before querying`, {
            roomId,
            ...k,
          });
        const total = decode(row.total_json);
        const period = this.currentPeriod(row, now);
        const spent = period === row.period ? decode(row.spent_json) : zeroCost(row.accountant);
        const inUnits = costIn(row.accountant, c);
        const f = fits(total, spent, inUnits);
        if (!f.ok) throw this.exceeded(roomId, k, f.dims);
        plans.push({ k, row, period, inUnits, spent, lifetime: decode(row.lifetime_json), total });
      }
      const upd = this.db.prepare(
        `UPDATE dp_budgets SET spent_json = ?, lifetime_json = ?, period = ? WHERE room_id = ? AND scope = ? AND subject = ?`,
      );
      const ins = this.db.prepare(
        `INSERT INTO dp_charges (charge_id, room_id, scope, subject, period, cost_json, requested_json, meta_json, at) VALUES (?,?,?,?,?,?,?,?,?)`,
      );
      for (const p of plans) {
        const spent = mapDims(p.spent, p.inUnits, ratAdd);
        const lifetime = mapDims(p.lifetime, p.inUnits, ratAdd);
        upd.run(encode(spent), encode(lifetime), p.period, budgetRoom(roomId, p.k), p.k.scope, p.k.subject);
        ins.run(chargeId, roomId, p.k.scope, p.k.subject, p.period, encode(p.inUnits), encode(c), JSON.stringify(m), at);
        budgets.push({ ...p.k, spent: costToJson(spent), remaining: costToJson(mapDims(p.total, spent, ratSub)) });
      }
      this.onBeforeCommit?.(chargeId);
      faultPoint("ledger.charge.beforeCommit");
    });
    return { chargeId, roomId, requested: costToJson(c), at, budgets };
  }

  /** Spent / remaining / refresh / history of one budget. @example ledger.budgetStatus("room-1", { scope: "collaboration", subject: "room-1" }) */
  budgetStatus(roomId: string, key: BudgetKey, historyLimit = 50): BudgetStatus {
    const k = checkKey(key, "key");
    const row = this.row(str(roomId, "roomId", 200), k);
    if (!row) throw new CleanRoomError("BUDGET_NOT_FOUND", `no ${k.scope} budget "${k.subject}" in room ${roomId}`, { roomId, ...k });
    return this.describe(row, historyLimit, roomId);
  }

  /** Every budget of a room, with recent history. @example ledger.status("room-1").budgets[0].remaining.text */
  status(roomId: string, historyLimit = 50): { roomId: string; budgets: BudgetStatus[] } {
    str(roomId, "roomId", 200);
    return { roomId, budgets: this.roomRows(roomId).map((r) => this.describe(r, historyLimit, roomId)) };
  }

  /** All charges of a budget in order (every period). @example ledger.charges("room-1", key).length */
  charges(roomId: string, key: BudgetKey): ChargeRecord[] {
    const k = checkKey(key, "key");
    str(roomId, "roomId", 200);
    return this.chargeRows(roomId, k).map(toRecord);
  }

  /**
   * Consistency check (used by tests and `audit()`): for every budget, spent equals the sum of
   * its current-period charges, lifetime equals the sum of all charges, and spent ≤ total.
   */
  verify(
    roomId?: string,
    opts: { audited?: readonly AuditedCharge[] } = {},
  ): { ok: boolean; problems: string[]; mismatches?: LedgerMismatch[] } {
    const rows = roomId === undefined ? (this.db.prepare(`SELECT * FROM dp_budgets`).all() as BudgetRow[]) : this.roomRows(roomId);
    const problems: string[] = [];
    for (const r of rows) {
      const all = this.chargeRows(r.room_id, r);
      let life = zeroCost(r.accountant);
      let cur = zeroCost(r.accountant);
      for (const ch of all) {
        const c = decode(ch.cost_json);
        life = mapDims(life, c, ratAdd);
        if (ch.period === r.period) cur = mapDims(cur, c, ratAdd);
      }
      const name = `${r.room_id}/${r.scope}/${r.subject}`;
      if (encode(life) !== r.lifetime_json) problems.push(`${name}: lifetime ≠ Σ charges`);
      if (encode(cur) !== r.spent_json) problems.push(`${name}: spent ≠ Σ current-period charges`);
      if (!fits(decode(r.total_json), zeroCost(r.accountant), decode(r.spent_json)).ok) problems.push(`${name}: spent > total`);
    }
    const mismatches = opts.audited && roomId !== undefined ? this.reconcile(roomId, rows, opts.audited) : [];
    for (const m of mismatches) problems.push(m.detail);
    return { ok: problems.length === 0, problems, ...(opts.audited ? { mismatches } : {}) };
  }

  /**
   * The ledger against the audit chain: for every budget the room uses (or the chain says it
   * charged), the charges this room made must be exactly the audited ones — same number, same
   * total (in the budget's unit), same total in the current refresh period.
   */
  private reconcile(roomId: string, rows: BudgetRow[], audited: readonly AuditedCharge[]): LedgerMismatch[] {
    const mine = this.db.prepare(`SELECT * FROM dp_charges WHERE room_id = ? AND scope = ? AND subject = ? ORDER BY seq`);
    const view = rows.map((r) => ({
      name: `${r.scope}/${r.subject}`,
      accountant: r.accountant,
      refresh: r.refresh,
      period: r.period,
      charges: (mine.all(roomId, r.scope, r.subject) as ChargeRowDb[]).map((c) => ({ cost: decode(c.cost_json), period: c.period })),
    }));
    return reconcileCharges(roomId, view, audited);
  }

  /** The budgets a room uses: its own (collaboration, party) and the store-wide dataset budgets linked to it. */
  private roomRows(roomId: string): BudgetRow[] {
    return this.db
      .prepare(
        `SELECT * FROM dp_budgets WHERE room_id = ? OR (room_id = ? AND EXISTS (SELECT 1 FROM dp_budget_rooms l ` +
          `WHERE l.room_id = ? AND l.scope = dp_budgets.scope AND l.subject = dp_budgets.subject)) ORDER BY scope, subject`,
      )
      .all(roomId, STORE_WIDE, roomId) as BudgetRow[];
  }

  /** Every charge of a budget (store-wide for dataset budgets), in order. */
  private chargeRows(roomId: string, k: BudgetKey): ChargeRowDb[] {
    return (
      k.scope === "dataset"
        ? this.db.prepare(`SELECT * FROM dp_charges WHERE scope = ? AND subject = ? ORDER BY seq`).all(k.scope, k.subject)
        : this.db
            .prepare(`SELECT * FROM dp_charges WHERE room_id = ? AND scope = ? AND subject = ? ORDER BY seq`)
            .all(roomId, k.scope, k.subject)
    ) as ChargeRowDb[];
  }

  // -------------------------------------------------------------------------------------

  private tx(fn: () => void): void {
    try {
      this.db.transaction(fn).immediate();
    } catch (e) {
      if (isCleanRoomError(e)) throw e;
      throw new CleanRoomError("LEDGER_ERROR", `privacy ledger transaction failed, nothing was charged: ${(e as Error).message}`);
    }
  }

  private row(roomId: string, k: BudgetKey): BudgetRow | undefined {
    return this.db
      .prepare(`SELECT * FROM dp_budgets WHERE room_id = ? AND scope = ? AND subject = ?`)
      .get(budgetRoom(roomId, k), k.scope, k.subject) as BudgetRow | undefined;
  }

  /** The current period; a clock that went backwards never re-opens an old period. */
  private currentPeriod(row: BudgetRow, now: Date): string {
    const p = periodOf(row.refresh, now);
    return p > row.period ? p : row.period;
  }

  private exceeded(
    roomId: string,
    k: BudgetKey,
    dims: { name: "epsilon" | "delta" | "rho"; requested: Rational; remaining: Rational }[],
  ): CleanRoomError {
    const sym = { epsilon: "ε", delta: "δ", rho: "ρ" } as const;
    const show = (r: Rational, name: "epsilon" | "delta" | "rho") => (name === "delta" ? deltaText(r) : ratToDecimal(r, 12));
    const over = dims.filter((d) => ratCompare(d.requested, d.remaining) > 0);
    const part = (f: (d: (typeof dims)[number]) => string) => over.map((d) => `${sym[d.name]} = ${f(d)}`).join(", ");
    const req = part((d) => show(d.requested, d.name));
    const rem = part((d) => show(d.remaining, d.name));
    const diff = part((d) => show(ratSub(d.requested, d.remaining), d.name));
    return new CleanRoomError(
      "BUDGET_EXCEEDED",
      `Privacy budget ${k.scope}/${k.subject} of room ${roomId} is insufficient. Requested: ${req}. Remaining: ${rem}. Difference: ${diff}. ` +
        `Nothing was charged and the query did not run.`,
      {
        roomId,
        scope: k.scope,
        subject: k.subject,
        requested: req,
        remaining: rem,
        difference: diff,
        dims: over.map((d) => ({
          name: d.name,
          requested: ratToJson(d.requested),
          remaining: ratToJson(d.remaining),
          difference: ratToJson(ratSub(d.requested, d.remaining)),
        })),
      },
    );
  }

  private describe(row: BudgetRow, historyLimit: number, roomId: string = row.room_id): BudgetStatus {
    const now = this.now();
    const total = decode(row.total_json);
    const period = this.currentPeriod(row, now);
    const spent = period === row.period ? decode(row.spent_json) : zeroCost(row.accountant);
    const remaining = mapDims(total, spent, ratSub);
    const lim = Math.max(0, Math.min(10_000, Math.floor(historyLimit)));
    const wide = row.scope === "dataset";
    const where = wide ? `scope = ? AND subject = ?` : `room_id = ? AND scope = ? AND subject = ?`;
    const args = wide ? [row.scope, row.subject] : [row.room_id, row.scope, row.subject];
    const count = (this.db.prepare(`SELECT COUNT(*) AS n FROM dp_charges WHERE ${where}`).get(...args) as { n: number }).n;
    const hist = (
      this.db.prepare(`SELECT * FROM dp_charges WHERE ${where} ORDER BY seq DESC LIMIT ?`).all(...args, lim) as ChargeRowDb[]
    ).reverse();
    return {
      roomId,
      scope: row.scope,
      subject: row.subject,
      accountant: row.accountant,
      total: costToJson(total),
      spent: costToJson(spent),
      remaining: costToJson(remaining),
      lifetimeSpent: costToJson(decode(row.lifetime_json)),
      refresh: row.refresh,
      period,
      nextRefresh: nextRefreshOf(row.refresh, now),
      refreshWarning: refreshWarning(row.refresh, total),
      charges: count,
      history: hist.map(toRecord),
    };
  }
}

interface ChargeRowDb {
  charge_id: string;
  scope: BudgetScope;
  subject: string;
  period: string;
  cost_json: string;
  requested_json: string;
  meta_json: string;
  at: string;
}

function toRecord(r: ChargeRowDb): ChargeRecord {
  return {
    chargeId: r.charge_id,
    scope: r.scope,
    subject: r.subject,
    period: r.period,
    cost: costToJson(decode(r.cost_json)),
    requested: costToJson(decode(r.requested_json)),
    meta: JSON.parse(r.meta_json) as ChargeMeta,
    at: r.at,
  };
}

/** Decode a `PrivacyCostJson` (e.g. `status.remaining`) back to an exact cost. @example costFromJson(ledger.status("room-1").budgets[0].remaining) */
export function costFromJson(j: PrivacyCostJson): PrivacyCost {
  return decode(JSON.stringify(j));
}
