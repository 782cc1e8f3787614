/**
 * The attestation document: AWS Nitro's field set in a COSE_Sign1-like envelope, encoded as
 * canonical JSON and signed with Ed25519 instead of CBOR + ECDSA P-384.
 *
 * Nitro (reference §5): a CBOR map `{module_id, timestamp, digest, pcrs, certificate,
 * cabundle, public_key?, user_data?, nonce?}` inside COSE_Sign1, signed by a per-enclave key
 * whose certificate chains to the AWS Nitro root. Here:
 *   - `payload` is base64 of the canonical JSON of `AttestationPayload` (Nitro's fields, plus
 *     `debug` — Nitro signals debug by zeroed PCRs, SGX/SNP by a flag; we carry the flag — and
 *     `purpose`, the declared data use, so the purpose is inside the signed evidence);
 *   - `certificate` is a module certificate (the per-enclave signing key) signed by the lab's
 *     simulated hardware root; `cabundle` holds the root certificate. Verifiers pin the root's
 *     public key, never trust the bundle by itself;
 *   - the signature covers `Sig_structure = canonicalJson(["Signature1", protected, "", payload])`
 *     as in RFC 9052 §4.4.
 * Verifiers parse the signed payload bytes, never a decoded copy carried beside them.
 */
import { sha384 } from "@noble/hashes/sha2.js";
import { CleanRoomError } from "../errors.js";
import { b64, ed25519Sign, ed25519Verify, fromB64, hex, utf8 } from "../crypto/primitives.js";
import { canonicalJson } from "../crypto/canonical.js";
import type { PcrMap } from "./measurement.js";

export const DOCUMENT_FORMAT = "cleanroom-lab/attestation/cose-sign1-like/ed25519/canonical-json/v1";
const PROTECTED_HEADER = canonicalJson({ alg: "EdDSA", content: "application/vnd.cleanroom-lab.attestation+json" });

/** A simulated X.509 stand-in: the to-be-signed part and an Ed25519 signature over it. */
export interface SimCertificate {
  tbs: { version: 1; subject: string; issuer: string; publicKey: string; notBefore: number; notAfter: number };
  /** hex Ed25519 signature by the issuer over canonicalJson(tbs). */
  signature: string;
}

/** The signed contents (Nitro field names). Binary fields are base64; PCRs hex. */
export interface AttestationPayload {
  module_id: string;
  /** Milliseconds since the Unix epoch (Nitro uses ms). */
  timestamp: number;
  digest: "SHA384";
  pcrs: PcrMap;
  /** base64 canonical JSON of the module SimCertificate. */
  certificate: string;
  /** base64 canonical JSON SimCertificates, root first. */
  cabundle: string[];
  /** base64 X25519 public key generated inside the enclave (the channel key). */
  public_key: string | null;
  user_data: string | null;
  nonce: string | null;
  debug: boolean;
  /** The declared purpose (dotted data use), inside the signed evidence. */
  purpose: string;
}

/** COSE_Sign1-shaped document: [protected, unprotected, payload, signature]. Plain JSON. */
export interface AttestationDocument {
  format: typeof DOCUMENT_FORMAT;
  protected: string;
  unprotected: Record<string, never>;
  /** base64 canonical JSON of AttestationPayload — the signed bytes. */
  payload: string;
  /** base64 Ed25519 signature over the Sig_structure. */
  signature: string;
}

/**
 * base64 of a certificate's canonical JSON (the form carried in `certificate` / `cabundle`).
 *
 * @example
 * encodeCertificate(root.rootCertificate) // "eyJzaWduYXR1cmUiOi…"
 */
export function encodeCertificate(c: SimCertificate): string {
  return b64(utf8(canonicalJson(c)));
}

/**
 * Sign a certificate's tbs with `issuerSecretKey`.
 *
 * @example
 * issueCertificate({ version: 1, subject: "m", issuer: "r", publicKey: hex(pk), notBefore: 0, notAfter: 1e13 }, rootSk)
 */
export function issueCertificate(tbs: SimCertificate["tbs"], issuerSecretKey: Uint8Array): SimCertificate {
  return { tbs, signature: hex(ed25519Sign(issuerSecretKey, utf8(canonicalJson(tbs)))) };
}

/**
 * True when `cert.signature` verifies under `issuerPublicKeyHex`.
 *
 * @example
 * certificateSignedBy(decodeCertificate(p.certificate), root.publicKeyHex) // true
 */
export function certificateSignedBy(cert: SimCertificate, issuerPublicKeyHex: string): boolean {
  if (!/^[0-9a-f]{128}$/.test(cert.signature)) return false;
  return ed25519Verify(Buffer.from(issuerPublicKeyHex, "hex"), utf8(canonicalJson(cert.tbs)), Buffer.from(cert.signature, "hex"));
}

function sigStructure(protectedHeader: string, payloadB64: string): Uint8Array {
  return utf8(canonicalJson(["Signature1", protectedHeader, "", payloadB64]));
}

