import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { makeLabel } from "../../kernel-lib/src/purpose/labels.js";
import { enforcePurpose, evaluatePurpose, verifyGrant } from "../../kernel-lib/src/purpose/policy.js";
import { room } from "./helpers.js";

const bo = { party: "advertiser", analyst: "bo" };

describe("the seed's purpose table", () => {
  const r = room();
  const adsData = makeLabel(r.taxonomy, { purposes: ["ads", "measurement"] });
  const safetyData = makeLabel(r.taxonomy, { purposes: ["safety"] });
  const decide = (label: typeof adsData, query: string) =>
    evaluatePurpose({ grant: r.grant(query), requester: bo, inputs: [{ datasetId: "d", label }] }, r.ctx());

  it.each([
    [adsData, "ads", "granted"],
    [adsData, "research", "refused"],
    [safetyData, "ads", "refused"],
    [safetyData, "safety", "granted"],
  ] as const)("data %j + query %s → %s", (label, query, outcome) => {
    const d = decide(label, query);
    expect(d.outcome).toBe(outcome);
    if (outcome === "refused") expect(d.code).toBe("PURPOSE_DENIED");
  });

  it("hierarchy: a measurement grant is allowed by data tagged marketing.advertising", () => {
    const onlyAds = makeLabel(r.taxonomy, { purposes: ["marketing.advertising"] });
    const d = decide(onlyAds, "marketing.advertising.measurement");
    expect(d.outcome).toBe("granted");
    expect(d.inputs[0]!.coveredBy).toBe("marketing.advertising");
  });

  it("a broader purpose is not allowed by data tagged only with a narrower one", () => {
    const onlyMeasurement = makeLabel(r.taxonomy, { purposes: ["measurement"] });
    expect(decide(onlyMeasurement, "ads").outcome).toBe("refused");
    expect(decide(onlyMeasurement, "measurement").outcome).toBe("granted");
  });
});

describe("evaluatePurpose", () => {
  it("refuses when any one input does not allow the purpose", () => {
    const r = room();
    const a = makeLabel(r.taxonomy, { purposes: ["ads"] });
    const s = makeLabel(r.taxonomy, { purposes: ["safety"] });
    const d = evaluatePurpose(
      {
        grant: r.grant("ads"),
        requester: bo,
        inputs: [
          { datasetId: "exposures", label: a },
          { datasetId: "purchases", label: s },
        ],
      },
      r.ctx(),
    );
    expect(d.outcome).toBe("refused");
    expect(d.reason).toMatch(/not allowed by input "purchases"/);
  });

  it("refuses a query without a grant (GRANT_INVALID)", () => {
    const r = room();
    const d = evaluatePurpose(
      { grant: undefined, requester: bo, inputs: [{ datasetId: "d", label: makeLabel(r.taxonomy, { purposes: "ads" }) }] },
      r.ctx(),
    );
    expect([d.outcome, d.code]).toEqual(["refused", "GRANT_INVALID"]);
  });

  it("deny rule wins over an allowing tag (Ranger order)", () => {
    const r = room("deny", [
      {
        name: "no-ads-on-contact",
        dataUses: { matches: "ANY", values: ["ads"] },
        dataCategories: { matches: "ANY", values: ["user.contact"] },
      },
    ]);
    const label = makeLabel(r.taxonomy, { purposes: ["ads"], categories: ["user.contact.email"] });
    const d = evaluatePurpose({ grant: r.grant("measurement"), requester: bo, inputs: [{ datasetId: "d", label }] }, r.ctx());
    expect(d.outcome).toBe("refused");
    expect(d.steps.at(-1)!.step).toBe("denyRules");
    const noContact = makeLabel(r.taxonomy, { purposes: ["ads"], categories: ["user.behavior.purchase_history"] });
    expect(
      evaluatePurpose({ grant: r.grant("measurement"), requester: bo, inputs: [{ datasetId: "d", label: noContact }] }, r.ctx()).outcome,
    ).toBe("granted");
  });

  it("label deny wins over label allow, in both hierarchy directions", () => {
    const r = room();
    const label = makeLabel(r.taxonomy, { purposes: ["marketing"], deny: ["marketing.advertising.profiling"] });
    const run = (p: string) => evaluatePurpose({ grant: r.grant(p), requester: bo, inputs: [{ datasetId: "d", label }] }, r.ctx()).outcome;
    expect(run("marketing.advertising.profiling")).toBe("refused");
    expect(run("marketing.advertising")).toBe("refused"); // broader purpose includes the denied one
    expect(run("measurement")).toBe("granted");
  });

  it("refuses a declared purpose outside the grant, and a grant used by another analyst", () => {
    const r = room();
    const label = makeLabel(r.taxonomy, { purposes: ["marketing"] });
    const g = r.grant("measurement");
    expect(evaluatePurpose({ grant: g, purpose: "ads", requester: bo, inputs: [{ datasetId: "d", label }] }, r.ctx()).code).toBe(
      "PURPOSE_DENIED",
    );
    expect(
      evaluatePurpose({ grant: g, requester: { party: "advertiser", analyst: "eve" }, inputs: [{ datasetId: "d", label }] }, r.ctx()).code,
    ).toBe("GRANT_INVALID");
  });

  it("refuses expired grants with GRANT_EXPIRED", () => {
    const r = room();
    const g = r.grant("ads", bo, 60);
    r.advance(61);
    const d = evaluatePurpose(
      { grant: g, requester: bo, inputs: [{ datasetId: "d", label: makeLabel(r.taxonomy, { purposes: "ads" }) }] },
      r.ctx(),
    );
    expect(d.code).toBe("GRANT_EXPIRED");
  });

  it("refuses a grant whose purpose was edited after signing", () => {
    const r = room();
    const g = { ...r.grant("safety"), purpose: "marketing.advertising" };
    expect(() => verifyGrant(g, r.ctx())).toThrow(/does not verify under the room's policy key/);
  });

  it("refuses a grant signed by another room's policy key", () => {
    const r = room("a");
    const other = room("b");
    const g = other.grant("ads");
    expect(() => verifyGrant(g, r.ctx())).toThrow(/policy key/);
  });

  it("enforcePurpose throws the decision's code", () => {
    const r = room();
    try {
      enforcePurpose(
        { grant: r.grant("research"), requester: bo, inputs: [{ datasetId: "d", label: makeLabel(r.taxonomy, { purposes: "ads" }) }] },
        r.ctx(),
      );
      expect.unreachable();
    } catch (e) {
      expect(isCleanRoomError(e, "PURPOSE_DENIED")).toBe(true);
    }
  });
});
