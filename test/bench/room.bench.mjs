/**
 * The room server under load (issue 13, "Performance"): 30 member clients, each its own
 * identity and its own SecureChannel session, query one server process (scripts/room-server.mjs)
 * concurrently until the collaboration budget runs out. Reports p50/p99 request latency,
 * throughput, and — the in-run baseline — the same query run in-process on an openLab room
 * with the same data (so the ratio is the cost of the process boundary, the channel, signing
 * and the gate). Also checks the invariant: exactly the budget spent, zero overspend.
 * Imports the BUILT library.
 *
 *   node test/bench/room.bench.mjs                 # 30 clients
 *   ROOM_BENCH_CLIENTS=10 node test/bench/room.bench.mjs
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import { createRequire } from "node:module";
import { report } from "./targets.mjs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dist = (p) => require(path.join(root, "kernel-lib/dist", p));
const { createIdentity } = dist("server/identity.js");
const { joinRoom, createCollaboration, acceptCollaboration } = dist("server/client.js");
const { upload, approveTemplate, declarePurpose } = dist("verbs/room.js");
const { cleanRoomQuery } = dist("verbs/query.js");
const { budget } = dist("verbs/ledger.js");
const { openLab } = dist("session/lab.js");
const { generateStudy } = dist("datasets/study.js");
const { runPsi } = dist("identity/run-psi.js");
const { liftRules, liftSchemas, liftTemplate } = dist("cleanroom/templates/lift.js");
const { isCleanRoomError } = dist("errors.js");

const N = Number(process.env.ROOM_BENCH_CLIENTS ?? 30);
const QUERIES = 300; // the budget buys exactly this many queries
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-bench-"));
const store = path.join(dir, "room.db");
const pct = (xs, p) => xs[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))];

function withJoinKeys(rows, keys) {
  const out = [];
  rows.forEach((r, i) => {
    if (keys[i] == null) return;
    const { email: _e, ...rest } = r;
    out.push({ ...rest, join_key: keys[i] });
  });
  return out;
}

const proc = spawn(
  process.execPath,
  [path.join(root, "scripts/room-server.mjs"), "--store", store, "--port", "0", "--epsilon", String(QUERIES / 10), "--per-party", "1000"],
  {
    stdio: ["ignore", "pipe", "inherit"],
  },
);
const kill = () => proc.exitCode === null && proc.kill("SIGKILL");
process.on("exit", kill);
try {
  const url = await new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout.on("data", (d) => {
      buf += d;
      const i = buf.indexOf("\n");
      if (i >= 0) {
        const e = JSON.parse(buf.slice(0, i));
        if (e.event === "listening") resolve(e.url);
        else reject(new Error(e.message));
      }
    });
    proc.once("exit", (c) => reject(new Error(`server exited ${c}`)));
  });

  const study = generateStudy({
    seed: "room-bench",
    advertiserRows: 2000,
    overlap: 0.7,
    holdoutShare: 0.3,
    baseConversionRate: 0.2,
    liftPct: 40,
  });
  const psi = await runPsi(study.exposures, study.purchases, {
    mode: "joinKeys",
    backend: "libsodium",
    threads: 1,
    rng: { seed: "bench-psi" },
  });
  const s = liftSchemas();
  const exposures = withJoinKeys(study.exposures, psi.joinKeysA);
  const purchases = withJoinKeys(study.purchases, psi.joinKeysB);
  const template = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.02", threshold: 20 });
  const params = { startDay: 0, endDay: 27 };

  // baseline: the same query, in-process, on an openLab room
  const lab = openLab({ store: ":memory:", budget: { epsilon: 1000 } });
  lab.party("advertiser");
  lab.party("retailer");
  lab.upload("advertiser", "exposures", exposures, { schema: s.exposures, purposes: ["measurement"], rule: liftRules(20).exposures });
  lab.upload("retailer", "purchases", purchases, { schema: s.purchases, purposes: ["measurement"], rule: liftRules(20).purchases });
  lab.approveTemplate(template, "advertiser");
  lab.approveTemplate(template, "retailer");
  lab.declarePurpose({ party: "advertiser", analyst: "an", purpose: "measurement", justification: "bench" });
  const local = [];
  for (let i = 0; i < 40; i++) {
    const t0 = performance.now();
    await cleanRoomQuery(lab, { template, params, party: "advertiser", analyst: "an", purpose: "measurement" });
    local.push(performance.now() - t0);
  }
  local.sort((a, b) => a - b);
  lab.close();

  const names = ["advertiser", "retailer", ...Array.from({ length: N }, (_, i) => `q${i}`)];
  const ids = {};
  const rooms = {};
  for (const n of names) {
    ids[n] = createIdentity({ name: n, file: path.join(dir, `${n}.key`) });
    rooms[n] = await joinRoom(url, { as: n, identity: ids[n] });
  }
  await createCollaboration(rooms.advertiser, {
    members: names.map((n) => ({
      name: n,
      publicKey: ids[n].publicKey,
      abilities: n === "retailer" ? ["own"] : n === "advertiser" ? ["own", "query", "receive"] : ["query", "receive"],
    })),
  });
  for (const n of names) await acceptCollaboration(rooms[n]);
  await upload(rooms.advertiser, {
    party: "advertiser",
    name: "exposures",
    rows: exposures,
    schema: s.exposures,
    purposes: ["measurement"],
    rule: liftRules(20).exposures,
  });
  await upload(rooms.retailer, {
    party: "retailer",
    name: "purchases",
    rows: purchases,
    schema: s.purchases,
    purposes: ["measurement"],
    rule: liftRules(20).purchases,
  });
  for (const n of ["advertiser", "retailer"]) await approveTemplate(rooms[n], { template, party: n });
  const queriers = names.slice(2);
  for (const n of queriers) await declarePurpose(rooms[n], { party: n, analyst: "an", purpose: "measurement", justification: "bench" });

  // a cheap signed request: the round trip through channel, signature and gate
  const ping = [];
  for (let i = 0; i < 100; i++) {
    const t0 = performance.now();
    await budget(rooms.q0);
    ping.push(performance.now() - t0);
  }
  ping.sort((a, b) => a - b);

  const lat = [];
  let ok = 0;
  let refused = 0;
  const t0 = performance.now();
  await Promise.all(
    queriers.map(async (n) => {
      for (;;) {
        const q0 = performance.now();
        try {
          await cleanRoomQuery(rooms[n], { template, params, party: n, analyst: "an", purpose: "measurement" });
          ok++;
          lat.push(performance.now() - q0);
        } catch (e) {
          if (!isCleanRoomError(e, "BUDGET_EXCEEDED")) throw e;
          refused++;
          return;
        }
      }
    }),
  );
  const wall = (performance.now() - t0) / 1000;
  lat.sort((a, b) => a - b);
  const b = await budget(rooms.advertiser);
  const collab = b.budgets.find((x) => x.scope === "collaboration");
  for (const r of Object.values(rooms)) r.close();

  const f = (x) => `${x.toFixed(1)} ms`;
  console.log(
    `room server, ${N} concurrent member clients, lift query on ${exposures.length}+${purchases.length} keyed rows (2 cores shared)`,
  );
  console.log(
    `  queries answered: ${ok} (budget buys ${QUERIES}), refused BUDGET_EXCEEDED: ${refused}; spent ${collab.spent.text} of ${collab.total.text} → ${ok === QUERIES && collab.spent.text === collab.total.text ? "exact, zero overspend" : "MISMATCH"}`,
  );
  console.log(`  query latency under load: p50 ${f(pct(lat, 50))}, p99 ${f(pct(lat, 99))}; throughput ${(ok / wall).toFixed(1)} queries/s`);
  console.log(`  signed round trip (budget, one client): p50 ${f(pct(ping, 50))}, p99 ${f(pct(ping, 99))}`);
  console.log(
    `  baseline in-process query (openLab, same data): p50 ${f(pct(local, 50))} → server throughput ${(((ok / wall) * pct(local, 50)) / 1000).toFixed(2)}× the in-process single-client rate`,
  );
  report({
    id: "room.30-clients",
    what: `room server, ${N} member clients (own keys and sessions) querying one server process until the budget ran out, lift on ${exposures.length}+${purchases.length} keyed rows`,
    measured: `${ok} of ${QUERIES} affordable queries answered, ${collab.spent.text} of ${collab.total.text} spent; ${(ok / wall).toFixed(1)} queries/s; p50 ${f(pct(lat, 50))}, p99 ${f(pct(lat, 99))}; signed round trip p50 ${f(pct(ping, 50))}`,
    value: ((ok / wall) * pct(local, 50)) / 1000,
    unit: "× the in-process single-client rate",
  });
  if (ok !== QUERIES || collab.spent.text !== collab.total.text) process.exitCode = 1;
} finally {
  kill();
  fs.rmSync(dir, { recursive: true, force: true });
}
