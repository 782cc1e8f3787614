/**
 * The enclave host: ONE simulated enclave in its own OS process (issue 13, "the enclave in its
 * own process"). `scripts/enclave-host.mjs` runs {@link serveEnclave}; the operator's side is
 * session/enclave-process.ts.
 *
 * The process plays the simulated hardware (the root that measures the image and certifies
 * the module key) and the enclave inside it. It loads the workload code ITSELF — the approved
 * one, or the one-byte-tampered one when started with `workload: "tampered"` — so the
 * measurement in every attestation document is of the code this process runs, not of a claim.
 * Its ephemeral keys (module signing key, X25519 channel key), the data keys released to it and
 * the decrypted inputs live only in this process's memory. It listens on 127.0.0.1 (port 0),
 * accepts ONE connection from the operator and speaks {@link ENCLAVE_PROTOCOL} over the project's
 * SecureChannel: `launch` → `attest` → `acceptKey` (grants sealed to its channel key) → `run`
 * (KMS-protected ciphertexts in, the released output out) → `terminate`.
 *
 * Threat model: the operator is the only peer and is curious; everything it sends and receives
 * is ciphertext (owner data, sealed keys), signed documents, metadata and released outputs.
 * The channel protects the link against other local processes reading the loopback; it is not
 * authenticated (no static keys): owners rely on the signed attestation document, not on the
 * channel, to know what they release keys to. Simulation limits: the hardware root secret is
 * handed to this process at start by the lab (same machine, same OS user, no memory encryption).
 * The process exits when its operator disconnects or its stdin closes (parent gone).
 */
import { CleanRoomError, isCleanRoomError } from "../errors.js";
import { makeRng, seededRng } from "../rng.js";
import { fromHex } from "../crypto/primitives.js";
import { SimulatedHardwareRoot, type EnclaveInstance, type EnclaveRunRequest } from "../enclave/enclave.js";
import type { EncryptedDataset, KeyReleaseGrant } from "../enclave/keyRelease.js";
import { listen } from "../transport/socket.js";
import { secureTransport } from "../transport/secure.js";
import { ENCLAVE_DEPENDENCIES, enclaveRoomWorkload, tamperedEnclaveRoomWorkload } from "../enclave-room-workload.js";
import type { LaunchRequest } from "./enclave-handle.js";

export const ENCLAVE_PROTOCOL = "cleanroom-lab/enclave-host/v1";

/** What the lab hands the host process on stdin at start (one JSON line). */
export interface HostBootstrap {
  labId: string;
  /** hex 32-byte secret of the simulated hardware root (the simulation's "hardware"). */
  rootSecretHex: string;
  /** Seed string in teaching mode; null → secure randomness. */
  seed: string | null;
  workload: "approved" | "tampered";
}

type Body = { [k: string]: unknown };

/**
 * Serve one enclave until the operator disconnects or sends `terminate`.
 * `emit` writes one event line for the parent (`listening` with the port).
 */
