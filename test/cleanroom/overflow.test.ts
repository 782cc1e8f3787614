/**
 * Issue 14 item 9: "a numeric overflow is an oracle". A group whose sum passed 2^53 made the
 * query fail with ENGINE_ERROR (after the ε was charged), otherwise it succeeded — also for a
 * suppressed group and in noised mode. These tests look from the analyst's side: the same
 * query over data with ordinary and with huge values must succeed alike, release the same
 * shape, charge the same ε, and release exact values; bounds that could leave the engines'
 * exact range are refused when the template is approved, before anything is charged.
 */
import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { templateCost } from "../../kernel-lib/src/cleanroom/template.js";
import { costText } from "../../kernel-lib/src/dp/accountant.js";

const SAFE = Number.MAX_SAFE_INTEGER;
const REGIONS = ["north", "south", "east", "west"];
const schema = {
  privacyUnit: "join_key",
  columns: { join_key: { type: "string" }, region: { type: "enum", values: REGIONS }, spend: { type: "int", min: 0, max: SAFE } },
};
const rule = {
  type: "AGGREGATION",
  aggregateColumns: [{ columnNames: ["spend"], function: "SUM" }],
  dimensionColumns: ["region"],
  joinColumns: ["join_key"],
  outputConstraints: [{ columnName: "join_key", minimum: 20, type: "COUNT_DISTINCT" }],
};
const template = (noise: boolean, sqBound = 100_000_000) => ({
  version: 1,
  name: "spend by region",
  base: { owner: "shop", dataset: "people" },
  groupBy: ["people.region"],
  aggregates: [
    { name: "n", fn: "countUnits" },
    { name: "spend", fn: "sum", column: "people.spend", bounds: [0, SAFE] },
    { name: "sq", fn: "sumSquares", column: "people.spend", bounds: [0, sqBound] },
  ],
  contribution: { maxRowsPerUnit: 1, orderBy: [] },
  threshold: { minimum: 20, style: "drop" },
  ...(noise ? { noise: { mechanism: "laplace", epsilonPerAggregate: "0.5" } } : {}),
});

/** 200 people in north (`heavy` of them spend `big`, the rest 1) and 2 in west spending `big`. */
function people(big: number, heavy = 2) {
  const rows = Array.from({ length: 200 }, (_, i) => ({ join_key: `n${i}`, region: "north", spend: i < heavy ? big : 1 }));
  rows.push({ join_key: "w0", region: "west", spend: big }, { join_key: "w1", region: "west", spend: big });
  return rows;
}

async function query(rows: object[], t: object, seed = "overflow") {
  const lab = openLab({ store: ":memory:", rng: { seed }, budget: { epsilon: 100 } });
  const shop = lab.party("shop");
  lab.upload(shop, "people", rows, { schema, purposes: ["measurement"], rule });
  lab.declarePurpose({ party: shop, analyst: "ana", purpose: "measurement", justification: "spend report" });
  const outcome = { lab, result: null as Awaited<ReturnType<typeof lab.cleanRoomQuery>> | null, error: null as unknown };
  try {
    lab.approveTemplate(t, shop);
    outcome.result = await lab.cleanRoomQuery({ template: t, params: {}, as: { party: "shop", analyst: "ana" }, purpose: "measurement" });
  } catch (e) {
    outcome.error = e;
  }
  return outcome;
}

const spent = (lab: ReturnType<typeof openLab>) => lab.budget().budgets.map((b) => `${b.scope}:${b.spent.text}`);
/** What the analyst can tell apart besides the released numbers themselves. */
const shape = (r: NonNullable<Awaited<ReturnType<typeof query>>["result"]>) => ({
  rows: r.rows.map((row) => ({ region: row.region, columns: Object.keys(row) })),
  suppressed: r.suppressed,
  noise: r.noise?.perAggregate.map((p) => [p.name, p.scaleExact]) ?? null,
  cost: r.cost,
  charged: r.charged?.text ?? null,
  trace: r.trace.map((s) => [s.step, s.status]),
});

