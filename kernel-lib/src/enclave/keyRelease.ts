/**
 * Key release in the manner of AWS KMS with Nitro conditions / Azure Secure Key Release.
 *
 * Each data owner runs a `KeyReleaseService` (its KMS). It encrypts its dataset bytes under a
 * fresh AES-256-GCM data key (AAD binds the dataset id), keeps the key, and hands the
 * ciphertext to the operator. It releases the data key only when an enclave presents an
 * attestation document that passes every verifier check against *this owner's* policy:
 * measurement (`ImageSha384` / PCR claims, anyOf/allOf as in SKR policies), required purpose
 * (inside the signed evidence), and debug off. The key is then sealed (crypto/seal.ts,
 * X25519 + HKDF-SHA256 + AES-256-GCM) to the X25519 key *from the signed document* — never to
 * a key supplied beside it — under an HKDF info string binding dataset, purpose and the
 * document's hash, so a grant cannot be re-targeted to another dataset, purpose or enclave.
 *
 * Threat model: the operator relays requests and grants and may replay, swap keys, or ask for
 * a key on behalf of a debug or modified enclave. Every refusal is typed, logged in the
 * owner's decision log (plain data) and happens before anything is sealed.
 * Reference: §5 (KMS `kms:RecipientAttestation:ImageSha384`, SKR anyOf/allOf), §7.7, §8.
 */
import { z } from "zod";
import { CleanRoomError, invalid, isCleanRoomError, type ErrorCode } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { aesGcmSeal, b64, fromB64, utf8 } from "../crypto/primitives.js";
import { sealTo } from "../crypto/seal.js";
import {
  AttestationVerifier,
  type MeasurementPolicy,
  type VerifiedAttestation,
  checkMeasurementPolicy,
  purposeSatisfies,
} from "./verifier.js";
import type { AttestationDocument } from "./document.js";

/** A data owner's key policy. */
export interface KeyReleasePolicy {
  /** Which enclave measurements may receive the key (SKR-style claims on PCRs). */
  allowedMeasurements: MeasurementPolicy;
  /** The declared purpose must equal this or be a dotted descendant of it. */
  requiredPurpose: string;
  /** Purposes the owner's tags deny (dataset or column level): a declared purpose overlapping any of them is refused — deny wins over `requiredPurpose`. */
  deniedPurposes?: string[];
  /** Oldest acceptable document for this dataset (ms); defaults to the service's. */
  maxDocumentAgeMs?: number;
}

/** Ciphertext of one dataset, as handed to the operator. Plain JSON. */
export interface EncryptedDataset {
  datasetId: string;
  owner: string;
  /** base64 12-byte GCM nonce. */
  nonce: string;
  /** base64 AES-256-GCM ciphertext‖tag of the dataset bytes. */
  ciphertext: string;
  plaintextBytes: number;
}

/** The owner's answer to a successful request: the data key sealed to the attested key. */
export interface KeyReleaseGrant {
  datasetId: string;
  owner: string;
  purpose: string;
  documentHash: string;
  imageSha384: string;
  sealedKey: { ephemeralPublicKey: string; ciphertext: string };
  /** The verifier checks that passed before sealing, in order. */
  verifiedChecks: string[];
  rngStamp: RngStamp;
}

export interface KeyReleaseRequest {
  datasetId: string;
  document: AttestationDocument;
  /** The nonce the owner issued for this request (from `challenge`). */
  nonce: string;
  /** The key the requester asks us to seal to (base64). Must equal the signed public_key. */
  recipientPublicKey: string;
}

/** One line of the owner's decision log. */
export interface ReleaseDecision {
  datasetId: string;
  decision: "released" | "refused";
  code?: ErrorCode;
  reason?: string;
  imageSha384?: string;
  purpose?: string;
  at: number;
}

const HEX96 = /^[0-9a-fA-F]{96}$/;
const policySchema = z.strictObject({
  allowedMeasurements: z.strictObject({
    anyOf: z
      .array(
        z.strictObject({ claim: z.enum(["ImageSha384", "PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8"]), equals: z.string().regex(HEX96) }),
      )
      .optional(),
    allOf: z
      .array(
        z.strictObject({ claim: z.enum(["ImageSha384", "PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8"]), equals: z.string().regex(HEX96) }),
      )
      .optional(),
  }),
  requiredPurpose: z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/),
  deniedPurposes: z
    .array(z.string().regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/))
    .max(256)
    .optional(),
  maxDocumentAgeMs: z.number().int().positive().optional(),
});

