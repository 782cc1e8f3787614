#!/usr/bin/env node
/**
 * One party of the secret-shared lift (kernel-lib/src/mpc/shared-lift.ts) as its own OS process:
 * reads ITS OWN rows (JSON array) and the approved template, talks to the others over the socket
 * transport on 127.0.0.1 only (SecureChannel on by default), writes ITS result as JSON.
 * Uses the built library (kernel-lib/dist: build first).
 *
 *   node scripts/mpc-party.mjs --role dealer     --listen 0                                     --out dealer.json
 *   node scripts/mpc-party.mjs --role retailer   --listen 0 --dealer PORT_D --rows ret.json --template t.json --out r.json
 *   node scripts/mpc-party.mjs --role advertiser --connect PORT_R --dealer PORT_D --rows adv.json --template t.json --out a.json
 *
 * Intersection-sum with cardinality (mpc/pjc.ts) between two processes (rows with e-mails):
 *   node scripts/mpc-party.mjs --role pjc-values --listen 0 --rows purchases.json --template t.json --columns converters,value --out v.json
 *   node scripts/mpc-party.mjs --role pjc-ids --connect PORT --rows exposures.json --arm test --out i.json
 *
 * Options: --params '{"startDay":0,"endDay":27}' (default), --output-to advertiser|retailer,
 * --channel on|off (default on; off only to let a test scan the protocol's own bytes),
 * --seed S (reproducible, teaching mode; default secure randomness), --timeout-ms MS.
 * Required: --ledger none. This standalone script keeps NO privacy ledger, approval registry or
 * audit log: every run releases again, and PJC's sums are exact. It is a protocol demonstration; in
 * a room the secret-shared lift runs down the one query road and is charged (session/mpc-mode.ts).
 * Its peers are anonymous SecureChannels (no member keys): run it only between your own processes.
 * stdout: one JSON object per line: {"event":"listening","port":N}, {"event":"connected","peer":…},
 * {"event":"done",…} or {"event":"error","code":…,"field":…,"message":…}. The result file is written
 * atomically and only on success. Exit status: 0 done, 2 refused (typed error), 1 anything else.
 */
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => require(path.join(root, "kernel-lib/dist", p));
const { listen, connect } = dist("transport/socket.js");
const { secureTransport } = dist("transport/secure.js");
const { sharedLiftParty, sharedLiftDealer } = dist("mpc/shared-lift.js");
const { pjcIdsParty, pjcValuesParty } = dist("mpc/pjc.js");
const { pjcIdsInput, pjcValuesInput } = dist("mpc/run.js");
const { makeRng, rngStamp } = dist("rng.js");
const { isCleanRoomError, CleanRoomError } = dist("errors.js");

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");
const refuse = (field, expected) => {
  throw new CleanRoomError("INPUT_INVALID", `"${field}" expected ${expected}`, { field });
};

