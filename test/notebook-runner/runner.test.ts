/**
 * The notebook runner (scripts/run-notebooks.py) against fixture notebooks: a failing cell
 * must fail the run and the report must name the notebook, the cell index, ename and evalue.
 * Spawns the real runner: nbclient + the cleanroom-ts kernel.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";

const ROOT = path.resolve(__dirname, "..", "..");

interface RunReport {
  passed: number;
  failed: number;
  notebooks: {
    notebook: string;
    status: "passed" | "failed";
    executed: string;
    error: { cell_index: number; ename: string; evalue: string; traceback: string[] } | null;
  }[];
}

/** nbformat stores multi-line strings as lists of lines. */
const joined = (v: string | string[]) => (Array.isArray(v) ? v.join("") : v);

function runRunner(notebooks: string[]) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), "cleanroom-runner-"));
  const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "scripts", "run-notebooks.py"), ...notebooks, "--out", out], {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, PYDEVD_DISABLE_FILE_VALIDATION: "1" },
  });
  const report = JSON.parse(fs.readFileSync(path.join(out, "report.json"), "utf8")) as RunReport;
  return { status: r.status, stdout: r.stdout, report, out };
}

describe("run-notebooks.py", () => {
  it("fails the run and names notebook, cell index, ename and evalue of the failing cell", () => {
    const { status, stdout, report, out } = runRunner(["test/fixtures/passing.ipynb", "test/fixtures/failing.ipynb"]);
    expect(status).toBe(1);
    expect([report.passed, report.failed]).toEqual([1, 1]);

    const [ok, bad] = report.notebooks;
    expect(ok).toMatchObject({ notebook: "test/fixtures/passing.ipynb", status: "passed", error: null });
    expect(bad).toMatchObject({
      notebook: "test/fixtures/failing.ipynb",
      status: "failed",
      error: { cell_index: 2, ename: "RangeError", evalue: "deliberate failure in fixture: before=21" },
    });
    expect(bad!.error!.traceback[0]).toBe("RangeError: deliberate failure in fixture: before=21");
    expect(stdout).toContain("test/fixtures/failing.ipynb: cell 2: RangeError: deliberate failure in fixture: before=21");

    // The executed copy keeps outputs up to the failure and never ran the cell after it.
    const executed = JSON.parse(fs.readFileSync(path.join(out, "failing.ipynb"), "utf8"));
    expect(executed.cells[1].outputs[0].output_type).toBe("execute_result");
    expect(joined(executed.cells[1].outputs[0].data["text/plain"])).toBe("42");
    expect(executed.cells[2].outputs[0]).toMatchObject({ output_type: "error", ename: "RangeError" });
    expect(executed.cells[3].outputs).toEqual([]);
  });

  it("passes a notebook whose cells all succeed and saves its outputs", () => {
    const { status, report, out } = runRunner(["test/fixtures/passing.ipynb"]);
    expect(status).toBe(0);
    expect([report.passed, report.failed]).toEqual([1, 0]);
    const executed = JSON.parse(fs.readFileSync(path.join(out, "passing.ipynb"), "utf8"));
    expect(joined(executed.cells[0].outputs[0].data["text/plain"])).toBe("15");
  });

  it("refuses a notebook path that does not exist with a usage error", () => {
    const r = spawnSync("/usr/bin/python3", [path.join(ROOT, "scripts", "run-notebooks.py"), "no/such.ipynb"], {
      cwd: ROOT,
      encoding: "utf8",
      stdio: ["ignore", "pipe", "pipe"],
    });
    expect(r.status).toBe(2);
    expect(r.stderr).toContain("no such notebook: no/such.ipynb");
  });
});
