/**
 * Worker-thread entry for the libsodium PSI backend: receives chunks of elements (to hash
 * and blind) or packed points (to blind, to validate, or to derive join keys from) with the
 * session scalar, returns packed points (or one validity flag, or one 16-byte key, per point).
 * Loaded by `SodiumBackend` from the compiled `dist/identity/psi-worker.js`.
 *
 * Threat model: the scalar crosses a thread boundary inside one process only (structured
 * clone), never a party boundary. The worker keeps no state between jobs.
 */
import { parentPort, workerData } from "node:worker_threads";
import { loadSodium, runJob, PSI_DST, type Job } from "./psi-backend.js";

const dst: string = (workerData as { dst?: string } | null)?.dst ?? PSI_DST;
// Start loading libsodium now, while the main thread prepares the first job; a load failure
// is reported by the first job below.
loadSodium().catch(() => undefined);

parentPort?.on("message", (job: Job & { scalar: Uint8Array }) => {
  loadSodium().then(
    (s) => {
      try {
        const packed = runJob(s, job, job.scalar, dst);
        parentPort!.postMessage({ ok: true, packed }, [packed.buffer as ArrayBuffer]);
      } catch (e) {
        parentPort!.postMessage({ ok: false, error: e instanceof Error ? e.message : String(e) });
      }
    },
    (e: unknown) => parentPort!.postMessage({ ok: false, error: String(e) }),
  );
});
