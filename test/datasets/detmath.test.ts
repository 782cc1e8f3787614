import { describe, expect, it } from "vitest";
import { UniformSource, detExp, detLog } from "../../kernel-lib/src/datasets/detmath.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

describe("deterministic maths for the generator", () => {
  it("detLog and detExp agree with Math.log/Math.exp to ~1e-15 relative", () => {
    const u = new UniformSource(seededRng("detmath"));
    for (let i = 0; i < 2000; i++) {
      const x = u.open() * 10 ** (u.below(20) - 10);
      expect(Math.abs(detLog(x) - Math.log(x))).toBeLessThanOrEqual(1e-14 * Math.max(1, Math.abs(Math.log(x))));
      const y = (u.next() - 0.5) * 80;
      expect(Math.abs(detExp(y) / Math.exp(y) - 1)).toBeLessThan(1e-14);
    }
    expect(detLog(1)).toBe(0);
    expect(detExp(0)).toBe(1);
    expect(detLog(0)).toBe(-Infinity);
    expect(detLog(-1)).toBeNaN();
  });

  it("uniforms lie in [0, 1) and the normal sampler has mean ≈ 0, variance ≈ 1", () => {
    const u = new UniformSource(seededRng("normal"));
    let s = 0;
    let s2 = 0;
    const n = 50_000;
    for (let i = 0; i < n; i++) {
      const x = u.next();
      expect(x >= 0 && x < 1).toBe(true);
      const z = u.normal();
      s += z;
      s2 += z * z;
    }
    expect(Math.abs(s / n)).toBeLessThan(0.02);
    expect(Math.abs(s2 / n - 1)).toBeLessThan(0.03);
  });

  it("the same seed gives the same stream; a different seed does not", () => {
    const a = new UniformSource(seededRng("s"));
    const b = new UniformSource(seededRng("s"));
    const c = new UniformSource(seededRng("t"));
    const xs = Array.from({ length: 5 }, () => a.lognormal(0, 1));
    expect(Array.from({ length: 5 }, () => b.lognormal(0, 1))).toEqual(xs);
    expect(Array.from({ length: 5 }, () => c.lognormal(0, 1))).not.toEqual(xs);
  });
});
