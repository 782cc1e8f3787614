/**
 * The lab session: the one stateful object of cleanroom-lab (DESIGN.md § The house).
 *
 * A `Lab` is one simulated clean room. It owns one embedded database (better-sqlite3, WAL)
 * holding the privacy ledger, the audit chain, approvals, sealed datasets and the
 * difference-check history, so a kernel restart — or a second kernel on the same file —
 * continues where the last one stopped and can never overspend. Every notebook verb walks the
 * road of DESIGN.md: parse → purpose → rule/template → plan → cost → atomic charge → execute →
 * bound → noise → threshold → audit → immutable result. A refusal leaves no side effect
 * except its own audit entry.
 *
 * Keys: the room's policy key, key-gate master secret and audit-signing key stand in for a
 * KMS. They live in a sidecar file `<store>.keys` (mode 0600), never in the database, so a
 * database thief cannot forge grants, unseal datasets or re-sign a rewritten audit chain.
 */
import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as aq from "arquero";
import { z } from "zod";
import { CleanRoomError, invalid, isCleanRoomError } from "./errors.js";
import { makeRng, rngStamp, type Rng, type RngStamp } from "./rng.js";
import { fromHex, hex } from "./crypto/primitives.js";
import { PrivacyLedger, type BudgetKey, type RefreshPolicy } from "./dp/ledger.js";
import { datasetBudgetKey } from "./dp/budget.js";
import { settleRoomBudget } from "./dp/room-config.js"; // integrity: the room's budget lives in the room (issue 14 #10)
import { approxDp, pureDp, zCdp, type PrivacyCost } from "./dp/accountant.js";
import { budgetReport, type AccuracyTarget, type BudgetReport } from "./dp/planner.js";
import { PurposeRoom } from "./purpose/room.js";
import { auditCost } from "./purpose/audit.js";
import { fileAnchor } from "./purpose/anchor.js"; // integrity: the head file (extension rule, sticky evidence)
import type { PurposeGrant } from "./purpose/policy.js";
import { TemplateRegistry, type ApprovalStatus } from "./cleanroom/approvals.js";
import { describeDataset, loadDataset, type Dataset, type DatasetDescription, type DatasetSchema, type Table } from "./cleanroom/dataset.js";
import { DifferenceHistory } from "./cleanroom/diffcheck.js";
import { ArqueroEngine, type QueryEngine } from "./cleanroom/engine.js";
import { DuckDbEngine } from "./cleanroom/duckdb.js";
import { executeQuery, prepareQuery, type PreparedQuery } from "./cleanroom/query.js";
import type { QueryResult } from "./cleanroom/release.js";
import type { PlanContext } from "./cleanroom/plan.js";
import { parseAnalysisRule, type AnalysisRule } from "./cleanroom/rules.js";
import { parseTemplate, templateHash, type Template } from "./cleanroom/template.js";
import { deserializeTable, serializeTable } from "./cleanroom/serialize.js";
import { type Trace, traceOf } from "./trace.js";

const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

const BudgetOptions = z.strictObject({
  /** ε of the collaboration budget (pure or approximate DP). */
  epsilon: z.union([z.string(), z.number()]).optional(),
  delta: z.union([z.string(), z.number()]).optional(),
  /** ρ of the collaboration budget (zCDP). */
  rho: z.union([z.string(), z.number()]).optional(),
  /** Each party's own budget (same unit); defaults to the collaboration's. */
  perParty: z.union([z.string(), z.number()]).optional(),
  refresh: z.enum(["none", "daily", "monthly"]).optional(),
});

export const OpenLabOptions = z.strictObject({
  /** Room id (default "lab"). */
  room: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/).optional(),
  /** SQLite file (default "./cleanroom-lab.db" beside the notebook); ":memory:" for a throwaway room. */
  store: z.string().min(1).optional(),
  /** "secure" (default) or { seed } for reproducible teaching runs (labelled "not private"). */
  rng: z.union([z.literal("secure"), z.strictObject({ seed: z.string().min(1) })]).optional(),
  budget: BudgetOptions.optional(),
  engine: z.enum(["arquero", "duckdb"]).optional(),
});
export type OpenLabOptions = z.input<typeof OpenLabOptions>;

