/**
 * DP benchmark (issue 5, "Performance"): samples/second of the exact samplers against a
 * naive float Laplace baseline drawing from the same byte source; the cost of the noise step
 * of a lift-sized release; fixed-point clamped sums vs a float sum over 1M values; ledger
 * charges/second in one process and under concurrency (K processes, one room file).
 * Not a timed test: prints numbers and ratios.
 *
 * Env: DP_BENCH_N (samples per sampler, default 2e5), DP_BENCH_CHARGES (per process, default 2000).
 * Run: node node_modules/typescript/bin/tsc -b && node test/bench/dp.bench.mjs
 */
import { report } from "./targets.mjs";
import { createRequire } from "node:module";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
const require = createRequire(import.meta.url);
const Database = require("better-sqlite3");
const M = require("../../kernel-lib/dist/dp/mechanisms.js");
const { rat } = require("../../kernel-lib/dist/dp/rational.js");
const { pureDp } = require("../../kernel-lib/dist/dp/accountant.js");
const { PrivacyLedger } = require("../../kernel-lib/dist/dp/ledger.js");
const { noisySumFixedPoint, releaseInteger } = require("../../kernel-lib/dist/dp/bounding.js");
const { secureRng, seededRng } = require("../../kernel-lib/dist/rng.js");

const N = Number(process.env.DP_BENCH_N ?? 2e5);
const CHARGES = Number(process.env.DP_BENCH_CHARGES ?? 2000);
const sleep = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

// ---- child mode: one "kernel" charging a shared ledger ------------------------------------
if (process.argv[2] === "--child") {
  const [, , , file, go, n] = process.argv;
  const l = new PrivacyLedger(new Database(file));
  process.stdout.write("READY\n");
  while (!existsSync(go)) sleep(1);
  const t0 = performance.now();
  let ok = 0;
  for (let i = 0; i < Number(n); i++) {
    l.chargeAtomic(
      "bench",
      [
        { scope: "collaboration", subject: "bench" },
        { scope: "party", subject: `p${i % 2}` },
      ],
      pureDp("0.001"),
      { queryId: String(i) },
    );
    ok++;
  }
  process.stdout.write(JSON.stringify({ ok, ms: performance.now() - t0 }) + "\n");
  process.exit(0);
}

function rate(label, n, fn) {
  fn(Math.min(n, 2000)); // warm-up
  const t0 = performance.now();
  fn(n);
  const s = (performance.now() - t0) / 1000;
  return { label, perSec: n / s, usPer: (s * 1e6) / n };
}

/** Naive float Laplace from the same Rng bytes: b · sign · ln(U) (what the library must NOT do). */
function floatLaplace(scale, n, rng) {
  const out = new Float64Array(n);
  let dv;
  for (let i = 0; i < n; i++) {
    const j = i % 512; // 4096-byte chunks, like the exact samplers
    if (j === 0) {
      const b = rng.bytes(4096);
      dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
    }
    const u = ((dv.getUint32(8 * j) >>> 11) * 4294967296 + dv.getUint32(8 * j + 4) + 1) / 2 ** 53;
    out[i] = (dv.getUint8(8 * j + 7) & 1 ? -1 : 1) * scale * Math.log(u);
  }
  return out;
}

