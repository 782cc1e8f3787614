/**
 * Acceptance of issue 16: export → validate → execute on DuckDB → compare, for ≥ 200 seeded
 * generated templates and the templates the notebooks approve, on all three targets; and the
 * AWS round trip (AWS JSON → lab → AWS JSON) is stable for every one of them.
 */
import { afterAll, describe, expect, it } from "vitest";
import * as aq from "arquero";
import { seededRng, type Rng } from "../../kernel-lib/src/rng.js";
import { DatasetCatalog } from "../../kernel-lib/src/cleanroom/dataset.js";
import { roomContext } from "../../kernel-lib/src/cleanroom/query.js";
import { checkTemplate, type PlanContext } from "../../kernel-lib/src/cleanroom/plan.js";
import {
  parseTemplate,
  validateParams,
  type ParamValues,
  type ParsedTemplate,
  type TemplateInput,
} from "../../kernel-lib/src/cleanroom/template.js";
import { parseAnalysisRule, type AnalysisRule, type AnalysisRuleAggregation } from "../../kernel-lib/src/cleanroom/rules.js";
import type { Table } from "../../kernel-lib/src/cleanroom/dataset.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { adhImpressions, attackPopulation, cohortTemplate } from "../../kernel-lib/src/labs/attacks-lab.js";
import { TARGETS } from "../../kernel-lib/src/export/sql.js";
import { exportTemplate, type ExportInputs } from "../../kernel-lib/src/export/targets.js";
import { ExportRunner, proveEquivalent } from "../../kernel-lib/src/export/prove.js";
import { importAws } from "../../kernel-lib/src/export/import-aws.js";
import type { AwsExport } from "../../kernel-lib/src/export/schemas.js";
import { makeRoom } from "../cleanroom/fixtures.js";

const runner = new ExportRunner();
afterAll(() => runner.close());

const REG = ["n", "s", "e", "w"];
const TIER = ["a", "b", "c"];
const CAT = ["food", "toys", "home"];