function parseOpts<T>(schema: z.ZodType<T>, input: unknown, field: string): T {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = [field, ...issue.path.map(String)].join(".");
  throw new CleanRoomError("PARAM_INVALID", `"${path}" ${issue.message}`, { field: path, expected: issue.message });
}

interface Secrets {
  policySecretKey: Uint8Array;
  gateMasterSecret: Uint8Array;
  auditSigningKey: Uint8Array;
  /** The simulated hardware root of this lab's enclaves (verifiers pin its public key). */
  enclaveRootKey: Uint8Array;
}

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The sidecar stands in for a KMS: refuse one that anybody but this user could have planted
 * or can read — a symlink, a file owned by another user, or one with group/other permissions
 * (a planted file would hand its author the audit-signing and key-gate secrets).
 */
function checkKeysFile(file: string): void {
  const st = fs.lstatSync(file);
  const refuse = (why: string) => {
    throw new CleanRoomError("ACCESS_DENIED", `"${file}" ${why}; refusing to use it as this room's key store (expected a regular file of this user with mode 0600)`, { field: "store" });
  };
  if (st.isSymbolicLink()) refuse("is a symbolic link");
  if (!st.isFile()) refuse("is not a regular file");
  if (process.platform === "win32") return;
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) refuse("belongs to another user");
  if ((st.mode & 0o077) !== 0) refuse(`is readable or writable by group/others (mode ${(st.mode & 0o777).toString(8)})`);
}

function loadSecrets(store: string, rng: Rng): Secrets {
  const fresh = (): Secrets => ({ policySecretKey: rng.bytes(32), gateMasterSecret: rng.bytes(32), auditSigningKey: rng.bytes(32), enclaveRootKey: rng.bytes(32) });
  if (store === ":memory:") return fresh();
  const file = `${store}.keys`;
  if (fs.existsSync(file) || isSymlink(file)) {
    checkKeysFile(file);
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch {
      throw new CleanRoomError("INPUT_INVALID", `"${file}" is not a cleanroom-lab keys file (unreadable JSON); refusing to open the room with it`, { field: "store" });
    }
    // Keys made by a seeded (teaching) lab are a function of the seed: whoever knows it can
    // unseal the datasets and re-sign the audit chain. A secure lab must not inherit them
    // while stamping its results "secure".
    if (j.rngMode === "seeded" && rng.mode === "secure")
      throw new CleanRoomError(
        "STATE_INVALID",
        `"${file}" holds keys made in seeded teaching mode (predictable from the seed); a secure lab cannot use this room — open it with the same { seed } (results stay labelled "not private") or start a new store`,
        { field: "rng" },
      );
    const key = (name: string): Uint8Array => {
      const v = j[name];
      if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v)) throw new CleanRoomError("INPUT_INVALID", `"${file}" has no valid ${name} (64 hex characters); refusing to open the room with it`, { field: "store" });
      return fromHex(v);
    };
    return { policySecretKey: key("policySecretKey"), gateMasterSecret: key("gateMasterSecret"), auditSigningKey: key("auditSigningKey"), enclaveRootKey: key("enclaveRootKey") };
  }
  const s = fresh();
  const body = JSON.stringify({ note: "cleanroom-lab simulated KMS secrets for this room file; keep private", rngMode: rng.mode, policySecretKey: hex(s.policySecretKey), gateMasterSecret: hex(s.gateMasterSecret), auditSigningKey: hex(s.auditSigningKey), enclaveRootKey: hex(s.enclaveRootKey) });
  try {
    fs.writeFileSync(file, body, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    return loadSecrets(store, rng); // another kernel created it first: use theirs
  }
  return s;
}

/** A party of the room as a notebook holds it. */
export interface Party {
  readonly name: string;
}

/** Who runs a query: a party and, optionally, the analyst's short name. */
export interface Requester {
  party: string;
  analyst: string;
}

