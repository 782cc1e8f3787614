import { describe, expect, it } from "vitest";
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { oracleLiftAggregates } from "../../kernel-lib/src/studies/oracle.js";
import { runPjc } from "../../kernel-lib/src/mpc/run.js";
import { ExpElGamal, MAX_PLAINTEXT } from "../../kernel-lib/src/mpc/elgamal.js";
import { pjcIdsParty, pjcValuesParty } from "../../kernel-lib/src/mpc/pjc.js";
import { linkedPair } from "../../kernel-lib/src/transport/transport.js";
import { normalizeStudyEmail } from "../../kernel-lib/src/datasets/emails.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { exactTemplate, PARAMS } from "./fixtures.js";

const study = generateStudy({ seed: "pjc", advertiserRows: 1500, overlap: 0.6, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 30 });

describe("exponential ElGamal on ristretto255 (libsodium group operations)", () => {
  it("is additively homomorphic, re-randomises, decodes 0 and refuses a plaintext beyond the decoder's bound", async () => {
    const eg = await ExpElGamal.load();
    const rng = seededRng("eg");
    const k = eg.keygen(rng);
    const xs = [0, 1, 7, 99_999, 123_456];
    const cts = xs.map((x) => eg.encrypt(k.publicKey, x, rng));
    for (const [i, c] of cts.entries()) expect(eg.decrypt(k.secretKey, c)).toBe(xs[i]);
    const sum = cts.reduce((a, b) => eg.add(a, b));
    expect(eg.decrypt(k.secretKey, sum)).toBe(xs.reduce((a, b) => a + b));
    const rr = eg.rerandomise(k.publicKey, sum, rng);
    expect(Buffer.from(rr).equals(Buffer.from(sum))).toBe(false);
    expect(eg.decrypt(k.secretKey, rr)).toBe(eg.decrypt(k.secretKey, sum));
    // same plaintext twice: different ciphertexts (IND-CPA needs fresh randomness)
    expect(Buffer.from(eg.encrypt(k.publicKey, 5, rng)).equals(Buffer.from(eg.encrypt(k.publicKey, 5, rng)))).toBe(false);
    // the decoder refuses what it cannot find (bound lowered to 2^20 to keep the search short)
    const over = eg.add(eg.encrypt(k.publicKey, 1 << 20, rng), eg.encrypt(k.publicKey, 1 << 19, rng));
    expect(() => eg.decrypt(k.secretKey, over, (1 << 20) - 1)).toThrow(/larger one/);
    expect(eg.decrypt(k.secretKey, over, 1 << 21)).toBe((1 << 20) + (1 << 19));
    expect(() => eg.encrypt(k.publicKey, MAX_PLAINTEXT + 1, rng)).toThrow(/plaintext/);
  }, 60_000);
});

describe("intersection-sum with cardinality (PJC shape)", () => {
  it("returns exactly the oracle's population, converters and value per arm", async () => {
    const o = oracleLiftAggregates(study.exposures, study.purchases, { maxConversionsPerPerson: 4 }).cohorts[0]!.aggregates;
    for (const arm of ["test", "control"] as const) {
      const r = await runPjc({
        advertiserRows: study.exposures,
        retailerRows: study.purchases,
        arm,
        columns: ["converters", "value"],
        template: exactTemplate(),
        params: PARAMS,
        rng: seededRng(`pjc-${arm}`),
      });
      expect(r.intersectionSize).toBe(o[`${arm}Population`]);
      expect(r.parties.advertiser.intersectionSize).toBe(o[`${arm}Population`]);
      expect(r.sums).toEqual({ converters: o[`${arm}Converters`], value: o[`${arm}Value`] });
      // transcript: no identifier (raw or normalised) and no plaintext value crosses
      const text = r.wire.messages.map((m) => m.wire).join("\n");
      const ids = study.exposures.slice(0, 200).flatMap((e) => [e.email, normalizeStudyEmail(e.email)]);
      expect(ids.filter((id) => text.includes(id))).toEqual([]);
      expect(r.wire.messages.map((m) => m.kind)).toEqual(["ids", "reply", "sum"]);
    }
  }, 120_000);

  it("attack: without re-randomisation the values party learns WHICH of its customers matched; with it, it cannot", async () => {
    // the retailer knows its own ciphertexts; a one-person intersection's sum IS that person's ciphertext
    // what the retailer compares: the returned sum against each of its own sent ciphertexts
    const linkable = async (insecure: boolean) => {
      const [a, b] = linkedPair("advertiser", "retailer");
      const seen: Record<string, unknown>[] = [];
      const spyA = { ...a, send: async (p: string, k: string, body: unknown) => (seen.push(body as never), a.send(p, k, body)) };
      const spyB = { ...b, send: async (p: string, k: string, body: unknown) => (seen.push(body as never), b.send(p, k, body)) };
      const ids = ["ann@x.org", "bob@x.org", "cy@x.org", "dee@x.org"];
      await Promise.all([
        pjcIdsParty({ link: spyA, ids: ["bob@x.org", "zed@x.org"], rng: seededRng("atk-a2"), insecureNoRerandomise: insecure }),
        pjcValuesParty({ link: spyB, ids, values: ids.map((_, i) => [10 + i]), rng: seededRng("atk-b2") }),
      ]);
      const sent = Buffer.from(seen.find((m) => "cts" in m)!["cts"] as string, "base64");
      const sum = Buffer.from(seen.find((m) => "sums" in m)!["sums"] as string, "base64");
      let hits = 0;
      for (let i = 0; i < sent.length; i += 64) if (sent.subarray(i, i + 64).equals(sum)) hits++;
      return hits;
    };
    expect(await linkable(true)).toBe(1); // positive control: the match is visible
    expect(await linkable(false)).toBe(0);
  }, 60_000);

  it("refuses a malformed reply before any scalar multiplication, naming the field", async () => {
    const [a, b] = linkedPair("advertiser", "retailer");
    const p = pjcIdsParty({ link: a, ids: ["a@x.org"], rng: seededRng("bad") });
    await b.receive();
    await b.send("cleanroom-lab/pjc/v1", "reply", {
      doubled: Buffer.alloc(32, 7).toString("base64"),
      points: "",
      cts: "",
      columns: 1,
      publicKey: "",
    });
    try {
      await p;
      expect.unreachable();
    } catch (e) {
      expect(isCleanRoomError(e)).toBe(true);
      expect((e as Error).message).toMatch(/reply\./);
    }
  });
});
