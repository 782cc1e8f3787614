/**
 * Cost model of the enclave path: what attestation and key release add to one query.
 *
 * Plain path: the workload runs on plaintext bytes the operator holds.
 * Enclave path, split into phases and timed separately:
 *   encrypt    owner encrypts its dataset under a fresh data key (AES-256-GCM)
 *   attest     challenge + the hardware signs a document (Ed25519)
 *   verify     owner's KMS: cert chain + document signature + policy checks, then the data
 *              key sealed to the attested X25519 key (`releaseKey`)
 *   release    the enclave opens the sealed key (`acceptKey`)
 *   run        decrypt inputs inside + the same workload
 * Keys stay inside the enclave after release, so a session pays encrypt/attest/verify/release
 * once and then only the in-enclave decrypt per query (`oneTimeMs` vs `perQueryExtraMs`).
 * A real TEE adds memory-encryption and enclave-transition costs that a simulation cannot
 * measure; the cryptographic costs here are real. Timing uses `performance.now()`; results
 * are medians over `repeats`, plain data, with ratios to the plain path.
 */
import { invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { SimulatedHardwareRoot, type EnclaveWorkload } from "./enclave.js";
import { KeyReleaseService } from "./keyRelease.js";
import { allowImages } from "./verifier.js";
import type { JsonValue } from "./measurement.js";

export interface EnclaveCostReport {
  kind: "enclaveCost";
  inputBytes: number;
  repeats: number;
  /** Median milliseconds per phase. */
  plainMs: number;
  phasesMs: { encrypt: number; attest: number; verify: number; release: number; run: number };
  enclaveTotalMs: number;
  /** enclaveTotalMs / plainMs. */
  overheadRatio: number;
  /** Paid once per dataset and enclave (encrypt + attest + verify + release). */
  oneTimeMs: number;
  /** Paid on every query (in-enclave decrypt + the same workload) minus the plain path. */
  perQueryExtraMs: number;
  /** Phase / plain ratios. */
  phaseRatios: { encrypt: number; attest: number; verify: number; release: number; run: number };
  note: string;
  rngStamp: RngStamp;
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/**
 * Measure the enclave path against the plain path for one workload and input.
 *
 * @example
 * const r = measureEnclaveCost({ workload: approvedWorkload, input: "people",
 *   bytes: peopleCsv(demoPeople(10_000, 1, rng)), params: { region: "north" } }, rng)
 * r.overheadRatio
 */
export function measureEnclaveCost(
  spec: {
    workload: EnclaveWorkload;
    input: string;
    bytes: Uint8Array;
    params: JsonValue;
    config?: { [k: string]: JsonValue };
    templateHash?: string;
    purpose?: string;
    repeats?: number;
  },
  rng: Rng,
): EnclaveCostReport {
  if (typeof spec !== "object" || spec === null || typeof spec.workload !== "function")
    invalid("spec.workload", "function", spec?.workload);
  if (!(spec.bytes instanceof Uint8Array)) invalid("spec.bytes", "Uint8Array", spec.bytes);
  if (typeof spec.input !== "string" || spec.input.length === 0) invalid("spec.input", "non-empty string", spec.input);
  const repeats = spec.repeats ?? 5;
  if (!Number.isSafeInteger(repeats) || repeats < 1 || repeats > 1000) invalid("spec.repeats", "integer in [1, 1000]", repeats);
  const purpose = spec.purpose ?? "marketing.advertising.measurement";
  const templateHash = spec.templateHash ?? "c0".repeat(32);
  const config = spec.config ?? { release: "exact" };
  const engine = { name: "cost-model", version: "1" };
  const root = SimulatedHardwareRoot.create("cost-lab", rng);
  const noiseRng = rng.fork("cost-plain");

  const plain: number[] = [];
  const ph = { encrypt: [] as number[], attest: [] as number[], verify: [] as number[], release: [] as number[], run: [] as number[] };
  for (let r = 0; r < repeats; r++) {
    let t0 = performance.now();
    const copy = spec.bytes.slice();
    spec.workload({ inputs: { [spec.input]: copy }, templateHash, params: spec.params, purpose, config, rng: noiseRng });
    plain.push(performance.now() - t0);

    const enclave = root.launch({ engine, approvedTemplateHashes: [templateHash], config, workload: spec.workload }, rng);
    const kms = new KeyReleaseService({ owner: "owner", pinnedRootPublicKey: root.publicKeyHex });
    t0 = performance.now();
    const encrypted = kms.protectDataset(
      "ds",
      spec.bytes,
      { allowedMeasurements: allowImages([enclave.measurement.imageSha384]), requiredPurpose: purpose },
      rng,
    );
    ph.encrypt.push(performance.now() - t0);

    t0 = performance.now();
    const nonce = kms.challenge(rng);
    const doc = enclave.attest(nonce, { purpose });
    ph.attest.push(performance.now() - t0);

    t0 = performance.now();
    const grant = kms.releaseKey({ datasetId: "ds", document: doc, nonce, recipientPublicKey: enclave.channelPublicKey }, rng);
    ph.verify.push(performance.now() - t0);

    t0 = performance.now();
    enclave.acceptKey(grant);
    ph.release.push(performance.now() - t0);

    t0 = performance.now();
    enclave.run({ datasets: { [spec.input]: encrypted }, templateHash, params: spec.params, purpose });
    ph.run.push(performance.now() - t0);
    enclave.terminate();
  }
  const plainMs = median(plain);
  const phasesMs = {
    encrypt: median(ph.encrypt),
    attest: median(ph.attest),
    verify: median(ph.verify),
    release: median(ph.release),
    run: median(ph.run),
  };
  const enclaveTotalMs = phasesMs.encrypt + phasesMs.attest + phasesMs.verify + phasesMs.release + phasesMs.run;
  const ratio = (x: number) => x / Math.max(plainMs, 0.001);
  const round = (x: number) => Math.round(x * 1000) / 1000;
  return {
    kind: "enclaveCost",
    inputBytes: spec.bytes.length,
    repeats,
    plainMs: round(plainMs),
    phasesMs: {
      encrypt: round(phasesMs.encrypt),
      attest: round(phasesMs.attest),
      verify: round(phasesMs.verify),
      release: round(phasesMs.release),
      run: round(phasesMs.run),
    },
    enclaveTotalMs: round(enclaveTotalMs),
    overheadRatio: round(ratio(enclaveTotalMs)),
    oneTimeMs: round(phasesMs.encrypt + phasesMs.attest + phasesMs.verify + phasesMs.release),
    perQueryExtraMs: round(Math.max(0, phasesMs.run - plainMs)),
    phaseRatios: {
      encrypt: round(ratio(phasesMs.encrypt)),
      attest: round(ratio(phasesMs.attest)),
      verify: round(ratio(phasesMs.verify)),
      release: round(ratio(phasesMs.release)),
      run: round(ratio(phasesMs.run)),
    },
    note: "simulated TEE: cryptographic costs are real; memory encryption and enclave transitions of real hardware are not modelled",
    rngStamp: rngStamp(rng),
  };
}