/** A seeded two-party room: people (one row per pid) and buys (0..5 per pid, some strangers). */
function genRoom(rng: Rng, people: number) {
  const p = { pid: [] as string[], region: [] as string[], tier: [] as string[], age: [] as number[], score: [] as number[] };
  const b = { pid: [] as string[], day: [] as number[], value: [] as number[], cat: [] as string[] };
  for (let i = 0; i < people; i++) {
    p.pid.push(`p${i}`);
    p.region.push(REG[rng.int(4)]!);
    p.tier.push(TIER[rng.int(3)]!);
    p.age.push(rng.int(5));
    p.score.push(rng.int(26) - 5);
    const n = rng.int(6);
    for (let j = 0; j < n; j++) {
      b.pid.push(`p${i}`);
      b.day.push(rng.int(34) - 3);
      b.value.push(rng.int(501));
      b.cat.push(CAT[rng.int(3)]!);
    }
  }
  for (let i = 0; i < 5; i++) {
    b.pid.push(`x${i}`);
    b.day.push(rng.int(30));
    b.value.push(rng.int(500));
    b.cat.push("food");
  }
  const catalog = new DatasetCatalog();
  catalog.upload("people", "adv", aq.table(p), {
    privacyUnit: "pid",
    columns: {
      pid: { type: "string" },
      region: { type: "enum", values: REG },
      tier: { type: "enum", values: TIER },
      age: { type: "int", min: 0, max: 4 },
      score: { type: "int", min: -5, max: 20 },
    },
  });
  catalog.upload("buys", "shop", aq.table(b), {
    privacyUnit: "pid",
    columns: {
      pid: { type: "string" },
      day: { type: "int", min: -3, max: 30 },
      value: { type: "int", min: 0, max: 500 },
      cat: { type: "enum", values: CAT },
    },
  });
  const rule = (aggs: string[], dims: string[], minimum: number): AnalysisRuleAggregation => ({
    type: "AGGREGATION",
    aggregateColumns: [
      { columnNames: aggs, function: "SUM" },
      { columnNames: aggs, function: "AVG" },
    ],
    dimensionColumns: dims,
    joinColumns: ["pid"],
    joinRequired: false,
    allowedJoinOperators: ["AND"],
    outputConstraints: [{ columnName: "pid", minimum, type: "COUNT_DISTINCT" }],
  });
  const rules = new Map<string, AnalysisRule>([
    ["adv/people", rule(["score"], ["region", "tier", "age"], 2 + rng.int(4))],
    ["shop/buys", rule(["value"], ["day", "cat"], 2 + rng.int(4))],
  ]);
  return { catalog, rules, ctx: roomContext(catalog, rules) };
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[rng.int(xs.length)]!;

/** One random template over genRoom's schema, with parameter values it accepts. */
function genTemplate(rng: Rng, i: number): { input: TemplateInput; params: ParamValues } {
  const join = rng.int(3) > 0;
  const single = join ? "people" : pick(rng, ["people", "buys"]);
  const noised = rng.int(3) === 0;
  const base = join || single === "people" ? { owner: "adv", dataset: "people" } : { owner: "shop", dataset: "buys" };
  const b = base.dataset;
  const m = join ? "buys" : b; // the measured table
  const params: TemplateInput["params"] = {};
  const values: ParamValues = {};
  const filters: NonNullable<TemplateInput["filters"]> = [];
  const nf = rng.int(4);
  for (let k = 0; k < nf; k++) {
    const kind = rng.int(6);
    const pname = `p${k}`;
    if (kind === 0 && (b === "people" || join)) {
      params[pname] = { type: "enumList", values: REG, ...(rng.int(2) ? { maxItems: 3 } : {}) };
      const n = 1 + rng.int(3);
      values[pname] = [...REG].sort(() => rng.int(3) - 1).slice(0, n);
      filters.push({ column: "people.region", op: "in", value: { param: pname } });
    } else if (kind === 1 && (b === "people" || join)) {
      params[pname] = { type: "enum", values: TIER };
      values[pname] = pick(rng, TIER);
      filters.push({ column: "people.tier", op: pick(rng, ["eq", "ne"] as const), value: { param: pname } });
    } else if (kind === 2 && m === "buys") {
      params[pname] = { type: "int", min: -3, max: 30 };
      values[pname] = rng.int(34) - 3;
      filters.push({ column: "buys.day", op: pick(rng, ["lt", "le", "gt", "ge", "eq", "ne"] as const), value: { param: pname } });
    } else if (kind === 3 && m === "buys") {
      filters.push({
        column: "buys.cat",
        op: "in",
        value: { literal: [pick(rng, CAT), pick(rng, ["toys", "home"])].filter((v, j, a) => a.indexOf(v) === j) },
      });
    } else if (kind === 4 && join) {
      filters.push({ column: "buys.day", op: pick(rng, ["ge", "le"] as const), value: { column: "people.age" } });
    } else if (b === "people" || join) {
      filters.push({ column: "people.score", op: pick(rng, ["ge", "lt"] as const), value: { literal: rng.int(20) - 5 } });
    }
  }
  const dimsOf = b === "people" ? ["people.region", "people.tier", "people.age"] : ["buys.cat", "buys.day"];
  const groupBy = dimsOf.filter(() => rng.int(3) === 0).slice(0, 2);
  const cap = rng.int(2) ? 1 + rng.int(4) : undefined;
  const aggregates: TemplateInput["aggregates"] = [{ name: "units_n", fn: "countUnits" }];
  const col = m === "buys" ? "buys.value" : "people.score";
  const lo = m === "buys" ? rng.int(50) : -5 + rng.int(5);
  const hi = lo + 1 + rng.int(m === "buys" ? 900 : 30);
  const fns = ["countUnitsWithRows", "count", "countSquares", "sum", "sumSquares", "avg"] as const;
  for (const fn of fns)
    if (rng.int(2)) {
      if (fn === "sum" || fn === "sumSquares" || fn === "avg") aggregates.push({ name: `a_${fn}`, fn, column: col, bounds: [lo, hi] });
      else aggregates.push({ name: `a_${fn}`, fn });
    }
  if (join && rng.int(3) === 0) aggregates.push({ name: "base_score", fn: "sum", column: "people.score", bounds: [-2, 9] });
  const style = pick(rng, ["drop", "drop", "remainder", "error"] as const);
  const input: TemplateInput = {
    version: 1,
    name: `generated ${i}`,
    base,
    ...(join ? { events: { owner: "shop", dataset: "buys", joinOn: "pid", join: pick(rng, ["left", "inner"] as const) } } : {}),
    params,
    filters,
    groupBy,
    ...(cap
      ? { contribution: { maxRowsPerUnit: cap, orderBy: m === "buys" ? pick(rng, [[], ["buys.day"], ["buys.value", "buys.day"]]) : [] } }
      : {}),
    aggregates,
    threshold: { minimum: 2 + rng.int(9), style },
    ...(noised
      ? { noise: rng.int(2) ? { mechanism: "laplace", epsilonPerAggregate: "0.25" } : { mechanism: "gaussian", rhoPerAggregate: "0.01" } }
      : {}),
  };
  return { input, params: values };
}

function inputsFor(t: ParsedTemplate, ctx: PlanContext, budget?: ExportInputs["budget"]): ExportInputs {
  const checked = checkTemplate(t, ctx);
  const rules: Record<string, AnalysisRuleAggregation> = {};
  for (const i of [t.base, ...(t.events ? [t.events] : [])]) {
    const r = ctx.rule(i.owner, i.dataset);
    if (r?.type === "AGGREGATION") rules[`${i.owner}/${i.dataset}`] = r;
  }
  return {
    unit: ctx.dataset(t.base.owner, t.base.dataset).schema.privacyUnit,
    minimum: checked.minimum,
    minimumFrom: checked.minimumFrom,
    rules,
    ...(budget ? { budget } : {}),
  };
}

const tablesOf = (t: ParsedTemplate, ctx: PlanContext): Record<string, Table> =>
  Object.fromEntries(
    [t.base, ...(t.events ? [t.events] : [])].map((i) => [`${i.owner}/${i.dataset}`, ctx.dataset(i.owner, i.dataset).table]),
  );

/** Export to every target, prove each on DuckDB, round-trip AWS; returns released/suppressed counts. */
async function checkAll(t: ParsedTemplate, params: ParamValues, ctx: PlanContext, budget?: ExportInputs["budget"]) {
  const x = inputsFor(t, ctx, budget);
  const checked = checkTemplate(t, ctx);
  const tables = tablesOf(t, ctx);
  let rows = 0;
  let suppressed = 0;
  for (const target of TARGETS) {
    const ex = exportTemplate(t, target, x); // validated against the target's schema inside
    const eq = await proveEquivalent(runner, ex.sql, t, validateParams(t, params), ctx, checked, tables);
    expect(eq.difference, `${t.name} on ${target}`).toBeNull();
    rows = eq.lab.rows.length;
    suppressed = eq.lab.suppressed.length;
    if (target === "aws") {
      const json = JSON.parse(JSON.stringify(ex.artefacts)) as AwsExport;
      const back = importAws(json);
      expect(back.template!.hash).toBe(t.hash);
      const again = exportTemplate(back.template!, "aws", back.exportInputs!);
      expect(JSON.parse(JSON.stringify(again.artefacts))).toEqual(json);
    }
  }
  return { rows, suppressed };
}

describe("export → validate → DuckDB → compare", () => {
  it("property: 200+ seeded generated templates, all three targets, same rows and suppressed groups as the lab", async () => {
    const rng = seededRng("export-equivalence-2026-12");
    const rooms = [genRoom(rng.fork("r0"), 40), genRoom(rng.fork("r1"), 90), genRoom(rng.fork("r2"), 160)];
    let accepted = 0;
    let refused = 0;
    let released = 0;
    let suppressed = 0;
    const kinds = new Set<string>();
    for (let i = 0; accepted < 210; i++) {
      const { input, params } = genTemplate(rng, i);
      const room = rooms[i % rooms.length]!;
      let t: ParsedTemplate;
      try {
        t = parseTemplate(input);
        checkTemplate(t, room.ctx);
      } catch {
        refused++; // e.g. a noised template grouping by a column without a declared domain
        continue;
      }
      accepted++;
      const r = await checkAll(t, params, room.ctx, t.noise ? { epsilon: 3 } : undefined);
      released += r.rows;
      suppressed += r.suppressed;
      kinds.add(`${t.events ? "join" : "single"}/${t.noise ? "noise" : "exact"}/${t.contribution ? "cap" : "nocap"}`);
    }
    // not vacuous: both outcomes, every shape
    expect(released).toBeGreaterThan(200);
    expect(suppressed).toBeGreaterThan(50);
    expect(kinds.size).toBe(8);
    expect(refused).toBeLessThan(accepted);
  }, 240_000);

  it("every template the notebooks approve (lift variants of 00/02/03/04/07, 07's spend templates, 05's cohorts and ADH jobs)", async () => {
    const room = makeRoom({ users: 1500, minimum: 20 });
    const lift = (o: Partial<Parameters<typeof liftTemplate>[0]>) =>
      parseTemplate(liftTemplate({ advertiser: "adv", retailer: "shop", ...o }));
    const templates = [
      lift({ epsilonPerAggregate: "0.5" }), // 00
      lift({ epsilonPerAggregate: "0.2", valueCap: 30000, dayRange: [0, 27] }), // 02
      lift({ epsilonPerAggregate: "0.1", valueCap: 30000, dayRange: [0, 27], breakdown: "region" }), // 02 breakdown
      lift({ epsilonPerAggregate: "0.5", threshold: 50 }), // 03
      lift({ threshold: 100 }), // 04 exact
      lift({ epsilonPerAggregate: "0.5", threshold: 100 }), // 04 noised
      lift({ threshold: 20, breakdown: "age_band" }),
    ];
    for (const t of templates) {
      const r = await checkAll(t, { startDay: 0, endDay: 27 }, room.ctx, { epsilon: 10 });
      expect(r.rows).toBeGreaterThan(0);
    }
    // 07's differencing room: spendTemplate(extra) as the notebook writes it, three defences
    const spend = (extra: object) =>
      parseTemplate({
        version: 1,
        name: "spend by exposure cap",
        base: { owner: "adv", dataset: "exposures" },
        events: { owner: "shop", dataset: "purchases", joinOn: "join_key", join: "left" },
        params: { maxImpressions: { type: "int", min: 0, max: 1000 } },
        filters: [
          { column: "exposures.impressions", op: "le", value: { param: "maxImpressions" } },
          { column: "purchases.purchase_day", op: "ge", value: { literal: 0 } },
          { column: "purchases.purchase_day", op: "le", value: { literal: 27 } },
        ],
        aggregates: [
          { name: "population", fn: "countUnits" },
          { name: "converters", fn: "countUnitsWithRows" },
          { name: "spend", fn: "sum", column: "purchases.value_cents", bounds: [0, 100000] },
        ],
        threshold: { minimum: 50, style: "drop" },
        ...extra,
      });
    for (const extra of [{}, { differenceCheck: { k: 50 } }, { noise: { mechanism: "laplace", epsilonPerAggregate: "0.1" } }])
      for (const maxImpressions of [20, 19, 3]) await checkAll(spend(extra), { maxImpressions }, room.ctx, { epsilon: 3 });
    // 05's ADH differencing jobs
    const adh = adhImpressions(seededRng("attack-lab/adh-data"));
    const adhCatalog = new DatasetCatalog();
    adhCatalog.upload("impressions", "publisher", aq.from(adh.rows), { ...adh.schema, privacyUnit: "join_key" });
    const adhCtx = roomContext(adhCatalog, new Map([["publisher/impressions", parseAnalysisRule(adh.rule)]]));
    for (const differenceCheck of [undefined, 50])
      for (const maxDay of [1, 2]) {
        const t = parseTemplate(adh.template({ owner: "publisher", ...(differenceCheck ? { differenceCheck } : {}) }));
        const r = await checkAll(t, { maxDay }, adhCtx);
        expect(r.rows).toBeGreaterThan(0);
      }
    const pop = attackPopulation({ rng: seededRng("export-attack-lab"), people: 800 });
    const catalog = new DatasetCatalog();
    catalog.upload("customers", "retailer", aq.from(pop.rows), { ...pop.schema, privacyUnit: "join_key" });
    const ctx = roomContext(catalog, new Map([["retailer/customers", parseAnalysisRule(pop.rule)]]));
    for (const o of [{}, { differenceCheck: 50 }, { epsilonPerAggregate: "0.5" }]) {
      const t = parseTemplate(cohortTemplate({ owner: "retailer", ...o }));
      for (const params of [
        { regions: ["north"], minAge: 18, maxAge: 99 },
        { regions: ["north"], minAge: 61, maxAge: 99 }, // the target alone: suppressed
        { regions: ["south", "east", "west"], minAge: 30, maxAge: 60 },
      ])
        await checkAll(t, params, ctx, { epsilon: 5 });
    }
  }, 120_000);
});

describe("the proof can fail", () => {
  it("catches a forgotten events-side minimum, no threshold, a clamp bound, a dropped filter, a row cap (positive controls)", async () => {
    const room = makeRoom({ users: 1200, minimum: 20 });
    const t = parseTemplate(
      liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20, breakdown: "age_band", dayRange: [0, 27], valueCap: 30000 }),
    );
    const x = inputsFor(t, room.ctx);
    const checked = checkTemplate(t, room.ctx);
    const params = { startDay: 0, endDay: 27 };
    const tables = tablesOf(t, room.ctx);
    const ex = exportTemplate(t, "aws", x).sql;
    const good = await proveEquivalent(runner, ex, t, params, room.ctx, checked, tables);
    expect(good.equal).toBe(true);
    expect(good.lab.suppressed.length).toBeGreaterThan(0);
    expect(good.lab.rows.length).toBeGreaterThan(0);
    const mutants = [
      ex.sql.replace(/ AND crl_m\d+ >= \d+$/, ""), // the events side's own minimum forgotten
      ex.sql.replace(/WHERE crl_units >= \d+( AND crl_m\d+ >= \d+)?$/, "WHERE crl_units >= 1"), // no threshold at all
      ex.sql.replace("CAST(30000 AS DECIMAL(38,0))", "CAST(29999 AS DECIMAL(38,0))"),
      ex.sql.replace("e.`purchase_day` >= :startDay AND ", ""),
      ex.sql.replace("WHERE crl_rn <= 4", "WHERE crl_rn <= 5"),
    ];
    for (const [i, sql] of mutants.entries()) {
      expect(sql, `mutant ${i}`).not.toBe(ex.sql);
      const eq = await proveEquivalent(runner, { ...ex, sql }, t, params, room.ctx, checked, tables);
      expect(eq.equal, `mutant ${i}`).toBe(false);
      expect(eq.difference).toMatch(/differ|released/);
    }
  });
});

describe("the exported SQL is the control: parameter guards", () => {
  it("a value outside the template's range releases nothing on any target (the lab refuses it)", async () => {
    const room = makeRoom({ users: 400 });
    const t = parseTemplate(liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20, dayRange: [0, 27] }));
    const x = inputsFor(t, room.ctx);
    expect(() => validateParams(t, { startDay: -50, endDay: 27 })).toThrow(/PARAM_INVALID/);
    for (const target of TARGETS) {
      const ex = exportTemplate(t, target, x);
      const out = await runner.run(ex.sql, { startDay: -50, endDay: 27 }, tablesOf(t, room.ctx), []);
      expect(out.rows).toEqual([]);
      // positive control: in range, the same SQL releases rows
      const ok = await runner.run(ex.sql, { startDay: 0, endDay: 27 }, tablesOf(t, room.ctx), []);
      expect(ok.rows.length).toBeGreaterThan(0);
    }
  });
});
