/**
 * File-backed datasets (issue 18): on a lab whose engine is DuckDB, `upload({ path })` keeps
 * the rows inside DuckDB end to end. This is a storage strategy of the ONE upload road
 * (session/room.ts), not a road of its own:
 *
 *  1. DuckDB copies the declared columns of the CSV/Parquet into a Parquet work file, cast
 *     exactly as the array path casts them (file-source.ts `castColumns`);
 *  2. validation is SQL over that file: the same rules, in the same order, with the same
 *     refusal (`rowError`: column and 1-based row, never the value) as `loadDataset`;
 *  3. the content fingerprint is the array path's definition computed by DuckDB: every row's
 *     canonical JSON line (numbers and strings written as `JSON.stringify` writes them),
 *     sorted by DuckDB and streamed chunk by chunk into SHA-256 — rows never become JS objects;
 *  4. the Parquet is sealed (file-seal.ts: AES-256-GCM chunks, a fresh key per file) into a
 *     temp name in the room's files directory and fsynced.
 * The road then renames the file to its final name (fsyncing the directory) and, in one
 * SQLite transaction, hands the purpose gate a small descriptor (file name + key) to seal
 * like any table blob, creates the dataset budget and catalogs it. A crash before the commit
 * leaves a file no catalog row names: `sweepFiles` removes it when the room is next opened.
 *
 * Query side: the gate releases the descriptor only for an approved, purpose-granted query;
 * `tableFromReleased` turns it into a file-backed table handle that the DuckDB engine reads
 * with `read_parquet` (after decrypting to a nameless RAM-backed file) and the arquero engine
 * materialises (same answers, more memory).
 *
 * Threat model: as file-source.ts for the source file. The work file and DuckDB's spill files
 * are plaintext in a 0700 directory next to the store, removed before the upload returns (or
 * by the sweep after a crash); the sealed file is all that stays.
 */
import * as fs from "node:fs";
import * as nodePath from "node:path";
import { createHash, randomBytes } from "node:crypto";
import type { DuckDBConnection } from "@duckdb/node-api";
import { CleanRoomError } from "../errors.js";
import { faultPoint } from "../faults.js";
import { fingerprintHeader, parseDatasetSchema, rowError, type ColumnSpec, type DatasetSchema, type Table } from "./dataset.js";
import { privateDuck } from "./duckdb.js";
import { castColumns, checkSourceColumns, checkSourcePath, numericColumns, streamTable, type FileProgress } from "./file-source.js";
import { openSealedAnonymous, sealFile } from "./file-seal.js";
import { fileBackedTable as handle, type FileRef } from "./file-ref.js";

export { fileRefOf, type FileRef } from "./file-ref.js";
export { privateDir } from "./file-seal.js";

/** A table handle for a file-backed dataset (the arquero engine materialises it on use). */
export const fileBackedTable = (ref: FileRef): Table => handle(ref, () => materialiseFileRef(ref));

const MAGIC = "CRLFILE1\n";

/** The descriptor the purpose gate seals for a file-backed dataset (file name and key; no values). */
export function encodeFileDescriptor(d: Omit<FileRef, "file"> & { name: string }): Uint8Array {
  const { key, ...rest } = d;
  return new TextEncoder().encode(MAGIC + JSON.stringify({ ...rest, key: Buffer.from(key).toString("base64") }));
}

/** Does a released blob describe a file (rather than hold an Arrow table)? */
export function isFileDescriptor(bytes: Uint8Array): boolean {
  return bytes.length > MAGIC.length && Buffer.from(bytes.subarray(0, MAGIC.length)).toString("latin1") === MAGIC;
}

/** Decode a descriptor; the file name resolves inside `dir` (the room's files directory). */
export function decodeFileDescriptor(bytes: Uint8Array, dir: string): FileRef {
  const d = JSON.parse(Buffer.from(bytes.subarray(MAGIC.length)).toString("utf8")) as Omit<FileRef, "file" | "key"> & {
    name: string;
    key: string;
  };
  if (!/^[0-9]+-[0-9a-f]+\.sealed$/.test(d.name))
    throw new CleanRoomError("DATASET_INVALID", `"file" expected a sealed file name`, { field: "file" });
  return { ...d, file: nodePath.join(dir, d.name), key: new Uint8Array(Buffer.from(d.key, "base64")) };
}

const lit = (p: string) => `'${p.replaceAll("'", "''")}'`;
const q = (id: string) => `"${id}"`; // declared column names only, checked by the schema

/** UTF-16 length (what JS `.length` counts): code points plus one per astral character. */
const utf16Length = (v: string) => `(length(${v}) + length(regexp_replace(${v}, '[^\\x{10000}-\\x{10FFFF}]', '', 'g')))`;

