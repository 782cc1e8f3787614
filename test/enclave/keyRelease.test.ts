import { describe, expect, it } from "vitest";
import { b64, fromB64, x25519KeyPair } from "../../kernel-lib/src/crypto/primitives.js";
import { openSealed } from "../../kernel-lib/src/crypto/seal.js";
import { KeyReleaseService, releaseInfo, type KeyReleasePolicy } from "../../kernel-lib/src/enclave/keyRelease.js";
import { allowImages } from "../../kernel-lib/src/enclave/verifier.js";
import { DEMO_TEMPLATE_HASH, demoPeople, peopleCsv, tamperedWorkload } from "../../kernel-lib/src/labs/enclave-demo-workload.js";
import { expectRefusal, fixture, PURPOSE } from "./fixtures.js";

function owner(seed = "kr") {
  const f = fixture(seed);
  const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: f.root.publicKeyHex, clock: f.tick });
  const people = demoPeople(120, 1, f.rng);
  const policy: KeyReleasePolicy = { allowedMeasurements: allowImages([f.enclave.measurement.imageSha384]), requiredPurpose: PURPOSE };
  const encrypted = kms.protectDataset("people", peopleCsv(people), policy, f.rng);
  const ask = (enclave = f.enclave, purpose = PURPOSE) => {
    const nonce = kms.challenge(f.rng);
    const document = enclave.attest(nonce, { purpose });
    return { nonce, document, req: { datasetId: "people", document, nonce, recipientPublicKey: enclave.channelPublicKey } };
  };
  return { ...f, kms, people, policy, encrypted, ask };
}

