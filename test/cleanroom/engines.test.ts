import { afterAll, describe, expect, it } from "vitest";
import fc from "fast-check";
import * as aq from "arquero";
import { ArqueroEngine } from "../../kernel-lib/src/cleanroom/engine.js";
import { DuckDbEngine, compileSql, planColumns } from "../../kernel-lib/src/cleanroom/duckdb.js";
import type { Plan, PlanFilter, Measure } from "../../kernel-lib/src/cleanroom/plan.js";
import { prepareQuery } from "../../kernel-lib/src/cleanroom/query.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { makeRoom } from "./fixtures.js";

const duck = new DuckDbEngine();
const arq = new ArqueroEngine();
afterAll(() => duck.close());

describe("engines: arquero and DuckDB give identical exact answers", () => {
  it("agrees on the lift template with and without breakdown", async () => {
    const room = makeRoom({ users: 3000 });
    for (const breakdown of [undefined, "age_band", "channel"] as const) {
      const t = liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20, ...(breakdown ? { breakdown } : {}) });
      room.registry.approve(t, "adv", room.ctx);
      room.registry.approve(t, "shop", room.ctx);
      const prep = prepareQuery({ template: t, params: { startDay: 0, endDay: 27 }, registry: room.registry, ctx: room.ctx });
      const a = await arq.execute(prep.plan, prep.tables);
      const d = await duck.execute(prep.plan, prep.tables);
      expect(d).toEqual(a);
      expect(a.groups.length).toBeGreaterThan(1);
      expect(a.groups.reduce((s, g) => s + g.units, 0)).toBe(3000);
    }
  });

  it("loads only the columns the plan reads into DuckDB (data minimisation)", async () => {
    const room = makeRoom({ users: 50 });
    const t = liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20, breakdown: "region" });
    room.registry.approve(t, "adv", room.ctx);
    room.registry.approve(t, "shop", room.ctx);
    const prep = prepareQuery({ template: t, params: { startDay: 0, endDay: 27 }, registry: room.registry, ctx: room.ctx });
    expect(planColumns(prep.plan)).toEqual({ base: ["group", "join_key", "region"], events: ["join_key", "purchase_day", "value_cents"] });
  });

  it("binds every user value as a SQL parameter, never as text", () => {
    const plan: Plan = {
      base: { table: "a/t", unit: "u" },
      filters: [
        { side: "base", column: "s", op: "eq", value: "x'); DROP TABLE t; --" },
        { side: "base", column: "s", op: "in", value: ["p", "q"] },
        { side: "base", column: "n", op: "ge", value: 3 },
      ],
      groupBy: [],
      measures: [],
      withUnits: false,
    };
    const c = compileSql(plan, { "a/t": "t0" });
    expect(c.sql).not.toContain("DROP");
    expect(c.sql).not.toContain("'p'");
    expect(c.values).toEqual(["x'); DROP TABLE t; --", "p", "q", 3]);
  });

  it("refuses a join whose base has several rows per unit, on both engines", async () => {
    const tables = { "a/b": aq.table({ u: ["k1", "k1"], g: ["x", "y"] }), "b/e": aq.table({ k: ["k1"], v: [1] }) };
    const plan: Plan = {
      base: { table: "a/b", unit: "u" },
      events: { table: "b/e", joinOn: "k", join: "left" },
      filters: [],
      groupBy: [],
      measures: [],
      withUnits: false,
    };
    await expect(arq.execute(plan, tables)).rejects.toThrow(/DATASET_INVALID/);
    await expect(duck.execute(plan, tables)).rejects.toThrow(/DATASET_INVALID/);
  });

  it("joins correctly when units repeat in the base table but not after its filters", async () => {
    const tables = {
      "a/b": aq.table({ u: ["k1", "k1", "k2"], g: ["x", "y", "x"] }),
      "b/e": aq.table({ k: ["k1", "k2", "k2"], v: Float64Array.from([5, 1, 2]) }),
    };
    const plan: Plan = {
      base: { table: "a/b", unit: "u" },
      events: { table: "b/e", joinOn: "k", join: "left" },
      filters: [{ side: "base", column: "g", op: "eq", value: "x" }],
      groupBy: [],
      measures: [{ name: "s", kind: "sum", column: { side: "events", column: "v" }, lo: 0, hi: 100 }],
      withUnits: false,
    };
    const expected = { dimensions: [], measures: ["s"], groups: [{ key: [], units: 2, values: { s: 8n } }] };
    expect(await arq.execute(plan, tables)).toEqual(expected);
    expect(await duck.execute(plan, tables)).toEqual(expected);
  });

  it("a unit's running sum that leaves 2^53 and comes back is still exact before clamping (S + 2 − S = 2, not the double's 1)", async () => {
    const S = Number.MAX_SAFE_INTEGER;
    const measures: Measure[] = [
      { name: "s", kind: "sum", column: { side: "base", column: "v" }, lo: -10, hi: 10 },
      { name: "sq", kind: "sumSquares", column: { side: "base", column: "v" }, lo: -10, hi: 10 },
    ];
    const single = aq.table({ u: ["a", "a", "a", "b"], v: Float64Array.from([S, 2, -S, 5]) });
    const plan: Plan = { base: { table: "a/t", unit: "u" }, filters: [], groupBy: [], measures, withUnits: false };
    const people = aq.table({ u: ["a", "b"] });
    const events = aq.table({ k: ["a", "a", "a", "b"], v: Float64Array.from([S, 2, -S, 5]) });
    const joined: Plan = {
      ...plan,
      base: { table: "a/p", unit: "u" },
      events: { table: "b/e", joinOn: "k", join: "left" },
      measures: measures.map((m) => ({ ...m, column: { side: "events", column: "v" } })),
    };
    const expected = { dimensions: [], measures: ["s", "sq"], groups: [{ key: [], units: 2, values: { s: 7n, sq: 29n } }] };
    for (const [pl, tables] of [
      [plan, { "a/t": single }],
      [joined, { "a/p": people, "b/e": events }],
    ] as const) {
      expect(await arq.execute(pl, tables)).toEqual(expected);
      expect(await duck.execute(pl, tables)).toEqual(expected);
    }
  });

  it("property: random small tables and plans give identical exact aggregates (incl. unit ids), exact far beyond 2^53", async () => {
    // nb/vb = K·n, K·v with K = 2^46 + 1: safe integers whose sums and squares leave 2^53 (and
    // keep odd low bits a double would drop); clamping commutes with ×K, so every big measure
    // must equal exactly K (K² for squares) times its small twin, in both engines
    const K = 2 ** 46 + 1;
    const KB = BigInt(K);
    const dimVals = ["a", "b", "c"];
    const arbRow = fc.record({
      u: fc.integer({ min: 0, max: 11 }),
      d1: fc.constantFrom(...dimVals),
      d2: fc.constantFrom("x", "y"),
      n: fc.integer({ min: -5, max: 20 }),
    });
    const arbEvent = fc.record({
      k: fc.integer({ min: 0, max: 14 }),
      day: fc.integer({ min: -3, max: 10 }),
      v: fc.integer({ min: 0, max: 50 }),
      c: fc.constantFrom("p", "q"),
    });
    const arbFilter = fc.constantFrom<((join: boolean) => PlanFilter | null)[]>(
      () => null,
      () => ({ side: "base", column: "d1", op: "ne", value: "c" }),
      () => ({ side: "base", column: "n", op: "ge", value: 0 }),
      () => ({ side: "base", column: "d2", op: "in", value: ["x"] }),
      (j) => (j ? { side: "events", column: "day", op: "le", value: 6 } : null),
      (j) => (j ? { side: "events", column: "c", op: "eq", value: "p" } : null),
      (j) => (j ? { side: "events", column: "day", op: "ge", other: { side: "base", column: "n" } } : null),
    );
    const arbCase = fc.record({
      join: fc.boolean(),
      inner: fc.boolean(),
      rows: fc.array(arbRow, { minLength: 0, maxLength: 25 }),
      events: fc.array(arbEvent, { minLength: 0, maxLength: 40 }),
      filters: fc.array(arbFilter, { maxLength: 3 }),
      dims: fc.subarray(["d1", "d2"]),
      cap: fc.option(fc.integer({ min: 1, max: 3 }), { nil: undefined }),
      lo: fc.integer({ min: -5, max: 5 }),
      width: fc.integer({ min: 0, max: 60 }),
      withUnits: fc.boolean(),
    });
    let bigSeen = false;
    await fc.assert(
      fc.asyncProperty(arbCase, async (c) => {
        let rows = c.rows;
        if (c.join) rows = [...new Map(rows.map((r) => [r.u, r])).values()];
        const base = aq.table({
          u: rows.map((r) => `u${r.u}`),
          d1: rows.map((r) => r.d1),
          d2: rows.map((r) => r.d2),
          n: Float64Array.from(rows.map((r) => r.n)),
          nb: Float64Array.from(rows.map((r) => r.n * K)),
        });
        const ev = aq.table({
          k: c.events.map((e) => `u${e.k}`),
          day: Float64Array.from(c.events.map((e) => e.day)),
          v: Float64Array.from(c.events.map((e) => e.v)),
          vb: Float64Array.from(c.events.map((e) => e.v * K)),
          c: c.events.map((e) => e.c),
        });
        const measured = c.join ? "events" : "base";
        const col = c.join ? "v" : "n";
        const measures: Measure[] = [
          { name: "cnt", kind: "count" },
          { name: "cnt2", kind: "countSquares" },
          { name: "conv", kind: "unitsWithRows" },
          { name: "s", kind: "sum", column: { side: measured, column: col }, lo: c.lo, hi: c.lo + c.width },
          { name: "sq", kind: "sumSquares", column: { side: measured, column: col }, lo: c.lo, hi: c.lo + c.width },
          ...(c.join ? [{ name: "bn", kind: "sum" as const, column: { side: "base" as const, column: "n" }, lo: -2, hi: 9 }] : []),
          { name: "S", kind: "sum", column: { side: measured, column: `${col}b` }, lo: c.lo * K, hi: (c.lo + c.width) * K },
          { name: "SQ", kind: "sumSquares", column: { side: measured, column: `${col}b` }, lo: c.lo * K, hi: (c.lo + c.width) * K },
          ...(c.join ? [{ name: "BN", kind: "sum" as const, column: { side: "base" as const, column: "nb" }, lo: -2 * K, hi: 9 * K }] : []),
        ];
        const plan: Plan = {
          base: { table: "a/b", unit: "u" },
          ...(c.join ? { events: { table: "b/e", joinOn: "k", join: c.inner ? ("inner" as const) : ("left" as const) } } : {}),
          filters: c.filters.map((f) => f(c.join)).filter((f): f is PlanFilter => f !== null),
          ...(c.cap ? { rowCap: { cap: c.cap, orderBy: c.join ? ["day", "c", "v"] : ["n", "d1", "d2"] } } : {}),
          groupBy: c.dims.map((d) => ({ side: "base" as const, column: d, as: d })),
          measures,
          withUnits: c.withUnits,
        };
        // fresh tables per case so DuckDB loads them; both engines see the same objects
        const tables = { "a/b": base, "b/e": ev };
        const a = await arq.execute(plan, tables);
        const d = await duck.execute(plan, tables);
        expect(d).toEqual(a);
        for (const g of a.groups) {
          expect(g.values["S"]).toBe(KB * g.values["s"]!);
          expect(g.values["SQ"]).toBe(KB * KB * g.values["sq"]!);
          if (c.join) expect(g.values["BN"]).toBe(KB * g.values["bn"]!);
        }
        bigSeen ||= a.groups.some((g) => g.values["SQ"]! > 2n ** 53n);
      }),
      { numRuns: 120, seed: 20261125 },
    );
    expect(bigSeen).toBe(true);
  });
});