describe("no overflow oracle: huge sums succeed exactly like ordinary ones", () => {
  for (const noise of [false, true]) {
    it(
      `${noise ? "noised" : "threshold-only"}: a released and a suppressed group past 2^53 — ` +
        "same success, same shape, same ε as ordinary values",
      async () => {
        const t = template(noise);
        const small = await query(people(1), t);
        const big = await query(people(SAFE), t);
        expect(small.error).toBeNull();
        expect(big.error).toBeNull(); // was ENGINE_ERROR: "aggregate exceeds the exact integer range"
        expect(shape(big.result!)).toEqual(shape(small.result!));
        // north (released) and west (suppressed) both carry sums past 2^53 in the big data
        expect(big.result!.rows.map((r) => r.region)).toContain("north");
        expect(big.result!.suppressed.rows.map((s) => s.key.region)).toContain("west");
        // the same ε is charged (and nothing at all in threshold-only mode)
        expect(spent(big.lab)).toEqual(spent(small.lab));
        expect(big.result!.charged?.text ?? null).toBe(noise ? small.result!.charged!.text : null);
        if (noise) expect(spent(big.lab)).toContain(`collaboration:${costText(templateCost(t, {})!)}`); // what the template costs, as for any data
        if (!noise) {
          // exact, not rounded: 198 × 1 + 2 × (2^53 − 1), released as a decimal string beyond 2^53
          const north = big.result!.rows.find((r) => r.region === "north")!;
          expect(north.spend).toBe((198n + 2n * BigInt(SAFE)).toString());
          expect(small.result!.rows.find((r) => r.region === "north")!.spend).toBe(200);
        } else {
          // noise is added to the exact sum: the released value is an integer, never a rounded double
          const v = big.result!.rows.find((r) => r.region === "north")!.spend;
          expect(typeof v === "number" ? Number.isSafeInteger(v) : /^-?\d+$/.test(String(v))).toBe(true);
        }
        big.lab.close();
        small.lab.close();
      },
    );
  }

  it("one person suffices with a large sumSquares bound: their square past 2^53 is released exactly, no error", async () => {
    const one = await query(people(1e8, 1), template(false));
    expect(one.error).toBeNull();
    const north = one.result!.rows.find((r) => r.region === "north")!;
    expect(north.sq).toBe((10n ** 16n + 199n).toString());
    expect(north.spend).toBe(1e8 + 199);
    const noised = await query(people(1e8, 1), template(true));
    const ordinary = await query(people(1), template(true));
    expect(noised.error).toBeNull();
    expect(shape(noised.result!)).toEqual(shape(ordinary.result!));
    expect(spent(noised.lab)).toEqual(spent(ordinary.lab));
    for (const o of [one, noised, ordinary]) o.lab.close();
  });

  it("bounds whose exact sums could leave 128 bits are refused at approval (TEMPLATE_INVALID naming the column and bound), before any charge", async () => {
    const t = template(true, 2 ** 48); // (2^48)² × 2^32 units > 2^127
    const r = await query(people(1), t);
    expect(isCleanRoomError(r.error, "TEMPLATE_INVALID")).toBe(true);
    const err = r.error as { details: { field: string }; message: string };
    expect(err.details.field).toBe("template.aggregates.2.bounds");
    expect(err.message).toContain("spend");
    expect(err.message).toContain(String(2 ** 48));
    expect(r.result).toBeNull();
    // nothing charged; the query itself is refused too (never approved), still nothing charged
    const before = spent(r.lab);
    let refused: unknown;
    await r.lab
      .cleanRoomQuery({ template: t, params: {}, as: { party: "shop", analyst: "ana" }, purpose: "measurement" })
      .catch((e) => (refused = e));
    expect(isCleanRoomError(refused)).toBe(true);
    expect(spent(r.lab)).toEqual(before);
    expect(before.every((s) => s.endsWith(":ε = 0"))).toBe(true);
    r.lab.close();
    // just inside the limit is accepted
    const ok = await query(people(1), template(true, 2 ** 47));
    expect(ok.error).toBeNull();
    ok.lab.close();
  });
});
