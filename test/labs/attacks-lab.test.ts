import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import {
  attackPopulation,
  cohortTemplate,
  trackers,
  exactCohort,
  trackerAccuracy,
  refreshAveraging,
  reconstructionAttack,
  adhImpressions,
  dpGuessBound,
  type CohortParams,
  type LabCustomer,
} from "../../kernel-lib/src/labs/attacks-lab.js";
import { lineChart } from "../../kernel-lib/src/labs/lab-chart.js";

function room(
  rows: LabCustomer[],
  pop: ReturnType<typeof attackPopulation>,
  d: { differenceCheck?: number; epsilonPerAggregate?: string; budget?: number } = {},
) {
  const lab = openLab({
    store: ":memory:",
    room: "t",
    rng: { seed: "attacks-lab-test" },
    ...(d.budget ? { budget: { epsilon: d.budget } } : {}),
  });
  const retailer = lab.party("retailer");
  lab.party("advertiser");
  lab.upload(retailer, "customers", rows, { idColumn: "join_key", schema: pop.schema, purposes: ["measurement"], rule: pop.rule });
  lab.declarePurpose({ party: "advertiser", analyst: "eve", purpose: "measurement", justification: "cohort conversion analysis" });
  const template = cohortTemplate({ owner: "retailer", differenceCheck: d.differenceCheck, epsilonPerAggregate: d.epsilonPerAggregate });
  lab.approveTemplate(template, retailer);
  const ask = (params: CohortParams) =>
    lab.cleanRoomQuery({ template, params: { ...params }, as: { party: "advertiser", analyst: "eve" }, purpose: "measurement" });
  return { lab, ask };
}

const converters = (r: { rows: Record<string, unknown>[] }) => Number(r.rows[0]!.converters);

describe("attack population and trackers", () => {
  it("has exactly one north customer over 60 (the target) and is reproducible from its seed", () => {
    const a = attackPopulation({ rng: seededRng("p"), people: 400 });
    const b = attackPopulation({ rng: seededRng("p"), people: 400 });
    expect(a.rows).toEqual(b.rows);
    expect(a.rows).toHaveLength(400);
    const isolated = a.rows.filter((r) => r.region === "north" && r.age > 60);
    expect(isolated).toEqual([a.target]);
    expect(exactCohort(a.rows, trackers().direct).people).toBe(1);
  });

  it("every tracker's signed sum of exact answers is the target's bit, and the general tracker's cohorts differ pairwise by ≥ 50", () => {
    for (const bit of [0, 1] as const) {
      const pop = attackPopulation({ rng: seededRng("bits"), targetConverted: bit });
      for (const steps of [trackers().pair, trackers().general]) {
        expect(steps.reduce((s, x) => s + x.sign * exactCohort(pop.rows, x.params).converters, 0)).toBe(bit);
      }
    }
    const pop = attackPopulation({ rng: seededRng("bits") });
    const sets = trackers().general.map(
      (s) =>
        new Set(
          pop.rows
            .filter((r) => s.params.regions.includes(r.region) && r.age >= s.params.minAge && r.age <= s.params.maxAge)
            .map((r) => r.join_key),
        ),
    );
    for (let i = 0; i < 4; i++)
      for (let j = i + 1; j < 4; j++) {
        const d = [...sets[i]!].filter((x) => !sets[j]!.has(x)).length;
        const e = [...sets[j]!].filter((x) => !sets[i]!.has(x)).length;
        for (const n of [d, e]) expect(n === 0 || n >= 50).toBe(true);
      }
  });

  it(
    "through a real room: threshold suppresses the direct question; the pair works with defences off, " +
      "is refused by the difference check; the general tracker passes it",
    async () => {
      const pop = attackPopulation({ rng: seededRng("room"), targetConverted: 1 });
      const open = room(pop.rows, pop);
      const direct = await open.ask(trackers().direct);
      expect(direct.rows).toEqual([]);
      expect(direct.suppressed.rows[0]!.reason).toBe("below_threshold");
      const [p0, p1] = [await open.ask(trackers().pair[0]!.params), await open.ask(trackers().pair[1]!.params)];
      // the engine's exact answers are the ones exactCohort computes in the clear
      expect(p0.rows[0]).toEqual(exactCohort(pop.rows, trackers().pair[0]!.params));
      expect(converters(p0) - converters(p1)).toBe(1);

      const checked = room(pop.rows, pop, { differenceCheck: 50 });
      await checked.ask(trackers().pair[0]!.params);
      const before = internals(checked.lab).room.history.size();
      const err = await checked.ask(trackers().pair[1]!.params).catch((e) => e);
      expect(isCleanRoomError(err, "DIFFERENCE_CHECK_FAILED")).toBe(true);
      expect(internals(checked.lab).room.history.size()).toBe(before);
      const general = [];
      for (const s of trackers().general) general.push(await checked.ask(s.params));
      expect(trackers().general.reduce((s, x, i) => s + x.sign * converters(general[i]!), 0)).toBe(1);
    },
  );

  it("the ADH example: 400 then 401 without a check; the 401 row filtered with k = 50", async () => {
    for (const k of [undefined, 50]) {
      const lab = openLab({ store: ":memory:", rng: { seed: "adh" } });
      const adh = adhImpressions(seededRng("adh"));
      const p = lab.party("publisher");
      lab.party("advertiser");
      lab.upload(p, "impressions", adh.rows, { idColumn: "join_key", schema: adh.schema, purposes: ["measurement"], rule: adh.rule });
      lab.declarePurpose({ party: "advertiser", analyst: "eve", purpose: "measurement", justification: "campaign reach" });
      const t = adh.template({ owner: "publisher", differenceCheck: k });
      lab.approveTemplate(t, p);
      const run = (maxDay: number) =>
        lab.cleanRoomQuery({ template: t, params: { maxDay }, as: { party: "advertiser", analyst: "eve" }, purpose: "measurement" });
      expect((await run(1)).rows).toEqual([{ campaign: "123", users: 400 }]);
      const job2 = await run(2);
      if (k === undefined) expect(job2.rows).toContainEqual({ campaign: "123", users: 401 });
      else {
        expect(job2.rows).toEqual([{ campaign: "789", users: 100 }]);
        expect(JSON.stringify(job2)).not.toContain("401");
      }
    }
  });
});

