// @vitest-environment happy-dom
/**
 * Views people read like pandas (issue 19, item 4): each noisy column shows its own noise and
 * ± (not the first aggregate's for all), negative noisy values get a footnote, the opt-in clamp
 * labels every value it changed, the audit view names templates, the lift chart shows the ground
 * truth and survives the HTML export. Asserted on what a reader sees: DOM, HTML and text.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";

vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));

import { audit, budget, cleanRoomQuery, isCleanRoomError, openLab, type Lab } from "../../kernel-lib/src/index.js";
import { clampNonNegative } from "../../kernel-lib/src/verbs/query.js";
import { CLEANROOM_MIME, CleanRoomPayload, type PayloadOf } from "../../kernel-lib/src/display/schema.js";
import { MIMEBUNDLE_SYMBOL, type MimeBundle } from "../../kernel-lib/src/display/bundle.js";
import { queryPayloadFromResult } from "../../kernel-lib/src/display/from-results.js";
import { toHtml } from "../../kernel-lib/src/display/html.js";
import { toText } from "../../kernel-lib/src/display/text.js";
import { liftChartSpec } from "../../kernel-lib/src/display/vegalite.js";
import { EXAMPLE_PAYLOADS } from "../../kernel-lib/src/display/examples.js";
import { noiseHalfWidth } from "../../kernel-lib/src/cleanroom/design.js";
import type { QueryResult } from "../../kernel-lib/src/cleanroom/release.js";
import { renderPayload } from "../../extension/src/views/payload.js";
import { sidebarView } from "../../extension/src/views/sidebar.js";
import { setUp, TEMPLATE } from "../dp/lab-fixture.js";

const bundleOf = (x: object): MimeBundle => (x as Record<symbol, () => MimeBundle>)[MIMEBUNDLE_SYMBOL]!();
const txt = (el: Element | null | undefined) => (el?.textContent ?? "").replace(/\s+/g, " ").trim();
const REQ = {
  template: TEMPLATE,
  params: { startDay: 0, endDay: 27 },
  party: "advertiser",
  analyst: "bo",
  purpose: "measurement",
} as const;

/** A hand-made noisy result: two groups, two aggregates of different scales. */
function result(rows: QueryResult["rows"]): QueryResult {
  return {
    kind: "query",
    templateName: "spend by region",
    templateHash: "ab".repeat(32),
    engine: "arquero",
    dimensions: ["region"],
    aggregates: ["buyers", "spendSquared"],
    rows,
    suppressed: { style: "drop", minimum: 5, minimumFrom: "template", decidedOn: "noisy", remainder: null, rows: [] },
    noise: {
      mechanism: "discreteLaplace",
      perAggregate: [
        { name: "units", scale: "4", scaleExact: "4", l1Sensitivity: "1", variance: 32, fn: "countUnits" },
        { name: "buyers", scale: "4", scaleExact: "4", l1Sensitivity: "1", variance: 32, fn: "countUnitsWithRows" },
        { name: "spendSquared", scale: "40000", scaleExact: "40000", l1Sensitivity: "10000", variance: 3.2e9, fn: "sumSquares" },
      ],
    },
    cost: { kind: "pureDp", text: "ε = 3/4", epsilon: "3/4" },
    differenceCheck: null,
    rngStamp: { rngMode: "seeded", label: "teaching mode — not private" },
  };
}

