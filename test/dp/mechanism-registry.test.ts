/**
 * "Adding a mechanism touches dp/ and nothing that switches on strings" (issue 12): a
 * mechanism defined and registered HERE, in the test file, is accepted by the template
 * schema, costed, previewed, approved, charged, released and displayed with no edit to
 * cleanroom/, labs/ or display/.
 *
 * The test mechanism is real: discrete Laplace noise calibrated in zCDP. Scale t on a
 * quantity of L1 sensitivity Δ is (Δ/t)-DP, hence (Δ/t)²/2-zCDP (Bun–Steinke 2016, Prop. 1.4).
 * For a budget ρ the scale is the smallest multiple of 1/1000 with Δ²/(2t²) ≤ ρ.
 */
import { afterEach, describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { makeRoom } from "../cleanroom/fixtures.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { parseTemplate, templateCost, noiseParams, isParsedTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { executeQuery, prepareQuery } from "../../kernel-lib/src/cleanroom/query.js";
import { ArqueroEngine } from "../../kernel-lib/src/cleanroom/engine.js";
import { previewTemplate, noiseHalfWidth } from "../../kernel-lib/src/cleanroom/design.js";
import { queryPayloadFromResult } from "../../kernel-lib/src/display/from-results.js";
import { registerMechanism, mechanisms, mechanism, discreteLaplace, type NoiseMechanism } from "../../kernel-lib/src/dp/registry.js";
import {
  discreteLaplaceTail,
  discreteLaplaceVariance,
  sampleDiscreteLaplace,
  sampleDiscreteLaplaceMany,
} from "../../kernel-lib/src/dp/mechanisms.js";
import { rat, ratCompare, ratDiv, ratMul, ratToString, isqrt, type Rational } from "../../kernel-lib/src/dp/rational.js";
import { PrivacyLedger } from "../../kernel-lib/src/dp/ledger.js";
import { zCdp } from "../../kernel-lib/src/dp/accountant.js";
import { releaseInteger, costOfNoise } from "../../kernel-lib/src/dp/bounding.js";
import { epsilonForAccuracy } from "../../kernel-lib/src/dp/planner.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError, type ErrorCode } from "../../kernel-lib/src/errors.js";

/** Discrete Laplace with a ρ-zCDP budget: ρ = Δ²/(2t²). */
const laplaceZcdp: NoiseMechanism = {
  templateName: "laplaceZcdp",
  displayName: "discreteLaplaceZcdp",
  budgetField: "rhoPerAggregate",
  unit: "zCdp",
  sensitivity: "l1",
  parameterName: "scale",
  parameterFor(rho: Rational, s: bigint): Rational {
    // smallest m with (m/1000)² ≥ Δ²/(2ρ), i.e. m²·2·ρ.num ≥ 10⁶·Δ²·ρ.den
    const lhs = 10n ** 6n * s * s * rho.den;
    const per = 2n * rho.num;
    let m = isqrt(lhs / per);
    while (m * m * per < lhs) m++;
    return rat(m, 1000n);
  },
  costFor: (t: Rational, s: bigint) => ratDiv(rat(s * s), ratMul(rat(2), ratMul(t, t))),
  sample: sampleDiscreteLaplace,
  sampleMany: sampleDiscreteLaplaceMany,
  variance: discreteLaplaceVariance,
  tail: discreteLaplaceTail,
};

const noised = (rho = "0.02") => ({
  ...liftTemplate({ advertiser: "adv", retailer: "shop", breakdown: "region", threshold: 20 }),
  noise: { mechanism: "laplaceZcdp", rhoPerAggregate: rho },
});
const params = { startDay: 0, endDay: 27 };

function refusal(code: ErrorCode, f: () => unknown): { message: string; field?: unknown } {
  try {
    f();
  } catch (e) {
    expect(isCleanRoomError(e, code), String(e)).toBe(true);
    return { message: (e as Error).message, field: (e as { details: { field?: unknown } }).details.field };
  }
  throw new Error(`expected ${code}`);
}

let off: (() => void) | null = null;
afterEach(() => {
  off?.();
  off = null;
});

describe("a mechanism registered outside the library runs end to end", () => {
  it("is unknown to the template schema until registered, and again after unregistering", () => {
    expect(refusal("TEMPLATE_INVALID", () => parseTemplate(noised())).field).toBe("template.noise.mechanism");
    off = registerMechanism(laplaceZcdp);
    expect(mechanisms().map((m) => m.templateName)).toEqual(["laplace", "gaussian", "laplaceZcdp"]);
    expect(isParsedTemplate(parseTemplate(noised()))).toBe(true);
    // its budget field is the one it declared
    const wrongField = { ...noised(), noise: { mechanism: "laplaceZcdp", epsilonPerAggregate: "0.1" } };
    expect(refusal("TEMPLATE_INVALID", () => parseTemplate(wrongField)).message).toMatch(/template\.noise/);
    off();
    off = null;
    expect(refusal("TEMPLATE_INVALID", () => parseTemplate(noised())).field).toBe("template.noise.mechanism");
  });

  it("is costed in its own accountant, and its scale never spends more than the per-aggregate budget", () => {
    off = registerMechanism(laplaceZcdp);
    const t = parseTemplate(noised("0.02"));
    const np = noiseParams(t)!;
    expect(np[0]!.name).toBe("units");
    expect(np.length).toBeGreaterThan(3);
    expect(templateCost(t, params)).toEqual({ kind: "zCdp", rho: rat(2n * BigInt(np.length), 100n) });
    for (const p of np) {
      expect(p.mechanism.displayName).toBe("discreteLaplaceZcdp");
      expect(p.sensitivity).toBe(p.l1);
      const spent = laplaceZcdp.costFor(p.scale, p.sensitivity);
      expect(ratCompare(spent, rat(2n, 100n))).toBeLessThanOrEqual(0);
      // …and a scale one grid step smaller would overspend (the scale is the smallest that fits)
      expect(ratCompare(laplaceZcdp.costFor(rat(p.scale.num * (1000n / p.scale.den) - 1n, 1000n), p.sensitivity), rat(2n, 100n))).toBe(1);
    }
    // units: Δ = 1, ρ = 0.02 → t = 1/√0.04 = 5 exactly
    expect(ratToString(np[0]!.scale)).toBe("5");
    // the accuracy planner plans it beside the built-ins: the same noise as the Laplace plan
    // (same distribution), its budget in ρ, and the target holds at the rounded budget
    const plan = epsilonForAccuracy({ accuracy: 10, confidence: 0.95 });
    expect(plan.mechanisms.map((m) => m.mechanism)).toEqual(["discreteLaplace", "discreteGaussian", "discreteLaplaceZcdp"]);
    const mine = plan.mechanisms[2]!;
    expect(mine).toMatchObject({ templateName: "laplaceZcdp", budgetField: "rhoPerAggregate", cost: { kind: "zCdp" } });
    expect(mine.achievedTail).toBeLessThanOrEqual(0.05);
    expect(Number(mine.parameter)).toBeCloseTo(Number(plan.laplace.scale), 2);
    expect(Number(mine.budget)).toBeCloseTo(Number(plan.laplace.epsilon) ** 2 / 2, 4);
    // the standalone release API of dp/bounding.ts takes it by name as well
    expect(costOfNoise({ kind: "laplaceZcdp", rho: "0.02" })).toEqual({ kind: "zCdp", rho: rat(1n, 50n) });
    const r = releaseInteger(100n, { kind: "laplaceZcdp", rho: "0.02" }, { l1: 1n, l2Squared: 1n }, seededRng("standalone"));
    expect(r).toMatchObject({ mechanism: "discreteLaplaceZcdp", noiseParameter: "5", cost: { kind: "zCdp", text: "ρ = 0.02" } });
  });

  it("is previewed, approved, charged, released and displayed without any edit outside dp/", async () => {
    off = registerMechanism(laplaceZcdp);
    const template = noised("0.02");
    const preview = previewTemplate(template, params);
    expect(preview.noise!.mechanism).toBe("discreteLaplaceZcdp");
    const units = preview.noise!.perQuantity.find((q) => q.name === "units")!;
    expect(units).toMatchObject({ sensitivity: "1", scale: "5", plusMinus: noiseHalfWidth("laplaceZcdp", "5", 0.95) });
    expect(units.sd).toBeCloseTo(Math.sqrt(discreteLaplaceVariance(rat(5))), 12);
    expect(noiseHalfWidth("laplaceZcdp", "5", 0.95)).toBe(noiseHalfWidth("laplace", "5", 0.95));
    const n = preview.noise!.perQuantity.length;
    expect(preview.cost).toMatchObject({ kind: "zCdp", text: `ρ = ${(2 * n) / 100}` });
    expect(preview.text).toMatch(/noise: discreteLaplaceZcdp/);

    const room = makeRoom({ users: 1500, minimum: 2 });
    room.registry.approve(template, "adv", room.ctx);
    room.registry.approve(template, "shop", room.ctx);
    const prep = prepareQuery({ template, params, registry: room.registry, ctx: room.ctx });
    expect(prep.templateHash).toBe(preview.hash);
    const ledger = new PrivacyLedger(new Database(":memory:"));
    const key = { scope: "collaboration" as const, subject: "room-1" };
    ledger.createBudget("room-1", key, zCdp(`${(3 * n) / 100}`));
    ledger.chargeAtomic("room-1", [key], prep.cost!, { templateHash: prep.templateHash });
    expect(ledger.budgetStatus("room-1", key).spent.text).toBe(`ρ = ${(2 * n) / 100}`);
    // a second run no longer fits the zCDP budget
    expect(
      refusal("BUDGET_EXCEEDED", () => ledger.chargeAtomic("room-1", [key], prep.cost!, { templateHash: prep.templateHash })).message,
    ).toMatch(/ρ/);

    const engine = new ArqueroEngine();
    const exact = await engine.execute(prep.plan, prep.tables);
    const result = await executeQuery(prep, { engine, rng: seededRng("registered"), history: room.history });
    expect(result.noise!.mechanism).toBe("discreteLaplaceZcdp");
    expect(result.noise!.perAggregate.find((p) => p.name === "units")).toMatchObject({ scale: "5", l1Sensitivity: "1" });
    expect(result.cost).toMatchObject({ kind: "zCdp", rho: ratToString(rat(2n * BigInt(n), 100n)) });
    expect(result.suppressed.decidedOn).toBe("noisy");
    // noise was added: released population differs from the exact counts, but not wildly
    const pop = result.rows.map((r) => r.population as number);
    const exactPop = exact.groups.map((g) => g.units);
    expect(pop).toHaveLength(exactPop.length);
    expect(pop).not.toEqual(exactPop);
    pop.forEach((p, i) => expect(Math.abs(p - exactPop[i]!)).toBeLessThanOrEqual(100));
    // the display contract accepts the new mechanism's name
    const payload = queryPayloadFromResult(result);
    expect(payload.noise).toMatchObject({ mechanism: "discreteLaplaceZcdp", unit: "rho" });
    // each column carries its own noise (issue 19: not the first aggregate's for every column)
    expect(payload.columns.find((c) => c.name === "population")!.noise).toMatchObject({ scale: 5, sensitivity: 1 });
  });

  it("refuses a malformed or clashing definition, naming the field", () => {
    expect(refusal("DP_PARAM_INVALID", () => registerMechanism({ ...laplaceZcdp, templateName: "laplace" })).field).toBe(
      "mechanism.templateName",
    );
    expect(refusal("DP_PARAM_INVALID", () => registerMechanism({ ...laplaceZcdp, displayName: "discreteGaussian" })).field).toBe(
      "mechanism.displayName",
    );
    expect(refusal("DP_PARAM_INVALID", () => registerMechanism({ ...laplaceZcdp, unit: "approxDp" as never })).field).toBe(
      "mechanism.unit",
    );
    expect(refusal("DP_PARAM_INVALID", () => registerMechanism({ ...laplaceZcdp, budgetField: "mechanism" })).field).toBe(
      "mechanism.budgetField",
    );
    expect(refusal("DP_PARAM_INVALID", () => registerMechanism({ ...laplaceZcdp, sample: undefined as never })).field).toBe(
      "mechanism.sample",
    );
    expect(mechanisms()).toHaveLength(2);
    expect(mechanism("discreteLaplace")).toBe(discreteLaplace);
    expect(refusal("DP_PARAM_INVALID", () => mechanism("laplaceZcdp", "noise.kind")).message).toMatch(
      /"noise\.kind" expected one of "laplace" \| "gaussian"/,
    );
  });
});
