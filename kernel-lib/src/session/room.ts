/**
 * The room: the state behind one `Lab` (internal; notebooks hold the `Lab`).
 *
 * One embedded database (better-sqlite3, WAL) holds the privacy ledger, the audit chain,
 * approvals, sealed datasets and the difference-check history, so a kernel restart — or a
 * second kernel on the same file — continues where the last one stopped and can never
 * overspend. This module owns the pieces every road shares: parties, the plain catalog, the
 * planner context, template resolution, the ONE place that charges the ledger (`charge`) and
 * the ONE upload road (`upload`), whose only variable part is a {@link Sealing} strategy
 * (the purpose gate over the table itself, or over an owner-sealed blob in enclave mode).
 *
 * Threat model: see session/keys.ts for the secrets; nothing here is reachable from a
 * notebook except through `Lab`'s public methods (and the documented `internals(lab)` for
 * tests and the enclave mode).
 */
import Database from "better-sqlite3";
import { aq } from "../cleanroom/arquero.js";
import type { z } from "zod";
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { makeRng, type Rng } from "../rng.js";
import { PrivacyLedger, type BudgetKey } from "../dp/ledger.js";
import { datasetBudgetKey } from "../dp/budget.js";
import { approxDp, pureDp, zCdp, type PrivacyCost } from "../dp/accountant.js";
import { PurposeRoom } from "../purpose/room.js";
import { TemplateRegistry, type ApprovalStatus } from "../cleanroom/approvals.js";
import { loadDatasetSteps, type Dataset, type Table } from "../cleanroom/dataset.js";
import { runSteps, type Steps } from "../steps.js";

/** The phase of an upload after validation: serialize, seal, commit. */
export const STORE_PHASE = "seal and store";
import { DifferenceHistory } from "../cleanroom/diffcheck.js";
import { ArqueroEngine, type QueryEngine } from "../cleanroom/engine.js";
import { DuckDbEngine } from "../cleanroom/duckdb.js";
import type { PreparedQuery } from "../cleanroom/query.js";
import type { PlanContext } from "../cleanroom/plan.js";
import { parseAnalysisRule, type AnalysisRule } from "../cleanroom/rules.js";
import { parseTemplate, templateHash, type Template } from "../cleanroom/template.js";
import { serializeTable } from "../cleanroom/serialize.js";
import { fileBackedTable, PreparedFile, privateDir, sweepFiles } from "../cleanroom/file-dataset.js";
import { removePrivateDir } from "../cleanroom/file-seal.js";
import { faultPoint } from "../faults.js";
import { fileAnchor } from "../purpose/anchor.js";
import { settleRoomBudget } from "../dp/room-config.js";
import { auditCost } from "../purpose/audit.js";
import { loadSecrets, type Secrets } from "./keys.js";
import { OpenLabOptions, type BudgetConfig, type Party, type UploadOptions } from "./types.js";

function parseOpts<T>(schema: z.ZodType<T>, input: unknown, field: string): T {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = [field, ...issue.path.map(String)].join(".");
  throw new CleanRoomError("PARAM_INVALID", `"${path}" ${issue.message}`, { field: path, expected: issue.message });
}

/** Catalog metadata of one plain-mode dataset (no values). */
export type PlainMeta = Omit<Dataset, "table"> & {
  purposes: string[];
  rule: AnalysisRule | null;
  /** File-backed (DuckDB labs, `upload({ path })`): the sealed file's name in the room's files directory and its size. */
  storage?: { file: string; bytes: number };
};

/** The dataset tags the purpose gate reads (dataset + column labels). */
export interface UploadTags {
  purposes: string[];
  categories?: string[];
  columns?: UploadOptions["columns"];
}

/** What a validated upload hands its sealing strategy. */
export interface ValidatedUpload {
  owner: string;
  name: string;
  key: string;
  ds: Dataset;
  /** The table serialized (Arrow IPC): plaintext, on the uploader's side. */
  bytes: Uint8Array;
  rule: AnalysisRule | null;
  tags: UploadTags;
  analyst: string;
  /** A file-backed upload: `bytes` is then its descriptor (file name + key), not the table. */
  file?: PreparedFile;
}

