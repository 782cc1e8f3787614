import { describe, expect, it } from "vitest";
import { CLEANROOM_MIME, CleanRoomPayload, parsePayload } from "../../kernel-lib/src/display/schema.js";
import { EXAMPLE_PAYLOADS, EXAMPLE_REFUSED_QUERY } from "../../kernel-lib/src/display/examples.js";
import { toHtml, esc } from "../../kernel-lib/src/display/html.js";
import { toText } from "../../kernel-lib/src/display/text.js";
import { display, displayRoute, show, toMimeBundle, withMimeBundle, MIMEBUNDLE_SYMBOL } from "../../kernel-lib/src/display/bundle.js";
import type { MimeBundle } from "../../kernel-lib/src/display/bundle.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { inspect } from "node:util";

const all = [...Object.values(EXAMPLE_PAYLOADS), EXAMPLE_REFUSED_QUERY];
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x));

describe("payload schema", () => {
  it("accepts one example of every kind", () => {
    for (const p of all) expect(parsePayload(p)).toMatchObject({ ok: true });
    expect(new Set(all.map((p) => p.kind)).size).toBe(11);
  });

  it("rejects an unknown kind, a wrong version and unknown fields with a readable message", () => {
    const bad = [
      { kind: "histogram", version: 1 },
      { ...clone(EXAMPLE_PAYLOADS.error), version: 2 },
      { ...clone(EXAMPLE_PAYLOADS.error), severity: "high" },
    ];
    for (const b of bad) {
      const r = parsePayload(b);
      expect(r.ok).toBe(false);
      if (!r.ok) expect(r.error.length).toBeGreaterThan(5);
    }
    const r = parsePayload({ ...clone(EXAMPLE_PAYLOADS.error), version: 2 });
    expect(!r.ok && r.error).toMatch(/version/);
  });

  it("rejects a query row whose values do not line up with the columns", () => {
    const q = clone(EXAMPLE_PAYLOADS.query);
    q.rows[0]!.values.pop();
    const r = parsePayload(q);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.error).toMatch(/expected 3 values/);
  });

  it("rejects non-finite numbers and out-of-range fractions", () => {
    const l: Record<string, unknown> = clone(EXAMPLE_PAYLOADS.lift);
    l.noiseVarianceShare = 1.5;
    expect(parsePayload(l).ok).toBe(false);
    const b = clone(EXAMPLE_PAYLOADS.budget);
    b.budgets[0]!.spent = -1;
    expect(parsePayload(b).ok).toBe(false);
    expect(CleanRoomPayload.safeParse({ ...EXAMPLE_PAYLOADS.lift, lift: { estimate: Infinity, ci: [0, 1] } }).success).toBe(false);
  });

  it("defaults the lift confidence level to 95%", () => {
    const { level: _drop, ...l } = clone(EXAMPLE_PAYLOADS.lift);
    const r = parsePayload(l);
    expect(r.ok && r.payload.kind === "lift" && r.payload.level).toBe(0.95);
  });
});

