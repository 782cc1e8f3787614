import { describe, expect, it } from "vitest";
import { oracleLiftAggregates } from "../../kernel-lib/src/studies/oracle.js";
import { runSharedLift, type WireLog } from "../../kernel-lib/src/mpc/run.js";
import { liftSpec, partyNoise, sharedLiftDealer, sharedLiftParty } from "../../kernel-lib/src/mpc/shared-lift.js";
import { linkedPair, type Transport } from "../../kernel-lib/src/transport/transport.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { seededRng, type Rng } from "../../kernel-lib/src/rng.js";
import { ratMul, rat } from "../../kernel-lib/src/dp/rational.js";
import { epsilonLowerBoundCP } from "../dp/stats.js";
import { exactTemplate, matchedStudy, noisyTemplate, PARAMS } from "./fixtures.js";

const fix = await matchedStudy("shared-lift", 3000);

describe("secret-shared lift (2PC, additive shares mod 2^64)", () => {
  it("returns exactly the oracle's fbpcs aggregates before noise", async () => {
    const r = await runSharedLift({
      advertiserRows: fix.adv,
      retailerRows: fix.ret,
      template: exactTemplate(),
      params: PARAMS,
      rng: seededRng("ss1"),
    });
    const o = oracleLiftAggregates(fix.study.exposures, fix.study.purchases, { maxConversionsPerPerson: 4 }).cohorts[0]!.aggregates;
    expect(r.matched).toBe(fix.study.groundTruth.counts.trueOverlap);
    for (const k of [
      "testPopulation",
      "controlPopulation",
      "testConversions",
      "controlConversions",
      "testConverters",
      "controlConverters",
      "testValue",
      "controlValue",
      "testValueSquared",
      "controlValueSquared",
      "testNumConvSquared",
      "controlNumConvSquared",
    ] as const)
      expect([k, r.aggregates[k]]).toEqual([k, o[k]]);
    expect(r.noiseVariance).toBeNull();
    expect(r.rngStamp).toEqual({ rngMode: "seeded", label: "teaching mode — not private" });
  });

  it("transcript scan: no identifier, no per-person value on any link; with masking off the same scan finds them", async () => {
    const scan = (wire: WireLog) => {
      const text = wire.messages.map((m) => m.wire).join("\n");
      const ids = [...fix.adv.slice(0, 300).map((r) => r.join_key), ...fix.study.exposures.slice(0, 300).map((r) => r.email)];
      const idHits = ids.filter((id) => text.includes(id)).length;
      // every base64 vector on the wire, read as 64-bit words: a per-person value (0/1, a count, cents) is a small word
      let small = 0;
      let words = 0;
      for (const m of wire.messages) {
        const body = (JSON.parse(m.wire) as { body: Record<string, unknown> }).body;
        for (const v of Object.values(body)) {
          if (typeof v !== "string" || v.length < 12) continue;
          const b = Buffer.from(v, "base64");
          if (b.length % 8 !== 0) continue;
          for (let i = 0; i < b.length; i += 8) {
            words++;
            if (b.readBigUInt64LE(i) < 1n << 40n) small++;
          }
        }
      }
      return { idHits, small, words };
    };
    const run = (insecureNoMask: boolean) =>
      runSharedLift({
        advertiserRows: fix.adv,
        retailerRows: fix.ret,
        template: exactTemplate(),
        params: PARAMS,
        rng: seededRng("scan"),
        insecureNoMask,
      });
    const safe = scan((await run(false)).wire);
    expect(safe.words).toBeGreaterThan(10 * fix.adv.length);
    expect(safe.idHits).toBe(0);
    expect(safe.small).toBe(0); // uniform words are < 2^40 with probability 2^-24 each
    const leaky = await run(true);
    const l = scan(leaky.wire);
    expect(l.idHits).toBe(0); // join keys never travel, even unmasked: only the vectors leak
    expect(l.small).toBeGreaterThan(6 * fix.adv.length); // t_i and the retailer's 5 features per person, in the clear
  });

  it("ε audit of the in-MPC noise: a party that subtracts its own sample still faces ε-DP; a naive half-scale split does not", () => {
    const spec = liftSpec(noisyTemplate("0.5"), PARAMS);
    const q = spec.noise!.get("converters")!; // Δ = 1, ε = 0.5
    const n = 60_000;
    const c = 500n;
    // the output party's best view: output − its own noise = exact + the OTHER party's noise
    const view = (count: bigint, scale: typeof q.scale, rng: Rng) =>
      Array.from({ length: n }, () => count + partyNoise({ mechanism: q.mechanism, scale }, rng));
    const audit = (scale: typeof q.scale, seed: string) => {
      const inS = (xs: bigint[]) => xs.filter((x) => x >= c + 1n).length;
      return epsilonLowerBoundCP(inS(view(c + 1n, scale, seededRng(`${seed}/D1`))), inS(view(c, scale, seededRng(`${seed}/D`))), n, 1e-6);
    };
    expect(audit(q.scale, "full")).toBeLessThanOrEqual(0.5);
    // positive control: each party adds noise at half the scale (the total looks like one release), ε doubles for an insider
    expect(audit(ratMul(q.scale, rat(1n, 2n)), "half")).toBeGreaterThan(0.5);
  });

  it("a truncated Beaver opening from the peer is refused naming the field; no aggregate is released to anyone", async () => {
    const [ar, ra] = linkedPair("advertiser", "retailer");
    const [ad, da] = linkedPair("advertiser", "dealer");
    const [rd, dr] = linkedPair("retailer", "dealer");
    // the retailer's link cuts its "open" message short (a tampering or buggy peer)
    const cut: Transport = {
      ...ra,
      send: (p, k, body) => ra.send(p, k, k === "open" ? { ...(body as object), d: Buffer.alloc(8).toString("base64") } : body),
    };
    const common = { template: exactTemplate(), params: PARAMS };
    const out = await Promise.allSettled([
      sharedLiftParty({ ...common, role: "advertiser", peer: ar, dealer: ad, rows: fix.adv, rng: seededRng("t-a") }),
      sharedLiftParty({ ...common, role: "retailer", peer: cut, dealer: rd, rows: fix.ret, rng: seededRng("t-r") }),
      sharedLiftDealer({ advertiser: da, retailer: dr, rng: seededRng("t-d") }),
    ]);
    expect(out[0]!.status).toBe("rejected"); // the output party refuses: nothing opened
    // the other party may have finished its part first; it never holds an opened aggregate
    if (out[1]!.status === "fulfilled") expect(out[1].value.aggregates).toBeNull();
    const e = (out[0] as PromiseRejectedResult).reason;
    expect(isCleanRoomError(e, "INPUT_INVALID")).toBe(true);
    expect((e as Error).message).toMatch(/open\.d/);
  });
});
