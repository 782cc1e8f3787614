/**
 * trainModel end to end (verbs/ml.ts): DP-SGD inside the room's attested enclave on the
 * inner join of two owners' tables, charged to the ledger in the ledger's units.
 * Seeded labs (teaching mode) so the run is reproducible.
 */
import { afterEach, describe, expect, it } from "vitest";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { openLab, addParty, budget } from "../../kernel-lib/src/index.js";
import { trainModel, type TrainModelInput } from "../../kernel-lib/src/verbs/ml.js";
import { propensityStudy, PROPENSITY_FEATURES } from "../../kernel-lib/src/datasets/propensity.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { dpSgdEpsilon } from "../../kernel-lib/src/dp/rdp.js";

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function lab(budgetOpt: Record<string, unknown>, seed = "ml-test") {
  const dir = mkdtempSync(join(tmpdir(), "ml-"));
  dirs.push(dir);
  const l = openLab({ store: join(dir, "room.db"), rng: { seed }, budget: budgetOpt as never });
  addParty(l, { party: "advertiser" });
  addParty(l, { party: "retailer" });
  return l;
}

const study = propensityStudy(8000, seededRng("propensity"));
const request = (over: Partial<TrainModelInput> = {}): TrainModelInput => ({
  party: "advertiser",
  purpose: "measurement",
  joinKey: "id",
  label: "converted",
  owners: [
    { party: "advertiser", rows: study.advertiser, columns: ["impressions", "minutes", "age"], purposes: ["measurement"] },
    { party: "retailer", rows: study.retailer, columns: ["visits", "converted"], purposes: ["measurement"] },
  ],
  features: PROPENSITY_FEATURES.map((f) => ({ ...f })),
  epochs: 5,
  sampleRate: 0.02,
  noiseMultiplier: 1.0,
  clipNorm: 1,
  learningRate: 2,
  metricsNoise: 5,
  ...over,
});

const codeOf = (f: () => unknown): string => {
  try {
    f();
  } catch (e) {
    return isCleanRoomError(e) ? e.code : `not a CleanRoomError: ${String(e)}`;
  }
  return "no error";
};

const spent = (l: ReturnType<typeof lab>) => JSON.stringify(budget(l).budgets.map((b) => b.spent));