const fmt = (x) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : x.toFixed(0));
console.log(`samplers (N = ${N} per row, chunked byte source, secure rng unless noted)`);
const rng = secureRng();
const base = rate("float Laplace baseline (scale 10)", N, (n) => floatLaplace(10, n, rng));
const rows = [
  rate("discrete Laplace scale 1", N, (n) => M.sampleDiscreteLaplaceMany(rat(1), n, rng)),
  rate("discrete Laplace scale 10", N, (n) => M.sampleDiscreteLaplaceMany(rat(10), n, rng)),
  rate("discrete Laplace scale 1000", N, (n) => M.sampleDiscreteLaplaceMany(rat(1000), n, rng)),
  rate("discrete Laplace scale 7/3", N, (n) => M.sampleDiscreteLaplaceMany(rat(7, 3), n, rng)),
  rate("discrete Laplace scale (2^61+1)/2^60 (bigint)", N / 4, (n) => M.sampleDiscreteLaplaceMany(rat(2n ** 61n + 1n, 2n ** 60n), n, rng)),
  rate("discrete Gaussian σ² 1", N, (n) => M.sampleDiscreteGaussianMany(rat(1), n, rng)),
  rate("discrete Gaussian σ² 100", N, (n) => M.sampleDiscreteGaussianMany(rat(100), n, rng)),
  rate("discrete Gaussian σ² 1e6", N, (n) => M.sampleDiscreteGaussianMany(rat(1_000_000), n, rng)),
  rate("discrete Gaussian σ² 1e8 (partly bigint)", N / 4, (n) => M.sampleDiscreteGaussianMany(rat(100_000_000), n, rng)),
  rate("discrete Laplace scale 10, scalar calls", N / 4, (n) => {
    for (let i = 0; i < n; i++) M.sampleDiscreteLaplace(rat(10), rng);
  }),
  rate("discrete Laplace scale 10, seeded rng", N, (n) => M.sampleDiscreteLaplaceMany(rat(10), n, seededRng("bench"))),
];
console.log(`  ${base.label.padEnd(48)} ${fmt(base.perSec).padStart(9)}/s  ${base.usPer.toFixed(3)} µs  (baseline)`);
for (const r of rows)
  console.log(
    `  ${r.label.padEnd(48)} ${fmt(r.perSec).padStart(9)}/s  ${r.usPer.toFixed(3)} µs  ×${(r.usPer / base.usPer).toFixed(1)} baseline`,
  );
const lap = rows.filter((r) => r.label.startsWith("discrete Laplace scale") && !r.label.includes(","));
const gau = rows.filter((r) => r.label.startsWith("discrete Gaussian"));
const span = (rs) => [Math.min(...rs.map((r) => r.perSec)), Math.max(...rs.map((r) => r.perSec))];
for (const [id, name, rs] of [
  ["dp.sampler-laplace", "discrete Laplace", lap],
  ["dp.sampler-gaussian", "discrete Gaussian", gau],
]) {
  const [lo, hi] = span(rs);
  report({
    id,
    what: `${name} sampler vs float Laplace (not safe), secure rng, ${rs.length} scales`,
    measured: `${fmt(lo)}–${fmt(hi)} samples/s vs ${fmt(base.perSec)}/s`,
    value: base.perSec / lo,
    unit: "× slower (worst scale)",
  });
}

// ---- noise step of a lift-sized release ------------------------------------------------
const cells = 40; // fbpcs lift metrics × test/control × a few breakdowns
const noiseT = rate(`noise for a ${cells}-cell lift release`, 200, (n) => {
  for (let k = 0; k < n; k++)
    for (let i = 0; i < cells; i++) releaseInteger(123456n, { kind: "laplace", epsilon: "0.1" }, { l1: 1n, l2Squared: 1n }, rng);
});
console.log(`\nnoise step: ${(noiseT.usPer / 1000).toFixed(3)} ms per ${cells}-cell release`);
report({
  id: "dp.noise-step",
  what: `exact noise for a ${cells}-cell lift release (discrete Laplace, ε 0.1 per cell)`,
  value: noiseT.usPer / 1000,
  unit: " ms",
  note: "cleanroom.bench.mjs relates it to the query time (target < 5%)",
});
const vals = new Float64Array(1_000_000);
for (let i = 0; i < vals.length; i++) vals[i] = ((i * 7919) % 100000) / 100;
const fsum = rate("float sum 1M", 5, (n) => {
  for (let k = 0; k < n; k++) {
    let s = 0;
    for (let i = 0; i < vals.length; i++) s += vals[i];
    if (s < 0) console.log(s);
  }
});
const fp = rate("fixed-point clamped noisy sum 1M", 5, (n) => {
  for (let k = 0; k < n; k++)
    noisySumFixedPoint(vals, { lower: "0", upper: "1000", grid: "0.01", noise: { kind: "gaussian", rho: "0.1" } }, rng);
});
console.log(
  `1M values: float sum ${(fsum.usPer / 1000).toFixed(2)} ms, clamp + fixed-point + exact noise ${(fp.usPer / 1000).toFixed(2)} ms (×${(fp.usPer / fsum.usPer).toFixed(1)})`,
);
console.log(
  `(compare with the 1M-row lift query time printed by cleanroom.bench.mjs: the ${cells}-cell noise step is ${(noiseT.usPer / 1000).toFixed(3)} ms)`,
);

