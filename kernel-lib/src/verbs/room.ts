/**
 * Room verbs at the door: open a room, add parties, upload data, declare purposes, approve
 * templates. Each is a free function `(lab, { … })` whose whole input is validated (door.ts)
 * before the lab is touched, so a refused call opens no file, writes no row and charges
 * nothing. The party argument is called `party` everywhere.
 *
 * Threat model: as door.ts — malformed or hostile input from a notebook cell. Authority
 * between parties is simulated (README "What the simulation does not protect").
 */
import { z } from "zod";
import { CleanRoomError, invalid } from "../errors.js";
import { FILE_PATTERN, readTableFile } from "../cleanroom/file-source.js";
import { prepareFileUpload, type PreparedFile } from "../cleanroom/file-dataset.js";
import { internals } from "../session/lab.js";
import { openLab as openSessionLab, type Lab, type Party, type UploadOptions, type UploadReceipt } from "../session.js";
import { enclaveUploadSteps, approveEnclaveTemplate, type EnclaveUploadReceipt } from "../enclave-room.js";
import { rngStamp } from "../rng.js";
import { startProgress } from "../display/progress.js";
import { runStepsAsync, tick, type StepReport } from "../steps.js";
import { approxDp, pureDp, zCdp } from "../dp/accountant.js";
import { withMimeBundle } from "../display/bundle.js";
import type { PurposeGrant } from "../purpose/policy.js";
import type { ApprovalStatus } from "../cleanroom/approvals.js";
import type { DatasetDescription } from "../cleanroom/dataset.js";
import { registerLiveLab } from "./live.js";
import type { TemplateInput, TemplateLike } from "../cleanroom/template.js";
import {
  datasetName,
  parseAtDoor,
  parseRowsAtDoor,
  partyArg,
  purposeName,
  requireRoom,
  rowsArrayAtDoor,
  shortName,
  splitOption,
  splitProgress,
  templateArg,
  type ProgressOption,
} from "./door.js";
import { RemoteRoom } from "../server/client.js";
import { remoteEnclaveUpload } from "../server/enclave-owner.js";
import { parseTemplate } from "../cleanroom/template.js";

const dpValue = z.union([z.string().max(64), z.number()]);

/** The options of {@link openLab} (strict: unknown keys are refused). */
export const OpenLabInput = z.strictObject({
  room: z
    .string()
    .max(64)
    .regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/, "a room id [A-Za-z][A-Za-z0-9_-]{0,63}")
    .optional(),
  store: z.string().min(1).max(4096).optional(),
  rng: z.union([z.literal("secure"), z.strictObject({ seed: z.string().min(1).max(256) })]).optional(),
  budget: z
    .strictObject({
      epsilon: dpValue.optional(),
      delta: dpValue.optional(),
      rho: dpValue.optional(),
      perParty: dpValue.optional(),
      refresh: z.enum(["none", "daily", "monthly"]).optional(),
    })
    .optional(),
  engine: z.enum(["arquero", "duckdb"]).optional(),
  /** Enclave mode's enclave: "in-process" (default, quick) or "process" (its own OS process, reached over 127.0.0.1). */
  enclave: z.enum(["in-process", "process"]).optional(),
});
export type OpenLabInput = z.input<typeof OpenLabInput>;

/** The DP checks the room would make when it creates its budgets — made here, before any file exists. */
function checkBudget(b: z.output<typeof OpenLabInput>["budget"]): void {
  if (!b) return;
  if (b.rho !== undefined && (b.epsilon !== undefined || b.delta !== undefined))
    invalid(
      "options.budget",
      "either { epsilon[, delta] } (pure or approximate DP) or { rho } (zCDP), not both",
      "both",
      "DP_PARAM_INVALID",
    );
  if (b.delta !== undefined && b.epsilon === undefined)
    invalid("options.budget.delta", "delta together with epsilon", "delta alone", "DP_PARAM_INVALID");
  const main = b.epsilon ?? b.rho;
  if (main === undefined) invalid("options.budget.epsilon", "a budget (epsilon or rho)", undefined, "DP_PARAM_INVALID");
  const total = (amount: string | number, field: string) => {
    try {
      if (b.rho !== undefined) zCdp(String(amount));
      else if (b.delta !== undefined) approxDp(String(amount), String(b.delta));
      else pureDp(String(amount));
    } catch (e) {
      // the accountant names its own parameter ("epsilon"); say which option it came from
      const c = e as { code?: string; details?: { expected?: string } };
      invalid(field, c.details?.expected ?? "a valid privacy parameter", amount, "DP_PARAM_INVALID");
    }
  };
  total(main, `options.budget.${b.rho !== undefined ? "rho" : "epsilon"}`);
  if (b.perParty !== undefined) total(b.perParty, "options.budget.perParty");
}

