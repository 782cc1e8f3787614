/**
 * PSI benchmark (issue 3, "Performance"): end-to-end joinKeys PSI on the same data, per
 * side N, with
 *   - noble backend (1 thread)                       — the reference implementation
 *   - libsodium backend, 1 thread and all cores      — WASM, worker threads
 *   - native baseline: sodium-native `crypto_scalarmult_ed25519_noclamp` doing the same
 *     number of variable-base scalar multiplications (4N: each side blinds its own N and the
 *     peer's N); sodium-native has no ristretto binding, ed25519 noclamp is the stand-in.
 * Prints times and ratios to the native baseline; every README row goes through report()
 * (test/bench/targets.mjs). Imports the BUILT library.
 *
 *   node test/bench/psi.bench.mjs     # DEFAULT: every issue-18 PSI target in one run, ≈ 7 min on 2 idle
 *                                     # cores: 10k (native, libsodium 1 and all threads, noble, psi.js)
 *                                     # and 1M × 1M on all cores with its peak RSS
 *   PSI_BENCH_SIZES=10000 …           # 10k only (≈ 1 min)
 *   PSI_BENCH_SIZES=10000,300000 …    # scaling at 300k: prints t(N) / (N/10k × t(10k)) and a labelled 1M extrapolation
 *   PSI_BENCH_NOBLE_MAX=0 PSI_BENCH_1T_MAX=0 PSI_BENCH_NATIVE_MAX=10000 …   # skip noble / 1 thread / native above these sizes
 *   PSI_BENCH_THREADS=4 …             # override "all cores"
 *
 * Report ids: psi.10k-vs-native, psi.psijs-ratio, psi.1m-scaling and psi.1m-peak-rss (at 1M;
 * any other N > 10k reports psi.scaling-<N> and psi.peak-rss-<N> with no 1M claim).
 *
 * Issue 18 targets, printed next to the measured ratios:
 *   - 10k × 10k on all cores ≤ 0.9 × the native single-thread baseline;
 *   - scaling: t(1M) ≤ 1.15 × (100 × t(10k)), both in this run (all cores);
 *   - peak memory at 1M ≤ 1 GiB (RSS sampled every 100 ms during the run, rows included).
 * Sizes above 10k are measured with all cores only (1 thread up to PSI_BENCH_1T_MAX, native
 * up to PSI_BENCH_NATIVE_MAX, noble up to PSI_BENCH_NOBLE_MAX, all default 10000). OpenMined's psi.js runs at 10k and its
 * ratio is printed: the bench installs it itself into a scratch directory outside the repo
 * (PSI_BENCH_OPENMINED_DIR, default $TMPDIR/cleanroom-lab-psijs) with `npm install --no-save
 * --ignore-scripts @openmined/psi.js` (its postinstall downloads from outside npm; the WASM is in
 * the tarball); if that fails the line says why. PSI_BENCH_OPENMINED=0 skips it.
 * Runs at N ≥ 300k log each phase (elapsed, RSS) to stderr as it starts.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { report } from "./targets.mjs";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { runPsi } = require(path.join(root, "kernel-lib/dist/identity/run-psi.js"));
const { KeyRegistry } = require(path.join(root, "kernel-lib/dist/identity/psi.js"));
const sodiumNative = require("sodium-native");

const sizes = (process.env.PSI_BENCH_SIZES ?? "10000,1000000").split(",").map((s) => Number(s.trim()));
const nobleMax = Number(process.env.PSI_BENCH_NOBLE_MAX ?? 10000);
const cores = Number(process.env.PSI_BENCH_THREADS ?? os.availableParallelism());
const oneThreadMax = Number(process.env.PSI_BENCH_1T_MAX ?? 10000);
const nativeMax = Number(process.env.PSI_BENCH_NATIVE_MAX ?? 10000);
const GiB = 2 ** 30;
const tty = process.stderr.isTTY;

function data(n) {
  // half of each side overlaps; messy casing so normalisation is part of the run
  const a = Array.from({ length: n }, (_, i) => ({ email: `User${i}@Example.com` }));
  const b = Array.from({ length: n }, (_, i) => ({ email: ` user${i + Math.floor(n / 2)}@example.com` }));
  return { a, b };
}

function nativeBaseline(mults) {
  const p = Buffer.alloc(32);
  const n = Buffer.alloc(32);
  const q = Buffer.alloc(32);
  sodiumNative.randombytes_buf(n);
  n[31] &= 0x0f; // a scalar below 2^252
  sodiumNative.crypto_scalarmult_ed25519_base_noclamp(p, n);
  const c = process.cpuUsage();
  const t = performance.now();
  for (let i = 0; i < mults; i++) {
    sodiumNative.crypto_scalarmult_ed25519_noclamp(q, n, p);
    q.copy(p); // feed forward so the work can't be skipped
  }
  return { ms: performance.now() - t, cpu: cpuMs(c) };
}

/** CPU time of this process (all threads, incl. workers) since `start`, in ms. */
function cpuMs(start) {
  const d = process.cpuUsage(start);
  return (d.user + d.system) / 1000;
}

