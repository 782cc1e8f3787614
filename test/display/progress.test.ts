/**
 * Progress bars (display/progress.ts, display/progress-view.ts): the ETA estimate, the ≤ 5/s
 * throttle, the in-place display protocol (one show, then updates of the same display id, a
 * final 100%), and the text/HTML fallbacks. Fake clock and sink: no timing, no kernel.
 */
import { describe, expect, it } from "vitest";
import { parsePayload, CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import { EXAMPLE_PAYLOADS } from "../../kernel-lib/src/display/examples.js";
import { toHtml } from "../../kernel-lib/src/display/html.js";
import { toText } from "../../kernel-lib/src/display/text.js";
import { estimateEtaMs, fmtDuration, Throttle, PROGRESS_MIN_INTERVAL_MS } from "../../kernel-lib/src/display/progress-view.js";
import { ProgressBar, startProgress, withProgress, kernelProgressSink, type ProgressSink } from "../../kernel-lib/src/display/progress.js";
import type { MimeBundle } from "../../kernel-lib/src/display/bundle.js";

function recorder() {
  const events: { op: "show" | "update"; id: string; bundle: MimeBundle }[] = [];
  const sink: ProgressSink = {
    show: (bundle, id) => events.push({ op: "show", id, bundle }),
    update: (bundle, id) => events.push({ op: "update", id, bundle }),
  };
  return { sink, events, payloads: () => events.map((e) => e.bundle[CLEANROOM_MIME]) };
}

describe("estimateEtaMs", () => {
  it("extrapolates the average rate so far", () => {
    expect(estimateEtaMs(250, 1000, 2000)).toBe(6000);
    expect(estimateEtaMs(900, 1000, 9000)).toBe(1000);
  });
  it("is unknown before any work, too early, or when nothing is left", () => {
    expect(estimateEtaMs(0, 1000, 5000)).toBeNull();
    expect(estimateEtaMs(500, 1000, 100)).toBeNull();
    expect(estimateEtaMs(5, 1000, 5000)).toBeNull(); // 0.5% done: noise
    expect(estimateEtaMs(1000, 1000, 5000)).toBeNull();
    expect(estimateEtaMs(3, 0, 5000)).toBeNull();
  });
});

describe("Throttle", () => {
  it("lets the first call through, then at most one per interval", () => {
    const t = new Throttle(200);
    const passed = [0, 50, 199, 200, 201, 399, 400, 1000].filter((now) => t.ready(now));
    expect(passed).toEqual([0, 200, 400, 1000]);
  });
  it("allows at most 5 updates a second by default", () => {
    expect(PROGRESS_MIN_INTERVAL_MS).toBeGreaterThanOrEqual(200);
    const t = new Throttle();
    let n = 0;
    for (let now = 0; now < 1000; now += 7) if (t.ready(now)) n++;
    expect(n).toBeLessThanOrEqual(5);
  });
});

describe("fmtDuration", () => {
  it("reads like a person would say it", () => {
    expect(fmtDuration(400)).toBe("0.4 s");
    expect(fmtDuration(12_400)).toBe("12 s");
    expect(fmtDuration(65_000)).toBe("1 min 05 s");
    expect(fmtDuration(3_720_000)).toBe("1 h 02 min");
  });
});

describe("ProgressBar", () => {
  it("shows once with a display id, updates that id in place (throttled), ends at 100%", () => {
    let now = 0;
    const { sink, events, payloads } = recorder();
    const bar = new ProgressBar("PSI (joinKeys)", sink, { total: 4000, clock: () => now });
    for (let i = 1; i <= 1000; i++) {
      now = i * 2; // a report every 2 ms for 2 s
      bar.report(i, 1000, "client: hash and blind own set");
    }
    now = 2100;
    bar.report(500, 3000, "server: blind client set");
    now = 2150;
    bar.finish("done");
    expect(events[0]!.op).toBe("show");
    expect(events.slice(1).every((e) => e.op === "update")).toBe(true);
    expect(new Set(events.map((e) => e.id))).toEqual(new Set([bar.displayId]));
    expect(bar.displayId).toMatch(/^cleanroom-progress:/);
    // 2.15 s at ≤ 5/s: the first show, ≤ 11 throttled updates, and the final one
    expect(events.length).toBeGreaterThanOrEqual(3);
    expect(events.length).toBeLessThanOrEqual(13);
    const ps = payloads().map((p) => {
      const r = parsePayload(p);
      expect(r.ok).toBe(true);
      return p as Extract<typeof p, { kind: "progress" }>;
    });
    const dones = ps.map((p) => p.done);
    expect(dones).toEqual([...dones].sort((a, b) => a - b));
    const last = ps.at(-1)!;
    expect(last).toMatchObject({ state: "done", done: 4000, total: 4000, etaMs: null });
    expect(last.phases.map((p) => p.name)).toEqual(["client: hash and blind own set", "server: blind client set"]);
    expect(events.at(-1)!.bundle["text/plain"]).toMatch(/100%/);
    const mid = ps.find((p) => p.state === "running" && p.etaMs !== null)!;
    expect(mid.etaMs).toBe(estimateEtaMs(mid.done, mid.total, mid.elapsedMs));
  });

  it("grows the total when the phases report more work than expected", () => {
    const { sink } = recorder();
    const bar = new ProgressBar("upload", sink, { total: 10, clock: () => 0 });
    bar.report(5, 40, "encrypt");
    expect(bar.payload()).toMatchObject({ done: 5, total: 40 });
  });

  it("a failure is published as failed, not as 100%, and later reports are ignored", () => {
    let now = 0;
    const { sink, payloads } = recorder();
    const bar = new ProgressBar("PSI", sink, { total: 100, clock: () => now });
    now = 1000;
    bar.report(30, 50, "client: hash and blind own set");
    bar.finish("failed");
    bar.report(50, 50, "client: hash and blind own set");
    const last = payloads().at(-1)!;
    expect(last).toMatchObject({ state: "failed", done: 30 });
    expect(toText(last as never)).toMatch(/failed during client: hash and blind own set/);
  });

  it("a sink that throws never fails the work", async () => {
    const sink: ProgressSink = {
      show: () => {
        throw new Error("front end gone");
      },
      update: () => {
        throw new Error("front end gone");
      },
    };
    await expect(withProgress("PSI", {}, async (report) => (report?.(1, 2, "x"), 42), sink)).resolves.toBe(42);
  });

  it("withProgress finishes done on success and failed on a throw, re-throwing the same error", async () => {
    const ok = recorder();
    await withProgress("job", { total: 2 }, async (report) => report?.(1, 2, "a"), ok.sink);
    expect(ok.payloads().at(-1)).toMatchObject({ state: "done", done: 2 });
    const bad = recorder();
    const boom = new Error("boom");
    await expect(withProgress("job", {}, async () => Promise.reject(boom), bad.sink)).rejects.toBe(boom);
    expect(bad.payloads().at(-1)).toMatchObject({ state: "failed" });
  });

  it("outside the kernel there is no sink and nothing is shown", () => {
    expect(kernelProgressSink()).toBeNull();
    expect(startProgress("PSI")).toBeNull();
  });
});

describe("progress fallbacks", () => {
  it("text: a bar, the phase, done/total, percent and ETA", () => {
    const t = toText(EXAMPLE_PAYLOADS.progress as never);
    expect(t).toContain("PSI (joinKeys)");
    expect(t).toMatch(/\[#{18}\.{12}\] server: blind client set · 2,000\/5,000 \(phase 3 of 3\) · 60% · elapsed 6\.2 s · ETA 4\.1 s/);
  });
  it("html: a progressbar with its value, every string escaped", () => {
    const p = { ...EXAMPLE_PAYLOADS.progress, task: "<img src=x>", phase: "a&b" } as never;
    const html = toHtml(p);
    expect(html).toContain('role="progressbar"');
    expect(html).toContain('aria-valuenow="60.0"');
    expect(html).not.toContain("<img");
    expect(html).toContain("&lt;img src=x&gt;");
    expect(html).toContain("a&amp;b");
  });
  it("the schema refuses done > total", () => {
    expect(parsePayload({ ...EXAMPLE_PAYLOADS.progress, done: 20001 }).ok).toBe(false);
  });
});
