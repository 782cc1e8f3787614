/**
 * The lab session: the one stateful object of cleanroom-lab (DESIGN.md § The house).
 *
 * A `Lab` is one simulated clean room, backed by a {@link Room} (session/room.ts: one SQLite
 * file, the ledger, the audit chain, approvals, sealed datasets). Every query — plain here,
 * enclave in enclave-room.ts — walks the ONE road of session/road.ts; every upload the ONE
 * upload road of `Room.upload`. A refusal leaves no side effect except its own audit entry.
 *
 * The session's internals are private (#fields). What stays public is what notebooks call:
 * the verbs below, `roomId`, `rng`, `stamp`, `store`, and — the operator's own powers, which
 * the teaching notebooks use to play a curious operator or a thief of the database file —
 * `purpose` (the purpose room: taxonomy, rules, its key service and sealed store) and `db`.
 * Tests and the enclave mode reach the rest through {@link internals} (this module only; not
 * exported by `@cleanroom-lab/kernel`).
 *
 * Threat model: see session/keys.ts (the room's secrets never enter the database).
 */
import { runSteps, type Steps } from "../steps.js";
import type Database from "better-sqlite3";
import { aq } from "../cleanroom/arquero.js";
import { invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import type { PrivacyCost } from "../dp/accountant.js";
import { budgetReport, type AccuracyTarget, type BudgetReport } from "../dp/planner.js";
import type { PurposeRoom } from "../purpose/room.js";
import type { PurposeGrant } from "../purpose/policy.js";
import type { ApprovalStatus } from "../cleanroom/approvals.js";
import { describeDataset, type DatasetDescription, type Table } from "../cleanroom/dataset.js";
import { Room } from "./room.js";
import { runQuery, type QueryExecutor, type QueryPhase } from "./road.js";
import { engineExecutor } from "./engine-executor.js";
import { EnclaveMode } from "./enclave-mode.js";
import {
  NAME,
  type CleanRoomResult,
  type OpenLabOptions,
  type Party,
  type QueryRequest,
  type UploadOptions,
  type UploadReceipt,
} from "./types.js";

/** What {@link internals} hands tests and the enclave mode. */
export interface LabInternals {
  /** The room: db, ledger, purpose room, templates, difference history, engine, catalog. */
  room: Room;
  /** The lab's enclave mode (operator + data owners), created on first use. */
  enclave(): EnclaveMode;
}

let reach: (lab: Lab) => LabInternals;

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
  readonly store: string;
  readonly #room: Room;
  readonly #engine: QueryExecutor<null, object>;
  #enclave: EnclaveMode | null = null;

  static {
    reach = (lab) => ({ room: lab.#room, enclave: () => (lab.#enclave ??= new EnclaveMode(lab.#room)) });
  }

  constructor(input: OpenLabOptions = {}) {
    this.#room = new Room(input);
    this.roomId = this.#room.roomId;
    this.rng = this.#room.rng;
    this.store = this.#room.store;
    this.#engine = engineExecutor(this.#room);
  }

  /** Label for results this lab produces. */
  get stamp(): RngStamp {
    return rngStamp(this.rng);
  }

  /** The operator's purpose room (taxonomy, rules, key service, sealed store, audit chain). @example lab.purpose.audit.verify().ok */
  get purpose(): PurposeRoom {
    return this.#room.purpose;
  }

  /** The operator's database handle (what a thief of the room file gets). @example lab.db.prepare("SELECT count(*) AS n FROM purpose_audit_log").get() */
  get db(): Database.Database {
    return this.#room.db;
  }

  /**
   * Register (or re-open) a party. Each party gets its own budget when the room has one.
   * @example const advertiser = lab.party("advertiser")
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  party(name: string): Party {
    if (typeof name !== "string" || !NAME.test(name)) invalid("name", "party name [a-z][a-z0-9_-]{0,31}", name);
    this.#room.addParty(name);
    return Object.freeze({ name });
  }

  /**
   * Upload a party's table: validated against its schema, tagged with allowed purposes,
   * sealed under per-purpose keys. Nothing is stored unless every row is valid.
   *
   * @example
   * lab.upload(retailer, "purchases", rows, { idColumn: "join_key", purposes: ["measurement"],
   *   schema: { columns: { join_key: { type: "string" }, value_cents: { type: "int", min: 0, max: 100000 } } } })
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  upload(party: Party | string, name: string, data: unknown, opts: UploadOptions): UploadReceipt {
    return runSteps(this.uploadSteps(party, name, data, opts));
  }

  /**
   * {@link Lab.upload} in steps (see steps.ts), for the verb's progress bar.
   * @internal
   */
  *uploadSteps(party: Party | string, name: string, data: unknown, opts: UploadOptions): Steps<UploadReceipt> {
    const meta = yield* this.#room.uploadSteps(party, name, data, opts, this.#room.plainSealing());
    return Object.freeze({
      kind: "dataset" as const,
      ...describeDataset({ ...meta, table: aq().table({}) as Table }),
      purposes: meta.purposes,
      sealed: true as const,
    });
  }

  /**
   * Descriptions of `party`'s own datasets (never another party's, never values).
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  datasets(party: Party | string): DatasetDescription[] {
    const owner = this.#room.requireParty(party, "party");
    return this.#room.plainDatasets(owner).map((m) => describeDataset({ ...m, table: aq().table({}) as Table }));
  }

  /**
   * A data owner approves a template (plan data). It runs only once every owner of its
   * inputs has approved the same canonical hash.
   * @example lab.approveTemplate(t, retailer); lab.approveTemplate(t, advertiser).approved // true
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  approveTemplate(template: unknown, by: Party | string): ApprovalStatus {
    const room = this.#room;
    return room.approve(template, room.requireParty(by, "by"), room.planContext());
  }

  /**
   * Issue a signed purpose grant (audited, granted or refused).
   * @example lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 lift" })
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  declarePurpose(input: {
    party: Party | string;
    analyst: string;
    purpose: string;
    justification: string;
    ttlSeconds?: number;
  }): PurposeGrant {
    const party = this.#room.requireParty(input?.party, "party");
    return this.#room.purpose.declarePurpose({ ...input, party });
  }

  /**
   * Run an approved template under a declared purpose: purpose gate → approval → plan →
   * cost → atomic charge → engine → noise → thresholds → audit. Throws a CleanRoomError whose
   * `details.trace` says which step refused.
   *
   * @example
   * const r = await lab.cleanRoomQuery({ template: t, params: { startDay: 0, endDay: 27 },
   *   as: { party: "advertiser", analyst: "bo" }, purpose: "measurement" })
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  async cleanRoomQuery(req: QueryRequest, onPhase?: (name: QueryPhase) => void): Promise<CleanRoomResult> {
    return runQuery(this.#room, req, this.#engine, onPhase);
  }

  /**
   * Spent, remaining and what the remaining budget buys.
   * @example lab.budget({ queries: [{ name: "lift", cost: pureDp("0.5") }], target: { accuracy: 50, confidence: 0.95 } })
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  budget(opts: { queries?: { name: string; cost: PrivacyCost }[]; target?: AccuracyTarget } = {}): BudgetReport & RngStamp {
    return { ...budgetReport(this.#room.ledger.status(this.roomId), opts), ...this.stamp };
  }

  /**
   * Verify the audit chain and show it with the misuse review. @example lab.audit().verification.ok
   * @internal the notebook door is the verb of the same name in verbs/ (one door: validated, rendered)
   */
  audit(opts: { limit?: number } = {}): ReturnType<PurposeRoom["auditReport"]> {
    return this.#room.purpose.auditReport(opts);
  }

  /** Close the database (the ledger stays on disk). */
  close(): void {
    this.#enclave?.operator.close();
    this.#room.close();
  }
}

/**
 * The lab's internals, for tests and the enclave mode (NOT part of `@cleanroom-lab/kernel`).
 * @example internals(lab).room.ledger.status(lab.roomId)
 */
export function internals(lab: Lab): LabInternals {
  if (!(lab instanceof Lab)) invalid("lab", "a Lab from openLab", lab, "INPUT_INVALID");
  return reach(lab);
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
