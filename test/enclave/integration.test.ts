import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { SimulatedHardwareRoot, type EnclaveWorkload } from "../../kernel-lib/src/enclave/enclave.js";
import { KeyReleaseService } from "../../kernel-lib/src/enclave/keyRelease.js";
import { allowImages } from "../../kernel-lib/src/enclave/verifier.js";
import { runAttested } from "../../kernel-lib/src/enclave/attestedRun.js";
import {
  attestationLab,
  demoAttestationRefusals,
  demoHappyPath,
  demoOperatorVsEnclaveView,
  TAMPERS,
} from "../../kernel-lib/src/labs/enclave-demos.js";
import { AttestationPayload } from "../../kernel-lib/src/display/schema.js";
import { demoDifferencingAttack } from "../../kernel-lib/src/labs/enclave-differencing.js";
import { measureEnclaveCost } from "../../kernel-lib/src/enclave/cost.js";
import { approvedWorkload, demoPeople, peopleCsv } from "../../kernel-lib/src/labs/enclave-demo-workload.js";
import { expectRefusal } from "./fixtures.js";

const PURPOSE = "marketing.advertising.measurement";
const TEMPLATE = "5e".repeat(32);

/** A two-party lift-style workload: converters per group after joining on join_key. */
const liftWorkload: EnclaveWorkload = ({ inputs }) => {
  const rows = (b: Uint8Array) =>
    new TextDecoder()
      .decode(b)
      .split("\n")
      .slice(1)
      .map((l) => l.split(","));
  const buyers = new Set(rows(inputs["purchases"]!).map((r) => r[0]));
  const out: Record<string, number> = { test: 0, control: 0, testConverters: 0, controlConverters: 0 };
  for (const [key, group] of rows(inputs["exposures"]!)) {
    out[group!]! += 1;
    if (buyers.has(key)) out[`${group}Converters`]! += 1;
  }
  return out;
};

function twoParties(seed: string) {
  const rng = seededRng(seed);
  const exposures = Array.from({ length: 300 }, (_, i) => ({ key: `k${i}`, group: rng.int(2) === 0 ? "test" : "control" }));
  const purchases = Array.from({ length: 200 }, () => ({ key: `k${rng.int(500)}` }));
  const root = SimulatedHardwareRoot.create("lab", rng);
  const enclave = root.launch(
    {
      engine: { name: "arquero", version: "8.0.3" },
      approvedTemplateHashes: [TEMPLATE],
      config: { minAggregation: 1 },
      workload: liftWorkload,
    },
    rng,
  );
  const adKms = new KeyReleaseService({ owner: "advertiser", pinnedRootPublicKey: root.publicKeyHex });
  const retailKms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: root.publicKeyHex });
  const policy = { allowedMeasurements: allowImages([enclave.measurement.imageSha384]), requiredPurpose: PURPOSE };
  const encExp = adKms.protectDataset(
    "exposures",
    utf8(["join_key,group", ...exposures.map((e) => `${e.key},${e.group}`)].join("\n")),
    policy,
    rng,
  );
  const encPur = retailKms.protectDataset("purchases", utf8(["join_key", ...purchases.map((p) => p.key)].join("\n")), policy, rng);
  const buyers = new Set(purchases.map((p) => p.key));
  const expected = {
    test: exposures.filter((e) => e.group === "test").length,
    control: exposures.filter((e) => e.group === "control").length,
    testConverters: exposures.filter((e) => e.group === "test" && buyers.has(e.key)).length,
    controlConverters: exposures.filter((e) => e.group === "control" && buyers.has(e.key)).length,
  };
  return { rng, root, enclave, adKms, retailKms, encExp, encPur, expected };
}