describe("attacker accuracy simulations", () => {
  const pop = attackPopulation({ rng: seededRng("sim") });

  it("no noise → always right; with noise the accuracy stays under the ε-DP bound (3 s.e.)", () => {
    const { points } = trackerAccuracy({
      rows: pop.rows,
      tracker: "pair",
      epsilons: [0.1, 1, Infinity],
      trials: 400,
      rng: seededRng("acc"),
    });
    expect(points[2]!.accuracy).toBe(1);
    for (const p of points) expect(p.accuracy).toBeLessThanOrEqual(p.bound + 3 * Math.sqrt(0.25 / p.trials));
    expect(points[0]!.bound).toBeCloseTo(dpGuessBound(0.1), 12);
    expect(points[1]!.accuracy).toBeGreaterThan(points[0]!.accuracy);
  });

  it("averaging more repeats raises the accuracy and the bound uses the composed ε", () => {
    const one = trackerAccuracy({ rows: pop.rows, tracker: "pair", epsilons: [0.5], repeats: 1, trials: 300, rng: seededRng("r1") })
      .points[0]!;
    const many = trackerAccuracy({ rows: pop.rows, tracker: "pair", epsilons: [0.5], repeats: 400, trials: 300, rng: seededRng("r2") })
      .points[0]!;
    expect(many.accuracy).toBeGreaterThan(0.95);
    expect(one.accuracy).toBeLessThan(0.7);
    expect(many.bound).toBeCloseTo(dpGuessBound(200), 12);
    expect(many.estimateSd).toBeLessThan(one.estimateSd / 10);
  });

  it("rejects bad parameters with typed errors", () => {
    expect(() => trackerAccuracy({ rows: pop.rows, tracker: "pair", epsilons: [0], rng: seededRng("x") })).toThrow(/epsilons/);
    expect(() => trackerAccuracy({ rows: pop.rows, tracker: "pair", epsilons: [1], trials: 0, rng: seededRng("x") })).toThrow(/trials/);
    expect(() =>
      trackerAccuracy({ rows: pop.rows.filter((r) => r.age <= 60), tracker: "pair", epsilons: [1], rng: seededRng("x") }),
    ).toThrow(/rows/);
    expect(() => attackPopulation({ rng: seededRng("x"), people: 10 })).toThrow(/people/);
  });

  it("monthly refresh: the real ledger admits the same rounds every month and the lifetime loss grows linearly", () => {
    const r = refreshAveraging({
      rows: pop.rows,
      monthlyEpsilon: "8",
      epsilonPerAggregate: "0.5",
      months: 6,
      tracker: "pair",
      trials: 100,
      rng: seededRng("rf"),
    });
    expect(r.months.map((m) => m.rounds)).toEqual([4, 4, 4, 4, 4, 4]);
    expect(r.months.map((m) => m.lifetimeEpsilon)).toEqual([8, 16, 24, 32, 40, 48]);
    expect(r.months.map((m) => m.month)).toEqual(["2026-01", "2026-02", "2026-03", "2026-04", "2026-05", "2026-06"]);
    expect(r.refusal).toMatch(/BUDGET_EXCEEDED.*Requested: ε = 2.*Remaining: ε = 0/);
    expect(r.refreshWarning).toMatch(/Refresh is not privacy/);
  });

  it("a real noisy room stops repetition with BUDGET_EXCEEDED and charges nothing more", async () => {
    const { lab, ask } = room(pop.rows, pop, { epsilonPerAggregate: "0.5", budget: 3 });
    await ask(trackers().pair[0]!.params);
    await ask(trackers().pair[0]!.params);
    await ask(trackers().pair[0]!.params);
    const spent = JSON.stringify(internals(lab).room.ledger.status(lab.roomId));
    const err = await ask(trackers().pair[0]!.params).catch((e) => e);
    expect(isCleanRoomError(err, "BUDGET_EXCEEDED")).toBe(true);
    expect(JSON.stringify(internals(lab).room.ledger.status(lab.roomId))).toBe(spent);
  });
});

