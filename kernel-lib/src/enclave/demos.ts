/**
 * Notebook-ready demonstrations of what attestation and key release defend against — and
 * what they do not (reference §7.7: "tamper with PCR0, the debug bit, nonce reuse … and watch
 * a KMS/SKR-style policy refuse to release the sealed key").
 *
 * Every scenario builds its own small lab (root, enclave, the data owner's KMS) so exactly
 * one thing is wrong, runs the real verifier and key release, and reports plain data:
 * `{ scenario, outcome: "released" | "refused", code, check, reason }`. Nothing is simulated
 * in the checks themselves; only the hardware is.
 */
import { isCleanRoomError, type ErrorCode } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { aesGcmOpen, b64, fromB64, utf8, x25519KeyPair } from "../crypto/primitives.js";
import { openSealed } from "../crypto/seal.js";
import { decodeDocument, type AttestationDocument } from "./document.js";
import { SimulatedHardwareRoot, type EnclaveInstance, type EnclaveView } from "./enclave.js";
import { KeyReleaseService, datasetAad, releaseInfo, type EncryptedDataset, type KeyReleaseGrant } from "./keyRelease.js";
import { allowImages } from "./verifier.js";
import { runAttested } from "./attestedRun.js";
import { DEMO_ENGINE, DEMO_PURPOSE, DEMO_TEMPLATE_HASH, approvedWorkload, demoPeople, peopleCsv, tamperedWorkload } from "./demoWorkload.js";
import type { EnclaveWorkload } from "./enclave.js";
import type { JsonValue } from "./measurement.js";

export interface ScenarioOutcome {
  scenario: string;
  whatGoesWrong: string;
  outcome: "released" | "refused";
  code: ErrorCode | null;
  check: string | null;
  reason: string | null;
}

export interface DemoLab {
  root: SimulatedHardwareRoot;
  enclave: EnclaveInstance;
  kms: KeyReleaseService;
  encrypted: EncryptedDataset;
}

/**
 * A lab with one approved enclave and one data owner whose policy admits exactly its
 * measurement. `config` is the measured release config (default exact counts).
 *
 * @example
 * const { enclave, kms, encrypted } = demoLab(seededRng("lab"))
 */
export function demoLab(rng: Rng, opts: { clock?: () => number; config?: { [k: string]: JsonValue }; people?: Uint8Array; nonceTtlMs?: number } = {}): DemoLab {
  const clock = opts.clock ?? (() => Date.now());
  const root = SimulatedHardwareRoot.create("demo-lab", rng, { clock });
  const enclave = root.launch({ engine: DEMO_ENGINE, approvedTemplateHashes: [DEMO_TEMPLATE_HASH], config: opts.config ?? { release: "exact" }, workload: approvedWorkload }, rng);
  const kmsOpts: ConstructorParameters<typeof KeyReleaseService>[0] = { owner: "retailer", pinnedRootPublicKey: root.publicKeyHex, clock };
  if (opts.nonceTtlMs !== undefined) kmsOpts.nonceTtlMs = opts.nonceTtlMs;
  const kms = new KeyReleaseService(kmsOpts);
  const people = opts.people ?? peopleCsv(demoPeople(200, 1, rng));
  const encrypted = kms.protectDataset("people", people, { allowedMeasurements: allowImages([enclave.measurement.imageSha384]), requiredPurpose: DEMO_PURPOSE }, rng);
  return { root, enclave, kms, encrypted };
}

function request(lab: DemoLab, enclave: EnclaveInstance, rng: Rng, purpose = DEMO_PURPOSE): { nonce: string; doc: AttestationDocument } {
  const nonce = lab.kms.challenge(rng);
  return { nonce, doc: enclave.attest(nonce, { purpose }) };
}

function outcome(scenario: string, whatGoesWrong: string, f: () => unknown): ScenarioOutcome {
  try {
    f();
    return { scenario, whatGoesWrong, outcome: "released", code: null, check: null, reason: null };
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    return { scenario, whatGoesWrong, outcome: "refused", code: e.code, check: (e.details.check as string) ?? null, reason: (e.details.reason as string) ?? e.message };
  }
}

function launchVariant(lab: DemoLab, rng: Rng, workload: EnclaveWorkload, debug = false): EnclaveInstance {
  return lab.root.launch({ engine: DEMO_ENGINE, approvedTemplateHashes: [DEMO_TEMPLATE_HASH], config: lab.enclave.config as { [k: string]: JsonValue }, workload, debug }, rng);
}

/**
 * Run every attack scenario against a fresh lab and report what happened to the key.
 *
 * @example
 * demoAttestationRefusals(seededRng("week-5")).map((s) => `${s.scenario}: ${s.outcome} ${s.code ?? ""}`)
 */
