/**
 * Membership inference (loss threshold, Yeom et al. 2018) against a model trained without and
 * with DP-SGD (labs/membership-inference.ts). Positive control: with the defence off the attack
 * clearly works; with DP-SGD at ε ≈ 0.76 (δ = 1e-5) it is ≈ 0 and below the bound any attack on an
 * (ε, δ)-DP mechanism must respect — a DP-SGD that leaked more than its accountant says would
 * fail that. Seeded; advantages are out-of-sample (threshold fitted on the other half).
 */
import { describe, expect, it } from "vitest";
import { dpAdvantageBound, membershipInferenceLab } from "../../kernel-lib/src/labs/membership-inference.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

describe("membership inference with and without DP-SGD", () => {
  const r = membershipInferenceLab(seededRng("mia"));
  it("defence off: the attack works (positive control)", () => {
    expect(r.off.ci95[0]).toBeGreaterThan(0.5);
    expect(r.off.memberLoss).toBeLessThan(r.off.nonMemberLoss / 10);
  });
  it("defence on: advantage ≈ 0, inside the DP bound, and the run could have seen 0.1", () => {
    const eps = r.on.epsilon!;
    expect(eps).toBeGreaterThan(0.5);
    expect(eps).toBeLessThan(1);
    expect(r.on.ci95[1]).toBeLessThan(0.1);
    expect(r.on.ci95[1]).toBeLessThan(dpAdvantageBound(eps, 1e-5));
    // power: the 95% interval is narrow enough that a true advantage of 0.1 would be told from 0
    expect(r.on.resolution).toBeLessThan(0.05);
    // and the undefended model leaks more than ANY (ε, δ)-DP model at this ε could: the defence is what stops it
    expect(r.off.ci95[0]).toBeGreaterThan(dpAdvantageBound(eps, 1e-5));
    expect(r.rngStamp.rngMode).toBe("seeded");
  });
});
