/**
 * Sealed boxes: encrypt to a recipient's X25519 public key (ECIES shape, like HPKE base mode
 * with DHKEM(X25519)/HKDF-SHA256/AES-256-GCM, but not wire-compatible with RFC 9180).
 *
 * Used for key release (a data owner seals a data key to an attested enclave key) and for
 * envelope encryption. The ephemeral public key, recipient key and caller `info` are all
 * bound into the HKDF info, so a box cannot be re-targeted or replayed into another context.
 */
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng } from "../rng.js";
import { aesGcmOpen, aesGcmSeal, GCM_NONCE_BYTES, hkdfSha256, utf8, x25519KeyPair, x25519Shared } from "./primitives.js";

export interface SealedBox {
  /** Sender's ephemeral X25519 public key. */
  ephemeralPublicKey: Uint8Array;
  /** AES-256-GCM ciphertext‖tag. */
  ciphertext: Uint8Array;
}

const LABEL = "cleanroom-lab/seal/v1";

function deriveKey(shared: Uint8Array, eph: Uint8Array, recipient: Uint8Array, info: string): Uint8Array {
  const ctx = new Uint8Array([...utf8(LABEL), 0, ...eph, ...recipient, ...utf8(info)]);
  return hkdfSha256(shared, undefined, ctx, 32);
}

/**
 * Seal `plaintext` to `recipientPublicKey` under context `info` (e.g. "key-release:dataset:purpose").
 *
 * @example
 * const box = sealTo(enclavePub, dataKey, "key-release:retail", rng, aad)
 */
export function sealTo(recipientPublicKey: Uint8Array, plaintext: Uint8Array, info: string, rng: Rng, aad?: Uint8Array): SealedBox {
  if (typeof info !== "string") invalid("info", "string", info);
  const eph = x25519KeyPair(rng);
  const shared = x25519Shared(eph.secretKey, recipientPublicKey);
  const key = deriveKey(shared, eph.publicKey, recipientPublicKey, info);
  // A fresh key per box, so a fixed zero nonce is safe.
  const ciphertext = aesGcmSeal(key, new Uint8Array(GCM_NONCE_BYTES), plaintext, aad);
  return { ephemeralPublicKey: eph.publicKey, ciphertext };
}

/** Open a sealed box with the recipient's secret key; typed error if anything was changed. */
export function openSealed(
  recipientSecretKey: Uint8Array,
  recipientPublicKey: Uint8Array,
  box: SealedBox,
  info: string,
  aad?: Uint8Array,
): Uint8Array {
  const shared = x25519Shared(recipientSecretKey, box.ephemeralPublicKey);
  const key = deriveKey(shared, box.ephemeralPublicKey, recipientPublicKey, info);
  try {
    return aesGcmOpen(key, new Uint8Array(GCM_NONCE_BYTES), box.ciphertext, aad);
  } catch (e) {
    if (e instanceof CleanRoomError)
      throw new CleanRoomError("CRYPTO_DECRYPT_FAILED", "sealed box could not be opened: wrong recipient, wrong context, or tampered box");
    throw e;
  }
}
