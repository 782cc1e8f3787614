import { describe, expect, it } from "vitest";
import { combineRules, parseAnalysisRule, type AnalysisRuleAggregation } from "../../kernel-lib/src/cleanroom/rules.js";

const rule = (minimum: number, extra: Partial<AnalysisRuleAggregation> = {}) =>
  parseAnalysisRule({
    type: "AGGREGATION",
    aggregateColumns: [{ columnNames: ["value_cents"], function: "SUM" }],
    dimensionColumns: ["region"],
    joinColumns: ["join_key"],
    outputConstraints: [{ columnName: "join_key", minimum, type: "COUNT_DISTINCT" }],
    ...extra,
  }) as AnalysisRuleAggregation;

describe("analysis rules", () => {
  it("validates the AWS minimum range 2–100000 and the COUNT_DISTINCT type", () => {
    expect(rule(2).outputConstraints[0]!.minimum).toBe(2);
    expect(rule(100000).outputConstraints[0]!.minimum).toBe(100000);
    expect(() => rule(1)).toThrow(/RULE_INVALID.*outputConstraints\.0\.minimum/);
    expect(() => rule(100001)).toThrow(/RULE_INVALID/);
    expect(() =>
      parseAnalysisRule({
        type: "AGGREGATION",
        aggregateColumns: [],
        dimensionColumns: [],
        joinColumns: [],
        outputConstraints: [{ columnName: "k", minimum: 5, type: "COUNT" }],
      }),
    ).toThrow(/RULE_INVALID/);
    expect(() =>
      parseAnalysisRule({ type: "AGGREGATION", aggregateColumns: [], dimensionColumns: [], joinColumns: [], outputConstraints: [] }),
    ).toThrow(/RULE_INVALID/);
  });

  it("combines several parties' rules: the most restrictive wins (AWS 100 vs 150 → 150)", () => {
    const c = combineRules({ "a/t1": rule(100), "b/t2": rule(150, { joinRequired: true }) });
    expect(c.minimum).toBe(150);
    expect(c.minimumFrom).toBe("b/t2");
    expect(c.joinRequired).toBe(true);
    expect(c.allowedJoinOperators).toEqual(["AND"]);
    const c2 = combineRules({
      "a/t1": rule(100, { allowedJoinOperators: ["AND", "OR"] }),
      "b/t2": rule(10, { allowedJoinOperators: ["OR"] }),
    });
    expect(c2.allowedJoinOperators).toEqual(["OR"]);
    expect(() =>
      combineRules({ "a/t1": rule(5, { allowedJoinOperators: ["AND"] }), "b/t2": rule(5, { allowedJoinOperators: ["OR"] }) }),
    ).toThrow(/RULE_INVALID/);
  });

  it("parses list rules", () => {
    expect(parseAnalysisRule({ type: "LIST", joinColumns: ["join_key"], listColumns: ["region"] }).type).toBe("LIST");
    expect(() => parseAnalysisRule({ type: "LIST", joinColumns: [], listColumns: ["region"] })).toThrow(/RULE_INVALID/);
  });
});
