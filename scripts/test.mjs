#!/usr/bin/env node
/**
 * `npm test`: bootstrap the machine, run every test suite, print one summary line.
 *
 *   npm test                      all suites
 *   npm test -- --only=kernel,notebooks   a subset (names below)
 *
 * Each suite prints its own output and then `suite <name>: N passed, N failed (T s)`.
 * The last line is exactly `N passed, N failed` (totals); the exit status is non-zero if
 * anything failed or a suite could not report. Works with no stdin (CI) and on a fresh clone.
 *
 * Adding a suite: append an object to SUITES with `name`, optional `enabled()` (return false
 * to skip, e.g. when its files do not exist) and `run()` resolving to {passed, failed}.
 * Use `runTee` to run a command while echoing its output, and `jupyterEnv()` for anything
 * that starts a kernel. Run-time files go under .scratch/test/.
 */
import fs from "node:fs";
import path from "node:path";
import { bootstrap } from "./bootstrap.mjs";
import { ROOT, PYTHON, jupyterEnv, runTee, scratchDir } from "./common.mjs";

const E2E = path.join(ROOT, "test", "e2e", "run.mjs");
const SUMMARY = /^(\d+) passed, (\d+) failed\s*$/;

/** Count a suite that could not report as one failure, with a reason. */
const broken = (why) => ({ passed: 0, failed: 1, note: why });

export const SUITES = [
  {
    // Four checks, each one pass or fail: Prettier formatting, typescript-eslint, no import
    // cycle in kernel-lib/src, no line over 160 characters (scripts/arch-metrics.mjs).
    name: "lint",
    async run({ env }) {
      const bin = (p) => path.join(ROOT, "node_modules", ...p.split("/"));
      const checks = [
        ["prettier", [bin("prettier/bin/prettier.cjs"), "--check", "--log-level=warn", "."]],
        ["eslint", [bin("eslint/bin/eslint.js"), "--max-warnings=0", "."]],
        ["architecture", [path.join(ROOT, "scripts", "arch-metrics.mjs"), "--check"]],
      ];
      let passed = 0;
      let failed = 0;
      const notes = [];
      for (const [name, args] of checks) {
        const r = await runTee(process.execPath, args, { env });
        if (name === "architecture") {
          // two checks in one run: import cycles and wide lines
          const cyc = /import cycles: (\d+)/.exec(r.output);
          const wide = /lines over 160 characters: (\d+)/.exec(r.output);
          for (const [what, m] of [
            ["import cycles", cyc],
            ["wide lines", wide],
          ]) {
            if (m && Number(m[1]) === 0) passed++;
            else {
              failed++;
              notes.push(`${what}: ${m ? m[1] : "not reported"}`);
            }
          }
        } else if (r.status === 0) passed++;
        else {
          failed++;
          notes.push(`${name} exited ${r.status}`);
        }
      }
      return { passed, failed, ...(notes.length ? { note: notes.join("; ") } : {}) };
    },
  },
  {
    name: "vitest",
    async run({ env, dir }) {
      const out = path.join(dir, "vitest.json");
      fs.rmSync(out, { force: true });
      const vitest = path.join(ROOT, "node_modules", "vitest", "vitest.mjs");
      const r = await runTee(process.execPath, [vitest, "run", "--reporter=default", "--reporter=json", `--outputFile.json=${out}`], {
        env,
      });
      if (!fs.existsSync(out)) return broken(`vitest wrote no report (exit ${r.status})`);
      const j = JSON.parse(fs.readFileSync(out, "utf8"));
      // A test file that fails to load has no failed assertions: count it as one failure.
      const brokenFiles = (j.testResults || []).filter(
        (f) => f.status === "failed" && !(f.assertionResults || []).some((a) => a.status === "failed"),
      ).length;
      const res = { passed: j.numPassedTests, failed: j.numFailedTests + brokenFiles, skipped: j.numPendingTests + (j.numTodoTests || 0) };
      if (r.status !== 0 && res.failed === 0) return { ...res, failed: 1, note: `vitest exited ${r.status}` };
      return res;
    },
  },
  {
    name: "kernel",
    async run({ env }) {
      const r = await runTee(PYTHON, ["-m", "unittest", "discover", "-s", "test/kernel", "-p", "test_*.py", "-v"], { env });
      const ran = /^Ran (\d+) tests? in/m.exec(r.output);
      if (!ran) return broken(`unittest did not finish (exit ${r.status})`);
      const count = (k) => Number((new RegExp(`${k}=(\\d+)`).exec(r.output.slice(ran.index)) || [0, 0])[1]);
      const failed = count("failures") + count("errors") + count("unexpected successes");
      const skipped = count("skipped") + count("expected failures");
      const res = { passed: Math.max(0, Number(ran[1]) - failed - skipped), failed, skipped };
      if (r.status !== 0 && failed === 0) return { ...res, failed: 1, note: `unittest exited ${r.status}` };
      return res;
    },
  },
  {
    name: "notebooks",
    async run({ env, dir }) {
      const out = path.join(dir, "notebooks-out");
      const report = path.join(out, "report.json");
      fs.rmSync(report, { force: true });
      const r = await runTee(PYTHON, [path.join(ROOT, "scripts", "run-notebooks.py"), "--out", out], { env });
      if (!fs.existsSync(report)) return broken(`run-notebooks.py wrote no report (exit ${r.status})`);
      const j = JSON.parse(fs.readFileSync(report, "utf8"));
      return { passed: j.passed, failed: j.failed };
    },
  },
  {
    name: "e2e",
    enabled: () => fs.existsSync(E2E),
    async run({ env }) {
      const r = await runTee(process.execPath, [E2E], { env });
      const last = r.output.trimEnd().split("\n").pop() || "";
      const m = SUMMARY.exec(last);
      if (!m) return broken(`test/e2e/run.mjs did not end with "N passed, N failed" (exit ${r.status})`);
      const res = { passed: Number(m[1]), failed: Number(m[2]) };
      if (r.status !== 0 && res.failed === 0) return { ...res, failed: 1, note: `e2e exited ${r.status}` };
      return res;
    },
  },
];

