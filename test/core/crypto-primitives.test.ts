import { webcrypto } from "node:crypto";
import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import {
  aesGcmOpen,
  aesGcmSeal,
  ed25519KeyPair,
  ed25519Sign,
  ed25519Verify,
  hkdfSha256,
  utf8,
  x25519KeyPair,
  x25519Shared,
} from "../../kernel-lib/src/crypto/primitives.js";
import { openSealed, sealTo } from "../../kernel-lib/src/crypto/seal.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

describe("shared crypto primitives", () => {
  it("AES-256-GCM agrees byte for byte with WebCrypto (cross-check of the noble backend)", async () => {
    const rng = seededRng("gcm-xcheck");
    for (let i = 0; i < 20; i++) {
      const key = rng.bytes(32),
        nonce = rng.bytes(12),
        pt = rng.bytes(i * 7),
        aad = rng.bytes(i % 5);
      const ours = aesGcmSeal(key, nonce, pt, aad);
      const k = await webcrypto.subtle.importKey("raw", key, "AES-GCM", false, ["encrypt"]);
      const theirs = new Uint8Array(await webcrypto.subtle.encrypt({ name: "AES-GCM", iv: nonce, additionalData: aad }, k, pt));
      expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true);
      expect(Buffer.from(aesGcmOpen(key, nonce, ours, aad)).equals(Buffer.from(pt))).toBe(true);
    }
  });

  it("AES-GCM refuses a flipped bit, a wrong AAD and a wrong key with CRYPTO_DECRYPT_FAILED", () => {
    const rng = seededRng("gcm-tamper");
    const key = rng.bytes(32),
      nonce = rng.bytes(12);
    const ct = aesGcmSeal(key, nonce, utf8("hello"), utf8("aad"));
    const flipped = ct.slice();
    flipped[0]! ^= 1;
    for (const f of [
      () => aesGcmOpen(key, nonce, flipped, utf8("aad")),
      () => aesGcmOpen(key, nonce, ct, utf8("aae")),
      () => aesGcmOpen(rng.bytes(32), nonce, ct, utf8("aad")),
    ])
      expect(() => f()).toThrow(/CRYPTO_DECRYPT_FAILED/);
  });

  it("rejects wrong key and nonce lengths before encrypting", () => {
    expect(() => aesGcmSeal(new Uint8Array(16), new Uint8Array(12), utf8("x"))).toThrow(/"key" expected 32 bytes, got bytes\(length 16\)/);
    expect(() => aesGcmSeal(new Uint8Array(32), new Uint8Array(8), utf8("x"))).toThrow(/"nonce" expected 12 bytes/);
  });

  it("HKDF-SHA256 matches RFC 5869 test case 1", () => {
    const ikm = new Uint8Array(22).fill(0x0b);
    const salt = Uint8Array.from(Buffer.from("000102030405060708090a0b0c", "hex"));
    const info = Uint8Array.from(Buffer.from("f0f1f2f3f4f5f6f7f8f9", "hex"));
    const okm = hkdfSha256(ikm, salt, info, 42);
    expect(Buffer.from(okm).toString("hex")).toBe("3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865");
  });

  it("X25519 agreement is symmetric and refuses a low-order peer key", () => {
    const rng = seededRng("x25519");
    const a = x25519KeyPair(rng),
      b = x25519KeyPair(rng);
    expect(Buffer.from(x25519Shared(a.secretKey, b.publicKey)).equals(Buffer.from(x25519Shared(b.secretKey, a.publicKey)))).toBe(true);
    try {
      x25519Shared(a.secretKey, new Uint8Array(32)); // the zero point has order 4
      expect.unreachable();
    } catch (e) {
      expect(isCleanRoomError(e, "CRYPTO_INVALID_KEY")).toBe(true);
    }
  });

  it("Ed25519 verifies its own signatures and rejects a changed message or signature", () => {
    const kp = ed25519KeyPair(seededRng("ed"));
    const sig = ed25519Sign(kp.secretKey, utf8("head:42"));
    expect(ed25519Verify(kp.publicKey, utf8("head:42"), sig)).toBe(true);
    expect(ed25519Verify(kp.publicKey, utf8("head:43"), sig)).toBe(false);
    const bad = sig.slice();
    bad[10]! ^= 4;
    expect(ed25519Verify(kp.publicKey, utf8("head:42"), bad)).toBe(false);
    expect(ed25519Verify(kp.publicKey, utf8("head:42"), new Uint8Array(3))).toBe(false);
  });

  it("a sealed box opens only for its recipient, context and AAD", () => {
    const rng = seededRng("seal");
    const r = x25519KeyPair(rng),
      other = x25519KeyPair(rng);
    const box = sealTo(r.publicKey, utf8("data key"), "key-release:retail:measurement", rng, utf8("doc-hash"));
    expect(new TextDecoder().decode(openSealed(r.secretKey, r.publicKey, box, "key-release:retail:measurement", utf8("doc-hash")))).toBe(
      "data key",
    );
    expect(() => openSealed(other.secretKey, other.publicKey, box, "key-release:retail:measurement", utf8("doc-hash"))).toThrow(
      /CRYPTO_DECRYPT_FAILED/,
    );
    expect(() => openSealed(r.secretKey, r.publicKey, box, "key-release:retail:targeting", utf8("doc-hash"))).toThrow(
      /CRYPTO_DECRYPT_FAILED/,
    );
    expect(() => openSealed(r.secretKey, r.publicKey, box, "key-release:retail:measurement", utf8("other"))).toThrow(
      /CRYPTO_DECRYPT_FAILED/,
    );
  });
});
