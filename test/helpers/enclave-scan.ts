/**
 * Scans shared by the enclave tests (test/enclave/process.test.ts, test/server/enclave-room.test.ts):
 * canaries (identifiers) in text and in every base64 string inside it, every 32-byte value
 * reachable from an object (bytes, base64, hex, nested JSON), and trial decryption of an
 * owner's KMS-protected ciphertext with a candidate key.
 */
import { aesGcmOpen, fromB64 } from "../../kernel-lib/src/crypto/primitives.js";
import { datasetAad, type EncryptedDataset } from "../../kernel-lib/src/enclave/keyRelease.js";

/** Every canary found in `text`, in its strings and in every base64 string decoded (a canary "jk:x" also as "x"). */
export function canariesIn(text: string, canaries: readonly string[]): string[] {
  const hay = [text];
  for (const m of text.matchAll(/[A-Za-z0-9+/]{24,}={0,2}/g)) hay.push(Buffer.from(m[0], "base64").toString("latin1"));
  const all = hay.join("\n");
  return canaries.filter((c) => all.includes(c) || all.includes(c.slice(3)));
}

/** Every 32-byte value reachable from `root` through own properties (bytes, base64, hex). */
export function candidateKeys(root: unknown): Uint8Array[] {
  const out: Uint8Array[] = [];
  const seen = new Set<unknown>();
  const fromString = (s: string) => {
    if (/^[0-9a-f]{64}$/i.test(s)) out.push(new Uint8Array(Buffer.from(s, "hex")));
    if (/^[A-Za-z0-9+/]{43}=$/.test(s)) out.push(fromB64(s));
    if (s.length < 4096 && (s.startsWith("{") || s.startsWith("["))) {
      try {
        walk(JSON.parse(s));
      } catch {
        /* not JSON */
      }
    }
  };
  const walk = (v: unknown): void => {
    if (typeof v === "string") return fromString(v);
    if (typeof v !== "object" || v === null || seen.has(v)) return;
    seen.add(v);
    if (v instanceof Uint8Array) {
      if (v.length === 32) out.push(v);
      return;
    }
    if (v instanceof Map)
      for (const [k, x] of v) {
        walk(k);
        walk(x);
      }
    else if (v instanceof Set) for (const x of v) walk(x);
    else for (const k of Object.getOwnPropertyNames(v)) walk((v as Record<string, unknown>)[k]);
  };
  walk(root);
  return out;
}
export const opens = (key: Uint8Array, enc: EncryptedDataset): boolean => {
  try {
    aesGcmOpen(key, fromB64(enc.nonce), fromB64(enc.ciphertext), datasetAad(enc.datasetId));
    return true;
  } catch {
    return false;
  }
};
