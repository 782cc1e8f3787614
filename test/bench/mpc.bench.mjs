/**
 * "No one sees the rows" benchmark (issue 17): the same lift question answered by
 *   - the clean room (PSI join keys → both uploads to the operator → the approved lift template),
 *   - the secret-shared lift (PSI join keys → 2PC in shares + dealer, charged to the same ledger),
 *   - intersection-sum with cardinality (PJC: its own ECDH join + exponential ElGamal, once per arm,
 *     releasing population, converters and value per arm — exact, no DP),
 * on the same generated study, per advertiser size N. Prints wall time and bytes exchanged, and
 * each protocol's ratio to the clean-room path IN THIS RUN. Nothing asserts on timing.
 * The PSI that makes the join keys is shared by the clean room and the secret-shared lift and is
 * counted in both; the clean room's bytes are the two tables the owners hand the operator.
 * Imports the BUILT library (`node node_modules/typescript/bin/tsc -b` first).
 *
 *   node test/bench/mpc.bench.mjs                       # N = 1000, 10000, 100000 (PJC up to 10000)
 *   MPC_BENCH_SIZES=1000,10000 MPC_BENCH_PJC_MAX=100000 node test/bench/mpc.bench.mjs
 */
import { createRequire } from "node:module";
import { report } from "./targets.mjs";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const lib = (p) => require(path.join(root, "kernel-lib/dist", p));
const aq = require("arquero");
const { generateStudy } = lib("datasets/study.js");
const { runPsi, attachJoinKeys } = lib("identity/run-psi.js");
const { KeyRegistry } = lib("identity/psi.js");
const { addParty, approveTemplate, declarePurpose, openLab, upload } = lib("verbs/room.js");
const { cleanRoomQuery } = lib("verbs/query.js");
const { liftRules, liftSchemas, liftTemplate } = lib("cleanroom/templates/lift.js");
const { serializeTable } = lib("cleanroom/serialize.js");
const { registerForMpc, secretSharedLift } = lib("session/mpc-mode.js");
const { runPjc } = lib("mpc/run.js");
const { seededRng } = lib("rng.js");

const sizes = (process.env.MPC_BENCH_SIZES ?? "1000,10000,100000").split(",").map((s) => Number(s.trim()));
const pjcMax = Number(process.env.MPC_BENCH_PJC_MAX ?? 10000);
const PARAMS = { startDay: 0, endDay: 27 };
const template = liftTemplate({ advertiser: "advertiser", retailer: "retailer", valueCap: 30000, epsilonPerAggregate: "0.5" });
const ms = (t0) => performance.now() - t0;

function room(seed) {
  const lab = openLab({ store: ":memory:", rng: { seed }, budget: { epsilon: 100 } });
  addParty(lab, { party: "advertiser" });
  addParty(lab, { party: "retailer" });
  return lab;
}
function finish(lab) {
  declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "lift" });
  for (const party of ["advertiser", "retailer"]) approveTemplate(lab, { template, party });
}

