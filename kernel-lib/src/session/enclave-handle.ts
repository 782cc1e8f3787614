/**
 * What enclave mode's operator holds of a running enclave: a handle, the same whether the
 * enclave is a simulated object in the lab's process ({@link inProcessLauncher}, the quick
 * default) or its own OS process reached over 127.0.0.1 (session/enclave-process.ts).
 *
 * Every operation that crosses into the enclave is async (a process answers over a socket);
 * `view()` is what the enclave last reported of itself (sizes and digests, never contents).
 * Threat model: the operator sees what these methods return — attestation documents, sealed
 * grants it passes in, ciphertexts it passes in and released outputs — and nothing else.
 */
import type { Rng } from "../rng.js";
import { SimulatedHardwareRoot, type EnclaveRunRequest, type EnclaveRunResult, type EnclaveView } from "../enclave/enclave.js";
import type { EnclaveMeasurement, JsonValue } from "../enclave/measurement.js";
import type { AttestationDocument } from "../enclave/document.js";
import type { KeyReleaseGrant } from "../enclave/keyRelease.js";
import {
  ENCLAVE_DEPENDENCIES,
  enclaveRoomWorkload,
  publishedCode,
  tamperedEnclaveRoomWorkload,
  type PublishedCode,
} from "../enclave-room-workload.js";

/** A running enclave as the operator holds it. */
export interface EnclaveHandle {
  readonly moduleId: string;
  readonly measurement: EnclaveMeasurement;
  readonly debug: boolean;
  /** base64 X25519 key generated inside at launch (also signed into every document). */
  readonly channelPublicKey: string;
  readonly approvedTemplateHashes: readonly string[];
  /** The measured behaviour config (a copy of what PCR1 covers). */
  readonly config: { [k: string]: JsonValue };
  /** "in-process" or "process" (its own OS process). */
  readonly host: "in-process" | "process";
  /** The enclave process's id (null in-process). */
  readonly pid: number | null;
  /** False once the enclave was terminated or its process exited. */
  readonly alive: boolean;
  attest(nonce: string, opts: { purpose: string; userData?: string }): Promise<AttestationDocument>;
  acceptKey(grant: KeyReleaseGrant): Promise<void>;
  runAsync(req: EnclaveRunRequest): Promise<EnclaveRunResult>;
  /** What the enclave last reported it holds (sizes and digests only). */
  view(): EnclaveView;
  terminate(): void;
}

/** The image the operator asks the enclave host to launch (the host measures what it runs). */
export interface LaunchRequest {
  engine: { name: string; version: string };
  approvedTemplateHashes: string[];
  config: { [k: string]: JsonValue };
  /** "tampered": the one-byte-changed workload (teaching: owners must refuse it). */
  workload: "approved" | "tampered";
  debug: boolean;
}

/** Starts enclaves; one per lab. */
export interface EnclaveLauncher {
  readonly host: "in-process" | "process";
  /** The hardware root's public key every owner pins (hex). */
  readonly rootPublicKeyHex: string;
  launch(req: LaunchRequest, rng: Rng): Promise<EnclaveHandle>;
  /**
   * The published code of the approved workload these enclaves run (source texts), from which
   * each owner computes the measurement it pins: this module's in-process, the compiled
   * module the enclave process loads otherwise.
   */
  publishedCode(): PublishedCode;
  /** Stop every enclave this launcher started (lab close). */
  close(): void;
}

/**
 * The simulated enclave in the lab's own process: isolation by `#private` fields only.
 * @example const l = inProcessLauncher(room.roomId, room.enclaveRootKey); const e = await l.launch(req, rng)
 */
export function inProcessLauncher(labId: string, rootSecret: Uint8Array): EnclaveLauncher {
  const root = SimulatedHardwareRoot.fromSecretKey(labId, rootSecret);
  const live = new Set<EnclaveHandle>();
  return {
    host: "in-process",
    rootPublicKeyHex: root.publicKeyHex,
    publishedCode: () => publishedCode(),
    async launch(req, rng) {
      const e = root.launch(
        {
          engine: req.engine,
          approvedTemplateHashes: req.approvedTemplateHashes,
          config: req.config,
          workload: req.workload === "tampered" ? tamperedEnclaveRoomWorkload : enclaveRoomWorkload,
          dependencies: ENCLAVE_DEPENDENCIES,
          debug: req.debug,
        },
        rng,
      );
      let alive = true;
      const h: EnclaveHandle = {
        moduleId: e.moduleId,
        measurement: e.measurement,
        debug: e.debug,
        channelPublicKey: e.channelPublicKey,
        approvedTemplateHashes: e.approvedTemplateHashes,
        config: e.config,
        host: "in-process",
        pid: null,
        get alive() {
          return alive;
        },
        attest: async (nonce, o) => e.attest(nonce, o),
        acceptKey: async (grant) => void e.acceptKey(grant),
        runAsync: (r) => e.runAsync(r),
        view: () => e.view(),
        terminate: () => {
          alive = false;
          live.delete(h);
          e.terminate();
        },
      };
      live.add(h);
      return h;
    },
    close() {
      for (const h of [...live]) h.terminate();
    },
  };
}
