/**
 * A set of 32-byte values held packed (n × 32 bytes in one buffer) with an open-addressing
 * index of 4-byte slots: what PSI matches blinded points with at 1M elements per side, where
 * a `Set` of 64-character hex strings cost ~130 bytes per element and a GC-heavy 1M objects.
 *
 * The values are ristretto255 encodings of points blinded by THIS party's secret key, so
 * their first four bytes are uniform and unpredictable to the peer: they are the hash
 * directly. Probing is linear; a lookup compares all 32 bytes, so a prefix collision never
 * reports a false member. Lookups may be peer-chosen values (a long probe costs time, never
 * correctness), but the set itself must not be built from values the peer chose: it could
 * pick valid encodings sharing a prefix and make building quadratic. (The duplicate check
 * on received messages therefore stays a `Set` of strings.)
 */
import { bug } from "../errors.js";

const W = 32;

export class PackedSet {
  private readonly slots: Int32Array;
  private readonly mask: number;

  /** Index `packed` (n × 32 bytes). The buffer is referenced, not copied: do not mutate it. */
  constructor(private readonly packed: Uint8Array) {
    if (packed.length % W !== 0) bug("packed 32-byte values expected");
    const n = packed.length / W;
    let cap = 16;
    while (cap < 2 * n) cap *= 2;
    this.slots = new Int32Array(cap).fill(-1);
    this.mask = cap - 1;
    for (let i = 0; i < n; i++) {
      let s = this.hash(packed, i);
      while (this.slots[s] !== -1) s = (s + 1) & this.mask;
      this.slots[s] = i;
    }
  }

  private hash(buf: Uint8Array, i: number): number {
    const o = i * W;
    return (buf[o]! | (buf[o + 1]! << 8) | (buf[o + 2]! << 16) | (buf[o + 3]! << 24)) & this.mask;
  }

  private equal(buf: Uint8Array, i: number, j: number): boolean {
    const a = i * W;
    const b = j * W;
    for (let k = 0; k < W; k++) if (buf[a + k] !== this.packed[b + k]) return false;
    return true;
  }

  /** Index in the set of value `i` of `buf` (n × 32 bytes), or -1. */
  indexOf(buf: Uint8Array, i: number): number {
    for (let s = this.hash(buf, i); ; s = (s + 1) & this.mask) {
      const j = this.slots[s]!;
      if (j === -1) return -1;
      if (this.equal(buf, i, j)) return j;
    }
  }

  /** True when value `i` of `buf` is in the set. */
  has(buf: Uint8Array, i: number): boolean {
    return this.indexOf(buf, i) >= 0;
  }
}
