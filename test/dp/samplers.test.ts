import { afterEach, describe, expect, it, vi } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { rat, ratFromFloatExact, ratDiv, ratFrom } from "../../kernel-lib/src/dp/rational.js";
import {
  sampleDiscreteLaplace,
  sampleDiscreteLaplaceMany,
  sampleDiscreteGaussian,
  sampleDiscreteGaussianMany,
  sampleBernoulliExp,
  discreteLaplacePmf,
  discreteGaussianPmf,
  discreteLaplaceVariance,
  discreteGaussianVariance,
  discreteLaplaceTail,
  discreteGaussianTail,
  laplaceScaleFor,
  gaussianSigma2For,
} from "../../kernel-lib/src/dp/mechanisms.js";
import { noisySumFixedPoint, releaseInteger } from "../../kernel-lib/src/dp/bounding.js";
import { chiSquareDiscrete } from "./stats.js";

const N = 100_000;
const LN_ALPHA = Math.log(1e-20); // Tumult's α (dp-testing.md M1)
const nums = (xs: bigint[]) => Float64Array.from(xs, Number);

afterEach(() => vi.restoreAllMocks());

describe("discrete Laplace sampler (CKS Alg. 2)", () => {
  const cases: [string, string][] = [
    ["integer scale 3 (safe-integer fast path)", "3"],
    ["fractional scale 7/3", "7/3"],
    ["scale (2^61+1)/2^60, irreducible (bigint path)", `${2n ** 61n + 1n}/${2n ** 60n}`],
  ];
  for (const [name, scale] of cases) {
    it(`fits its pmf by χ² at N = 1e5 and is rejected at 0.7× and 1.3× the scale — ${name}`, () => {
      const s = ratFrom(scale);
      if (scale.includes("/")) expect(s.den).toBeGreaterThan(1n); // really the fractional / bigint path
      const xs = nums(sampleDiscreteLaplaceMany(s, N, seededRng(`dlap-${scale}`)));
      expect(chiSquareDiscrete(xs, (x) => discreteLaplacePmf(x, s)).lnP).toBeGreaterThan(LN_ALPHA);
      for (const f of [rat(7, 10), rat(13, 10)]) {
        const wrong = { num: s.num * f.num, den: s.den * f.den };
        expect(chiSquareDiscrete(xs, (x) => discreteLaplacePmf(x, wrong)).lnP).toBeLessThan(LN_ALPHA);
      }
    });
  }

  it("scalar calls and 200 batches of 500 also fit (catches per-call/per-batch RNG reuse)", () => {
    const rng = seededRng("dlap-scalar");
    const scalar = Float64Array.from({ length: 20_000 }, () => Number(sampleDiscreteLaplace(rat(3), rng)));
    expect(chiSquareDiscrete(scalar, (x) => discreteLaplacePmf(x, rat(3))).lnP).toBeGreaterThan(LN_ALPHA);
    const brng = seededRng("dlap-batches");
    const batches = Array.from({ length: 200 }, () => sampleDiscreteLaplaceMany(rat(3), 500, brng));
    expect(chiSquareDiscrete(nums(batches.flat()), (x) => discreteLaplacePmf(x, rat(3))).lnP).toBeGreaterThan(LN_ALPHA);
    const keys = new Set(batches.map((b) => b.join(",")));
    expect(keys.size).toBe(200);
  });

  it("duplicate-noise negative control: re-seeding per batch repeats the noise, and the duplicate check sees it", () => {
    const batches = Array.from({ length: 20 }, () => sampleDiscreteLaplaceMany(rat(3), 100, seededRng("same-seed")).join(","));
    expect(new Set(batches).size).toBe(1);
  });

  it("has the documented variance 2p/(1−p)² (moment check, M2 tolerance)", () => {
    const xs = nums(sampleDiscreteLaplaceMany(rat(10), N, seededRng("dlap-var")));
    const v = discreteLaplaceVariance(rat(10));
    const mean = xs.reduce((a, b) => a + b, 0) / N;
    const varHat = xs.reduce((a, b) => a + (b - mean) ** 2, 0) / N;
    expect(Math.abs(mean)).toBeLessThan(4.41717 * Math.sqrt(v / N));
    expect(Math.abs(varHat - v)).toBeLessThan((4.41717 * Math.sqrt(5) * v) / Math.sqrt(N));
  });
});

