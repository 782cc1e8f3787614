/**
 * The operator's side of an enclave in its own OS process (issue 13): {@link processLauncher}
 * spawns `scripts/enclave-host.mjs` (session/enclave-host.ts) once per launch, connects to it
 * on 127.0.0.1 under the project's SecureChannel, and returns an {@link EnclaveHandle} that
 * only RELAYS: launch parameters (the image to measure), the owners' challenges and the
 * attestation documents back, key-release grants sealed to the enclave's attested X25519 key,
 * KMS-protected ciphertexts, and the released output. No key that opens owner data is ever in
 * this process — the grants are opened by the enclave process only. But this process does hold
 * the SIMULATED hardware root's secret (from the lab's key file) and hands it to each host it
 * launches: whoever runs the operator could sign an attestation document for any measurement.
 * Real hardware keeps that key in the CPU; here it is the simulation's limit (README).
 *
 * Every message the relay sent or received is recorded in `relay.log` (the plaintext
 * envelopes, i.e. exactly what a curious operator sees), so tests can scan it for owner values
 * and keys. `relay.via` routes the connection through a proxy (tests record the raw wire);
 * `relay.onSent` is called after each request leaves (tests kill the enclave mid-query).
 *
 * Failure: when the enclave process exits (crash, `kill -9`), every pending and later call is
 * refused with a typed STATE_INVALID (`details.reason: "enclave-process-exited"`); keys and
 * plaintext died with the process, and a new launch is a new process with new keys, a new
 * attestation, and owners who must release their keys again.
 * Threat model and simulation limits: see session/enclave-host.ts.
 */
import { spawn } from "node:child_process";
import { createRequire } from "node:module";
import path from "node:path";
import { ed25519 } from "@noble/curves/ed25519.js";
import { CleanRoomError } from "../errors.js";
import { hex } from "../crypto/primitives.js";
import type { EnclaveRunResult, EnclaveView } from "../enclave/enclave.js";
import type { AttestationDocument } from "../enclave/document.js";
import type { EnclaveMeasurement, JsonValue } from "../enclave/measurement.js";
import { connect } from "../transport/socket.js";
import { secureTransport } from "../transport/secure.js";
import type { Envelope } from "../transport/transport.js";
import { publishedCode, type PublishedCode } from "../enclave-room-workload.js";
import { ENCLAVE_PROTOCOL, type HostBootstrap } from "./enclave-host.js";
import type { EnclaveHandle, EnclaveLauncher } from "./enclave-handle.js";

/**
 * The host script and the compiled workload module it loads, whose source texts the owners measure
 * (repository layout: kernel-lib/{src,dist}/session → scripts/, kernel-lib/dist). Resolved when
 * first needed (a bundle of this module without `__dirname` works until an enclave process is asked for).
 */
export function enclaveHostPaths(): { script: string; workload: string } {
  return {
    script: path.resolve(__dirname, "../../../scripts/enclave-host.mjs"),
    workload: path.resolve(__dirname, "../../dist/enclave-room-workload.js"),
  };
}

/**
 * The published code of the compiled workload module an enclave process loads (what owners
 * measure), from kernel-lib/dist — the same text whichever process computes it.
 */
export function builtPublishedCode(): PublishedCode {
  let mod;
  try {
    const { workload } = enclaveHostPaths();
    mod = createRequire(workload)(workload);
  } catch {
    throw new CleanRoomError(
      "STATE_INVALID",
      `"enclave" expected the built library (kernel-lib/dist) that an enclave process runs: build first`,
      {
        field: "enclave",
      },
    );
  }
  return publishedCode(mod);
}

/** One relayed message, as the operator sees it (inside the channel). */
export interface RelayEntry {
  dir: "to-enclave" | "from-enclave";
  kind: string;
  /** Size of the envelope's JSON. */
  bytes: number;
  /** The envelope's JSON, when `relay.record` is on (it holds the ciphertexts again: off by default). */
  json: string | null;
}

/** How many entries `relay.log` keeps (the oldest are dropped). */
export const RELAY_LOG_ENTRIES = 256;