/** The checks of `coerceColumn` (dataset.ts) in its order, as SQL conditions with their expectation. */
function checks(c: string, spec: ColumnSpec, params: (string | number)[]): { sql: string; expected: string }[] {
  const v = q(c);
  if (spec.type === "string" || spec.type === "enum") {
    const out = [{ sql: `${v} IS NULL OR ${v} = ''`, expected: spec.type === "enum" ? "one of the declared values" : "non-empty string" }];
    if (spec.type === "enum") {
      params.push(...spec.values);
      out.push({ sql: `${v} NOT IN (${spec.values.map(() => "?").join(", ")})`, expected: "one of the declared values" });
    } else {
      const max = spec.maxLength ?? 1024;
      // UTF-16 units never exceed UTF-8 bytes (strlen, O(1)): the regex count runs only for long strings
      out.push({ sql: `(strlen(${v}) > ${max | 0} AND ${utf16Length(v)} > ${max | 0})`, expected: `string of at most ${max} characters` });
    }
    return out;
  }
  const out = [{ sql: `${v} IS NULL OR isnan(${v}) OR isinf(${v})`, expected: spec.type === "int" ? "integer" : "finite number" }];
  if (spec.type === "int") out.push({ sql: `${v} <> trunc(${v}) OR abs(${v}) > 9007199254740991`, expected: "safe integer" });
  if (spec.min !== undefined) {
    params.push(spec.min);
    out.push({ sql: `${v} < ?`, expected: `value >= ${spec.min}` });
  }
  if (spec.max !== undefined) {
    params.push(spec.max);
    out.push({ sql: `${v} > ?`, expected: `value <= ${spec.max}` });
  }
  return out;
}

/** Refuse the first bad value (first column in declaration order, then its first row), as `loadDataset` does. */
async function validate(conn: DuckDBConnection, source: string, schema: DatasetSchema): Promise<void> {
  const params: (string | number)[] = [];
  const cols = Object.entries(schema.columns).map(([c, spec]) => ({ c, list: checks(c, spec, params) }));
  const reasons = cols.map(({ list }, k) => `CASE ${list.map((x, i) => `WHEN ${x.sql} THEN ${i + 1}`).join(" ")} ELSE 0 END AS r${k}`);
  const aggs = cols.map((_, k) => `min(rn) FILTER (WHERE r${k} > 0) AS row${k}, arg_min(r${k}, rn) FILTER (WHERE r${k} > 0) AS why${k}`);
  const sql = `SELECT ${aggs.join(", ")} FROM (SELECT file_row_number + 1 AS rn, ${reasons.join(", ")} FROM ${source})`;
  const r = (await conn.runAndReadAll(sql, params)).getRowObjects()[0]!;
  cols.forEach(({ c, list }, k) => {
    if (r[`row${k}`] !== null && r[`row${k}`] !== undefined) rowError(c, Number(r[`row${k}`]), list[Number(r[`why${k}`]) - 1]!.expected);
  });
}

/** SQL writing a DOUBLE exactly as `JSON.stringify` writes a JS number (DuckDB's text is shortest round-trip too). */
const JSNUM = `CREATE OR REPLACE TEMP MACRO crl_jsnum(x) AS CASE
  WHEN x = trunc(x) AND abs(x) < 1e21 THEN CAST(CAST(x AS HUGEINT) AS VARCHAR)
  WHEN position('e' IN CAST(x AS VARCHAR)) = 0 THEN CAST(x AS VARCHAR)
  WHEN CAST(split_part(CAST(x AS VARCHAR), 'e', 2) AS INTEGER) BETWEEN -6 AND -1 THEN
    (CASE WHEN x < 0 THEN '-' ELSE '' END) || '0.' || repeat('0', -CAST(split_part(CAST(x AS VARCHAR), 'e', 2) AS INTEGER) - 1)
    || replace(replace(split_part(CAST(x AS VARCHAR), 'e', 1), '-', ''), '.', '')
  ELSE split_part(CAST(x AS VARCHAR), 'e', 1) || 'e' || (CASE WHEN CAST(split_part(CAST(x AS VARCHAR), 'e', 2) AS INTEGER) > 0 THEN '+' ELSE '' END)
    || CAST(CAST(split_part(CAST(x AS VARCHAR), 'e', 2) AS INTEGER) AS VARCHAR)
END`;

/** Does JSON.stringify escape anything in `s` (U+0000–U+001F, `"`, `\`)? */
const needsEscape = (s: string) => [...s].some((ch) => ch < " " || ch === '"' || ch === "\\");

/**
 * SQL writing a VARCHAR as `JSON.stringify` writes a string (escapes `"`, `\` and U+0000–U+001F only).
 * An enum column already validated holds only its declared values: when none needs escaping, no per-row check.
 */
