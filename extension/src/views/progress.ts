/**
 * The DOM view of a `progress` payload: a bar advancing in place while a long call runs (the
 * kernel replaces the output through `update_display_data`, JupyterLab re-renders it), with
 * the phase, done/total, percent, elapsed time and ETA. Pure; text nodes only (untrusted data).
 * Data attributes (`data-state`, `data-done`, `data-total`, `data-phase`) let the browser test
 * watch it advance.
 */
import type { PayloadOf } from "@cleanroom-lab/kernel/dist/display/schema.js";
import { progressFraction, progressStatusLine } from "@cleanroom-lab/kernel/dist/display/progress-view.js";
import { h, type Child } from "./dom.js";

/**
 * Children of the progress view (the caller wraps them in the payload's root element).
 *
 * @example
 * host.append(...progressView(payload))
 */
export function progressView(p: PayloadOf<"progress">): Child[] {
  const f = progressFraction(p);
  const level = p.state === "failed" ? "exhausted" : "ok";
  return [
    h(
      "div",
      { class: "crl-header" },
      h("span", { class: "crl-title" }, p.title ?? p.task),
      p.rngMode === "seeded" ? h("span", { class: "crl-teaching" }, `⚠ ${p.label ?? "teaching mode — not private"}`) : null,
    ),
    h(
      "div",
      {
        class: "crl-gauge crl-progress",
        "data-level": level,
        "data-state": p.state,
        "data-done": p.state === "done" ? p.total : p.done,
        "data-total": p.total,
        "data-phase": p.phase,
      },
      h(
        "div",
        {
          class: "crl-gauge-bar",
          role: "progressbar",
          "aria-valuemin": 0,
          "aria-valuemax": 100,
          "aria-valuenow": Math.round(f * 100),
          "aria-label": `${p.task}: ${p.phase}`,
        },
        h("div", { class: "crl-gauge-fill", style: `width:${(f * 100).toFixed(1)}%` }),
      ),
      h("div", { class: "crl-muted", "data-field": "status", style: "overflow-wrap:anywhere" }, progressStatusLine(p)),
    ),
  ];
}
