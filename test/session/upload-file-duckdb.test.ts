/**
 * File-backed datasets on a DuckDB lab (issue 18, third bullet): `upload({ path })` keeps the
 * rows inside DuckDB — validated by SQL, fingerprinted by DuckDB, stored as an AES-GCM sealed
 * Parquet file the purpose gate holds the key of — and the DuckDB engine queries that file.
 * What a user sees must not change: the same refusals as the array path, the same fingerprint,
 * the same query answers; what an attacker with the disk sees: no plaintext, and a changed
 * file refuses to open.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  addParty,
  approveTemplate,
  declarePurpose,
  isCleanRoomError,
  openLab,
  cleanRoomQuery as query,
  seededRng,
  upload,
  type Lab,
} from "../../kernel-lib/src/index.js";
import { internals } from "../../kernel-lib/src/session/lab.js";
import { liftRules, liftSchemas, liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { duck } from "../../kernel-lib/src/cleanroom/duckdb.js";
import { studyRows } from "../dp/lab-fixture.js";

let dir: string;
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "upload-file-duckdb-"));
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function csv(rows: Record<string, unknown>[], columns = Object.keys(rows[0]!)): string {
  const cell = (v: unknown) => {
    const s = String(v);
    return /[",\n\r]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
  };
  return [columns.join(","), ...rows.map((r) => columns.map((c) => cell(r[c])).join(","))].join("\n") + "\n";
}

function writeCsv(name: string, rows: Record<string, unknown>[], columns?: string[]): string {
  const p = path.join(dir, name);
  fs.writeFileSync(p, csv(rows, columns));
  return p;
}

function lab(engine: "arquero" | "duckdb", store = ":memory:"): Lab {
  const l = openLab({ store, rng: { seed: "file-duck" }, budget: { epsilon: 10 }, engine });
  addParty(l, { party: "advertiser" });
  addParty(l, { party: "retailer" });
  return l;
}

async function refusal(call: () => unknown) {
  try {
    await call();
    return null;
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    return { code: e.code, field: e.details.field, message: e.message };
  }
}

const T = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 3 });

/** Upload both study tables (rows or files), approve the threshold-only lift, run it. */
async function runLift(l: Lab, data: ReturnType<typeof studyRows>, from: "rows" | "file") {
  const s = liftSchemas();
  const src = (name: "exposures" | "purchases") =>
    from === "rows" ? { rows: data[name] } : { path: writeCsv(`${name}-${Math.random().toString(16).slice(2)}.csv`, data[name]) };
  const ex = await upload(l, {
    party: "advertiser",
    name: "exposures",
    ...src("exposures"),
    schema: s.exposures,
    purposes: "measurement",
    rule: liftRules(3).exposures,
  });
  const pu = await upload(l, {
    party: "retailer",
    name: "purchases",
    ...src("purchases"),
    schema: s.purchases,
    purposes: "measurement",
    rule: liftRules(3).purchases,
  });
  declarePurpose(l, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "lift" });
  approveTemplate(l, { template: T, party: "advertiser" });
  approveTemplate(l, { template: T, party: "retailer" });
  const r = await query(l, {
    template: T,
    params: { startDay: 0, endDay: 27 },
    party: "advertiser",
    analyst: "bo",
    purpose: "measurement",
  });
  return { rows: r.rows, suppressed: r.suppressed, fingerprints: [ex.fingerprint, pu.fingerprint] };
}

