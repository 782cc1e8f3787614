/**
 * Attestation verification: everything a relying party must check before trusting an enclave.
 *
 * Checks, in order, each failing with its own code (reference §5: Nitro verify-root, DCAP
 * steps; "a genuine but out-of-date platform is accepted" is the classic skipped check):
 *   1. structure                         ATTESTATION_INVALID
 *   2. root certificate = pinned root    ATTESTATION_UNTRUSTED_ROOT
 *   3. module cert signed by root, cert validity, document signed by module key
 *                                        ATTESTATION_SIGNATURE
 *   4. nonce never accepted before       ATTESTATION_REPLAY
 *   5. nonce = the challenge we issued, still outstanding and unexpired
 *                                        ATTESTATION_NONCE
 *   6. timestamp within the window       ATTESTATION_STALE
 *   7. debug flag off, PCR0 not all-zero ATTESTATION_DEBUG   (before the allow-list, so a
 *      misconfigured policy that lists a debug enclave's measurement cannot admit it)
 *   8. PCRs satisfy the measurement policy (anyOf / allOf claims)  ATTESTATION_MEASUREMENT
 *   9. the channel key we are about to use = `public_key` in the signed document
 *                                        ATTESTATION_KEY_MISMATCH
 *  10. declared purpose satisfies the required purpose   ATTESTATION_PURPOSE
 * A challenge is consumed once the signature checks pass, whatever happens later: single use.
 *
 * Threat model: the network and the operator relaying documents are adversarial (replay,
 * substitution, tampering). The verifier trusts only its pinned root key and its own clock.
 */
import { CleanRoomError, invalid, type ErrorCode } from "../errors.js";
import type { Rng } from "../rng.js";
import { fromB64, hex } from "../crypto/primitives.js";
import { ZERO_PCR } from "./measurement.js";
import {
  certificateSignedBy,
  decodeCertificate,
  decodeDocument,
  documentHash,
  documentSignedBy,
  type AttestationDocument,
} from "./document.js";

/** A claim on a PCR (`ImageSha384` is PCR0, as in `kms:RecipientAttestation:ImageSha384`). */
export interface MeasurementClaim {
  claim: "ImageSha384" | "PCR0" | "PCR1" | "PCR2" | "PCR3" | "PCR4" | "PCR8";
  equals: string;
}
/** SKR-style: every `allOf` claim must hold, and at least one `anyOf` claim (if any are given). */
export interface MeasurementPolicy {
  anyOf?: MeasurementClaim[];
  allOf?: MeasurementClaim[];
}

export interface VerifyExpectations {
  /** The challenge (hex) this verifier issued for this exchange. */
  nonce: string;
  /** Required purpose; the document's purpose must equal it or be a dotted descendant. */
  purpose: string;
  measurements: MeasurementPolicy;
  /** base64 key the caller was handed to seal to (e.g. by a relay). Must equal the signed one. */
  channelPublicKey?: string;
}

/** Plain-data result of a successful verification. */
export interface VerifiedAttestation {
  moduleId: string;
  timestamp: number;
  imageSha384: string;
  pcrs: { [index: string]: string };
  publicKey: string;
  userData: string | null;
  nonce: string;
  purpose: string;
  documentHash: string;
  checks: string[];
}

export interface VerifierOptions {
  /** hex Ed25519 public key of the lab's hardware root (pinned out of band). */
  pinnedRootPublicKey: string;
  /** ms clock; inject for tests. */
  clock?: () => number;
  /** Oldest acceptable document (default 5 minutes). */
  maxAgeMs?: number;
  /** Tolerated clock skew into the future (default 30 s). */
  maxFutureSkewMs?: number;
  /** How long an issued challenge stays valid (default 5 minutes). */
  nonceTtlMs?: number;
}

export const CHECK_ORDER = [
  "structure",
  "pinnedRoot",
  "signature",
  "replay",
  "nonce",
  "freshness",
  "debug",
  "measurement",
  "channelKey",
  "purpose",
] as const;

function fail(code: ErrorCode, check: string, reason: string, extra: Record<string, unknown> = {}): never {
  throw new CleanRoomError(code, `attestation refused (${check}): ${reason}`, { check, reason, ...extra });
}

/**
 * Dotted-purpose match: a declared purpose satisfies a required one if equal or a descendant.
 *
 * @example
 * purposeSatisfies("marketing.advertising.measurement", "marketing.advertising") // true
 */
export function purposeSatisfies(declared: string, required: string): boolean {
  return declared === required || declared.startsWith(`${required}.`);
}

/**
 * Does `pcrs` satisfy `policy`? Returns the failing claim description or null.
 *
 * @example
 * evaluateMeasurementPolicy(enclave.measurement.pcrs, allowImages([pcr0])) // null
 */