/**
 * AAD for a dataset ciphertext: binds it to its id (no swapping ciphertexts between ids).
 *
 * @example
 * aesGcmOpen(key, fromB64(enc.nonce), fromB64(enc.ciphertext), datasetAad(enc.datasetId))
 */
export function datasetAad(datasetId: string): Uint8Array {
  return utf8(`cleanroom-lab/dataset/v1|${datasetId}`);
}

/**
 * HKDF info for a sealed data key: binds dataset, purpose and attestation document hash.
 *
 * @example
 * releaseInfo("people", "marketing.advertising.measurement", grant.documentHash)
 */
export function releaseInfo(datasetId: string, purpose: string, documentHash: string): string {
  return `cleanroom-lab/key-release/v1|dataset=${datasetId}|purpose=${purpose}|doc=${documentHash}`;
}

/**
 * A data owner's KMS. Holds data keys privately; releases them only per policy.
 *
 * @example
 * const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: root.publicKeyHex })
 * const enc = kms.protectDataset("purchases", bytes, { allowedMeasurements: allowImages([pcr0]),
 *   requiredPurpose: "marketing.advertising.measurement" }, rng)
 * const nonce = kms.challenge(rng)
 * const doc = enclave.attest(nonce, { purpose: "marketing.advertising.measurement" })
 * enclave.acceptKey(kms.releaseKey({ datasetId: "purchases", document: doc, nonce, recipientPublicKey: enclave.channelPublicKey }, rng))
 */
export class KeyReleaseService {
  readonly owner: string;
  readonly verifier: AttestationVerifier;
  #keys = new Map<string, { key: Uint8Array; policy: KeyReleasePolicy }>();
  #log: ReleaseDecision[] = [];
  #clock: () => number;

