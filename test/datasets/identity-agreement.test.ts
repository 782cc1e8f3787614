import { describe, expect, it } from "vitest";
import * as path from "node:path";
import { readStudyFiles } from "../../kernel-lib/src/datasets/files.js";
import { normalizeStudyEmail } from "../../kernel-lib/src/datasets/emails.js";
import { normalizeEmail } from "../../kernel-lib/src/identity/normalize.js";

describe("shipped sample × identity layer", () => {
  it("identity/normalize.ts accepts every generated e-mail and recovers exactly the stated true overlap", () => {
    const { exposures, purchases, groundTruth } = readStudyFiles(path.resolve(process.cwd(), "datasets/sample"));
    const norm = (e: string) => {
      const r = normalizeEmail(e);
      expect(r).toEqual({ ok: true, value: normalizeStudyEmail(e) });
      return (r as { value: string }).value;
    };
    const adv = new Set(exposures.map((e) => norm(e.email)));
    const ret = new Set(purchases.map((p) => norm(p.email)));
    expect(adv.size).toBe(groundTruth.counts.advertiserPeople);
    expect([...adv].filter((k) => ret.has(k)).length).toBe(groundTruth.counts.trueOverlap);
    // without normalisation the raw strings match far fewer people: the mess is real
    const rawRet = new Set(purchases.map((p) => p.email));
    expect(exposures.filter((e) => rawRet.has(e.email)).length).toBeLessThan(0.6 * groundTruth.counts.trueOverlap);
  });
});
