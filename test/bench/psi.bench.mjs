/**
 * PSI benchmark (issue 3, "Performance"): end-to-end joinKeys PSI on the same data, per
 * side N, with
 *   - noble backend (1 thread)                       — the reference implementation
 *   - libsodium backend, 1 thread and all cores      — WASM, worker threads
 *   - native baseline: sodium-native `crypto_scalarmult_ed25519_noclamp` doing the same
 *     number of variable-base scalar multiplications (4N: each side blinds its own N and the
 *     peer's N); sodium-native has no ristretto binding, ed25519 noclamp is the stand-in.
 * Prints times and ratios to the native baseline. Imports the BUILT library.
 *
 *   node test/bench/psi.bench.mjs
 *   PSI_BENCH_SIZES=10000,100000 node test/bench/psi.bench.mjs      # add 100k (minutes)
 *   PSI_BENCH_NOBLE_MAX=100000 …                                     # noble at 100k too (~10 min)
 *   PSI_BENCH_THREADS=4 …                                            # override "all cores"
 */
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const { runPsi } = require(path.join(root, "kernel-lib/dist/identity/run-psi.js"));
const { KeyRegistry } = require(path.join(root, "kernel-lib/dist/identity/psi.js"));
const sodiumNative = require("sodium-native");

const sizes = (process.env.PSI_BENCH_SIZES ?? "10000").split(",").map((s) => Number(s.trim()));
const nobleMax = Number(process.env.PSI_BENCH_NOBLE_MAX ?? 10000);
const cores = Number(process.env.PSI_BENCH_THREADS ?? os.availableParallelism());
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
const sample = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 200);
sample.unref();

async function timed(label, n, opts) {
  const { a, b } = data(n);
  let last = 0;
  const progress = (done, total, phase) => {
    const now = Date.now();
    if (tty && (now - last > 250 || done === total)) {
      last = now;
      process.stderr.write(`\r  ${label}: ${phase} ${done}/${total}            `);
    }
  };
  const c = process.cpuUsage();
  const t = performance.now();
  const r = await runPsi(a, b, { ...opts, rng: "secure", registry: new KeyRegistry(), progress });
  const ms = performance.now() - t;
  const cpu = cpuMs(c);
  if (tty) process.stderr.write("\r" + " ".repeat(90) + "\r");
  if (r.matchReport.intersectionSize !== n - Math.floor(n / 2))
    throw new Error(`${label}: wrong intersection ${r.matchReport.intersectionSize}`);
  return { ms, cpu, threads: r.matchReport.threads };
}

const fmt = (ms) => (ms >= 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${ms.toFixed(0)} ms`);
console.log(
  `PSI benchmark (joinKeys mode, 50% overlap) — node ${process.version}, ${os.availableParallelism()} cores reported, using ${cores} for "all cores"`,
);
for (const n of sizes) {
  const rows = [];
  const nat = nativeBaseline(4 * n);
  const native = nat.ms;
  rows.push(["native baseline (sodium-native ed25519 noclamp, 1 thread)", nat.ms, nat.cpu, `${4 * n} mults`]);
  const s1 = await timed("libsodium 1 thread", n, { backend: "libsodium", threads: 1 });
  rows.push(["libsodium-wrappers-sumo (WASM), 1 thread", s1.ms, s1.cpu, ""]);
  const sN = await timed(`libsodium ${cores} threads`, n, { backend: "libsodium", threads: cores });
  rows.push([`libsodium-wrappers-sumo (WASM), ${sN.threads} threads`, sN.ms, sN.cpu, ""]);
  if (n <= nobleMax) {
    const nb = await timed("noble", n, { backend: "noble" });
    rows.push(["@noble/curves, 1 thread", nb.ms, nb.cpu, ""]);
  } else rows.push(["@noble/curves, 1 thread", NaN, NaN, `skipped (PSI_BENCH_NOBLE_MAX=${nobleMax})`]);
  console.log(`\nN = ${n.toLocaleString("en-US")} per side          wall time, ratio to native wall | CPU time (all threads)`);
  for (const [name, ms, cpu, note] of rows) {
    const ratio = Number.isNaN(ms) ? "" : `${(ms / native).toFixed(2)}× native`;
    const cpuCol = Number.isNaN(cpu) ? "" : `cpu ${fmt(cpu)}`;
    console.log(
      `  ${name.padEnd(62)} ${Number.isNaN(ms) ? "—".padStart(9) : fmt(ms).padStart(9)}  ${ratio.padEnd(14)} ${cpuCol.padEnd(12)} ${note}`,
    );
  }
  console.log(
    `  target: libsodium on all cores ≤ 1.0× native → ${(sN.ms / native).toFixed(2)}× (${sN.ms / native <= 1 ? "met" : "not met"}); load average now ${os.loadavg()[0].toFixed(1)} on ${os.availableParallelism()} cores`,
  );
}
console.log(`\npeak RSS ${(peakRss / 2 ** 20).toFixed(0)} MiB`);