describe("attested run: attest → verify → release → query → result", () => {
  it("two data owners each verify the enclave and release their keys; the joined result equals the plaintext computation", () => {
    const p = twoParties("integration");
    const report = runAttested(
      {
        enclave: p.enclave,
        purpose: PURPOSE,
        templateHash: TEMPLATE,
        userData: "room-1",
        inputs: [
          { input: "exposures", owner: p.adKms, encrypted: p.encExp },
          { input: "purchases", owner: p.retailKms, encrypted: p.encPur },
        ],
      },
      p.rng,
    );
    expect(report.result.output).toEqual(p.expected);
    expect(report.attestations.map((a) => [a.owner, a.datasetId, a.released])).toEqual([
      ["advertiser", "exposures", true],
      ["retailer", "purchases", true],
    ]);
    expect(report.attestations[0]!.documentHash).not.toBe(report.attestations[1]!.documentHash); // one fresh document per owner
    expect(report.imageSha384).toBe(p.enclave.measurement.imageSha384);
    expect(report.rngStamp).toEqual({ rngMode: "seeded", label: "teaching mode — not private" });
    expect(JSON.parse(JSON.stringify(report))).toEqual(report);
    expect(p.adKms.decisions()[0]!.decision).toBe("released");
  });

  it("if one owner's policy does not admit the enclave, the run stops before the workload executes", () => {
    const p = twoParties("integration-refused");
    let ran = false;
    const spy: EnclaveWorkload = (w) => ((ran = true), w.params);
    const other = p.root.launch(
      { engine: { name: "arquero", version: "8.0.3" }, approvedTemplateHashes: [TEMPLATE], config: { minAggregation: 1 }, workload: spy },
      p.rng,
    );
    expectRefusal(
      () =>
        runAttested(
          {
            enclave: other,
            purpose: PURPOSE,
            templateHash: TEMPLATE,
            inputs: [{ input: "exposures", owner: p.adKms, encrypted: p.encExp }],
          },
          p.rng,
        ),
      "ATTESTATION_MEASUREMENT",
      "measurement",
    );
    expect(ran).toBe(false);
  });

  it("the demo happy path releases and answers with the same result as the plaintext count", () => {
    const r = demoHappyPath(seededRng("hp"));
    expect(r.attestations[0]!.checks).toHaveLength(10);
    expect(r.result.output).toMatchObject({ region: "north", suppressed: false });
  });
});

