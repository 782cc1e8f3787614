/**
 * Fault injection (issue 14): kill -9 at every named write point of the query road — budget
 * creation, the charge, the audit entry, head signing, head publication, the head file's
 * temp-write and rename — inside the library's own write path (CLEANROOM_FAULT, faults.ts),
 * each in a child process; then reopen and check what a user or auditor would see:
 *  - the audit chain verifies (a crash is never reported as tampering),
 *  - the ledger is self-consistent, nothing is overspent, and it reconciles with the audited
 *    charges (no charge without its audit entry, no audited charge missing from the ledger),
 *  - no half-written dataset (sealed bytes ⇔ catalogue row ⇔ its dataset budget),
 *  - the room stays usable: the same work run again afterwards completes and verifies.
 */
import { buildSync } from "esbuild";
import Database from "better-sqlite3";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FAULT_POINTS } from "../../kernel-lib/src/faults.js";
import { openLab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { query, setUp, studyRows } from "../dp/lab-fixture.js";

const root = path.resolve(__dirname, "../..");
const outDir = path.join(root, "node_modules/.cache/cleanroom-fault-tests");
let script = "";
let dir = "";

beforeAll(() => {
  fs.mkdirSync(outDir, { recursive: true });
  script = path.join(outDir, `fault-child-${process.pid}.mjs`);
  buildSync({
    entryPoints: [path.join(__dirname, "fixtures/fault-child.ts")],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: script,
    packages: "external",
    logLevel: "silent",
    // the library is CommonJS: its lazy require() (arquero, DuckDB) and __dirname need the CJS names in an ES module
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
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-faults-"));
});
const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); // none may outlive the suite
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
    const p = spawn(process.execPath, [script, store], { env, stdio: ["ignore", "pipe", "pipe"] });
    children.push(p);
    let stdout = "";
    let stderr = "";
    p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    p.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
}

/** What a user reopening the room sees; throws (with the kill point) on any inconsistency. */
function checkRoom(store: string, at: string): void {
  const lab = openLab({ store, rng: { seed: "faults" } });
  try {
    const v = lab.audit().verification;
    expect(v.ok, `${at}: ${v.problem} ${v.detail}`).toBe(true);
    const l = internals(lab).room.ledger.verify();
    expect(l.problems, at).toEqual([]);
    for (const b of lab.budget().budgets) {
      const spent = BigInt(b.spent.epsilon!.num) * BigInt(b.total.epsilon!.den);
      expect(spent <= BigInt(b.total.epsilon!.num) * BigInt(b.spent.epsilon!.den), `${at}: ${b.scope}/${b.subject} overspent`).toBe(true);
    }
  } finally {
    lab.close();
  }
  const db = new Database(store, { readonly: true });
  try {
    const sealed = (db.prepare("SELECT dataset_id FROM purpose_sealed_datasets ORDER BY dataset_id").all() as { dataset_id: string }[]).map(
      (r) => r.dataset_id,
    );
    const catalogue = db.prepare("SELECT key, meta_json FROM lab_datasets ORDER BY key").all() as { key: string; meta_json: string }[];
    expect(
      catalogue.map((r) => r.key),
      `${at}: sealed bytes and catalogue disagree`,
    ).toEqual(sealed);
    const hasConfig = db.prepare("SELECT COUNT(*) AS n FROM sqlite_master WHERE name = 'lab_room_config'").get() as { n: number };
    if (hasConfig.n)
      for (const r of catalogue) {
        const fp = (JSON.parse(r.meta_json) as { fingerprint: string }).fingerprint;
        expect(
          db.prepare("SELECT COUNT(*) AS n FROM dp_budgets WHERE scope = 'dataset' AND subject = ?").get(`sha256:${fp}`),
          `${at}: dataset without its budget`,
        ).toEqual({ n: 1 });
      }
  } finally {
    db.close();
  }
}

describe("kill -9 at every write point of the query road", () => {
  it("every kill leaves a consistent, verifiable room that keeps working", async () => {
    // 1. enumerate the points one full run hits, in order
    const traced = await run(path.join(dir, "trace.db"), "?");
    expect(traced.code, traced.stderr).toBe(0);
    const hits = traced.stderr
      .split("\n")
      .filter((l) => l.startsWith("fault-point "))
      .map((l) => l.slice(12));
    expect(new Set(hits)).toEqual(new Set(FAULT_POINTS)); // every declared point is on the road
    // 2. kill at the first, a middle and the last hit of each point
    const kills: string[] = [];
    for (const p of FAULT_POINTS) {
      const n = hits.filter((h) => h === p).length;
      for (const k of new Set([1, Math.ceil(n / 2), n])) kills.push(`${p}@${k}`);
    }
    const data = studyRows(); // what the child uploads (same seed, same rows)
    let consistent = 0;
    for (let i = 0; i < kills.length; i += 2) {
      const batch = kills.slice(i, i + 2);
      await Promise.all(
        batch.map(async (k, j) => {
          const store = path.join(dir, `kill-${i + j}.db`);
          const killed = await run(store, k);
          expect(killed.signal, `${k} did not kill the child: ${killed.stderr}`).toBe("SIGKILL");
          checkRoom(store, k);
          // the room keeps working after the crash: the same work again, in this process
          const lab = openLab({ store, rng: { seed: "faults" }, budget: { epsilon: 4 } });
          setUp(lab, data);
          await query(lab).catch((e: unknown) => {
            if (!isCleanRoomError(e, "BUDGET_EXCEEDED")) throw e; // a late kill: the budget is spent, the refusal is correct
          });
          expect(lab.audit().verification.ok, k).toBe(true);
          lab.close();
          checkRoom(store, `${k} (after running again)`);
          consistent++;
        }),
      );
    }
    expect(consistent).toBe(kills.length);
    console.log(`kill points: ${kills.length} (${FAULT_POINTS.length} write points), all consistent`);
  }, 600_000);

  it("two kernels querying one room at once: no false tamper finding, the ledger reconciles", async () => {
    const store = path.join(dir, "two-kernels.db");
    const lab = openLab({ store, rng: { seed: "faults" }, budget: { epsilon: 4 } });
    setUp(lab, studyRows());
    lab.close();
    const both = await Promise.all([run(store), run(store)]);
    for (const r of both) {
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe("DONE true");
    }
    checkRoom(store, "two kernels");
  }, 120_000);
});