let peakRss = 0;
let runPeak = 0;
const sample = setInterval(() => {
  const rss = process.memoryUsage().rss;
  peakRss = Math.max(peakRss, rss);
  runPeak = Math.max(runPeak, rss);
}, 100);
sample.unref();

/**
 * OpenMined psi.js, installed by this bench into a scratch directory OUTSIDE the repository
 * (never into its node_modules): `npm install --no-save --ignore-scripts @openmined/psi.js`.
 * --ignore-scripts because its postinstall downloads from outside the npm registry; the
 * npm tarball already carries its WASM (inlined in psi_wasm_node.js), so it runs without it.
 * Returns the loaded module, or { why } when it cannot be installed or loaded.
 */
function loadOpenMined() {
  if (process.env.PSI_BENCH_OPENMINED === "0") return { why: "skipped (PSI_BENCH_OPENMINED=0)" };
  const dir = process.env.PSI_BENCH_OPENMINED_DIR ?? path.join(os.tmpdir(), "cleanroom-lab-psijs");
  const req = createRequire(path.join(dir, "package.json"));
  const load = () => req("@openmined/psi.js");
  try {
    return { mod: load(), dir };
  } catch {
    /* not installed yet */
  }
  fs.mkdirSync(dir, { recursive: true });
  if (!fs.existsSync(path.join(dir, "package.json")))
    fs.writeFileSync(path.join(dir, "package.json"), JSON.stringify({ name: "psi-bench-scratch", private: true }));
  process.stderr.write(`installing @openmined/psi.js into ${dir} (npm --no-save --ignore-scripts)…\n`);
  const npm = process.platform === "win32" ? "npm.cmd" : "npm";
  const r = spawnSync(npm, ["install", "--no-save", "--ignore-scripts", "--no-audit", "--no-fund", "@openmined/psi.js"], {
    cwd: dir,
    encoding: "utf8",
    timeout: 180_000,
  });
  if (r.error || r.status !== 0) {
    const why = (r.error?.message ?? r.stderr ?? "").trim().split("\n").slice(-1)[0];
    return { why: `could not install (npm exit ${r.status ?? "?"}: ${why})` };
  }
  try {
    return { mod: load(), dir };
  } catch (e) {
    return { why: `installed but does not load: ${String(e?.message ?? e).split("\n")[0]}` };
  }
}

/** OpenMined psi.js: client/server over the same data, intersection only (no join keys). */
async function openMined(n) {
  const got = loadOpenMined();
  if (!got.mod) return { why: got.why };
  const mod = got.mod;
  let PSI;
  try {
    PSI = await (mod.default ?? mod)();
  } catch (e) {
    return { why: `its WASM did not start: ${String(e?.message ?? e).split("\n")[0]}` };
  }
  const { a, b } = data(n);
  const t = performance.now();
  const client = PSI.client.createWithNewKey(true);
  const server = PSI.server.createWithNewKey(true);
  const request = client.createRequest(a.map((r) => r.email.trim().toLowerCase()));
  const setup = server.createSetupMessage(
    0.0,
    -1,
    b.map((r) => r.email.trim().toLowerCase()),
    PSI.dataStructure.Raw,
  );
  const response = server.processRequest(request);
  const hits = client.getIntersection(setup, response);
  const ms = performance.now() - t;
  client.delete();
  server.delete();
  return { ms, size: hits.length, version: require(path.join(got.dir, "node_modules/@openmined/psi.js/package.json")).version };
}