export function evaluateMeasurementPolicy(pcrs: { [i: string]: string }, policy: MeasurementPolicy): string | null {
  const holds = (c: MeasurementClaim) => {
    const idx = c.claim === "ImageSha384" ? "0" : c.claim.slice(3);
    return pcrs[idx] !== undefined && pcrs[idx] === c.equals.toLowerCase();
  };
  const allOf = policy.allOf ?? [];
  const anyOf = policy.anyOf ?? [];
  if (allOf.length === 0 && anyOf.length === 0) return "policy lists no measurement (an empty allow-list admits nothing)";
  for (const c of allOf) if (!holds(c)) return `allOf claim ${c.claim} not satisfied`;
  if (anyOf.length > 0 && !anyOf.some(holds)) return `none of ${anyOf.length} anyOf claims satisfied`;
  return null;
}

/**
 * Validate a MeasurementPolicy at the boundary (`PARAM_INVALID` naming the field).
 *
 * @example
 * checkMeasurementPolicy({ allOf: [{ claim: "PCR8", equals: signerPcr }] })
 */
export function checkMeasurementPolicy(p: unknown, field = "measurements"): MeasurementPolicy {
  if (typeof p !== "object" || p === null) invalid(field, "{ anyOf?, allOf? }", p);
  const claims = ["ImageSha384", "PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8"];
  for (const k of Object.keys(p)) if (k !== "anyOf" && k !== "allOf") invalid(`${field}.${k}`, "no such key (anyOf, allOf)", k);
  for (const k of ["anyOf", "allOf"] as const) {
    const list = (p as MeasurementPolicy)[k];
    if (list === undefined) continue;
    if (!Array.isArray(list)) invalid(`${field}.${k}`, "array of { claim, equals }", list);
    list.forEach((c, i) => {
      if (typeof c !== "object" || c === null || !claims.includes(c.claim))
        invalid(`${field}.${k}[${i}].claim`, claims.join(" | "), c?.claim);
      if (typeof c.equals !== "string" || !/^[0-9a-fA-F]{96}$/.test(c.equals))
        invalid(`${field}.${k}[${i}].equals`, "96-char hex SHA-384", c.equals);
    });
  }
  return p as MeasurementPolicy;
}

/**
 * Allow-list shorthand: `{ anyOf: [ImageSha384 = …] }`.
 *
 * @example
 * allowImages([enclave.measurement.imageSha384])
 */
export function allowImages(imageSha384s: string[]): MeasurementPolicy {
  return { anyOf: imageSha384s.map((equals) => ({ claim: "ImageSha384" as const, equals })) };
}

/**
 * A relying party's verifier. Keeps issued challenges and the set of nonces already accepted.
 *
 * @example
 * const v = new AttestationVerifier({ pinnedRootPublicKey: root.publicKeyHex })
 * const nonce = v.challenge(rng)
 * const ok = v.verify(enclave.attest(nonce, { purpose }), { nonce, purpose, measurements: allowImages([pcr0]) })
 */
export class AttestationVerifier {
  readonly pinnedRootPublicKey: string;
  readonly maxAgeMs: number;
  readonly maxFutureSkewMs: number;
  readonly nonceTtlMs: number;
  #clock: () => number;
  #outstanding = new Map<string, number>();
  #seen = new Set<string>();

  constructor(opts: VerifierOptions) {
    if (typeof opts !== "object" || opts === null) invalid("opts", "VerifierOptions", opts);
    if (typeof opts.pinnedRootPublicKey !== "string" || !/^[0-9a-f]{64}$/.test(opts.pinnedRootPublicKey))
      invalid("opts.pinnedRootPublicKey", "64-char lowercase hex Ed25519 key", opts.pinnedRootPublicKey);
    const ms = (f: string, v: number | undefined, d: number) => {
      if (v === undefined) return d;
      if (!Number.isSafeInteger(v) || v < 0) invalid(f, "non-negative integer milliseconds", v);
      return v;
    };
    this.pinnedRootPublicKey = opts.pinnedRootPublicKey;
    this.maxAgeMs = ms("opts.maxAgeMs", opts.maxAgeMs, 300_000);
    this.maxFutureSkewMs = ms("opts.maxFutureSkewMs", opts.maxFutureSkewMs, 30_000);
    this.nonceTtlMs = ms("opts.nonceTtlMs", opts.nonceTtlMs, 300_000);
    this.#clock = opts.clock ?? (() => Date.now());
  }

  /** Issue a fresh single-use challenge nonce (32 random bytes, hex). */
  challenge(rng: Rng): string {
    const n = hex(rng.bytes(32));
    this.#outstanding.set(n, this.#clock());
    return n;
  }

  /** How many nonces have been accepted (for transcripts). */
  get acceptedNonces(): number {
    return this.#seen.size;
  }