export interface UploadOptions {
  /** Column that identifies the privacy unit (a person): the PSI join key. */
  idColumn?: string;
  /** Dataset schema (clean-room `DatasetSchema`); `privacyUnit` defaults to `idColumn`. */
  schema: Omit<DatasetSchema, "privacyUnit"> & { privacyUnit?: string };
  /** Allowed purposes (data uses), e.g. ["measurement"]. Required: untagged data is unusable. */
  purposes: string | string[];
  categories?: string[];
  /** Column-level labels, e.g. { value_cents: { purposes: ["measurement"] } }. */
  columns?: Record<string, { purposes?: string[]; deny?: string[]; categories?: string[] }>;
  /**
   * The owner's analysis rule (AWS Clean Rooms shape: aggregation or list). A dataset
   * without one can be stored but never queried — as in AWS, where every configured table
   * needs exactly one rule.
   */
  rule?: unknown;
  /** The uploading analyst (default "owner"). */
  analyst?: string;
}

export interface UploadReceipt extends DatasetDescription {
  kind: "dataset";
  purposes: string[];
  sealed: true;
}

export interface QueryRequest {
  /** The approved template (plan data) or its hash. */
  template: unknown;
  params?: Record<string, unknown>;
  /** Who asks. */
  as: Requester;
  /** The declared purpose; a matching grant must exist (see `declarePurpose`). */
  purpose: string;
  grant?: PurposeGrant;
}

/** What `cleanRoomQuery` returns. */
export interface CleanRoomResult extends QueryResult {
  purpose: string;
  charged: { text: string; chargeId: string } | null;
  trace: Trace;
}

/**
 * One simulated clean room. Create with {@link openLab}.
 *
 * @example
 * const lab = openLab({ store: ":memory:", rng: { seed: "week-1" }, budget: { epsilon: 3 } });
 * const retailer = lab.party("retailer");
 */
export class Lab {
  readonly roomId: string;
  readonly rng: Rng;
  readonly db: Database.Database;
  readonly ledger: PrivacyLedger;
  readonly purpose: PurposeRoom;
  readonly templates: TemplateRegistry;
  readonly history: DifferenceHistory;
  readonly engine: QueryEngine;
  readonly store: string;
  /** 32-byte secret of the simulated hardware root (non-enumerable; see enclave-room.ts). */
  declare readonly enclaveRootKey: Uint8Array;
  readonly #budget: z.infer<typeof BudgetOptions> | undefined;
  readonly #parties = new Set<string>();
  #queries = 0;
  readonly #meta = new Map<string, Omit<Dataset, "table"> & { purposes: string[]; rule: AnalysisRule | null }>();

