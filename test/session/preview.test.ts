/**
 * previewQuery and errors that name the fix (issue 19, items 2 and 5): what a user sees before
 * spending budget, and what a refusal tells them to change.
 */
import { describe, expect, it } from "vitest";
import {
  addParty,
  approveTemplate,
  budget,
  cleanRoomQuery,
  declarePurpose,
  liftRules,
  liftSchemas,
  liftTemplate,
  openLab,
  previewQuery,
  upload,
  type Lab,
  type TemplateInput,
} from "../../kernel-lib/src/index.js";
import { CLEANROOM_MIME } from "../../kernel-lib/src/labs.js";
import { parsePayload } from "../../kernel-lib/src/display/schema.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

const bundleOf = (x: object) => (x as Record<symbol, () => Record<string, unknown>>)[Symbol.for("jupyter.mimebundle")]!();
const REGIONS = ["north", "south", "east", "west"] as const;

/** 400 people in 2 groups × 4 regions (50 per cell), a third of them buying: every cell passes 20, none passes 100. */
async function room(minimum = 100): Promise<Lab> {
  const rng = seededRng("preview-rows");
  const lab = openLab({ store: ":memory:", rng: { seed: "preview" }, budget: { epsilon: 3 } });
  addParty(lab, { party: "advertiser" });
  addParty(lab, { party: "retailer" });
  const exposures = Array.from({ length: 400 }, (_, i) => ({
    join_key: `k${i}`,
    group: i % 2 ? "test" : "control",
    reached: 1,
    impressions: 1 + (i % 5),
    first_exposure_day: 0,
    region: REGIONS[Math.floor(i / 2) % 4]!,
    age_band: "25-34",
    channel: "search",
  }));
  const purchases = exposures
    .filter((_, i) => i % 3 === 0)
    .map((e) => ({ join_key: e.join_key, purchase_day: rng.int(21), value_cents: 500, store_region: "north", category: "x" }));
  const s = liftSchemas(),
    r = liftRules(minimum);
  await upload(lab, {
    party: "advertiser",
    name: "exposures",
    rows: exposures,
    schema: s.exposures,
    purposes: ["measurement"],
    rule: r.exposures,
  });
  await upload(lab, {
    party: "retailer",
    name: "purchases",
    rows: purchases,
    schema: s.purchases,
    purposes: ["measurement"],
    rule: r.purchases,
  });
  declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "lift" });
  return lab;
}

const spent = (lab: Lab) => budget(lab).budgets.find((b) => b.scope === "collaboration")!.spent;
const params = { startDay: 0, endDay: 27 };
/** The issue's reproduction: a lift by region at preset adh_noise (20), ε 0.2 per aggregate. */
const adhNoise = (): TemplateInput =>
  liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: "adh_noise", epsilonPerAggregate: 0.2 });

