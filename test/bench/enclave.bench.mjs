// Enclave path vs plain path on the same workload (demo cohort count over a people CSV).
// Imports the BUILT library: run `node node_modules/typescript/bin/tsc -b` first.
// Usage: node test/bench/enclave.bench.mjs [--quick]
import { createRequire } from "node:module";
const require = createRequire(import.meta.url);
const { measureEnclaveCost } = require("../../kernel-lib/dist/enclave/cost.js");
const { approvedWorkload, demoPeople, peopleCsv } = require("../../kernel-lib/dist/labs/enclave-demo-workload.js");
const { secureRng } = require("../../kernel-lib/dist/rng.js");

const quick = process.argv.includes("--quick");
const sizes = quick ? [1_000, 10_000] : [1_000, 10_000, 100_000];
const repeats = quick ? 3 : 7;
const rng = secureRng();

// Warm-up: JIT and noble's precomputed tables, so the first size is not penalised.
measureEnclaveCost(
  { workload: approvedWorkload, input: "people", bytes: peopleCsv(demoPeople(500, 1, rng)), params: { region: "north" }, repeats: 3 },
  rng,
);

const rows = [];
for (const n of sizes) {
  const bytes = peopleCsv(demoPeople(n, 1, rng));
  const r = measureEnclaveCost(
    {
      workload: approvedWorkload,
      input: "people",
      bytes,
      params: { region: "north" },
      config: { release: "threshold", minCohort: 20 },
      repeats,
    },
    rng,
  );
  rows.push({
    people: n,
    inputKiB: +(r.inputBytes / 1024).toFixed(1),
    plainMs: r.plainMs,
    encryptMs: r.phasesMs.encrypt,
    attestMs: r.phasesMs.attest,
    verifyMs: r.phasesMs.verify,
    releaseMs: r.phasesMs.release,
    runMs: r.phasesMs.run,
    enclaveMs: r.enclaveTotalMs,
    "enclave/plain": r.overheadRatio,
    oneTimeMs: r.oneTimeMs,
    perQueryExtraMs: r.perQueryExtraMs,
    "run/plain": +(r.phasesMs.run / Math.max(r.plainMs, 0.001)).toFixed(2),
  });
}
console.log(`enclave path vs plain path — median of ${repeats} runs, node ${process.version}`);
console.table(rows);
console.log("note: simulated TEE — cryptographic costs are real; memory encryption and enclave transitions are not modelled.");