function parseArgs(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i += 2) {
    const k = argv[i];
    const v = argv[i + 1];
    if (!k.startsWith("--") || v === undefined || v.startsWith("--")) refuse(k ?? "argv", "--option value pairs");
    a[k.slice(2)] = v;
  }
  return a;
}
const int = (a, k, dflt) => {
  if (a[k] === undefined) return dflt;
  const n = Number(a[k]);
  if (!Number.isSafeInteger(n) || n < 0) refuse(`--${k}`, "an integer ≥ 0");
  return n;
};
const readJson = (file, field) => {
  try {
    return JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return refuse(field, "a readable JSON file");
  }
};

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const role = a.role;
  if (!["advertiser", "retailer", "dealer", "pjc-ids", "pjc-values"].includes(role))
    refuse("--role", "advertiser | retailer | dealer | pjc-ids | pjc-values");
  if (!a.out) refuse("--out", "a result file");
  // nothing is charged here: the caller must say it knows (a room charges through session/mpc-mode.ts)
  if (a.ledger !== "none") refuse("--ledger", '"none" (this standalone script charges no privacy budget and keeps no audit)');
  if (a.host !== undefined && a.host !== "127.0.0.1")
    throw new CleanRoomError("ACCESS_DENIED", `"--host" expected 127.0.0.1 (this project never sends traffic to another host)`, {
      field: "--host",
    });
  const channel = (a.channel ?? "on") === "on";
  const rng = makeRng(a.seed !== undefined ? { seed: `${a.seed}/${role}` } : "secure");
  const timeoutMs = int(a, "timeout-ms", 600_000);
  setTimeout(() => {
    emit({ event: "error", code: "STATE_INVALID", field: "--timeout-ms", message: `no result within ${timeoutMs} ms` });
    process.exit(2);
  }, timeoutMs).unref();
  // the connecting end is the channel's initiator
  const wrap = async (t, init) =>
    channel ? secureTransport(t, init ? "initiator" : "responder", { rng: rng.fork(`channel:${t.peer}`) }) : t;
  const opened = [];
  const accept = async (l) => {
    const t = await l.accept();
    opened.push(t);
    emit({ event: "connected", peer: t.peer });
    return t;
  };
  const dial = async (port, peer) => {
    const t = await connect({ self: role, peer, port, retryMs: int(a, "retry-ms", 10_000) });
    opened.push(t);
    emit({ event: "connected", peer });
    return t;
  };
  let result;
  if (role === "pjc-values") {
    const rows = readJson(a.rows, "--rows");
    const params = a.params ? JSON.parse(a.params) : { startDay: 0, endDay: 27 };
    const input = pjcValuesInput(rows, (a.columns ?? "value").split(","), readJson(a.template, "--template"), params);
    const l = await listen({ self: role, port: int(a, "listen", 0), expectPeer: "pjc-ids" });
    emit({ event: "listening", host: l.host, port: l.port });
    const link = await wrap(await accept(l), false);
    await l.close();
    result = await pjcValuesParty({ link, ...input, rng });
  } else if (role === "pjc-ids") {
    const ids = pjcIdsInput(readJson(a.rows, "--rows"), a.arm ?? "all");
    const link = await wrap(await dial(int(a, "connect", 0), "pjc-values"), true);
    result = await pjcIdsParty({ link, ids, rng });
  } else if (role === "dealer") {
    const l = await listen({ self: "dealer", port: int(a, "listen", 0) });
    emit({ event: "listening", host: l.host, port: l.port });
    const first = await accept(l);
    const second = await accept(l);
    await l.close();
    const by = Object.fromEntries(await Promise.all([first, second].map(async (t) => [t.peer, await wrap(t, false)])));
    if (!by.advertiser || !by.retailer) refuse("peer", "one advertiser and one retailer connection");
    result = { role, ...(await sharedLiftDealer({ advertiser: by.advertiser, retailer: by.retailer, rng })) };
  } else {
    const rows = readJson(a.rows, "--rows");
    const template = readJson(a.template, "--template");
    const params = a.params ? JSON.parse(a.params) : { startDay: 0, endDay: 27 };
    let peer;
    if (role === "retailer") {
      const l = await listen({ self: role, port: int(a, "listen", 0), expectPeer: "advertiser" });
      emit({ event: "listening", host: l.host, port: l.port });
      peer = await wrap(await accept(l), false);
      await l.close();
    } else peer = await wrap(await dial(int(a, "connect", 0), "retailer"), true);
    const dealer = await wrap(await dial(int(a, "dealer", 0), "dealer"), true);
    result = await sharedLiftParty({ role, peer, dealer, rows, template, params, rng, outputTo: a["output-to"] ?? "advertiser" });
  }
  for (const t of opened) t.close();
  await Promise.all(opened.map((t) => t.whenClosed()));
  const tmp = `${a.out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify({ ...result, ...rngStamp(rng) }));
  fs.renameSync(tmp, a.out);
  emit({ event: "done", out: a.out, ledger: "none: not charged, not audited" });
}

main().then(
  () => process.exit(0),
  (e) => {
    if (isCleanRoomError(e)) {
      emit({ event: "error", code: e.code, field: e.details.field ?? null, message: e.message });
      process.exit(2);
    }
    emit({ event: "error", code: null, field: null, message: String(e?.message ?? e) });
    process.exit(1);
  },
);