  constructor(opts: {
    owner: string;
    pinnedRootPublicKey: string;
    clock?: () => number;
    maxAgeMs?: number;
    maxFutureSkewMs?: number;
    nonceTtlMs?: number;
  }) {
    if (typeof opts !== "object" || opts === null) invalid("opts", "{ owner, pinnedRootPublicKey }", opts);
    if (typeof opts.owner !== "string" || opts.owner.length === 0) invalid("opts.owner", "non-empty string", opts.owner);
    this.owner = opts.owner;
    this.#clock = opts.clock ?? (() => Date.now());
    const vo: ConstructorParameters<typeof AttestationVerifier>[0] = { pinnedRootPublicKey: opts.pinnedRootPublicKey, clock: this.#clock };
    if (opts.maxAgeMs !== undefined) vo.maxAgeMs = opts.maxAgeMs;
    if (opts.maxFutureSkewMs !== undefined) vo.maxFutureSkewMs = opts.maxFutureSkewMs;
    if (opts.nonceTtlMs !== undefined) vo.nonceTtlMs = opts.nonceTtlMs;
    this.verifier = new AttestationVerifier(vo);
  }

  /**
   * Encrypt `plaintext` under a fresh data key bound by `policy`. Returns the ciphertext the
   * operator may hold; the key stays here.
   */
  protectDataset(datasetId: string, plaintext: Uint8Array, policy: KeyReleasePolicy, rng: Rng): EncryptedDataset {
    if (typeof datasetId !== "string" || !/^[A-Za-z0-9_.:-]{1,200}$/.test(datasetId))
      invalid("datasetId", "identifier [A-Za-z0-9_.:-]{1,200}", datasetId);
    if (!(plaintext instanceof Uint8Array)) invalid("plaintext", "Uint8Array (e.g. serializeTable(table))", plaintext);
    const parsed = policySchema.safeParse(policy);
    if (!parsed.success)
      throw new CleanRoomError("PARAM_INVALID", `"policy" invalid: ${z.prettifyError(parsed.error)}`, { field: "policy" });
    checkMeasurementPolicy(policy.allowedMeasurements, "policy.allowedMeasurements");
    if (this.#keys.has(datasetId))
      throw new CleanRoomError("ALREADY_EXISTS", `"datasetId" already protected by this owner`, { field: "datasetId" });
    const key = rng.bytes(32);
    const nonce = rng.bytes(12);
    const ciphertext = aesGcmSeal(key, nonce, plaintext, datasetAad(datasetId));
    this.#keys.set(datasetId, { key, policy: structuredClone(parsed.data) as KeyReleasePolicy });
    return { datasetId, owner: this.owner, nonce: b64(nonce), ciphertext: b64(ciphertext), plaintextBytes: plaintext.length };
  }

  /** A fresh single-use challenge for one release request. */
  challenge(rng: Rng): string {
    return this.verifier.challenge(rng);
  }

  /** The policy attached to a dataset (copy). */
  policyOf(datasetId: string): KeyReleasePolicy {
    const e = this.#keys.get(datasetId);
    if (!e) throw new CleanRoomError("NOT_FOUND", `"datasetId" expected a dataset protected by ${this.owner}`, { field: "datasetId" });
    return structuredClone(e.policy);
  }

  /** The decision log (plain data). */
  decisions(): ReleaseDecision[] {
    return this.#log.map((d) => ({ ...d }));
  }

  /**
   * Verify the document against this dataset's policy and, only if every check passes, seal
   * the data key to the document's public key. Refusals throw the verifier's typed error
   * (ATTESTATION_*) and are logged.
   */
  releaseKey(req: KeyReleaseRequest, rng: Rng): KeyReleaseGrant {
    if (typeof req !== "object" || req === null) invalid("req", "{ datasetId, document, nonce, recipientPublicKey }", req);
    const entry = this.#keys.get(req.datasetId);
    if (!entry)
      throw new CleanRoomError("NOT_FOUND", `"req.datasetId" expected a dataset protected by ${this.owner}`, { field: "req.datasetId" });
    if (typeof req.recipientPublicKey !== "string") invalid("req.recipientPublicKey", "base64 X25519 key", req.recipientPublicKey);
    let verified: VerifiedAttestation;
    try {
      verified = this.verifier.verify(req.document, {
        nonce: req.nonce,
        purpose: entry.policy.requiredPurpose,
        measurements: entry.policy.allowedMeasurements,
        channelPublicKey: req.recipientPublicKey,
      });
      // Deny wins: a purpose inside or above a denied subtree is refused even if requiredPurpose covers it.
      const denied = (entry.policy.deniedPurposes ?? []).find(
        (d) => purposeSatisfies(verified.purpose, d) || purposeSatisfies(d, verified.purpose),
      );
      if (denied !== undefined) {
        throw new CleanRoomError(
          "ATTESTATION_PURPOSE",
          `attestation refused (purpose): declared purpose "${verified.purpose}" overlaps "${denied}", which the owner's tags deny`,
          { check: "purpose", reason: `declared purpose overlaps denied "${denied}"` },
        );
      }
      const age = this.#clock() - verified.timestamp;
      // A dataset may demand a stricter freshness window than the service default.
      if (entry.policy.maxDocumentAgeMs !== undefined && age > entry.policy.maxDocumentAgeMs) {
        throw new CleanRoomError(
          "ATTESTATION_STALE",
          `attestation refused (freshness): document is ${age} ms old (dataset policy max ${entry.policy.maxDocumentAgeMs})`,
          { check: "freshness", reason: "older than the dataset policy allows" },
        );
      }
    } catch (e) {
      if (isCleanRoomError(e))
        this.#log.push({
          datasetId: req.datasetId,
          decision: "refused",
          code: e.code,
          reason: String(e.details.reason ?? e.message),
          at: this.#clock(),
        });
      throw e;
    }
    // Seal to the key from the signed document, not to the one offered beside it.
    const box = sealTo(fromB64(verified.publicKey), entry.key, releaseInfo(req.datasetId, verified.purpose, verified.documentHash), rng);
    this.#log.push({
      datasetId: req.datasetId,
      decision: "released",
      imageSha384: verified.imageSha384,
      purpose: verified.purpose,
      at: this.#clock(),
    });
    return {
      datasetId: req.datasetId,
      owner: this.owner,
      purpose: verified.purpose,
      documentHash: verified.documentHash,
      imageSha384: verified.imageSha384,
      sealedKey: { ephemeralPublicKey: b64(box.ephemeralPublicKey), ciphertext: b64(box.ciphertext) },
      verifiedChecks: verified.checks,
      rngStamp: rngStamp(rng),
    };
  }
}
