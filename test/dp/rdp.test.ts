/**
 * The RDP accountant of DP-SGD (dp/rdp.ts) against published values of established accountants
 * and against an independent high-precision numerical integration.
 *
 * Published values (each reproduced to 2 significant digits; conversion as the source used):
 *  1. Opacus docs, `opacus.scripts.compute_dp_sgd_privacy` (opacus.ai/api/compute_dp_sgd_privacy.html):
 *     sample rate 0.01, noise 1.0, 3 epochs = 300 steps, δ = 1e-5, alphas [2, 5, 10, 20, 100]
 *     → ε = 2.39, optimal α = 5 (Opacus ≥ 1.0: the improved conversion).
 *  2. Opacus docs, older version of the same page: dataset 60000, batch 256, noise 1.12, 60 epochs,
 *     δ = 1e-5, alphas [10, 20, 100] → ε = 2.95 (classic conversion; steps = ceil(60·60000/256)).
 *  3. TensorFlow Privacy MNIST tutorial (classic `compute_dp_sgd_privacy`): n = 60000, batch 256,
 *     noise 1.1, 60 epochs, δ = 1e-5 → ε ≈ 3.0 (3.01).
 *  4. TensorFlow Privacy classification tutorial: n = 60000, batch 250, noise 1.3, 15 epochs
 *     (3600 steps), δ = 1e-5 → ε = 1.18 (classic conversion).
 *  5. Bu, Dong, Long, Su, "Deep Learning with Gaussian Differential Privacy" (HDSR 2020), Fig. 4:
 *     moments accountant (TF Privacy), p = 256/60000, σ = 1.3, 20 epochs → (1.34, 1e-5);
 *     σ = 0.7, 70 epochs → (8.68, 1e-5).
 *  6. Abadi et al. 2016, "Deep Learning with Differential Privacy", §3.1: q = 0.01, σ = 4,
 *     T = 10000, δ = 1e-5 → ε ≈ 1.26 with the moments accountant (classic conversion).
 * Cross-check: test/dp/fixtures/rdp_crosscheck.py integrates the Rényi divergence of the
 * subsampled-Gaussian mixture directly with mpmath at 50 digits (no series, no erfc); its printed
 * values are pinned below and our series agree to ≥ 9 significant digits, integer and fractional α.
 */
import { describe, expect, it } from "vitest";
import {
  DEFAULT_ORDERS,
  composedRdp,
  computeRdp,
  dpSgdEpsilon,
  logErfc,
  noiseForEpsilon,
  rdpStep,
  rdpToEpsilon,
  sgmCost,
} from "../../kernel-lib/src/dp/rdp.js";
import { ratFrom, ratToNumber } from "../../kernel-lib/src/dp/rational.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

/** |a − b| below half a unit of b's second significant digit (2.95 vs 2.94: yes; 2.95 vs 3.1: no). */
const sameTo2Digits = (a: number, b: number) => Math.abs(a - b) < 0.5 * 10 ** (Math.floor(Math.log10(Math.abs(b))) - 1);

describe("RDP accountant: published values (2 significant digits)", () => {
  const cases: {
    name: string;
    q: number;
    sigma: number;
    steps: number;
    orders?: number[];
    conv: "classic" | "improved";
    eps: number;
    order?: number;
  }[] = [
    {
      name: "Opacus docs: q=0.01 σ=1 300 steps",
      q: 0.01,
      sigma: 1.0,
      steps: 300,
      orders: [2, 5, 10, 20, 100],
      conv: "improved",
      eps: 2.39,
      order: 5,
    },
    {
      name: "Opacus docs (older): 60000/256 σ=1.12 60 ep",
      q: 256 / 60000,
      sigma: 1.12,
      steps: 14063,
      orders: [10, 20, 100],
      conv: "classic",
      eps: 2.95,
    },
    { name: "TF Privacy MNIST tutorial: σ=1.1 60 ep", q: 256 / 60000, sigma: 1.1, steps: 14063, conv: "classic", eps: 3.01 },
    { name: "TF Privacy classification tutorial: σ=1.3 15 ep", q: 250 / 60000, sigma: 1.3, steps: 3600, conv: "classic", eps: 1.18 },
    { name: "Bu et al. 2020 Fig. 4: σ=1.3 20 ep", q: 256 / 60000, sigma: 1.3, steps: 4688, conv: "classic", eps: 1.34 },
    { name: "Bu et al. 2020 Fig. 4: σ=0.7 70 ep", q: 256 / 60000, sigma: 0.7, steps: 16407, conv: "classic", eps: 8.68 },
    { name: "Abadi et al. 2016: q=0.01 σ=4 T=10000", q: 0.01, sigma: 4, steps: 10000, conv: "classic", eps: 1.26 },
  ];
  for (const c of cases)
    it(c.name, () => {
      const r = dpSgdEpsilon({
        sampleRate: c.q,
        noiseMultiplier: c.sigma,
        steps: c.steps,
        delta: 1e-5,
        orders: c.orders,
        conversion: c.conv,
      });
      expect(sameTo2Digits(r.epsilon, c.eps), `ε = ${r.epsilon} vs published ${c.eps}`).toBe(true);
      if (c.order !== undefined) expect(r.order).toBe(c.order);
    });

  it("the improved conversion is never above the classic one", () => {
    for (const [q, s, t] of [
      [0.01, 1, 300],
      [0.004, 0.8, 5000],
      [0.1, 2, 100],
    ] as const) {
      const a = dpSgdEpsilon({ sampleRate: q, noiseMultiplier: s, steps: t, delta: 1e-6, conversion: "improved" }).epsilon;
      const b = dpSgdEpsilon({ sampleRate: q, noiseMultiplier: s, steps: t, delta: 1e-6, conversion: "classic" }).epsilon;
      expect(a).toBeLessThanOrEqual(b);
    }
  });
});

