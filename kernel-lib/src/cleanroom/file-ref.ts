/**
 * The handle of a file-backed dataset (cleanroom/file-dataset.ts) inside the query road: an
 * arquero table with the declared columns and no rows, mapped here to the sealed file and its
 * key. Kept apart from file-dataset.ts so the engines can ask without importing DuckDB code.
 *
 * Threat model: a handle exists only after the purpose gate released the file's descriptor
 * (or during the upload that wrote it); it holds the file key in memory like a released table.
 */
import { aq } from "./arquero.js";
import type { Table } from "./dataset.js";

/** A file-backed dataset as a query sees it once the gate released its descriptor. */
export interface FileRef {
  /** Absolute path of the sealed file. */
  readonly file: string;
  readonly key: Uint8Array;
  /** Declared columns, in declaration order, with their DuckDB type. */
  readonly columns: Readonly<Record<string, "DOUBLE" | "VARCHAR">>;
  readonly rows: number;
  readonly unit: string;
  /** One row per privacy unit in the whole dataset (computed at upload, a fixed fact). */
  readonly uniqueUnit: boolean;
}

const backing = new WeakMap<object, { ref: FileRef; materialise: () => Promise<Table> }>();

/**
 * A table handle for a file-backed dataset: its declared columns with no rows in JS. The
 * DuckDB engine asks {@link fileRefOf} and reads the file; anything else calls
 * {@link materialised} first (`materialise` reads the rows into an ordinary table).
 */
export function fileBackedTable(ref: FileRef, materialise: () => Promise<Table>): Table {
  const t = aq().table(Object.fromEntries(Object.keys(ref.columns).map((c) => [c, []]))) as Table;
  backing.set(t, { ref, materialise });
  return t;
}

/** The file behind a table handle, or undefined for an ordinary (in-memory) table. */
export function fileRefOf(t: Table): FileRef | undefined {
  return backing.get(t)?.ref;
}

/** The table itself, or for a file-backed handle its rows read into an ordinary table. */
export function materialised(t: Table): Promise<Table> {
  const b = backing.get(t);
  return b ? b.materialise() : Promise.resolve(t);
}
