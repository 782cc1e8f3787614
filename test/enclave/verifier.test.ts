import { describe, expect, it } from "vitest";
import { b64, ed25519KeyPair, hex, utf8, x25519KeyPair } from "../../kernel-lib/src/crypto/primitives.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { SimulatedHardwareRoot } from "../../kernel-lib/src/enclave/enclave.js";
import {
  decodeDocument,
  documentHash,
  encodeCertificate,
  issueCertificate,
  signDocument,
  type AttestationDocument,
} from "../../kernel-lib/src/enclave/document.js";
import {
  AttestationVerifier,
  CHECK_ORDER,
  evaluateMeasurementPolicy,
  type MeasurementPolicy,
} from "../../kernel-lib/src/enclave/verifier.js";
import { canonicalJson, ZERO_PCR } from "../../kernel-lib/src/enclave/measurement.js";
import { tamperedWorkload } from "../../kernel-lib/src/labs/enclave-demo-workload.js";
import { expectRefusal, fixture, PURPOSE, T0 } from "./fixtures.js";

/** Re-encode a payload edit without re-signing (what a tamperer can do). */
function editPayload(doc: AttestationDocument, edit: (p: Record<string, unknown>) => void): AttestationDocument {
  const p = JSON.parse(Buffer.from(doc.payload, "base64").toString("utf8"));
  edit(p);
  return { ...doc, payload: b64(utf8(canonicalJson(p))) };
}

describe("AttestationVerifier: happy path", () => {
  it("accepts a fresh document from the approved enclave and reports every check in order", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE, userData: "session-42" });
    const v = f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy, channelPublicKey: f.enclave.channelPublicKey });
    expect(v.checks).toEqual([...CHECK_ORDER]);
    expect(v.imageSha384).toBe(f.enclave.measurement.imageSha384);
    expect(v.publicKey).toBe(f.enclave.channelPublicKey);
    expect(v.nonce).toBe(nonce);
    expect(Buffer.from(v.userData!, "base64").toString()).toBe("session-42");
    expect(v.documentHash).toBe(documentHash(doc));
    expect(JSON.parse(JSON.stringify(v))).toEqual(v);
  });

  it("the document has Nitro's fields, SHA384 digest, and the purpose inside the signed payload", () => {
    const f = fixture();
    const p = decodeDocument(f.enclave.attest(f.verifier.challenge(f.rng), { purpose: PURPOSE }));
    expect(Object.keys(p).sort()).toEqual([
      "cabundle",
      "certificate",
      "debug",
      "digest",
      "module_id",
      "nonce",
      "pcrs",
      "public_key",
      "purpose",
      "timestamp",
      "user_data",
    ]);
    expect(p.digest).toBe("SHA384");
    expect(p.timestamp).toBe(T0);
    expect(Object.keys(p.pcrs).sort()).toEqual(["0", "1", "2", "3", "4", "8"]);
    expect(p.purpose).toBe(PURPOSE);
  });

  it("accepts a declared purpose that is a dotted descendant of the required one", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: "marketing.advertising.measurement.lift" });
    expect(f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }).purpose).toBe(
      "marketing.advertising.measurement.lift",
    );
  });
});

