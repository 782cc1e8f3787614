/**
 * Fault injection for file-backed uploads (issue 18): kill -9 inside the write path of a file
 * upload on a DuckDB lab — after a sealed chunk is written, before and after the rename to the
 * final name, and inside the catalog transaction before it commits — each in a child process;
 * then reopen the store and check what a user sees:
 *  - nothing catalogued (no dataset, no sealed blob, no dataset budget),
 *  - no orphan: the room's files directory is empty once the room is reopened,
 *  - the same upload then succeeds and gives the fingerprint an uninterrupted run gives.
 */
import { buildSync } from "esbuild";
import Database from "better-sqlite3";
import { spawn, type ChildProcess } from "node:child_process";
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FILE_FAULT_POINTS } from "../../kernel-lib/src/faults.js";
import { addParty, openLab, upload } from "../../kernel-lib/src/index.js";
import { SEAL_CHUNK } from "../../kernel-lib/src/cleanroom/file-seal.js";

const root = path.resolve(__dirname, "../..");
const outDir = path.join(root, "node_modules/.cache/cleanroom-fault-tests");
let script = "";
let dir = "";
let csv = "";
const children: ChildProcess[] = [];

beforeAll(() => {
  fs.mkdirSync(outDir, { recursive: true });
  script = path.join(outDir, `file-upload-child-${process.pid}.mjs`);
  buildSync({
    entryPoints: [path.join(__dirname, "fixtures/file-upload-child.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: script,
    packages: "external",
    logLevel: "silent",
    banner: {
      js: [
        'import { createRequire as __crlRequire } from "node:module";',
        'import { fileURLToPath as __crlPath } from "node:url";',
        "const require = __crlRequire(import.meta.url);",
        "const __filename = __crlPath(import.meta.url);",
        'const __dirname = __filename.slice(0, __filename.lastIndexOf("/"));',
      ].join("\n"),
    },
  });
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-file-faults-"));
  // big enough for two sealed chunks (hash-like keys do not compress away: ~5.5 MB of Parquet)
  csv = path.join(dir, "sales.csv");
  const lines = ["k,v"];
  for (let i = 0; i < 300_000; i++) lines.push(`key_${createHash("md5").update(String(i)).digest("hex")},${i % 1001}`);
  fs.writeFileSync(csv, lines.join("\n") + "\n");
});
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(script, { force: true });
});

function run(
  store: string,
  fault?: string,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const env = { ...process.env };
    if (fault === undefined) delete env.CLEANROOM_FAULT;
    else env.CLEANROOM_FAULT = fault;
    const p = spawn(process.execPath, [script, store, csv], { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(p);
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

const schema = { privacyUnit: "k", columns: { k: { type: "string" }, v: { type: "int", min: 0, max: 1000 } } } as const;

describe("kill -9 inside a file-backed upload", () => {
  it("every kill leaves nothing catalogued and no orphan file; the upload then succeeds", async () => {
    const clean = await run(path.join(dir, "clean.db"));
    expect(clean.code, clean.stderr).toBe(0);
    const fingerprint = /DONE ([0-9a-f]{64})/.exec(clean.stdout)![1]!;
    const traced = await run(path.join(dir, "trace.db"), "?");
    expect(traced.code, traced.stderr).toBe(0);
    const hits = traced.stderr
      .split("\n")
      .filter((l) => l.startsWith("fault-point file."))
      .map((l) => l.slice(12));
    expect(new Set(hits)).toEqual(new Set(FILE_FAULT_POINTS)); // every declared point is on the road
    expect(hits.filter((h) => h === "file.sealChunk").length).toBeGreaterThan(1); // a kill between chunks is possible
    const kills = FILE_FAULT_POINTS.flatMap((p) => (p === "file.sealChunk" ? [`${p}@1`, `${p}@2`] : [p]));
    for (const k of kills) {
      const store = path.join(dir, `kill-${k.replace(/[@.]/g, "-")}.db`);
      const killed = await run(store, k);
      expect(killed.signal, `${k} did not kill the child: ${killed.stderr}`).toBe("SIGKILL");
      expect(fs.readdirSync(`${store}.files`).length, `${k}: the kill left something to sweep`).toBeGreaterThan(0);
      // reopen: nothing catalogued, the orphan swept
      const lab = openLab({ store, rng: { seed: "file-faults" }, budget: { epsilon: 4 }, engine: "duckdb" });
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
      lab.close();
    }
    expect(SEAL_CHUNK).toBeGreaterThan(0);
  }, 600_000);
});
