import { afterAll, describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { writeStudyParquetSql, STUDY_PARQUET_COLUMNS } from "../../kernel-lib/src/datasets/study-sql.js";
import { writeStudyParquet } from "../../kernel-lib/src/datasets/files.js";
import { streamStudy } from "../../kernel-lib/src/datasets/study.js";
import { normalizeStudyEmail } from "../../kernel-lib/src/datasets/emails.js";
import { REGIONS, REGION_WEIGHTS, type StudyParams } from "../../kernel-lib/src/datasets/params.js";
import { privateDuck } from "../../kernel-lib/src/cleanroom/duckdb.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

// seeded: every number below is a fixed function of these parameters
const P: StudyParams = {
  seed: "sql-gen-test",
  advertiserRows: 40_000,
  overlap: 0.6,
  holdoutShare: 0.2,
  baseConversionRate: 0.08,
  liftPct: 25,
};
const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "cleanroom-sqlgen-"));
  dirs.push(d);
  return d;
};
afterAll(() => dirs.forEach((d) => fs.rmSync(d, { recursive: true, force: true })));

async function query<T = Record<string, unknown>>(sql: string): Promise<T[]> {
  const db = await privateDuck();
  try {
    const conn = await db.instance.connect();
    const rows = (await conn.runAndReadAll(sql)).getRowObjects() as T[];
    conn.closeSync();
    return rows;
  } finally {
    db.close();
  }
}
/** An order-independent digest of a Parquet file's rows. */
const digest = async (f: string) =>
  String((await query(`SELECT count(*) AS n, sum(hash(COLUMNS(*))) AS h FROM read_parquet('${f}')`))[0]!["h"]);

