import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  atLeastAsRestrictive,
  combineLabels,
  labelForColumns,
  permits,
  tagDataset,
  type PurposeLabel,
} from "../../kernel-lib/src/purpose/labels.js";
import { defaultTaxonomy } from "../../kernel-lib/src/purpose/taxonomy.js";

const tx = defaultTaxonomy();
const USES = tx.list("dataUse").map((n) => n.key);
const CATS = tx.list("dataCategory").map((n) => n.key);

const arbLabel: fc.Arbitrary<PurposeLabel> = fc
  .record({
    allow: fc.subarray(USES, { maxLength: 6 }),
    deny: fc.subarray(USES, { maxLength: 2 }),
    categories: fc.subarray(CATS, { maxLength: 3 }),
    subjects: fc.subarray(["customer", "prospect", "visitor"]),
  })
  .map((l) => combineLabels(l)); // canonicalise
const RUNS = { numRuns: 300, seed: 20261125 };

describe("label propagation (Policy Zones: downstream never looser than upstream)", () => {
  it("permits(combine(a, b), p) is exactly permits(a, p) && permits(b, p)", () => {
    fc.assert(
      fc.property(arbLabel, arbLabel, (a, b) => {
        const c = combineLabels(a, b);
        for (const p of USES) expect(permits(c, p)).toBe(permits(a, p) && permits(b, p));
      }),
      RUNS,
    );
  });

  it("is commutative and associative (canonical labels compare equal)", () => {
    fc.assert(
      fc.property(arbLabel, arbLabel, arbLabel, (a, b, c) => {
        expect(combineLabels(a, b)).toEqual(combineLabels(b, a));
        expect(combineLabels(combineLabels(a, b), c)).toEqual(combineLabels(a, combineLabels(b, c)));
        expect(combineLabels(a, b, c)).toEqual(combineLabels(a, combineLabels(b, c)));
      }),
      RUNS,
    );
  });

  it("is idempotent", () => {
    fc.assert(
      fc.property(arbLabel, (a) => {
        expect(combineLabels(a, a)).toEqual(a);
      }),
      RUNS,
    );
  });

  it("is never looser than any input, and carries every input's categories", () => {
    fc.assert(
      fc.property(fc.array(arbLabel, { minLength: 1, maxLength: 4 }), (ls) => {
        const c = combineLabels(...ls);
        for (const l of ls) {
          expect(atLeastAsRestrictive(c, l, USES)).toBe(true);
          for (const cat of l.categories) expect(c.categories).toContain(cat);
        }
      }),
      RUNS,
    );
  });

  it("is monotone: a more restrictive input never gives a looser result", () => {
    fc.assert(
      fc.property(arbLabel, arbLabel, arbLabel, (a, x, b) => {
        const tighter = combineLabels(a, x);
        expect(atLeastAsRestrictive(combineLabels(tighter, b), combineLabels(a, b), USES)).toBe(true);
      }),
      RUNS,
    );
  });

  it("the property checks can fail: a plain union of allows would be looser", () => {
    const a = combineLabels({ allow: ["marketing.advertising"], deny: [], categories: [], subjects: [] });
    const b = combineLabels({ allow: ["safety"], deny: [], categories: [], subjects: [] });
    const union: PurposeLabel = { ...a, allow: ["marketing.advertising", "safety"] };
    expect(atLeastAsRestrictive(union, a, USES)).toBe(false);
    expect(combineLabels(a, b).allow).toEqual([]);
  });

  it("intersects through the hierarchy: marketing ∩ marketing.advertising.measurement = the narrower", () => {
    const a = combineLabels({ allow: ["marketing"], deny: [], categories: [], subjects: [] });
    const b = combineLabels({ allow: ["marketing.advertising.measurement", "research"], deny: [], categories: [], subjects: [] });
    expect(combineLabels(a, b).allow).toEqual(["marketing.advertising.measurement"]);
  });
});

describe("tagging at ingestion", () => {
  it("tags datasets and columns; a column label is never looser than its dataset", () => {
    const labels = tagDataset(tx, {
      purposes: ["ads", "measurement", "research"],
      categories: ["user.behavior.purchase_history"],
      columns: {
        value_cents: { purposes: ["measurement"], categories: ["user.financial"] },
        email: { deny: ["marketing"], categories: ["user.contact.email"] },
      },
    });
    expect(labels.dataset.allow).toEqual(["marketing.advertising", "research"]);
    expect(labels.columns.value_cents!.allow).toEqual(["marketing.advertising.measurement"]);
    for (const col of Object.values(labels.columns)) expect(atLeastAsRestrictive(col, labels.dataset, USES)).toBe(true);
    const q = labelForColumns(labels, ["value_cents"]);
    expect(permits(q, "marketing.advertising.measurement")).toBe(true);
    expect(permits(q, "research")).toBe(false);
    expect(permits(labelForColumns(labels, ["email"]), "marketing.advertising.measurement")).toBe(false);
    expect(permits(labelForColumns(labels, ["region"]), "research")).toBe(true);
  });

  it("refuses a typo in the tagging object (strict schema) and unknown purposes", () => {
    expect(() => tagDataset(tx, { purposes: ["ads"], categorys: ["user"] } as never)).toThrow(/INPUT_INVALID/);
    expect(() => tagDataset(tx, { purposes: ["adz"] })).toThrow(/PURPOSE_UNKNOWN.*ads/);
    expect(() => tagDataset(tx, { purposes: [] })).toThrow(/at least one allowed purpose/);
  });
});
