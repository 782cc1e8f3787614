#!/usr/bin/env node
/**
 * The clean-room server as its own OS process (issue 13): one room — the SQLite ledger, audit
 * chain, approvals and sealed datasets of `openLab` — served to its members on 127.0.0.1 over
 * the socket transport under a SecureChannel bound to the server's static key. Members join
 * with `joinRoom(url, { as, identity })`; every request is signed by the member (docs/protocol.md).
 * Uses the built library (kernel-lib/dist: build first).
 *
 *   npm run room -- --store room.db --port 7700 [--room lab] [--epsilon 3 | --rho 0.5] [--per-party 1]
 *                   [--refresh none|daily|monthly] [--engine arquero|duckdb] [--seed S] [--window-ms 120000]
 *                   [--class 30 [--invite-ttl-ms 604800000]] [--enclave process [--enclave-tamper]]
 *                   [--limit-pre-auth-frame-bytes 65536] [--limit-per-connection 16|off] [--limit-per-remote 128|off]
 *                   [--limit-audit-each 16|off] [--limit-window-ms 60000]
 *
 * The --limit-* flags set what a peer that has not proved it is a member may cost
 * (kernel-lib/src/server/limits.ts; defaults shown); "off" turns a count limit off. A bad value
 * is refused typed (field limits.<name>) before any file is opened.
 *
 * Enclave mode (--enclave process): members upload with sealing "enclave" (owner-sealed in their
 * own kernels), attestEnclave launches the enclave as its own OS process (scripts/enclave-host.mjs)
 * and owners release their keys to it after verifying its attestation; this process relays
 * documents, challenges, sealed grants and ciphertext only. --enclave-tamper (teaching) lets
 * attestEnclave ask for a modified image, which owners must refuse.
 *
 * A class in a room (--class N): the first start of a store also makes one room per pair of
 * students (pair-01 …) and one single-use invitation code per seat (retailer, advertiser),
 * written to <store>.invitations.json (0600) for the teacher to hand out; the database keeps
 * only their hashes. Students join with joinRoom(url, { as: seat, identity, invitation: code }).
 *
 * The server writes <store>.server.json ({ url, room, port, publicKey, fingerprint, pid }); the
 * url pins the server's public key (cleanroom://127.0.0.1:PORT/ROOM#KEY), so give members the
 * url (or the fingerprint to compare). Its static key lives in <store>.server-key.json (0600).
 *
 * stdout: one JSON object per line — {"event":"listening","url":…,"port":…,"fingerprint":…} or
 * {"event":"error","code":…,"message":…}. SIGINT/SIGTERM close the room (the ledger stays on disk).
 * Exit status: 0 closed, 2 refused (typed error), 1 anything else.
 */
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { RoomServer } = require(path.join(root, "kernel-lib/dist/server/server.js"));
const { isCleanRoomError } = require(path.join(root, "kernel-lib/dist/errors.js"));

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function parseArgs(argv) {
  const o = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a}`);
    const [k, inline] = a.slice(2).split("=", 2);
    // a flag with no value (--enclave-tamper) is true
    o[k] = inline ?? (argv[i + 1] === undefined || argv[i + 1].startsWith("--") ? "true" : argv[++i]);
  }
  return o;
}

const LIMIT_FLAGS = {
  "limit-pre-auth-frame-bytes": "preAuthFrameBytes",
  "limit-per-connection": "perConnection",
  "limit-per-remote": "perRemote",
  "limit-audit-each": "auditEach",
  "limit-window-ms": "windowMs",
};

/** The --limit-* flags as a RefusalLimits override; the server checks the values. */
function limitsOf(a) {
  const o = {};
  for (const [flag, key] of Object.entries(LIMIT_FLAGS))
    if (a[flag] !== undefined) o[key] = a[flag] === "off" ? Infinity : /^\d+$/.test(a[flag]) ? Number(a[flag]) : a[flag];
  return Object.keys(o).length ? o : undefined;
}

async function main() {
  const a = parseArgs(process.argv.slice(2));
  if (!a.store) throw new Error("--store PATH is required");
  const budget =
    a.epsilon || a.rho
      ? {
          ...(a.epsilon ? { epsilon: a.epsilon } : {}),
          ...(a.rho ? { rho: a.rho } : {}),
          ...(a["per-party"] ? { perParty: a["per-party"] } : {}),
          ...(a.refresh ? { refresh: a.refresh } : {}),
        }
      : undefined;
  const server = await RoomServer.start({
    store: a.store,
    port: a.port ? Number(a.port) : 0,
    ...(a.room ? { room: a.room } : {}),
    ...(budget ? { budget } : {}),
    ...(a.engine ? { engine: a.engine } : {}),
    ...(a.seed ? { rng: { seed: a.seed } } : {}),
    ...(a["window-ms"] ? { timeWindowMs: Number(a["window-ms"]) } : {}),
    ...(a.class ? { class: Number(a.class) } : {}),
    ...(a["invite-ttl-ms"] ? { invitationTtlMs: Number(a["invite-ttl-ms"]) } : {}),
    ...(a.enclave ? { enclave: a.enclave } : {}),
    ...(a["enclave-tamper"] === "true" ? { allowTamper: true } : {}),
    ...(limitsOf(a) ? { limits: limitsOf(a) } : {}),
  });
  emit({
    event: "listening",
    url: server.url,
    port: server.port,
    room: server.lab.roomId,
    fingerprint: server.fingerprint,
    pid: process.pid,
    ...(a.class
      ? {
          pairs: server.invitations.rooms().length,
          invitations: server.invitationCodes ? `${a.store}.invitations.json` : "kept from the first start (see that file)",
        }
      : {}),
    // a seeded server (--seed) derives its key and its noise from the seed: teaching mode, not private
    ...(server.lab.rng.mode === "seeded" ? { mode: "seeded", label: "teaching mode — not private" } : { mode: "secure" }),
  });
  const stop = async () => {
    await server.close();
    process.exit(0);
  };
  process.on("SIGINT", stop);
  process.on("SIGTERM", stop);
}

main().catch((e) => {
  if (isCleanRoomError(e)) {
    emit({ event: "error", code: e.code, field: e.details?.field ?? null, message: e.message });
    process.exit(2);
  }
  emit({ event: "error", code: "INTERNAL", message: String(e?.message ?? e) });
  process.exit(1);
});