describe("query view: per-column noise and ±", () => {
  let lab: Lab;
  let p: PayloadOf<"query">;
  let r: Awaited<ReturnType<typeof cleanRoomQuery>>;
  beforeAll(async () => {
    lab = openLab({ store: ":memory:", rng: { seed: "views" }, budget: { epsilon: 10 } });
    setUp(lab);
    r = await cleanRoomQuery(lab, REQ);
    p = bundleOf(r)[CLEANROOM_MIME] as PayloadOf<"query">;
  });
  afterAll(() => lab.close());

  it("a payload with two aggregates of different scales shows each its own ±", () => {
    // the oracle: the design lab's own half-width of each quantity's own scale
    for (const c of p.columns.filter((x) => x.noisy)) {
      const q = r.noise!.perAggregate.find((x) => x.name === c.name) ?? r.noise!.perAggregate.find((x) => x.name === "units")!;
      expect(c.noise?.scale, c.name).toBe(Number(q.scale));
      expect(c.noise?.halfWidth, c.name).toBe(noiseHalfWidth("laplace", q.scaleExact, 0.95));
    }
    const conv = p.columns.find((c) => c.name === "conversions")!.noise!;
    const value = p.columns.find((c) => c.name === "value")!.noise!;
    expect(value.scale).toBeGreaterThan(conv.scale * 100); // the real case: value's scale is not the count's
    expect(value.halfWidth).toBeGreaterThan(conv.halfWidth! * 100);

    const { node } = renderPayload(CleanRoomPayload.parse(p));
    for (const c of p.columns.filter((x) => x.noise)) {
      const pm = `±${c.noise!.halfWidth!.toLocaleString("en-US")}`;
      expect(txt(node.querySelector(`tfoot [data-pm="${c.name}"]`)), c.name).toBe(pm);
      expect(txt(node.querySelector(`[data-noise-column="${c.name}"]`)), c.name).toContain(
        `scale ${c.noise!.scale.toLocaleString("en-US")}`,
      );
      expect(txt(node.querySelector(`[data-noise-column="${c.name}"]`)), c.name).toContain(pm);
    }
    const text = toText(p);
    expect(text).toMatch(
      new RegExp(
        `^\\s+value: scale ${value.scale.toLocaleString("en-US")} · sensitivity [\\d,]+ · ±${value.halfWidth!.toLocaleString("en-US")} \\(95%\\)$`,
        "m",
      ),
    );
    expect(text).toMatch(new RegExp(`^\\s+conversions: scale ${conv.scale} · sensitivity \\d+ · ±${conv.halfWidth} \\(95%\\)$`, "m"));
    const html = toHtml(p);
    expect(html).toContain(`<b>value</b> — scale ${value.scale.toLocaleString("en-US")}`);
    // the old footer showed one scale for every column
    expect(txt(node.querySelector('[data-field="noise"]'))).not.toMatch(/scale/);
  });

  it("numbers are right-aligned with tabular numerals, dimensions are not", () => {
    const { node } = renderPayload(CleanRoomPayload.parse(p));
    const ths = [...node.querySelectorAll("thead th")].map((th) => th.classList.contains("crl-num"));
    expect(ths).toEqual(p.columns.map((c) => c.type === "number").concat(false));
    const tds = [...node.querySelector("tbody tr")!.querySelectorAll("td")].map((td) => td.classList.contains("crl-num"));
    expect(tds).toEqual(ths);
    expect(toHtml(p)).toMatch(/<td style="[^"]*text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap">/);
    // text: numbers padded on the left (their last digits line up)
    const lines = toText(p).split("\n");
    const head = lines.find((l) => l.includes("population*"))!;
    const end = head.indexOf("population*") + "population*".length;
    const body = lines.slice(lines.indexOf(head) + 2, lines.indexOf(head) + 4);
    for (const l of body) expect(l[end - 1], l).toMatch(/\d/);
  });
});

describe("negative noisy values", () => {
  it("negative noisy value → footnote present, on every renderer", () => {
    const p = queryPayloadFromResult(
      result([
        { region: "north", buyers: 12, spendSquared: -30411 },
        { region: "south", buyers: 40, spendSquared: 9_100_000 },
      ]),
    );
    const { node } = renderPayload(p);
    expect(txt(node.querySelector('[data-field="negative-note"]'))).toMatch(/noise can push a small count .* below zero/i);
    expect(node.querySelectorAll(".crl-negative")).toHaveLength(1);
    expect(txt(node.querySelector(".crl-negative"))).toBe("-30,411†");
    expect(toText(p)).toMatch(/-30,411†/);
    expect(toText(p)).toMatch(/^† Noise can push a small count/m);
    expect(toHtml(p)).toContain("† Noise can push a small count");
  });

  it("no negative value → no footnote", () => {
    const p = queryPayloadFromResult(result([{ region: "north", buyers: 12, spendSquared: 30411 }]));
    expect(renderPayload(p).node.querySelector('[data-field="negative-note"]')).toBeNull();
    expect(toText(p)).not.toContain("†");
    expect(toHtml(p)).not.toContain("†");
  });
});