describe("discrete Gaussian sampler (CKS Alg. 3)", () => {
  const cases: [string, string][] = [
    ["σ² = 9", "9"],
    ["σ² = 5/2", "5/2"],
    ["σ² = 40000 (σ = 200)", "40000"],
    ["σ² = (3·10^30+1)/10^30, irreducible (bigint path)", `${3n * 10n ** 30n + 1n}/${10n ** 30n}`],
  ];
  for (const [name, s2] of cases) {
    it(`fits its pmf by χ² at N = 1e5 and is rejected at 0.7× and 1.3× the scale — ${name}`, () => {
      const s = ratFrom(s2);
      const n = s.den > 10n ** 20n ? 30_000 : N; // the all-bigint path is ~10× slower
      const xs = nums(sampleDiscreteGaussianMany(s, n, seededRng(`dg-${s2}`)));
      expect(chiSquareDiscrete(xs, (x) => discreteGaussianPmf(x, s)).lnP).toBeGreaterThan(LN_ALPHA);
      for (const f of [rat(7, 10), rat(13, 10)]) {
        // scale σ by f, so σ² by f²
        const wrong = { num: s.num * f.num * f.num, den: s.den * f.den * f.den };
        expect(chiSquareDiscrete(xs, (x) => discreteGaussianPmf(x, wrong)).lnP).toBeLessThan(LN_ALPHA);
      }
    });
  }

  it("scalar calls fit as well", () => {
    const rng = seededRng("dg-scalar");
    const xs = Float64Array.from({ length: 20_000 }, () => Number(sampleDiscreteGaussian(rat(9), rng)));
    expect(chiSquareDiscrete(xs, (x) => discreteGaussianPmf(x, rat(9))).lnP).toBeGreaterThan(LN_ALPHA);
  });

  it("variance helper is below σ² and matches the sample variance", () => {
    expect(discreteGaussianVariance(rat(1, 4))).toBeLessThan(0.25);
    expect(discreteGaussianVariance(rat(100))).toBeCloseTo(100, 9);
    const xs = nums(sampleDiscreteGaussianMany(rat(1, 4), N, seededRng("dg-var")));
    const v = discreteGaussianVariance(rat(1, 4));
    const varHat = xs.reduce((a, b) => a + b * b, 0) / N;
    expect(Math.abs(varHat - v)).toBeLessThan((6 * Math.sqrt(5) * v) / Math.sqrt(N));
  });
});

describe("Bernoulli(exp(−γ)) (CKS Alg. 1)", () => {
  it("hits e^{−γ} for γ < 1, γ = 1 and γ > 1 within 5 standard errors", () => {
    for (const g of [rat(1, 3), rat(1), rat(27, 10)]) {
      const rng = seededRng(`bern-${g.num}/${g.den}`);
      let k = 0;
      for (let i = 0; i < 20_000; i++) if (sampleBernoulliExp(g, rng)) k++;
      const p = Math.exp(-Number(g.num) / Number(g.den));
      expect(Math.abs(k / 20_000 - p)).toBeLessThan(5 * Math.sqrt((p * (1 - p)) / 20_000));
    }
    expect(sampleBernoulliExp(rat(0), seededRng("zero"))).toBe(true);
  });
});

