/**
 * The party side of PSI from a file (issue 18): one identifier column streamed from CSV or
 * Parquet by DuckDB (identity/id-file.ts) gives the same prepared set, and the same join keys,
 * as the same rows passed as an array; a bad column is a typed refusal naming the column,
 * before any socket is opened; and a real two-process run with the file on one side (the
 * responder is scripts/psi-party.mjs --path, the initiator this test process). Needs the build
 * (kernel-lib/dist) for the script.
 */
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { duck } from "../../kernel-lib/src/cleanroom/duckdb.js";
import { prepareFile, prepareRows } from "../../kernel-lib/src/identity/id-file.js";
import { KeyRegistry } from "../../kernel-lib/src/identity/psi.js";
import { psiWithPeer } from "../../kernel-lib/src/identity/psi-party.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { psiPartyHarness } from "../helpers/psi-party-proc.js";

const SEED = "psi-file";
const { dir, spawn } = psiPartyHarness("psi-file-");
/** The retailer as scripts/psi-party.mjs, listening on a free port. */
const RESPONDER = ["--role", "responder", "--as", "retailer", "--peer", "advertiser", "--listen", "0"];

// 300 advertiser rows, 280 retailer rows, 170 shared people; messy casing on one side, a repeat
// purchase, an invalid row, an empty cell and a quoted value with a comma (invalid too) on the other.
const rng = seededRng(SEED);
const person = (i: number) => `canary${Buffer.from(rng.fork(`p${i}`).bytes(5)).toString("hex")}@mail${i % 5}.example`;
const people = Array.from({ length: 410 }, (_, i) => person(i));
const exposures = people.slice(0, 300).map((e, i) => ({ email: i % 4 === 0 ? ` ${e.toUpperCase()} ` : e }));
const retailerEmails = [...people.slice(130, 410), people[200]!, "not-an-email", "", '"odd, one"@x.example'];
const purchases = retailerEmails.map((e, i) => ({ order_id: `o${i}`, email: e, amount: String(i % 50) }));
const csvPath = path.join(dir, "purchases.csv");
const parquetPath = path.join(dir, "purchases.parquet");
const q = (v: string) => `"${v.replaceAll('"', '""')}"`;
fs.writeFileSync(csvPath, "order_id,email,amount\n" + purchases.map((r) => [r.order_id, q(r.email), r.amount].join(",")).join("\n") + "\n");

beforeAll(async () => {
  const inst = await duck().DuckDBInstance.create(":memory:");
  const conn = await inst.connect();
  await conn.run(`COPY (SELECT * FROM read_csv(?, header = true, all_varchar = true)) TO '${parquetPath}' (FORMAT parquet)`, [csvPath]);
  conn.closeSync();
  inst.closeSync();
});

