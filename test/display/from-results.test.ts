import { describe, expect, it } from "vitest";
import Database from "better-sqlite3";
import { computeLift } from "../../kernel-lib/src/studies/lift.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { AuditLog } from "../../kernel-lib/src/purpose/audit.js";
import type { QueryResult } from "../../kernel-lib/src/cleanroom/release.js";
import { CleanRoomError } from "../../kernel-lib/src/errors.js";
import {
  auditPayloadFromReport,
  liftPayloadFromResult,
  psiPayloadFromRun,
  queryPayloadFromResult,
  refusedQueryPayload,
} from "../../kernel-lib/src/display/from-results.js";
import { toText } from "../../kernel-lib/src/display/text.js";

const H = "ab".repeat(32);

describe("payloads from layer results", () => {
  it("query result: released rows, then suppressed groups with null aggregates and the rule", () => {
    const r: QueryResult = {
      kind: "query",
      templateName: "conversions_by_region",
      templateHash: H,
      engine: "arquero",
      dimensions: ["region"],
      aggregates: ["converters"],
      rows: [
        { region: "north", converters: 120 },
        { region: "south", converters: 98 },
      ],
      suppressed: {
        style: "drop",
        minimum: 50,
        minimumFrom: "template",
        decidedOn: "noisy",
        remainder: null,
        rows: [{ key: { region: "west" }, reason: "below_threshold", rule: "aggregation.minimumUnits" }],
      },
      noise: {
        mechanism: "discreteLaplace",
        perAggregate: [{ name: "converters", scale: "2", scaleExact: "2", l1Sensitivity: "1", variance: 8 }],
      },
      cost: { kind: "pureDp", text: "ε = 1/2", epsilon: "1/2" },
      differenceCheck: null,
      rngStamp: { rngMode: "seeded", label: "teaching mode — not private" },
    };
    const p = queryPayloadFromResult(r, { purpose: "measurement.lift" });
    expect(p.columns.map((c) => [c.name, !!c.noisy])).toEqual([
      ["region", false],
      ["converters", true],
    ]);
    expect(p.rows[2]).toMatchObject({ values: ["west", null], suppressed: { rule: "aggregation.minimumUnits", threshold: 50 } });
    expect(p.noise).toMatchObject({ mechanism: "discreteLaplace", cost: 0.5, unit: "epsilon" });
    expect(p.columns[1]!.noise).toEqual({ parameterName: "scale", scale: 2, sensitivity: 1, halfWidth: 6, level: 0.95 });
    expect(p.rngMode).toBe("seeded");
  });

  it("refusal: trace refuses at the failing step, skips the rest, records the audit", () => {
    const e = new CleanRoomError("BUDGET_EXCEEDED", "Requested ε 1, Remaining ε 0.5, Difference ε 0.5");
    const p = refusedQueryPayload(e, "budget");
    expect(p.trace!.map((t) => t.status)).toEqual(["ok", "ok", "ok", "ok", "ok", "refused", "skipped", "skipped", "ok"]);
    expect(p.refused).toEqual({ code: "BUDGET_EXCEEDED", message: "Requested ε 1, Remaining ε 0.5, Difference ε 0.5" });
  });

  it("lift result: rates, intervals, noise share; error payload when not estimable", () => {
    const agg = {
      testPopulation: 40000,
      controlPopulation: 10000,
      testConversions: 2100,
      controlConversions: 450,
      testConverters: 1840,
      controlConverters: 400,
      testValue: 210000,
      controlValue: 45000,
      testValueSquared: 4e7,
      controlValueSquared: 9e6,
    };
    const r = computeLift(agg, { noiseVariance: { testConverters: 50, controlConverters: 50 } });
    const p = liftPayloadFromResult(r, { converterNoiseVariance: 50, groundTruth: { lift: 0.14 } });
    expect(p.kind).toBe("lift");
    if (p.kind !== "lift") return;
    expect(p.test.rate).toBeCloseTo(0.046, 10);
    expect(p.control.rate).toBeCloseTo(0.04, 10);
    expect(p.lift.estimate).toBeCloseTo(0.15, 10);
    expect(p.lift.ci[0]).toBeLessThan(0.15);
    expect(p.lift.ci[1]).toBeGreaterThan(0.15);
    expect(p.test.ci[0]).toBeLessThan(0.046);
    expect(p.noiseVarianceShare).toBeGreaterThan(0);
    const tiny = computeLift({
      ...agg,
      controlPopulation: 10,
      controlConverters: 0,
      controlConversions: 0,
      controlValue: 0,
      controlValueSquared: 0,
    });
    expect(liftPayloadFromResult(tiny).kind).toBe("error");
  });

  it("psi run: sizes, match rate and per-party message summaries without elements", async () => {
    const a = ["a@x.com", "b@x.com", "c@x.com", "d@x.com"];
    const b = ["b@x.com", "d@x.com", "e@x.com"];
    const r = await runPsi(a, b, { mode: "cardinality", backend: "noble", rng: { seed: "t" }, names: { a: "advertiser", b: "retailer" } });
    const p = psiPayloadFromRun(r);
    expect(p.matchCount).toBe(2);
    expect(p.matchRate).toBeCloseTo(2 / 3, 12);
    expect(p.parties.map((q) => q.setSize)).toEqual([4, 3]);
    expect(p.parties.every((q) => q.saw.length > 0)).toBe(true);
    expect(JSON.stringify(p)).not.toMatch(/@x\.com/);
    expect(toText(p)).toContain("matched 2");
  });

  it("audit report: entries, verification and signed heads", () => {
    const log = new AuditLog(new Database(":memory:"), { roomId: "room-1", signingKey: new Uint8Array(32).fill(7) });
    log.append({
      action: "query",
      who: { party: "advertiser", analyst: "bo" },
      purpose: "measurement.lift",
      templateHash: H,
      outcome: "granted",
    });
    log.append({ action: "query", who: { party: "advertiser" }, outcome: "refused", errorCode: "BUDGET_EXCEEDED" });
    log.signHead();
    const p = auditPayloadFromReport(log.report());
    expect(p.verification.ok).toBe(true);
    expect(p.entries.map((e) => e.outcome)).toEqual(["granted", "refused: BUDGET_EXCEEDED"]);
    expect(p.entries[0]!.actor).toBe("advertiser/bo");
    expect(p.heads).toEqual([expect.objectContaining({ index: 1, verified: true })]);
  });
});
