#!/usr/bin/env node
/**
 * `npm run bench`: build, then run every test/bench/*.bench.mjs with Node, one after another,
 * passing their output through. Benchmarks import the built library (kernel-lib/dist) and
 * print ratios against an in-run baseline; nothing here asserts on timing.
 *
 *   npm run bench                 all benchmarks
 *   npm run bench -- psi dp       only files whose name contains one of the words
 *
 * Exit status: non-zero if any benchmark script exits non-zero. A missing test/bench/ is fine.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { bootstrap } from "./bootstrap.mjs";
import { ROOT } from "./common.mjs";

bootstrap({ browser: false });

const dir = path.join(ROOT, "test", "bench");
const filters = process.argv.slice(2).filter((a) => !a.startsWith("-"));
const files = fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".bench.mjs") && (!filters.length || filters.some((w) => f.includes(w))))
      .sort()
  : [];
if (files.length === 0) {
  console.log("no benchmarks found (test/bench/*.bench.mjs)");
  process.exit(0);
}

const failed = [];
for (const f of files) {
  console.log(`\n── bench ${f}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(dir, f)], { cwd: ROOT, stdio: ["ignore", "inherit", "inherit"] });
  const status = r.error ? 127 : (r.status ?? 1);
  console.log(`── ${f}: ${status === 0 ? "done" : `FAILED (exit ${status})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (status !== 0) failed.push(f);
}
if (failed.length) {
  console.error(`\n${failed.length} benchmark(s) failed: ${failed.join(", ")}`);
  process.exit(1);
}