describe("file-backed datasets on a DuckDB lab", () => {
  it("property: the file-backed lift equals the array path's exactly (arquero rows, DuckDB rows, DuckDB file)", async () => {
    let released = 0;
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 40, max: 400 }), fc.string({ minLength: 1, maxLength: 8 }), async (n, seed) => {
        const data = studyRows(`file-${seed}`, n);
        const arrays = await runLift(lab("arquero"), data, "rows");
        const duckRows = await runLift(lab("duckdb"), data, "rows");
        const duckFile = await runLift(lab("duckdb"), data, "file");
        expect(duckRows).toEqual(arrays);
        expect(duckFile).toEqual(arrays); // same answers, suppression and fingerprints
        released += arrays.rows.length;
      }),
      { numRuns: 6, seed: 18 },
    );
    expect(released).toBeGreaterThan(0); // not only empty (all suppressed) answers
  }, 240_000);

  it("property: the fingerprint is the array path's for any numbers and strings (escapes, exponents, non-ASCII)", async () => {
    const schema = {
      privacyUnit: "k",
      columns: { k: { type: "string", maxLength: 64 }, x: { type: "number" }, n: { type: "int" } },
    } as const;
    const str = fc.string({
      unit: fc.constantFrom("a", "Z", "0", " ", '"', "\\", "\t", "\u0001", "\u001f", "é", "€", "\u00a0", ",", "ÿ"),
      minLength: 1,
      maxLength: 12,
    });
    const num = fc.oneof(
      fc.double({ noNaN: true, noDefaultInfinity: true }),
      fc.constantFrom(1e-7, 1.5e-5, 0.000123, 1e21, -2.5e-9, 1e20, 0.1, -0),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ k: str, x: num, n: fc.integer({ min: -(2 ** 40), max: 2 ** 40 }) }), { minLength: 1, maxLength: 30 }),
        async (rows) => {
          // Parquet keeps the doubles bit for bit (a CSV would round-trip them through text too, but not -0)
          const p = path.join(dir, `fp-${Math.random().toString(16).slice(2)}.parquet`);
          const instance = await duck().DuckDBInstance.create(":memory:");
          const conn = await instance.connect();
          await conn.run("CREATE TABLE t (k VARCHAR, x DOUBLE, n BIGINT)");
          const app = await conn.createAppender("t");
          for (const r of rows) {
            app.appendVarchar(r.k);
            app.appendDouble(r.x);
            app.appendBigInt(BigInt(r.n));
            app.endRow();
          }
          app.closeSync();
          await conn.run(`COPY t TO '${p}' (FORMAT parquet)`);
          conn.closeSync();
          instance.closeSync();
          const a = lab("arquero");
          const d = lab("duckdb");
          const fromRows = await upload(a, { party: "retailer", name: "t", rows, schema, purposes: "measurement" });
          const fromFile = await upload(d, { party: "retailer", name: "t", path: p, schema, purposes: "measurement" });
          expect(fromFile.fingerprint).toBe(fromRows.fingerprint);
          expect(fromFile.rows).toBe(rows.length);
        },
      ),
      { numRuns: 25, seed: 1818 },
    );
  }, 240_000);

  it("refuses a bad value exactly as the array path does (same code, field, row, message; never the value)", async () => {
    const schema = {
      privacyUnit: "k",
      columns: {
        k: { type: "string", maxLength: 8 },
        e: { type: "enum", values: ["a", "b"] },
        i: { type: "int", min: 0, max: 100 },
        x: { type: "number", min: -1 },
      },
    } as const;
    const good = Array.from({ length: 30 }, (_, j) => ({ k: `k${j}`, e: j % 2 ? "a" : "b", i: j, x: j / 3 }));
    const cases: [string, Record<string, unknown>][] = [
      ["empty string", { k: "" }],
      ["too long", { k: "SECRET-too-long" }],
      ["not an enum value", { e: "SECRET" }],
      ["not a number", { i: "SECRET" }],
      ["not an integer", { i: "2.5" }],
      ["below min", { i: "-3" }],
      ["above max", { i: "1000" }],
      ["infinite", { x: "inf" }],
      ["number below min", { x: "-7.5" }],
      ["two bad columns, the first declared wins", { x: "nan", e: "SECRET" }],
    ];
    for (const [what, bad] of cases) {
      const rows = good.map((r, j) => (j === 17 ? { ...r, ...bad } : j === 23 ? { ...r, ...bad } : r));
      const p = writeCsv(`bad-${what.replaceAll(" ", "-")}.csv`, rows);
      const arrayPath = await refusal(() =>
        upload(lab("arquero"), { party: "retailer", name: "t", path: p, schema, purposes: "measurement" }),
      );
      const d = lab("duckdb", path.join(dir, `bad-${what.replaceAll(" ", "-")}.db`));
      const filePath = await refusal(() => upload(d, { party: "retailer", name: "t", path: p, schema, purposes: "measurement" }));
      expect(arrayPath, what).not.toBeNull();
      expect(filePath, what).toEqual(arrayPath);
      expect(filePath!.message, what).toContain("row 18");
      expect(filePath!.message, what).not.toContain("SECRET");
      // nothing stored: no catalog entry, and no file left in the room's files directory
      expect(internals(d).room.catalogNames(), what).toEqual([]);
      expect(fs.readdirSync(internals(d).room.filesDir()), what).toEqual([]);
      d.close();
    }
  }, 120_000);

  it("at rest only a sealed file: no plaintext on disk, a changed byte refuses to open (positive control: unchanged it opens)", async () => {
    const data = studyRows("at-rest", 300);
    const store = path.join(dir, "at-rest.db");
    const l = lab("duckdb", store);
    const r = await runLift(l, data, "file");
    expect(r.rows.length).toBeGreaterThan(0);
    const files = fs.readdirSync(`${store}.files`);
    expect(files.filter((f) => f.endsWith(".sealed"))).toHaveLength(2);
    expect(files.filter((f) => !f.endsWith(".sealed"))).toEqual([]); // no temp or work file stays
    const key = data.exposures[0]!.join_key;
    const source = fs.readFileSync(writeCsv("control.csv", data.exposures));
    expect(source.includes(Buffer.from(key))).toBe(true); // the control: the source holds the identifier in clear
    for (const f of files) {
      const b = fs.readFileSync(path.join(`${store}.files`, f));
      expect(b.includes(Buffer.from(key)), f).toBe(false);
      expect(b.includes(Buffer.from("PAR1")), f).toBe(false); // not even the Parquet magic
    }
    // the SQLite store holds the descriptor only sealed by the gate: no key, no identifier in clear
    expect(fs.readFileSync(store).includes(Buffer.from(key))).toBe(false);
    l.close();
    // reopened (a kernel restart), the dataset answers the same
    const again = openLab({ store, rng: { seed: "file-duck" }, engine: "duckdb" });
    const q = () =>
      query(again, { template: T, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" });
    expect((await q()).rows).toEqual(r.rows);
    // an arquero lab on the same store reads the file too (into memory): same answers
    const arq = openLab({ store, rng: { seed: "file-duck" }, engine: "arquero" });
    const ra = await query(arq, {
      template: T,
      params: { startDay: 0, endDay: 27 },
      party: "advertiser",
      analyst: "bo",
      purpose: "measurement",
    });
    expect(ra.rows).toEqual(r.rows);
    arq.close();
    again.close();
    // flip one byte of a sealed file: the next query (a fresh engine) is refused, nothing decrypted
    const victim = path.join(`${store}.files`, files[0]!);
    const b = fs.readFileSync(victim);
    b[b.length - 100] ^= 1;
    fs.writeFileSync(victim, b);
    const tampered = openLab({ store, rng: { seed: "file-duck" }, engine: "duckdb" });
    const e = await refusal(() =>
      query(tampered, { template: T, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" }),
    );
    expect(e?.code).toBe("CRYPTO_DECRYPT_FAILED");
    tampered.close();
  }, 120_000);

  it("the key is released only through the gate: a query without a purpose grant is refused before any file is opened", async () => {
    const data = studyRows("no-grant", 400);
    const store = path.join(dir, "no-grant.db");
    const l = lab("duckdb", store);
    const s = liftSchemas();
    await upload(l, {
      party: "advertiser",
      name: "exposures",
      path: writeCsv("ng-ex.csv", data.exposures),
      schema: s.exposures,
      purposes: "measurement",
      rule: liftRules(3).exposures,
    });
    await upload(l, {
      party: "retailer",
      name: "purchases",
      path: writeCsv("ng-pu.csv", data.purchases),
      schema: s.purchases,
      purposes: "measurement",
      rule: liftRules(3).purchases,
    });
    approveTemplate(l, { template: T, party: "advertiser" });
    approveTemplate(l, { template: T, party: "retailer" });
    // the engine's decrypted copies: nameless files this process holds open (Linux /proc)
    const copies = () =>
      fs.readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return fs.readlinkSync(`/proc/self/fd/${fd}`).includes("/crl-plain-");
        } catch {
          return false;
        }
      });
    const before = copies().length;
    const e = await refusal(() =>
      query(l, { template: T, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" }),
    );
    expect(e?.code).toMatch(/^(PURPOSE|GRANT)_/);
    expect(copies().length).toBe(before); // nothing was decrypted
    // positive control: with the grant the same query runs
    declarePurpose(l, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "lift" });
    const ok = await query(l, {
      template: T,
      params: { startDay: 0, endDay: 27 },
      party: "advertiser",
      analyst: "bo",
      purpose: "measurement",
    });
    expect(ok.rows.length).toBeGreaterThan(0);
    expect(copies().length).toBe(before + 2); // the observation's control: released keys do decrypt (both inputs)
    l.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(copies().length).toBe(before); // closing the lab frees the copies
  }, 60_000);

  it("progress: a file upload reports its phases (read, validate, fingerprint, seal, store)", async () => {
    const rng = seededRng("progress");
    const rows = Array.from({ length: 2000 }, (_, i) => ({ k: `k${i}`, v: rng.int(100) }));
    const p = writeCsv("progress.csv", rows);
    const phases: string[] = [];
    await upload(lab("duckdb"), {
      party: "retailer",
      name: "t",
      path: p,
      schema: { privacyUnit: "k", columns: { k: { type: "string" }, v: { type: "int", min: 0, max: 99 } } },
      purposes: "measurement",
      progress: (_d: number, _t: number, phase: string) => void (phases.includes(phase) || phases.push(phase)),
    });
    expect(phases).toEqual(["reading csv", "validate columns", "fingerprint", "seal file", "seal and store"]);
  });

  it("the cheap refusals (party, name taken, purposes) come before the file is read or anything is written", async () => {
    const data = studyRows("cheap-first", 60);
    const s = liftSchemas();
    const good = writeCsv("cheap-first.csv", data.exposures);
    const missing = path.join(dir, "no-such-file.csv");
    const store = path.join(dir, "cheap-first.db");
    const l = lab("duckdb", store);
    const files = `${store}.files`;
    const up = (o: Record<string, unknown>) =>
      refusal(() => upload(l, { party: "advertiser", name: "exposures", schema: s.exposures, purposes: "measurement", ...o } as never));
    // an unknown party with a readable file: refused typed, and the files directory is not even created
    expect((await up({ party: "nobody", path: good }))?.field).toBe("party");
    expect(fs.existsSync(files)).toBe(false);
    // no purposes (the verb's door): refused before the (missing) file is looked at
    expect((await up({ path: missing, purposes: undefined }))?.field).toMatch(/purposes/);
    expect(fs.existsSync(files)).toBe(false);
    // positive control: the missing file is refused for its path when the cheap checks pass
    expect((await up({ path: missing }))?.field).toBe("path");
    expect(await up({ path: good })).toBeNull();
    const after = fs.readdirSync(files);
    // the name is taken: ALREADY_EXISTS before the (missing) file is looked at; nothing new in the files directory
    expect(await up({ path: missing })).toMatchObject({ code: "ALREADY_EXISTS", field: "name" });
    expect(await up({ path: good })).toMatchObject({ code: "ALREADY_EXISTS", field: "name" });
    expect(fs.readdirSync(files)).toEqual(after);
    l.close();
  });
});
