import { describe, expect, it } from "vitest";
import { makeRoom } from "./fixtures.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import {
  noiseQuantities,
  parseTemplate,
  templateCost,
  templateHash,
  THRESHOLD_PRESETS,
  validateParams,
  type TemplateInput,
} from "../../kernel-lib/src/cleanroom/template.js";
import { prepareQuery } from "../../kernel-lib/src/cleanroom/query.js";
import { checkTemplate } from "../../kernel-lib/src/cleanroom/plan.js";
import { isCleanRoomError, type ErrorCode } from "../../kernel-lib/src/errors.js";
import { ratToString } from "../../kernel-lib/src/dp/rational.js";

const lift = (o: Partial<Parameters<typeof liftTemplate>[0]> = {}) =>
  liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20, ...o });
const params = { startDay: 0, endDay: 27 };

function expectRefusal(code: ErrorCode, f: () => unknown, field?: RegExp) {
  try {
    f();
  } catch (e) {
    expect(isCleanRoomError(e, code), String(e)).toBe(true);
    if (field) expect((e as Error).message).toMatch(field);
    return e;
  }
  throw new Error(`expected ${code}`);
}

function approvedRoom(t: TemplateInput = lift()) {
  const room = makeRoom({ users: 400 });
  room.registry.approve(t, "adv", room.ctx);
  room.registry.approve(t, "shop", room.ctx);
  return room;
}