describe("Dinur–Nissim reconstruction", () => {
  it("exact subset sums give every bit back; ~1 ε per person leaves a coin flip under the bound", () => {
    const r = reconstructionAttack({ people: 40, queries: 160, epsilons: [0.01, Infinity], trials: 3, rng: seededRng("dn") });
    expect(r.points[1]!.accuracy).toBe(1);
    expect(r.points[0]!.accuracy).toBeLessThan(0.65);
    expect(r.points[0]!.epsilonPerPerson).toBeGreaterThan(0.5);
    expect(r.points[0]!.epsilonPerPerson).toBeLessThan(1.2);
    expect(r.points[0]!.accuracy).toBeLessThanOrEqual(r.points[0]!.bound + 3 * Math.sqrt(0.25 / 120));
  });

  it("rejects too few queries and bad ε", () => {
    expect(() => reconstructionAttack({ people: 40, queries: 10, epsilons: [1], rng: seededRng("x") })).toThrow(/queries/);
    expect(() => reconstructionAttack({ epsilons: [-1], rng: seededRng("x") })).toThrow(/epsilons/);
  });
});

describe("lineChart", () => {
  it("renders as Vega-Lite, SVG (also as an <img> in HTML) and text, escaping labels", () => {
    const c = lineChart({
      title: "a <b> & c",
      x: { title: "ε", log: true },
      y: { title: "acc", min: 0, max: 1 },
      data: [
        { x: 0.1, y: 0.5, series: "s<1>" },
        { x: 1, y: 0.7, series: "s<1>" },
      ],
      dashed: ["s<1>"],
    });
    const bundle = (c as unknown as Record<symbol, () => Record<string, unknown>>)[Symbol.for("jupyter.mimebundle")]!();
    expect(Object.keys(bundle).sort()).toEqual(["application/vnd.vegalite.v5+json", "image/svg+xml", "text/html", "text/plain"]);
    const svg = bundle["image/svg+xml"] as string;
    expect(svg).toContain("a &lt;b&gt; &amp; c");
    expect(svg).not.toContain("<b>");
    expect(bundle["text/html"]).toMatch(/^<img alt="a &lt;b&gt; &amp; c" src="data:image\/svg\+xml;base64,/);
    expect(bundle["text/plain"]).toContain("0.7");
    expect(JSON.parse(JSON.stringify(c)).spec.data.values).toHaveLength(2);
  });

  it("refuses empty data and non-positive x on a log axis", () => {
    expect(() => lineChart({ title: "t", x: { title: "x" }, y: { title: "y" }, data: [] })).toThrow(/data/);
    expect(() => lineChart({ title: "t", x: { title: "x", log: true }, y: { title: "y" }, data: [{ x: 0, y: 1, series: "s" }] })).toThrow(
      /x > 0/,
    );
  });
});