async function timed(label, n, opts) {
  const { a, b } = data(n);
  let last = 0;
  let lastPhase = "";
  const t0 = Date.now();
  const progress = (done, total, phase) => {
    const now = Date.now();
    // large runs log each phase as it starts (also without a terminal), with elapsed time and RSS
    if (n >= 300_000 && phase !== lastPhase) {
      lastPhase = phase;
      process.stderr.write(`  ${label} N=${n}: +${((now - t0) / 1000).toFixed(0)} s ${phase} (RSS ${mib(process.memoryUsage().rss)})\n`);
    }
    if (tty && (now - last > 250 || done === total)) {
      last = now;
      process.stderr.write(`\r  ${label}: ${phase} ${done}/${total}            `);
    }
  };
  if (global.gc) global.gc();
  runPeak = process.memoryUsage().rss;
  const c = process.cpuUsage();
  const t = performance.now();
  const r = await runPsi(a, b, { ...opts, rng: "secure", registry: new KeyRegistry(), progress });
  const ms = performance.now() - t;
  const cpu = cpuMs(c);
  if (tty) process.stderr.write("\r" + " ".repeat(90) + "\r");
  if (r.matchReport.intersectionSize !== n - Math.floor(n / 2))
    throw new Error(`${label}: wrong intersection ${r.matchReport.intersectionSize}`);
  return { ms, cpu, threads: r.matchReport.threads, peak: runPeak };
}