/**
 * Build and sign a document with the module key (inside the simulated hardware).
 *
 * @example
 * const doc = signDocument(payload, moduleSecretKey) // { format, protected, unprotected, payload, signature }
 */
export function signDocument(payload: AttestationPayload, moduleSecretKey: Uint8Array): AttestationDocument {
  const payloadB64 = b64(utf8(canonicalJson(payload)));
  const signature = b64(ed25519Sign(moduleSecretKey, sigStructure(PROTECTED_HEADER, payloadB64)));
  return { format: DOCUMENT_FORMAT, protected: PROTECTED_HEADER, unprotected: {}, payload: payloadB64, signature };
}

/**
 * True when the document's signature verifies under the module key.
 *
 * @example
 * documentSignedBy(doc, decodeCertificate(decodeDocument(doc).certificate).tbs.publicKey)
 */
export function documentSignedBy(doc: AttestationDocument, modulePublicKeyHex: string): boolean {
  return ed25519Verify(Buffer.from(modulePublicKeyHex, "hex"), sigStructure(doc.protected, doc.payload), fromB64(doc.signature));
}

/**
 * SHA-384 (hex) of the document's canonical encoding: the handle key release binds to.
 *
 * @example
 * documentHash(doc).length // 96
 */
export function documentHash(doc: AttestationDocument): string {
  return hex(sha384(utf8(canonicalJson(doc))));
}

function bad(reason: string): never {
  throw new CleanRoomError("ATTESTATION_INVALID", `attestation document malformed: ${reason}`, { field: "document", reason });
}

const B64 = /^[A-Za-z0-9+/]*={0,2}$/;
const isStr = (v: unknown): v is string => typeof v === "string";

function parseJsonB64(s: unknown, what: string): unknown {
  if (!isStr(s) || !B64.test(s)) bad(`${what} is not base64`);
  try {
    return JSON.parse(Buffer.from(s, "base64").toString("utf8"));
  } catch {
    return bad(`${what} is not JSON`);
  }
}

/**
 * Parse a SimCertificate from its base64 encoding (structure only, no signature check).
 *
 * @example
 * decodeCertificate(decodeDocument(doc).cabundle[0]).tbs.publicKey // the root key, hex
 */
export function decodeCertificate(s: unknown, what = "certificate"): SimCertificate {
  const c = parseJsonB64(s, what) as SimCertificate;
  const t = c?.tbs;
  if (typeof c !== "object" || c === null || typeof t !== "object" || t === null) bad(`${what} has no tbs`);
  if (t.version !== 1 || !isStr(t.subject) || !isStr(t.issuer) || !isStr(t.publicKey) || !/^[0-9a-f]{64}$/.test(t.publicKey))
    bad(`${what} tbs fields`);
  if (!Number.isSafeInteger(t.notBefore) || !Number.isSafeInteger(t.notAfter) || !isStr(c.signature)) bad(`${what} validity or signature`);
  return c;
}

/**
 * Decode the envelope and its payload, checking structure only (NOT the signature — see
 * `AttestationVerifier.verify`). Throws `ATTESTATION_INVALID` naming what is wrong.
 *
 * @example
 * decodeDocument(doc).pcrs["0"] // unverified! for display only
 */
export function decodeDocument(doc: unknown): AttestationPayload {
  if (typeof doc !== "object" || doc === null) bad("not an object");
  const d = doc as AttestationDocument;
  if (d.format !== DOCUMENT_FORMAT) bad("unknown format");
  if (d.protected !== PROTECTED_HEADER) bad("unexpected protected header (alg must be EdDSA)");
  if (!isStr(d.signature) || !B64.test(d.signature)) bad("signature is not base64");
  const p = parseJsonB64(d.payload, "payload") as AttestationPayload;
  if (typeof p !== "object" || p === null) bad("payload is not an object");
  if (!isStr(p.module_id) || p.module_id.length === 0) bad("module_id");
  if (!Number.isSafeInteger(p.timestamp) || p.timestamp < 0) bad("timestamp");
  if (p.digest !== "SHA384") bad("digest must be SHA384");
  if (typeof p.pcrs !== "object" || p.pcrs === null) bad("pcrs");
  for (const [k, v] of Object.entries(p.pcrs)) if (!/^\d+$/.test(k) || !isStr(v) || !/^[0-9a-f]{96}$/.test(v)) bad(`pcrs[${k}]`);
  if (!isStr(p.pcrs["0"])) bad("pcrs[0] missing");
  if (!isStr(p.certificate) || !Array.isArray(p.cabundle) || p.cabundle.length === 0) bad("certificate / cabundle");
  for (const f of ["public_key", "user_data", "nonce"] as const)
    if (p[f] !== null && (!isStr(p[f]) || !B64.test(p[f]!))) bad(`${f} must be base64 or null`);
  if (typeof p.debug !== "boolean") bad("debug must be boolean");
  if (!isStr(p.purpose) || p.purpose.length === 0) bad("purpose");
  return p;
}