describe("trainModel", () => {
  it("learns the true direction, charges the RDP (ε, δ) to every budget, and releases only model + noisy metrics", () => {
    const l = lab({ epsilon: 8, delta: "1e-5" });
    const r = trainModel(l, request());
    expect(r.rngMode).toBe("seeded");
    expect(r.label).toMatch(/teaching/);
    // AUC of the true model on this data is ≈ 0.8; a DP model at ε ≈ 2 gets most of it
    expect(r.metrics.auc).toBeGreaterThan(0.7);
    r.model.weights.forEach((w, i) => expect(Math.sign(w)).toBe(Math.sign(study.truth.weights[i]!)));
    // the charge is the accountant's ε (rounded up) for DP-SGD + the per-epoch histograms
    expect(r.privacy.epsilon).toBeGreaterThan(dpSgdEpsilon({ sampleRate: 0.02, noiseMultiplier: 1, steps: 250, delta: 1e-6 }).epsilon);
    expect(r.privacy.charged).toMatch(/^ε = [0-9.]+, δ = 0\.000001$/); // a tenth of the room's δ by default
    const eps = Number(/ε = ([0-9.]+)/.exec(r.privacy.charged)![1]);
    expect(eps).toBeGreaterThanOrEqual(r.privacy.epsilon);
    expect(eps).toBeLessThan(r.privacy.epsilon * 1.0001);
    // collaboration, party, and the two owners' dataset budgets each charged once
    const charged = budget(l).budgets.filter((b) => b.charges === 1);
    expect(charged.map((b) => b.scope).sort()).toEqual(["collaboration", "dataset", "dataset", "party"]);
    // ε grows along the curve; what left the enclave has no row-level field
    for (let i = 1; i < r.curve.length; i++) expect(r.curve[i]!.epsilon).toBeGreaterThan(r.curve[i - 1]!.epsilon);
    const json = JSON.stringify(r);
    expect(json).not.toMatch(/"c\d+"/); // no customer id
    expect(Object.keys(r).sort()).toEqual(["curve", "enclave", "kind", "label", "metrics", "model", "privacy", "rngMode"]);
    const bundle = (r as unknown as Record<symbol, () => Record<string, unknown>>)[Symbol.for("jupyter.mimebundle")]!();
    expect((bundle["application/vnd.vegalite.v5+json"] as { hconcat: unknown[] }).hconcat).toHaveLength(3);
    expect(bundle["text/plain"]).toMatch(/teaching mode/);
  });

  it("a room whose δ is written as a fraction trains (δ/10 by default), exactly like its decimal twin", () => {
    const frac = trainModel(lab({ epsilon: 8, delta: "1/100000" }), request());
    expect(frac.privacy.charged).toMatch(/δ = 0\.000001$/);
    expect(frac.privacy.epsilon).toBe(trainModel(lab({ epsilon: 8, delta: "1e-5" }), request()).privacy.epsilon);
  });

  it("secure mode (the default): no teaching label, and two runs draw different noise", () => {
    const dir = mkdtempSync(join(tmpdir(), "ml-"));
    dirs.push(dir);
    const l = openLab({ store: join(dir, "secure.db"), budget: { epsilon: 8, delta: "1e-5" } });
    addParty(l, { party: "advertiser" });
    addParty(l, { party: "retailer" });
    const small = request({ epochs: 1, owners: request().owners.map((o) => ({ ...o, rows: o.rows.slice(0, 1500) })) });
    const a = trainModel(l, small);
    const b = trainModel(l, small);
    expect(a.rngMode).toBe("secure");
    expect("label" in a).toBe(false);
    expect(a.model.weights).not.toEqual(b.model.weights);
  });

  it("zCDP room: charges ρ = Σ steps/(2σ²) exactly", () => {
    const l = lab({ rho: 1000 });
    const r = trainModel(l, request({ epochs: 2, sampleRate: 0.05, noiseMultiplier: 2, metricsNoise: 10 }));
    // 2 epochs × 20 steps / (2·4) + 2 / (2·100) = 5 + 0.01
    expect(r.privacy.charged).toBe("ρ = 5.01");
  });

  it("refuses before anything happens: over budget, pure-ε room, purpose, bad rows, tampered enclave", () => {
    const l = lab({ epsilon: 1, delta: "1e-5" });
    const before = spent(l);
    expect(codeOf(() => trainModel(l, request()))).toBe("BUDGET_EXCEEDED");
    expect(codeOf(() => trainModel(l, request({ purpose: "marketing" as never })))).toMatch(/PURPOSE_DENIED|PURPOSE_UNKNOWN/);
    const bad = study.retailer.map((r, i) => (i === 7 ? { ...r, converted: 2 } : r));
    const owners = request().owners;
    expect(codeOf(() => trainModel(l, request({ owners: [owners[0]!, { ...owners[1]!, rows: bad as never }] })))).toBe("DATASET_INVALID");
    expect(codeOf(() => trainModel(l, request({ tamper: "code" })))).toMatch(/ATTESTATION|KEY_RELEASE/);
    expect(codeOf(() => trainModel(l, request({ tamper: "debug" })))).toMatch(/ATTESTATION|KEY_RELEASE/);
    expect(codeOf(() => trainModel(l, request({ features: [{ name: "nope", lo: 0, hi: 1 }] })))).toBe("NOT_FOUND");
    expect(codeOf(() => trainModel(l, { ...request(), extra: 1 } as never))).toBe("INPUT_INVALID");
    expect(codeOf(() => trainModel(l, request({ noiseMultiplier: Number.NaN })))).toBe("INPUT_INVALID");
    expect(codeOf(() => trainModel(l, request({ features: [{ name: "age", lo: 5, hi: 5 }] })))).toBe("INPUT_INVALID");
    for (const notLab of [undefined, {}, new Proxy({}, {})])
      expect(codeOf(() => trainModel(notLab as never, request()))).toBe("INPUT_INVALID");
    expect(spent(l)).toBe(before);
    const pure = lab({ epsilon: 5 }, "pure");
    const pureBefore = spent(pure);
    expect(codeOf(() => trainModel(pure, request()))).toBe("DP_PARAM_INVALID");
    expect(spent(pure)).toBe(pureBefore);
  });
});
