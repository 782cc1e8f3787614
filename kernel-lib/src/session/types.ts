/**
 * The plain data types of the session's surface: options, parties, requests, receipts and
 * results. No logic, no state (so every module of the session can import them).
 */
import { z } from "zod";
import type { DatasetDescription, DatasetSchema } from "../cleanroom/dataset.js";
import type { QueryResult } from "../cleanroom/release.js";
import type { PurposeGrant } from "../purpose/policy.js";
import type { Trace } from "../trace.js";

/** Party and analyst short names. */
export const NAME = /^[a-z][a-z0-9_-]{0,31}$/;

export const BudgetOptions = z.strictObject({
  /** ε of the collaboration budget (pure or approximate DP). */
  epsilon: z.union([z.string(), z.number()]).optional(),
  delta: z.union([z.string(), z.number()]).optional(),
  /** ρ of the collaboration budget (zCDP). */
  rho: z.union([z.string(), z.number()]).optional(),
  /** Each party's own budget (same unit); defaults to the collaboration's. */
  perParty: z.union([z.string(), z.number()]).optional(),
  refresh: z.enum(["none", "daily", "monthly"]).optional(),
});
export type BudgetConfig = z.infer<typeof BudgetOptions>;

export const OpenLabOptions = z.strictObject({
  /** Room id (default "lab"). */
  room: z
    .string()
    .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/)
    .optional(),
  /** SQLite file (default "./cleanroom-lab.db" beside the notebook); ":memory:" for a throwaway room. */
  store: z.string().min(1).optional(),
  /** "secure" (default) or { seed } for reproducible teaching runs (labelled "not private"). */
  rng: z.union([z.literal("secure"), z.strictObject({ seed: z.string().min(1) })]).optional(),
  budget: BudgetOptions.optional(),
  engine: z.enum(["arquero", "duckdb"]).optional(),
  /**
   * Where enclave mode's enclave runs: "in-process" (default: a simulated enclave object in the
   * lab's process, quick) or "process" (its own OS process on 127.0.0.1, reached only through
   * the operator's relay over a SecureChannel; see session/enclave-process.ts).
   */
  enclave: z.enum(["in-process", "process"]).optional(),
});
export type OpenLabOptions = z.input<typeof OpenLabOptions>;

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