describe("writeStudyParquetSql (the DuckDB SQL generator)", async () => {
  const a = await writeStudyParquetSql(P, tmp());
  const jsDir = tmp();
  const js = await writeStudyParquet({ ...P, advertiserRows: 2_000 }, jsDir);

  it("same seed → the same rows and ground truth; another seed → other rows", async () => {
    const small = { ...P, advertiserRows: 3_000 };
    const [x, y] = [await writeStudyParquetSql(small, tmp()), await writeStudyParquetSql(small, tmp(), { threads: 1 })];
    expect(y.groundTruth).toEqual(x.groundTruth);
    expect(await digest(y.exposures.path)).toBe(await digest(x.exposures.path));
    expect(await digest(y.purchases.path)).toBe(await digest(x.purchases.path));
    const c = await writeStudyParquetSql({ ...small, seed: "another" }, tmp());
    expect(await digest(c.exposures.path)).not.toBe(await digest(x.exposures.path));
    expect(c.groundTruth.truth).not.toEqual(x.groundTruth.truth);
  });

  it("writes the JS Parquet writer's schema: the same columns, names and types", async () => {
    for (const f of ["exposures", "purchases"] as const) {
      const d = (file: string) => query<{ column_name: string; column_type: string }>(`DESCRIBE SELECT * FROM read_parquet('${file}')`);
      const [mine, theirs] = [await d(a[f].path), await d(js[f].path)];
      expect(mine.map((r) => [r.column_name, r.column_type])).toEqual(theirs.map((r) => [r.column_name, r.column_type]));
      expect(mine.map((r) => r.column_name)).toEqual([...STUDY_PARQUET_COLUMNS[f]]);
    }
  });

  it("join keys are unique normalised addresses, and the purchase file names exactly the matched people", async () => {
    const [k] = await query(`SELECT count(DISTINCT join_key) AS d, count(*) AS n FROM read_parquet('${a.exposures.path}')`);
    expect(Number(k!["d"])).toBe(P.advertiserRows);
    const sample = await query<{ join_key: string }>(
      `SELECT join_key FROM read_parquet('${a.purchases.path}') USING SAMPLE 200 ROWS (reservoir, 7)`,
    );
    for (const r of sample) expect(normalizeStudyEmail(r.join_key)).toBe(r.join_key);
    const [m] = await query(
      `SELECT count(DISTINCT e.join_key) AS m FROM read_parquet('${a.exposures.path}') e JOIN read_parquet('${a.purchases.path}') p USING (join_key)`,
    );
    expect(Number(m!["m"])).toBe(a.groundTruth.counts.trueOverlap);
  });

  it("its ground truth is what the files say: matched people per arm and converters in the campaign window, exactly", async () => {
    const D = a.groundTruth.params.campaignDays;
    const [r] = await query(
      `WITH p AS (SELECT join_key, bool_or(CAST(purchase_day AS INTEGER) >= 0 AND CAST(purchase_day AS INTEGER) < ${D}) AS converted ` +
        `FROM read_parquet('${a.purchases.path}') GROUP BY join_key) ` +
        `SELECT count(*) FILTER (WHERE e."group" = 'test') AS mt, count(*) FILTER (WHERE e."group" = 'control') AS mc, ` +
        `count(*) FILTER (WHERE e."group" = 'test' AND converted) AS ct, count(*) FILTER (WHERE e."group" = 'control' AND converted) AS cc ` +
        `FROM read_parquet('${a.exposures.path}') e JOIN p USING (join_key)`,
    );
    const files = { mt: Number(r!["mt"]), mc: Number(r!["mc"]), ct: Number(r!["ct"]), cc: Number(r!["cc"]) };
    const g = a.groundTruth.aggregates;
    expect(files).toEqual({ mt: g.testPopulation, mc: g.controlPopulation, ct: g.testConverters, cc: g.controlConverters });
    expect(Math.min(files.ct, files.cc)).toBeGreaterThan(100); // not vacuous: both arms convert
  });

  it("agrees with the JS generator's distributional parameters (within 4 standard errors)", async () => {
    const near = (x: number, p: number, n: number) => expect(Math.abs(x - p)).toBeLessThan(4 * Math.sqrt((p * (1 - p)) / n) + 1e-9);
    const g = a.groundTruth;
    const n = g.counts.advertiserPeople;
    near(g.counts.trueOverlap / n, P.overlap, n);
    near(g.counts.controlPeople / n, P.holdoutShare, n);
    near(g.counts.reachedPeople / g.counts.testPeople, g.expected.reachRate, g.counts.testPeople);
    near(g.truth.observed.controlConversionRate, g.expected.controlConversionRate, g.aggregates.controlPopulation);
    near(g.truth.observed.testConversionRate, g.expected.testConversionRate, g.aggregates.testPopulation);
    near(g.truth.converters.ifAllControl, g.expected.controlConversionRate, g.counts.trueOverlap);
    // the JS generator at the same size: realised rows per person and region shares agree
    let jsPurchases = 0;
    const jsTruth = streamStudy(P, { exposure: () => {}, purchase: () => jsPurchases++ });
    expect(g.counts.purchaseRows / jsPurchases).toBeGreaterThan(0.97);
    expect(g.counts.purchaseRows / jsPurchases).toBeLessThan(1.03);
    expect(g.counts.retailerOnlyCustomers).toBe(jsTruth.counts.retailerOnlyCustomers);
    const regions = await query<{ region: string; n: bigint }>(
      `SELECT region, count(*) AS n FROM read_parquet('${a.exposures.path}') GROUP BY region`,
    );
    const total = REGION_WEIGHTS.reduce((x, y) => x + y, 0);
    for (const r of regions) near(Number(r.n) / n, REGION_WEIGHTS[REGIONS.indexOf(r.region as never)]! / total, n);
    expect(regions).toHaveLength(REGIONS.length);
    // the mean order value in the campaign window agrees with the JS generator's (heavy tail: 10% band)
    const [v] = await query(`SELECT avg(CAST(value_cents AS DOUBLE)) AS v FROM read_parquet('${a.purchases.path}')`);
    const [w] = await query(`SELECT avg(CAST(value_cents AS DOUBLE)) AS v FROM read_parquet('${js.purchases.path}')`);
    expect(Number(v!["v"]) / Number(w!["v"])).toBeGreaterThan(0.9);
    expect(Number(v!["v"]) / Number(w!["v"])).toBeLessThan(1.1);
  });

  it("refuses bad parameters naming the field, before writing anything", async () => {
    const out = path.join(tmp(), "never");
    for (const [bad, field] of [
      [{ ...P, advertiserRows: 0 }, "advertiserRows"],
      [{ ...P, advertiserRows: 2e9 }, "advertiserRows"],
      [{ ...P, overlap: 2 }, "overlap"],
    ] as const) {
      const e = await writeStudyParquetSql(bad, out).catch((x: unknown) => x);
      expect(isCleanRoomError(e) && e.details.field).toBe(field);
    }
    const t = await writeStudyParquetSql(P, out, { threads: 0.5 }).catch((x: unknown) => x);
    expect(isCleanRoomError(t) && t.details.field).toBe("opts.threads");
    expect(fs.existsSync(out)).toBe(false);
  });
});
