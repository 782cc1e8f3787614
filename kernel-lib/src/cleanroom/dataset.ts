/**
 * Party datasets for the clean room: typed, validated, fingerprinted arquero tables.
 *
 * A party uploads a table (an arquero table, CSV text or Arrow IPC bytes) together with a
 * zod-validated `DatasetSchema` that declares every column's type and bounds, which column
 * is the privacy unit (a person, e.g. the PSI `join_key`) and which columns are
 * identifiers (never output, never filtered on, never aggregated).
 *
 * Threat model: the uploader is honest about its own data but the other parties are
 * curious. Validation errors therefore name the column and the 1-based data row number but
 * never echo the offending value (it may be an e-mail address). Validation happens fully
 * before anything is stored, so a malformed upload leaves the catalog unchanged. A party
 * can list and describe only its own datasets (`ACCESS_DENIED` otherwise).
 *
 * The content fingerprint (SHA-256 over sorted per-row digests, so row order does not
 * matter) lets the session map a re-upload of the same data under a new name to the same
 * budget subject (ledger scope "dataset").
 */
import type { ColumnTable } from "arquero";
import { aq } from "./arquero.js";
import { z } from "zod";
import { createHash } from "node:crypto";
import { CleanRoomError, invalid } from "../errors.js";
import { didYouMean } from "../purpose/taxonomy.js";
import { runSteps, type Steps } from "../steps.js";

/** An arquero table (the clean room's in-memory representation). */
export type Table = ColumnTable;

/** A column's values without copying when arquero stores a plain or typed array. */
export function columnArray(t: Table, name: string): ArrayLike<unknown> {
  const col = t.column(name) as unknown;
  if (Array.isArray(col) || ArrayBuffer.isView(col)) return col as ArrayLike<unknown>;
  return t.array(name) as ArrayLike<unknown>;
}

const NAME = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

const ColumnSpec = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("string"), identifier: z.boolean().optional(), maxLength: z.number().int().positive().optional() }),
  z.strictObject({ type: z.literal("enum"), values: z.array(z.string()).min(1) }),
  z.strictObject({
    type: z.literal("int"),
    min: z.number().int().optional(),
    max: z.number().int().optional(),
    identifier: z.boolean().optional(),
  }),
  z.strictObject({ type: z.literal("number"), min: z.number().optional(), max: z.number().optional() }),
]);
export type ColumnSpec = z.infer<typeof ColumnSpec>;

/** zod schema of a dataset schema (strict: a typo in a key fails loudly). */
export const DatasetSchema = z.strictObject({
  columns: z.record(z.string().regex(NAME, "column names are identifiers: [A-Za-z_][A-Za-z0-9_]*"), ColumnSpec),
  /** The column identifying the privacy unit (a person), e.g. `"join_key"`. */
  privacyUnit: z.string().regex(NAME),
});
export type DatasetSchema = z.infer<typeof DatasetSchema>;

/** A validated dataset of one party. Immutable. */
export interface Dataset {
  readonly name: string;
  readonly owner: string;
  readonly schema: DatasetSchema;
  readonly table: Table;
  readonly rows: number;
  /** SHA-256 hex of the content (schema columns + multiset of rows). */
  readonly fingerprint: string;
}

/** What a party may see about its own dataset (no values). */
export interface DatasetDescription {
  name: string;
  owner: string;
  rows: number;
  privacyUnit: string;
  columns: { name: string; type: string; identifier: boolean; min?: number; max?: number; values?: string[] }[];
  fingerprint: string;
}

