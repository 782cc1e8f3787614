/**
 * The "Privacy budget" sidebar's content: a pure view of the latest budget payload of the
 * active notebook (or an empty state).
 */
import { unitSymbol, fmtNum } from "@cleanroom-lab/kernel/dist/display/format.js";
import type { LatestBudget } from "./latest.js";
import { budgetGauge } from "./payload.js";
import { h, hash, status } from "./dom.js";

/**
 * Build the sidebar body.
 *
 * @example
 * sidebarView("study.ipynb", latestBudget(cells))
 */
export function sidebarView(notebook: string | null, latest: LatestBudget | null): HTMLElement {
  const root = h(
    "div",
    { class: "crl-sidebar-body" },
    h("div", { class: "crl-sidebar-title" }, "Privacy budget"),
    h("div", { class: "crl-muted", "data-field": "notebook" }, notebook ? notebook : "no notebook open"),
  );
  if (!latest) {
    root.appendChild(
      h("div", { class: "crl-sidebar-empty crl-muted" }, "No budget output yet. Run a cell that shows the room's budget (e.g. budget())."),
    );
    return root;
  }
  const p = latest.payload;
  root.appendChild(
    h(
      "div",
      { class: "crl-muted", "data-field": "source" },
      `room ${p.roomId} · from cell ${latest.executionCount === null ? "(running)" : `[${latest.executionCount}]`}`,
    ),
  );
  if (p.rngMode === "seeded") root.appendChild(h("div", { class: "crl-teaching" }, `⚠ ${p.label ?? "teaching mode — not private"}`));
  for (const b of p.budgets) {
    const recent = b.history.slice(-5).reverse();
    root.appendChild(
      h(
        "div",
        { class: "crl-sidebar-budget" },
        budgetGauge(b),
        recent.length
          ? h(
              "ul",
              { class: "crl-sidebar-history" },
              ...recent.map((c) =>
                h("li", {}, status(c.outcome), " ", `${unitSymbol(b.unit)} ${fmtNum(c.cost)} · ${c.purpose} · `, hash(c.templateHash)),
              ),
            )
          : null,
      ),
    );
  }
  return root;
}