describe("html and text fallbacks", () => {
  it("escapes every payload string in the html", () => {
    const p = { ...clone(EXAMPLE_PAYLOADS.error), message: "<img src=x onerror=alert(1)>", field: '"><script>' };
    const html = toHtml(CleanRoomPayload.parse(p));
    expect(html).not.toMatch(/<img|<script/);
    expect(html).toContain("&lt;img src=x onerror=alert(1)&gt;");
    expect(esc(`<&"'>`)).toBe("&lt;&amp;&quot;&#39;&gt;");
  });

  it("html is self-contained: no scripts, no external resources, no class-based styling", () => {
    for (const p of all) {
      const html = toHtml(CleanRoomPayload.parse(p));
      expect(html).not.toMatch(/<script|<link|<style|https?:\/\/|class=/i);
      expect(html).toContain(`data-cleanroom-kind="${p.kind}"`);
    }
  });

  it("marks suppressed rows with their rule and threshold and shows no value for them", () => {
    const p = CleanRoomPayload.parse(EXAMPLE_PAYLOADS.query);
    const text = toText(p);
    const westLine = text.split("\n").find((l) => l.includes("west"))!;
    expect(westLine).toMatch(/⊘ suppressed: minimum group size \(threshold 50\)/);
    expect(westLine).toMatch(/west\s+—\s+—/);
    expect(toHtml(p)).toMatch(/⊘ suppressed<\/span> <span[^>]*>minimum group size \(threshold 50\)/);
    expect(text).toContain("1 of 5 groups suppressed");
  });

  it("shows the teaching-mode label for seeded outputs only", () => {
    expect(toText(CleanRoomPayload.parse(EXAMPLE_PAYLOADS.query))).toContain("⚠ teaching mode — not private");
    expect(toText(CleanRoomPayload.parse(EXAMPLE_PAYLOADS.lift))).not.toContain("teaching mode");
  });

  it("budget text shows spent, remaining and total in the budget's unit", () => {
    const t = toText(CleanRoomPayload.parse(EXAMPLE_PAYLOADS.budget));
    expect(t).toContain("spent ε 1.25 · remaining ε 1.75 · total ε 3");
    const z = clone(EXAMPLE_PAYLOADS.budget);
    z.budgets[0]!.unit = "rho";
    z.budgets[0]!.accountant = "zCdp";
    expect(toText(CleanRoomPayload.parse(z))).toContain("spent ρ 1.25");
  });

  it("a refused query's text names the refusing step of the trace", () => {
    const t = toText(CleanRoomPayload.parse(EXAMPLE_REFUSED_QUERY));
    expect(t).toMatch(/purpose check\s+✗ refused\s+no grant/);
    expect(t).toMatch(/✗ refused: PURPOSE_DENIED/);
  });

  it("audit html highlights entries from the first bad index on", () => {
    const html = toHtml(CleanRoomPayload.parse(EXAMPLE_PAYLOADS.audit));
    expect(html).toContain("chain broken at entry 2");
    expect(html.match(/rgba\(208,69,58,0.15\)/g)?.length).toBe(1);
  });
});

describe("mime bundle and emission", () => {
  it("bundles the vendor json with html and text fallbacks", () => {
    const b = toMimeBundle(EXAMPLE_PAYLOADS.psi);
    expect(Object.keys(b).sort()).toEqual([CLEANROOM_MIME, "text/html", "text/plain"].sort());
    expect(b[CLEANROOM_MIME].kind).toBe("psi");
    expect(JSON.parse(JSON.stringify(b))[CLEANROOM_MIME]).toEqual(b[CLEANROOM_MIME]);
  });

  it("refuses a malformed payload with INTERNAL before emitting anything", () => {
    let err: unknown;
    try {
      toMimeBundle({ kind: "budget", version: 1 } as unknown as Parameters<typeof toMimeBundle>[0]);
    } catch (e) {
      err = e;
    }
    expect(isCleanRoomError(err, "INTERNAL")).toBe(true);
    expect(String((err as Error).message)).toMatch(/roomId/);
  });

  it("outside a kernel, show() prints the text rendering", () => {
    expect(displayRoute()).toBe("stdout");
    const chunks: string[] = [];
    const orig = process.stdout.write;
    process.stdout.write = ((c: string) => {
      chunks.push(String(c));
      return true;
    }) as typeof process.stdout.write;
    try {
      show(EXAMPLE_PAYLOADS.error);
    } finally {
      process.stdout.write = orig;
    }
    expect(chunks.join("")).toContain("✗ BUDGET_EXCEEDED");
  });

  it("uses the cleanroom-ts kernel display API when present", () => {
    const key = Symbol.for("cleanroom-lab.kernel");
    const seen: MimeBundle[] = [];
    const g = globalThis as Record<symbol, unknown>;
    g[key] = { display: (b: MimeBundle) => seen.push(b) };
    try {
      expect(displayRoute()).toBe("cleanroom-ts");
      show(EXAMPLE_PAYLOADS.lift);
    } finally {
      delete g[key];
    }
    expect(seen).toHaveLength(1);
    expect(seen[0]![CLEANROOM_MIME].kind).toBe("lift");
  });

  it("withMimeBundle keeps the JSON form and adds a rich and a text view", () => {
    const r = withMimeBundle({ roomId: "r1", budgets: [] as (typeof EXAMPLE_PAYLOADS.budget)["budgets"] }, (o) => ({
      kind: "budget",
      version: 1,
      roomId: o.roomId,
      budgets: o.budgets,
    }));
    expect(JSON.stringify(r)).toBe('{"roomId":"r1","budgets":[]}');
    const b = (r as typeof r & { [MIMEBUNDLE_SYMBOL]: () => MimeBundle })[MIMEBUNDLE_SYMBOL]();
    expect(b[CLEANROOM_MIME]).toHaveProperty("roomId", "r1");
    expect(inspect(r)).toContain("Privacy budget — room r1");
    expect(inspect(display(EXAMPLE_PAYLOADS.error))).toContain("BUDGET_EXCEEDED");
  });
});
