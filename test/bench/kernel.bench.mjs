/**
 * Kernel bench (issue 18): start → first `openLab` cell and a warm trivial cell, the project
 * kernel (cleanroom-ts over tslab) as ratios to Debian's IPython kernel measured in the same
 * run. The measuring is done by test/bench/kernel_bench.py with jupyter_client (Debian's
 * python3); this file runs it so `npm run bench` includes it. Uses the BUILT library.
 *
 *   node test/bench/kernel.bench.mjs            # 3 fresh kernels each, 20 warm cells
 *   KERNEL_BENCH_REPS=5 node test/bench/kernel.bench.mjs
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const reps = process.env.KERNEL_BENCH_REPS ?? "3";
const r = spawnSync("/usr/bin/python3", [path.join(here, "kernel_bench.py"), "--reps", reps], { stdio: "inherit" });
process.exit(r.error ? 127 : (r.status ?? 1));