  constructor(input: OpenLabOptions = {}) {
    const o = parseOpts(OpenLabOptions, input, "options");
    this.roomId = o.room ?? "lab";
    const root = makeRng(o.rng);
    this.store = o.store ?? "./cleanroom-lab.db";
    if (o.budget) {
      // One accountant per room: { epsilon, rho } together used to build a ρ budget out of the ε
      // value (budget { epsilon: 1, rho: 0.01 } became ρ = 1, a hundred times the ρ asked for).
      if (o.budget.rho !== undefined && (o.budget.epsilon !== undefined || o.budget.delta !== undefined))
        invalid("options.budget", "either { epsilon[, delta] } (pure or approximate DP) or { rho } (zCDP), not both", "both", "DP_PARAM_INVALID");
      if (o.budget.delta !== undefined && o.budget.epsilon === undefined) invalid("options.budget.delta", "delta together with epsilon", "delta alone", "DP_PARAM_INVALID");
    }
    this.db = new Database(this.store);
    this.ledger = new PrivacyLedger(this.db);
    // integrity (issue 14 #10): stored at first open; reused when omitted; a different one is refused
    try {
      this.#budget = settleRoomBudget(this.db, this.roomId, o.budget);
    } catch (e) {
      this.db.close();
      throw e;
    }
    // Each open of the room is an epoch: a seeded lab re-opened after a kernel restart
    // continues a fresh (still reproducible) stream instead of replaying ids and noise.
    this.db.exec(`CREATE TABLE IF NOT EXISTS lab_opens (room_id TEXT PRIMARY KEY, opens INTEGER NOT NULL)`);
    const epoch = this.db.transaction(() => {
      this.db.prepare("INSERT INTO lab_opens (room_id, opens) VALUES (?, 1) ON CONFLICT(room_id) DO UPDATE SET opens = opens + 1").run(this.roomId);
      return (this.db.prepare("SELECT opens FROM lab_opens WHERE room_id = ?").get(this.roomId) as { opens: number }).opens;
    }).immediate();
    this.rng = epoch === 1 ? root : root.fork(`open:${epoch}`);
    let loaded: Secrets;
    try {
      loaded = loadSecrets(this.store, this.rng.fork("secrets"));
    } catch (e) {
      this.db.close();
      throw e;
    }
    const { enclaveRootKey, ...secrets } = loaded;
    Object.defineProperty(this, "enclaveRootKey", { value: enclaveRootKey, enumerable: false });
    const auditAnchor = this.store === ":memory:" ? undefined : fileAnchor(`${this.store}.audit-heads.json`, this.roomId);
    this.purpose = new PurposeRoom(this.db, { roomId: this.roomId, rng: this.rng.fork("purpose"), ...secrets, ...(auditAnchor ? { auditAnchor } : {}), ledger: this.ledger /* integrity: audit() reconciles the ledger */ });
    this.templates = new TemplateRegistry(this.db, this.roomId);
    this.history = new DifferenceHistory(this.db, this.roomId);
    this.engine = o.engine === "duckdb" ? new DuckDbEngine() : new ArqueroEngine();
    this.db.exec(`CREATE TABLE IF NOT EXISTS lab_datasets (room_id TEXT NOT NULL, key TEXT NOT NULL, meta_json TEXT NOT NULL, PRIMARY KEY (room_id, key));
      CREATE TABLE IF NOT EXISTS lab_parties (room_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (room_id, name));`);
    if (o.budget) this.ledger.createBudget(this.roomId, this.collaborationKey(), this.budgetTotal(o.budget.epsilon ?? o.budget.rho), { refresh: o.budget.refresh ?? "none" });
    // a restart (or a second kernel) sees the parties and sealed datasets already there
    for (const r of this.db.prepare("SELECT name FROM lab_parties WHERE room_id = ?").all(this.roomId) as { name: string }[]) this.#parties.add(r.name);
    for (const r of this.db.prepare("SELECT key, meta_json FROM lab_datasets WHERE room_id = ?").all(this.roomId) as { key: string; meta_json: string }[])
      this.#meta.set(r.key, JSON.parse(r.meta_json));
  }

  /** Label for results this lab produces. */
  get stamp(): RngStamp {
    return rngStamp(this.rng);
  }

  private collaborationKey(): BudgetKey {
    return { scope: "collaboration", subject: this.roomId };
  }

  private budgetTotal(amount: string | number | undefined): PrivacyCost {
    const b = this.#budget;
    if (!b || amount === undefined) return invalid("budget.epsilon", "a budget (epsilon or rho)", amount, "DP_PARAM_INVALID");
    const a = String(amount);
    if (b.rho !== undefined) return zCdp(a);
    return b.delta !== undefined ? approxDp(a, String(b.delta)) : pureDp(a);
  }

  /**
   * Register (or re-open) a party. Each party gets its own budget when the room has one.
   * @example const advertiser = lab.party("advertiser")
   */
  party(name: string): Party {
    if (typeof name !== "string" || !NAME.test(name)) invalid("name", "party name [a-z][a-z0-9_-]{0,31}", name);
    if (this.#budget) {
      const b = this.#budget;
      this.ledger.createBudget(this.roomId, { scope: "party", subject: name }, this.budgetTotal(b.perParty ?? b.epsilon ?? b.rho), { refresh: b.refresh ?? "none" });
    }
    this.db.prepare("INSERT OR IGNORE INTO lab_parties (room_id, name) VALUES (?, ?)").run(this.roomId, name);
    this.#parties.add(name);
    return Object.freeze({ name });
  }

