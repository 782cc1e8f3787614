/**
 * DP-SGD training inside a (simulated) attested enclave, on the inner join of the data owners'
 * tables. What each side does:
 *
 *   owner    computes, ON ITS OWN, the image it expects (`trainingImage`: the measured training
 *            workload and its dependencies, the training spec's hash as the one approved
 *            "template", the measured config), encrypts its rows for exactly that image and the
 *            purpose, and releases its data key only after the attestation verifies.
 *   enclave  decrypts, joins on the key, scales features by the PUBLIC bounds, trains with
 *            DP-SGD (ml/dpsgd.ts) with noise from its own Rng, and lets out only the model and
 *            the noisy per-epoch metrics histograms — no row, no count, no per-example value.
 *
 * The privacy cost is NOT decided here: the caller (verbs/ml.ts) computes it from the spec
 * with the RDP accountant and charges it between key release and the run (`attest` then `run`),
 * so a refused attestation costs nothing and an over-budget run never starts.
 *
 * Threat model: as enclave/enclave.ts — a simulation (real signatures, measurement, sealed
 * key release; isolation by language scoping, not hardware). The operator could launch a
 * different workload (e.g. one that also exports the joined rows — `tamper: "code"`): the
 * owners' pinned image then differs and no key is released.
 */
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng, RngStamp } from "../rng.js";
import { rngStamp } from "../rng.js";
import { SimulatedHardwareRoot, type EnclaveInstance, type EnclaveWorkload, type WorkloadInput } from "../enclave/enclave.js";
import { KeyReleaseService, type EncryptedDataset } from "../enclave/keyRelease.js";
import { allowImages } from "../enclave/verifier.js";
import { attestAndRelease } from "../enclave/attestedRun.js";
import { canonicalJson, measureImage, sha384Hex, type EnclaveImage, type JsonValue } from "../enclave/measurement.js";
import {
  addClippedGradient,
  addGaussianNoise,
  poissonSample,
  scoreHistogram,
  split,
  toMatrix,
  trainLogistic,
  UniformStream,
  type DpSgdSpec,
  type EpochRecord,
} from "./dpsgd.js";

/** One data owner's contribution (its rows stay on its side until encrypted for the pinned image). */
export interface TrainingOwner {
  party: string;
  rows: readonly Record<string, unknown>[];
  /** Columns this owner contributes (besides the join key). */
  columns: string[];
}

/** What the operator passes into the enclave (no values). */
export interface TrainingParams {
  spec: DpSgdSpec;
  joinKey: string;
  owners: { party: string; columns: string[] }[];
}

/** What leaves the enclave. */
export interface TrainingOutput {
  model: { weights: number[]; bias: number };
  epochs: EpochRecord[];
  steps: number;
}

/** Canonical hash of a training request: the one "template" owners approve by pinning it in the image. */
export function trainingSpecHash(p: TrainingParams): string {
  return sha384Hex(canonicalJson(p as unknown as JsonValue, "training")).slice(0, 64);
}

/**
 * The code that runs inside: decrypt → join → scale → DP-SGD → model + noisy histograms.
 * `exportRows` > 0 is the tampered variant (it also returns joined rows): its source differs,
 * so its measurement differs.
 */
export function trainInside(w: WorkloadInput, exportRows: number): JsonValue {
  const p = w.params as unknown as TrainingParams;
  if (trainingSpecHash(p) !== w.templateHash)
    throw new CleanRoomError("QUERY_NOT_APPROVED", `"params" expected the training spec whose hash was attested, got another`, {
      field: "params",
    });
  const tables = p.owners.map((o) => {
    const bytes = w.inputs[o.party];
    if (!bytes) return invalid(`inputs.${o.party}`, "a decrypted input", undefined, "KEY_RELEASE_DENIED");
    return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>[];
  });
  // inner join on the key (first owner drives; keys are unique per owner)
  const maps = tables.slice(1).map((t) => new Map(t.map((r) => [String(r[p.joinKey]), r])));
  const joined: Record<string, unknown>[] = [];
  for (const r of tables[0]!) {
    const k = String(r[p.joinKey]);
    const parts = maps.map((m) => m.get(k));
    if (parts.every((x) => x !== undefined)) joined.push(Object.assign({}, r, ...parts));
  }
  const m = toMatrix(joined, p.spec.features, p.spec.label);
  const u = new UniformStream(w.rng.fork("split"));
  const { train, holdout } = split(m.n, p.spec.holdoutFraction, u);
  const out = trainLogistic(m, train, holdout, p.spec, w.rng.fork("dpsgd"), { private: true });
  const result: { [k: string]: JsonValue } = {
    model: { weights: [...out.weights], bias: out.bias },
    epochs: out.epochs as unknown as JsonValue,
    steps: out.steps,
  };
  if (exportRows > 0) result.rawRows = joined.slice(0, exportRows) as unknown as JsonValue;
  return result;
}