describe("opt-in clamp", () => {
  const rows = [
    { region: "north", buyers: -3, spendSquared: -30411 },
    { region: "south", buyers: 40, spendSquared: 9_100_000 },
    { region: "west", buyers: 2, spendSquared: "-90071992547409930" },
  ];

  it("clamp labels every value it changed", () => {
    const before = result(rows);
    const r = clampNonNegative(before);
    expect(r.postProcessing.cells).toEqual([
      { row: 0, column: "buyers", released: -3 },
      { row: 0, column: "spendSquared", released: -30411 },
      { row: 2, column: "spendSquared", released: "-90071992547409930" },
    ]);
    expect(r.rows.map((x) => [x.buyers, x.spendSquared])).toEqual([
      [0, 0],
      [40, 9_100_000],
      [2, 0],
    ]);
    expect(before.rows[0]!.buyers).toBe(-3); // the released result is untouched

    const p = queryPayloadFromResult(r);
    const { node } = renderPayload(p);
    const marked = [...node.querySelectorAll(".crl-clamped")];
    expect(marked.map((m) => m.getAttribute("data-released"))).toEqual(["-3", "-30411", "-90071992547409930"]);
    expect(marked.every((m) => /post-processing: released .+, clamped at 0/.test(m.getAttribute("title")!))).toBe(true);
    // every changed cell is marked, and no other
    const cells = [...node.querySelectorAll("tbody tr")].map((tr) =>
      [...tr.querySelectorAll("td")].slice(1, 3).map((td) => !!td.querySelector(".crl-clamped")),
    );
    expect(cells).toEqual([
      [true, true],
      [false, false],
      [false, true],
    ]);
    expect(txt(node.querySelector('[data-field="clamp-note"]'))).toMatch(/^‡ post-processing: 3 noisy values below 0 shown as 0/);
    expect(node.querySelector('[data-field="negative-note"]')).toBeNull();
    const text = toText(p);
    expect(text.match(/0‡/g)).toHaveLength(3);
    expect(text).toContain("‡ buyers in row north: released -3, shown as 0");
    expect(text).toContain("‡ spendSquared in row west: released -90071992547409930, shown as 0");
    expect(toHtml(p).match(/<sup>‡<\/sup>/g)).toHaveLength(3);
  });

  it("a result without negatives is returned unchanged, with an empty list", () => {
    const r = clampNonNegative(result([rows[1]!]));
    expect(r.postProcessing.cells).toEqual([]);
    expect(r.rows).toEqual([rows[1]]);
  });

  it("cleanRoomQuery(…, { clamp }) validates the option at the door and labels the result", async () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "views-clamp" }, budget: { epsilon: 10 } });
    try {
      setUp(lab);
      const spent = () => JSON.stringify(budget(lab).budgets.map((b) => b.spent));
      const before = spent();
      let err: unknown = null;
      await cleanRoomQuery(lab, { ...REQ, clamp: "zero" as never }).catch((e) => (err = e));
      expect(isCleanRoomError(err) && err.code).toBe("INPUT_INVALID");
      expect(isCleanRoomError(err) && String(err.details.field)).toContain("clamp");
      expect(spent()).toBe(before); // refused before any charge
      const r = await cleanRoomQuery(lab, { ...REQ, clamp: "nonNegative" });
      expect(r.postProcessing?.clamp).toBe("nonNegative");
      const p = bundleOf(r)[CLEANROOM_MIME] as PayloadOf<"query">;
      expect(p.postProcessing).toEqual({ clamp: "nonNegative", cells: r.postProcessing!.cells.length });
      for (const row of r.rows) for (const a of r.aggregates) expect(Number(row[a] ?? 0)).toBeGreaterThanOrEqual(0);
    } finally {
      lab.close();
    }
  });
});

