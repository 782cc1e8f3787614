/**
 * Upload from a file: CSV or Parquet, read by DuckDB (`read_csv` / `read_parquet`) and
 * streamed chunk by chunk straight into typed columns — the rows never exist as JS objects
 * (issue 18: a 10M-row array of row objects was most of the lift study's memory). This is the
 * arquero-lab (and joined-room, enclave-sealing) path; a DuckDB lab keeps the rows in DuckDB
 * and stores a sealed file instead (file-dataset.ts), reusing the helpers exported here.
 *
 * Only the declared columns are read. Numbers arrive as `DOUBLE` (`TRY_CAST`: an unparsable
 * value becomes a missing one, which the dataset loader then refuses naming the column and
 * the row, never the value); strings as `VARCHAR`. CSV is read with a header and every column
 * as text (`all_varchar`), so the declared schema — not DuckDB's sniffer — decides types.
 * The path is bound as a query parameter, never spliced into SQL text.
 *
 * Threat model: the file is the uploading party's own data on its own machine. Error text
 * names columns (schema) and the field `path`, never the path's content or a value.
 */
import * as fs from "node:fs";
import { CleanRoomError } from "../errors.js";
import { aq } from "./arquero.js";
import type { DuckDBConnection } from "@duckdb/node-api";
import { loadDataset, parseDatasetSchema, type DatasetSchema, type Table } from "./dataset.js";
import { privateDuck } from "./duckdb.js";

export type FileFormat = "csv" | "parquet";
/** What a path must end with (case-insensitive). */
export const FILE_PATTERN = /\.(csv|parquet)$/i;

/** `(done, total, phase)` as rows are read. */
export type FileProgress = (done: number, total: number, phase: string) => void;

/**
 * The format a path names by its extension, or null.
 * @example fileFormat("exposures.parquet") // "parquet"
 */
export function fileFormat(path: string): FileFormat | null {
  const m = FILE_PATTERN.exec(path);
  return m ? (m[1]!.toLowerCase() as FileFormat) : null;
}

const q = (id: string) => `"${id}"`; // declared column names only: [A-Za-z_][A-Za-z0-9_]*, checked by the schema

/**
 * Read the declared columns of a CSV or Parquet file into a table, streaming.
 *
 * @example
 * const table = await readTableFile("purchases.parquet", liftSchemas().purchases);
 * upload(lab, { party: "retailer", name: "purchases", path: "purchases.parquet", … }) // what the verb does
 */
export async function readTableFile(path: string, schemaInput: unknown, progress?: FileProgress): Promise<Table> {
  const schema = parseDatasetSchema(schemaInput);
  const { format, source } = checkSourcePath(path);
  const db = await privateDuck();
  const conn = await db.instance.connect();
  try {
    await checkSourceColumns(conn, source, path, format, schema);
    const declared = Object.keys(schema.columns);
    const total = Number((await conn.runAndReadAll(`SELECT count(*) FROM ${source}`, [path])).getColumns()[0]![0]);
    return await streamTable(
      conn,
      `SELECT ${castColumns(schema).join(", ")} FROM ${source}`,
      [path],
      declared,
      numericColumns(schema),
      total,
      (d, t) => progress?.(d, t, `reading ${format}`),
    );
  } finally {
    conn.closeSync();
    db.close();
  }
}

/** Is each declared column (in declaration order) numeric (`int` / `number`)? */
export const numericColumns = (schema: DatasetSchema): boolean[] =>
  Object.values(schema.columns).map((c) => c.type === "int" || c.type === "number");

/**
 * The declared columns as the upload reads them: numbers `TRY_CAST … AS DOUBLE` (unparsable →
 * missing, refused later naming column and row), everything else `CAST … AS VARCHAR`.
 */