describe("previewQuery: the room's effective threshold, before any budget is spent", () => {
  it("reports ≥ 100 from the owner's rule for an adh_noise (20) template, and charges nothing", async () => {
    const lab = await room(100);
    const before = spent(lab);
    const p = previewQuery(lab, { template: adhNoise(), params, party: "advertiser" });
    expect(p.threshold.template).toBe(20);
    expect(p.threshold.effective).toBe(100);
    expect(p.threshold.from).toBe("advertiser/exposures"); // both rules say 100: the first in key order
    expect(p.thresholdRaised).toBe(true);
    expect(p.threshold.text).toMatch(/≥ 100 distinct people .*analysis rule of advertiser\/exposures.*own minimum 20 is looser/);
    expect(p.text).toContain("≥ 100 distinct people");
    expect(p.charged).toBe(false);
    expect(spent(lab)).toEqual(before);
    // the cost and the ± of every released number (5 noised quantities at ε 0.2 = ε 1, the issue's charge)
    expect(p.cost!.text).toBe("ε = 1");
    expect(p.plusMinus.map((x) => x.name)).toEqual(["units", "conversions", "converters", "value", "valueSquared"]);
    expect(p.plusMinus.every((x) => x.plusMinus > 0)).toBe(true);
    expect(p.runsLeft).toEqual({ party: "advertiser", runs: 3 }); // ε 3 / 1
    // it renders (a valid payload, with the threshold line in text and HTML)
    const b = bundleOf(p);
    expect(parsePayload(b[CLEANROOM_MIME]).ok).toBe(true);
    expect(String(b["text/plain"])).toContain("≥ 100 distinct people");
    expect(String(b["text/html"])).toContain("analysis rule of advertiser/exposures");
  });

  it("says the template's own threshold applies when no rule is stricter", async () => {
    const lab = await room(10);
    const p = previewQuery(lab, { template: adhNoise(), params });
    expect(p.threshold).toMatchObject({ effective: 20, from: "template", template: 20 });
    expect(p.thresholdRaised).toBe(false);
    expect(p.runsLeft).toBeNull();
  });

  it("lists what the owners' rules allow and refuse, with the rule that refuses", async () => {
    const lab = await room(100);
    const t = adhNoise();
    const avgSpend: TemplateInput = {
      ...t,
      aggregates: [...t.aggregates, { name: "avgValue", fn: "avg", column: "purchases.value_cents", bounds: [0, 100000] }],
    };
    const before = spent(lab);
    const p = previewQuery(lab, { template: avgSpend, params });
    expect(p.refused).toEqual([
      {
        use: "aggregate",
        column: "purchases.value_cents",
        fn: "AVG",
        rule: "retailer/purchases",
        allowed: false,
        reason: "allows SUM(value_cents)",
      },
    ]);
    expect(p.allowed.some((v) => v.use === "dimension" && v.column === "exposures.region" && v.rule === "advertiser/exposures")).toBe(true);
    expect(p.refusal!.code).toBe("QUERY_NOT_APPROVED");
    expect(p.refusal!.message).toMatch(
      /AVG\(value_cents\) is not allowed by the rule of retailer\/purchases; on value_cents it allows SUM\(value_cents\)/,
    );
    expect(spent(lab)).toEqual(before);
    expect(parsePayload(bundleOf(p)[CLEANROOM_MIME]).ok).toBe(true);
    // the rendered view names the refused function, whose rule refuses it, and what that rule allows
    expect(String(bundleOf(p)["text/plain"])).toMatch(
      /aggregate\s+AVG\(purchases\.value_cents\)\s+retailer\/purchases\s+✗? ?deny\s+allows SUM\(value_cents\)/,
    );
  });

  it("refuses an unknown parameter before anything, naming the closest declared one", async () => {
    const lab = await room(100);
    expect(() => previewQuery(lab, { template: adhNoise(), params: { startDy: 0, endDay: 27 } })).toThrow(
      /"params.startDy" .*undeclared parameter startDy \(did you mean startDay\?\); declared: startDay, endDay/,
    );
  });
});

