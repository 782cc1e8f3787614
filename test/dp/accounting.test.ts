import { describe, expect, it } from "vitest";
import fc from "fast-check";
import {
  rat,
  ratFromDecimal,
  ratFrom,
  ratAdd,
  ratSub,
  ratMul,
  ratDiv,
  ratCompare,
  ratFloor,
  ratCeil,
  ratCeilTo,
  ratFloorTo,
  ratToNumber,
  ratToDecimal,
  ratFromFloatExact,
  ratSum,
  isqrt,
  ONE,
} from "../../kernel-lib/src/dp/rational.js";
import {
  pureDp,
  approxDp,
  zCdp,
  parseCost,
  costIn,
  composeBasic,
  composeAdvanced,
  zcdpToApproxDp,
  approxDpToZcdpBudget,
  upperRational,
  lowerRational,
  costToJson,
} from "../../kernel-lib/src/dp/accountant.js";

describe("exact rationals", () => {
  it("ten additions of 0.1 make exactly 1 (unlike doubles)", () => {
    expect(ratSum(Array.from({ length: 10 }, () => ratFromDecimal("0.1")))).toEqual(ONE);
    expect(Array.from({ length: 10 }, () => 0.1).reduce((a, b) => a + b)).not.toBe(1);
  });

  it("parses decimals, exponents, fractions and shortest-spelling numbers exactly", () => {
    expect(ratFromDecimal("0.1")).toEqual(rat(1, 10));
    expect(ratFromDecimal("-2.50")).toEqual(rat(-5, 2));
    expect(ratFromDecimal("1e-6")).toEqual(rat(1, 1_000_000));
    expect(ratFromDecimal("3.5E2")).toEqual(rat(350));
    expect(ratFromDecimal(".25")).toEqual(rat(1, 4));
    expect(ratFromDecimal("6/4")).toEqual(rat(3, 2));
    expect(ratFromDecimal(0.3)).toEqual(rat(3, 10));
    expect(ratFrom({ num: "2", den: "6" })).toEqual(rat(1, 3));
    for (const bad of ["", "abc", "1.2.3", "0x10", "1/0", "1e99999"]) expect(() => ratFromDecimal(bad, "epsilon")).toThrow(/"epsilon"/);
    expect(() => ratFromDecimal(Number.NaN, "rho")).toThrow(/"rho" expected finite number, got NaN/);
    expect(() => ratFromDecimal(-Infinity, "rho")).toThrow(/-Infinity/);
  });

  it("satisfies field laws and ordering on random inputs", () => {
    const r = fc
      .tuple(fc.bigInt({ min: -(10n ** 20n), max: 10n ** 20n }), fc.bigInt({ min: 1n, max: 10n ** 20n }))
      .map(([n, d]) => rat(n, d));
    fc.assert(
      fc.property(r, r, r, (a, b, c) => {
        expect(ratAdd(ratSub(a, b), b)).toEqual(a);
        expect(ratMul(a, ratAdd(b, c))).toEqual(ratAdd(ratMul(a, b), ratMul(a, c)));
        if (b.num !== 0n) expect(ratMul(ratDiv(a, b), b)).toEqual(a);
        expect(ratCompare(a, b)).toBe(-ratCompare(b, a) as -1 | 0 | 1);
        expect(ratFloor(a) <= ratCeil(a) && ratCeil(a) - ratFloor(a) <= 1n).toBe(true);
        expect(ratCompare(ratCeilTo(a, 1000n), a)).toBeGreaterThanOrEqual(0);
        expect(ratCompare(ratFloorTo(a, 1000n), a)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 300, seed: 7 },
    );
  });

  it("floors toward −∞, converts doubles exactly, and computes integer square roots", () => {
    expect(ratFloor(rat(-3, 2))).toBe(-2n);
    expect(ratCeil(rat(-3, 2))).toBe(-1n);
    expect(ratFromFloatExact(0.1)).toEqual(rat(3602879701896397n, 36028797018963968n));
    expect(ratToNumber(ratFromFloatExact(Math.PI))).toBe(Math.PI);
    expect(ratToDecimal(rat(2, 3), 4)).toBe("0.6667");
    expect(ratToDecimal(rat(-1, 8), 2)).toBe("-0.13");
    for (const n of [0n, 1n, 15n, 16n, 17n, 10n ** 40n, 10n ** 40n - 1n, 2n ** 127n]) {
      const s = isqrt(n);
      expect(s * s <= n && (s + 1n) * (s + 1n) > n).toBe(true);
    }
  });
});

describe("accountant", () => {
  it("rejects zero, negative, NaN, ∞, tiny and huge parameters with DP_PARAM_INVALID naming the field", () => {
    expect(() => pureDp("0")).toThrow(/DP_PARAM_INVALID.*"epsilon"/);
    expect(() => pureDp(-1)).toThrow(/"epsilon"/);
    expect(() => pureDp(Number.NaN)).toThrow(/"epsilon" expected finite number, got NaN/);
    expect(() => pureDp(Infinity)).toThrow(/"epsilon"/);
    expect(() => pureDp("1e-10")).toThrow(/\[1e-9, 1e4\]/);
    expect(() => pureDp("100000")).toThrow(/"epsilon"/);
    expect(() => zCdp("0")).toThrow(/"rho"/);
    expect(() => approxDp("1", "0")).toThrow(/"delta"/);
    expect(() => approxDp("1", "1")).toThrow(/"delta" expected rational in \[1e-100, 0\.5\]/);
    expect(() => parseCost({ kind: "pureDp", epsilon: "1", delta: "1e-6" })).toThrow(/"cost.delta" expected no such field/);
    expect(() => parseCost({ kind: "renyi", alpha: 2 })).toThrow(/"cost.kind"/);
    expect(() => parseCost(null)).toThrow(/"cost"/);
    expect(() => pureDp(`1/${10n ** 200n}`)).toThrow(/"epsilon"/);
  });

  it("composes basically with exact sums and converts ε-DP to ρ = ε²/2", () => {
    expect(composeBasic("pureDp", [pureDp("0.1"), pureDp("0.2")])).toEqual(pureDp("0.3"));
    expect(composeBasic("approxDp", [pureDp("0.5"), approxDp("0.5", "1e-6")])).toEqual({
      kind: "approxDp",
      epsilon: ONE,
      delta: rat(1, 1_000_000),
    });
    expect(composeBasic("zCdp", [zCdp("0.1"), pureDp("1")])).toEqual(zCdp("0.6"));
    expect(costIn("zCdp", pureDp("0.2"))).toEqual({ kind: "zCdp", rho: rat(1, 50) });
    expect(() => costIn("pureDp", zCdp("0.1"))).toThrow(/"cost.kind"/);
    expect(() => costIn("zCdp", approxDp("1", "1e-6"))).toThrow(/"cost.kind"/);
  });

  it("advanced composition beats basic for many small releases, and falls back to basic when it does not", () => {
    const a = composeAdvanced(pureDp("0.1"), 100, "1e-6");
    const formula = 0.1 * Math.sqrt(200 * Math.log(1e6)) + 100 * 0.1 * Math.expm1(0.1);
    expect(ratToNumber(a.epsilon)).toBeGreaterThan(formula); // rounded up
    expect(ratToNumber(a.epsilon)).toBeCloseTo(formula, 7);
    expect(ratCompare(a.epsilon, rat(10))).toBe(-1);
    expect(a.delta).toEqual(rat(1, 1_000_000));
    expect(composeAdvanced(pureDp("1000"), 3, "1e-6")).toEqual({ kind: "approxDp", epsilon: rat(3000), delta: rat(0) }); // e^1000 overflows
    const b = composeAdvanced(pureDp("1"), 2, "1e-6");
    expect(b).toEqual({ kind: "approxDp", epsilon: rat(2), delta: rat(0) });
  });

  it("rounds irrational results against the analyst: costs up, budgets down", () => {
    const f = Math.sqrt(2);
    expect(ratCompare(upperRational(f), ratFromFloatExact(f))).toBe(1);
    expect(ratCompare(lowerRational(f), ratFromFloatExact(f))).toBe(-1);
    const conv = zcdpToApproxDp("0.5", "1e-6");
    const exact = 0.5 + 2 * Math.sqrt(0.5 * Math.log(1e6));
    expect(ratToNumber(conv.epsilon)).toBeGreaterThan(exact);
    expect(ratToNumber(conv.epsilon) - exact).toBeLessThan(1e-7);
    for (const [e, d] of [
      ["1", "1e-6"],
      ["0.1", "1e-9"],
      ["8", "1e-5"],
    ] as const) {
      const rho = approxDpToZcdpBudget(e, d);
      // the zCDP budget sized for (ε, δ) converts back to at most ε
      expect(ratCompare(zcdpToApproxDp(rho, d).epsilon, ratFrom(e))).toBeLessThanOrEqual(0);
      expect(ratToNumber(zcdpToApproxDp(rho, d).epsilon)).toBeGreaterThan(Number(e) * 0.999);
    }
  });

  it("serialises costs as exact JSON with readable text", () => {
    expect(costToJson(approxDp("1", "1e-6"))).toEqual({
      kind: "approxDp",
      epsilon: { num: "1", den: "1" },
      delta: { num: "1", den: "1000000" },
      text: "ε = 1, δ = 0.000001",
    });
    expect(JSON.parse(JSON.stringify(costToJson(zCdp("0.005")))).text).toBe("ρ = 0.005");
  });
});