describe("PSI identifiers from a file", { timeout: 120_000 }, () => {
  it("CSV and Parquet give exactly the prepared set of the same rows as an array (distinct, row map, rejections)", async () => {
    const fromRows = prepareRows(purchases, { column: "email" }, "rows");
    // an empty CSV cell is read as missing, as the array's "" is an empty string: both rejected
    for (const p of [csvPath, parquetPath]) {
      const fromFile = await prepareFile(p, { column: "email" });
      expect(fromFile.distinct, p).toEqual(fromRows.distinct);
      expect([...fromFile.rowToElement], p).toEqual([...fromRows.rowToElement]);
      expect(fromFile.rows).toBe(purchases.length);
      expect(fromFile.rejectedRows).toBe(fromRows.rejectedRows);
      expect(fromFile.rejectedRows).toBe(3);
    }
    expect(fromRows.distinct.length).toBe(280); // the repeat shares one; the quoted address is rejected on both paths
  });

  it("a column the file does not have is a typed INPUT_INVALID naming it and the column count, never a value", async () => {
    for (const p of [csvPath, parquetPath]) {
      const e = await prepareFile(p, { column: "emial" }).catch((x: unknown) => x);
      expect(isCleanRoomError(e) && e.code, p).toBe("INPUT_INVALID");
      const err = e as Error & { details: Record<string, unknown> };
      expect(err.details.field).toBe("column");
      expect(err.details.columns).toBe(3);
      expect(err.message).toContain("emial");
      expect(err.message).toContain("the file has 3 columns");
      expect(err.message).not.toContain("canary");
      expect(err.message).not.toContain("order_id"); // the headers are not listed either
    }
    // a CSV without a header line: DuckDB reads its first data row as the "column names"; none of it is echoed
    const headerless = path.join(dir, "headerless.csv");
    const first = purchases[0]!;
    fs.writeFileSync(headerless, purchases.map((r) => [r.order_id, q(r.email), r.amount].join(",")).join("\n") + "\n");
    const e = (await prepareFile(headerless, { column: "email" }).catch((x: unknown) => x)) as Error & { details: Record<string, unknown> };
    expect(isCleanRoomError(e) && e.code).toBe("INPUT_INVALID");
    expect(e.message).not.toContain(first.email);
    expect(e.message).not.toContain("canary");
    expect(JSON.stringify(e.details)).not.toContain("canary");
    // a row of the wrong type: its type, never its value (a number can be a phone number)
    const r = (() => {
      try {
        return prepareRows([{ email: "a@x.org" }, 15551234567], { column: "email" }, "rows");
      } catch (x) {
        return x;
      }
    })() as Error & { details: Record<string, unknown> };
    expect(isCleanRoomError(r) && r.code).toBe("INPUT_INVALID");
    expect(r.details).toMatchObject({ field: "rows[1]", got: "number" });
    expect(r.message).not.toContain("15551234567");
    expect(JSON.stringify(r.details)).not.toContain("15551234567");
    await expect(prepareFile(path.join(dir, "nope.csv"), {})).rejects.toThrow(/"path" expected an existing csv file/);
    await expect(prepareFile(path.join(dir, "purchases.txt"), {})).rejects.toThrow(/"path" expected a path ending in \.csv or \.parquet/);
  });

  it("psiWithPeer({ path }) refuses a bad column before opening any socket: the peer's listener sees no connection", async () => {
    let connections = 0;
    const server = net.createServer((s) => {
      connections++;
      s.destroy();
    });
    await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
    const port = (server.address() as net.AddressInfo).port;
    const e = await psiWithPeer({
      as: "retailer",
      peer: "advertiser",
      connect: port,
      path: parquetPath,
      column: "mail",
      retryMs: 200,
    }).catch((x: unknown) => x);
    server.close();
    expect(isCleanRoomError(e) && e.code).toBe("INPUT_INVALID");
    expect((e as { details: { field: string } }).details.field).toBe("column");
    expect(connections).toBe(0);
    await expect(
      psiWithPeer({ as: "retailer", peer: "advertiser", connect: port, path: parquetPath, rows: purchases, retryMs: 200 }),
    ).rejects.toThrow(/exactly one of rows .* or prepared, got 2/);
  });

  it("two processes, the retailer's side from a Parquet file (scripts/psi-party.mjs --path): the join keys of the array path", async () => {
    const registry = new KeyRegistry();
    const inproc = await runPsi(exposures, purchases, {
      mode: "joinKeys",
      rng: { seed: SEED },
      names: { a: "advertiser", b: "retailer" },
      registry,
      channel: true,
    });
    const out = path.join(dir, "retailer.json");
    const responder = spawn([
      ...RESPONDER,
      "--path",
      parquetPath,
      "--column",
      "email",
      "--out",
      out,
      "--seed",
      SEED,
      "--timeout-ms",
      "60000",
    ]);
    const port = await responder.listening();
    // this process is the advertiser, with its rows as an array (its own registry: a fresh kernel)
    const a = await psiWithPeer({
      as: "advertiser",
      peer: "retailer",
      connect: port,
      rows: exposures,
      rng: { seed: SEED },
      registry: new KeyRegistry(),
    });
    expect(await responder.exited).toBe(0);
    const b = JSON.parse(fs.readFileSync(out, "utf8"));
    expect(a.joinKeys).toEqual(inproc.joinKeysA);
    expect(b.joinKeys).toEqual(inproc.joinKeysB);
    expect(b.joinKeys).toHaveLength(purchases.length);
    expect(b.matchReport.intersectionSize).toBe(170);
    expect(b.matchReport.self.rows).toBe(purchases.length);
    expect(b.matchReport.self.rejectedRows).toBe(3);
  });

  it("scripts/psi-party.mjs --path with a bad column: exit 2, a typed error naming the column, before it listens", async () => {
    const proc = spawn(
      ["--role", "responder", "--as", "retailer", "--peer", "advertiser", "--listen", "0", "--path", csvPath, "--column", "e_mail"].concat([
        "--out",
        path.join(dir, "never.json"),
      ]),
    );
    expect(await proc.exited).toBe(2);
    const events = proc.events;
    expect(events.map((e) => e.event)).toEqual(["error"]);
    expect(events[0]).toMatchObject({ code: "INPUT_INVALID", field: "column" });
    expect(String(events[0]!.message)).toContain("e_mail");
    expect(fs.existsSync(path.join(dir, "never.json"))).toBe(false);
  });
});