describe("key release", () => {
  it("releases the data key sealed to the attested key; the enclave opens it and runs the workload", () => {
    const o = owner();
    const { req } = o.ask();
    const grant = o.kms.releaseKey(req, o.rng);
    expect(grant.imageSha384).toBe(o.enclave.measurement.imageSha384);
    expect(grant.verifiedChecks).toContain("measurement");
    expect(JSON.parse(JSON.stringify(grant))).toEqual(grant);
    expect(o.enclave.acceptKey(grant)).toEqual({ datasetId: "people", purpose: PURPOSE, accepted: true });
    const out = o.enclave.run({
      datasets: { people: o.encrypted },
      templateHash: DEMO_TEMPLATE_HASH,
      params: { region: "north" },
      purpose: PURPOSE,
    });
    const north = o.people.filter((p) => p.region === "north");
    expect(out.output).toMatchObject({
      cohortSize: north.length,
      converters: north.filter((p) => p.converted === 1).length,
      suppressed: false,
    });
    expect(o.kms.decisions().map((d) => d.decision)).toEqual(["released"]);
  });

  it("deny wins: a purpose inside or above a denied subtree is refused although requiredPurpose covers it", () => {
    const o = owner("kr-deny");
    const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: o.root.publicKeyHex, clock: o.tick });
    kms.protectDataset(
      "d",
      peopleCsv(o.people),
      { ...o.policy, requiredPurpose: "marketing.advertising", deniedPurposes: ["marketing.advertising.profiling"] },
      o.rng,
    );
    const ask = (purpose: string) => {
      const nonce = kms.challenge(o.rng);
      return { datasetId: "d", document: o.enclave.attest(nonce, { purpose }), nonce, recipientPublicKey: o.enclave.channelPublicKey };
    };
    expectRefusal(() => kms.releaseKey(ask("marketing.advertising.profiling.lookalike"), o.rng), "ATTESTATION_PURPOSE", "purpose");
    expectRefusal(() => kms.releaseKey(ask("marketing.advertising"), o.rng), "ATTESTATION_PURPOSE", "purpose"); // broader than the denied subtree
    expect(kms.releaseKey(ask("marketing.advertising.measurement"), o.rng).purpose).toBe("marketing.advertising.measurement");
    expect(kms.decisions().map((d) => d.decision)).toEqual(["refused", "refused", "released"]);
  });

  it("refuses an enclave whose workload differs by one byte, and logs the refusal", () => {
    const o = owner();
    const evil = o.launch({ workload: tamperedWorkload });
    expectRefusal(() => o.kms.releaseKey(o.ask(evil).req, o.rng), "ATTESTATION_MEASUREMENT", "measurement");
    expect(o.kms.decisions()).toMatchObject([{ decision: "refused", code: "ATTESTATION_MEASUREMENT" }]);
  });

  it("refuses a debug enclave even though the owner's policy lists its measurement", () => {
    const o = owner();
    const dbg = o.launch({ debug: true });
    expect(o.policy.allowedMeasurements.anyOf![0]!.equals).toBe(dbg.measurement.imageSha384);
    expectRefusal(() => o.kms.releaseKey(o.ask(dbg).req, o.rng), "ATTESTATION_DEBUG", "debug");
  });

  it("refuses a relay that asks to seal to its own key beside a genuine document", () => {
    const o = owner();
    const { req } = o.ask();
    expectRefusal(
      () => o.kms.releaseKey({ ...req, recipientPublicKey: b64(x25519KeyPair(o.rng).publicKey) }, o.rng),
      "ATTESTATION_KEY_MISMATCH",
      "channelKey",
    );
  });

  it("a relay that keeps a genuine grant cannot open it: the key is sealed to the enclave's key", () => {
    const o = owner();
    const grant = o.kms.releaseKey(o.ask().req, o.rng);
    const mitm = x25519KeyPair(o.rng);
    const box = { ephemeralPublicKey: fromB64(grant.sealedKey.ephemeralPublicKey), ciphertext: fromB64(grant.sealedKey.ciphertext) };
    expectRefusal(
      () => openSealed(mitm.secretKey, mitm.publicKey, box, releaseInfo("people", PURPOSE, grant.documentHash)),
      "CRYPTO_DECRYPT_FAILED",
    );
  });

  it("a grant cannot be re-targeted: another enclave, another purpose or another document hash fails", () => {
    const o = owner();
    const grant = o.kms.releaseKey(o.ask().req, o.rng);
    const twin = o.launch();
    expectRefusal(() => twin.acceptKey(grant), "KEY_RELEASE_DENIED");
    expectRefusal(() => o.enclave.acceptKey({ ...grant, purpose: "marketing.advertising" }), "KEY_RELEASE_DENIED");
    // Same enclave, a different (genuine) document: the HKDF info binds the document hash.
    const other = o.ask();
    expectRefusal(
      () => o.enclave.acceptKey({ ...grant, documentHash: o.kms.releaseKey(other.req, o.rng).documentHash }),
      "CRYPTO_DECRYPT_FAILED",
    );
  });

  it("refuses a purpose the data is not tagged for", () => {
    const o = owner();
    expectRefusal(
      () => o.kms.releaseKey(o.ask(o.enclave, "marketing.advertising.first_party.targeted").req, o.rng),
      "ATTESTATION_PURPOSE",
      "purpose",
    );
  });

  it("a dataset policy can demand a stricter freshness window than the service", () => {
    const o = owner();
    o.kms.protectDataset("strict", new Uint8Array([1, 2, 3]), { ...o.policy, maxDocumentAgeMs: 1_000 }, o.rng);
    const nonce = o.kms.challenge(o.rng);
    const document = o.enclave.attest(nonce, { purpose: PURPOSE });
    o.clock.now += 5_000;
    expectRefusal(
      () => o.kms.releaseKey({ datasetId: "strict", document, nonce, recipientPublicKey: o.enclave.channelPublicKey }, o.rng),
      "ATTESTATION_STALE",
      "freshness",
    );
  });

  it("the enclave refuses to run a template not measured into it, or a dataset without a released key", () => {
    const o = owner();
    expectRefusal(
      () =>
        o.enclave.run({
          datasets: { people: o.encrypted },
          templateHash: DEMO_TEMPLATE_HASH,
          params: { region: "north" },
          purpose: PURPOSE,
        }),
      "KEY_RELEASE_DENIED",
    );
    o.enclave.acceptKey(o.kms.releaseKey(o.ask().req, o.rng));
    expectRefusal(
      () =>
        o.enclave.run({ datasets: { people: o.encrypted }, templateHash: "ab".repeat(32), params: { region: "north" }, purpose: PURPOSE }),
      "QUERY_NOT_APPROVED",
    );
    expectRefusal(
      () =>
        o.enclave.run({
          datasets: { people: o.encrypted },
          templateHash: DEMO_TEMPLATE_HASH,
          params: { region: "north" },
          purpose: "marketing.advertising",
        }),
      "KEY_RELEASE_DENIED",
    );
  });

  it("a ciphertext relabelled as another dataset id does not decrypt (AAD binds the id)", () => {
    const o = owner();
    const other = o.kms.protectDataset("other", new Uint8Array([9, 9]), o.policy, o.rng);
    o.enclave.acceptKey(o.kms.releaseKey(o.ask().req, o.rng));
    const n = o.kms.challenge(o.rng);
    const d = o.enclave.attest(n, { purpose: PURPOSE });
    o.enclave.acceptKey(
      o.kms.releaseKey({ datasetId: "other", document: d, nonce: n, recipientPublicKey: o.enclave.channelPublicKey }, o.rng),
    );
    expectRefusal(
      () =>
        o.enclave.run({
          datasets: { people: { ...other, datasetId: "people" } },
          templateHash: DEMO_TEMPLATE_HASH,
          params: { region: "north" },
          purpose: PURPOSE,
        }),
      "CRYPTO_DECRYPT_FAILED",
    );
  });

  it("a key id is filed once: a second grant for it is refused typed, the held key works; positive control: filed first, it breaks the data", () => {
    const o = owner();
    // another owner (its own KMS, same pinned root) protects its bytes under the same id
    const rival = new KeyReleaseService({ owner: "advertiser", pinnedRootPublicKey: o.root.publicKeyHex, clock: o.tick });
    rival.protectDataset("people", new Uint8Array([1, 2, 3]), o.policy, o.rng);
    const rivalGrant = (enclave = o.enclave) => {
      const nonce = rival.challenge(o.rng);
      const document = enclave.attest(nonce, { purpose: PURPOSE });
      return rival.releaseKey({ datasetId: "people", document, nonce, recipientPublicKey: enclave.channelPublicKey }, o.rng);
    };
    const run = (enclave = o.enclave) =>
      enclave.run({ datasets: { people: o.encrypted }, templateHash: DEMO_TEMPLATE_HASH, params: { region: "north" }, purpose: PURPOSE });
    o.enclave.acceptKey(o.kms.releaseKey(o.ask().req, o.rng));
    const before = run().output;
    const e = expectRefusal(() => o.enclave.acceptKey(rivalGrant()), "ALREADY_EXISTS");
    expect(e.details.field).toBe("grant.datasetId");
    expect(run().output).toEqual(before);
    expect(o.enclave.view().keysHeld.length).toBe(1);
    // positive control: the same rival grant is a valid grant (an enclave holding no key for the id takes it) …
    const fresh = fixture("kr");
    expect(fresh.enclave.acceptKey(rivalGrant(fresh.enclave)).accepted).toBe(true);
    // … and what it files there is not the owner's key: the owner's ciphertext no longer opens
    expectRefusal(() => run(fresh.enclave), "CRYPTO_DECRYPT_FAILED");
  });

  it("validates policies strictly at the boundary (a typo fails loudly) and refuses unknown datasets", () => {
    const o = owner();
    expect(() => o.kms.protectDataset("x", new Uint8Array(1), { ...o.policy, requiredPurpse: PURPOSE } as never, o.rng)).toThrow(
      /"policy" invalid/,
    );
    expect(() =>
      o.kms.protectDataset(
        "y",
        new Uint8Array(1),
        { ...o.policy, allowedMeasurements: { anyOf: [{ claim: "ImageSha384", equals: "00" }] } },
        o.rng,
      ),
    ).toThrow(/"policy" invalid/);
    expectRefusal(() => o.kms.protectDataset("people", new Uint8Array(1), o.policy, o.rng), "ALREADY_EXISTS");
    expectRefusal(() => o.kms.releaseKey({ ...o.ask().req, datasetId: "nope" }, o.rng), "NOT_FOUND");
    expect(() => o.kms.protectDataset("bad id!", new Uint8Array(1), o.policy, o.rng)).toThrow(/"datasetId" expected/);
  });

  it("the enclave's view lists keys and plaintext by size and digest only; terminate wipes keys", () => {
    const o = owner();
    o.enclave.acceptKey(o.kms.releaseKey(o.ask().req, o.rng));
    o.enclave.run({ datasets: { people: o.encrypted }, templateHash: DEMO_TEMPLATE_HASH, params: { region: "south" }, purpose: PURPOSE });
    const v = o.enclave.view();
    expect(v.keysHeld).toMatchObject([{ datasetId: "people", keyBytes: 32 }]);
    expect(v.lastRun[0]!.plaintextBytes).toBe(o.encrypted.plaintextBytes);
    const text = JSON.stringify(v) + JSON.stringify(o.enclave);
    expect(text).not.toMatch(/north|south|p000/);
    o.enclave.terminate();
    expect(o.enclave.view().keysHeld).toEqual([]);
    expectRefusal(
      () =>
        o.enclave.run({
          datasets: { people: o.encrypted },
          templateHash: DEMO_TEMPLATE_HASH,
          params: { region: "south" },
          purpose: PURPOSE,
        }),
      "STATE_INVALID",
    );
    expectRefusal(() => o.enclave.attest(o.kms.challenge(o.rng), { purpose: PURPOSE }), "STATE_INVALID");
  });
});