  private requireParty(p: unknown, field: string): string {
    const name = typeof p === "string" ? p : (p as Party | undefined)?.name;
    if (typeof name !== "string" || !this.#parties.has(name)) invalid(field, `a party of this room (${[...this.#parties].join(", ") || "none yet"})`, name ?? p, "NOT_FOUND");
    return name;
  }

  /**
   * Upload a party's table: validated against its schema, tagged with allowed purposes,
   * sealed under per-purpose keys. Nothing is stored unless every row is valid.
   *
   * @example
   * lab.upload(retailer, "purchases", rows, { idColumn: "join_key", purposes: ["measurement"],
   *   schema: { columns: { join_key: { type: "string" }, value_cents: { type: "int", min: 0, max: 100000 } } } })
   */
  upload(party: Party | string, name: string, data: unknown, opts: UploadOptions): UploadReceipt {
    const owner = this.requireParty(party, "party");
    if (!opts || typeof opts !== "object") invalid("options", "{ schema, purposes, idColumn? }", opts);
    const key = `${owner}/${name}`;
    if (this.#meta.has(key)) invalid("name", "a dataset name not yet used by this party", name, "ALREADY_EXISTS");
    const schema = { ...(opts.schema ?? {}), privacyUnit: opts.schema?.privacyUnit ?? opts.idColumn };
    // rows as objects are accepted too (what PSI attachment and generators hand over)
    const input = Array.isArray(data) ? (data.length ? aq.from(data) : aq.table(Object.fromEntries(Object.keys(schema.columns ?? {}).map((c) => [c, []])))) : data;
    const rule = opts.rule === undefined ? null : parseAnalysisRule(opts.rule);
    const ds = loadDataset(name, owner, input, schema); // validates every row before anything is stored
    if (opts.purposes === undefined) invalid("options.purposes", "allowed purposes, e.g. [\"measurement\"]", undefined, "PURPOSE_UNKNOWN");
    const tags = { purposes: Array.isArray(opts.purposes) ? opts.purposes : [opts.purposes], ...(opts.categories ? { categories: opts.categories } : {}), ...(opts.columns ? { columns: opts.columns } : {}) };
    const bytes = serializeTable(ds.table);
    const budgetKey = datasetBudgetKey(ds.fingerprint);
    const total = this.#budget ? this.budgetTotal(this.#budget.epsilon ?? this.#budget.rho) : null;
    const meta = { name, owner, schema: ds.schema, rows: ds.rows, fingerprint: ds.fingerprint, purposes: tags.purposes, rule };
    this.db.transaction(() => {
      const info = this.purpose.upload({ party: owner, analyst: opts.analyst ?? "owner", datasetId: key, bytes, tags });
      meta.purposes = info.label.allow;
      // budget per content fingerprint: re-uploading the same rows under a new name shares it
      if (total) this.ledger.createBudget(this.roomId, budgetKey, total, { refresh: this.#budget?.refresh ?? "none" });
      this.db.prepare("INSERT INTO lab_datasets (room_id, key, meta_json) VALUES (?, ?, ?)").run(this.roomId, key, JSON.stringify(meta));
    })();
    this.#meta.set(key, meta);
    return Object.freeze({ kind: "dataset" as const, ...describeDataset({ ...ds }), purposes: meta.purposes, sealed: true as const });
  }

  /** Descriptions of `party`'s own datasets (never another party's, never values). */
  datasets(party: Party | string): DatasetDescription[] {
    const owner = this.requireParty(party, "party");
    return [...this.#meta.values()].filter((m) => m.owner === owner).map((m) => describeDataset({ ...m, table: aq.table({}) as Table }));
  }

  /** Planner context over metadata; tables only where the purpose gate released them. */
  planContext(released: Record<string, Table> = {}): PlanContext {
    return {
      dataset: (owner, name) => {
        const m = this.#meta.get(`${owner}/${name}`);
        if (!m) throw new CleanRoomError("NOT_FOUND", `"dataset" expected an uploaded dataset, got none named ${owner}/${name}`, { field: "dataset" });
        const table = released[`${owner}/${name}`] ?? (aq.table(Object.fromEntries(Object.keys(m.schema.columns).map((c) => [c, []]))) as Table);
        return { name: m.name, owner: m.owner, schema: m.schema, rows: m.rows, fingerprint: m.fingerprint, table };
      },
      rule: (owner, name) => this.#meta.get(`${owner}/${name}`)?.rule ?? undefined,
    };
  }

  /**
   * A data owner approves a template (plan data). It runs only once every owner of its
   * inputs has approved the same canonical hash.
   * @example lab.approveTemplate(t, retailer); lab.approveTemplate(t, advertiser).approved // true
   */
  approveTemplate(template: unknown, by: Party | string): ApprovalStatus {
    const party = this.requireParty(by, "by");
    const entry = (outcome: "granted" | "refused", templateHash: string | null, errorCode: string | null) =>
      this.purpose.audit.append({ action: "approveTemplate", who: { party }, templateHash, outcome, errorCode: errorCode as never });
    let status: ApprovalStatus;
    try {
      status = this.templates.approve(template, party, this.planContext());
    } catch (e) {
      let hash: string | null = null;
      try {
        hash = templateHash(parseTemplate(template));
      } catch {
        /* unparseable: no hash to record */
      }
      entry("refused", hash, isCleanRoomError(e) ? e.code : "INTERNAL");
      throw e;
    }
    entry("granted", status.templateHash, null);
    return status;
  }

  /**
   * Issue a signed purpose grant (audited, granted or refused).
   * @example lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 lift" })
   */
  declarePurpose(input: { party: Party | string; analyst: string; purpose: string; justification: string; ttlSeconds?: number }): PurposeGrant {
    const party = this.requireParty(input?.party, "party");
    return this.purpose.declarePurpose({ ...input, party });
  }

  /**
   * Run an approved template under a declared purpose: purpose gate → approval → plan →
   * cost → atomic charge → engine → noise → thresholds → audit. Throws a CleanRoomError whose
   * `details.trace` says which step refused.
   *
   * @example
   * const r = await lab.cleanRoomQuery({ template: t, params: { startDay: 0, endDay: 27 },
   *   as: { party: "advertiser", analyst: "bo" }, purpose: "measurement" })
   */
  async cleanRoomQuery(req: QueryRequest): Promise<CleanRoomResult> {
    const trace = traceOf();
    let template: Template;
    let requester: Requester;
    try {
      if (!req || typeof req !== "object") invalid("request", "{ template, params, as, purpose }", req);
      requester = { party: this.requireParty(req.as?.party, "as.party"), analyst: req.as?.analyst };
      if (typeof requester.analyst !== "string" || !NAME.test(requester.analyst)) invalid("as.analyst", "analyst short name [a-z][a-z0-9_-]{0,31}", requester.analyst);
      if (typeof req.purpose !== "string" || req.purpose.length === 0) invalid("purpose", "a declared purpose, e.g. \"measurement\"", req.purpose, "PURPOSE_UNKNOWN");
      template = this.resolveTemplate(req.template);
      trace.ok("parse");
    } catch (e) {
      throw trace.refuse("parse", e);
    }
    const hash = templateHash(template);
    const inputs = [template.base, ...(template.events ? [template.events] : [])].map((i) => ({ datasetId: `${i.owner}/${i.dataset}` }));
    let authorized: ReturnType<PurposeRoom["authorizeQuery"]>;
    try {
      authorized = this.purpose.authorizeQuery({ grant: req.grant, requester, purpose: req.purpose, templateHash: hash, inputs });
      trace.ok("purpose", `granted for ${authorized.purpose}`);
    } catch (e) {
      throw trace.refuse("purpose", e); // audited by the purpose layer
    }
    const record = (outcome: "granted" | "refused", cost: PrivacyCost | null, errorCode: string | null = null) =>
      this.purpose.recordQuery({ requester, purpose: authorized.purpose, grantId: authorized.grantId, templateHash: hash, datasets: inputs.map((i) => i.datasetId), privacyCost: cost ? auditCost(cost) : null, outcome, errorCode: errorCode as never });
    let prep: PreparedQuery;
    try {
      const released: Record<string, Table> = {};
      for (const [id, bytes] of Object.entries(authorized.tables)) released[id] = deserializeTable(bytes);
      prep = prepareQuery({ template, params: req.params ?? {}, registry: this.templates, ctx: this.planContext(released) });
      trace.ok("rule", "approved by every data owner").ok("plan").ok("cost", prep.cost ? "computed before running" : "threshold only, no DP cost");
    } catch (e) {
      record("refused", null, isCleanRoomError(e) ? e.code : "INTERNAL");
      throw trace.refuse(isCleanRoomError(e) && e.code === "PARAM_INVALID" ? "plan" : "rule", e);
    }
    let charged: CleanRoomResult["charged"] = null;
    try {
      charged = this.charge(prep, requester.party, authorized.purpose);
      if (charged) trace.ok("budget", `charged ${charged.text}`);
      else trace.skip("budget", "no DP noise in this template");
    } catch (e) {
      record("refused", prep.cost, isCleanRoomError(e) ? e.code : "INTERNAL");
      throw trace.refuse("budget", e);
    }
    try {
      const n = ++this.#queries;
      const result = await executeQuery(prep, { engine: this.engine, rng: this.rng.fork(`query:${n}`), history: this.history, resultId: charged?.chargeId ?? `${hash}:${n}:${hex(this.rng.bytes(8))}` });
      trace.ok("execute", this.engine.name).ok("threshold", `${result.suppressed.rows.length} row(s) suppressed (minimum ${result.suppressed.minimum})`);
      record("granted", prep.cost);
      trace.ok("audit");
      return { ...result, purpose: authorized.purpose, charged, trace: trace.steps };
    } catch (e) {
      // the charge stands: a refusal after execution (threshold "error" style, difference check) can leak
      record("refused", prep.cost, isCleanRoomError(e) ? e.code : "INTERNAL");
      throw trace.refuse(isCleanRoomError(e) && (e.code === "THRESHOLD_NOT_MET" || e.code === "DIFFERENCE_CHECK_FAILED") ? "threshold" : "execute", e);
    }
  }

  /**
   * The atomic check-and-charge of a prepared query against the collaboration's, the asking
   * party's and every input dataset's budget (keyed by content fingerprint). `null` when the
   * template adds no noise. Throws BUDGET_EXCEEDED / BUDGET_NOT_FOUND with nothing charged.
   */
  charge(prep: PreparedQuery, party: string, purpose: string): { text: string; chargeId: string } | null {
    if (!prep.cost) return null;
    if (!this.#budget) throw new CleanRoomError("BUDGET_NOT_FOUND", "this template adds DP noise but the room has no privacy budget: open the lab with { budget: { epsilon } }", { field: "budget" });
    const keys: BudgetKey[] = [this.collaborationKey(), { scope: "party", subject: party }];
    for (const fp of new Set(Object.values(prep.fingerprints))) keys.push(datasetBudgetKey(fp));
    // integrity (issue 14 #7): the charge and its audit entry commit as one transaction
    const cost = prep.cost;
    const receipt = this.purpose.chargeQuery({ party, purpose, templateHash: prep.templateHash, cost: auditCost(cost), budgets: keys.map((k) => `${k.scope}/${k.subject}`) },
      () => this.ledger.chargeAtomic(this.roomId, keys, cost, { templateHash: prep.templateHash, purpose, party }));
    return { text: receipt.requested.text, chargeId: receipt.chargeId };
  }

  resolveTemplate(t: unknown): Template {
    if (typeof t === "string") {
      const row = this.db.prepare("SELECT canonical FROM cleanroom_templates WHERE room_id = ? AND template_hash = ?").get(this.roomId, t) as { canonical: string } | undefined;
      if (!row) invalid("template", "an approved template or its hash", t, "QUERY_NOT_APPROVED");
      return parseTemplate(JSON.parse(row.canonical));
    }
    return parseTemplate(t);
  }

  /**
   * Spent, remaining and what the remaining budget buys.
   * @example lab.budget({ queries: [{ name: "lift", cost: pureDp("0.5") }], target: { accuracy: 50, confidence: 0.95 } })
   */
  budget(opts: { queries?: { name: string; cost: PrivacyCost }[]; target?: AccuracyTarget } = {}): BudgetReport & RngStamp {
    return { ...budgetReport(this.ledger.status(this.roomId), opts), ...this.stamp };
  }

  /** Verify the audit chain and show it with the misuse review. @example lab.audit().verification.ok */
  audit(opts: { limit?: number } = {}): ReturnType<PurposeRoom["auditReport"]> {
    return this.purpose.auditReport(opts);
  }

  /** Close the database (the ledger stays on disk). */
  close(): void {
    this.db.close();
  }
}

/**
 * Open (or re-open) a clean room.
 *
 * @example
 * const lab = openLab({ store: "./study.db", rng: { seed: "course" }, budget: { epsilon: 3, refresh: "none" } })
 */
export function openLab(options: OpenLabOptions = {}): Lab {
  return new Lab(options);
}

export type { RefreshPolicy };
