/**
 * Vega-Lite spec builders for cleanroom-lab payloads: plain JSON specs (no functions, no
 * external data URLs), so they can be golden-tested, embedded in a notebook and rendered
 * offline by the extension (vega-embed) or any Vega-Lite 6 renderer.
 *
 * Charts stay neutral about theme: no background, no fixed text colour; the renderer's
 * theme (or JupyterLab's CSS variables in the extension) decides.
 */
import type { TopLevelSpec } from "vega-lite";
import type { PayloadOf } from "./schema.js";
import { unitSymbol } from "./format.js";

const SCHEMA = "https://vega.github.io/schema/vega-lite/v6.json";

/** Width of the lift chart's panels (px): readable beside the table, not a thumbnail. */
export const LIFT_CHART_WIDTH = 440;

/**
 * Conversion rate per arm with its confidence interval (error bars), and below it the relative
 * lift with its interval, the zero line and — for a synthetic study — the generator's ground
 * truth as a dashed line, for a lift payload.
 *
 * @example
 * const spec = liftChartSpec(liftPayload); // hand to vega-embed
 */
export function liftChartSpec(p: PayloadOf<"lift">): TopLevelSpec {
  const level = Math.round((p.level ?? 0.95) * 100);
  const values = [
    { group: "test (exposed)", rate: p.test.rate, lo: p.test.ci[0], hi: p.test.ci[1], population: p.test.population },
    { group: "control (holdout)", rate: p.control.rate, lo: p.control.ci[0], hi: p.control.ci[1], population: p.control.population },
  ];
  const liftValues = [{ what: "lift", estimate: p.lift.estimate, lo: p.lift.ci[0], hi: p.lift.ci[1] }];
  const truth = p.groundTruth
    ? [{ what: "lift", truth: p.groundTruth.lift, label: `ground truth ${+(p.groundTruth.lift * 100).toFixed(2)}%` }]
    : [];
  const lo = Math.min(0, p.lift.ci[0], ...(p.groundTruth ? [p.groundTruth.lift] : []));
  const hi = Math.max(0, p.lift.ci[1], ...(p.groundTruth ? [p.groundTruth.lift] : []));
  const pad = (hi - lo) * 0.08 || 0.01;
  const liftX = {
    type: "quantitative",
    scale: { domain: [lo - pad, hi + pad], nice: false },
    title: `relative lift, ${level}% CI`,
    axis: { format: ".0%", tickCount: 6, labelOverlap: true },
  } as const;
  const liftLayers: object[] = [
    {
      mark: { type: "rule", color: "#8c8c8c", strokeWidth: 1 },
      data: { values: [{ zero: 0 }] },
      encoding: { x: { field: "zero", ...liftX } },
    },
    {
      mark: { type: "errorbar", ticks: true, size: 12, thickness: 2, color: "#3b7dd8" },
      encoding: { x: { field: "lo", ...liftX }, x2: { field: "hi" }, y: { field: "what", type: "nominal", title: null } },
    },
    {
      mark: { type: "point", filled: true, size: 90, color: "#3b7dd8" },
      encoding: {
        x: { field: "estimate", ...liftX },
        y: { field: "what", type: "nominal", title: null },
        tooltip: [
          { field: "estimate", type: "quantitative", format: ".1%", title: "lift" },
          { field: "lo", type: "quantitative", format: ".1%", title: `${level}% CI low` },
          { field: "hi", type: "quantitative", format: ".1%", title: `${level}% CI high` },
        ],
      },
    },
  ];
  if (truth.length)
    liftLayers.push(
      {
        mark: { type: "rule", color: "#e07b00", strokeDash: [5, 3], strokeWidth: 2 },
        data: { values: truth },
        encoding: { x: { field: "truth", ...liftX }, tooltip: [{ field: "label", type: "nominal", title: "ground truth" }] },
      },
      {
        mark: { type: "text", color: "#e07b00", align: "left", dx: 4, dy: -14, fontSize: 11 },
        data: { values: truth },
        encoding: { x: { field: "truth", ...liftX }, text: { field: "label" } },
      },
    );
  return {
    $schema: SCHEMA,
    description:
      `Conversion rate by group and relative lift with ${level}% confidence intervals` +
      (p.groundTruth ? ", and the ground-truth lift" : ""),
    title: { text: `Conversion rate by group and lift, ${level}% CI`, anchor: "start", fontSize: 13 },
    background: "transparent",
    data: { values },
    config: { axis: { labelFontSize: 12, titleFontSize: 12 } },
    vconcat: [
      {
        width: LIFT_CHART_WIDTH,
        height: 110,
        encoding: {
          y: { field: "group", type: "nominal", title: null, sort: ["test (exposed)", "control (holdout)"] },
        },
        layer: [
          {
            mark: { type: "bar", height: 26, opacity: 0.75 },
            encoding: {
              x: { field: "rate", type: "quantitative", title: "conversion rate", axis: { format: ".1%" } },
              color: {
                field: "group",
                type: "nominal",
                legend: null,
                scale: { domain: ["test (exposed)", "control (holdout)"], range: ["#3b7dd8", "#8c8c8c"] },
              },
              tooltip: [
                { field: "group", type: "nominal" },
                { field: "rate", type: "quantitative", format: ".3%" },
                { field: "lo", type: "quantitative", format: ".3%", title: `${level}% CI low` },
                { field: "hi", type: "quantitative", format: ".3%", title: `${level}% CI high` },
                { field: "population", type: "quantitative", format: "," },
              ],
            },
          },
          {
            // Mid grey: readable on light and dark backgrounds alike.
            mark: { type: "errorbar", ticks: true, size: 12, thickness: 1.5, color: "#777777" },
            encoding: {
              x: { field: "lo", type: "quantitative", title: "conversion rate" },
              x2: { field: "hi" },
            },
          },
        ],
      },
      { width: LIFT_CHART_WIDTH, height: 44, data: { values: liftValues }, layer: liftLayers },
    ],
  } as TopLevelSpec;
}

/**
 * Spent vs remaining bars, one row per budget of a budget payload.
 *
 * @example
 * const spec = budgetChartSpec(budgetPayload);
 */
export function budgetChartSpec(p: PayloadOf<"budget">): TopLevelSpec {
  const values = p.budgets.flatMap((b) => {
    const name = `${b.scope} · ${b.subject} (${unitSymbol(b.unit)})`;
    return [
      { budget: name, part: "spent", amount: b.spent, order: 0 },
      { budget: name, part: "remaining", amount: b.remaining, order: 1 },
    ];
  });
  return {
    $schema: SCHEMA,
    description: "Privacy budget spent and remaining per budget",
    width: 260,
    background: "transparent",
    data: { values },
    mark: { type: "bar", height: 14 },
    encoding: {
      y: { field: "budget", type: "nominal", title: null },
      x: { field: "amount", type: "quantitative", stack: "zero", title: "budget" },
      color: {
        field: "part",
        type: "nominal",
        title: null,
        scale: { domain: ["spent", "remaining"], range: ["#d0453a", "#2e8b57"] },
      },
      order: { field: "order", type: "quantitative" },
      tooltip: [
        { field: "budget", type: "nominal" },
        { field: "part", type: "nominal" },
        { field: "amount", type: "quantitative", format: ".4~f" },
      ],
    },
  } as TopLevelSpec;
}
