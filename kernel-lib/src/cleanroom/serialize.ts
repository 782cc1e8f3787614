/**
 * Table ⇄ bytes for the clean room (what the purpose gate encrypts and the store keeps).
 *
 * Format: Arrow IPC (stream format) produced by arquero's `toArrowIPC` and read back with
 * `fromArrow`. For a given table the bytes are deterministic (same columns, order and
 * types → same bytes), so a sealed dataset can be re-fingerprinted after decryption.
 * Threat model: the bytes are plaintext personal data; callers encrypt them before they
 * leave the party (purpose/gate.ts). Decoding refuses anything that is not Arrow IPC.
 */
import { aq } from "./arquero.js";
import { invalid } from "../errors.js";
import type { Table } from "./dataset.js";

/**
 * Serialize an arquero table to Arrow IPC bytes.
 *
 * @example
 * const bytes = serializeTable(aq().table({ join_key: ["a"], value: [1] }));
 */
export function serializeTable(table: Table): Uint8Array {
  if (!table || typeof (table as Table).numRows !== "function") invalid("table", "an arquero table", table);
  // a zero-row table (a catalog-only entry, session/mpc-mode.ts) has no values to infer a type from:
  // its columns are written typed from a placeholder row that is filtered out (no value, so no type to lose)
  if (table.numRows() === 0)
    return aq().toArrowIPC(
      aq()
        .table(Object.fromEntries(table.columnNames().map((c) => [c, [0]])))
        .slice(0, 0),
      { format: "stream" },
    );
  return aq().toArrowIPC(table, { format: "stream" });
}

/**
 * Inverse of `serializeTable`; `DATASET_INVALID` for bytes that are not Arrow IPC.
 *
 * @example
 * deserializeTable(serializeTable(t)).objects() // same rows as t
 */
export function deserializeTable(bytes: Uint8Array): Table {
  if (!(bytes instanceof Uint8Array) || bytes.length === 0) invalid("bytes", "non-empty Arrow IPC bytes", bytes, "DATASET_INVALID");
  try {
    return aq().fromArrow(bytes) as Table;
  } catch {
    return invalid("bytes", "Arrow IPC bytes", bytes, "DATASET_INVALID");
  }
}
