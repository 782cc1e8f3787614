/**
 * Empirical privacy audit (dp-testing.md M4): run the released count on neighbouring datasets
 * D (count c) and D′ (count c + 1) n times each, measure the one-sided threshold event
 * S = {out ≥ c + 1}, and compute a Hoeffding lower bound on ε that holds with probability
 * ≥ 1 − β (Hoeffding, and the tighter Clopper–Pearson that the gates use). A correct mechanism keeps the bound ≤ the claimed ε; a deliberately under-noised
 * one pushes it above.
 */
import { describe, expect, it } from "vitest";
import { seededRng, type Rng } from "../../kernel-lib/src/rng.js";
import { rat, ratMul } from "../../kernel-lib/src/dp/rational.js";
import {
  sampleDiscreteLaplaceMany,
  sampleDiscreteGaussianMany,
  laplaceScaleFor,
  gaussianSigma2For,
} from "../../kernel-lib/src/dp/mechanisms.js";
import { zcdpToApproxDp } from "../../kernel-lib/src/dp/accountant.js";
import { ratToNumber } from "../../kernel-lib/src/dp/rational.js";
import { epsilonLowerBound, epsilonLowerBoundCP, dpPredicateExcess, clopperPearson } from "./stats.js";

const n = 100_000;
const beta = 1e-6;
const c = 1000n;

/** Both lower bounds; the Clopper–Pearson one is the tighter and is the one gated on. */
function audit(release: (count: bigint, n: number, rng: Rng) => bigint[], seed: string, delta = 0): number {
  const outD = release(c, n, seededRng(`${seed}/D`));
  const outD1 = release(c + 1n, n, seededRng(`${seed}/D1`));
  const inS = (xs: bigint[]) => xs.reduce((k, x) => (x >= c + 1n ? k + 1 : k), 0);
  const h = epsilonLowerBound(inS(outD1), inS(outD), n, beta, delta);
  const cp = epsilonLowerBoundCP(inS(outD1), inS(outD), n, beta, delta);
  expect(cp).toBeGreaterThanOrEqual(h);
  return cp;
}

const laplaceCount = (scale: ReturnType<typeof rat>) => (count: bigint, k: number, rng: Rng) =>
  sampleDiscreteLaplaceMany(scale, k, rng).map((z) => count + z);
const gaussCount = (sigma2: ReturnType<typeof rat>) => (count: bigint, k: number, rng: Rng) =>
  sampleDiscreteGaussianMany(sigma2, k, rng).map((z) => count + z);

describe("empirical privacy audit (threshold event, Clopper–Pearson / Hoeffding lower bound on ε)", () => {
  it("discrete Laplace at ε = 1: the lower bound is close to but never above 1", () => {
    const lb = audit(laplaceCount(laplaceScaleFor("1", 1n)), "audit-lap-1");
    expect(lb).toBeLessThanOrEqual(1);
    expect(lb).toBeGreaterThan(0.93); // the audit is nearly tight, so it has power
  });

  it("an under-noised mechanism (claims ε = 1, noise for ε = 2) is caught: bound > 1", () => {
    const lb = audit(laplaceCount(laplaceScaleFor("2", 1n)), "audit-lap-2");
    expect(lb).toBeGreaterThan(1);
  });

  it("a mechanism that forgets sensitivity 2 (claims ε = 1 for a count of pairs) is caught", () => {
    // a pair-count moves by 2 between neighbours; noise calibrated to Δ = 1 gives ε = 2
    const release = (count: bigint, k: number, rng: Rng) =>
      sampleDiscreteLaplaceMany(laplaceScaleFor("1", 1n), k, rng).map((z) => 2n * count + z);
    const outD = release(c, n, seededRng("pairs/D"));
    const outD1 = release(c + 1n, n, seededRng("pairs/D1"));
    const inS = (xs: bigint[]) => xs.reduce((k, x) => (x >= 2n * c + 1n ? k + 1 : k), 0);
    expect(epsilonLowerBound(inS(outD1), inS(outD), n, beta)).toBeGreaterThan(1);
  });

  it("discrete Gaussian at ρ = 0.02: the (ε, δ) lower bound stays below the zCDP conversion; σ² ÷ 100 is caught", () => {
    const rho = "0.02"; // ⇒ (≈1.07, 1e-6)-DP, within reach of a Hoeffding audit at n = 1e5
    const delta = 1e-6;
    const claimed = ratToNumber(zcdpToApproxDp(rho, "1e-6").epsilon);
    const sigma2 = gaussianSigma2For(rho, 1n);
    expect(audit(gaussCount(sigma2), "audit-g", delta)).toBeLessThanOrEqual(claimed);
    const lbBad = audit(gaussCount(ratMul(sigma2, rat(1, 100))), "audit-g-bad", delta);
    expect(lbBad).toBeGreaterThan(claimed);
  });

  it("neighbouring-dataset predicate (M3): T stays under the tolerance both ways at ε = 1; under-noising 1.5×–3× is detected", () => {
    const k = 20_000;
    const tol = 0.02;
    const run = (scale: ReturnType<typeof rat>, seed: string) => {
      const a = laplaceCount(scale)(c, k, seededRng(`${seed}/A`));
      const b = laplaceCount(scale)(c + 1n, k, seededRng(`${seed}/B`));
      return Math.max(dpPredicateExcess(a, b, 1), dpPredicateExcess(b, a, 1));
    };
    expect(run(laplaceScaleFor("1", 1n), "m3-ok")).toBeLessThan(tol);
    const detected = ["1.5", "2", "3"].map((ratio) => run(laplaceScaleFor(ratio, 1n), `m3-bad-${ratio}`) >= tol);
    expect(detected).toEqual([true, true, true]);
  });

  it("membership-inference game (M5): TPR_lo ≤ e^ε·FPR_hi at ε = 1, violated by an under-noised release", () => {
    const game = (scale: ReturnType<typeof rat>, seed: string) => {
      const rng = seededRng(seed);
      const trials = 10_000;
      const noise = sampleDiscreteLaplaceMany(scale, trials, rng.fork("noise"));
      const coin = rng.fork("coin");
      let tp = 0;
      let fp = 0;
      let ins = 0;
      for (let i = 0; i < trials; i++) {
        const member = coin.int(2) === 1; // the target is in the data or not
        const out = c + (member ? 1n : 0n) + noise[i]!;
        const guess = out >= c + 1n; // the optimal threshold attack
        if (member) {
          ins++;
          if (guess) tp++;
        } else if (guess) fp++;
      }
      const tpr = clopperPearson(tp, ins, 1e-6);
      const fpr = clopperPearson(fp, trials - ins, 1e-6);
      return { tprLo: tpr.lo, fprHi: fpr.hi };
    };
    const ok = game(laplaceScaleFor("1", 1n), "m5-ok");
    expect(ok.tprLo).toBeLessThanOrEqual(Math.E * ok.fprHi);
    const bad = game(laplaceScaleFor("2", 1n), "m5-bad"); // effective ε = 2
    expect(bad.tprLo).toBeGreaterThan(Math.E * bad.fprHi);
  });
});