/** The approved training workload (its source is measured). */
export const trainingWorkload: EnclaveWorkload = (w) => trainInside(w, 0);
/** The operator's modified workload: also exports joined rows. */
export const tamperedTrainingWorkload: EnclaveWorkload = (w) => trainInside(w, 5);

/** Functions the workload calls, measured by source text. */
export const TRAINING_DEPENDENCIES = {
  trainInside,
  trainLogistic,
  addClippedGradient,
  addGaussianNoise,
  poissonSample,
  scoreHistogram,
  toMatrix,
  split,
  trainingSpecHash,
} as const;

/** The canonical training image for a spec hash: what the operator launches and what each owner pins. */
export function trainingImage(specHash: string): EnclaveImage {
  const src = (f: unknown) => Function.prototype.toString.call(f);
  return {
    engine: { name: "cleanroom-lab/ml", version: "dpsgd-logistic v1" },
    approvedTemplateHashes: [specHash],
    config: { release: "model + per-epoch noisy score histograms only", noise: "Gaussian (float64 Box–Muller), enclave Rng" },
    workloadCode: src(trainingWorkload),
    dependencies: Object.fromEntries(Object.entries(TRAINING_DEPENDENCIES).map(([k, f]) => [k, src(f)])),
  };
}

export interface AttestedTraining {
  enclave: EnclaveInstance;
  /** The owners' ciphertexts the operator holds (keys are inside the enclave only). */
  datasets: Record<string, EncryptedDataset>;
  specHash: string;
  owners: { party: string; released: boolean; code: string | null; reason: string | null }[];
  imageSha384: string;
  moduleId: string;
}

/**
 * Launch the training enclave from `root`, let every owner encrypt for the image IT computes and
 * release its key after verifying the attestation. Throws the first refusal (nothing trained).
 */
export function attestTraining(
  root: SimulatedHardwareRoot,
  owners: readonly TrainingOwner[],
  params: TrainingParams,
  purpose: string,
  rng: Rng,
  tamper: "none" | "code" | "debug" = "none",
): AttestedTraining {
  const specHash = trainingSpecHash(params);
  const image = trainingImage(specHash);
  const enclave = root.launch(
    {
      engine: image.engine,
      approvedTemplateHashes: image.approvedTemplateHashes,
      config: image.config,
      workload: tamper === "code" ? tamperedTrainingWorkload : trainingWorkload,
      dependencies: TRAINING_DEPENDENCIES,
      debug: tamper === "debug",
    },
    rng,
  );
  const inputs = owners.map((o) => {
    const kms = new KeyReleaseService({ owner: o.party, pinnedRootPublicKey: root.publicKeyHex });
    // the owner's own computation of the image it accepts (never the operator's claim)
    const expected = measureImage(trainingImage(specHash)).imageSha384;
    const bytes = new TextEncoder().encode(JSON.stringify(o.rows));
    const encrypted = kms.protectDataset(o.party, bytes, { allowedMeasurements: allowImages([expected]), requiredPurpose: purpose }, rng);
    return { input: o.party, owner: kms, encrypted };
  });
  try {
    attestAndRelease({ enclave, inputs, purpose }, rng);
  } catch (e) {
    enclave.terminate();
    throw e;
  }
  return {
    enclave,
    datasets: Object.fromEntries(inputs.map((x) => [x.input, x.encrypted])),
    specHash,
    owners: owners.map((o) => ({ party: o.party, released: true, code: null, reason: null })),
    imageSha384: enclave.measurement.imageSha384,
    moduleId: enclave.moduleId,
  };
}

/** Run the measured training inside an attested enclave; only the model and noisy histograms come out. */
export function runTraining(
  a: AttestedTraining,
  params: TrainingParams,
  purpose: string,
  rng: Rng,
): TrainingOutput & { outputSha384: string; rngStamp: RngStamp } {
  try {
    const r = a.enclave.run({ datasets: a.datasets, templateHash: a.specHash, params: params as unknown as JsonValue, purpose });
    const o = r.output as unknown as TrainingOutput;
    return { model: o.model, epochs: o.epochs, steps: o.steps, outputSha384: r.outputSha384, rngStamp: rngStamp(rng) };
  } finally {
    a.enclave.terminate();
  }
}

export { SimulatedHardwareRoot };