/** Parse a dataset schema at the boundary; `SCHEMA_INVALID` naming the field otherwise. */
export function parseDatasetSchema(input: unknown): DatasetSchema {
  const r = DatasetSchema.safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = ["schema", ...issue.path.map(String)].join(".");
    throw new CleanRoomError("SCHEMA_INVALID", `"${field}" ${issue.message}`, { field });
  }
  const s = r.data;
  const unit = s.columns[s.privacyUnit];
  if (!unit) invalid("schema.privacyUnit", "the name of a declared column", s.privacyUnit, "SCHEMA_INVALID");
  if (unit.type !== "string" && unit.type !== "int") invalid("schema.privacyUnit", "a string or int column", unit.type, "SCHEMA_INVALID");
  for (const [name, c] of Object.entries(s.columns)) {
    if ((c.type === "int" || c.type === "number") && c.min !== undefined && c.max !== undefined && c.min > c.max)
      invalid(`schema.columns.${name}.max`, `>= min (${c.min})`, c.max, "SCHEMA_INVALID");
  }
  return s;
}

/** True when `column` is an identifier in `schema` (the privacy unit or flagged `identifier`). */
export function isIdentifierColumn(schema: DatasetSchema, column: string): boolean {
  const c = schema.columns[column];
  return column === schema.privacyUnit || (!!c && "identifier" in c && c.identifier === true);
}

/** The refusal of one bad value: column and 1-based row, never the value (shared with file uploads). */
export function rowError(column: string, row: number, expected: string): never {
  // Never include the value: it may be personal data.
  throw new CleanRoomError("DATASET_INVALID", `column "${column}" row ${row}: expected ${expected}`, {
    field: column,
    row,
    expected,
  });
}

function toInput(data: unknown): Table {
  if (typeof data === "string") return aq().fromCSV(data, { autoType: false });
  if (data instanceof Uint8Array) {
    try {
      return aq().fromArrow(data);
    } catch {
      return invalid("data", "Arrow IPC bytes", data, "DATASET_INVALID");
    }
  }
  if (
    data &&
    typeof data === "object" &&
    typeof (data as Table).numRows === "function" &&
    typeof (data as Table).columnNames === "function"
  )
    return data as Table;
  return invalid("data", "an arquero table, CSV text or Arrow IPC bytes", data, "DATASET_INVALID");
}

/** Coerce one column to its declared type; throws on the first bad row. */
function coerceColumn(name: string, spec: ColumnSpec, src: ArrayLike<unknown>, n: number): unknown[] | Float64Array {
  if (spec.type === "string" || spec.type === "enum") {
    const out = new Array<string>(n);
    const allowed = spec.type === "enum" ? new Set(spec.values) : null;
    const maxLen = spec.type === "string" ? (spec.maxLength ?? 1024) : Infinity;
    for (let i = 0; i < n; i++) {
      let v = src[i];
      if (typeof v === "number" && spec.type === "string" && Number.isFinite(v)) v = String(v);
      if (typeof v !== "string" || v.length === 0)
        rowError(name, i + 1, spec.type === "enum" ? "one of the declared values" : "non-empty string");
      if (allowed && !allowed.has(v)) rowError(name, i + 1, "one of the declared values");
      if (v.length > maxLen) rowError(name, i + 1, `string of at most ${maxLen} characters`);
      out[i] = v;
    }
    return out;
  }
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let v = src[i];
    if (typeof v === "string") v = v.trim() === "" ? NaN : Number(v);
    if (typeof v === "bigint") v = Number(v);
    if (typeof v !== "number" || !Number.isFinite(v)) rowError(name, i + 1, spec.type === "int" ? "integer" : "finite number");
    if (spec.type === "int" && !Number.isSafeInteger(v)) rowError(name, i + 1, "safe integer");
    if (spec.min !== undefined && v < spec.min) rowError(name, i + 1, `value >= ${spec.min}`);
    if (spec.max !== undefined && v > spec.max) rowError(name, i + 1, `value <= ${spec.max}`);
    out[i] = v;
  }
  return out;
}