describe("approval and query results show the threshold in force", () => {
  it("approveTemplate returns the effective threshold; the query result says the template's was looser", async () => {
    const lab = await room(100);
    const t = adhNoise();
    const a = approveTemplate(lab, { template: t, party: "advertiser" });
    expect(a.threshold).toMatchObject({ effective: 100, from: "advertiser/exposures", template: 20 });
    expect(a.threshold!.text).toBe(previewQuery(lab, { template: t, params }).threshold.text);
    approveTemplate(lab, { template: t, party: "retailer" });
    const q = await cleanRoomQuery(lab, { template: t, params, party: "advertiser", analyst: "bo", purpose: "measurement" });
    expect(q.threshold).toMatchObject({ effective: 100, template: 20, raised: true });
    expect(q.rows).toEqual([]); // every 50-person group is under the owners' 100
    expect(String(bundleOf(q)["text/plain"])).toMatch(
      /threshold ≥ 100 from the analysis rule of advertiser\/exposures \(the template's own 20 is looser\)/,
    );
  });

  it("a template as strict as the rules is not flagged", async () => {
    const lab = await room(10);
    const t = adhNoise();
    approveTemplate(lab, { template: t, party: "advertiser" });
    approveTemplate(lab, { template: t, party: "retailer" });
    const q = await cleanRoomQuery(lab, { template: t, params, party: "advertiser", analyst: "bo", purpose: "measurement" });
    expect(q.threshold).toMatchObject({ effective: 20, from: "template", raised: false });
    expect(String(bundleOf(q)["text/plain"])).not.toMatch(/is looser/);
  });
});

describe("errors that name the fix", () => {
  it("a purpose typo in a query suggests the purpose, and charges nothing", async () => {
    const lab = await room(10);
    const t = adhNoise();
    approveTemplate(lab, { template: t, party: "advertiser" });
    approveTemplate(lab, { template: t, party: "retailer" });
    const before = spent(lab);
    await expect(cleanRoomQuery(lab, { template: t, params, party: "advertiser", analyst: "bo", purpose: "measurment" })).rejects.toThrow(
      /PURPOSE_UNKNOWN|did you mean measurement\?/,
    );
    await expect(
      cleanRoomQuery(lab, { template: t, params, party: "advertiser", analyst: "bo", purpose: "measurment" }),
    ).rejects.toMatchObject({ code: "PURPOSE_UNKNOWN", message: expect.stringContaining("did you mean measurement?") });
    expect(spent(lab)).toEqual(before);
  });

  it("a wrong column echoes its name and lists the valid columns", async () => {
    const lab = await room(100);
    const t = adhNoise();
    const wrong: TemplateInput = { ...t, groupBy: ["exposures.group", "exposures.regoin"] };
    expect(() => approveTemplate(lab, { template: wrong, party: "advertiser" })).toThrow(
      new RegExp(
        '"template.groupBy.1" expected a column of exposures, got regoin, which exposures does not have \\(did you mean region\\?\\); ' +
          "columns of exposures: join_key, group, reached, impressions, first_exposure_day, region, age_band, channel",
      ),
    );
  });

  it("a dimension the rule refuses lists the rule's dimension columns", async () => {
    const lab = await room(100);
    const t = adhNoise();
    const notDim: TemplateInput = { ...t, groupBy: ["exposures.group", "exposures.first_exposure_day"] };
    expect(() => previewQuery(lab, { template: notDim, params }).refusal!.message).not.toThrow();
    expect(previewQuery(lab, { template: notDim, params }).refusal!.message).toMatch(
      new RegExp(
        "column first_exposure_day is not a dimension column in the rule of advertiser/exposures; " +
          "its dimension columns: group, region, age_band, channel, reached",
      ),
    );
  });
});

describe("upload: a wrong column names the fix", () => {
  const rows = [{ join_key: "a", purchase_day: 1, value_cents: 2, store_region: "north", category: "x" }];
  const put = (lab: Lab, r: object[]) =>
    upload(lab, { party: "retailer", name: "purchases", rows: r, schema: liftSchemas().purchases, purposes: ["measurement"] });
  it("a misspelt column: the declared one is missing, the misspelling is suggested, the declared columns listed", async () => {
    const lab = openLab({ store: ":memory:" });
    addParty(lab, { party: "retailer" });
    const misspelt = rows.map(({ value_cents, ...r }) => ({ ...r, valu_cents: value_cents }));
    await expect(put(lab, misspelt)).rejects.toThrow(
      new RegExp(
        '"data.value_cents" expected a column declared in the schema, got no column value_cents in the data \\(is it valu_cents\\?\\); ' +
          "declared columns: join_key, purchase_day, value_cents, store_region, category",
      ),
    );
  });
  it("an extra column is named with the declared columns; its values are never echoed", async () => {
    const lab = openLab({ store: ":memory:" });
    addParty(lab, { party: "retailer" });
    const secret = "alice@example.com";
    const e = await (async () => {
      try {
        await put(
          lab,
          rows.map((r) => ({ ...r, email: secret })),
        );
      } catch (x) {
        return x as Error;
      }
    })();
    expect(e?.message).toMatch(
      /got an undeclared column email; declared columns: join_key, purchase_day, value_cents, store_region, category/,
    );
    expect(e?.message).not.toContain(secret);
  });
});