// ---- ledger ------------------------------------------------------------------------------
const dir = mkdtempSync(path.join(tmpdir(), "dp-bench-"));
function freshLedgerFile(name) {
  const file = path.join(dir, name);
  const l = new PrivacyLedger(new Database(file));
  l.createBudget("bench", { scope: "collaboration", subject: "bench" }, pureDp("10000"));
  l.createBudget("bench", { scope: "party", subject: "p0" }, pureDp("10000"));
  l.createBudget("bench", { scope: "party", subject: "p1" }, pureDp("10000"));
  return { file, l };
}
{
  const { l } = freshLedgerFile("single.db");
  const r = rate("single process, WAL file, 2 budgets per charge", CHARGES, (n) => {
    for (let i = 0; i < n; i++)
      l.chargeAtomic(
        "bench",
        [
          { scope: "collaboration", subject: "bench" },
          { scope: "party", subject: `p${i % 2}` },
        ],
        pureDp("0.001"),
      );
  });
  console.log(`\nledger: ${r.label}: ${fmt(r.perSec)} charges/s (${r.usPer.toFixed(0)} µs each)`);
  report({
    id: "dp.ledger-1",
    what: "ledger check-and-charge, one process (SQLite WAL, IMMEDIATE transaction, 2 budgets per charge)",
    value: r.perSec,
    unit: " charges/s",
  });
}
const self = fileURLToPath(import.meta.url);
for (const K of [2, 4]) {
  const { file } = freshLedgerFile(`conc-${K}.db`);
  const go = `${file}.go`;
  const kids = Array.from({ length: K }, () =>
    spawn(process.execPath, [self, "--child", file, go, String(CHARGES)], { stdio: ["ignore", "pipe", "inherit"] }),
  );
  const outs = kids.map(
    (k) =>
      new Promise((resolve) => {
        let s = "";
        k.stdout.on("data", (d) => {
          s += d;
          if (s.includes("READY\n") && !k.ready) {
            k.ready = true;
            k.emit("ready");
          }
        });
        k.on("exit", () => resolve(s));
      }),
  );
  await Promise.all(kids.map((k) => new Promise((r) => (k.ready ? r() : k.once("ready", r)))));
  const t0 = performance.now();
  writeFileSync(go, "go");
  const res = (await Promise.all(outs)).map((s) => JSON.parse(s.trim().split("\n").pop()));
  const s = (performance.now() - t0) / 1000;
  const total = res.reduce((a, r) => a + r.ok, 0);
  const v = new PrivacyLedger(new Database(file)).verify();
  console.log(`ledger: ${K} processes on one file: ${fmt(total / s)} charges/s total (${total} charges, verify ${v.ok ? "ok" : "FAILED"})`);
  report({
    id: `dp.ledger-${K}`,
    what: `ledger check-and-charge, ${K} processes on one file`,
    measured: `${total} charges, chain verify ${v.ok ? "ok" : "FAILED"}`,
    value: total / s,
    unit: " charges/s",
  });
}
rmSync(dir, { recursive: true, force: true });
