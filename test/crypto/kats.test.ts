/**
 * Known-answer tests for the primitives the channel is built on: RFC 7748 (X25519),
 * RFC 5869 (HKDF-SHA256), and Wycheproof X25519 / HKDF-SHA256 / AES-GCM files from
 * ../shared/vectors/wycheproof (skipped, with a message, when that folder is absent).
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { aesGcmOpen, aesGcmSeal, fromHex, hex, hkdfSha256, x25519Shared } from "../../kernel-lib/src/crypto/primitives.js";
import { x25519 } from "@noble/curves/ed25519.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const WYCHEPROOF = path.resolve(process.cwd(), "../shared/vectors/wycheproof");
const haveWycheproof = fs.existsSync(WYCHEPROOF);
if (!haveWycheproof) console.warn(`[crypto KATs] ${WYCHEPROOF} not found: Wycheproof vector tests are skipped`);
/** The fields the tests below read, across the three Wycheproof files (each file has its own subset). */
interface WycheproofTest {
  tcId: number;
  result: string;
  private: string;
  public: string;
  shared: string;
  ikm: string;
  salt: string;
  info: string;
  size: number;
  okm: string;
  key: string;
  iv: string;
  aad: string;
  msg: string;
  ct: string;
  tag: string;
}
const load = (name: string) =>
  JSON.parse(fs.readFileSync(path.join(WYCHEPROOF, name), "utf8")) as {
    testGroups: { [k: string]: unknown; tests: WycheproofTest[] }[];
  };

describe("RFC 7748 X25519", () => {
  it("§5.2 single scalar multiplications give the published outputs", () => {
    const cases = [
      [
        "a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4",
        "e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c",
        "c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552",
      ],
      [
        "4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d",
        "e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493",
        "95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957",
      ],
    ];
    for (const [k, u, out] of cases) expect(hex(x25519Shared(fromHex(k!), fromHex(u!)))).toBe(out);
  });

  it("§6.1 Alice and Bob derive the same published shared secret", () => {
    const a = fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const b = fromHex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    expect(hex(x25519.getPublicKey(a))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(hex(x25519.getPublicKey(b))).toBe("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(hex(x25519Shared(a, x25519.getPublicKey(b)))).toBe(shared);
    expect(hex(x25519Shared(b, x25519.getPublicKey(a)))).toBe(shared);
  });

  it("refuses a small-order peer key whose shared secret would be all zeros", () => {
    const a = fromHex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    expect(() => x25519Shared(a, new Uint8Array(32))).toThrow(/CRYPTO_INVALID_KEY/);
  });
});

describe("RFC 5869 HKDF-SHA256", () => {
  const ikm = fromHex("0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
  it("A.1 basic case", () => {
    expect(hex(hkdfSha256(ikm, fromHex("000102030405060708090a0b0c"), fromHex("f0f1f2f3f4f5f6f7f8f9"), 42))).toBe(
      "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865",
    );
  });
  it("A.3 zero-length salt and info", () => {
    expect(hex(hkdfSha256(ikm, new Uint8Array(0), new Uint8Array(0), 42))).toBe(
      "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d9d201395faa4b61a96c8",
    );
  });
  it("refuses an output length above 255·HashLen", () => {
    expect(() => hkdfSha256(ikm, undefined, new Uint8Array(0), 255 * 32 + 1)).toThrow(/"length" expected/);
  });
});

describe.skipIf(!haveWycheproof)("Wycheproof", () => {
  it("x25519_test.json: valid and acceptable vectors agree; zero shared secrets are refused", () => {
    let checked = 0;
    for (const g of load("x25519_test.json").testGroups)
      for (const t of g.tests) {
        const run = () => hex(x25519Shared(fromHex(t.private), fromHex(t.public)));
        if (t.result === "invalid") {
          expect(run, `tc ${t.tcId}`).toThrow();
        } else if (/^0+$/.test(t.shared)) {
          expect(run, `tc ${t.tcId}`).toThrow(/CRYPTO_INVALID_KEY/);
        } else {
          expect(run(), `tc ${t.tcId}`).toBe(t.shared);
        }
        checked++;
      }
    expect(checked).toBeGreaterThan(500);
  });

  it("hkdf_sha256_test.json: every vector matches or is refused", () => {
    let checked = 0;
    for (const g of load("hkdf_sha256_test.json").testGroups)
      for (const t of g.tests) {
        const run = () => hex(hkdfSha256(fromHex(t.ikm), fromHex(t.salt), fromHex(t.info), t.size));
        if (t.result === "invalid") expect(run, `tc ${t.tcId}`).toThrow();
        else expect(run(), `tc ${t.tcId}`).toBe(t.okm);
        checked++;
      }
    expect(checked).toBeGreaterThan(80);
  });

  it("aes_gcm_test.json: 256-bit keys with 96-bit nonces seal and open exactly; forgeries are refused", () => {
    let checked = 0;
    for (const g of load("aes_gcm_test.json").testGroups) {
      if (g.keySize !== 256 || g.ivSize !== 96 || g.tagSize !== 128) continue;
      for (const t of g.tests) {
        const key = fromHex(t.key),
          iv = fromHex(t.iv),
          aad = fromHex(t.aad);
        const sealed = fromHex(t.ct + t.tag);
        if (t.result === "invalid") {
          expect(() => aesGcmOpen(key, iv, sealed, aad), `tc ${t.tcId}`).toThrow(/CRYPTO_DECRYPT_FAILED/);
        } else {
          expect(hex(aesGcmSeal(key, iv, fromHex(t.msg), aad)), `tc ${t.tcId}`).toBe(t.ct + t.tag);
          expect(hex(aesGcmOpen(key, iv, sealed, aad)), `tc ${t.tcId}`).toBe(t.msg);
        }
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(20);
  });
});

it("errors are typed CleanRoomErrors", () => {
  try {
    aesGcmOpen(new Uint8Array(32), new Uint8Array(12), new Uint8Array(20));
  } catch (e) {
    expect(isCleanRoomError(e, "CRYPTO_DECRYPT_FAILED")).toBe(true);
    return;
  }
  throw new Error("expected a refusal");
});