/**
 * Validate `data` against `schema` and build an immutable `Dataset`. Extra columns are
 * refused (a party declares everything it uploads); all rows are checked before returning.
 *
 * @example
 * const ds = loadDataset("purchases", "retailer", "join_key,value_cents\nk1,1200\n",
 *   { privacyUnit: "join_key", columns: { join_key: { type: "string" }, value_cents: { type: "int", min: 0, max: 100000 } } });
 */
export function loadDataset(name: string, owner: string, data: unknown, schemaInput: unknown): Dataset {
  return runSteps(loadDatasetSteps(name, owner, data, schemaInput));
}

/** The phase name {@link loadDatasetSteps} reports. */
export const VALIDATE_PHASE = "validate columns";

/**
 * {@link loadDataset} in steps: one report after each column is checked and coerced, one after
 * the fingerprint (the total is the number of columns + 1). No side effects: run it with
 * `runStepsAsync` to yield to the event loop between columns.
 */
export function* loadDatasetSteps(name: string, owner: string, data: unknown, schemaInput: unknown): Steps<Dataset> {
  if (typeof name !== "string" || !NAME.test(name)) invalid("name", "dataset name [A-Za-z_][A-Za-z0-9_]*", name);
  if (typeof owner !== "string" || owner.length === 0) invalid("owner", "non-empty party name", owner);
  const schema = parseDatasetSchema(schemaInput);
  const input = toInput(data);
  const have = input.columnNames();
  const declared = Object.keys(schema.columns);
  // column names are schema, echoed with the declared ones (a name that is not an identifier is not echoed)
  const echo = (c: string) => (/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(c) ? c : "(unnamed)");
  for (const col of declared)
    if (!have.includes(col)) {
      const extra = have.filter((c) => !Object.hasOwn(schema.columns, c)).map(echo);
      throw new CleanRoomError(
        "DATASET_INVALID",
        `"data.${col}" expected a column declared in the schema, got no column ${col} in the data${didYouMean(col, extra).replace("did you mean", "is it")}; ` +
          `declared columns: ${declared.join(", ")}`,
        { field: `data.${col}`, expected: "a column declared in the schema", got: "missing", columns: declared },
      );
    }
  for (const col of have)
    if (!Object.hasOwn(schema.columns, col))
      throw new CleanRoomError(
        "DATASET_INVALID",
        `"data.${echo(col)}" expected only columns declared in the schema, got an undeclared column ${echo(col)}${didYouMean(col, declared)}; ` +
          `declared columns: ${declared.join(", ")}`,
        { field: `data.${echo(col)}`, expected: "only columns declared in the schema", got: "an undeclared column", columns: declared },
      );
  const n = input.numRows();
  const cols: Record<string, unknown[] | Float64Array> = {};
  const specs = Object.entries(schema.columns);
  const total = specs.length + 1;
  for (const [i, [col, spec]] of specs.entries()) {
    cols[col] = coerceColumn(col, spec, columnArray(input, col), n);
    yield { phase: VALIDATE_PHASE, done: i + 1, total };
  }
  const table = aq().table(cols) as Table;
  const fingerprint = fingerprintTable(table, schema);
  yield { phase: VALIDATE_PHASE, done: total, total };
  return Object.freeze({ name, owner, schema, table, rows: n, fingerprint });
}

/**
 * Order-independent content fingerprint: SHA-256 over the column declaration and the rows
 * (canonical JSON, columns in name order) sorted, so re-uploading the same rows in another
 * order or under another name gives the same fingerprint (ledger "dataset" subject).
 *
 * @example
 * fingerprintTable(ds.table, ds.schema) === ds.fingerprint
 */
export function fingerprintTable(table: Table, schema: DatasetSchema): string {
  const names = Object.keys(schema.columns).sort();
  const arrays = names.map((c) => columnArray(table, c));
  const n = table.numRows();
  const rows = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    let line = "[";
    for (let k = 0; k < arrays.length; k++) line += (k ? "," : "") + JSON.stringify(arrays[k]![i]);
    rows[i] = line + "]";
  }
  rows.sort();
  const h = createHash("sha256");
  h.update(fingerprintHeader(schema, n));
  for (let i = 0; i < n; i += 8192) h.update(rows.slice(i, i + 8192).join("\n") + "\n");
  return h.digest("hex");
}

