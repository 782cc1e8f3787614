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
import { bug, invalid, isCleanRoomError, type ErrorCode } from "../errors.js";
import { attestationDisplay, type AttestationDisplay } from "../enclave/report.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { aesGcmOpen, b64, fromB64, utf8, x25519KeyPair } from "../crypto/primitives.js";
import { openSealed } from "../crypto/seal.js";
import { decodeDocument, type AttestationDocument } from "../enclave/document.js";
import { SimulatedHardwareRoot, type EnclaveInstance, type EnclaveView } from "../enclave/enclave.js";
import { KeyReleaseService, datasetAad, releaseInfo, type EncryptedDataset, type KeyReleaseGrant } from "../enclave/keyRelease.js";
import { allowImages } from "../enclave/verifier.js";
import { runAttested } from "../enclave/attestedRun.js";
import {
  DEMO_ENGINE,
  DEMO_PURPOSE,
  DEMO_TEMPLATE_HASH,
  approvedWorkload,
  demoPeople,
  peopleCsv,
  tamperedWorkload,
} from "./enclave-demo-workload.js";
import type { EnclaveWorkload } from "../enclave/enclave.js";
import type { JsonValue } from "../enclave/measurement.js";

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
export function demoLab(
  rng: Rng,
  opts: { clock?: () => number; config?: { [k: string]: JsonValue }; people?: Uint8Array; nonceTtlMs?: number } = {},
): DemoLab {
  const clock = opts.clock ?? (() => Date.now());
  const root = SimulatedHardwareRoot.create("demo-lab", rng, { clock });
  const enclave = root.launch(
    {
      engine: DEMO_ENGINE,
      approvedTemplateHashes: [DEMO_TEMPLATE_HASH],
      config: opts.config ?? { release: "exact" },
      workload: approvedWorkload,
    },
    rng,
  );
  const kmsOpts: ConstructorParameters<typeof KeyReleaseService>[0] = { owner: "retailer", pinnedRootPublicKey: root.publicKeyHex, clock };
  if (opts.nonceTtlMs !== undefined) kmsOpts.nonceTtlMs = opts.nonceTtlMs;
  const kms = new KeyReleaseService(kmsOpts);
  const people = opts.people ?? peopleCsv(demoPeople(200, 1, rng));
  const encrypted = kms.protectDataset(
    "people",
    people,
    { allowedMeasurements: allowImages([enclave.measurement.imageSha384]), requiredPurpose: DEMO_PURPOSE },
    rng,
  );
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
    return {
      scenario,
      whatGoesWrong,
      outcome: "refused",
      code: e.code,
      check: (e.details.check as string) ?? null,
      reason: (e.details.reason as string) ?? e.message,
    };
  }
}

function launchVariant(lab: DemoLab, rng: Rng, workload: EnclaveWorkload, debug = false): EnclaveInstance {
  return lab.root.launch(
    {
      engine: DEMO_ENGINE,
      approvedTemplateHashes: [DEMO_TEMPLATE_HASH],
      config: lab.enclave.config as { [k: string]: JsonValue },
      workload,
      debug,
    },
    rng,
  );
}

/** The tamper toggles of the attestation lab (reference §7.7). */
export const TAMPERS = [
  "none",
  "code",
  "replay",
  "nonce",
  "stale",
  "debug",
  "mitmKey",
  "mitmEdit",
  "mitmGrant",
  "purpose",
  "foreignRoot",
] as const;
export type Tamper = (typeof TAMPERS)[number];

interface Play {
  lab: DemoLab;
  rng: Rng;
  /** The document the owner's KMS looked at last (for display). */
  doc?: AttestationDocument;
  advance: (ms: number) => void;
  error?: unknown;
}

function release(p: Play, doc: AttestationDocument, nonce: string, key = decodeDocument(doc).public_key!): KeyReleaseGrant {
  p.doc = doc;
  return p.lab.kms.releaseKey({ datasetId: "people", document: doc, nonce, recipientPublicKey: key }, p.rng);
}
function ask(p: Play, enclave: EnclaveInstance, purpose = DEMO_PURPOSE): { nonce: string; doc: AttestationDocument } {
  const r = request(p.lab, enclave, p.rng, purpose);
  p.doc = r.doc;
  return r;
}

