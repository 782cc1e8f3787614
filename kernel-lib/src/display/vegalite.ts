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

/**
 * Conversion rate per arm with its confidence interval (error bars), for a lift payload.
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
  return {
    $schema: SCHEMA,
    description: `Conversion rate by group with ${level}% confidence intervals`,
    title: { text: `Conversion rate by group, ${level}% CI`, anchor: "start", fontSize: 12 },
    width: 260,
    height: 90,
    background: "transparent",
    data: { values },
    encoding: {
      y: { field: "group", type: "nominal", title: null, sort: ["test (exposed)", "control (holdout)"] },
    },
    layer: [
      {
        mark: { type: "bar", height: 18, opacity: 0.75 },
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
        mark: { type: "errorbar", ticks: true, size: 10, thickness: 1.5, color: "#777777" },
        encoding: {
          x: { field: "lo", type: "quantitative", title: "conversion rate" },
          x2: { field: "hi" },
        },
      },
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
