#!/usr/bin/env node
/**
 * The enclave host (issue 13): one simulated enclave as its own OS process. Started by the lab
 * (session/enclave-process.ts) when it was opened with `enclave: "process"`; not meant to be run
 * by hand. Uses the built library (kernel-lib/dist: build first).
 *
 *   node scripts/enclave-host.mjs        < one JSON line: { labId, rootSecretHex, seed, workload }
 *
 * stdout: one JSON object per line — {"event":"listening","port":N,"pid":P}, then
 * {"event":"exit"} or {"event":"error","code":…,"message":…}. The process listens on
 * 127.0.0.1 only, serves ONE operator connection (SecureChannel), and exits when the operator
 * disconnects, sends terminate, or its stdin closes (the lab's process is gone).
 * Exit status: 0 done, 2 refused (typed error), 1 anything else.
 */
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const { serveEnclave } = require(path.join(root, "kernel-lib/dist/session/enclave-host.js"));
const { isCleanRoomError } = require(path.join(root, "kernel-lib/dist/errors.js"));

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function readBootstrap() {
  return new Promise((resolve, reject) => {
    let buf = "";
    const onData = (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      process.stdin.off("data", onData);
      try {
        resolve(JSON.parse(buf.slice(0, nl)));
      } catch {
        reject(new Error("bootstrap is not one JSON line"));
      }
    };
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
    // the lab's process holds our stdin: when it is gone (even by kill -9) we stop too
    process.stdin.on("end", () => process.exit(0));
  });
}

readBootstrap()
  .then((boot) => serveEnclave(boot, emit))
  .then(
    () => {
      emit({ event: "exit" });
      process.exit(0);
    },
    (e) => {
      emit({ event: "error", code: isCleanRoomError(e) ? e.code : null, message: String(e?.message ?? e) });
      process.exit(isCleanRoomError(e) ? 2 : 1);
    },
  );