export function castColumns(schema: DatasetSchema): string[] {
  const numeric = numericColumns(schema);
  return Object.keys(schema.columns).map(
    (c, i) => (numeric[i] ? `TRY_CAST(${q(c)} AS DOUBLE)` : `CAST(${q(c)} AS VARCHAR)`) + ` AS ${q(c)}`,
  );
}

/** `INPUT_INVALID` (field `path`) unless `path` names an existing regular file (never echoes the path). */
export function requireExistingFile(path: string, format: FileFormat): void {
  let isFile = false;
  try {
    isFile = fs.statSync(path).isFile();
  } catch {
    isFile = false;
  }
  if (!isFile)
    throw new CleanRoomError("INPUT_INVALID", `"path" expected an existing ${format} file, got no such file`, {
      field: "path",
      expected: `an existing ${format} file`,
    });
}

/**
 * The format and the DuckDB table function (path as parameter `?`) of an upload path;
 * `INPUT_INVALID` (field `path`) for another extension or no such file.
 */
export function checkSourcePath(path: string): { format: FileFormat; source: string } {
  const format = typeof path === "string" ? fileFormat(path) : null;
  if (format === null)
    throw new CleanRoomError("INPUT_INVALID", `"path" expected a path ending in .csv or .parquet`, {
      field: "path",
      expected: "a .csv or .parquet path",
    });
  requireExistingFile(path, format);
  return { format, source: format === "csv" ? "read_csv(?, header = true, all_varchar = true)" : "read_parquet(?)" };
}

/** The file's columns against the schema: the loader's own refusal for a missing or undeclared one. */
export async function checkSourceColumns(
  conn: DuckDBConnection,
  source: string,
  path: string,
  format: FileFormat,
  schema: DatasetSchema,
): Promise<void> {
  let have: string[];
  try {
    have = (await conn.runAndReadAll(`DESCRIBE SELECT * FROM ${source}`, [path])).getColumns()[0]!.map(String);
  } catch {
    throw new CleanRoomError("DATASET_INVALID", `"path" expected a readable ${format} file, got one DuckDB could not read`, {
      field: "path",
      expected: `a readable ${format} file`,
    });
  }
  const declared = Object.keys(schema.columns);
  // a missing or undeclared column: the loader's own refusal (names the column, suggests the closest)
  if (declared.some((c) => !have.includes(c)) || have.some((c) => !Object.hasOwn(schema.columns, c)))
    loadDataset("file", "file", aq().table(Object.fromEntries(have.map((c) => [c, []]))), schema);
}

/**
 * Stream a query's result into typed columns (numbers → Float64Array, missing → NaN;
 * strings → string[], missing → null), chunk by chunk: no row objects.
 */
export async function streamTable(
  conn: DuckDBConnection,
  sql: string,
  params: string[],
  declared: string[],
  numeric: boolean[],
  total: number,
  progress?: (done: number, total: number) => void,
): Promise<Table> {
  const cols: (Float64Array | (string | null)[])[] = numeric.map((num) =>
    num ? new Float64Array(total) : new Array<string | null>(total),
  );
  const result = await conn.stream(sql, params);
  let done = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    const n = chunk.rowCount;
    if (done + n > total)
      throw new CleanRoomError("DATASET_INVALID", `"path" expected a file that does not change while read`, { field: "path" });
    for (let ci = 0; ci < declared.length; ci++) {
      const values = chunk.getColumnValues(ci);
      const col = cols[ci]!;
      if (col instanceof Float64Array) for (let i = 0; i < n; i++) col[done + i] = values[i] === null ? NaN : (values[i] as number);
      else for (let i = 0; i < n; i++) col[done + i] = values[i] === null ? null : String(values[i]);
    }
    done += n;
    progress?.(done, total);
  }
  if (done !== total)
    throw new CleanRoomError("DATASET_INVALID", `"path" expected a file that does not change while read`, { field: "path" });
  return aq().table(Object.fromEntries(declared.map((c, i) => [c, cols[i]!]))) as Table;
}
