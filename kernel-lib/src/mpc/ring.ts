/**
 * Additive secret sharing over the ring Z/2^64 (the ring fbpcs and most 2PC frameworks use).
 *
 * A value x is split as x = s₀ + s₁ (mod 2^64) with s₁ uniform: either share alone is a
 * uniformly random 64-bit word and says nothing about x. Linear operations (adding shares,
 * multiplying by a public constant) are local; a product of two shared values needs a Beaver
 * triple (mpc/shared-lift.ts). Vectors are `BigUint64Array`s: storing a bigint into one
 * reduces it mod 2^64 (ECMAScript ToBigUint64), which is exactly the ring's wrap-around.
 *
 * Wire form: little-endian bytes, base64 (plain JSON, as the transport requires). A decoder
 * checks the length before anything is computed.
 */
import { invalid } from "../errors.js";
import type { Rng } from "../rng.js";

/** A vector of ring elements. */
export type RingVec = BigUint64Array;

const MASK = (1n << 64n) - 1n;

/** `n` uniform ring elements from `rng` (secure by default; seeded in teaching mode). */
export function randomVec(n: number, rng: Rng): RingVec {
  const v = new BigUint64Array(n);
  if (n > 0) new Uint8Array(v.buffer).set(rng.bytes(8 * n));
  return v;
}

/** Reduce any bigint into the ring (two's complement for negatives). */
export const ring = (x: bigint): bigint => x & MASK;

/** A ring element read as a signed 64-bit integer (noisy releases may be negative). */
export const signed = (x: bigint): bigint => BigInt.asIntN(64, x);

/** Little-endian bytes of a vector, base64 (what crosses the wire). */
export function encodeVec(v: RingVec): string {
  const le = new Uint8Array(v.byteLength);
  const dv = new DataView(le.buffer);
  for (let i = 0; i < v.length; i++) dv.setBigUint64(8 * i, v[i]!, true);
  return Buffer.from(le).toString("base64");
}

/** Decode a vector of exactly `n` elements; `field` names the message field in a refusal. */
export function decodeVec(s: unknown, n: number, field: string): RingVec {
  if (typeof s !== "string") invalid(field, `base64 of ${n} ring elements`, typeof s, "INPUT_INVALID");
  const b = Buffer.from(s, "base64");
  if (b.length !== 8 * n) invalid(field, `${8 * n} bytes (${n} ring elements)`, `${b.length} bytes`, "INPUT_INVALID");
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const v = new BigUint64Array(n);
  for (let i = 0; i < n; i++) v[i] = dv.getBigUint64(8 * i, true);
  return v;
}

/** Element-wise a + b (mod 2^64). */
export function addVec(a: RingVec, b: RingVec): RingVec {
  const out = new BigUint64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! + b[i]!;
  return out;
}

/** Element-wise a − b (mod 2^64). */
export function subVec(a: RingVec, b: RingVec): RingVec {
  const out = new BigUint64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i]! - b[i]!;
  return out;
}
