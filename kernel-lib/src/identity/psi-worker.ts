/**
 * Worker-thread entry for the libsodium PSI backend: receives chunks of elements (to hash
 * and blind) or packed points (to blind, or to validate) with the session scalar, returns
 * packed points (or one validity flag per point).
 * Loaded by `SodiumBackend` from the compiled `dist/identity/psi-worker.js`.
 *
 * Threat model: the scalar crosses a thread boundary inside one process only (structured
 * clone), never a party boundary. The worker keeps no state between jobs.
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadSodium, sodiumBlind, sodiumHashAndBlind, sodiumValidate, PSI_DST } from "./psi-backend.js";

type Job =
  | { op: "hash"; elements: string[]; scalar: Uint8Array }
  | { op: "blind"; packed: Uint8Array; scalar: Uint8Array }
  | { op: "validate"; packed: Uint8Array; scalar: Uint8Array };

const dst: string = (workerData as { dst?: string } | null)?.dst ?? PSI_DST;
// Start loading libsodium now, while the main thread prepares the first job; a load failure
// is reported by the first job below.
loadSodium().catch(() => undefined);

parentPort?.on("message", (job: Job) => {
  loadSodium().then(
    (s) => {
      try {
        const packed =
          job.op === "hash"
            ? sodiumHashAndBlind(s, job.elements, job.scalar, dst)
            : job.op === "blind"
              ? sodiumBlind(s, job.packed, job.scalar)
              : sodiumValidate(s, job.packed);
        parentPort!.postMessage({ ok: true, packed }, [packed.buffer as ArrayBuffer]);
      } catch (e) {
        parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
      }
    },
    (e: unknown) => parentPort!.postMessage({ ok: false, error: String(e) }),
  );
});
