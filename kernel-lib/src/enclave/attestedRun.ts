/**
 * One attested run, end to end: for each data owner, challenge → attest → verify → release
 * (sealed to the attested key) → accept inside the enclave; then run the measured workload
 * on the decrypted inputs and return plain data describing every step.
 *
 * This is the road `attestEnclave` / an enclave-backed `cleanRoomQuery` walks. Each owner
 * verifies independently with its own fresh nonce, as each KMS `Decrypt` call with a
 * `Recipient` carries its own attestation document. The first refusal stops the run before
 * any workload executes; keys already released stay inside the enclave only.
 */
import { CleanRoomError, invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { decodeDocument, type AttestationDocument } from "./document.js";
import type { EnclaveInstance, EnclaveRunRequest, EnclaveRunResult } from "./enclave.js";
import type { EncryptedDataset, KeyReleaseService } from "./keyRelease.js";
import type { JsonValue, PcrMap } from "./measurement.js";

/** One owner's contribution: its KMS, and the ciphertext the operator holds for it. */
export interface AttestedInput {
  /** The name the workload sees the decrypted bytes under (e.g. "exposures"). */
  input: string;
  owner: KeyReleaseService;
  encrypted: EncryptedDataset;
}

export interface AttestedRunRequest {
  enclave: EnclaveInstance;
  inputs: AttestedInput[];
  /** Declared purpose (dotted data use); goes into every signed document. */
  purpose: string;
  templateHash: string;
  params?: JsonValue;
  /** Optional user data bound into the documents (e.g. a session id). */
  userData?: string;
}

/** Plain-data report of an attested run (MIME kind `attestation`). */
export interface AttestedRunReport {
  kind: "attestation";
  moduleId: string;
  imageSha384: string;
  pcrs: PcrMap;
  pcrMeaning: { [index: string]: string };
  debug: boolean;
  purpose: string;
  attestations: {
    owner: string;
    datasetId: string;
    documentHash: string;
    moduleId: string;
    timestamp: number;
    checks: string[];
    released: true;
  }[];
  result: EnclaveRunResult;
  rngStamp: RngStamp;
}

/**
 * For each owner: fresh challenge → the enclave attests → the owner verifies against its
 * policy and seals its key → the enclave accepts it. No workload runs. Throws the first
 * refusal; keys already accepted stay inside the enclave.
 *
 * @example
 * attestAndRelease({ enclave, purpose, inputs: [{ input: "people", owner: kms, encrypted }] }, rng)
 */
export function attestAndRelease(
  req: { enclave: EnclaveInstance; inputs: AttestedInput[]; purpose: string; userData?: string },
  rng: Rng,
): AttestedRunReport["attestations"] {
  if (typeof req !== "object" || req === null) invalid("req", "AttestedRunRequest", req);
  if (!Array.isArray(req.inputs) || req.inputs.length === 0)
    invalid("req.inputs", "non-empty array of { input, owner, encrypted }", req.inputs);
  const names = new Set<string>();
  req.inputs.forEach((x, i) => {
    if (typeof x?.input !== "string" || x.input.length === 0) invalid(`req.inputs[${i}].input`, "non-empty string", x?.input);
    if (names.has(x.input)) invalid(`req.inputs[${i}].input`, "a name not used twice", x.input);
    names.add(x.input);
  });
  const attestations: AttestedRunReport["attestations"] = [];
  for (const x of req.inputs) {
    const nonce = x.owner.challenge(rng);
    const attestOpts: { purpose: string; userData?: string } = { purpose: req.purpose };
    if (req.userData !== undefined) attestOpts.userData = req.userData;
    const document: AttestationDocument = req.enclave.attest(nonce, attestOpts);
    const grant = x.owner.releaseKey(
      { datasetId: x.encrypted.datasetId, document, nonce, recipientPublicKey: req.enclave.channelPublicKey },
      rng,
    );
    req.enclave.acceptKey(grant);
    const p = decodeDocument(document);
    attestations.push({
      owner: x.owner.owner,
      datasetId: grant.datasetId,
      documentHash: grant.documentHash,
      moduleId: p.module_id,
      timestamp: p.timestamp,
      checks: grant.verifiedChecks,
      released: true,
    });
  }
  return attestations;
}

/**
 * Attest to every owner, collect the released keys inside the enclave, and run the workload.
 * Throws the first refusal (ATTESTATION_*, KEY_RELEASE_DENIED, QUERY_NOT_APPROVED, ...).
 *
 * @example
 * const report = runAttested({ enclave, purpose: "marketing.advertising.measurement",
 *   templateHash: h, params: { minAge: 18 },
 *   inputs: [{ input: "exposures", owner: adKms, encrypted: encExposures },
 *            { input: "purchases", owner: retailKms, encrypted: encPurchases }] }, rng)
 * report.result.output
 */
export function runAttested(req: AttestedRunRequest, rng: Rng): AttestedRunReport {
  const { attestations, runReq } = prepare(req, rng);
  return report(req, attestations, req.enclave.run(runReq), rng);
}

/**
 * `runAttested` for async workloads (e.g. a DuckDB-backed clean-room query).
 *
 * @example
 * const report = await runAttestedAsync({ enclave, purpose, templateHash: h, params, inputs }, rng)
 */
export async function runAttestedAsync(req: AttestedRunRequest, rng: Rng): Promise<AttestedRunReport> {
  const { attestations, runReq } = prepare(req, rng);
  return report(req, attestations, await req.enclave.runAsync(runReq), rng);
}

function prepare(req: AttestedRunRequest, rng: Rng): { attestations: AttestedRunReport["attestations"]; runReq: EnclaveRunRequest } {
  if (typeof req !== "object" || req === null || typeof req.enclave !== "object" || req.enclave === null)
    invalid("req.enclave", "EnclaveInstance", req?.enclave);
  // Refuse an unmeasured template before any key moves.
  if (!req.enclave.approvedTemplateHashes.includes(req.templateHash)) {
    throw new CleanRoomError("QUERY_NOT_APPROVED", `"req.templateHash" expected a template hash measured into the enclave`, {
      field: "req.templateHash",
    });
  }
  const attestations = attestAndRelease(req, rng);
  const datasets: Record<string, EncryptedDataset> = {};
  for (const x of req.inputs) datasets[x.input] = x.encrypted;
  const runReq: EnclaveRunRequest = { datasets, templateHash: req.templateHash, purpose: req.purpose };
  if (req.params !== undefined) runReq.params = req.params;
  return { attestations, runReq };
}

function report(
  req: AttestedRunRequest,
  attestations: AttestedRunReport["attestations"],
  result: EnclaveRunResult,
  rng: Rng,
): AttestedRunReport {
  const m = req.enclave.measurement;
  return {
    kind: "attestation",
    moduleId: req.enclave.moduleId,
    imageSha384: m.imageSha384,
    pcrs: { ...m.pcrs },
    pcrMeaning: { ...m.pcrMeaning },
    debug: req.enclave.debug,
    purpose: req.purpose,
    attestations,
    result,
    rngStamp: rngStamp(rng),
  };
}
