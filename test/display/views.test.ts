// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";

// The extension imports the kernel library's built display module; point it at the source
// so these tests do not depend on a prior build.
vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));

import { CLEANROOM_MIME, CleanRoomPayload, parsePayload } from "../../kernel-lib/src/display/schema.js";
import { EXAMPLE_PAYLOADS, EXAMPLE_REFUSED_QUERY } from "../../kernel-lib/src/display/examples.js";
import { invalidPayloadView, renderPayload } from "../../extension/src/views/payload.js";
import { latestBudget } from "../../extension/src/views/latest.js";
import { sidebarView } from "../../extension/src/views/sidebar.js";

const parse = (x: unknown) => CleanRoomPayload.parse(x);
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));
const text = (el: Element | null | undefined) => (el?.textContent ?? "").replace(/\s+/g, " ").trim();

describe("payload views", () => {
  it("builds a view for every kind, tagged with its kind", () => {
    for (const p of [...Object.values(EXAMPLE_PAYLOADS), EXAMPLE_REFUSED_QUERY]) {
      const { node } = renderPayload(parse(p));
      expect(node.getAttribute("data-kind")).toBe(p.kind);
      expect(text(node).length).toBeGreaterThan(10);
    }
  });

  it("budget gauge shows spent, remaining and total and sizes the bar by the spent share", () => {
    const { node } = renderPayload(parse(EXAMPLE_PAYLOADS.budget));
    const g = node.querySelector('.crl-gauge[data-scope="collaboration"]')!;
    expect(text(g.querySelector('[data-field="spent"]'))).toBe("spent ε 1.25");
    expect(text(g.querySelector('[data-field="remaining"]'))).toBe("remaining ε 1.75");
    expect(text(g.querySelector('[data-field="total"]'))).toBe("total ε 3");
    expect((g.querySelector(".crl-gauge-fill") as HTMLElement).getAttribute("style")).toBe("width:41.7%");
    expect(node.querySelector('.crl-gauge[data-subject="retailer"]')!.getAttribute("data-level")).toBe("ok");
    expect(node.querySelectorAll(".crl-row-refused")).toHaveLength(1);
  });

  it("marks an exhausted budget", () => {
    const b = clone(EXAMPLE_PAYLOADS.budget);
    b.budgets[1]!.spent = 2;
    b.budgets[1]!.remaining = 0;
    const { node } = renderPayload(parse(b));
    expect(node.querySelector('.crl-gauge[data-subject="retailer"]')!.getAttribute("data-level")).toBe("exhausted");
  });

  it("query view marks suppressed rows with rule and threshold and hides their values", () => {
    const { node } = renderPayload(parse(EXAMPLE_PAYLOADS.query));
    const rows = node.querySelectorAll("tr.crl-row-suppressed");
    expect(rows).toHaveLength(1);
    const marker = rows[0]!.querySelector(".crl-suppressed-marker")!;
    expect(marker.getAttribute("data-rule")).toBe("minimum group size");
    expect(marker.getAttribute("data-threshold")).toBe("50");
    expect([...rows[0]!.querySelectorAll("td")].slice(0, 3).map((td) => td.textContent)).toEqual(["west", "—", "—"]);
    expect(text(node.querySelector('[data-field="suppressed-count"]'))).toBe("1 of 5 groups suppressed");
    expect(text(node.querySelector(".crl-teaching"))).toContain("teaching mode");
  });

  it("refused query shows the why-blocked trace with the refusing step", () => {
    const { node } = renderPayload(parse(EXAMPLE_REFUSED_QUERY));
    expect(node.querySelectorAll(".crl-step")).toHaveLength(9);
    const refused = node.querySelector(".crl-step-refused")!;
    expect(refused.getAttribute("data-step")).toBe("purpose");
    expect(text(node.querySelector(".crl-refused"))).toContain("PURPOSE_DENIED");
  });

  it("lift view asks for one chart with the lift spec and shows lift, CI and noise share", () => {
    const { node, charts } = renderPayload(parse(EXAMPLE_PAYLOADS.lift));
    expect(charts).toHaveLength(1);
    expect(node.contains(charts[0]!.host)).toBe(true);
    expect((charts[0]!.spec as { vconcat: { layer: { mark: { type: string } }[] }[] }).vconcat[0]!.layer[1]!.mark.type).toBe("errorbar");
    expect(text(node.querySelector('[data-field="lift"]'))).toBe("15%");
    expect(text(node.querySelector('[data-field="noise-share"]'))).toBe("noise share of variance 8.3%");
    expect(text(node)).toContain("control group under 25%");
  });

  it("psi, attestation, audit and purpose views show their verdicts", () => {
    const psi = renderPayload(parse(EXAMPLE_PAYLOADS.psi)).node;
    expect(text(psi.querySelector('[data-field="match-rate"]'))).toBe("match rate (smaller set) 62.5%");
    expect(psi.querySelectorAll(".crl-party")).toHaveLength(2);
    const att = renderPayload(parse(EXAMPLE_PAYLOADS.attestation)).node;
    expect(text(att.querySelector('[data-field="verified"]'))).toBe("✗ not verified");
    expect(att.querySelectorAll('[data-status="failed"]')).toHaveLength(1);
    expect(att.querySelector('[data-status="denied"]')).not.toBeNull();
    const audit = renderPayload(parse(EXAMPLE_PAYLOADS.audit)).node;
    expect(text(audit.querySelector('[data-field="chain"]'))).toContain("chain broken at entry 2");
    expect(audit.querySelectorAll("tr.crl-row-bad")).toHaveLength(1);
    const purpose = renderPayload(parse(EXAMPLE_PAYLOADS.purpose)).node;
    expect(purpose.querySelectorAll('[data-status="deny"]')).toHaveLength(1);
  });

  it("never interprets payload strings as HTML", () => {
    const p = { ...clone(EXAMPLE_PAYLOADS.error), message: '<img src=x onerror="alert(1)">' };
    const { node } = renderPayload(parse(p));
    expect(node.querySelector("img")).toBeNull();
    expect(text(node)).toContain('<img src=x onerror="alert(1)">');
  });

  it("an invalid payload becomes a readable error box", () => {
    const r = parsePayload({ kind: "budget", version: 1 });
    expect(r.ok).toBe(false);
    const box = invalidPayloadView(r.ok ? "" : r.error);
    expect(box.getAttribute("data-kind")).toBe("invalid");
    expect(text(box)).toContain("unreadable cleanroom-lab output");
    expect(text(box)).toMatch(/roomId/);
  });
});