function parseOnly(argv) {
  const arg = argv.find((a) => a.startsWith("--only="));
  if (!arg) return null;
  const names = arg.slice("--only=".length).split(",").filter(Boolean);
  const unknown = names.filter((n) => !SUITES.some((s) => s.name === n));
  if (unknown.length) {
    console.error(`unknown suite(s): ${unknown.join(", ")}; known: ${SUITES.map((s) => s.name).join(", ")}`);
    process.exit(2);
  }
  return new Set(names);
}

async function main() {
  const only = parseOnly(process.argv.slice(2));
  const started = Date.now();
  bootstrap({ browser: fs.existsSync(E2E) });
  const env = jupyterEnv({ CI: process.env.CI || "1", NO_COLOR: "1" });
  const dir = scratchDir("test");

  const results = [];
  for (const suite of SUITES) {
    if (only && !only.has(suite.name)) continue;
    if (suite.enabled && !suite.enabled()) {
      console.log(`\n── suite ${suite.name}: skipped (not present)`);
      continue;
    }
    console.log(`\n── suite ${suite.name}`);
    const t0 = Date.now();
    let res;
    try {
      res = await suite.run({ env, dir });
    } catch (e) {
      res = broken(`suite crashed: ${e && e.stack ? e.stack : e}`);
    }
    const seconds = ((Date.now() - t0) / 1000).toFixed(1);
    results.push({ name: suite.name, ...res, seconds });
  }

  console.log("\n── summary");
  for (const r of results) {
    const extra = [r.skipped ? `${r.skipped} skipped` : "", r.note || ""].filter(Boolean).join("; ");
    console.log(`suite ${r.name}: ${r.passed} passed, ${r.failed} failed (${r.seconds} s)${extra ? ` — ${extra}` : ""}`);
  }
  const passed = results.reduce((a, r) => a + r.passed, 0);
  const failed = results.reduce((a, r) => a + r.failed, 0);
  console.log(`total time ${((Date.now() - started) / 1000).toFixed(1)} s`);
  console.log(`${passed} passed, ${failed} failed`);
  process.exitCode = failed > 0 ? 1 : 0;
}

main();
