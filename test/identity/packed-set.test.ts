/**
 * PackedSet (identity/packed-set.ts): the packed 32-byte set PSI matches blinded points with.
 * Property test against a Set of hex strings (the structure it replaced), with values forced to
 * share 4-byte prefixes so the probing and the full-width comparison are exercised.
 */
import { describe, expect, it } from "vitest";
import * as fc from "fast-check";
import { PackedSet } from "../../kernel-lib/src/identity/packed-set.js";

const hex = (b: Uint8Array, i: number) => Buffer.from(b.subarray(i * 32, (i + 1) * 32)).toString("hex");

function packedFrom(values: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(values.length * 32);
  values.forEach((v, i) => out.set(v, i * 32));
  return out;
}

// 32-byte values from a small alphabet of prefixes and tails: many prefix collisions, some equal values
const value = fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 40 })).map(([p, t]) => {
  const v = new Uint8Array(32);
  v[0] = p;
  v[31] = t;
  v[17] = t * 7;
  return v;
});

describe("PackedSet", () => {
  it("membership equals a Set of hex strings, prefix collisions included", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(value, { selector: (v) => Buffer.from(v).toString("hex"), maxLength: 60 }),
        fc.array(value, { maxLength: 60 }),
        (set, probes) => {
          const packed = packedFrom(set);
          const ps = new PackedSet(packed);
          const ref = new Set(set.map((_, i) => hex(packed, i)));
          const q = packedFrom(probes);
          for (let i = 0; i < probes.length; i++) expect(ps.has(q, i)).toBe(ref.has(hex(q, i)));
          for (let i = 0; i < set.length; i++) expect(ps.indexOf(packed, i)).toBe(i);
        },
      ),
      { seed: 18, numRuns: 300 },
    );
  });

  it("a value differing from a member only after its first 4 bytes is not a member", () => {
    const a = new Uint8Array(32).fill(9);
    const b = a.slice();
    b[30] ^= 1;
    expect(new PackedSet(a).has(b, 0)).toBe(false);
    expect(new PackedSet(a).has(a, 0)).toBe(true);
  });
});
