/**
 * The wiring the session uses for an enclave-backed clean-room query: plan and charge outside
 * (prepareQuery), encrypt each party's serialized table under its own KMS, attest → verify →
 * release, and execute + release the approved template INSIDE the enclave.
 */
import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { executeQuery, prepareQuery, type PreparedQuery } from "../../kernel-lib/src/cleanroom/query.js";
import { ArqueroEngine } from "../../kernel-lib/src/cleanroom/engine.js";
import { deserializeTable, serializeTable } from "../../kernel-lib/src/cleanroom/serialize.js";
import { templateHash } from "../../kernel-lib/src/cleanroom/template.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { CleanRoomError } from "../../kernel-lib/src/errors.js";
import { SimulatedHardwareRoot, type EnclaveWorkload } from "../../kernel-lib/src/enclave/enclave.js";
import { KeyReleaseService } from "../../kernel-lib/src/enclave/keyRelease.js";
import { allowImages } from "../../kernel-lib/src/enclave/verifier.js";
import { runAttestedAsync } from "../../kernel-lib/src/enclave/attestedRun.js";
import type { JsonValue } from "../../kernel-lib/src/enclave/measurement.js";
import { makeRoom } from "../cleanroom/fixtures.js";
import { expectRefusal } from "./fixtures.js";

const PURPOSE = "marketing.advertising.measurement";

/** Plans prepared (and charged) outside, keyed by template hash; tables are NOT kept. */
const PREPARED = new Map<string, Omit<PreparedQuery, "tables">>();

/** The measured workload: decrypted Arrow IPC → tables → engine → threshold/noise release. */
const cleanRoomWorkload: EnclaveWorkload = async ({ inputs, templateHash: hash, rng }) => {
  const prep = PREPARED.get(hash);
  if (!prep || prep.templateHash !== hash) throw new CleanRoomError("QUERY_NOT_APPROVED", "no prepared plan for this template hash");
  const tables = Object.fromEntries(Object.entries(inputs).map(([name, bytes]) => [name, deserializeTable(bytes)]));
  const result = await executeQuery({ ...prep, tables }, { engine: new ArqueroEngine(), rng });
  return JSON.parse(JSON.stringify(result)) as JsonValue;
};

describe("a clean-room query inside the attested enclave", () => {
  it("returns the same released rows as the plain path, with both parties' keys released only to the measured image", async () => {
    const room = makeRoom({ users: 400, seed: "enclave-cleanroom" });
    const t = liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20 });
    room.registry.approve(t, "adv", room.ctx);
    room.registry.approve(t, "shop", room.ctx);
    const { tables, ...plan } = prepareQuery({ template: t, params: { startDay: 0, endDay: 27 }, registry: room.registry, ctx: room.ctx });
    PREPARED.set(plan.templateHash, plan);
    expect(plan.templateHash).toBe(templateHash(t));

    const rng = seededRng("enclave-cleanroom-run");
    const root = SimulatedHardwareRoot.create("room-1", rng);
    const enclave = root.launch(
      {
        engine: { name: "arquero", version: "8.0.3" },
        approvedTemplateHashes: [plan.templateHash],
        config: { engine: "arquero" },
        workload: cleanRoomWorkload,
        dependencies: { executeQuery, deserializeTable },
      },
      rng,
    );
    const image = allowImages([enclave.measurement.imageSha384]);
    const adv = new KeyReleaseService({ owner: "adv", pinnedRootPublicKey: root.publicKeyHex });
    const shop = new KeyReleaseService({ owner: "shop", pinnedRootPublicKey: root.publicKeyHex });
    const encExp = adv.protectDataset(
      "adv.exposures",
      serializeTable(tables["adv/exposures"]!),
      { allowedMeasurements: image, requiredPurpose: PURPOSE },
      rng,
    );
    const encPur = shop.protectDataset(
      "shop.purchases",
      serializeTable(tables["shop/purchases"]!),
      { allowedMeasurements: image, requiredPurpose: PURPOSE },
      rng,
    );

    const report = await runAttestedAsync(
      {
        enclave,
        purpose: PURPOSE,
        templateHash: plan.templateHash,
        inputs: [
          { input: "adv/exposures", owner: adv, encrypted: encExp },
          { input: "shop/purchases", owner: shop, encrypted: encPur },
        ],
      },
      rng,
    );
    const plain = await executeQuery({ ...plan, tables }, { engine: new ArqueroEngine(), rng: seededRng("plain") });
    const inside = report.result.output as unknown as typeof plain;
    expect(inside.rows.length).toBeGreaterThan(0);
    expect(inside.rows).toEqual(JSON.parse(JSON.stringify(plain.rows)));
    // An async workload must go through runAsync; the sync entry point refuses it.
    expectRefusal(
      () =>
        enclave.run({ datasets: { "adv/exposures": encExp, "shop/purchases": encPur }, templateHash: plan.templateHash, purpose: PURPOSE }),
      "STATE_INVALID",
    );
    expect(inside.templateHash).toBe(plan.templateHash);
    expect(report.attestations.map((a) => a.owner)).toEqual(["adv", "shop"]);
    expect(JSON.stringify(report)).not.toMatch(/"k\d+"/); // no join keys leave the enclave
  });

  it("a template the enclave was not measured with is refused before any key is released", async () => {
    const room = makeRoom({ users: 50, seed: "enclave-cleanroom-2" });
    const t = liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20 });
    const rng = seededRng("e2");
    const root = SimulatedHardwareRoot.create("room-2", rng);
    const enclave = root.launch(
      { engine: { name: "arquero", version: "8.0.3" }, approvedTemplateHashes: ["ab".repeat(32)], config: {}, workload: cleanRoomWorkload },
      rng,
    );
    const adv = new KeyReleaseService({ owner: "adv", pinnedRootPublicKey: root.publicKeyHex });
    const enc = adv.protectDataset(
      "adv.exposures",
      serializeTable(room.raw.exposures),
      { allowedMeasurements: allowImages([enclave.measurement.imageSha384]), requiredPurpose: PURPOSE },
      rng,
    );
    await expect(
      runAttestedAsync(
        { enclave, purpose: PURPOSE, templateHash: templateHash(t), inputs: [{ input: "adv/exposures", owner: adv, encrypted: enc }] },
        rng,
      ),
    ).rejects.toMatchObject({ code: "QUERY_NOT_APPROVED" });
    expect(adv.decisions()).toEqual([]);
    expectRefusal(() => enclave.run({ datasets: {}, templateHash: templateHash(t), purpose: PURPOSE }), "QUERY_NOT_APPROVED");
  });
});
