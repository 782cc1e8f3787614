import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import {
  combineLabels,
  defaultTaxonomy,
  makeLabel,
  permitMatrix,
  purposeTable,
  SEED_PURPOSE_TABLE,
} from "../../kernel-lib/src/labs/purpose-lab.js";
import { toMimeBundle } from "../../kernel-lib/src/display/bundle.js";

const MIME = Symbol.for("jupyter.mimebundle");

describe("purposeTable", () => {
  it("evaluates the seed's four rows exactly as the seed states, through policy and gate", () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "purpose-lab" } });
    const t = purposeTable(lab);
    expect(t.rows.map((r) => r.outcome)).toEqual(["granted", "denied", "denied", "granted"]);
    expect(t.allMatch).toBe(true);
    expect(t.rows.filter((r) => r.outcome === "granted").every((r) => r.plaintextIntact === true)).toBe(true);
    expect(t.rows.filter((r) => r.outcome === "denied").every((r) => r.plaintextBytes === null && r.code === "PURPOSE_DENIED")).toBe(true);
    lab.close();
  });

  it("reports a mismatch when a row's stated expectation is wrong", () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "purpose-lab-2" } });
    const t = purposeTable(lab, [{ data: ["safety"], query: "ads", expect: "granted" }]);
    expect(t.rows[0]!.matches).toBe(false);
    expect(t.allMatch).toBe(false);
    lab.close();
  });

  it("audits every row (upload, grant, and the granted or refused query) and the chain verifies", () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "purpose-lab-3" } });
    purposeTable(lab);
    const r = lab.audit();
    expect(r.verification.ok).toBe(true);
    expect(r.entries.length).toBe(SEED_PURPOSE_TABLE.length * 3);
    expect(r.review.refused.length).toBe(2);
    lab.close();
  });

  it("renders as a valid purpose payload with one decision per row", () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "purpose-lab-4" } });
    const t = purposeTable(lab) as unknown as Record<symbol, () => ReturnType<typeof toMimeBundle>>;
    const b = t[MIME]!();
    const p = b["application/vnd.cleanroom-lab.v1+json"] as { kind: string; decisions: { decision: string }[] };
    expect(p.kind).toBe("purpose");
    expect(p.decisions.map((d) => d.decision)).toEqual(["allow", "deny", "deny", "allow"]);
    lab.close();
  });

  it("refuses a malformed case before uploading anything", () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "purpose-lab-5" } });
    expect(() => purposeTable(lab, [{ data: "ads" as never, query: "ads" }])).toThrow(/cases\[0\]/);
    expect(lab.audit().entries.length).toBe(0);
    lab.close();
  });
});

describe("permitMatrix", () => {
  it("shows the combined label permits exactly what every input permits", () => {
    const tx = defaultTaxonomy();
    const a = makeLabel(tx, { purposes: ["ads", "measurement"] });
    const b = makeLabel(tx, { purposes: ["measurement", "research"] });
    const m = permitMatrix({ a, b, both: combineLabels(a, b) }, ["ads", "measurement", "research", "targeting"]);
    for (const row of m) expect(row.both).toBe(row.a === true && row.b === true);
    expect(m.map((r) => r.both)).toEqual([false, true, false, false]);
  });

  it("fails loudly on a misspelt purpose with the closest valid names", () => {
    const tx = defaultTaxonomy();
    expect(() => permitMatrix({ a: makeLabel(tx, { purposes: "ads" }) }, ["mesurement"])).toThrow(/closest valid names: measurement/);
  });
});