/**
 * Open (or re-open) a clean room. Every option is validated — privacy parameters included —
 * before the store, its keys file or its audit-head file is created.
 *
 * @example
 * const lab = openLab({ store: "./study.db", rng: { seed: "course" }, budget: { epsilon: 3 } })
 */
export function openLab(options: OpenLabInput = {}): Lab {
  const o = parseAtDoor(OpenLabInput, options ?? {}, "options");
  checkBudget(o.budget);
  return registerLiveLab(openSessionLab(o));
}

const AddPartyInput = z.strictObject({ party: shortName });

/**
 * Register (or re-open) a party of the room (AWS Clean Rooms: a collaboration member). Each
 * party gets its own budget when the room has one.
 *
 * @example
 * const advertiser = addParty(lab, { party: "advertiser" })
 */
export function addParty(lab: Lab, input: { party: string }): Party {
  const l = requireRoom(lab, "addParty");
  if (l instanceof RemoteRoom)
    invalid(
      "lab",
      "a lab from openLab: in a joined room the members come from the collaboration (no party can be minted)",
      "a joined room",
      "ACCESS_DENIED",
    );
  const { party } = parseAtDoor(AddPartyInput, input, "input");
  return l.party(party);
}

const UploadInput = z.strictObject({
  party: partyArg,
  name: datasetName,
  rows: z
    .array(z.record(z.string().max(64), z.unknown()))
    .min(1, "at least one row")
    .max(10_000_000)
    .optional(),
  /** A CSV or Parquet file instead of rows: read by DuckDB into columns (cleanroom/file-source.ts). */
  path: z.string().min(1).max(4096).regex(FILE_PATTERN, "a path ending in .csv or .parquet").optional(),
  schema: z.record(z.string().max(64), z.unknown()),
  purposes: z.union([purposeName, z.array(purposeName).min(1).max(32)]),
  rule: z.record(z.string().max(64), z.unknown()).optional(),
  idColumn: datasetName.optional(),
  categories: z.array(z.string().max(128)).max(32).optional(),
  columns: z
    .record(
      z.string().max(64),
      z.strictObject({
        purposes: z.array(purposeName).max(32).optional(),
        deny: z.array(purposeName).max(32).optional(),
        categories: z.array(z.string().max(128)).max(32).optional(),
      }),
    )
    .optional(),
  analyst: shortName.optional(),
  /** "gate" (default): sealed by the room's purpose gate. "enclave": owner-sealed, opened only inside an attested enclave. */
  sealing: z.enum(["gate", "enclave"]).optional(),
});
/** Everything but the rows, checked at once; the rows are checked in chunks (see {@link upload}). */
const UploadMeta = UploadInput.omit({ rows: true });
const UploadRow = z.record(z.string().max(64), z.unknown());
/** From this many rows on, `upload` shows a progress bar by default (in the cleanroom-ts kernel). */
export const LARGE_UPLOAD_ROWS = 50_000;
/** Rows checked at the door between two yields to the event loop. */
const UPLOAD_CHUNK = 20_000;
/** The phase of the door's row checks. */
export const CHECK_ROWS_PHASE = "check rows";
/** What {@link upload} takes (checked by the strict schema above). */
export interface UploadInput {
  party: Party | string;
  /** Dataset name [A-Za-z_][A-Za-z0-9_]{0,63}. */
  name: string;
  /** Plain row objects (at least one); or give `path` instead. */
  rows?: readonly object[] | null;
  /**
   * A CSV (header row) or Parquet file with exactly the declared columns, instead of `rows`:
   * DuckDB reads it in chunks straight into typed columns (no row objects); `upload` then
   * returns a Promise of the receipt.
   */
  path?: string;
  schema: UploadOptions["schema"];
  purposes: string | readonly string[];
  rule?: unknown;
  idColumn?: string;
  categories?: readonly string[];
  columns?: UploadOptions["columns"];
  analyst?: string;
  sealing?: "gate" | "enclave";
  /**
   * Default: from {@link LARGE_UPLOAD_ROWS} rows on, an in-place progress bar in the
   * cleanroom-ts kernel (phases "check rows", "validate columns", "seal and store", with an
   * ETA). `true` always shows it, `false` never; a function receives `(done, total, phase)`.
   */
  progress?: ProgressOption;
}