/** The first line the content fingerprint hashes (columns by name, types, privacy unit, row count). */
export function fingerprintHeader(schema: DatasetSchema, rows: number): string {
  const names = Object.keys(schema.columns).sort();
  return JSON.stringify({ columns: names.map((c) => [c, schema.columns[c]!.type]), privacyUnit: schema.privacyUnit, rows }) + "\n";
}

/** Plain description of a dataset (column names, types, bounds; never values). */
export function describeDataset(ds: Dataset): DatasetDescription {
  return {
    name: ds.name,
    owner: ds.owner,
    rows: ds.rows,
    privacyUnit: ds.schema.privacyUnit,
    fingerprint: ds.fingerprint,
    columns: Object.entries(ds.schema.columns).map(([name, c]) => ({
      name,
      type: c.type,
      identifier: isIdentifierColumn(ds.schema, name),
      ...(c.type === "int" || c.type === "number"
        ? { ...(c.min !== undefined ? { min: c.min } : {}), ...(c.max !== undefined ? { max: c.max } : {}) }
        : {}),
      ...(c.type === "enum" ? { values: [...c.values] } : {}),
    })),
  };
}

/**
 * In-memory catalog of the room's datasets, keyed by (owner, name). A party sees only its
 * own entries; the engines receive tables through `tablesFor`, never a party.
 *
 * @example
 * const cat = new DatasetCatalog(); cat.add(ds); cat.list("retailer") // → [description]
 */
export class DatasetCatalog {
  private readonly byKey = new Map<string, Dataset>();

  /** Store a validated dataset; `ALREADY_EXISTS` when the owner already has that name. */
  add(ds: Dataset): DatasetDescription {
    const key = `${ds.owner}/${ds.name}`;
    if (this.byKey.has(key)) invalid("name", "a dataset name not yet used by this party", ds.name, "ALREADY_EXISTS");
    this.byKey.set(key, ds);
    return describeDataset(ds);
  }

  /** Validate and store in one step: nothing is stored unless every row is valid. */
  upload(name: string, owner: string, data: unknown, schema: unknown): DatasetDescription {
    if (this.byKey.has(`${owner}/${name}`)) invalid("name", "a dataset name not yet used by this party", name, "ALREADY_EXISTS");
    return this.add(loadDataset(name, owner, data, schema));
  }

  /** Descriptions of `party`'s own datasets. */
  list(party: string): DatasetDescription[] {
    return [...this.byKey.values()].filter((d) => d.owner === party).map(describeDataset);
  }

  /** Describe one dataset; `ACCESS_DENIED` if `party` does not own it. */
  describe(party: string, owner: string, name: string): DatasetDescription {
    if (party !== owner)
      throw new CleanRoomError("ACCESS_DENIED", `party "${party}" may only describe its own datasets`, { field: "owner" });
    return describeDataset(this.get(owner, name));
  }

  /** Internal: the dataset for the planner/engine (not for notebook display). */
  get(owner: string, name: string): Dataset {
    const ds = this.byKey.get(`${owner}/${name}`);
    if (!ds)
      throw new CleanRoomError("NOT_FOUND", `"dataset" expected an uploaded dataset, got none named ${owner}/${name}`, {
        field: "dataset",
      });
    return ds;
  }

  /** Number of stored datasets (for "nothing changed" checks). */
  get size(): number {
    return this.byKey.size;
  }

  /** Stable summary of the stored state: `owner/name@fingerprint` sorted. */
  snapshot(): string[] {
    return [...this.byKey.values()].map((d) => `${d.owner}/${d.name}@${d.fingerprint}`).sort();
  }
}
