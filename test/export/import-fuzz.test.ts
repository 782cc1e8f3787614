/**
 * `importAws` on hostile input: any JSON derived from a real export by random edits either imports
 * (and then re-exports to exactly what it read, when it carries a lab template) or is refused with
 * a typed CleanRoomError naming an `aws.` field — never another exception, never a half-read design.
 */
import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { liftRules } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { exportTemplate } from "../../kernel-lib/src/export/targets.js";
import { importAws } from "../../kernel-lib/src/export/import-aws.js";

const t = parseTemplate(
  liftTemplate({ advertiser: "adv", retailer: "shop", epsilonPerAggregate: "0.5", threshold: 30, breakdown: "region" }),
);
const rules = liftRules(40);
const base = JSON.parse(
  JSON.stringify(
    exportTemplate(t, "aws", {
      unit: "join_key",
      minimum: 40,
      minimumFrom: "adv/exposures",
      rules: { "adv/exposures": rules.exposures, "shop/purchases": rules.purchases },
      budget: { epsilon: 5, refresh: "monthly" },
    }).artefacts,
  ),
) as Record<string, unknown>;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
const paths = (v: Json, at: (string | number)[] = []): (string | number)[][] =>
  v && typeof v === "object"
    ? [at, ...Object.entries(v).flatMap(([k, x]) => paths(x as Json, [...at, Array.isArray(v) ? Number(k) : k]))]
    : [at];

function edit(root: Json, path: (string | number)[], value: Json | undefined): Json {
  const copy = structuredClone(root);
  if (path.length === 0) return value ?? null;
  let o = copy as Record<string | number, Json>;
  for (const k of path.slice(0, -1)) o = o[k] as Record<string | number, Json>;
  const last = path[path.length - 1]!;
  if (value === undefined) delete o[last];
  else o[last] = value;
  return copy;
}

describe("importAws under random edits", () => {
  it("imports or refuses with a typed error naming an aws field (seeded)", () => {
    const all = paths(base as Json);
    const arbValue = fc.oneof(
      fc.constant(undefined),
      fc.constant(null),
      fc.integer({ min: -5, max: 200_000 }),
      fc.string({ maxLength: 12 }),
      fc.constantFrom("CUSTOM", "AGGREGATION", "LIST", "SUM_DISTINCT", "QUERY_RUNNER", "ANY_QUERY", "__proto__"),
      fc.constant([] as Json),
      fc.constant({} as Json),
    );
    let refused = 0;
    let imported = 0;
    fc.assert(
      fc.property(fc.array(fc.tuple(fc.nat(all.length - 1), arbValue), { minLength: 1, maxLength: 3 }), (edits) => {
        let j = base as Json;
        for (const [i, v] of edits) {
          const ps = paths(j);
          j = edit(j, ps[i % ps.length]!, v as Json | undefined);
        }
        try {
          const d = importAws(j);
          imported++;
          if (d.template && d.exportInputs) {
            const again = JSON.parse(JSON.stringify(exportTemplate(d.template, "aws", d.exportInputs).artefacts));
            expect(again).toEqual(j);
          }
        } catch (e) {
          expect(isCleanRoomError(e), String(e)).toBe(true);
          if (isCleanRoomError(e)) {
            expect(["TEMPLATE_INVALID", "RULE_INVALID", "PARAM_INVALID", "DP_PARAM_INVALID"]).toContain(e.code);
            const field = (e.details as { field?: string }).field ?? "";
            expect(field === "" || field.startsWith("aws") || field.startsWith("template") || field.startsWith("rule")).toBe(true);
          }
          refused++;
        }
      }),
      { numRuns: 400, seed: 20261202 },
    );
    expect(refused).toBeGreaterThan(100);
    expect(imported).toBeGreaterThan(0); // edits that keep the meaning (e.g. a rule's name) still import
  });
});