describe("templates: canonical hash and approval", () => {
  it("keeps the approval hashes of the previous implementation (golden vectors computed before the one canonicalJson)", () => {
    expect(templateHash(lift())).toBe("549392fd879ca98083fddf9c6488aac4abb6ff8693b67532176be227178518b4");
    const noised = lift({ epsilonPerAggregate: "0.2", breakdown: "region", numConvSquared: true });
    expect(templateHash(noised)).toBe("d890377903a27a7d137146d82e94b926461e6b1ed58d19dcdf6eb5848e4ef6b2");
    const gaussian = { ...lift(), noise: { mechanism: "gaussian", rhoPerAggregate: "0.01" } };
    expect(templateHash(gaussian)).toBe("d10fc33148b980328e1602d8c434c0e5a1e0d15074f0423311974e6da1d4075f");
  });

  it("parses once: the parsed value is frozen, carries its hash, and is taken as is by every later step", () => {
    const p = parseTemplate(lift({ epsilonPerAggregate: "0.1" }));
    expect(p.hash).toBe(templateHash(lift({ epsilonPerAggregate: "0.1" })));
    expect(parseTemplate(p)).toBe(p);
    expect(templateHash(p)).toBe(p.hash);
    // the hash and canonical text are not part of the template's own JSON
    expect(JSON.parse(p.canonical)).toEqual(JSON.parse(JSON.stringify(p)));
    expect(Object.keys(p)).not.toContain("hash");
    // frozen all the way down: an edit after parsing cannot slip past the approved hash
    expect(() => ((p as { name: string }).name = "edited")).toThrow(TypeError);
    expect(() => (p.aggregates as unknown[]).push({ name: "x", fn: "count" })).toThrow(TypeError);
    expect(() => ((p.threshold as { minimum: unknown }).minimum = 2)).toThrow(TypeError);
    // a spread copy is new input: parsed (and hashed) again
    const copy = { ...p, name: "renamed" };
    expect(parseTemplate(copy)).not.toBe(p);
    expect(templateHash(copy)).not.toBe(p.hash);
    // the approvals registry and prepareQuery hand the same value down
    const room = approvedRoom(p);
    const prep = prepareQuery({ template: p, params, registry: room.registry, ctx: room.ctx });
    expect(prep.template).toBe(p);
    expect(prep.templateHash).toBe(p.hash);
    expect(room.registry.requireApproved(lift({ epsilonPerAggregate: "0.1" }), room.ctx).hash).toBe(p.hash);
  });

  it("refuses NaN and non-plain values in a template before hashing it", () => {
    expectRefusal(
      "TEMPLATE_INVALID",
      () => templateHash({ ...lift(), threshold: { minimum: Number.NaN, style: "drop" } }),
      /template\.threshold\.minimum/,
    );
    expectRefusal("TEMPLATE_INVALID", () => templateHash({ ...lift(), name: new String("lift") }), /template\.name/);
  });

  it("hashes the canonical form: key order and defaults do not change the hash, meaning does", () => {
    const t = lift();
    const rev = (v: unknown): unknown =>
      Array.isArray(v)
        ? v.map(rev)
        : v && typeof v === "object"
          ? Object.fromEntries(
              Object.entries(v)
                .reverse()
                .map(([k, x]) => [k, rev(x)]),
            )
          : v;
    const reordered = rev(t);
    expect(Object.keys(reordered as object)[0]).not.toBe(Object.keys(t)[0]);
    expect(templateHash(reordered)).toBe(templateHash(t));
    expect(templateHash({ ...t, filters: [...t.filters!].slice(0, 1) })).not.toBe(templateHash(t));
    expect(templateHash(t)).toMatch(/^[0-9a-f]{64}$/);
  });

  it("runs only when every data owner approved the hash", () => {
    const room = makeRoom({ users: 400 });
    const t = lift();
    const st = room.registry.approve(t, "adv", room.ctx);
    expect(st.approved).toBe(false);
    const before = room.snapshot();
    const e = expectRefusal(
      "QUERY_NOT_APPROVED",
      () => prepareQuery({ template: t, params, registry: room.registry, ctx: room.ctx }),
      /shop/,
    );
    expect((e as { details: { missing: string[] } }).details.missing).toEqual(["shop"]);
    expect(room.snapshot()).toEqual(before);
    expect(room.registry.approve(t, "shop", room.ctx).approved).toBe(true);
    expect(prepareQuery({ template: t, params, registry: room.registry, ctx: room.ctx }).templateHash).toBe(templateHash(t));
  });

  it("refuses approval from a party that owns no input", () => {
    const room = makeRoom({ users: 100 });
    const before = room.snapshot();
    expectRefusal("ACCESS_DENIED", () => room.registry.approve(lift(), "mallory", room.ctx));
    expect(room.snapshot()).toEqual(before);
  });

  it("refuses a changed filter, an added column and a changed bound after approval (QUERY_NOT_APPROVED, nothing changed)", () => {
    const t = lift();
    const room = approvedRoom(t);
    const before = room.snapshot();
    const changedFilter = { ...t, filters: [{ column: "purchases.purchase_day", op: "ge", value: { literal: -100 } }] };
    const addedColumn = { ...t, groupBy: [...t.groupBy!, "exposures.channel"] };
    const widerBound = { ...t, aggregates: t.aggregates.map((a) => (a.fn === "sum" ? { ...a, bounds: [0, 10_000_000] } : a)) };
    for (const bad of [changedFilter, addedColumn, widerBound])
      expectRefusal("QUERY_NOT_APPROVED", () => prepareQuery({ template: bad, params, registry: room.registry, ctx: room.ctx }));
    expect(room.snapshot()).toEqual(before);
  });

  it("refuses parameters outside their slot with PARAM_INVALID naming the parameter", () => {
    const room = approvedRoom();
    const before = room.snapshot();
    const run = (p: unknown) => prepareQuery({ template: lift(), params: p, registry: room.registry, ctx: room.ctx });
    expectRefusal("PARAM_INVALID", () => run({ startDay: 0, endDay: 99999 }), /"params.endDay" expected integer in \[-365, 3650\]/);
    expectRefusal("PARAM_INVALID", () => run({ startDay: "0", endDay: 1 }), /"params.startDay"/);
    expectRefusal("PARAM_INVALID", () => run({ startDay: 0 }), /"params.endDay"/);
    expectRefusal("PARAM_INVALID", () => run({ ...params, join_key: "k1" }), /"params.join_key" expected a parameter declared/);
    // inherited names are not declared slots either (they were silently accepted and ignored)
    expectRefusal("PARAM_INVALID", () => run({ ...params, toString: "x" }), /"params.toString" expected a parameter declared/);
    expectRefusal("PARAM_INVALID", () => run({ ...params, constructor: 1 }), /"params.constructor" expected a parameter declared/);
    expect(room.snapshot()).toEqual(before);
  });

  it("refuses a difference check on a noised template (its exact-set decision is un-noised)", () => {
    // before: accepted; the result then said, with certainty, that the cohort differed from an
    // earlier one by 1..k-1 people (row filtered, reason "difference_check"), outside the ε charged
    const t = { ...lift({ epsilonPerAggregate: "0.5" }), differenceCheck: { k: 50 } };
    expectRefusal("TEMPLATE_INVALID", () => parseTemplate(t), /"template.differenceCheck"/);
    expect(() => parseTemplate({ ...lift(), differenceCheck: { k: 50 } })).not.toThrow();
    expect(() => parseTemplate(lift({ epsilonPerAggregate: "0.5" }))).not.toThrow();
  });

  it("refuses a filter on an undeclared slot even when its name is inherited (toString, constructor, __proto__)", () => {
    // before: parsed as "declared", and compilePlan bound Object.prototype members as the filter value
    for (const name of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
      const t = { ...lift(), filters: [...lift().filters!, { column: "exposures.region", op: "eq", value: { param: name } }] };
      expectRefusal("TEMPLATE_INVALID", () => parseTemplate(t), /value\.param" expected a declared parameter/);
    }
  });

  it("validates enum and list slots", () => {
    const t = parseTemplate({
      ...lift(),
      params: {
        startDay: { type: "int", min: 0, max: 10 },
        endDay: { type: "int", min: 0, max: 40 },
        regions: { type: "enumList", values: ["north", "south"], maxItems: 2 },
      },
      filters: [...lift().filters!, { column: "exposures.region", op: "in", value: { param: "regions" } }],
    });
    expect(validateParams(t, { startDay: 0, endDay: 1, regions: ["north"] })).toEqual({ startDay: 0, endDay: 1, regions: ["north"] });
    expectRefusal("PARAM_INVALID", () => validateParams(t, { startDay: 0, endDay: 1, regions: ["east"] }), /"params.regions.0"/);
    expectRefusal("PARAM_INVALID", () => validateParams(t, { startDay: 0, endDay: 1, regions: ["north", "north"] }), /"params.regions"/);
  });

  it("refuses selecting, aggregating or filtering on an identifier at approval (nothing stored)", () => {
    const room = makeRoom({ users: 100 });
    const before = room.snapshot();
    const t = lift();
    const byKey = { ...t, groupBy: ["exposures.join_key"] };
    const sumKey = { ...t, aggregates: [...t.aggregates, { name: "k", fn: "sum", column: "purchases.join_key", bounds: [0, 1] }] };
    const filterKey = {
      ...t,
      params: { ...t.params, who: { type: "enum", values: ["k1"] } },
      filters: [...t.filters!, { column: "exposures.join_key", op: "eq", value: { param: "who" } }],
    };
    for (const bad of [byKey, sumKey, filterKey]) {
      const e = expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(bad, "adv", room.ctx), /identifier/);
      expect((e as { details: { reason: string } }).details.reason).toBe("identifier");
    }
    expect(room.snapshot()).toEqual(before);
  });

  it("enforces the owners' analysis rules: dimensions, functions, join required, list rules", () => {
    const room = makeRoom({ users: 100 });
    const t = lift();
    const notDim = { ...t, groupBy: ["exposures.group", "exposures.impressions"] };
    expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(notDim, "adv", room.ctx), /not a dimension column/);
    const avgNotAllowed = {
      ...t,
      aggregates: [...t.aggregates, { name: "avgValue", fn: "avg", column: "purchases.value_cents", bounds: [0, 1000] }],
    };
    expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(avgNotAllowed, "shop", room.ctx), /AVG\(value_cents\)/);
    const noJoin = {
      version: 1,
      name: "solo",
      base: { owner: "shop", dataset: "purchases" },
      groupBy: ["purchases.store_region"],
      aggregates: [{ name: "n", fn: "countUnits" }],
      threshold: { minimum: 20, style: "drop" },
    };
    expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(noJoin, "shop", room.ctx), /requires a join/);
    room.rules.set("shop/purchases", { type: "LIST", joinColumns: ["join_key"], listColumns: ["category"], allowedJoinOperators: ["AND"] });
    expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(t, "shop", room.ctx), /LIST rule/);
    room.rules.delete("shop/purchases");
    expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(t, "shop", room.ctx), /no analysis rule/);
    expect(room.registry.snapshot()).toEqual([]);
  });

  it("takes the strictest threshold of template and rules", () => {
    const room = makeRoom({ users: 100, minimum: 150 });
    expect(checkTemplate(parseTemplate(lift({ threshold: 100 })), room.ctx)).toMatchObject({ minimum: 150, minimumFrom: "adv/exposures" });
    expect(checkTemplate(parseTemplate(lift({ threshold: 200 })), room.ctx)).toMatchObject({ minimum: 200, minimumFrom: "template" });
  });

  it("has presets matching the anchors and validates the AWS range", () => {
    expect(THRESHOLD_PRESETS).toMatchObject({
      adh_diffcheck: 50,
      adh_noise: 20,
      adh_clicks_conversions: 10,
      fbpcs_kanon: 100,
      aws_min: 2,
      aws_max: 100000,
    });
    expectRefusal("TEMPLATE_INVALID", () => parseTemplate(lift({ threshold: 1 })), /template.threshold.minimum/);
    expectRefusal("TEMPLATE_INVALID", () => parseTemplate(lift({ threshold: 100001 })));
    expectRefusal("TEMPLATE_INVALID", () => parseTemplate({ ...lift(), extra: 1 }));
  });

  it("computes the privacy cost before running: one ε per noised quantity", () => {
    const t = lift({ epsilonPerAggregate: "0.1" });
    const c = templateCost(t, params)!;
    // units (population), conversions, converters, value, valueSquared
    expect(c.kind).toBe("pureDp");
    expect(ratToString((c as { epsilon: import("../../kernel-lib/src/dp/rational.js").Rational }).epsilon)).toBe("1/2");
    expect(templateCost(lift(), params)).toBeNull();
    expectRefusal("PARAM_INVALID", () => templateCost(t, { startDay: 0 }));
    const qs = noiseQuantities(parseTemplate(lift({ epsilonPerAggregate: "0.1", numConvSquared: true })));
    expect(qs.map((q) => [q.name, q.l1])).toEqual([
      ["units", 1n],
      ["conversions", 4n],
      ["converters", 1n],
      ["value", 100000n],
      ["valueSquared", 10n ** 10n],
      ["numConvSquared", 16n],
    ]);
    const g = templateCost({ ...t, noise: { mechanism: "gaussian", rhoPerAggregate: "0.01" } }, params)!;
    expect(g.kind).toBe("zCdp");
  });

  it("keeps approvals across a kernel restart (same database) and re-checks rules at run time", async () => {
    const t = lift();
    const room = approvedRoom(t);
    const { TemplateRegistry } = await import("../../kernel-lib/src/cleanroom/approvals.js");
    const again = new TemplateRegistry(room.db, "room-1");
    expect(again.status(templateHash(t)).approved).toBe(true);
    expect(again.approvedHashes()).toEqual([templateHash(t)]);
    expect(new TemplateRegistry(room.db, "other-room").approvedHashes()).toEqual([]);
    // the retailer tightens its rule after approving: the template no longer runs
    const r = room.rules.get("shop/purchases")! as import("../../kernel-lib/src/cleanroom/rules.js").AnalysisRuleAggregation;
    room.rules.set("shop/purchases", { ...r, aggregateColumns: [] });
    const before = room.snapshot();
    expectRefusal("QUERY_NOT_APPROVED", () => prepareQuery({ template: t, params, registry: again, ctx: room.ctx }), /SUM\(value_cents\)/);
    expect(room.snapshot()).toEqual(before);
  });

  it("refuses templates whose sensitivity or grouping is unbounded", () => {
    const room = makeRoom({ users: 100 });
    const noCap = { ...lift({ epsilonPerAggregate: "0.1" }), contribution: undefined };
    expectRefusal("TEMPLATE_INVALID", () => templateCost(noCap, params), /maxRowsPerUnit/);
    const zeroBound = {
      ...lift({ epsilonPerAggregate: "0.1" }),
      aggregates: [{ name: "v", fn: "sum", column: "purchases.value_cents", bounds: [0, 0] }],
    };
    expectRefusal("TEMPLATE_INVALID", () => templateCost(zeroBound, params), /bounds/);
    const byEventDim = { ...lift(), groupBy: ["purchases.store_region"] };
    expectRefusal("QUERY_NOT_APPROVED", () => room.registry.approve(byEventDim, "shop", room.ctx), /base column/);
    const stringRange = {
      ...lift(),
      params: { ...lift().params, r: { type: "enum", values: ["north"] } },
      filters: [{ column: "exposures.region", op: "lt", value: { param: "r" } }],
    };
    expectRefusal("TEMPLATE_INVALID", () => room.registry.approve(stringRange, "adv", room.ctx), /eq, ne or in/);
    expectRefusal("NOT_FOUND", () => room.registry.approve({ ...lift(), events: { ...lift().events!, owner: "ghost" } }, "adv", room.ctx));
    expect(room.registry.snapshot()).toEqual([]);
  });
});