/**
 * Upload a party's table (AWS Clean Rooms: associate a configured table): validated against
 * its schema, tagged with allowed purposes, sealed; with `sealing: "enclave"` the owner keeps
 * the key and only an attested enclave can open it. Nothing is stored unless every row is valid.
 *
 * Asynchronous (await it): the rows are checked in chunks and the columns one by one, yielding
 * to the event loop in between, so a large upload shows an in-place progress bar (phases, ETA)
 * by default. Every check still comes before the first write: a refusal stores nothing.
 *
 * @example
 * await upload(lab, { party: "retailer", name: "purchases", rows: m.joinedB, schema: liftSchemas().purchases,
 *   purposes: ["measurement"], rule: liftRules(100).purchases })
 */
export async function upload(lab: RemoteRoom, input: UploadInput & { sealing: "enclave" }): Promise<EnclaveUploadReceipt>;
export async function upload(lab: RemoteRoom, input: UploadInput): Promise<UploadReceipt>;
export async function upload(lab: Lab, input: UploadInput & { sealing: "enclave" }): Promise<EnclaveUploadReceipt>;
export async function upload(lab: Lab, input: UploadInput): Promise<UploadReceipt>;
export async function upload(lab: Lab | RemoteRoom, input: UploadInput): Promise<UploadReceipt | EnclaveUploadReceipt> {
  const l = requireRoom(lab, "upload");
  const { rest, progress } = splitProgress(input);
  const split = splitOption(rest, "rows", "input");
  // everything but the rows at once; the rows below, a chunk at a time
  const { party, name, sealing, path, ...opts } = parseAtDoor(UploadMeta, split.rest, "input");
  if (split.present === (path !== undefined)) {
    const field = split.present ? "input.path" : "input.rows";
    throw new CleanRoomError(
      "INPUT_INVALID",
      `"${field}" expected exactly one of rows or path, got ${split.present ? "both" : "neither"}`,
      {
        field,
        expected: "exactly one of rows or path",
        door: true,
      },
    );
  }
  const options = opts as Parameters<Lab["upload"]>[3];
  const rows = path === undefined ? rowsArrayAtDoor(split.value, "input.rows") : null;
  const n = rows?.length ?? 0;
  const show = progress === true || (progress === undefined && (path !== undefined || n >= LARGE_UPLOAD_ROWS));
  const what = path === undefined ? `${n.toLocaleString("en-US")} rows` : "from a file";
  const stamp = l instanceof RemoteRoom ? l.stamp : rngStamp(l.rng);
  const bar = show ? startProgress(`upload ${party}/${name} (${what})`, { total: 3 * Math.max(1, n), ...stamp }) : null;
  const report = typeof progress === "function" ? progress : bar?.report;
  const safeReport = (done: number, total: number, phase: string) => {
    try {
      report?.(done, total, phase);
    } catch {
      // a throwing progress callback never fails the upload
    }
  };
  let prepared: PreparedFile | undefined;
  try {
    let data: unknown;
    let units = n;
    if (rows === null) {
      // read before anything is stored (a refusal has no side effect); a DuckDB lab keeps the rows in DuckDB (file-dataset.ts)
      const schema = { ...(options.schema ?? {}), privacyUnit: options.schema?.privacyUnit ?? options.idColumn };
      const room = l instanceof RemoteRoom || sealing === "enclave" ? null : internals(l).room;
      room?.precheckUpload(party, name, options); // party, name taken, purposes: typed, before any file is read or written
      if (room?.engine.name === "duckdb")
        prepared = await prepareFileUpload({ path: path!, schema, dir: room.filesDir(), progress: safeReport });
      const table = prepared ? null : await readTableFile(path!, schema, safeReport);
      units = Math.max(1, prepared?.rows ?? table!.numRows());
      data = prepared ?? table;
    } else {
      // the door, a chunk at a time: only the copies are used, so what was checked is what is stored
      const copy: Record<string, unknown>[] = [];
      for (let from = 0; from < n; from += UPLOAD_CHUNK) {
        const to = Math.min(n, from + UPLOAD_CHUNK);
        for (const r of parseRowsAtDoor(UploadRow, rows, "input.rows", from, to)) copy.push(r);
        safeReport(to, n, CHECK_ROWS_PHASE);
        await tick();
      }
      data = copy;
    }
    if (l instanceof RemoteRoom && sealing !== "enclave") {
      // a joined room: the checked rows go to the server, which validates and seals them itself
      const rowsOut = Array.isArray(data) ? data : (data as { objects(): Record<string, unknown>[] }).objects();
      safeReport(0, units, "send to the room");
      const receipt = await l.request<UploadReceipt>("upload", {
        input: { ...opts, party: partyName(party), name, rows: rowsOut, ...(sealing ? { sealing } : {}) },
      });
      safeReport(units, units, "send to the room");
      bar?.finish("done");
      return receipt;
    }
    // each later phase weighs as much as the row checks: done/total scaled to the row count
    const scaled = (s: StepReport) => safeReport(Math.round((s.done / Math.max(1, s.total)) * units), units, s.phase);
    // a joined room in enclave mode: validated, kept and owner-sealed in THIS kernel; the server gets metadata + the blob
    const out =
      l instanceof RemoteRoom
        ? await remoteEnclaveUpload(l, partyName(party), name, data, options, scaled)
        : await runStepsAsync<UploadReceipt | EnclaveUploadReceipt>(
            sealing === "enclave" ? enclaveUploadSteps(l, party, name, data, options) : l.uploadSteps(party, name, data, options),
            scaled,
          );
    bar?.finish("done");
    return out;
  } catch (e) {
    prepared?.discard(); // a refusal before the road took the file (no-op once catalogued)
    bar?.finish("failed");
    throw e;
  }
}