describe("AttestationVerifier: each check refuses for exactly its own reason", () => {
  it("structure: a document whose payload is not valid JSON → ATTESTATION_INVALID", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = { ...f.enclave.attest(nonce, { purpose: PURPOSE }), payload: b64(utf8("{not json")) };
    expectRefusal(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_INVALID");
    const noDigest = editPayload(f.enclave.attest(nonce, { purpose: PURPOSE }), (p) => (p.digest = "SHA256"));
    expectRefusal(() => f.verifier.verify(noDigest, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_INVALID");
  });

  it("pinned root: an enclave on another lab's hardware → ATTESTATION_UNTRUSTED_ROOT", () => {
    const f = fixture();
    const other = SimulatedHardwareRoot.create("other-lab", f.rng, { clock: f.tick });
    const foreign = other.launch(
      {
        engine: { name: "cleanroom-lab/demo-cohort", version: "1.0.0" },
        approvedTemplateHashes: [...f.enclave.approvedTemplateHashes],
        config: { release: "exact" },
        workload: (w) => w.params,
      },
      f.rng,
    );
    const nonce = f.verifier.challenge(f.rng);
    expectRefusal(
      () => f.verifier.verify(foreign.attest(nonce, { purpose: PURPOSE }), { nonce, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_UNTRUSTED_ROOT",
      "pinnedRoot",
    );
  });

  it("signature: a payload edited after signing → ATTESTATION_SIGNATURE", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = editPayload(f.enclave.attest(nonce, { purpose: PURPOSE }), (p) => (p.user_data = b64(utf8("changed"))));
    expectRefusal(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_SIGNATURE", "signature");
  });

  it("signature: a forged module certificate presented beside the genuine root certificate → ATTESTATION_SIGNATURE", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const genuine = decodeDocument(f.enclave.attest(nonce, { purpose: PURPOSE }));
    const fakeIssuer = ed25519KeyPair(f.rng);
    const moduleKey = ed25519KeyPair(f.rng);
    const cert = issueCertificate(
      {
        version: 1,
        subject: genuine.module_id,
        issuer: "forger",
        publicKey: hex(moduleKey.publicKey),
        notBefore: T0 - 1,
        notAfter: T0 + 1e6,
      },
      fakeIssuer.secretKey,
    );
    const forged = signDocument({ ...genuine, certificate: encodeCertificate(cert) }, moduleKey.secretKey);
    expectRefusal(
      () => f.verifier.verify(forged, { nonce, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_SIGNATURE",
      "signature",
    );
  });

  it("replay: a document that was accepted once is refused when presented again → ATTESTATION_REPLAY", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE });
    f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy });
    expectRefusal(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_REPLAY", "replay");
    const fresh = f.verifier.challenge(f.rng);
    expectRefusal(() => f.verifier.verify(doc, { nonce: fresh, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_REPLAY", "replay");
  });

  it("nonce: a document answering another challenge → ATTESTATION_NONCE", () => {
    const f = fixture();
    const a = f.verifier.challenge(f.rng);
    const b = f.verifier.challenge(f.rng);
    const e = expectRefusal(
      () => f.verifier.verify(f.enclave.attest(a, { purpose: PURPOSE }), { nonce: b, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_NONCE",
      "nonce",
    );
    expect(e.details.reason).toMatch(/differs from the challenge/);
  });

  it("nonce: a nonce this verifier never issued → ATTESTATION_NONCE", () => {
    const f = fixture();
    const made = hex(seededRng("attacker").bytes(32));
    const e = expectRefusal(
      () => f.verifier.verify(f.enclave.attest(made, { purpose: PURPOSE }), { nonce: made, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_NONCE",
      "nonce",
    );
    expect(e.details.reason).toMatch(/not issued/);
  });

  it("nonce: a challenge that expired before the document arrived → ATTESTATION_NONCE", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    f.clock.now += 301_000;
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE }); // dated now: fresh document, stale challenge
    const e = expectRefusal(
      () => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_NONCE",
      "nonce",
    );
    expect(e.details.reason).toMatch(/expired/);
  });

  it("freshness: a document older than the window → ATTESTATION_STALE", () => {
    const f = fixture();
    const v = new AttestationVerifier({ pinnedRootPublicKey: f.root.publicKeyHex, clock: f.tick, maxAgeMs: 60_000, nonceTtlMs: 3_600_000 });
    const nonce = v.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE });
    f.clock.now += 61_000;
    expectRefusal(() => v.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_STALE", "freshness");
  });

  it("freshness: a document dated in the future beyond the skew → ATTESTATION_STALE", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    f.clock.now += 120_000; // hardware clock ahead of the verifier's
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE });
    f.clock.now -= 120_000;
    const e = expectRefusal(
      () => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_STALE",
      "freshness",
    );
    expect(e.details.reason).toMatch(/future/);
  });

  it("debug: a debug enclave is refused even when the policy lists its measurement → ATTESTATION_DEBUG", () => {
    const f = fixture();
    const dbg = f.launch({ debug: true });
    expect(dbg.measurement.imageSha384).toBe(f.enclave.measurement.imageSha384);
    const misconfigured: MeasurementPolicy = { anyOf: [{ claim: "ImageSha384", equals: dbg.measurement.imageSha384 }] };
    const nonce = f.verifier.challenge(f.rng);
    expectRefusal(
      () => f.verifier.verify(dbg.attest(nonce, { purpose: PURPOSE }), { nonce, purpose: PURPOSE, measurements: misconfigured }),
      "ATTESTATION_DEBUG",
      "debug",
    );
  });

  it("debug: an all-zero PCR0 (Nitro's debug signature) is refused even if listed → ATTESTATION_DEBUG", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const genuine = decodeDocument(f.enclave.attest(nonce, { purpose: PURPOSE }));
    // Build a correctly signed document with zero PCRs through a root we control and pin.
    const root = ed25519KeyPair(f.rng);
    const mod = ed25519KeyPair(f.rng);
    const rootCert = issueCertificate(
      { version: 1, subject: "r", issuer: "r", publicKey: hex(root.publicKey), notBefore: 0, notAfter: T0 * 2 },
      root.secretKey,
    );
    const modCert = issueCertificate(
      { version: 1, subject: genuine.module_id, issuer: "r", publicKey: hex(mod.publicKey), notBefore: 0, notAfter: T0 * 2 },
      root.secretKey,
    );
    const zero = signDocument(
      {
        ...genuine,
        pcrs: { "0": ZERO_PCR, "1": ZERO_PCR, "2": ZERO_PCR },
        certificate: encodeCertificate(modCert),
        cabundle: [encodeCertificate(rootCert)],
      },
      mod.secretKey,
    );
    const v = new AttestationVerifier({ pinnedRootPublicKey: hex(root.publicKey), clock: f.tick });
    const n2 = v.challenge(f.rng);
    const doc = signDocument({ ...decodeDocument(zero), nonce: b64(Buffer.from(n2, "hex")) }, mod.secretKey);
    const e = expectRefusal(
      () => v.verify(doc, { nonce: n2, purpose: PURPOSE, measurements: { anyOf: [{ claim: "PCR0", equals: ZERO_PCR }] } }),
      "ATTESTATION_DEBUG",
      "debug",
    );
    expect(e.details.reason).toMatch(/all zeros/);
  });

  it("measurement: an image with one byte of workload changed → ATTESTATION_MEASUREMENT", () => {
    const f = fixture();
    const evil = f.launch({ workload: tamperedWorkload });
    const nonce = f.verifier.challenge(f.rng);
    expectRefusal(
      () => f.verifier.verify(evil.attest(nonce, { purpose: PURPOSE }), { nonce, purpose: PURPOSE, measurements: f.policy }),
      "ATTESTATION_MEASUREMENT",
      "measurement",
    );
  });

  it("measurement: allOf requires every claim (right image, wrong signer) and an empty policy admits nothing", () => {
    const f = fixture();
    const strict: MeasurementPolicy = {
      allOf: [
        { claim: "ImageSha384", equals: f.enclave.measurement.imageSha384 },
        { claim: "PCR8", equals: "11".repeat(48) },
      ],
    };
    let nonce = f.verifier.challenge(f.rng);
    const e = expectRefusal(
      () => f.verifier.verify(f.enclave.attest(nonce, { purpose: PURPOSE }), { nonce, purpose: PURPOSE, measurements: strict }),
      "ATTESTATION_MEASUREMENT",
      "measurement",
    );
    expect(e.details.reason).toMatch(/allOf claim PCR8/);
    nonce = f.verifier.challenge(f.rng);
    expectRefusal(
      () => f.verifier.verify(f.enclave.attest(nonce, { purpose: PURPOSE }), { nonce, purpose: PURPOSE, measurements: {} }),
      "ATTESTATION_MEASUREMENT",
      "measurement",
    );
    expect(
      evaluateMeasurementPolicy(f.enclave.measurement.pcrs, {
        allOf: [{ claim: "PCR1", equals: f.enclave.measurement.pcrs["1"]! }],
        anyOf: f.policy.anyOf!,
      }),
    ).toBeNull();
  });

  it("channel key: a relay offering its own key beside a genuine document → ATTESTATION_KEY_MISMATCH", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE });
    const mitm = b64(x25519KeyPair(f.rng).publicKey);
    expectRefusal(
      () => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy, channelPublicKey: mitm }),
      "ATTESTATION_KEY_MISMATCH",
      "channelKey",
    );
  });

  it("purpose: a declared purpose outside the required one → ATTESTATION_PURPOSE", () => {
    const f = fixture();
    const nonce = f.verifier.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: "marketing.advertising.first_party.targeted" });
    expectRefusal(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_PURPOSE", "purpose");
    // prefix without a dot boundary is not a descendant
    const n2 = f.verifier.challenge(f.rng);
    expectRefusal(
      () =>
        f.verifier.verify(f.enclave.attest(n2, { purpose: "marketing.advertising.measurementx" }), {
          nonce: n2,
          purpose: PURPOSE,
          measurements: f.policy,
        }),
      "ATTESTATION_PURPOSE",
      "purpose",
    );
  });
});

describe("AttestationVerifier: input validation", () => {
  it("refuses a bad pinned key, bad windows and a malformed policy naming the field", () => {
    const f = fixture();
    const V = AttestationVerifier;
    expect(() => new V({ pinnedRootPublicKey: "abc" })).toThrow(/"opts\.pinnedRootPublicKey" expected/);
    expect(() => new V({ pinnedRootPublicKey: f.root.publicKeyHex, maxAgeMs: -1 })).toThrow(/"opts\.maxAgeMs"/);
    const nonce = f.verifier.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE });
    expect(() =>
      f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: { anyOf: [{ claim: "PCR9" as never, equals: "00" }] } }),
    ).toThrow(/"expect\.measurements\.anyOf\[0\]\.claim"/);
    expect(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: { oneOf: [] } as never })).toThrow(
      /"expect\.measurements\.oneOf"/,
    );
  });

  it("the enclave refuses a malformed nonce or purpose before signing anything", () => {
    const f = fixture();
    expectRefusal(() => f.enclave.attest("xyz", { purpose: PURPOSE }), "ATTESTATION_NONCE");
    expectRefusal(() => f.enclave.attest("00".repeat(32), { purpose: "Not A Purpose" }), "ATTESTATION_PURPOSE");
  });
});
