// @vitest-environment happy-dom
/**
 * ± per cell where a column's ± does not apply (issue 19 leftovers): an `avg` cell (noisy sum ÷
 * noisy unit count: delta method around the released values) and every cell of a remainder row
 * (the sum of `mergedRows` independently noised rows). Checked against the formulas from the
 * released values, against the truth by simulation (the ± covers ≈ 95% of releases), and on
 * what a reader sees (DOM, HTML, text).
 */
import { describe, expect, it, vi } from "vitest";

vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));

import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { releaseResult } from "../../kernel-lib/src/cleanroom/release.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { queryPayloadFromResult } from "../../kernel-lib/src/display/from-results.js";
import { cellPlusMinusRows, columnNoise } from "../../kernel-lib/src/display/noise.js";
import { CELL_PM_NOTE } from "../../kernel-lib/src/display/format.js";
import { toHtml } from "../../kernel-lib/src/display/html.js";
import { toText } from "../../kernel-lib/src/display/text.js";
import { renderPayload } from "../../extension/src/views/payload.js";

const spec = {
  version: 1,
  name: "spend",
  base: { owner: "a", dataset: "t" },
  groupBy: ["t.d"],
  aggregates: [
    { name: "people", fn: "countUnits" },
    { name: "spend", fn: "sum", column: "t.amount", bounds: [0, 100] },
    { name: "avgSpend", fn: "avg", column: "t.amount", bounds: [0, 100] },
  ],
  threshold: { minimum: 50, style: "remainder" },
  contribution: { maxRowsPerUnit: 1, orderBy: [] },
};
const template = parseTemplate({ ...spec, noise: { mechanism: "laplace", epsilonPerAggregate: "0.5" } });
// three big groups and three small ones (merged into the remainder row); mean spend 40 everywhere
const units = [400, 900, 2500, 20, 25, 30];
const exact = {
  dimensions: ["d"],
  measures: ["spend", "avgSpend"],
  groups: units.map((u, i) => ({ key: [`g${i}`], units: u, values: { spend: BigInt(40 * u), avgSpend: BigInt(40 * u) } })),
};
const release = (seed: string, t = template) =>
  releaseResult({
    template: t,
    templateHash: "h",
    checked: { minimum: 50, minimumFrom: "template", owners: ["a"] },
    exact,
    engine: "x",
    cost: null,
    rng: seededRng(seed),
  });

describe("per-cell ± (avg cells, the remainder row)", () => {
  it("follows the formulas from the released values", () => {
    const r = release("pm-1");
    const rem = r.suppressed.remainder!;
    expect(rem).toMatchObject({ mergedRows: 3, released: true, rowIndex: 3 });
    const v = Object.fromEntries(r.noise!.perAggregate.map((p) => [p.name, p.variance]));
    const cells = r.noise!.cellVariance!;
    // every avg cell, plus the remainder's two other aggregates
    expect(cells).toHaveLength(r.rows.length + 2);
    for (const c of cells) {
      const row = r.rows[c.row]!;
      const k = c.row === rem.rowIndex ? 3 : 1;
      if (c.column === "avgSpend") {
        const n = row.people as number; // the released (noisy) unit count the avg divides by
        const avg = row.avgSpend as number;
        expect(c.variance).toBeCloseTo((k * (v.avgSpend! + avg * avg * v.units!)) / (n * n), 9);
        expect(c.how).toBe(k > 1 ? "ratio+remainder" : "ratio");
      } else {
        expect(c.row).toBe(rem.rowIndex);
        expect(c.variance).toBeCloseTo(3 * v[c.column === "people" ? "units" : c.column]!, 9);
        expect(c.how).toBe("remainder");
      }
    }
    // the remainder row's ± of a count is wider than one row's exact ±, never narrower
    const pm = cellPlusMinusRows(r.noise!, r.rows.length, ["d", "people", "spend", "avgSpend"]);
    const one = columnNoise(r.noise!, "people")!.halfWidth!;
    expect(pm[3]![1]).toBeGreaterThan(one);
    expect(pm[3]![0]).toBeNull();
    // an avg's ± shrinks as the group grows
    expect(pm[0]![3]!).toBeGreaterThan(pm[1]![3]!);
    expect(pm[1]![3]!).toBeGreaterThan(pm[2]![3]!);
    expect(pm[0]![1]).toBeNull(); // ordinary rows: the column's ± in the footer applies
  });

  it("covers the truth about 95% of the time (seeded simulation)", () => {
    const inside = { avgSmall: 0, remPeople: 0, remSpend: 0 };
    const runs = 400;
    for (let i = 0; i < runs; i++) {
      const r = release(`pm-sim-${i}`);
      if (r.suppressed.remainder?.rowIndex !== 3) continue;
      const pm = cellPlusMinusRows(r.noise!, r.rows.length, ["d", "people", "spend", "avgSpend"]);
      if (Math.abs((r.rows[0]!.avgSpend as number) - 40) <= pm[0]![3]!) inside.avgSmall++;
      if (Math.abs((r.rows[3]!.people as number) - 75) <= pm[3]![1]!) inside.remPeople++;
      if (Math.abs((r.rows[3]!.spend as number) - 40 * 75) <= pm[3]![2]!) inside.remSpend++;
    }
    for (const [k, n] of Object.entries(inside)) {
      expect(n / runs, k).toBeGreaterThan(0.9);
      expect(n / runs, k).toBeLessThan(0.995);
    }
  });

  it("is shown beside the value (≈±) with a footnote in the view, the HTML and the text", () => {
    const r = release("pm-2");
    const p = queryPayloadFromResult(r);
    expect(p.rows.filter((x) => x.plusMinus)).toHaveLength(r.rows.length);
    const { node } = renderPayload(p);
    const marks = [...node.querySelectorAll("[data-pm-cell]")];
    expect(marks).toHaveLength(r.rows.length + 2);
    expect(marks.every((m) => /^≈±[\d.,]+$/.test(m.textContent ?? ""))).toBe(true);
    expect(node.querySelector('[data-field="cell-pm-note"]')?.textContent).toBe(CELL_PM_NOTE);
    const remainderPeople = p.rows[3]!.plusMinus![1]!;
    expect(toText(p)).toContain(`≈±${remainderPeople}`);
    expect(toText(p)).toContain(CELL_PM_NOTE);
    expect(toHtml(p)).toContain(`≈±${remainderPeople}`);
    // the avg column says its ± is per row
    expect(p.columns.find((c) => c.name === "avgSpend")!.noise!.note).toMatch(/per row/);
  });

  it("no noise, no ±: an exact result carries none", () => {
    const r = release("pm-3", parseTemplate(spec));
    expect(r.noise).toBeNull();
    expect(r.suppressed.remainder?.released).toBe(true);
    const p = queryPayloadFromResult(r);
    expect(p.rows.some((x) => x.plusMinus)).toBe(false);
    expect(toText(p)).not.toContain("≈±");
  });
});
