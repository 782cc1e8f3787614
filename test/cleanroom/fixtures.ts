/** Shared fixtures for the clean-room tests: a small seeded lift study room. */
import Database from "better-sqlite3";
import * as aq from "arquero";
import { seededRng, type Rng } from "../../kernel-lib/src/rng.js";
import { DatasetCatalog } from "../../kernel-lib/src/cleanroom/dataset.js";
import { TemplateRegistry } from "../../kernel-lib/src/cleanroom/approvals.js";
import { DifferenceHistory } from "../../kernel-lib/src/cleanroom/diffcheck.js";
import { roomContext } from "../../kernel-lib/src/cleanroom/query.js";
import { liftRules, liftSchemas } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import type { AnalysisRule } from "../../kernel-lib/src/cleanroom/rules.js";

export const REGIONS = ["north", "south", "east", "west"];
export const AGES = ["18-24", "25-34", "35-44", "45-54", "55+"];
export const CHANNELS = ["search", "social", "video", "display"];

/** Seeded exposures (one row per user) and purchases (0..6 per user, some unmatched). */
export function studyTables(rng: Rng, users: number, opts: { lift?: number; extraPurchasers?: number } = {}) {
  const lift = opts.lift ?? 0.3;
  const ex = {
    join_key: [] as string[],
    group: [] as string[],
    reached: [] as number[],
    impressions: [] as number[],
    first_exposure_day: [] as number[],
    region: [] as string[],
    age_band: [] as string[],
    channel: [] as string[],
  };
  const pu = {
    join_key: [] as string[],
    purchase_day: [] as number[],
    value_cents: [] as number[],
    store_region: [] as string[],
    category: [] as string[],
  };
  for (let i = 0; i < users; i++) {
    const key = `k${i}`;
    const test = rng.int(2) === 0;
    const reached = test && rng.int(10) < 8 ? 1 : 0;
    ex.join_key.push(key);
    ex.group.push(test ? "test" : "control");
    ex.reached.push(reached);
    ex.impressions.push(reached ? 1 + rng.int(20) : 0);
    ex.first_exposure_day.push(reached ? rng.int(14) : -1);
    ex.region.push(REGIONS[rng.int(4)]!);
    ex.age_band.push(AGES[rng.int(5)]!);
    ex.channel.push(CHANNELS[rng.int(4)]!);
    const p = reached ? 0.2 * (1 + lift) : 0.2;
    if (rng.int(1000) < p * 1000) {
      const n = 1 + rng.int(6);
      for (let j = 0; j < n; j++) {
        pu.join_key.push(key);
        pu.purchase_day.push(rng.int(40) - 5);
        pu.value_cents.push(100 + rng.int(60_000));
        pu.store_region.push(REGIONS[rng.int(4)]!);
        pu.category.push(["food", "home", "toys"][rng.int(3)]!);
      }
    }
  }
  for (let i = 0; i < (opts.extraPurchasers ?? 10); i++) {
    pu.join_key.push(`x${i}`);
    pu.purchase_day.push(rng.int(30));
    pu.value_cents.push(100 + rng.int(1000));
    pu.store_region.push("north");
    pu.category.push("food");
  }
  return { exposures: aq.table(ex), purchases: aq.table(pu) };
}

/** A room with both parties' datasets, AWS-shaped rules, approvals and diff history. */
export function makeRoom(opts: { users?: number; seed?: string; minimum?: number } = {}) {
  const rng = seededRng(opts.seed ?? "cleanroom-fixture");
  const t = studyTables(rng.fork("data"), opts.users ?? 2000);
  const catalog = new DatasetCatalog();
  const schemas = liftSchemas();
  catalog.upload("exposures", "adv", t.exposures, schemas.exposures);
  catalog.upload("purchases", "shop", t.purchases, schemas.purchases);
  const lr = liftRules(opts.minimum ?? 20);
  const rules = new Map<string, AnalysisRule>([
    ["adv/exposures", lr.exposures],
    ["shop/purchases", lr.purchases],
  ]);
  const db = new Database(":memory:");
  const registry = new TemplateRegistry(db, "room-1");
  const history = new DifferenceHistory(db, "room-1");
  const ctx = roomContext(catalog, rules);
  const snapshot = () => ({ datasets: catalog.snapshot(), approvals: registry.snapshot(), history: history.size() });
  return { rng, raw: t, catalog, rules, db, registry, history, ctx, snapshot };
}
