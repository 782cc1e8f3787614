/**
 * The primitives every layer shares, as thin typed entry points over audited code:
 * AES-256-GCM (node:crypto, i.e. OpenSSL with AES-NI, NIST SP 800-38D: ~50× the pure-JS
 * @noble/ciphers on the channel's multi-megabyte PSI frames), HKDF-SHA256 (RFC 5869), X25519 (RFC 7748)
 * and Ed25519 (RFC 8032) from @noble/curves. Nothing here is hand-rolled; this file only
 * checks lengths at the boundary and turns library exceptions into typed errors.
 *
 * Known-answer tests against Wycheproof live in test/crypto/.
 */
import { createCipheriv, createDecipheriv } from "node:crypto";
import { ed25519, x25519 } from "@noble/curves/ed25519.js";
import { hkdf } from "@noble/hashes/hkdf.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng } from "../rng.js";

export const AES_KEY_BYTES = 32;
export const GCM_NONCE_BYTES = 12;
export const GCM_TAG_BYTES = 16;

function bytesOf(field: string, v: unknown, len?: number): Uint8Array {
  if (!(v instanceof Uint8Array)) invalid(field, len ? `${len} bytes` : "Uint8Array", v, "CRYPTO_INVALID_KEY");
  if (len !== undefined && v.length !== len) invalid(field, `${len} bytes`, v, "CRYPTO_INVALID_KEY");
  return v;
}

/** AES-256-GCM encrypt; returns ciphertext‖tag. */
export function aesGcmSeal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad?: Uint8Array): Uint8Array {
  bytesOf("key", key, AES_KEY_BYTES);
  bytesOf("nonce", nonce, GCM_NONCE_BYTES);
  bytesOf("plaintext", plaintext);
  const c = createCipheriv("aes-256-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
  if (aad) c.setAAD(aad);
  const head = c.update(plaintext);
  const tail = c.final();
  const out = new Uint8Array(head.length + tail.length + GCM_TAG_BYTES);
  out.set(head, 0);
  out.set(tail, head.length);
  out.set(c.getAuthTag(), head.length + tail.length);
  return out;
}

/** AES-256-GCM decrypt of ciphertext‖tag; `CRYPTO_DECRYPT_FAILED` on any authentication failure. */
export function aesGcmOpen(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad?: Uint8Array): Uint8Array {
  bytesOf("key", key, AES_KEY_BYTES);
  bytesOf("nonce", nonce, GCM_NONCE_BYTES);
  bytesOf("ciphertext", sealed);
  if (sealed.length < GCM_TAG_BYTES) invalid("ciphertext", `at least ${GCM_TAG_BYTES} bytes`, sealed, "CRYPTO_DECRYPT_FAILED");
  try {
    const body = sealed.length - GCM_TAG_BYTES;
    const d = createDecipheriv("aes-256-gcm", key, nonce, { authTagLength: GCM_TAG_BYTES });
    if (aad) d.setAAD(aad);
    d.setAuthTag(sealed.subarray(body));
    const head = d.update(sealed.subarray(0, body));
    const tail = d.final(); // throws unless the tag verifies: nothing is returned before that
    const out = new Uint8Array(head.length + tail.length);
    out.set(head, 0);
    out.set(tail, head.length);
    return out;
  } catch {
    throw new CleanRoomError(
      "CRYPTO_DECRYPT_FAILED",
      "AES-GCM authentication failed: wrong key, nonce, associated data, or tampered ciphertext",
    );
  }
}

/** HKDF-SHA256 (RFC 5869). */
export function hkdfSha256(ikm: Uint8Array, salt: Uint8Array | undefined, info: Uint8Array, length: number): Uint8Array {
  bytesOf("ikm", ikm);
  if (!Number.isInteger(length) || length < 1 || length > 255 * 32) invalid("length", "integer in [1, 8160]", length);
  return hkdf(sha256, ikm, salt, info, length);
}

export interface KeyPair {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** A fresh X25519 key pair from `rng`. */
export function x25519KeyPair(rng: Rng): KeyPair {
  const secretKey = rng.bytes(32);
  return { secretKey, publicKey: x25519.getPublicKey(secretKey) };
}

/**
 * X25519 shared secret. Rejects the all-zero output (RFC 7748 §6.1: small-order peer keys),
 * so a malicious peer cannot force a known secret.
 */
export function x25519Shared(secretKey: Uint8Array, peerPublicKey: Uint8Array): Uint8Array {
  bytesOf("secretKey", secretKey, 32);
  bytesOf("peerPublicKey", peerPublicKey, 32);
  let s: Uint8Array;
  try {
    s = x25519.getSharedSecret(secretKey, peerPublicKey);
  } catch {
    throw new CleanRoomError("CRYPTO_INVALID_KEY", `"peerPublicKey" expected a valid X25519 public key, got a low-order or invalid point`, {
      field: "peerPublicKey",
    });
  }
  if (s.every((b) => b === 0)) {
    throw new CleanRoomError("CRYPTO_INVALID_KEY", `"peerPublicKey" expected a valid X25519 public key, got a low-order point`, {
      field: "peerPublicKey",
    });
  }
  return s;
}

/** A fresh Ed25519 signing key pair from `rng`. */
export function ed25519KeyPair(rng: Rng): KeyPair {
  const secretKey = rng.bytes(32);
  return { secretKey, publicKey: ed25519.getPublicKey(secretKey) };
}

export function ed25519Sign(secretKey: Uint8Array, message: Uint8Array): Uint8Array {
  bytesOf("secretKey", secretKey, 32);
  return ed25519.sign(message, secretKey);
}

/** Ed25519 verification (RFC 8032, noble's strict defaults: canonical S, no small-order keys). */
export function ed25519Verify(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (!(publicKey instanceof Uint8Array) || publicKey.length !== 32) return false;
  if (!(signature instanceof Uint8Array) || signature.length !== 64) return false;
  try {
    return ed25519.verify(signature, message, publicKey);
  } catch {
    return false;
  }
}

/** Constant-time-ish equality for tags and digests (length leaks, content does not). */
export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
export const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");
export const fromHex = (s: string): Uint8Array => {
  if (typeof s !== "string" || !/^([0-9a-f]{2})*$/i.test(s)) invalid("hex", "even-length hex string", s);
  return new Uint8Array(Buffer.from(s, "hex"));
};
export const b64 = (b: Uint8Array): string => Buffer.from(b).toString("base64");
export const fromB64 = (s: string): Uint8Array => new Uint8Array(Buffer.from(s, "base64"));