describe("templates: budget amounts as numbers (exactly, as rationals)", () => {
  const golden = "d890377903a27a7d137146d82e94b926461e6b1ed58d19dcdf6eb5848e4ef6b2";
  it("a number ε per aggregate is the same template as its decimal string: same canonical form, same approved hash", () => {
    const asNumber = lift({ epsilonPerAggregate: 0.2, breakdown: "region", numConvSquared: true });
    expect(templateHash(asNumber)).toBe(golden);
    // written by hand (not through the builder): the parser converts, the hash is the string's
    const raw = { ...lift({ breakdown: "region", numConvSquared: true }), noise: { mechanism: "laplace", epsilonPerAggregate: 0.2 } };
    expect(templateHash(raw)).toBe(golden);
    expect(parseTemplate(raw).noise).toEqual({ mechanism: "laplace", epsilonPerAggregate: "0.2" });
    const gaussian = { ...lift(), noise: { mechanism: "gaussian", rhoPerAggregate: 0.01 } };
    expect(templateHash(gaussian)).toBe("d10fc33148b980328e1602d8c434c0e5a1e0d15074f0423311974e6da1d4075f");
  });

  it("converts via the shortest round-trip decimal (0.1 is 1/10, not the binary double), and costs exactly", () => {
    const t = { ...lift(), noise: { mechanism: "laplace", epsilonPerAggregate: 0.1 } };
    const c = templateCost(t, params) as { epsilon: import("../../kernel-lib/src/dp/rational.js").Rational };
    expect(ratToString(c.epsilon)).toBe("1/2"); // 5 quantities × 1/10
    expect(parseTemplate({ ...lift(), noise: { mechanism: "laplace", epsilonPerAggregate: 1e-7 } }).noise!.epsilonPerAggregate).toBe(
      "1e-7",
    );
  });

  it("refuses a negative or non-finite number naming the field", () => {
    expectRefusal("TEMPLATE_INVALID", () => parseTemplate({ ...lift(), noise: { mechanism: "laplace", epsilonPerAggregate: -0.1 } }));
    expect(() => parseTemplate({ ...lift(), noise: { mechanism: "laplace", epsilonPerAggregate: -0.1 } })).toThrow(
      /"template.noise.epsilonPerAggregate"/,
    );
    expectRefusal("TEMPLATE_INVALID", () => parseTemplate({ ...lift(), noise: { mechanism: "laplace", epsilonPerAggregate: Infinity } }));
  });
});