export function demoAttestationRefusals(rng: Rng): { scenarios: ScenarioOutcome[]; rngStamp: RngStamp } {
  const s: ScenarioOutcome[] = [];
  const release = (lab: DemoLab, doc: AttestationDocument, nonce: string, key = decodeDocument(doc).public_key!): KeyReleaseGrant =>
    lab.kms.releaseKey({ datasetId: "people", document: doc, nonce, recipientPublicKey: key }, rng);

  let lab = demoLab(rng);
  s.push(outcome("approved enclave", "nothing: the measured, non-debug enclave asks with a fresh nonce", () => {
    const { nonce, doc } = request(lab, lab.enclave, rng);
    lab.enclave.acceptKey(release(lab, doc, nonce));
  }));

  lab = demoLab(rng);
  s.push(outcome("workload code changed by one byte", "cohortRelease(w, 0) → cohortRelease(w, 9): the code now echoes raw rows; PCR0 differs", () => {
    const evil = launchVariant(lab, rng, tamperedWorkload);
    const { nonce, doc } = request(lab, evil, rng);
    release(lab, doc, nonce);
  }));

  lab = demoLab(rng);
  s.push(outcome("replayed document", "the operator re-sends a document that already obtained a key, for a new challenge", () => {
    const first = request(lab, lab.enclave, rng);
    release(lab, first.doc, first.nonce);
    const fresh = lab.kms.challenge(rng);
    release(lab, first.doc, fresh);
  }));

  lab = demoLab(rng);
  s.push(outcome("wrong nonce", "the document answers a different challenge than the one issued for this request", () => {
    const a = request(lab, lab.enclave, rng);
    const other = lab.kms.challenge(rng);
    release(lab, a.doc, other);
  }));

  let t = 1_700_000_000_000;
  lab = demoLab(rng, { clock: () => t, nonceTtlMs: 3_600_000 });
  s.push(outcome("stale document", "the document is 10 minutes old when it arrives (window 5 minutes)", () => {
    const a = request(lab, lab.enclave, rng);
    t += 600_000;
    release(lab, a.doc, a.nonce);
  }));

  lab = demoLab(rng);
  s.push(outcome("debug enclave listed by a misconfigured policy", "same image launched with a debugger; the owner's policy lists its measurement", () => {
    const dbg = launchVariant(lab, rng, approvedWorkload, true);
    const { nonce, doc } = request(lab, dbg, rng);
    release(lab, doc, nonce);
  }));

  lab = demoLab(rng);
  s.push(outcome("man in the middle swaps the channel key", "a relay forwards the genuine document but asks to seal to its own key", () => {
    const { nonce, doc } = request(lab, lab.enclave, rng);
    release(lab, doc, nonce, b64(x25519KeyPair(rng).publicKey));
  }));

  lab = demoLab(rng);
  s.push(outcome("man in the middle edits public_key inside the document", "a relay rewrites the signed payload's public_key to its own", () => {
    const { nonce, doc } = request(lab, lab.enclave, rng);
    const p = JSON.parse(Buffer.from(doc.payload, "base64").toString("utf8"));
    p.public_key = b64(x25519KeyPair(rng).publicKey);
    const forged = { ...doc, payload: b64(utf8(JSON.stringify(p))) };
    release(lab, forged, nonce, p.public_key);
  }));

  lab = demoLab(rng);
  s.push(outcome("man in the middle keeps the grant", "the relay lets the genuine request through, then tries to open the sealed key itself", () => {
    const { nonce, doc } = request(lab, lab.enclave, rng);
    const grant = release(lab, doc, nonce);
    const mitm = x25519KeyPair(rng);
    const box = { ephemeralPublicKey: fromB64(grant.sealedKey.ephemeralPublicKey), ciphertext: fromB64(grant.sealedKey.ciphertext) };
    openSealed(mitm.secretKey, mitm.publicKey, box, releaseInfo(grant.datasetId, grant.purpose, grant.documentHash));
  }));

  lab = demoLab(rng);
  s.push(outcome("purpose not allowed", "the enclave declares marketing.advertising.targeting; the data is tagged for measurement", () => {
    const { nonce, doc } = request(lab, lab.enclave, rng, "marketing.advertising.targeting");
    release(lab, doc, nonce);
  }));

  lab = demoLab(rng);
  s.push(outcome("enclave from another lab's hardware", "a genuine-looking document chained to a root the owner never pinned", () => {
    const other = SimulatedHardwareRoot.create("other-lab", rng);
    const foreign = other.launch({ engine: DEMO_ENGINE, approvedTemplateHashes: [DEMO_TEMPLATE_HASH], config: { release: "exact" }, workload: approvedWorkload }, rng);
    const { nonce, doc } = request(lab, foreign, rng);
    release(lab, doc, nonce);
  }));

  return { scenarios: s, rngStamp: rngStamp(rng) };
}