describe("demonstrations", () => {
  it("every attack scenario is refused with its own code; only the approved enclave gets the key", () => {
    const { scenarios, rngStamp } = demoAttestationRefusals(seededRng("demos"));
    expect(scenarios.map((s) => [s.scenario, s.code])).toEqual([
      ["approved enclave", null],
      ["workload code changed by one byte", "ATTESTATION_MEASUREMENT"],
      ["replayed document", "ATTESTATION_REPLAY"],
      ["wrong nonce", "ATTESTATION_NONCE"],
      ["stale document", "ATTESTATION_STALE"],
      ["debug enclave listed by a misconfigured policy", "ATTESTATION_DEBUG"],
      ["man in the middle swaps the channel key", "ATTESTATION_KEY_MISMATCH"],
      ["man in the middle edits public_key inside the document", "ATTESTATION_SIGNATURE"],
      ["man in the middle keeps the grant", "CRYPTO_DECRYPT_FAILED"],
      ["purpose not allowed", "ATTESTATION_PURPOSE"],
      ["enclave from another lab's hardware", "ATTESTATION_UNTRUSTED_ROOT"],
    ]);
    expect(scenarios.filter((s) => s.outcome === "released")).toHaveLength(1);
    expect(rngStamp.rngMode).toBe("seeded");
  });

  it("the attestation lab: each tamper toggle yields a display payload that parses and says why", () => {
    const rng = seededRng("lab-cells");
    const failedCheck: Record<string, string | null> = {};
    for (const tamper of TAMPERS) {
      const { outcome, display } = attestationLab(tamper, rng);
      expect(AttestationPayload.safeParse(display).success).toBe(true);
      failedCheck[tamper] = display.checks.find((c) => c.status === "failed")?.name ?? null;
      if (tamper === "none" || tamper === "mitmGrant")
        expect(display).toMatchObject({ verified: true, keyRelease: { outcome: "released" } });
      else expect(display.keyRelease).toEqual({ outcome: "denied", reason: outcome.code });
    }
    expect(failedCheck).toMatchObject({
      none: null,
      code: expect.stringMatching(/measurement/),
      debug: "not a debug enclave",
      stale: expect.stringMatching(/timestamp/),
      mitmKey: expect.stringMatching(/channel key/),
    });
    expect(() => attestationLab("pcr9" as never, rng)).toThrow(/"tamper" expected/);
  });

  it("the operator's view holds ciphertexts, the document and sealed keys, and every attempt to read plaintext fails", () => {
    const { operatorView, enclaveView } = demoOperatorVsEnclaveView(seededRng("views"));
    expect(operatorView.attempts.map((a) => a.result)).toEqual([
      "refused: CRYPTO_DECRYPT_FAILED",
      "refused: CRYPTO_DECRYPT_FAILED",
      "refused: ATTESTATION_REPLAY",
      "refused: QUERY_NOT_APPROVED",
    ]);
    expect(JSON.stringify(operatorView)).not.toMatch(/p0000|platinum|gold|basic/);
    expect(enclaveView.keysHeld).toHaveLength(1);
    expect(enclaveView.lastRun[0]!.plaintextBytes).toBeGreaterThan(0);
    expect(operatorView.attestationDocument.pcr0).toBe(enclaveView.imageSha384);
  });

  it("the seed's misconception: exact and thresholded counts from an attested enclave reveal the target; DP noise does not", () => {
    const r = demoDifferencingAttack(seededRng("differencing"), { people: 200, trials: 30 });
    const [exact, threshold, dp] = r.modes;
    expect(exact!.attackSuccessRate).toBe(1);
    expect(threshold!.attackSuccessRate).toBe(1);
    expect(threshold!.example.cohort).toMatchObject({ suppressed: false });
    expect(dp!.attackSuccessRate).toBeLessThan(1);
    expect(dp!.dpBound!.maxSuccess).toBeCloseTo(Math.exp(1) / (1 + Math.exp(1)), 10);
    expect(new Set(r.modes.map((m) => m.imageSha384)).size).toBe(3); // the release mode is measured
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
  });

  it("under DP the attack success stays near the ε bound over many worlds (seeded, power check against exact)", () => {
    const r = demoDifferencingAttack(seededRng("differencing-power"), { people: 200, trials: 600 });
    const dp = r.modes[2]!;
    // Bound 0.731 for ε = 1 on the pair; allow 3 standard errors of sampling slack.
    expect(dp.attackSuccessRate).toBeLessThan(dp.dpBound!.maxSuccess + 3 * Math.sqrt(0.25 / 600));
    expect(dp.attackSuccessRate).toBeGreaterThan(0.5 - 3 * Math.sqrt(0.25 / 600));
    expect(r.modes[0]!.attackSuccessRate).toBe(1);
    expect(r.modes[1]!.attackSuccessRate).toBe(1); // cohorts above the threshold: same data, same leak
  });

  it("the cost model reports plain JSON phases and ratios for the enclave path", () => {
    const rng = seededRng("cost");
    const r = measureEnclaveCost(
      { workload: approvedWorkload, input: "people", bytes: peopleCsv(demoPeople(500, 1, rng)), params: { region: "north" }, repeats: 2 },
      rng,
    );
    expect(Object.keys(r.phasesMs)).toEqual(["encrypt", "attest", "verify", "release", "run"]);
    for (const v of [r.plainMs, r.enclaveTotalMs, r.overheadRatio, ...Object.values(r.phasesMs)])
      expect(Number.isFinite(v) && v >= 0).toBe(true);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(() => measureEnclaveCost({ workload: approvedWorkload, input: "people", bytes: "x" as never, params: null }, rng)).toThrow(
      /"spec\.bytes"/,
    );
  });
});