/**
 * How the upload road seals a table: plain (the purpose gate seals the table itself and the
 * room catalogs it) or owner-sealed (enclave mode: the owner keeps the plaintext and hands
 * the gate only a blob sealed under its own key).
 */
export interface Sealing<R> {
  /** Is `key` already taken in this mode (beyond the plain catalog)? */
  taken(key: string): boolean;
  /** A re-attach after a restart: returns a receipt instead of storing anything new, or null. */
  reattach(u: ValidatedUpload): R | null;
  /** The bytes the purpose gate labels and seals. */
  seal(u: ValidatedUpload): Uint8Array;
  /** Inside the upload transaction: catalog the metadata. */
  catalog(u: ValidatedUpload, purposes: string[]): void;
  /** After commit: the receipt (and whatever the owner keeps). */
  done(u: ValidatedUpload, purposes: string[], storedBytes: number): R;
  /** Can this strategy store a file-backed upload (a {@link PreparedFile})? Only the plain gate can. */
  readonly files?: boolean;
}

export class Room {
  readonly roomId: string;
  readonly rng: Rng;
  readonly store: string;
  readonly db: Database.Database;
  readonly ledger: PrivacyLedger;
  readonly purpose: PurposeRoom;
  readonly templates: TemplateRegistry;
  readonly history: DifferenceHistory;
  readonly engine: QueryEngine;
  /** 32-byte secret of the simulated hardware root of this room's enclaves. */
  readonly enclaveRootKey: Uint8Array;
  /** Where enclave mode's enclaves run: in this process (default) or each in its own OS process. */
  readonly enclaveHost: "in-process" | "process";
  readonly budgetConfig: BudgetConfig | undefined;
  readonly #parties = new Set<string>();
  readonly #meta = new Map<string, PlainMeta>();
  #filesDir: string | null = null;