const PartyInput = z.strictObject({ party: partyArg });

/**
 * Descriptions (schema, row count, purposes — never values) of a party's own datasets.
 * @example datasets(lab, { party: "retailer" })
 */
export function datasets(lab: RemoteRoom, input: { party: Party | string }): Promise<DatasetDescription[]>;
export function datasets(lab: Lab, input: { party: Party | string }): DatasetDescription[];
export function datasets(lab: Lab | RemoteRoom, input: { party: Party | string }): DatasetDescription[] | Promise<DatasetDescription[]> {
  const l = requireRoom(lab, "datasets");
  const { party } = parseAtDoor(PartyInput, input, "input");
  if (l instanceof RemoteRoom) return l.request("datasets", { input: { party: partyName(party) } });
  return l.datasets(party);
}

const DeclarePurposeInput = z.strictObject({
  party: partyArg,
  analyst: shortName,
  purpose: purposeName,
  justification: z.string().max(1000),
  ttlSeconds: z
    .number()
    .int()
    .min(1)
    .max(10 * 366 * 86400)
    .optional(),
});

/**
 * Declare a purpose: a signed grant for one analyst of one party (audited).
 *
 * @example
 * declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 campaign lift" })
 */
export function declarePurpose(lab: RemoteRoom, input: DeclarePurposeArgs): Promise<PurposeGrant>;
export function declarePurpose(lab: Lab, input: DeclarePurposeArgs): PurposeGrant;
export function declarePurpose(lab: Lab | RemoteRoom, input: DeclarePurposeArgs): PurposeGrant | Promise<PurposeGrant> {
  const l = requireRoom(lab, "declarePurpose");
  const req = parseAtDoor(DeclarePurposeInput, input, "input");
  if (l instanceof RemoteRoom)
    return l.request<PurposeGrant>("declarePurpose", { input: { ...req, party: partyName(req.party) } }).then((g) => grantView(g, l.stamp));
  return grantView(l.declarePurpose(req), l.stamp);
}

type DeclarePurposeArgs = { party: Party | string; analyst: string; purpose: string; justification: string; ttlSeconds?: number };

const partyName = (p: Party | string): string => (typeof p === "string" ? p : p.name);

function grantView(g: PurposeGrant, stamp: object): PurposeGrant {
  return withMimeBundle({ ...g }, (x) => ({
    kind: "purpose",
    version: 1,
    title: "Purpose grant",
    ...stamp,
    grants: [{ party: x.who.party, purpose: x.purpose, expires: x.expiresAt, status: "active" as const }],
    decisions: [],
  }));
}

const ApproveInput = z.strictObject({
  template: templateArg,
  party: partyArg,
  /** "enclave" when the template reads enclave-sealed datasets. */
  executor: z.enum(["engine", "enclave"]).optional(),
  /** With a template NAME in a joined room: the hash the server's content for that name must have (else the server picks which template the name means). */
  expectHash: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
});

/**
 * A data owner approves a template (AWS Clean Rooms: an analysis template every member
 * approves); it runs once every owner of its inputs approved the same canonical hash.
 *
 * @example
 * approveTemplate(lab, { template: liftTemplate({ advertiser: "advertiser", retailer: "retailer" }), party: "retailer" })
 */