export async function serveEnclave(boot: HostBootstrap, emit: (o: { [k: string]: unknown }) => void): Promise<void> {
  if (typeof boot !== "object" || boot === null || typeof boot.labId !== "string" || typeof boot.rootSecretHex !== "string")
    throw new CleanRoomError("INPUT_INVALID", `"bootstrap" expected { labId, rootSecretHex, seed, workload }`, { field: "bootstrap" });
  if (boot.workload !== "approved" && boot.workload !== "tampered")
    throw new CleanRoomError("INPUT_INVALID", `"bootstrap.workload" expected approved | tampered`, { field: "bootstrap.workload" });
  const rng = boot.seed ? seededRng(boot.seed) : makeRng("secure");
  const root = SimulatedHardwareRoot.fromSecretKey(boot.labId, fromHex(boot.rootSecretHex));
  boot.rootSecretHex = "";
  const workload = boot.workload === "tampered" ? tamperedEnclaveRoomWorkload : enclaveRoomWorkload;
  const l = await listen({ self: "enclave", port: 0, expectPeer: "operator" });
  emit({ event: "listening", port: l.port, pid: process.pid });
  const raw = await l.accept();
  await l.close();
  const t = await secureTransport(raw, "responder", { rng: rng.fork("channel") });
  let enclave: EnclaveInstance | null = null;
  /** Ciphertexts received (owner-protected; useless without the released keys), by KMS dataset id. */
  const held = new Map<string, EncryptedDataset>();
  const need = (): EnclaveInstance => {
    if (!enclave)
      throw new CleanRoomError("STATE_INVALID", `"enclave" expected a launched enclave (send launch first)`, { field: "enclave" });
    return enclave;
  };
  for (;;) {
    let env;
    try {
      env = await t.receive({ protocol: ENCLAVE_PROTOCOL });
    } catch {
      break; // the operator went away (or the channel refused a frame): stop, keys die with us
    }
    const body = (env.body ?? {}) as Body;
    try {
      let reply: unknown;
      switch (env.kind) {
        case "launch": {
          if (enclave) throw new CleanRoomError("STATE_INVALID", `"launch" expected once per enclave process`, { field: "launch" });
          const req = body as unknown as Omit<LaunchRequest, "workload">;
          enclave = root.launch(
            {
              engine: req.engine,
              approvedTemplateHashes: req.approvedTemplateHashes,
              config: req.config,
              workload,
              dependencies: ENCLAVE_DEPENDENCIES,
              debug: req.debug,
            },
            rng,
          );
          reply = {
            moduleId: enclave.moduleId,
            measurement: enclave.measurement,
            debug: enclave.debug,
            channelPublicKey: enclave.channelPublicKey,
            approvedTemplateHashes: [...enclave.approvedTemplateHashes],
            config: enclave.config,
            view: enclave.view(),
          };
          break;
        }
        case "attest":
          reply = {
            document: need().attest(body.nonce as string, {
              purpose: body.purpose as string,
              ...(typeof body.userData === "string" ? { userData: body.userData } : {}),
            }),
          };
          break;
        case "acceptKey":
          need().acceptKey(body.grant as KeyReleaseGrant);
          reply = { view: need().view() };
          break;
        case "run": {
          const req = body.req as EnclaveRunRequest;
          if (typeof req !== "object" || req === null || typeof req.datasets !== "object" || req.datasets === null)
            throw new CleanRoomError("INPUT_INVALID", `"req.datasets" expected { name: ciphertext | { datasetId, held: true } }`, {
              field: "req.datasets",
            });
          // the operator names a ciphertext it sent before instead of sending it again
          const datasets: Record<string, EncryptedDataset> = {};
          for (const [k, d] of Object.entries(req.datasets as Record<string, EncryptedDataset | { datasetId: string; held: true }>)) {
            const known = "held" in d ? held.get(d.datasetId) : undefined;
            if ("held" in d && !known)
              throw new CleanRoomError("STATE_INVALID", `"req.datasets.${k}" expected a ciphertext this enclave holds`, {
                field: `req.datasets.${k}`,
              });
            datasets[k] = known ?? (d as EncryptedDataset);
          }
          const run = await need().runAsync({ ...req, datasets });
          for (const d of Object.values(datasets)) held.set(d.datasetId, d);
          reply = { run, view: need().view() };
          break;
        }
        case "terminate":
          enclave?.terminate();
          await t.send(ENCLAVE_PROTOCOL, "terminate.ok", {});
          t.close();
          return;
        default:
          throw new CleanRoomError("INPUT_INVALID", `"message.kind" expected launch | attest | acceptKey | run | terminate`, {
            field: "message.kind",
          });
      }
      await t.send(ENCLAVE_PROTOCOL, `${env.kind}.ok`, JSON.parse(JSON.stringify(reply)));
    } catch (e) {
      const err = isCleanRoomError(e)
        ? { code: e.code, message: e.message, field: (e.details.field as string) ?? null, check: (e.details.check as string) ?? null }
        : { code: "INTERNAL", message: "the enclave failed inside (no detail leaves it)", field: null, check: null };
      await t.send(ENCLAVE_PROTOCOL, "error", err);
    }
  }
  enclave?.terminate();
  t.close();
}