/** The operator's relay: its log and the test seams. */
export interface Relay {
  readonly log: RelayEntry[];
  /** Keep each envelope's JSON in the log (tests and audits scan it); default off. */
  record?: boolean;
  /** Connect through this port instead (given the enclave's port); tests put a recording proxy there. */
  via?: (enclavePort: number) => Promise<number>;
  /** Called after each request to the enclave process left (kind, pid). */
  onSent?: (kind: string, pid: number) => void;
}

const START_TIMEOUT_MS = 60_000;

function exited(moduleId: string, how: string): CleanRoomError {
  return new CleanRoomError(
    "STATE_INVALID",
    `"enclave" expected a running enclave process (${moduleId}), got one that exited (${how}); ` +
      "its keys and plaintext died with it — a new query attests a new enclave",
    { field: "enclave", reason: "enclave-process-exited" },
  );
}

/**
 * Launch each enclave as its own OS process.
 * @example const l = processLauncher(room.roomId, room.enclaveRootKey, { log: [] }); const e = await l.launch(req, rng)
 */
export function processLauncher(labId: string, rootSecret: Uint8Array, relay: Relay): EnclaveLauncher {
  const secret = rootSecret.slice();
  const live = new Set<EnclaveHandle>();
  let code: PublishedCode | undefined;
  return {
    host: "process",
    rootPublicKeyHex: hex(ed25519.getPublicKey(secret)),
    publishedCode: () => (code ??= builtPublishedCode()),
    async launch(req, rng) {
      const boot: HostBootstrap = {
        labId,
        rootSecretHex: hex(secret),
        seed: rng.mode === "seeded" ? `${rng.seed}/enclave-host` : null,
        workload: req.workload,
      };
      const child = spawn(process.execPath, [enclaveHostPaths().script], { stdio: ["pipe", "pipe", "pipe"] });
      const pid = child.pid ?? -1;
      let alive = true;
      let how = "not started";
      let stderr = "";
      child.stderr!.on("data", (d: Buffer) => void (stderr = (stderr + d.toString()).slice(-2000)));
      const port = await new Promise<number>((resolve, reject) => {
        let buf = "";
        const timer = setTimeout(() => {
          child.kill("SIGKILL");
          reject(
            new CleanRoomError("STATE_INVALID", `"enclave" expected the enclave process to listen within ${START_TIMEOUT_MS} ms`, {
              field: "enclave",
            }),
          );
        }, START_TIMEOUT_MS);
        child.stdout!.on("data", (d: Buffer) => {
          buf += d.toString();
          for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
            const line = buf.slice(0, nl);
            buf = buf.slice(nl + 1);
            try {
              const ev = JSON.parse(line) as { event?: string; port?: number; message?: string };
              if (ev.event === "listening" && typeof ev.port === "number") {
                clearTimeout(timer);
                resolve(ev.port);
              }
            } catch {
              /* not an event line */
            }
          }
        });
        child.once("exit", (code, signal) => {
          alive = false;
          how = signal ? `signal ${signal}` : `exit ${code}`;
          clearTimeout(timer);
          reject(
            new CleanRoomError(
              "STATE_INVALID",
              `"enclave" expected the enclave process to start, got ${how}${stderr ? `: ${stderr.trim().split("\n").pop()}` : ""}`,
              { field: "enclave", reason: "enclave-process-exited" },
            ),
          );
        });
        child.on("error", () => undefined);
        child.stdin!.on("error", () => undefined);
        child.stdin!.write(JSON.stringify(boot) + "\n");
      });
      let t;
      try {
        const raw = await connect({ self: "operator", peer: "enclave", port: relay.via ? await relay.via(port) : port, retryMs: 5000 });
        t = await secureTransport(raw, "initiator", { rng: rng.fork("operator-channel") });
      } catch (e) {
        child.kill("SIGKILL");
        throw e;
      }
      const transport = t;
      let moduleId = `enclave process ${pid}`;
      const record = (dir: RelayEntry["dir"], env: Envelope | { kind: string; body: unknown }) => {
        const json = JSON.stringify(env);
        relay.log.push({ dir, kind: env.kind, bytes: json.length, json: relay.record ? json : null });
        if (relay.log.length > RELAY_LOG_ENTRIES) relay.log.splice(0, relay.log.length - RELAY_LOG_ENTRIES);
      };
      let queue: Promise<unknown> = Promise.resolve();
      const call = <T>(kind: string, body: unknown): Promise<T> => {
        const p = queue.then(async () => {
          if (!alive) throw exited(moduleId, how);
          const b = JSON.parse(JSON.stringify(body)) as JsonValue;
          record("to-enclave", { kind, body: b });
          let env: Envelope;
          try {
            await transport.send(ENCLAVE_PROTOCOL, kind, b);
            relay.onSent?.(kind, pid);
            env = await transport.receive({ protocol: ENCLAVE_PROTOCOL });
          } catch {
            alive = false;
            child.kill("SIGKILL");
            if (how === "not started") how = "link lost";
            throw exited(moduleId, how);
          }
          record("from-enclave", env);
          const rb = env.body as { [k: string]: unknown };
          if (env.kind === "error")
            throw new CleanRoomError(rb.code as never, String(rb.message), {
              field: (rb.field as string) ?? "enclave",
              ...(rb.check ? { check: rb.check } : {}),
              where: "enclave process",
            });
          if (env.kind !== `${kind}.ok`)
            throw new CleanRoomError("STATE_INVALID", `"message.kind" expected ${kind}.ok from the enclave`, { field: "message.kind" });
          return rb as T;
        });
        queue = p.catch(() => undefined);
        return p;
      };
      child.removeAllListeners("exit");
      child.once("exit", (code, signal) => {
        alive = false;
        how = signal ? `signal ${signal}` : `exit ${code}`;
        transport.close();
      });
      type Launched = {
        moduleId: string;
        measurement: EnclaveMeasurement;
        debug: boolean;
        channelPublicKey: string;
        approvedTemplateHashes: string[];
        config: { [k: string]: JsonValue };
        view: EnclaveView;
      };
      let l: Launched;
      try {
        l = await call<Launched>("launch", {
          engine: req.engine,
          approvedTemplateHashes: req.approvedTemplateHashes,
          config: req.config,
          debug: req.debug,
        });
      } catch (e) {
        child.kill("SIGKILL");
        throw e;
      }
      moduleId = l.moduleId;
      let view = l.view;
      const shipped = new Set<string>();
      const h: EnclaveHandle = {
        moduleId: l.moduleId,
        measurement: l.measurement,
        debug: l.debug,
        channelPublicKey: l.channelPublicKey,
        approvedTemplateHashes: Object.freeze([...l.approvedTemplateHashes]),
        config: Object.freeze(l.config),
        host: "process",
        pid,
        get alive() {
          return alive;
        },
        attest: async (nonce, o) =>
          (await call<{ document: AttestationDocument }>("attest", { nonce, purpose: o.purpose, userData: o.userData ?? null })).document,
        acceptKey: async (grant) => {
          view = (await call<{ view: EnclaveView }>("acceptKey", { grant })).view;
        },
        runAsync: async (r) => {
          // a ciphertext the process already holds is named, not sent again (its AAD binds the id)
          const datasets = Object.fromEntries(
            Object.entries(r.datasets).map(([k, d]) => [k, shipped.has(d.datasetId) ? { datasetId: d.datasetId, held: true } : d]),
          );
          const out = await call<{ run: EnclaveRunResult; view: EnclaveView }>("run", { req: { ...r, datasets } });
          for (const d of Object.values(r.datasets)) shipped.add(d.datasetId);
          view = out.view;
          return out.run;
        },
        view: () => JSON.parse(JSON.stringify(view)) as EnclaveView,
        terminate: () => {
          live.delete(h);
          alive = false;
          if (how === "not started") how = "terminated by the operator";
          transport.close();
          child.kill("SIGKILL");
        },
      };
      live.add(h);
      return h;
    },
    close() {
      for (const h of [...live]) h.terminate();
      secret.fill(0);
    },
  };
}
