/**
 * Upload from a file (issue 18 "files instead of row arrays"): `upload(lab, { path })` reads
 * a CSV or Parquet file through DuckDB into typed columns. The same content gives the same
 * dataset (fingerprint, rows, schema) as the row-array upload; a bad file is refused with a
 * typed error naming the column (never the value) before anything is stored.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addParty, audit, datasets, isCleanRoomError, openLab, seededRng, upload, type Lab } from "../../kernel-lib/src/index.js";
import { duck } from "../../kernel-lib/src/cleanroom/duckdb.js";

const schema = {
  privacyUnit: "join_key",
  columns: {
    join_key: { type: "string" },
    region: { type: "enum", values: ["north", "south"] },
    value_cents: { type: "int", min: 0, max: 100000 },
  },
} as const;

let dir: string;
let rows: { join_key: string; region: string; value_cents: number }[];
const csvOf = (rs: Record<string, unknown>[]) =>
  [Object.keys(rs[0]!).join(","), ...rs.map((r) => Object.values(r).join(","))].join("\n") + "\n";

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "upload-file-"));
  const rng = seededRng("upload-file");
  rows = Array.from({ length: 5000 }, (_, i) => ({
    join_key: `jk_${i.toString(16).padStart(6, "0")}`,
    region: rng.int(2) ? "north" : "south",
    value_cents: rng.int(100001),
  }));
  fs.writeFileSync(path.join(dir, "sales.csv"), csvOf(rows));
  const instance = await duck().DuckDBInstance.create(":memory:");
  const conn = await instance.connect();
  // Parquet with native types (BIGINT for the int column), written by DuckDB from the CSV
  await conn.run(
    `COPY (SELECT join_key, region, CAST(value_cents AS BIGINT) AS value_cents FROM read_csv(?, header = true)) ` +
      `TO '${path.join(dir, "sales.parquet")}' (FORMAT parquet)`,
    [path.join(dir, "sales.csv")],
  );
  conn.closeSync();
  instance.closeSync();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function freshLab(engine: "arquero" | "duckdb" = "duckdb"): Lab {
  const lab = openLab({ store: ":memory:", rng: { seed: "upload-file" }, budget: { epsilon: 1 }, engine });
  addParty(lab, { party: "retailer" });
  return lab;
}

async function refusal(call: () => unknown) {
  try {
    await call();
    return null;
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    return { code: e.code, field: e.details.field as string | undefined, message: e.message, door: e.details.door === true };
  }
}

describe("upload from a file", () => {
  it("CSV and Parquet give the dataset the row array gives (same fingerprint, rows, columns)", async () => {
    const lab = freshLab();
    const fromRows = await upload(lab, { party: "retailer", name: "from_rows", rows, schema, purposes: "measurement" });
    const fromCsv = await upload(lab, {
      party: "retailer",
      name: "from_csv",
      path: path.join(dir, "sales.csv"),
      schema,
      purposes: "measurement",
    });
    const fromParquet = await upload(lab, {
      party: "retailer",
      name: "from_parquet",
      path: path.join(dir, "sales.parquet"),
      schema,
      purposes: "measurement",
    });
    for (const r of [fromCsv, fromParquet]) {
      expect(r.rows).toBe(5000);
      expect(r.fingerprint).toBe(fromRows.fingerprint);
      expect(r.columns).toEqual(fromRows.columns);
      expect(r.sealed).toBe(true);
    }
    expect(datasets(lab, { party: "retailer" }).map((d) => d.name)).toEqual(["from_rows", "from_csv", "from_parquet"]);
  });

  it("a file with an undeclared or a missing column is refused naming the column; nothing is stored", async () => {
    const lab = freshLab();
    const extra = path.join(dir, "extra.csv");
    fs.writeFileSync(extra, csvOf(rows.slice(0, 10).map((r) => ({ ...r, email: "alice@example.com" }))));
    const before = audit(lab).verification.entries;
    const r = await refusal(() => upload(lab, { party: "retailer", name: "x", path: extra, schema, purposes: "measurement" }));
    expect(r).toMatchObject({ code: "DATASET_INVALID", field: "data.email" });
    expect(r!.message).not.toContain("alice");
    const missing = path.join(dir, "missing.csv");
    fs.writeFileSync(missing, csvOf(rows.slice(0, 10).map(({ join_key, region }) => ({ join_key, region }))));
    expect(
      await refusal(() => upload(lab, { party: "retailer", name: "x", path: missing, schema, purposes: "measurement" })),
    ).toMatchObject({
      code: "DATASET_INVALID",
      field: "data.value_cents",
    });
    expect(datasets(lab, { party: "retailer" })).toEqual([]);
    expect(audit(lab).verification.entries).toBe(before);
  });

  it("a bad value is refused with its column and row, never the value", async () => {
    const lab = freshLab();
    const bad = path.join(dir, "bad.csv");
    const rs: Record<string, unknown>[] = rows.slice(0, 100);
    rs[41] = { ...rs[41], value_cents: "SECRET-12345" };
    fs.writeFileSync(bad, csvOf(rs));
    const r = await refusal(() => upload(lab, { party: "retailer", name: "x", path: bad, schema, purposes: "measurement" }));
    expect(r).toMatchObject({ code: "DATASET_INVALID", field: "value_cents" });
    expect(r!.message).toContain("row 42");
    expect(r!.message).not.toContain("SECRET");
    expect(datasets(lab, { party: "retailer" })).toEqual([]);
  });

  it("the door: exactly one of rows and path, a .csv/.parquet path, an existing file", async () => {
    const lab = freshLab("arquero");
    const base = { party: "retailer", name: "x", schema, purposes: "measurement" } as const;
    expect(await refusal(() => upload(lab, { ...base, rows, path: path.join(dir, "sales.csv") }))).toMatchObject({
      code: "INPUT_INVALID",
      field: "input.path",
      door: true,
    });
    expect(await refusal(() => upload(lab, { ...base }))).toMatchObject({ code: "INPUT_INVALID", field: "input.rows", door: true });
    expect(await refusal(() => upload(lab, { ...base, path: "/etc/passwd" }))).toMatchObject({
      code: "INPUT_INVALID",
      field: "input.path",
      door: true,
    });
    const r = await refusal(() => upload(lab, { ...base, path: path.join(dir, "no-such-file.parquet") }));
    expect(r).toMatchObject({ code: "INPUT_INVALID", field: "path" });
    expect(r!.message).not.toContain("no-such-file");
    expect(datasets(lab, { party: "retailer" })).toEqual([]);
  });
});