describe("budget sidebar", () => {
  const budget = (remaining: number) => {
    const b = clone(EXAMPLE_PAYLOADS.budget);
    b.budgets[0]!.remaining = remaining;
    b.budgets[0]!.spent = 3 - remaining;
    return { [CLEANROOM_MIME]: b };
  };

  it("follows the most recently executed budget output, not the last cell", () => {
    const latest = latestBudget([
      { executionCount: 7, outputs: [budget(1)] },
      { executionCount: 3, outputs: [budget(2)] },
      { executionCount: 5, outputs: [{ "text/plain": "x" }] },
    ]);
    expect(latest?.executionCount).toBe(7);
    expect(latest?.payload.budgets[0]!.remaining).toBe(1);
  });

  it("treats a cell with outputs but no count yet as the one running now", () => {
    const latest = latestBudget([
      { executionCount: 9, outputs: [budget(1)] },
      { executionCount: null, outputs: [budget(0.5)] },
    ]);
    expect(latest?.payload.budgets[0]!.remaining).toBe(0.5);
  });

  it("ignores invalid and non-budget payloads", () => {
    expect(
      latestBudget([
        { executionCount: 1, outputs: [{ [CLEANROOM_MIME]: { kind: "budget", version: 1 } }, { [CLEANROOM_MIME]: EXAMPLE_PAYLOADS.lift }] },
      ]),
    ).toBeNull();
  });

  it("shows the remaining budget of the latest output, or an empty state", () => {
    const latest = latestBudget([{ executionCount: 4, outputs: [budget(0.75)] }]);
    const el = sidebarView("study.ipynb", latest);
    expect(text(el.querySelector('.crl-gauge[data-scope="collaboration"] [data-field="remaining"]'))).toBe("remaining ε 0.75");
    expect(text(el.querySelector('[data-field="source"]'))).toContain("from cell [4]");
    expect(text(sidebarView(null, null))).toContain("No budget output yet");
  });
});