describe("lab root persistence", () => {
  it("a root re-opened from its stored secret has the same pinned key, so owners' verifiers keep working", async () => {
    const { SimulatedHardwareRoot } = await import("../../kernel-lib/src/enclave/enclave.js");
    const { seededRng } = await import("../../kernel-lib/src/rng.js");
    const secret = seededRng("root-secret").bytes(32);
    const a = SimulatedHardwareRoot.fromSecretKey("lab", secret);
    const b = SimulatedHardwareRoot.fromSecretKey("lab", secret);
    expect(b.publicKeyHex).toBe(a.publicKeyHex);
    // An owner pinned to the first root accepts an enclave launched on the re-opened one.
    const rng = seededRng("persist");
    const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: a.publicKeyHex });
    const enclave = b.launch(
      { engine: { name: "e", version: "1" }, approvedTemplateHashes: [DEMO_TEMPLATE_HASH], config: {}, workload: (w) => w.params },
      rng,
    );
    kms.protectDataset(
      "d",
      new Uint8Array([1]),
      { allowedMeasurements: allowImages([enclave.measurement.imageSha384]), requiredPurpose: PURPOSE },
      rng,
    );
    const nonce = kms.challenge(rng);
    const grant = kms.releaseKey(
      { datasetId: "d", document: enclave.attest(nonce, { purpose: PURPOSE }), nonce, recipientPublicKey: enclave.channelPublicKey },
      rng,
    );
    expect(enclave.acceptKey(grant).accepted).toBe(true);
    expect(() => SimulatedHardwareRoot.fromSecretKey("lab", new Uint8Array(31))).toThrow(/"secretKey" expected 32 bytes/);
  });
});

describe("grant intake", () => {
  it("refuses a malformed grant naming the field, before touching any key", () => {
    const o = owner("kr-malformed");
    const grant = o.kms.releaseKey(o.ask().req, o.rng);
    expect(() => o.enclave.acceptKey({ ...grant, sealedKey: null as never })).toThrow(/"grant\.sealedKey" expected/);
    expect(() => o.enclave.acceptKey(null as never)).toThrow(/"grant" expected/);
    expect(o.enclave.view().keysHeld).toEqual([]);
    expect(o.enclave.acceptKey(grant).accepted).toBe(true);
  });
});
