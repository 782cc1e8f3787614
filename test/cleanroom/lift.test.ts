import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import * as aq from "arquero";
import { DatasetCatalog } from "../../kernel-lib/src/cleanroom/dataset.js";
import { TemplateRegistry } from "../../kernel-lib/src/cleanroom/approvals.js";
import { executeQuery, prepareQuery, roomContext } from "../../kernel-lib/src/cleanroom/query.js";
import { ArqueroEngine } from "../../kernel-lib/src/cleanroom/engine.js";
import { DuckDbEngine } from "../../kernel-lib/src/cleanroom/duckdb.js";
import { liftRules, liftSchemas, liftTemplate, toLiftAggregates } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

/** 3 test users, 3 control users; hand-computed fbpcs aggregates. */
function tinyRoom() {
  const exposures = aq.table({
    join_key: ["t1", "t2", "t3", "c1", "c2", "c3"],
    group: ["test", "test", "test", "control", "control", "control"],
    reached: [1, 1, 0, 0, 0, 0],
    impressions: [3, 1, 0, 0, 0, 0],
    first_exposure_day: [0, 2, -1, -1, -1, -1],
    region: ["north", "north", "south", "north", "south", "south"],
    age_band: ["18-24", "25-34", "35-44", "18-24", "25-34", "35-44"],
    channel: ["search", "social", "video", "search", "social", "video"],
  });
  // t1: 6 purchases in window (capped to the first 4 by day), t2: one before the window, one in;
  // c1: one in window worth 250000 (clamped to 100000); c2: one worth 70 (each arm needs
  // 2 purchasers: the retailer's threshold counts them too); "zz": not in exposures (never joined).
  const purchases = aq.table({
    join_key: ["t1", "t1", "t1", "t1", "t1", "t1", "t2", "t2", "c1", "c2", "zz"],
    purchase_day: [1, 2, 3, 4, 5, 6, -3, 8, 9, 10, 1],
    value_cents: [100, 200, 300, 400, 500, 600, 999, 50, 250000, 70, 7],
    store_region: ["north", "north", "north", "north", "north", "north", "south", "south", "north", "south", "east"],
    category: ["a", "a", "a", "a", "a", "a", "b", "b", "c", "c", "d"],
  });
  const catalog = new DatasetCatalog();
  const s = liftSchemas();
  catalog.upload("exposures", "adv", exposures, s.exposures);
  catalog.upload("purchases", "shop", purchases, s.purchases);
  const r = liftRules(2);
  const ctx = roomContext(
    catalog,
    new Map([
      ["adv/exposures", r.exposures],
      ["shop/purchases", r.purchases],
    ]),
  );
  const registry = new TemplateRegistry(new Database(":memory:"), "lift");
  return { ctx, registry };
}

describe("lift template (fbpcs LiftMetrics names)", () => {
  it("computes population, conversions capped at 4, converters, clamped value and valueSquared per group on both engines", async () => {
    const { ctx, registry } = tinyRoom();
    const t = liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 2, numConvSquared: true });
    registry.approve(t, "adv", ctx);
    registry.approve(t, "shop", ctx);
    for (const engine of [new ArqueroEngine(), new DuckDbEngine()]) {
      const res = await executeQuery(prepareQuery({ template: t, params: { startDay: 0, endDay: 27 }, registry, ctx }), {
        engine,
        rng: seededRng("lift"),
      });
      const [m] = toLiftAggregates(res);
      const t1 = 100 + 200 + 300 + 400;
      expect(m).toMatchObject({
        cohort: "overall",
        testPopulation: 3,
        controlPopulation: 3,
        testConversions: 5, // t1: 4 (cap), t2: 1
        controlConversions: 2,
        testConverters: 2,
        controlConverters: 2,
        testValue: t1 + 50,
        controlValue: 100000 + 70,
        testValueSquared: t1 * t1 + 50 * 50,
        controlValueSquared: 100000 * 100000 + 70 * 70,
        testNumConvSquared: 4 * 4 + 1,
        controlNumConvSquared: 1 + 1,
        suppressed: false,
      });
      expect(m!.noiseVariance.value).toBe(0);
    }
  });

  it("flags cohorts under the threshold and passes noise variances through", async () => {
    const { ctx, registry } = tinyRoom();
    const t = liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 2, breakdown: "region", epsilonPerAggregate: "1" });
    registry.approve(t, "adv", ctx);
    registry.approve(t, "shop", ctx);
    const res = await executeQuery(prepareQuery({ template: t, params: { startDay: 0, endDay: 27 }, registry, ctx }), {
      engine: new ArqueroEngine(),
      rng: seededRng("x"),
    });
    const ms = toLiftAggregates(res);
    // noise on: the cohorts are the declared regions, not the ones the data happens to have
    // (the data has only north and south; listing just those revealed who is in the room)
    expect(ms.map((m) => m.cohort).sort()).toEqual(["east", "north", "south", "west"]);
    expect(ms.some((m) => m.suppressed)).toBe(true);
    for (const m of ms) {
      expect(m.noiseVariance.population).toBeGreaterThan(1);
      expect(m.noiseVariance.conversions).toBeGreaterThan(m.noiseVariance.population);
    }
  });

  it("reads a released value beyond 2^53 (a decimal string) as its number, not as missing", () => {
    const row = (group: string, vs: string | number) => ({
      group,
      population: 300,
      conversions: 90,
      converters: 80,
      value: 4_000_000,
      valueSquared: vs,
      numConvSquared: 200,
    });
    const res = {
      dimensions: ["group"],
      rows: [row("test", "10000000000000199"), row("control", 7)],
      suppressed: { rows: [] },
      noise: null,
    } as unknown as Parameters<typeof toLiftAggregates>[0];
    const [m] = toLiftAggregates(res);
    expect(m!.testValueSquared).toBe(Number(10n ** 16n + 199n));
    expect(m!.controlValueSquared).toBe(7);
    expect(m!.suppressed).toBe(false);
  });
});