function jsonString(v: string, spec?: ColumnSpec): string {
  if (spec?.type === "enum" && !spec.values.some(needsEscape)) return `'"' || ${v} || '"'`;
  const short: Record<number, string> = { 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
  let e = `replace(replace(${v}, '\\', '\\\\'), '"', '\\"')`;
  for (let c = 0; c < 32; c++) e = `replace(${e}, chr(${c}), '${short[c] ?? `\\u${c.toString(16).padStart(4, "0")}`}')`;
  return `'"' || CASE WHEN regexp_matches(${v}, '[\\x00-\\x1f"\\\\]') THEN ${e} ELSE ${v} END || '"'`;
}

/**
 * The array path's content fingerprint (dataset.ts `fingerprintTable`) computed by DuckDB:
 * canonical row lines sorted by DuckDB, streamed into SHA-256 a chunk at a time.
 */
async function fingerprint(
  conn: DuckDBConnection,
  source: string,
  schema: DatasetSchema,
  rows: number,
  progress?: (done: number, total: number) => void,
): Promise<string> {
  await conn.run(JSNUM);
  const names = Object.keys(schema.columns).sort();
  const parts = names.map((c) => {
    const t = schema.columns[c]!.type;
    return t === "int" || t === "number" ? `crl_jsnum(${q(c)})` : jsonString(q(c), schema.columns[c]);
  });
  const line = `'[' || ${parts.length ? parts.join(" || ',' || ") : "''"} || ']'`;
  const h = createHash("sha256");
  h.update(fingerprintHeader(schema, rows));
  progress?.(0, rows);
  const result = await conn.stream(`SELECT ${line} AS l FROM ${source} ORDER BY l`);
  let done = 0;
  for (;;) {
    const chunk = await result.fetchChunk();
    if (!chunk || chunk.rowCount === 0) break;
    h.update((chunk.getColumnValues(0) as string[]).join("\n") + "\n");
    done += chunk.rowCount;
    if (done % 262144 < chunk.rowCount) progress?.(done, rows);
  }
  progress?.(rows, rows);
  return h.digest("hex");
}

const RE_OWNED = /^(?:\.tmp-|\.work-)?([0-9]+)-[0-9a-f]+(?:\.sealed)?$/;

/**
 * A file upload validated, fingerprinted and sealed under a temp name: nothing catalogued yet.
 * The upload road calls `commit()` (rename, fsync) just before its catalog transaction, and
 * `discard()` on any refusal; `catalogued()` once that transaction committed.
 */
export class PreparedFile {
  #state: "temp" | "renamed" | "catalogued" | "discarded" = "temp";
  constructor(
    readonly schema: DatasetSchema,
    readonly rows: number,
    readonly fingerprint: string,
    readonly uniqueUnit: boolean,
    readonly key: Uint8Array,
    readonly dir: string,
    readonly id: string,
    readonly sealedBytes: number,
  ) {}
  get tempPath(): string {
    return nodePath.join(this.dir, `.tmp-${this.id}.sealed`);
  }
  get finalName(): string {
    return `${this.id}.sealed`;
  }
  /** The table handle of this file once renamed. */
  ref(): FileRef {
    const names = Object.keys(this.schema.columns);
    const columns: Record<string, "DOUBLE" | "VARCHAR"> = Object.fromEntries(
      numericColumns(this.schema).map((n, i) => [names[i]!, n ? ("DOUBLE" as const) : ("VARCHAR" as const)]),
    );
    return {
      file: nodePath.join(this.dir, this.finalName),
      key: this.key,
      columns,
      rows: this.rows,
      unit: this.schema.privacyUnit,
      uniqueUnit: this.uniqueUnit,
    };
  }
  descriptor(): Uint8Array {
    const { file: _file, ...rest } = this.ref();
    return encodeFileDescriptor({ ...rest, name: this.finalName });
  }
  /** Rename the sealed temp file to its final name and make the rename durable. */
  commit(): void {
    if (this.#state !== "temp") throw new CleanRoomError("INTERNAL", "a prepared file is committed once — this is a bug in cleanroom-lab");
    faultPoint("file.beforeRename");
    fs.renameSync(this.tempPath, nodePath.join(this.dir, this.finalName));
    this.#state = "renamed";
    fsyncDir(this.dir);
    faultPoint("file.afterRename");
  }
  catalogued(): void {
    this.#state = "catalogued";
  }
  /** Remove the file unless its catalog row committed (idempotent). */
  discard(): void {
    if (this.#state === "catalogued" || this.#state === "discarded") return;
    fs.rmSync(this.tempPath, { force: true });
    fs.rmSync(nodePath.join(this.dir, this.finalName), { force: true });
    this.#state = "discarded";
  }
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, "r");
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Read, validate, fingerprint and seal a CSV/Parquet upload for a DuckDB lab (steps 1–4 above).
 * Every refusal comes before anything is catalogued and removes what it wrote.
 *
 * @example
 * const file = await prepareFileUpload({ path: "purchases.parquet", schema, dir: room.filesDir() });
 */
export async function prepareFileUpload(args: {
  path: string;
  schema: unknown;
  dir: string;
  progress?: FileProgress;
}): Promise<PreparedFile> {
  const schema = parseDatasetSchema(args.schema);
  const { format, source } = checkSourcePath(args.path);
  const report = (done: number, total: number, phase: string) => args.progress?.(done, total, phase);
  fs.mkdirSync(args.dir, { recursive: true, mode: 0o700 });
  const id = `${process.pid}-${randomBytes(12).toString("hex")}`;
  const work = nodePath.join(args.dir, `.work-${id}`);
  fs.mkdirSync(work, { mode: 0o700 });
  const plain = nodePath.join(work, "plain.parquet");
  const sealedTemp = nodePath.join(args.dir, `.tmp-${id}.sealed`);
  const db = await privateDuck(nodePath.join(work, "spill"));
  const conn = await db.instance.connect();
  let ok = false;
  try {
    report(0, 4, `reading ${format}`);
    await checkSourceColumns(conn, source, args.path, format, schema);
    await conn.run(`COPY (SELECT ${castColumns(schema).join(", ")} FROM ${source}) TO ${lit(plain)} (FORMAT parquet, COMPRESSION zstd)`, [
      args.path,
    ]);
    const typed = `read_parquet(${lit(plain)}, file_row_number = true)`;
    const rows = Number((await conn.runAndReadAll(`SELECT count(*) FROM read_parquet(${lit(plain)})`)).getColumns()[0]![0]);
    report(1, 4, "validate columns");
    await validate(conn, typed, schema);
    report(2, 4, "validate columns");
    const unit = q(schema.privacyUnit);
    const uniqueUnit = (await conn.runAndReadAll(`SELECT count(*) = count(DISTINCT ${unit}) FROM ${typed}`)).getColumns()[0]![0] === true;
    const fp = await fingerprint(conn, typed, schema, rows, (d, t) => report(d, t, "fingerprint"));
    conn.closeSync();
    db.close();
    const key = new Uint8Array(randomBytes(32));
    const total = fs.statSync(plain).size;
    const bytes = await sealFile(plain, sealedTemp, key, async (d) => {
      faultPoint("file.sealChunk");
      report(d, total, "seal file");
    });
    ok = true;
    return new PreparedFile(schema, rows, fp, uniqueUnit, key, args.dir, id, bytes);
  } catch (e) {
    if (e instanceof CleanRoomError) throw e;
    // DuckDB's own text can quote a line of the file: not echoed
    throw new CleanRoomError("DATASET_INVALID", `"path" expected a ${format} file DuckDB can read, got one it could not read to the end`, {
      field: "path",
      expected: `a readable ${format} file`,
    });
  } finally {
    try {
      conn.closeSync();
      db.close();
    } catch {
      /* already closed */
    }
    fs.rmSync(work, { recursive: true, force: true });
    if (!ok) fs.rmSync(sealedTemp, { force: true });
  }
}

/**
 * Remove what a crashed upload left in `dir`: temp and work files, and sealed files no catalog
 * row names — only those of processes that are gone (a live one may be mid-upload).
 */
export function sweepFiles(dir: string, referenced: ReadonlySet<string>): string[] {
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return [];
  }
  const removed: string[] = [];
  for (const n of names) {
    const m = RE_OWNED.exec(n);
    if (!m || referenced.has(n)) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || alive(pid)) continue;
    fs.rmSync(nodePath.join(dir, n), { recursive: true, force: true });
    removed.push(n);
  }
  return removed;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * A file-backed dataset as an ordinary arquero table (the arquero engine's way to read it:
 * same answers, the rows in JS memory). The plaintext file exists only while it is read.
 */
export async function materialiseFileRef(ref: FileRef): Promise<Table> {
  const copy = await openSealedAnonymous(ref.file, ref.key);
  try {
    const plain = copy.path;
    const db = await privateDuck();
    const conn = await db.instance.connect();
    try {
      const names = Object.keys(ref.columns);
      return await streamTable(
        conn,
        `SELECT ${names.map(q).join(", ")} FROM read_parquet(?)`,
        [plain],
        names,
        names.map((c) => ref.columns[c] === "DOUBLE"),
        ref.rows,
      );
    } finally {
      conn.closeSync();
      db.close();
    }
  } finally {
    copy.close();
  }
}

/** A released blob as a table: a file-backed handle for a descriptor (its file in `dir()`), else `deserialize(bytes)`. */
export function tableFromReleased(bytes: Uint8Array, dir: () => string, deserialize: (b: Uint8Array) => Table): Table {
  return isFileDescriptor(bytes) ? fileBackedTable(decodeFileDescriptor(bytes, dir())) : deserialize(bytes);
}