const rows = [];
for (const n of sizes) {
  const study = generateStudy({
    seed: `mpc-bench-${n}`,
    advertiserRows: n,
    overlap: 0.6,
    holdoutShare: 0.3,
    baseConversionRate: 0.1,
    liftPct: 30,
  });
  // PSI for join keys (shared by the clean room and the secret-shared lift)
  let t0 = performance.now();
  const psi = await runPsi(study.exposures, study.purchases, { rng: { seed: `psi-${n}` }, registry: new KeyRegistry() });
  const psiMs = ms(t0);
  const psiBytes = psi.transcript.reduce((s, t) => s + t.bytes, 0);
  const adv = attachJoinKeys(study.exposures, psi.joinKeysA, { keepUnmatched: false });
  const ret = attachJoinKeys(study.purchases, psi.joinKeysB, { keepUnmatched: false });
  const s = liftSchemas();
  const r = liftRules(100);
  const ex = { party: "advertiser", name: "exposures", schema: s.exposures, purposes: ["measurement"], rule: r.exposures };
  const pu = { party: "retailer", name: "purchases", schema: s.purchases, purposes: ["measurement"], rule: r.purchases };

  // clean room
  t0 = performance.now();
  const cr = room(`cr-${n}`);
  await upload(cr, { ...ex, rows: adv });
  await upload(cr, { ...pu, rows: ret });
  finish(cr);
  const crRes = await cleanRoomQuery(cr, { template, params: PARAMS, party: "advertiser", analyst: "bo", purpose: "measurement" });
  const crMs = psiMs + ms(t0);
  const crBytes = psiBytes + serializeTable(aq.from(adv)).length + serializeTable(aq.from(ret)).length;

  // secret-shared lift
  t0 = performance.now();
  const ss = room(`ss-${n}`);
  registerForMpc(ss, ex);
  registerForMpc(ss, pu);
  finish(ss);
  const ssRes = await secretSharedLift(ss, {
    template,
    params: PARAMS,
    party: "advertiser",
    analyst: "bo",
    purpose: "measurement",
    advertiserRows: adv,
    retailerRows: ret,
  });
  const ssMs = psiMs + ms(t0);
  const ssBytes = psiBytes + ssRes.mpc.bytes.total;
  if (ssRes.charged.text !== crRes.charged.text) throw new Error("ledger charges differ");

  // PJC, one run per arm
  let pjcMs = null;
  let pjcBytes = null;
  if (n <= pjcMax) {
    t0 = performance.now();
    pjcBytes = 0;
    for (const arm of ["test", "control"]) {
      const p = await runPjc({
        advertiserRows: study.exposures,
        retailerRows: study.purchases,
        arm,
        columns: ["converters", "value"],
        template,
        params: PARAMS,
        rng: seededRng(`pjc-${n}-${arm}`),
      });
      pjcBytes += p.wire.bytes;
    }
    pjcMs = ms(t0);
  }
  const kib = (b) => (b === null ? "—" : +(b / 1024).toFixed(0));
  const ratio = (x, base) => (x === null ? "—" : +(x / base).toFixed(2));
  const crOwn = crMs - psiMs;
  const ssOwn = ssMs - psiMs;
  rows.push({
    N: n,
    matched: ssRes.mpc.matched,
    "PSI ms": Math.round(psiMs),
    "clean ms": Math.round(crMs),
    "shared ms": Math.round(ssMs),
    "PJC ms": pjcMs === null ? "—" : Math.round(pjcMs),
    "shared/clean": ratio(ssMs, crMs),
    "PJC/clean": ratio(pjcMs, crMs),
    "shared/clean w/o PSI": ratio(ssOwn, crOwn),
    "clean KiB": kib(crBytes),
    "shared KiB": kib(ssBytes),
    "PJC KiB": kib(pjcBytes),
    "shared/clean B": ratio(ssBytes, crBytes),
    "PJC/clean B": ratio(pjcBytes, crBytes),
  });
  console.log(`N=${n} done`);
  const N = n.toLocaleString("en-US");
  report({
    id: `mpc.shared-lift-${n}`,
    what: `secret-shared lift (no trusted operator) vs the clean room, ${N} advertiser rows, PSI included in both`,
    measured: `${Math.round(ssMs)} ms vs ${Math.round(crMs)} ms (${ratio(ssOwn, crOwn)}× without PSI); bytes ${ratio(ssBytes, crBytes)}×`,
    value: ssMs / crMs,
    unit: "×",
  });
  if (pjcMs !== null)
    report({
      id: `mpc.pjc-${n}`,
      what: `PJC intersection-sum (exact, no DP) vs the clean room, ${N} advertiser rows`,
      measured: `${Math.round(pjcMs)} ms vs ${Math.round(crMs)} ms; bytes ${ratio(pjcBytes, crBytes)}×`,
      value: pjcMs / crMs,
      unit: "×",
    });
}
console.table(rows);
console.log(
  "Ratios are to the clean-room path of the same N in this run (PSI included in both PSI-based paths). " +
    "PJC releases per arm population, converters and value exactly (no DP); the other two release the 10 fbpcs aggregates with DP noise, charged equally.",
);