const fmt = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
console.log(
  `PSI benchmark (joinKeys mode, 50% overlap) — node ${process.version}, ${os.availableParallelism()} cores reported, using ${cores} for "all cores"`,
);
const allCores = new Map(); // n → { ms, peak }
const load = () => `load average ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`;
const mib = (b) => `${(b / 2 ** 20).toFixed(0)} MiB`;
for (const n of sizes) {
  const rows = [];
  const nat = n <= nativeMax ? nativeBaseline(4 * n) : null;
  const native = nat?.ms ?? NaN;
  if (nat) rows.push(["native baseline (sodium-native ed25519 noclamp, 1 thread)", nat.ms, nat.cpu, `${4 * n} mults`]);
  else rows.push(["native baseline (sodium-native ed25519 noclamp, 1 thread)", NaN, NaN, `skipped (PSI_BENCH_NATIVE_MAX=${nativeMax})`]);
  let s1;
  if (n <= oneThreadMax) {
    s1 = await timed("libsodium 1 thread", n, { backend: "libsodium", threads: 1 });
    rows.push(["libsodium-wrappers-sumo (WASM), 1 thread", s1.ms, s1.cpu, `peak RSS ${mib(s1.peak)}`]);
  }
  const sN = await timed(`libsodium ${cores} threads`, n, { backend: "libsodium", threads: cores });
  allCores.set(n, sN);
  rows.push([`libsodium-wrappers-sumo (WASM), ${sN.threads} threads`, sN.ms, sN.cpu, `peak RSS ${mib(sN.peak)}`]);
  if (n <= nobleMax) {
    const nb = await timed("noble", n, { backend: "noble" });
    rows.push(["@noble/curves, 1 thread", nb.ms, nb.cpu, ""]);
  } else rows.push(["@noble/curves, 1 thread", NaN, NaN, `skipped (PSI_BENCH_NOBLE_MAX=${nobleMax})`]);
  let om;
  if (n === 10000) {
    om = await openMined(n);
    if (om.ms !== undefined)
      rows.push([`OpenMined psi.js ${om.version} (intersection only, 1 thread)`, om.ms, NaN, `intersection ${om.size}`]);
    else rows.push(["OpenMined psi.js", NaN, NaN, `not run: ${om.why}`]);
  }
  console.log(`\nN = ${n.toLocaleString("en-US")} per side          wall time, ratio to native wall | CPU time (all threads)`);
  for (const [name, ms, cpu, note] of rows) {
    const ratio = Number.isNaN(ms) || Number.isNaN(native) ? "" : `${(ms / native).toFixed(2)}× native`;
    const cpuCol = Number.isNaN(cpu) ? "" : `cpu ${fmt(cpu)}`;
    console.log(
      `  ${name.padEnd(62)} ${Number.isNaN(ms) ? "—".padStart(9) : fmt(ms).padStart(9)}  ${ratio.padEnd(14)} ${cpuCol.padEnd(12)} ${note}`,
    );
  }
  if (n === 10000 && nat) {
    const nb = rows.find((r) => r[0].startsWith("@noble"));
    report({
      id: "psi.10k-vs-native",
      what: `PSI 10k × 10k joinKeys, libsodium ${sN.threads} threads vs native 1 thread`,
      measured: `${fmt(sN.ms)} vs ${fmt(native)}`,
      value: sN.ms / native,
      unit: "×",
      target: { op: "<=", value: 0.9 },
      note:
        `CPU ${(sN.cpu / nat.cpu).toFixed(2)}× native CPU; 1 thread ${s1 ? `${(s1.ms / native).toFixed(2)}×` : "not run"}; ` +
        `noble ${nb && !Number.isNaN(nb[1]) ? `${(nb[1] / native).toFixed(1)}×` : "not run"}; ${load()}`,
    });
    if (om?.ms !== undefined)
      report({
        id: "psi.psijs-ratio",
        what: `OpenMined psi.js ${om.version} 10k × 10k (intersection only, 1 thread) / ours (joinKeys, ${sN.threads} threads)`,
        measured: `${fmt(om.ms)} vs ${fmt(sN.ms)}`,
        value: om.ms / sN.ms,
        unit: "×",
        note: `ours 1 thread: ${s1 ? `${(om.ms / s1.ms).toFixed(1)}×` : "not run"}`,
      });
    else console.log(`  OpenMined psi.js: not run (${om?.why ?? "n/a"})`);
  }
}
const base = allCores.get(10000);
if (base) {
  for (const [n, r] of allCores) {
    if (n <= 10000) continue;
    const k = `${n / 1000}k`;
    const at1M = n === 1_000_000;
    report({
      id: at1M ? "psi.1m-scaling" : `psi.scaling-${k}`,
      what: `PSI ${k} × ${k} (all cores) vs ${n / 10000} × t(10k), same run`,
      measured: `${fmt(r.ms)} vs ${fmt((n / 10000) * base.ms)}`,
      value: r.ms / ((n / 10000) * base.ms),
      unit: "×",
      target: { op: "<=", value: 1.15 },
      note: `CPU ${fmt(r.cpu)} vs ${n / 10000} × ${fmt(base.cpu)} = ${(r.cpu / ((n / 10000) * base.cpu)).toFixed(2)}×; ${load()}`,
    });
    // memory grows from the 10k run's peak at the slope measured between 10k and N
    const slope = (r.peak - base.peak) / (n - 10000);
    report({
      id: at1M ? "psi.1m-peak-rss" : `psi.peak-rss-${k}`,
      what: `PSI ${k} × ${k} peak RSS (bench process: both parties and the rows)`,
      measured: `RSS sampled every 100 ms`,
      value: r.peak / GiB,
      unit: " GiB",
      ...(at1M ? { target: { op: "<=", value: 1 } } : {}),
      note: at1M
        ? load()
        : `1M NOT measured; extrapolated linearly (10k peak + the 10k→${k} slope): ≈ ${((base.peak + slope * (1e6 - 10000)) / GiB).toFixed(2)} GiB; ${load()}`,
    });
  }
}
console.log(`\npeak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
