import { describe, expect, it } from "vitest";
import { looksLikeIdentifier } from "../../kernel-lib/src/purpose/canonical.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { DEFAULT_ALIASES, defaultTaxonomy, editDistance } from "../../kernel-lib/src/purpose/taxonomy.js";

const tx = defaultTaxonomy();

function suggestionsFor(name: string): string[] {
  try {
    tx.resolveUse(name);
  } catch (e) {
    if (isCleanRoomError(e, "PURPOSE_UNKNOWN")) return e.details.suggestions as string[];
    throw e;
  }
  throw new Error("resolved");
}

describe("purpose taxonomy (fideslang vocabulary)", () => {
  it("contains fideslang data uses, categories and subjects, plus marked cleanroom-lab additions", () => {
    for (const k of [
      "essential.fraud_detection",
      "analytics.reporting.ad_performance",
      "personalize.content",
      "marketing.advertising.first_party.targeted",
    ])
      expect(tx.node("dataUse", k)?.origin).toBe("fideslang");
    for (const k of ["marketing.advertising.measurement", "research", "safety"])
      expect(tx.node("dataUse", k)?.origin).toBe("cleanroom-lab");
    expect(tx.has("dataCategory", "user.contact.email")).toBe(true);
    expect(tx.has("dataCategory", "user.behavior.purchase_history")).toBe(true);
    expect(tx.has("dataSubject", "customer")).toBe(true);
  });

  it("resolves the documented aliases", () => {
    expect(tx.resolveUse("ads")).toBe("marketing.advertising");
    expect(tx.resolveUse("measurement")).toBe("marketing.advertising.measurement");
    expect(tx.resolveUse("targeting")).toBe("marketing.advertising.third_party.targeted");
    for (const target of Object.values(DEFAULT_ALIASES)) expect(tx.has("dataUse", target)).toBe(true);
  });

  it.each([
    ["reserch", "research"],
    ["marketing.advertsing", "marketing.advertising"],
    ["measurment", "measurement"],
    ["saftey", "safety"],
    ["Ads", "ads"],
  ])("refuses misspelt %s with PURPOSE_UNKNOWN, suggesting %s first", (typo, best) => {
    expect(suggestionsFor(typo)[0]).toBe(best);
  });

  it("names the closest valid purposes in the message", () => {
    expect(() => tx.resolveUse("reserch")).toThrow(
      /PURPOSE_UNKNOWN.*"purpose" expected a dataUse from the taxonomy, got "reserch"; closest valid names: research/,
    );
  });

  it("never echoes an identifier given as a purpose", () => {
    try {
      tx.resolveUse("jane.doe@example.com");
      expect.unreachable();
    } catch (e) {
      // without this, a resolveUse that accepted the value would pass (the AssertionError text has no "jane")
      expect(isCleanRoomError(e, "PURPOSE_UNKNOWN")).toBe(true);
      expect(JSON.stringify([(e as Error).message, (e as { details: unknown }).details])).not.toContain("jane");
    }
  });

  it("is extensible: new data uses need an existing parent; aliases need an existing target", () => {
    const mine = tx
      .extend({ kind: "dataUse", key: "research.epidemiology", name: "Epidemiology" })
      .withAlias("epi", "research.epidemiology");
    expect(mine.resolveUse("epi")).toBe("research.epidemiology");
    expect(mine.node("dataUse", "research.epidemiology")?.origin).toBe("user");
    expect(() => tx.resolveUse("research.epidemiology")).toThrow(/PURPOSE_UNKNOWN/); // original unchanged
    expect(() => tx.extend({ kind: "dataUse", key: "astrology.horoscopes" })).toThrow(/parent "astrology" is missing/);
    expect(() => tx.extend({ kind: "dataUse", key: "research" })).toThrow(/ALREADY_EXISTS/);
    expect(() => tx.extend({ kind: "dataUse", key: "Bad Key" })).toThrow(/INPUT_INVALID/);
    expect(() => tx.withAlias("x", "nope")).toThrow(/PURPOSE_UNKNOWN/);
  });

  it("computes Levenshtein distance", () => {
    expect(editDistance("kitten", "sitting")).toBe(3);
    expect(editDistance("", "abc")).toBe(3);
    expect(editDistance("same", "same")).toBe(0);
  });
});

describe("identifier guard", () => {
  it.each(["jane.doe@example.com", "a@b", "+1 (555) 013-4567", "5550134567", "id-555-013-4567"])("flags %s", (s) => {
    expect(looksLikeIdentifier(s)).toBe(true);
  });
  it.each(["retailer", "purchases_2026-11-25", "room-1", "v1.2.3", "exposures.q3", "12345"])("does not flag %s", (s) => {
    expect(looksLikeIdentifier(s)).toBe(false);
  });
});
