/**
 * Fault injection for file-backed uploads (issue 18): kill -9 inside the write path of a file
 * upload on a DuckDB lab — after a sealed chunk is written, before and after the rename to the
 * final name, and inside the catalog transaction before it commits — each in a child process;
 * then reopen the store and check what a user sees:
 *  - nothing catalogued (no dataset, no sealed blob, no dataset budget),
 *  - no orphan: the room's files directory is empty once the room is reopened,
 *  - the same upload then succeeds and gives the fingerprint an uninterrupted run gives.
 */
import Database from "better-sqlite3";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FILE_FAULT_POINTS } from "../../kernel-lib/src/faults.js";
import { addParty, openLab, upload } from "../../kernel-lib/src/index.js";
import { faultChild, inBatches, tracedPoints, type FaultChild } from "./harness.js";

let child: FaultChild;
let dir = "";
let csv = "";

beforeAll(() => {
  child = faultChild("file-upload-child");
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-file-faults-"));
  // big enough for two sealed chunks (hash-like keys do not compress away: ~5.5 MB of Parquet)
  csv = path.join(dir, "sales.csv");
  const lines = ["k,v"];
  for (let i = 0; i < 300_000; i++) lines.push(`key_${createHash("md5").update(String(i)).digest("hex")},${i % 1001}`);
  fs.writeFileSync(csv, lines.join("\n") + "\n");
});
afterAll(() => {
  child?.dispose();
  fs.rmSync(dir, { recursive: true, force: true });
});
const run = (store: string, fault?: string) => child.run([store, csv], fault);

const schema = { privacyUnit: "k", columns: { k: { type: "string" }, v: { type: "int", min: 0, max: 1000 } } } as const;

describe("kill -9 inside a file-backed upload", () => {
  it("every kill leaves nothing catalogued and no orphan file; the upload then succeeds", async () => {
    // an uninterrupted run (CLEANROOM_FAULT=? only lists the points it passes): its fingerprint, its points
    const traced = await run(path.join(dir, "trace.db"), "?");
    expect(traced.code, traced.stderr).toBe(0);
    const fingerprint = /DONE ([0-9a-f]{64})/.exec(traced.stdout)![1]!;
    const hits = tracedPoints(traced.stderr, "file.");
    expect(new Set(hits)).toEqual(new Set(FILE_FAULT_POINTS)); // every declared point is on the road
    expect(hits.filter((h) => h === "file.sealChunk").length).toBeGreaterThan(1); // a kill between chunks is possible
    const kills = FILE_FAULT_POINTS.flatMap((p) => (p === "file.sealChunk" ? [`${p}@1`, `${p}@2`] : [p]));
    let checked = 0;
    // two children at once (2 cores); each kill has its own store
    await inBatches(kills, 2, async (k) => {
      const store = path.join(dir, `kill-${k.replace(/[@.]/g, "-")}.db`);
      const killed = await run(store, k);
      expect(killed.signal, `${k} did not kill the child: ${killed.stderr}`).toBe("SIGKILL");
      expect(fs.readdirSync(`${store}.files`).length, `${k}: the kill left something to sweep`).toBeGreaterThan(0);
      // reopen: nothing catalogued, the orphan swept
      const lab = openLab({ store, rng: { seed: "file-faults" }, budget: { epsilon: 4 }, engine: "duckdb" });
      try {
        addParty(lab, { party: "retailer" });
        expect(lab.datasets("retailer"), k).toEqual([]);
        expect(fs.readdirSync(`${store}.files`), `${k}: orphan left`).toEqual([]);
        const db = new Database(store, { readonly: true });
        expect(db.prepare("SELECT COUNT(*) AS n FROM purpose_sealed_datasets").get(), k).toEqual({ n: 0 });
        expect(db.prepare("SELECT COUNT(*) AS n FROM dp_budgets WHERE scope = 'dataset'").get(), k).toEqual({ n: 0 });
        db.close();
        // the room keeps working: the same upload succeeds, same content, same fingerprint
        const r = await upload(lab, { party: "retailer", name: "sales", path: csv, schema, purposes: "measurement" });
        expect(r.fingerprint, k).toBe(fingerprint);
        expect(
          fs.readdirSync(`${store}.files`).filter((f) => f.endsWith(".sealed")),
          k,
        ).toHaveLength(1);
      } finally {
        lab.close();
      }
      checked++;
    });
    expect(checked).toBe(kills.length);
  }, 600_000);
});