/** What the operator (host) holds after a run, and what it cannot do with it. */
export interface OperatorView {
  encryptedDatasets: { datasetId: string; ciphertextBytes: number; ciphertextHead: string }[];
  attestationDocument: { module_id: string; timestamp: number; pcr0: string; public_key: string | null; nonce: string | null; debug: boolean; purpose: string };
  sealedKeys: { datasetId: string; ephemeralPublicKey: string; ciphertextBytes: number }[];
  output: JsonValue;
  attempts: { attempt: string; result: string }[];
  plaintextSeen: false;
}

/**
 * Side by side: the operator's view (ciphertexts, document, sealed keys, output — and failed
 * attempts to decrypt) and the enclave's view (keys held, plaintext sizes and digests).
 *
 * @example
 * const { operatorView, enclaveView } = demoOperatorVsEnclaveView(seededRng("views"))
 */
export function demoOperatorVsEnclaveView(rng: Rng): { operatorView: OperatorView; enclaveView: EnclaveView; rngStamp: RngStamp } {
  const lab = demoLab(rng, { config: { release: "threshold", minCohort: 20 } });
  const nonce = lab.kms.challenge(rng);
  const doc = lab.enclave.attest(nonce, { purpose: DEMO_PURPOSE });
  const grant = lab.kms.releaseKey({ datasetId: "people", document: doc, nonce, recipientPublicKey: lab.enclave.channelPublicKey }, rng);
  lab.enclave.acceptKey(grant);
  const result = lab.enclave.run({ datasets: { people: lab.encrypted }, templateHash: DEMO_TEMPLATE_HASH, params: { region: "north" }, purpose: DEMO_PURPOSE });

  const attempts: OperatorView["attempts"] = [];
  const tryIt = (attempt: string, f: () => unknown) => {
    try {
      f();
      attempts.push({ attempt, result: "SUCCEEDED (this would be a bug)" });
    } catch (e) {
      if (!isCleanRoomError(e)) throw e;
      attempts.push({ attempt, result: `refused: ${e.code}` });
    }
  };
  const own = x25519KeyPair(rng);
  const box = { ephemeralPublicKey: fromB64(grant.sealedKey.ephemeralPublicKey), ciphertext: fromB64(grant.sealedKey.ciphertext) };
  tryIt("open the sealed data key with the operator's own X25519 key", () => openSealed(own.secretKey, own.publicKey, box, releaseInfo(grant.datasetId, grant.purpose, grant.documentHash)));
  tryIt("decrypt the dataset with a guessed key", () => aesGcmOpen(rng.bytes(32), fromB64(lab.encrypted.nonce), fromB64(lab.encrypted.ciphertext), datasetAad("people")));
  tryIt("ask the KMS for the key again with the same document", () => lab.kms.releaseKey({ datasetId: "people", document: doc, nonce: lab.kms.challenge(rng), recipientPublicKey: lab.enclave.channelPublicKey }, rng));
  tryIt("run a query template not measured into the enclave", () => lab.enclave.run({ datasets: { people: lab.encrypted }, templateHash: "ab".repeat(32), params: { region: "north" }, purpose: DEMO_PURPOSE }));

  const p = decodeDocument(doc);
  const ct = fromB64(lab.encrypted.ciphertext);
  const operatorView: OperatorView = {
    encryptedDatasets: [{ datasetId: lab.encrypted.datasetId, ciphertextBytes: ct.length, ciphertextHead: Buffer.from(ct.subarray(0, 12)).toString("hex") + "…" }],
    attestationDocument: { module_id: p.module_id, timestamp: p.timestamp, pcr0: p.pcrs["0"]!, public_key: p.public_key, nonce: p.nonce, debug: p.debug, purpose: p.purpose },
    sealedKeys: [{ datasetId: grant.datasetId, ephemeralPublicKey: grant.sealedKey.ephemeralPublicKey, ciphertextBytes: fromB64(grant.sealedKey.ciphertext).length }],
    output: result.output,
    attempts,
    plaintextSeen: false,
  };
  return { operatorView, enclaveView: lab.enclave.view(), rngStamp: rngStamp(rng) };
}

/**
 * Full happy path on the demo workload via `runAttested` (attest → verify → release → run).
 *
 * @example
 * demoHappyPath(seededRng("hp")).result.output
 */
export function demoHappyPath(rng: Rng, region = "north") {
  const lab = demoLab(rng, { config: { release: "threshold", minCohort: 20 } });
  return runAttested({ enclave: lab.enclave, purpose: DEMO_PURPOSE, templateHash: DEMO_TEMPLATE_HASH, params: { region }, inputs: [{ input: "people", owner: lab.kms, encrypted: lab.encrypted }] }, rng);
}
