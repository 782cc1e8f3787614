/**
 * The "Privacy budget" sidebar's content: a pure view of the active notebook's live budgets —
 * each open lab's ledger, published by the cleanroom-ts kernel after every execution as an
 * iopub `update_display_data` with display id `cleanroom-budget:<room>` — or, before any live
 * update arrived (another kernel, an old notebook), of the latest budget output (or an empty state).
 * Long names wrap instead of being cut off at the edge.
 */
import { unitSymbol, fmtNum } from "@cleanroom-lab/kernel/dist/display/format.js";
import { CLEANROOM_MIME, parsePayload, type PayloadOf } from "@cleanroom-lab/kernel/dist/display/schema.js";
import type { LatestBudget } from "./latest.js";
import { budgetGauge } from "./payload.js";
import { breakable, h, status, templateRef } from "./dom.js";

/** The display id prefix of the kernel's live budget updates (kernel-lib/src/verbs/live.ts). */
export const LIVE_BUDGET_PREFIX = "cleanroom-budget:";

/** The parts of an iopub message the sidebar reads. */
export interface IopubLike {
  header: { msg_type: string };
  content: unknown;
}

/**
 * The live budget carried by an iopub message, or null when the message is anything else
 * (or its payload does not validate: untrusted data).
 *
 * @example
 * liveBudgetFrom(msg)?.payload.roomId // "lift-study"
 */
export function liveBudgetFrom(msg: IopubLike): { displayId: string; payload: PayloadOf<"budget"> } | null {
  if (msg.header.msg_type !== "update_display_data") return null;
  const c = msg.content as { transient?: { display_id?: unknown }; data?: Record<string, unknown> } | null;
  const id = c?.transient?.display_id;
  if (typeof id !== "string" || !id.startsWith(LIVE_BUDGET_PREFIX)) return null;
  const r = parsePayload(c?.data?.[CLEANROOM_MIME]);
  return r.ok && r.payload.kind === "budget" ? { displayId: id, payload: r.payload } : null;
}

function budgetBlock(b: PayloadOf<"budget">["budgets"][number]): HTMLElement {
  const recent = b.history.slice(-5).reverse();
  return h(
    "div",
    { class: "crl-sidebar-budget" },
    budgetGauge(b),
    recent.length
      ? h(
          "ul",
          { class: "crl-sidebar-history" },
          ...recent.map((c) =>
            h(
              "li",
              {},
              status(c.outcome),
              " ",
              `${unitSymbol(b.unit)} ${fmtNum(c.cost)} · `,
              breakable(c.purpose),
              " · ",
              templateRef({ name: c.templateName, hash: c.templateHash }),
            ),
          ),
        )
      : null,
  );
}

/**
 * Build the sidebar body. `live` (one budget payload per open lab, from the kernel) wins over
 * `latest` (the last budget output in the notebook).
 *
 * @example
 * sidebarView("study.ipynb", latestBudget(cells), [...liveByRoom.values()])
 */
export function sidebarView(
  notebook: string | null,
  latest: LatestBudget | null,
  live: ReadonlyArray<PayloadOf<"budget">> = [],
): HTMLElement {
  const root = h(
    "div",
    // inline: long room, dataset and purpose names wrap in a narrow sidebar
    { class: "crl-sidebar-body", style: "overflow-wrap:break-word" },
    h("div", { class: "crl-sidebar-title" }, "Privacy budget"),
    h("div", { class: "crl-muted", "data-field": "notebook" }, notebook ? notebook : "no notebook open"),
  );
  if (live.length > 0) {
    // a room without budgets (opened for a demo) is only worth a line when no room has any
    const shown = live.some((p) => p.budgets.length > 0) ? live.filter((p) => p.budgets.length > 0) : live;
    for (const p of shown) {
      root.appendChild(
        h(
          "div",
          { class: "crl-sidebar-room", "data-room": p.roomId, "data-source": "live" },
          h("div", { "data-field": "source", style: "font-weight:600;margin-top:6px" }, `room ${p.roomId} · live from the ledger`),
          p.rngMode === "seeded" ? h("div", { class: "crl-teaching" }, `⚠ ${p.label ?? "teaching mode — not private"}`) : null,
          ...(p.budgets.length ? p.budgets.map(budgetBlock) : [h("div", { class: "crl-muted" }, "no budgets in this room")]),
        ),
      );
    }
    return root;
  }
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
  for (const b of p.budgets) root.appendChild(budgetBlock(b));
  return root;
}