const SCENARIOS: { tamper: Tamper; scenario: string; whatGoesWrong: string; play: (p: Play) => void }[] = [
  {
    tamper: "none",
    scenario: "approved enclave",
    whatGoesWrong: "nothing: the measured, non-debug enclave asks with a fresh nonce",
    play: (p) => {
      const { nonce, doc } = ask(p, p.lab.enclave);
      p.lab.enclave.acceptKey(release(p, doc, nonce));
    },
  },
  {
    tamper: "code",
    scenario: "workload code changed by one byte",
    whatGoesWrong: "cohortRelease(w, 0) → cohortRelease(w, 9): the code now echoes raw rows; PCR0 differs",
    play: (p) => {
      const { nonce, doc } = ask(p, launchVariant(p.lab, p.rng, tamperedWorkload));
      release(p, doc, nonce);
    },
  },
  {
    tamper: "replay",
    scenario: "replayed document",
    whatGoesWrong: "the operator re-sends a document that already obtained a key, for a new challenge",
    play: (p) => {
      const first = ask(p, p.lab.enclave);
      release(p, first.doc, first.nonce);
      release(p, first.doc, p.lab.kms.challenge(p.rng));
    },
  },
  {
    tamper: "nonce",
    scenario: "wrong nonce",
    whatGoesWrong: "the document answers a different challenge than the one issued for this request",
    play: (p) => {
      const a = ask(p, p.lab.enclave);
      release(p, a.doc, p.lab.kms.challenge(p.rng));
    },
  },
  {
    tamper: "stale",
    scenario: "stale document",
    whatGoesWrong: "the document is 10 minutes old when it arrives (window 5 minutes)",
    play: (p) => {
      const a = ask(p, p.lab.enclave);
      p.advance(600_000);
      release(p, a.doc, a.nonce);
    },
  },
  {
    tamper: "debug",
    scenario: "debug enclave listed by a misconfigured policy",
    whatGoesWrong: "same image launched with a debugger; the owner's policy lists its measurement",
    play: (p) => {
      const { nonce, doc } = ask(p, launchVariant(p.lab, p.rng, approvedWorkload, true));
      release(p, doc, nonce);
    },
  },
  {
    tamper: "mitmKey",
    scenario: "man in the middle swaps the channel key",
    whatGoesWrong: "a relay forwards the genuine document but asks to seal to its own key",
    play: (p) => {
      const { nonce, doc } = ask(p, p.lab.enclave);
      release(p, doc, nonce, b64(x25519KeyPair(p.rng).publicKey));
    },
  },
  {
    tamper: "mitmEdit",
    scenario: "man in the middle edits public_key inside the document",
    whatGoesWrong: "a relay rewrites the signed payload's public_key to its own",
    play: (p) => {
      const { nonce, doc } = ask(p, p.lab.enclave);
      const payload = JSON.parse(Buffer.from(doc.payload, "base64").toString("utf8"));
      payload.public_key = b64(x25519KeyPair(p.rng).publicKey);
      release(p, { ...doc, payload: b64(utf8(JSON.stringify(payload))) }, nonce, payload.public_key);
    },
  },
  {
    tamper: "mitmGrant",
    scenario: "man in the middle keeps the grant",
    whatGoesWrong: "the relay lets the genuine request through, then tries to open the sealed key itself",
    play: (p) => {
      const { nonce, doc } = ask(p, p.lab.enclave);
      const grant = release(p, doc, nonce);
      const mitm = x25519KeyPair(p.rng);
      const box = { ephemeralPublicKey: fromB64(grant.sealedKey.ephemeralPublicKey), ciphertext: fromB64(grant.sealedKey.ciphertext) };
      openSealed(mitm.secretKey, mitm.publicKey, box, releaseInfo(grant.datasetId, grant.purpose, grant.documentHash));
    },
  },
  {
    tamper: "purpose",
    scenario: "purpose not allowed",
    whatGoesWrong: "the enclave declares marketing.advertising.first_party.targeted; the data is tagged for measurement",
    play: (p) => {
      const { nonce, doc } = ask(p, p.lab.enclave, "marketing.advertising.first_party.targeted");
      release(p, doc, nonce);
    },
  },
  {
    tamper: "foreignRoot",
    scenario: "enclave from another lab's hardware",
    whatGoesWrong: "a genuine-looking document chained to a root the owner never pinned",
    play: (p) => {
      const other = SimulatedHardwareRoot.create("other-lab", p.rng);
      const foreign = other.launch(
        { engine: DEMO_ENGINE, approvedTemplateHashes: [DEMO_TEMPLATE_HASH], config: { release: "exact" }, workload: approvedWorkload },
        p.rng,
      );
      const { nonce, doc } = ask(p, foreign);
      release(p, doc, nonce);
    },
  },
];

function playScenario(tamper: Tamper, rng: Rng): { outcome: ScenarioOutcome; play: Play } {
  const sc = SCENARIOS.find((x) => x.tamper === tamper);
  if (!sc) return invalid("tamper", TAMPERS.join(" | "), tamper);
  let t = Date.now();
  const lab = demoLab(rng, { clock: () => t, nonceTtlMs: 3_600_000 });
  const play: Play = { lab, rng, advance: (ms) => (t += ms) };
  const o = outcome(sc.scenario, sc.whatGoesWrong, () => {
    try {
      sc.play(play);
    } catch (e) {
      play.error = e;
      throw e;
    }
  });
  return { outcome: o, play };
}

