import { describe, expect, it } from "vitest";
import { readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import { compile } from "vega-lite";
import { CleanRoomPayload, type PayloadOf } from "../../kernel-lib/src/display/schema.js";
import { EXAMPLE_PAYLOADS } from "../../kernel-lib/src/display/examples.js";
import { budgetChartSpec, liftChartSpec } from "../../kernel-lib/src/display/vegalite.js";

const golden = (name: string, spec: unknown) => {
  const file = resolve(__dirname, "golden", name);
  if (process.env.UPDATE_GOLDEN) writeFileSync(file, JSON.stringify(spec, null, 2) + "\n");
  return JSON.parse(readFileSync(file, "utf8"));
};
const lift = CleanRoomPayload.parse(EXAMPLE_PAYLOADS.lift) as PayloadOf<"lift">;
const budget = CleanRoomPayload.parse(EXAMPLE_PAYLOADS.budget) as PayloadOf<"budget">;

describe("vega-lite specs", () => {
  it("lift chart matches its golden spec", () => {
    const spec = liftChartSpec(lift);
    expect(spec).toEqual(golden("lift.vl.json", spec));
  });

  it("budget chart matches its golden spec", () => {
    const spec = budgetChartSpec(budget);
    expect(spec).toEqual(golden("budget.vl.json", spec));
  });

  it("lift chart carries each arm's interval as error-bar bounds", () => {
    const values = (liftChartSpec(lift) as { data: { values: unknown } }).data.values;
    expect(values).toEqual([
      expect.objectContaining({ group: "test (exposed)", rate: 0.046, lo: 0.0439, hi: 0.0481 }),
      expect.objectContaining({ group: "control (holdout)", rate: 0.04, lo: 0.0362, hi: 0.0438 }),
    ]);
  });

  it("both specs compile with Vega-Lite 6 and need no external data", () => {
    for (const spec of [liftChartSpec(lift), budgetChartSpec(budget)]) {
      const out = compile(spec);
      expect(out.spec.marks?.length).toBeGreaterThan(0);
      expect(JSON.stringify(spec)).not.toMatch(/"url"/);
    }
  });
});