describe("outputs on the declared lattice", () => {
  it("noisy counts are integers and fixed-point sums lie on the 0.01 grid; a naive float Laplace does not (positive control)", () => {
    const rng = seededRng("lattice");
    const grid = rat(1, 100);
    for (let i = 0; i < 200; i++) {
      const c = releaseInteger(1000n + BigInt(i), { kind: "laplace", epsilon: "0.5" }, { l1: 1n, l2Squared: 1n }, rng);
      expect(c.value).toMatch(/^-?\d+$/);
      const s = noisySumFixedPoint(
        [12.34, 56.78, 99.99 + i],
        { lower: "0", upper: "100", grid: "0.01", noise: { kind: "gaussian", rho: "0.1" } },
        rng,
      );
      expect(ratDiv(ratFrom(s.valueText), grid).den).toBe(1n);
      expect(BigInt(s.units)).toBeTypeOf("bigint");
    }
    // Naive float Laplace on the same grid value (Mironov 2012): b·ln(U) from doubles.
    let off = 0;
    const frng = seededRng("float-laplace");
    for (let i = 0; i < 200; i++) {
      const u = (frng.int(2 ** 32 - 1) + 1) / 2 ** 32;
      const sign = frng.int(2) === 0 ? -1 : 1;
      const v = 12.34 + sign * 2 * Math.log(u);
      if (ratDiv(ratFromFloatExact(v), grid).den !== 1n) off++;
    }
    expect(off).toBeGreaterThan(195);
  });
});

describe("large values (dp-testing M2: precision at large μ)", () => {
  it("adds noise to counts near 2^60 and 4.6e7 exactly, in bigint", () => {
    const rng = seededRng("big-mu");
    for (const mu of [46_000_000n, 2n ** 60n + 1n]) {
      for (let i = 0; i < 50; i++) {
        const r = releaseInteger(mu, { kind: "laplace", epsilon: "1" }, { l1: 1n, l2Squared: 1n }, rng);
        const d = BigInt(r.value) - mu;
        expect(d >= -40n && d <= 40n).toBe(true);
      }
    }
    // a float pipeline loses the low bits at this size: 2^60 + 1 is not representable
    expect(Number(2n ** 60n + 1n) + 0.5).toBe(Number(2n ** 60n));
  });
});

describe("sampler hygiene", () => {
  it("never calls Math.random", () => {
    const spy = vi.spyOn(Math, "random");
    sampleDiscreteLaplaceMany(rat(5, 3), 1000, seededRng("m"));
    sampleDiscreteGaussianMany(rat(7, 2), 1000, seededRng("m"));
    expect(spy).not.toHaveBeenCalled();
  });

  it("refuses zero, negative, NaN and infinite parameters naming the field", () => {
    const rng = seededRng("bad");
    expect(() => sampleDiscreteLaplace(rat(0), rng)).toThrow(/DP_PARAM_INVALID.*"scale"/);
    expect(() => sampleDiscreteLaplace(rat(-1), rng)).toThrow(/"scale" expected positive/);
    expect(() => sampleDiscreteGaussian(Number.NaN, rng)).toThrow(/"sigma2" expected finite number, got NaN/);
    expect(() => sampleDiscreteGaussian(Infinity, rng)).toThrow(/"sigma2"/);
    expect(() => laplaceScaleFor("0", 1n)).toThrow(/"epsilon"/);
    expect(() => laplaceScaleFor("1", 0n)).toThrow(/"sensitivity" expected positive integer/);
    expect(() => sampleDiscreteLaplaceMany(rat(1), -1, rng)).toThrow(/"count"/);
  });

  it("calibrates scale = Δ/ε and σ² = Δ₂²/(2ρ) exactly", () => {
    expect(laplaceScaleFor("0.1", 3n)).toEqual(rat(30));
    expect(gaussianSigma2For("0.125", 4n)).toEqual(rat(16));
  });

  it("tail helpers agree with summed pmfs", () => {
    let s = 0;
    for (let x = 4; x < 200; x++) s += 2 * discreteLaplacePmf(x, rat(2));
    expect(discreteLaplaceTail(3, rat(2))).toBeCloseTo(s, 12);
    let g = 0;
    for (let x = 3; x < 200; x++) g += 2 * discreteGaussianPmf(x, rat(4));
    expect(discreteGaussianTail(2, rat(4))).toBeCloseTo(g, 12);
  });
});