/**
 * Run every attack scenario against a fresh lab and report what happened to the key.
 *
 * @example
 * demoAttestationRefusals(seededRng("week-5")).scenarios.map((s) => `${s.scenario}: ${s.outcome} ${s.code ?? ""}`)
 */
export function demoAttestationRefusals(rng: Rng): { scenarios: (ScenarioOutcome & { tamper: Tamper })[]; rngStamp: RngStamp } {
  return { scenarios: TAMPERS.map((tamper) => ({ tamper, ...playScenario(tamper, rng).outcome })), rngStamp: rngStamp(rng) };
}

/**
 * The attestation lab as one notebook cell: pick a tamper toggle, watch the owner's KMS
 * policy release or refuse, and get the `attestation` display payload (checks ok / failed /
 * skipped) plus the scenario outcome.
 *
 * @example
 * attestationLab("debug", seededRng("week-5")).display.keyRelease // { outcome: "denied", reason: "ATTESTATION_DEBUG" }
 */
export function attestationLab(tamper: Tamper, rng: Rng): { outcome: ScenarioOutcome; display: AttestationDisplay; rngStamp: RngStamp } {
  const { outcome: o, play } = playScenario(tamper, rng);
  const stamp = rngStamp(rng);
  const title = `attestation lab — ${o.scenario}`;
  let display: AttestationDisplay;
  if (!play.doc) return bug("scenario produced no document");
  if (o.outcome === "released") display = attestationDisplay(play.doc, { grantedTo: "people" }, { title, rngStamp: stamp });
  else if (tamper === "mitmGrant") {
    // Verification passed and the key was released — to the enclave; the relay could not open it.
    display = attestationDisplay(
      play.doc,
      { grantedTo: "people" },
      { title: `${title}: the relay's attempt to open it failed (${o.code})`, rngStamp: stamp },
    );
  } else display = attestationDisplay(play.doc, { error: play.error }, { title, rngStamp: stamp });
  return { outcome: o, display, rngStamp: stamp };
}

/** What the operator (host) holds after a run, and what it cannot do with it. */
export interface OperatorView {
  encryptedDatasets: { datasetId: string; ciphertextBytes: number; ciphertextHead: string }[];
  attestationDocument: {
    module_id: string;
    timestamp: number;
    pcr0: string;
    public_key: string | null;
    nonce: string | null;
    debug: boolean;
    purpose: string;
  };
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
  const result = lab.enclave.run({
    datasets: { people: lab.encrypted },
    templateHash: DEMO_TEMPLATE_HASH,
    params: { region: "north" },
    purpose: DEMO_PURPOSE,
  });

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
  tryIt("open the sealed data key with the operator's own X25519 key", () =>
    openSealed(own.secretKey, own.publicKey, box, releaseInfo(grant.datasetId, grant.purpose, grant.documentHash)),
  );
  tryIt("decrypt the dataset with a guessed key", () =>
    aesGcmOpen(rng.bytes(32), fromB64(lab.encrypted.nonce), fromB64(lab.encrypted.ciphertext), datasetAad("people")),
  );
  tryIt("ask the KMS for the key again with the same document", () =>
    lab.kms.releaseKey(
      { datasetId: "people", document: doc, nonce: lab.kms.challenge(rng), recipientPublicKey: lab.enclave.channelPublicKey },
      rng,
    ),
  );
  tryIt("run a query template not measured into the enclave", () =>
    lab.enclave.run({
      datasets: { people: lab.encrypted },
      templateHash: "ab".repeat(32),
      params: { region: "north" },
      purpose: DEMO_PURPOSE,
    }),
  );

  const p = decodeDocument(doc);
  const ct = fromB64(lab.encrypted.ciphertext);
  const operatorView: OperatorView = {
    encryptedDatasets: [
      {
        datasetId: lab.encrypted.datasetId,
        ciphertextBytes: ct.length,
        ciphertextHead: Buffer.from(ct.subarray(0, 12)).toString("hex") + "…",
      },
    ],
    attestationDocument: {
      module_id: p.module_id,
      timestamp: p.timestamp,
      pcr0: p.pcrs["0"]!,
      public_key: p.public_key,
      nonce: p.nonce,
      debug: p.debug,
      purpose: p.purpose,
    },
    sealedKeys: [
      {
        datasetId: grant.datasetId,
        ephemeralPublicKey: grant.sealedKey.ephemeralPublicKey,
        ciphertextBytes: fromB64(grant.sealedKey.ciphertext).length,
      },
    ],
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
  return runAttested(
    {
      enclave: lab.enclave,
      purpose: DEMO_PURPOSE,
      templateHash: DEMO_TEMPLATE_HASH,
      params: { region },
      inputs: [{ input: "people", owner: lab.kms, encrypted: lab.encrypted }],
    },
    rng,
  );
}