  constructor(input: OpenLabOptions = {}) {
    const o = parseOpts(OpenLabOptions, input, "options");
    this.roomId = o.room ?? "lab";
    const root = makeRng(o.rng);
    this.store = o.store ?? "./cleanroom-lab.db";
    this.enclaveHost = o.enclave ?? "in-process";
    if (o.budget) {
      // One accountant per room: { epsilon, rho } together used to build a ρ budget out of the ε
      // value (budget { epsilon: 1, rho: 0.01 } became ρ = 1, a hundred times the ρ asked for).
      if (o.budget.rho !== undefined && (o.budget.epsilon !== undefined || o.budget.delta !== undefined))
        invalid(
          "options.budget",
          "either { epsilon[, delta] } (pure or approximate DP) or { rho } (zCDP), not both",
          "both",
          "DP_PARAM_INVALID",
        );
      if (o.budget.delta !== undefined && o.budget.epsilon === undefined)
        invalid("options.budget.delta", "delta together with epsilon", "delta alone", "DP_PARAM_INVALID");
    }
    this.db = new Database(this.store);
    this.ledger = new PrivacyLedger(this.db);
    // the room's budget lives in the room: stored at first open, reused when omitted, a different one refused
    try {
      this.budgetConfig = settleRoomBudget(this.db, this.roomId, o.budget);
    } catch (e) {
      this.db.close();
      throw e;
    }
    // Each open of the room is an epoch: a seeded lab re-opened after a kernel restart
    // continues a fresh (still reproducible) stream instead of replaying ids and noise.
    this.db.exec(`CREATE TABLE IF NOT EXISTS lab_opens (room_id TEXT PRIMARY KEY, opens INTEGER NOT NULL)`);
    const epoch = this.db
      .transaction(() => {
        this.db
          .prepare("INSERT INTO lab_opens (room_id, opens) VALUES (?, 1) ON CONFLICT(room_id) DO UPDATE SET opens = opens + 1")
          .run(this.roomId);
        return (this.db.prepare("SELECT opens FROM lab_opens WHERE room_id = ?").get(this.roomId) as { opens: number }).opens;
      })
      .immediate();
    this.rng = epoch === 1 ? root : root.fork(`open:${epoch}`);
    let loaded: Secrets;
    try {
      loaded = loadSecrets(this.store, this.rng.fork("secrets"));
    } catch (e) {
      this.db.close();
      throw e;
    }
    const { enclaveRootKey, ...secrets } = loaded;
    this.enclaveRootKey = enclaveRootKey;
    const auditAnchor = this.store === ":memory:" ? undefined : fileAnchor(`${this.store}.audit-heads.json`, this.roomId);
    this.purpose = new PurposeRoom(this.db, {
      roomId: this.roomId,
      rng: this.rng.fork("purpose"),
      ...secrets,
      ...(auditAnchor ? { auditAnchor } : {}),
      ledger: this.ledger,
    });
    this.templates = new TemplateRegistry(this.db, this.roomId);
    this.history = new DifferenceHistory(this.db, this.roomId);
    this.engine = o.engine === "duckdb" ? new DuckDbEngine() : new ArqueroEngine();
    this.db
      .exec(`CREATE TABLE IF NOT EXISTS lab_datasets (room_id TEXT NOT NULL, key TEXT NOT NULL, meta_json TEXT NOT NULL, PRIMARY KEY (room_id, key));
      CREATE TABLE IF NOT EXISTS lab_parties (room_id TEXT NOT NULL, name TEXT NOT NULL, PRIMARY KEY (room_id, name));`);
    if (o.budget)
      this.ledger.createBudget(this.roomId, this.#collaborationKey(), this.#budgetTotal(o.budget.epsilon ?? o.budget.rho), {
        refresh: o.budget.refresh ?? "none",
      });
    // a restart (or a second kernel) sees the parties and sealed datasets already there
    for (const r of this.db.prepare("SELECT name FROM lab_parties WHERE room_id = ?").all(this.roomId) as { name: string }[])
      this.#parties.add(r.name);
    for (const r of this.db.prepare("SELECT key, meta_json FROM lab_datasets WHERE room_id = ?").all(this.roomId) as {
      key: string;
      meta_json: string;
    }[])
      this.#meta.set(r.key, JSON.parse(r.meta_json));
    // a file upload killed before its catalog commit left a file no catalog row names (any room of this store)
    if (this.store !== ":memory:") {
      const referenced = new Set(
        (this.db.prepare("SELECT json_extract(meta_json, '$.storage.file') AS f FROM lab_datasets").all() as { f: string | null }[])
          .map((r) => r.f)
          .filter((f): f is string => typeof f === "string"),
      );
      sweepFiles(this.filesDir(), referenced);
    }
  }

  /**
   * Where file-backed datasets are kept: `<store>.files/` beside a store file; a private
   * temporary directory (removed at exit) for a `:memory:` store.
   */
  filesDir(): string {
    return (this.#filesDir ??= this.store === ":memory:" ? privateDir("crl-room-files-", false) : `${this.store}.files`);
  }

  #collaborationKey(): BudgetKey {
    return { scope: "collaboration", subject: this.roomId };
  }

  #budgetTotal(amount: string | number | undefined): PrivacyCost {
    const b = this.budgetConfig;
    if (!b || amount === undefined) return invalid("budget.epsilon", "a budget (epsilon or rho)", amount, "DP_PARAM_INVALID");
    const a = String(amount);
    if (b.rho !== undefined) return zCdp(a);
    return b.delta !== undefined ? approxDp(a, String(b.delta)) : pureDp(a);
  }

  /** Register a party (and its own budget when the room has one). */
  addParty(name: string): void {
    if (this.budgetConfig) {
      const b = this.budgetConfig;
      this.ledger.createBudget(this.roomId, { scope: "party", subject: name }, this.#budgetTotal(b.perParty ?? b.epsilon ?? b.rho), {
        refresh: b.refresh ?? "none",
      });
    }
    this.db.prepare("INSERT OR IGNORE INTO lab_parties (room_id, name) VALUES (?, ?)").run(this.roomId, name);
    this.#parties.add(name);
  }

  requireParty(p: unknown, field: string): string {
    const name = typeof p === "string" ? p : (p as Party | undefined)?.name;
    if (typeof name !== "string" || !this.#parties.has(name))
      invalid(field, `a party of this room (${[...this.#parties].join(", ") || "none yet"})`, name ?? p, "NOT_FOUND");
    return name;
  }

  /** Owner and name of every plain-mode dataset with its content fingerprint (no values). */
  catalogNames(): { owner: string; name: string; fingerprint: string }[] {
    return [...this.#meta.values()].map((m) => ({ owner: m.owner, name: m.name, fingerprint: m.fingerprint }));
  }

  /** Plain-mode catalog entries of `owner`. */
  plainDatasets(owner: string): PlainMeta[] {
    return [...this.#meta.values()].filter((m) => m.owner === owner);
  }

  /** Planner context over metadata; tables only where the purpose gate released them. */
  planContext(released: Record<string, Table> = {}): PlanContext {
    return {
      dataset: (owner, name) => {
        const m = this.#meta.get(`${owner}/${name}`);
        if (!m)
          throw new CleanRoomError("NOT_FOUND", `"dataset" expected an uploaded dataset, got none named ${owner}/${name}`, {
            field: "dataset",
          });
        const table =
          released[`${owner}/${name}`] ?? (aq().table(Object.fromEntries(Object.keys(m.schema.columns).map((c) => [c, []]))) as Table);
        return { name: m.name, owner: m.owner, schema: m.schema, rows: m.rows, fingerprint: m.fingerprint, table };
      },
      rule: (owner, name) => this.#meta.get(`${owner}/${name}`)?.rule ?? undefined,
    };
  }

  /**
   * A data owner approves a template over the inputs `ctx` plans with (plain catalog, or the
   * enclave-mode catalog). Audited, granted or refused.
   */
  approve(template: unknown, party: string, ctx: PlanContext): ApprovalStatus {
    const entry = (outcome: "granted" | "refused", hash: string | null, errorCode: string | null) =>
      this.purpose.audit.append({ action: "approveTemplate", who: { party }, templateHash: hash, outcome, errorCode: errorCode as never });
    let status: ApprovalStatus;
    try {
      status = this.templates.approve(template, party, ctx);
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

  /** An approved template by hash, or template plan data, parsed. */
  resolveTemplate(t: unknown): Template {
    if (typeof t === "string") {
      const row = this.db
        .prepare("SELECT canonical FROM cleanroom_templates WHERE room_id = ? AND template_hash = ?")
        .get(this.roomId, t) as { canonical: string } | undefined;
      if (!row) invalid("template", "an approved template or its hash", t, "QUERY_NOT_APPROVED");
      return parseTemplate(JSON.parse(row.canonical));
    }
    return parseTemplate(t);
  }

  /**
   * The atomic check-and-charge of a prepared query against the collaboration's, the asking
   * party's and every input dataset's budget (keyed by content fingerprint). `null` when the
   * template adds no noise. Throws BUDGET_EXCEEDED / BUDGET_NOT_FOUND with nothing charged.
   * The only place a query touches the ledger.
   */
  charge(prep: PreparedQuery, party: string, purpose: string): { text: string; chargeId: string } | null {
    if (!prep.cost) return null;
    if (!this.budgetConfig)
      throw new CleanRoomError(
        "BUDGET_NOT_FOUND",
        "this template adds DP noise but the room has no privacy budget: open the lab with { budget: { epsilon } }",
        { field: "budget" },
      );
    return this.chargeRelease(prep.cost, party, purpose, Object.values(prep.fingerprints), prep.templateHash, false);
  }

  /**
   * The same atomic check-and-charge for any release whose cost is known before it runs (a
   * query above; a DP-SGD training run from verbs/ml.ts): the collaboration's, the party's and
   * each input dataset's budget (by content fingerprint; with `createDatasetBudgets` a dataset
   * budget that does not exist yet is created with the room's total first, as an upload does), and the `charge` audit entry,
   * in one transaction. Throws BUDGET_EXCEEDED with nothing charged.
   */
  chargeRelease(
    cost: PrivacyCost,
    party: string,
    purpose: string,
    fingerprints: string[],
    releaseHash: string,
    createDatasetBudgets = true,
  ): { text: string; chargeId: string } {
    if (!this.budgetConfig)
      throw new CleanRoomError(
        "BUDGET_NOT_FOUND",
        "this release adds DP noise but the room has no privacy budget: open the lab with { budget }",
        {
          field: "budget",
        },
      );
    const keys: BudgetKey[] = [this.#collaborationKey(), { scope: "party", subject: party }];
    for (const fp of new Set(fingerprints)) keys.push(datasetBudgetKey(fp));
    const b = this.budgetConfig;
    // the charge and its audit entry commit as one transaction (a kill between them leaves neither); missing
    // dataset budgets are created inside it (idempotent: an existing one, from any room of the store, stands),
    // so a refused charge leaves no new budget behind either
    const receipt = this.purpose.chargeQuery(
      { party, purpose, templateHash: releaseHash, cost: auditCost(cost), budgets: keys.map((k) => `${k.scope}/${k.subject}`) },
      () => {
        if (createDatasetBudgets)
          for (const k of keys.slice(2))
            this.ledger.createBudget(this.roomId, k, this.#budgetTotal(b.epsilon ?? b.rho), { refresh: b.refresh ?? "none" });
        return this.ledger.chargeAtomic(this.roomId, keys, cost, { templateHash: releaseHash, purpose, party });
      },
    );
    return { text: receipt.requested.text, chargeId: receipt.chargeId };
  }

  /** The room's accountant and (for approximate DP) its δ; null without a budget. */
  budgetUnits(): { accountant: "pureDp" | "approxDp" | "zCdp"; delta: string | null } | null {
    const b = this.budgetConfig;
    if (!b) return null;
    if (b.rho !== undefined) return { accountant: "zCdp", delta: null };
    return b.delta !== undefined ? { accountant: "approxDp", delta: String(b.delta) } : { accountant: "pureDp", delta: null };
  }

  /**
   * The one upload road: party → options → name free → schema, rule and every row validated
   * (nothing stored unless all are valid) → seal (strategy) → in ONE transaction: purpose
   * gate label + seal, the dataset's budget (per content fingerprint: re-uploading the same
   * rows under a new name shares it), catalog → receipt.
   */
  upload<R>(party: Party | string, name: string, data: unknown, opts: UploadOptions, sealing: Sealing<R>): R {
    return runSteps(this.uploadSteps(party, name, data, opts, sealing));
  }

  /**
   * {@link Room.upload} in steps (reports: "validate columns" per column, then "seal and
   * store"), for a caller that yields to the event loop in between (`runStepsAsync`). Every
   * yield comes before the first write; the name is checked again after the last one.
   */
  *uploadSteps<R>(party: Party | string, name: string, data: unknown, opts: UploadOptions, sealing: Sealing<R>): Steps<R> {
    const file = data instanceof PreparedFile ? data : undefined;
    try {
      return yield* this.#uploadSteps(party, name, data, opts, sealing, file);
    } finally {
      file?.discard(); // no-op once catalogued; otherwise nothing of a refused upload stays
    }
  }

  *#uploadSteps<R>(
    party: Party | string,
    name: string,
    data: unknown,
    opts: UploadOptions,
    sealing: Sealing<R>,
    file: PreparedFile | undefined,
  ): Steps<R> {
    if (file && !sealing.files)
      throw new CleanRoomError(
        "INPUT_INVALID",
        `"sealing" expected the purpose gate for a file-backed upload (enclave sealing reads the file into a table)`,
        {
          field: "sealing",
        },
      );
    const owner = this.requireParty(party, "party");
    if (!opts || typeof opts !== "object") invalid("options", "{ schema, purposes, idColumn? }", opts);
    const key = `${owner}/${name}`;
    const free = () => {
      if (this.#meta.has(key) || sealing.taken(key)) invalid("name", "a dataset name not yet used by this party", name, "ALREADY_EXISTS");
    };
    free();
    // validates every row before anything is stored; a file-backed upload was validated by DuckDB
    // (file-dataset.ts) — its name, owner and schema take the same checks over a zero-row table
    const u = yield* validateUploadSteps(owner, name, data, opts, file);
    yield { phase: STORE_PHASE, done: 0, total: 1 };
    // no yield from here to the commit: another upload may have taken the name meanwhile
    free();
    const again = sealing.reattach(u);
    if (again !== null) return again;
    const stored = sealing.seal(u);
    const purposes = this.commitUpload(
      { owner, key, fingerprint: u.ds.fingerprint, tags: u.tags, analyst: u.analyst, ...(u.file ? { file: u.file } : {}) },
      stored,
      (p) => sealing.catalog(u, p),
    );
    return sealing.done(u, purposes, stored.length);
  }

  /**
   * The cheap checks of an upload to this (plain) lab — party, options, purposes given, rule, name
   * free — for a caller about to read a file (`upload({ path })`), so these refusals come before any
   * file is read or written. The road repeats every one of them.
   */
  precheckUpload(party: Party | string, name: string, opts: UploadOptions): void {
    const owner = this.requireParty(party, "party");
    if (!opts || typeof opts !== "object") invalid("options", "{ schema, purposes, idColumn? }", opts);
    if (this.#meta.has(`${owner}/${name}`)) invalid("name", "a dataset name not yet used by this party", name, "ALREADY_EXISTS");
    if (opts.purposes === undefined) invalid("options.purposes", 'allowed purposes, e.g. ["measurement"]', undefined, "PURPOSE_UNKNOWN");
    if (opts.rule !== undefined) parseAnalysisRule(opts.rule);
  }

  /** Is `key` (`owner/name`) taken in the plain catalog? */
  hasPlain(key: string): boolean {
    return this.#meta.has(key);
  }

  /**
   * The store step of the upload road, in ONE transaction: purpose gate label + seal of
   * `stored`, the dataset's budget (per content fingerprint), `catalog` → the allowed purposes.
   * Also the road's end for an owner-sealed blob validated in the owner's own kernel (a joined
   * room in enclave mode: server/enclave-ops.ts).
   */
  commitUpload(
    u: { owner: string; key: string; fingerprint: string; tags: UploadTags; analyst: string; file?: PreparedFile },
    stored: Uint8Array,
    catalog: (purposes: string[]) => void,
  ): string[] {
    const b = this.budgetConfig;
    const total = b ? this.#budgetTotal(b.epsilon ?? b.rho) : null;
    let purposes: string[] = [];
    u.file?.commit(); // the sealed file under its final name, durably, before the catalog names it
    this.db.transaction(() => {
      purposes = this.purpose.upload({ party: u.owner, analyst: u.analyst, datasetId: u.key, bytes: stored, tags: u.tags }).label.allow;
      if (total) this.ledger.createBudget(this.roomId, datasetBudgetKey(u.fingerprint), total, { refresh: b?.refresh ?? "none" });
      catalog(purposes);
      if (u.file) faultPoint("file.beforeCatalogCommit");
    })();
    u.file?.catalogued();
    return purposes;
  }

  /** The plain sealing: the gate seals the table itself (or a file's descriptor); the room catalogs its metadata. */
  plainSealing(): Sealing<PlainMeta> {
    const metaOf = (u: ValidatedUpload, purposes: string[]): PlainMeta => ({
      name: u.name,
      owner: u.owner,
      schema: u.ds.schema,
      rows: u.ds.rows,
      fingerprint: u.ds.fingerprint,
      purposes,
      rule: u.rule,
      ...(u.file ? { storage: { file: u.file.finalName, bytes: u.file.sealedBytes } } : {}),
    });
    return {
      files: true,
      taken: () => false,
      reattach: () => null,
      seal: (u) => u.bytes,
      catalog: (u, purposes) =>
        void this.db
          .prepare("INSERT INTO lab_datasets (room_id, key, meta_json) VALUES (?, ?, ?)")
          .run(this.roomId, u.key, JSON.stringify(metaOf(u, purposes))),
      done: (u, purposes) => {
        const meta = metaOf(u, purposes);
        this.#meta.set(u.key, meta);
        return meta;
      },
    };
  }

  close(): void {
    // a :memory: room's files go with it (a store file's stay beside it)
    if (this.store === ":memory:" && this.#filesDir) removePrivateDir(this.#filesDir);
    (this.engine as { close?: () => void }).close?.(); // the DuckDB engine removes its decrypted copies
    this.db.close();
  }
}

/**
 * The validation half of the upload road, with no room state: schema, rule and every row
 * (reports "validate columns"), the tags as given, the table serialized. The lab's road runs it;
 * so does a data owner's own kernel before an enclave upload to a joined room.
 */
export function* validateUploadSteps(
  owner: string,
  name: string,
  data: unknown,
  opts: UploadOptions,
  file?: PreparedFile,
): Steps<ValidatedUpload> {
  if (!opts || typeof opts !== "object") invalid("options", "{ schema, purposes, idColumn? }", opts);
  const schema = { ...(opts.schema ?? {}), privacyUnit: opts.schema?.privacyUnit ?? opts.idColumn };
  // rows as objects are accepted too (what PSI attachment and generators hand over)
  const input = file
    ? null
    : Array.isArray(data)
      ? data.length
        ? aq().from(data)
        : aq().table(Object.fromEntries(Object.keys(schema.columns ?? {}).map((c) => [c, []])))
      : data;
  const rule = opts.rule === undefined ? null : parseAnalysisRule(opts.rule);
  const ds = file ? yield* fileDatasetSteps(name, owner, schema, file) : yield* loadDatasetSteps(name, owner, input, schema);
  if (opts.purposes === undefined) invalid("options.purposes", 'allowed purposes, e.g. ["measurement"]', undefined, "PURPOSE_UNKNOWN");
  const tags: UploadTags = {
    purposes: Array.isArray(opts.purposes) ? opts.purposes : [opts.purposes],
    ...(opts.categories ? { categories: opts.categories } : {}),
    ...(opts.columns ? { columns: opts.columns } : {}),
  };
  return {
    owner,
    name,
    key: `${owner}/${name}`,
    ds,
    bytes: file ? file.descriptor() : serializeTable(ds.table),
    rule,
    tags,
    analyst: opts.analyst ?? "owner",
    ...(file ? { file } : {}),
  };
}

/** The dataset of a file-backed upload: the loader's name/owner/schema checks over a zero-row table, DuckDB's rows and fingerprint. */
function* fileDatasetSteps(name: string, owner: string, schema: unknown, file: PreparedFile): Steps<Dataset> {
  const shell = yield* loadDatasetSteps(
    name,
    owner,
    aq().table(Object.fromEntries(Object.keys(file.schema.columns).map((c) => [c, []]))),
    schema,
  );
  if (JSON.stringify(shell.schema) !== JSON.stringify(file.schema))
    throw new CleanRoomError("INTERNAL", "a file upload was prepared under another schema — this is a bug in cleanroom-lab");
  return Object.freeze({ ...shell, table: fileBackedTable(file.ref()), rows: file.rows, fingerprint: file.fingerprint });
}
