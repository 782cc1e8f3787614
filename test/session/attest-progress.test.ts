/**
 * Enclave attestation in steps (issue 19 leftovers): "launch and measure", then one "verify and
 * release keys" step per dataset, yielding to the event loop in between; the verb shows an
 * in-place bar by default for large datasets, on request otherwise, and reports to a callback.
 * The operator's records and the current enclave change only when the attestation is over.
 * Kernel display is a recorder.
 */
import { afterEach, describe, expect, it } from "vitest";
import { installKernel, uninstallKernel } from "../helpers/kernel-recorder.js";
import {
  addParty,
  approveTemplate,
  attestEnclave,
  generateStudy,
  liftRules,
  liftSchemas,
  liftTemplate,
  openLab,
  upload,
  type Lab,
} from "../../kernel-lib/src/index.js";
import { operatorHoldings } from "../../kernel-lib/src/enclave-room.js";
import { KEY_RELEASE_PHASE, LAUNCH_PHASE } from "../../kernel-lib/src/session/enclave-mode.js";

afterEach(uninstallKernel);

const study = generateStudy({
  seed: "attest-progress",
  advertiserRows: 400,
  overlap: 0.8,
  holdoutShare: 0.3,
  baseConversionRate: 0.2,
  liftPct: 30,
});
const keyed = (rows: readonly { email: string }[]) => rows.map(({ email, ...rest }) => ({ ...rest, join_key: email }));
async function room(): Promise<Lab> {
  const lab = openLab({ store: ":memory:", rng: { seed: "attest-progress" } });
  addParty(lab, { party: "advertiser" });
  addParty(lab, { party: "retailer" });
  const s = liftSchemas(),
    r = liftRules(20);
  await upload(lab, {
    party: "advertiser",
    name: "exposures",
    rows: keyed(study.exposures),
    sealing: "enclave",
    schema: s.exposures,
    purposes: ["measurement"],
    rule: r.exposures,
  });
  await upload(lab, {
    party: "retailer",
    name: "purchases",
    rows: keyed(study.purchases),
    sealing: "enclave",
    schema: s.purchases,
    purposes: ["measurement"],
    rule: r.purchases,
  });
  const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
  for (const party of ["advertiser", "retailer"]) approveTemplate(lab, { template: t, party, executor: "enclave" });
  return lab;
}
const held = (lab: Lab) => {
  const h = operatorHoldings(lab) as { documents: unknown[]; sealedKeys: unknown[]; ciphertexts: unknown[] };
  return [h.documents.length, h.sealedKeys.length, h.ciphertexts.length];
};

describe("attestEnclave in steps", () => {
  it("reports launch, then one key-release step per dataset, and changes the operator's records only at the end", async () => {
    const lab = await room();
    const seen: [number, number, string][] = [];
    const before = held(lab);
    const pending = attestEnclave(lab, { purpose: "measurement", progress: (d, t, p) => void seen.push([d, t, p]) });
    const midway: number[][] = [];
    const spin = () => void (seen.length < 4 ? (midway.push(held(lab)), setImmediate(spin)) : undefined);
    setImmediate(spin);
    const att = await pending;
    expect(att.ok).toBe(true);
    expect(seen).toEqual([
      [1, 1, LAUNCH_PHASE],
      [0, 2, KEY_RELEASE_PHASE],
      [1, 2, KEY_RELEASE_PHASE],
      [2, 2, KEY_RELEASE_PHASE],
    ]);
    // other code ran during the attestation, and saw none of its records half-written
    expect(midway.length).toBeGreaterThan(1);
    for (const m of midway) expect(m).toEqual(before);
    expect(held(lab)).toEqual([before[0]! + 2, before[1]! + 2, 2]);
    lab.close();
  });

  it("a small attestation shows no bar unless asked; asked, it ends done — or failed when an owner refuses", async () => {
    const events = installKernel();
    const lab = await room();
    await attestEnclave(lab, { purpose: "measurement" });
    expect(events).toHaveLength(0);
    await attestEnclave(lab, { purpose: "measurement", progress: true });
    const last = events.at(-1)!.payload as { state: string; phases: { name: string }[]; task: string };
    expect(last).toMatchObject({ kind: "progress", state: "done", task: "enclave attestation", rngMode: "seeded" });
    expect(last.phases.map((p) => p.name)).toEqual([LAUNCH_PHASE, KEY_RELEASE_PHASE]);
    events.length = 0;
    const tampered = await attestEnclave(lab, { purpose: "measurement", tamper: "code", progress: true });
    expect(tampered.ok).toBe(false);
    expect(events.at(-1)!.payload).toMatchObject({ state: "failed" });
    lab.close();
  });
});