  /**
   * Verify `doc` against the expectations; returns plain data or throws the first failing
   * check's typed error (code per check, see module header).
   */
  verify(doc: AttestationDocument, expect: VerifyExpectations): VerifiedAttestation {
    if (typeof expect !== "object" || expect === null) invalid("expect", "{ nonce, purpose, measurements, channelPublicKey? }", expect);
    if (typeof expect.nonce !== "string") invalid("expect.nonce", "hex string from challenge()", expect.nonce);
    if (typeof expect.purpose !== "string" || expect.purpose.length === 0) invalid("expect.purpose", "dotted purpose", expect.purpose);
    const policy = checkMeasurementPolicy(expect.measurements, "expect.measurements");
    const checks: string[] = [];

    const p = decodeDocument(doc);
    const root = decodeCertificate(p.cabundle[0], "cabundle[0]");
    const cert = decodeCertificate(p.certificate);
    checks.push("structure");

    if (root.tbs.publicKey !== this.pinnedRootPublicKey)
      fail("ATTESTATION_UNTRUSTED_ROOT", "pinnedRoot", "cabundle root is not the pinned hardware root", {
        rootKey: root.tbs.publicKey.slice(0, 16),
      });
    checks.push("pinnedRoot");

    if (!certificateSignedBy(root, this.pinnedRootPublicKey))
      fail("ATTESTATION_SIGNATURE", "signature", "root certificate self-signature invalid");
    if (!certificateSignedBy(cert, this.pinnedRootPublicKey))
      fail("ATTESTATION_SIGNATURE", "signature", "module certificate not signed by the pinned root");
    if (cert.tbs.subject !== p.module_id) fail("ATTESTATION_SIGNATURE", "signature", "module certificate subject differs from module_id");
    if (p.timestamp < cert.tbs.notBefore || p.timestamp > cert.tbs.notAfter)
      fail("ATTESTATION_SIGNATURE", "signature", "document timestamp outside the module certificate's validity");
    if (!documentSignedBy(doc, cert.tbs.publicKey))
      fail("ATTESTATION_SIGNATURE", "signature", "document signature does not verify under the module certificate key");
    checks.push("signature");

    const docNonce = p.nonce === null ? null : hex(fromB64(p.nonce));
    if (docNonce !== null && this.#seen.has(docNonce))
      fail("ATTESTATION_REPLAY", "replay", "this document's nonce was already accepted once");
    checks.push("replay");

    if (docNonce === null) fail("ATTESTATION_NONCE", "nonce", "document carries no nonce");
    if (docNonce !== expect.nonce) fail("ATTESTATION_NONCE", "nonce", "document nonce differs from the challenge issued for this exchange");
    const issuedAt = this.#outstanding.get(docNonce);
    if (issuedAt === undefined) fail("ATTESTATION_NONCE", "nonce", "nonce was not issued by this verifier");
    // Single use from here on: a genuine document bearing this challenge has been presented.
    this.#outstanding.delete(docNonce);
    this.#seen.add(docNonce);
    const now = this.#clock();
    if (now - issuedAt > this.nonceTtlMs)
      fail("ATTESTATION_NONCE", "nonce", "challenge expired before the document arrived", { ageMs: now - issuedAt });
    checks.push("nonce");

    if (now - p.timestamp > this.maxAgeMs)
      fail("ATTESTATION_STALE", "freshness", `document is ${now - p.timestamp} ms old (max ${this.maxAgeMs})`, {
        ageMs: now - p.timestamp,
      });
    if (p.timestamp - now > this.maxFutureSkewMs)
      fail("ATTESTATION_STALE", "freshness", `document is dated ${p.timestamp - now} ms in the future`, { skewMs: p.timestamp - now });
    checks.push("freshness");

    if (p.debug)
      fail("ATTESTATION_DEBUG", "debug", "enclave runs in debug mode (memory readable by the operator); refused regardless of policy");
    if (p.pcrs["0"] === ZERO_PCR)
      fail("ATTESTATION_DEBUG", "debug", "PCR0 is all zeros (Nitro debug-mode signature); refused regardless of policy");
    checks.push("debug");

    const why = evaluateMeasurementPolicy(p.pcrs, policy);
    if (why !== null) fail("ATTESTATION_MEASUREMENT", "measurement", why, { imageSha384: p.pcrs["0"] });
    checks.push("measurement");

    if (p.public_key === null) fail("ATTESTATION_KEY_MISMATCH", "channelKey", "document carries no channel public key");
    if (expect.channelPublicKey !== undefined && expect.channelPublicKey !== p.public_key) {
      fail("ATTESTATION_KEY_MISMATCH", "channelKey", "the key offered for sealing is not the public_key inside the signed document");
    }
    checks.push("channelKey");

    if (!purposeSatisfies(p.purpose, expect.purpose)) {
      fail("ATTESTATION_PURPOSE", "purpose", `declared purpose "${p.purpose}" does not satisfy required "${expect.purpose}"`);
    }
    checks.push("purpose");

    return {
      moduleId: p.module_id,
      timestamp: p.timestamp,
      imageSha384: p.pcrs["0"]!,
      pcrs: { ...p.pcrs },
      publicKey: p.public_key,
      userData: p.user_data,
      nonce: docNonce,
      purpose: p.purpose,
      documentHash: documentHash(doc),
      checks,
    };
  }
}