export function approveTemplate(lab: RemoteRoom, input: ApproveArgs): Promise<RemoteApproval>;
export function approveTemplate(lab: Lab, input: ApproveArgs): ApprovalStatus;
export function approveTemplate(lab: Lab | RemoteRoom, input: ApproveArgs): ApprovalStatus | Promise<RemoteApproval> {
  const l = requireRoom(lab, "approveTemplate");
  const { template, party, executor, expectHash } = parseAtDoor(ApproveInput, input, "input");
  if (expectHash !== undefined && (typeof template !== "string" || /^[0-9a-f]{64}$/.test(template)))
    throw new CleanRoomError("INPUT_INVALID", `"expectHash" expected only with a template name, got it with a hash or content`, {
      field: "expectHash",
      expected: "only with a template name",
    });
  if (l instanceof RemoteRoom) return approveRemote(l, template, partyName(party), executor, expectHash);
  return executor === "enclave" ? approveEnclaveTemplate(l, template, party) : l.approveTemplate(template, party);
}

/** What approving in a joined room returns: the server's status, the stored signatures, and the content this kernel hashed and signed. */
export type RemoteApproval = ApprovalStatus & {
  signatures: SignedApproval[];
  /** The template exactly as this member's kernel hashed it (canonical form): what the signature approves. */
  signed: { templateHash: string; name: string; content: unknown };
};

/**
 * A member's approval: this kernel hashes the template CONTENT itself and signs that hash. Given a
 * hash or a name, it first fetches the content from the server and re-hashes it here; content that
 * does not hash to the hash asked for (an operator showing one template and holding another) is
 * refused before anything is signed or sent. A name is weaker: the fetched content must carry that
 * name, but which template of that name is meant is the server's word unless `expectHash` pins it
 * (the signed content is returned either way, as `signed`).
 */
async function approveRemote(
  l: RemoteRoom,
  template: string | Record<string, unknown>,
  party: string,
  executor: "engine" | "enclave" | undefined,
  expectHash: string | undefined,
): Promise<RemoteApproval> {
  let content: unknown = template;
  if (typeof template === "string") {
    const byHash = /^[0-9a-f]{64}$/.test(template);
    const got = await l.request<{ templateHash: string; name: string; template: unknown }>("template", { template });
    const asked = byHash ? template : (expectHash ?? got.templateHash);
    let parsed: { hash: string; name: string } | null;
    try {
      parsed = parseTemplate(got.template);
    } catch {
      parsed = null;
    }
    const hash = parsed?.hash ?? "not a template";
    if (hash !== asked || (!byHash && hash !== got.templateHash))
      throw new CleanRoomError(
        "TEMPLATE_INVALID",
        `"template" expected the server's content for ${asked.slice(0, 12)}… to hash to it here, got content that ${
          parsed === null ? "is not a template" : `hashes to ${hash.slice(0, 12)}…`
        }: nothing signed, nothing sent`,
        { field: "template", expected: asked, got: hash },
      );
    if (!byHash && parsed!.name !== template)
      throw new CleanRoomError(
        "TEMPLATE_INVALID",
        `"template" expected the server's content for the name asked to carry that name, got a template with another name: nothing signed, nothing sent`,
        { field: "template", expected: "a template with the name asked" },
      );
    content = got.template;
  }
  const parsed = parseTemplate(content);
  const templateHash = parsed.hash;
  // the approval is this member's signature over the hash of content hashed here, checked by the server and by every member
  const signature = l.signStatement({ statement: "approve", room: l.roomId, templateHash, member: l.member });
  const status = await l.request<ApprovalStatus & { signatures: SignedApproval[] }>("approveTemplate", {
    input: { template: JSON.parse(parsed.canonical) as unknown, party, ...(executor ? { executor } : {}) },
    templateHash,
    signature,
  });
  return { ...status, signed: { templateHash, name: parsed.name, content: JSON.parse(parsed.canonical) as unknown } };
}

type ApproveArgs = {
  template: TemplateInput | TemplateLike | string;
  party: Party | string;
  executor?: "engine" | "enclave";
  /** With a template name (joined room): the hash its content must have. */
  expectHash?: string;
};
/** A member's signature over a template hash, as the server stores and shows it. */
export interface SignedApproval {
  templateHash: string;
  member: string;
  publicKey: string;
  signature: string;
}