describe("RDP accountant: independent numerical integration (mpmath, 50 digits)", () => {
  // printed by test/dp/fixtures/rdp_crosscheck.py
  const pinned: [number, number, number, number][] = [
    [0.01, 1.0, 5, 0.000468667242169155],
    [256 / 60000, 1.1, 8.8, 0.000108964300759525],
    [256 / 60000, 0.7, 3.5, 0.000248113691615066],
    [0.01, 4.0, 20, 6.52631295728039e-5],
    [0.05, 0.8, 2.5, 0.0135633803541941],
    [0.2, 2.0, 12, 0.15139272662442],
  ];
  for (const [q, s, a, want] of pinned)
    it(`q=${q.toFixed(4)} σ=${s} α=${a}`, () => {
      expect(Math.abs(rdpStep(q, s, a) - want) / want).toBeLessThan(1e-9);
    });
});

describe("RDP accountant: properties and refusals", () => {
  it("q = 1 is the Gaussian mechanism α/(2σ²); RDP is additive in steps", () => {
    expect(rdpStep(1, 2, 3)).toBeCloseTo(3 / 8, 14);
    const one = computeRdp(0.02, 1.2, 1, [2, 7.5]);
    const many = computeRdp(0.02, 1.2, 50, [2, 7.5]);
    many.forEach((x, i) => expect(x).toBeCloseTo(50 * one[i]!, 12));
  });
  it("ε grows with steps and q, falls with σ (seeded grid)", () => {
    const e = (q: number, s: number, t: number) => dpSgdEpsilon({ sampleRate: q, noiseMultiplier: s, steps: t, delta: 1e-5 }).epsilon;
    expect(e(0.01, 1, 200)).toBeLessThan(e(0.01, 1, 400));
    expect(e(0.01, 1, 200)).toBeLessThan(e(0.02, 1, 200));
    expect(e(0.01, 1.5, 200)).toBeLessThan(e(0.01, 1, 200));
  });
  it("logErfc matches known values, also deep in the tail", () => {
    expect(Math.exp(logErfc(0.5))).toBeCloseTo(0.4795001221869535, 14);
    expect(Math.exp(logErfc(-1))).toBeCloseTo(1.8427007929497148, 14);
    expect(logErfc(30)).toBeCloseTo(-903.9741171106439, 8); // ln erfc(30) (mpmath), far below float range
  });
  it("noiseForEpsilon inverts dpSgdEpsilon", () => {
    const s = noiseForEpsilon({ sampleRate: 0.01, steps: 1000, delta: 1e-5, epsilon: 1 });
    expect(dpSgdEpsilon({ sampleRate: 0.01, noiseMultiplier: s, steps: 1000, delta: 1e-5 }).epsilon).toBeLessThanOrEqual(1);
    expect(dpSgdEpsilon({ sampleRate: 0.01, noiseMultiplier: s * 0.99, steps: 1000, delta: 1e-5 }).epsilon).toBeGreaterThan(1);
  });
  it("refuses bad parameters naming the field", () => {
    const field = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        return isCleanRoomError(e) ? e.details.field : "not a CleanRoomError";
      }
      return "no error";
    };
    expect(field(() => rdpStep(0, 1, 2))).toBe("sampleRate");
    expect(field(() => rdpStep(0.1, Number.NaN, 2))).toBe("noiseMultiplier");
    expect(field(() => rdpStep(0.1, 1, 1))).toBe("orders");
    expect(field(() => computeRdp(0.1, 1, 0.5))).toBe("steps");
    expect(field(() => rdpToEpsilon([2], [0.1], 0))).toBe("delta");
  });
});

describe("sgmCost: the charge in the ledger's units", () => {
  const run = [
    { sampleRate: 0.01, noiseMultiplier: 1.1, steps: 500 },
    { sampleRate: 1, noiseMultiplier: 50, steps: 5 },
  ];
  it("zCdp: ρ = Σ steps/(2σ²) exactly, and ρ-zCDP really bounds every RDP order (no under-count)", () => {
    const c = sgmCost("zCdp", run);
    if (c.kind !== "zCdp") throw new Error(c.kind);
    // 500/(2·1.21) + 5/(2·2500) = 25000/121 + 1/1000, exactly
    expect(c.rho).toEqual(ratFrom({ num: String(25000n * 1000n + 121n), den: String(121n * 1000n) }));
    const rdp = composedRdp(run, DEFAULT_ORDERS);
    DEFAULT_ORDERS.forEach((a, i) => expect(rdp[i]!).toBeLessThanOrEqual(ratToNumber(c.rho) * a));
  });
  it("approxDp: ε rounded up from the RDP conversion, δ charged as given", () => {
    const c = sgmCost("approxDp", run, "1e-5");
    if (c.kind !== "approxDp") throw new Error(c.kind);
    const eps = rdpToEpsilon(DEFAULT_ORDERS, composedRdp(run), 1e-5).epsilon;
    expect(ratToNumber(c.epsilon)).toBeGreaterThanOrEqual(eps);
    expect(ratToNumber(c.epsilon)).toBeLessThan(eps * (1 + 1e-6));
    expect(c.delta).toEqual(ratFrom("1e-5"));
  });
  it("pureDp budgets are refused, naming the budget", () => {
    expect(() => sgmCost("pureDp", run)).toThrow(/budget/);
  });
});