describe("audit view", () => {
  it("audit shows the template name, the hash on hover", async () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "views-audit" }, budget: { epsilon: 10 } });
    try {
      setUp(lab);
      const r = await cleanRoomQuery(lab, REQ);
      const p = bundleOf(audit(lab))[CLEANROOM_MIME] as PayloadOf<"audit">;
      const withTemplate = p.entries.filter((e) => e.template);
      expect(withTemplate.length).toBeGreaterThan(0);
      for (const e of withTemplate) expect(e.template).toEqual({ name: "lift", hash: r.templateHash });
      const { node } = renderPayload(p);
      const names = [...node.querySelectorAll(".crl-template")];
      expect(names).toHaveLength(withTemplate.length);
      for (const n of names) {
        expect(n.textContent).toBe("lift");
        expect(n.getAttribute("title")).toBe(`template ${r.templateHash}`);
      }
      expect(toText(p)).toMatch(/\squery\s+lift\s/);
      expect(toHtml(p)).toContain(`<span title="template ${r.templateHash}">lift</span>`);
    } finally {
      lab.close();
    }
  });

  it("budget history (view, text, HTML, sidebar) shows the template name, the hash on hover", async () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "views-budget-names" }, budget: { epsilon: 10 } });
    try {
      setUp(lab);
      const r = await cleanRoomQuery(lab, REQ);
      const p = bundleOf(budget(lab))[CLEANROOM_MIME] as PayloadOf<"budget">;
      const charges = p.budgets.flatMap((b) => b.history);
      expect(charges.length).toBeGreaterThan(0);
      for (const c of charges) expect(c).toMatchObject({ templateName: "lift", templateHash: r.templateHash });
      const names = [...renderPayload(p).node.querySelectorAll(".crl-history .crl-template")];
      expect(names).toHaveLength(charges.length);
      for (const n of names) expect([n.textContent, n.getAttribute("title")]).toEqual(["lift", `template ${r.templateHash}`]);
      expect(renderPayload(p).node.querySelector(".crl-history code.crl-hash")).toBeNull();
      const side = sidebarView("n.ipynb", null, [p]);
      expect(side.querySelectorAll(".crl-sidebar-history .crl-template")).toHaveLength(p.budgets.filter((b) => b.history.length).length);
      expect(toText(p)).toMatch(/\slift\s/);
      expect(toText(p)).not.toContain(r.templateHash.slice(0, 8));
      expect(toHtml(p)).toContain(`<span title="template ${r.templateHash}">lift</span>`);
    } finally {
      lab.close();
    }
  });

  it("an unknown template hash stays a short hash with the full one on hover", () => {
    const p = CleanRoomPayload.parse({
      ...EXAMPLE_PAYLOADS.audit,
      entries: [{ index: 0, at: "t", action: "query", hash: "00", template: { hash: "cd".repeat(32) } }],
    }) as PayloadOf<"audit">;
    const code = renderPayload(p).node.querySelector("td code.crl-hash[title]")!;
    expect(code.getAttribute("title")).toBe("cd".repeat(32));
    expect(code.textContent).toBe("cdcdcdcd…cdcd");
  });
});

describe("lift chart", () => {
  const lift = CleanRoomPayload.parse(EXAMPLE_PAYLOADS.lift) as PayloadOf<"lift">;
  const { groundTruth: _gt, ...noTruth } = lift;
  const layers = (spec: unknown) => JSON.stringify(spec);

  it("draws the ground truth when known, at a readable width", () => {
    const spec = liftChartSpec(lift) as { vconcat: { width: number }[] };
    expect(spec.vconcat.every((v) => v.width >= 400)).toBe(true);
    expect(layers(spec)).toContain('"label":"ground truth 14%"');
    expect(layers(liftChartSpec(noTruth as PayloadOf<"lift">))).not.toContain("ground truth");
  });

  it("is present in the HTML export as an <img> data URI (no inline svg, no script)", () => {
    const html = toHtml(lift);
    const m = /<img alt="[^"]*" src="data:image\/svg\+xml;base64,([A-Za-z0-9+/=]+)"/.exec(html);
    expect(m).not.toBeNull();
    expect(html).not.toMatch(/<svg|<script/);
    const svg = Buffer.from(m![1]!, "base64").toString("utf8");
    expect(svg).toMatch(/^<svg xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    // well-formed enough for a browser's XML parser: no element repeats an attribute
    for (const tag of svg.match(/<[a-z]+\s[^>]*>/g)!) {
      const names = [...tag.matchAll(/\s([a-z-]+)="/g)].map((m) => m[1]);
      expect(new Set(names).size, tag).toBe(names.length);
    }
    expect(svg).toContain("ground truth 14%");
    expect(svg).toContain("test (exposed)");
    const bare = Buffer.from(/base64,([^"]+)"/.exec(toHtml(noTruth as PayloadOf<"lift">))![1]!, "base64").toString("utf8");
    expect(bare).not.toContain("ground truth");
  });
});
