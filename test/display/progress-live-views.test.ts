// @vitest-environment happy-dom
/**
 * The extension's side of the notebook loop: the progress bar view (extension/src/views/
 * progress.ts, through renderPayload) and the live Privacy budget sidebar (liveBudgetFrom +
 * sidebarView with live payloads winning over the last budget output).
 */
import { describe, expect, it, vi } from "vitest";

vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/progress-view.js", () => import("../../kernel-lib/src/display/progress-view.js"));

import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import { EXAMPLE_PAYLOADS } from "../../kernel-lib/src/display/examples.js";
import { renderPayload } from "../../extension/src/views/payload.js";
import { latestBudget } from "../../extension/src/views/latest.js";
import { liveBudgetFrom, sidebarView, LIVE_BUDGET_PREFIX } from "../../extension/src/views/sidebar.js";
import { breakable } from "../../extension/src/views/dom.js";

const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));
const text = (el: Element | null) => (el?.textContent ?? "").replace(/\s+/g, " ").trim();

describe("progress view", () => {
  it("draws the bar at done/total with the phase, counts, percent and ETA", () => {
    const { node } = renderPayload(clone(EXAMPLE_PAYLOADS.progress) as never);
    expect(node.getAttribute("data-kind")).toBe("progress");
    const bar = node.querySelector('[role="progressbar"]')!;
    expect(bar.getAttribute("aria-valuenow")).toBe("60");
    expect((node.querySelector(".crl-gauge-fill") as HTMLElement).style.width).toBe("60.0%");
    const g = node.querySelector(".crl-progress")!;
    expect([g.getAttribute("data-state"), g.getAttribute("data-done"), g.getAttribute("data-total")]).toEqual([
      "running",
      "12000",
      "20000",
    ]);
    expect(text(node.querySelector('[data-field="status"]'))).toBe(
      "server: blind client set · 2,000/5,000 (phase 3 of 3) · 60% · elapsed 6.2 s · ETA 4.1 s",
    );
  });

  it("a finished run reads 100% and done; a failed one says where it failed", () => {
    const done = renderPayload({ ...clone(EXAMPLE_PAYLOADS.progress), state: "done", done: 20000, etaMs: null } as never).node;
    expect(done.querySelector('[role="progressbar"]')!.getAttribute("aria-valuenow")).toBe("100");
    expect(text(done.querySelector('[data-field="status"]'))).toMatch(/^done · 100% · elapsed/);
    const failed = renderPayload({ ...clone(EXAMPLE_PAYLOADS.progress), state: "failed", etaMs: null } as never).node;
    expect(failed.querySelector(".crl-progress")!.getAttribute("data-level")).toBe("exhausted");
    expect(text(failed)).toContain("failed during server: blind client set");
  });

  it("renders payload strings as text, never markup", () => {
    const { node } = renderPayload({ ...clone(EXAMPLE_PAYLOADS.progress), task: "<img src=x onerror=alert(1)>" } as never);
    expect(node.querySelector("img")).toBeNull();
    expect(text(node)).toContain("<img src=x onerror=alert(1)>");
  });
});

describe("live budget sidebar", () => {
  const live = (room: string, spent: number, id = `${LIVE_BUDGET_PREFIX}${room}`) => {
    const b = clone(EXAMPLE_PAYLOADS.budget);
    b.roomId = room;
    b.budgets[0]!.spent = spent;
    b.budgets[0]!.remaining = 3 - spent;
    return {
      header: { msg_type: "update_display_data" },
      content: { data: { [CLEANROOM_MIME]: b }, metadata: {}, transient: { display_id: id } },
    };
  };

  it("takes budgets only from update_display_data with a cleanroom-budget display id and a valid payload", () => {
    expect(liveBudgetFrom(live("room-a", 1))?.payload.roomId).toBe("room-a");
    expect(liveBudgetFrom({ ...live("room-a", 1), header: { msg_type: "display_data" } })).toBeNull();
    expect(liveBudgetFrom(live("room-a", 1, "cleanroom-progress:x"))).toBeNull();
    const bad = live("room-a", 1);
    (bad.content.data[CLEANROOM_MIME] as { budgets: unknown }).budgets = "oops";
    expect(liveBudgetFrom(bad)).toBeNull();
    const lift = live("room-a", 1);
    lift.content.data[CLEANROOM_MIME] = clone(EXAMPLE_PAYLOADS.lift) as never;
    expect(liveBudgetFrom(lift)).toBeNull();
  });

  it("the live ledger wins over the last budget output, one block per room, long names wrap", () => {
    const stale = latestBudget([{ executionCount: 2, outputs: [{ [CLEANROOM_MIME]: live("room-a", 0.5).content.data[CLEANROOM_MIME] }] }]);
    const a = liveBudgetFrom(live("room-a", 1.25))!.payload;
    const long = liveBudgetFrom(live("a-very-long-room-name-that-would-not-fit-in-a-narrow-sidebar", 0))!.payload;
    const el = sidebarView("study.ipynb", stale, [a, long]);
    const rooms = [...el.querySelectorAll('[data-source="live"]')].map((r) => r.getAttribute("data-room"));
    expect(rooms).toEqual(["room-a", "a-very-long-room-name-that-would-not-fit-in-a-narrow-sidebar"]);
    const remaining = el.querySelector('[data-room="room-a"] .crl-gauge[data-scope="collaboration"] [data-field="remaining"]');
    expect(text(remaining)).toBe("remaining ε 1.75");
    expect(text(el)).not.toContain("from cell [2]");
    expect(text(el.querySelector('[data-room="room-a"] [data-field="source"]'))).toBe("room room-a · live from the ledger");
    // long words still wrap (no overflow), but only when they cannot fit a line of their own
    expect((el as HTMLElement).style.overflowWrap).toBe("break-word");
    // a room without budgets is left out while another room has some
    const empty = { ...clone(a), roomId: "demo", budgets: [] };
    const rooms2 = (live: (typeof a)[]) =>
      [...sidebarView("x", null, live).querySelectorAll("[data-room]")].map((r) => r.getAttribute("data-room"));
    expect(rooms2([empty, a])).toEqual(["room-a"]);
    expect(rooms2([empty])).toEqual(["demo"]);
    // without live budgets it still shows the last output
    expect(text(sidebarView("study.ipynb", stale, []).querySelector('[data-field="source"]'))).toContain("from cell [2]");
  });
});

describe("breakable names", () => {
  it("dotted and slashed names get a line-break opportunity after each part, text unchanged", () => {
    const el = breakable("marketing.advertising.measurement");
    expect(el.textContent).toBe("marketing.advertising.measurement");
    expect(el.querySelectorAll("wbr")).toHaveLength(2);
    expect(breakable("retailer/purchases").querySelectorAll("wbr")).toHaveLength(1);
    expect(breakable("lab").querySelectorAll("wbr")).toHaveLength(0);
  });
});
