import { describe, expect, it } from "vitest";
import { AttestationPayload } from "../../kernel-lib/src/display/schema.js";
import { attestationDisplay } from "../../kernel-lib/src/enclave/report.js";
import { KeyReleaseService } from "../../kernel-lib/src/enclave/keyRelease.js";
import { rngStamp } from "../../kernel-lib/src/rng.js";
import { expectRefusal, fixture, PURPOSE } from "./fixtures.js";

describe("attestation display payload", () => {
  it("a released key: every check ok, verified, parses under the display schema", () => {
    const f = fixture("report-ok");
    const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: f.root.publicKeyHex, clock: f.tick });
    kms.protectDataset("people", new Uint8Array([1]), { allowedMeasurements: f.policy, requiredPurpose: PURPOSE }, f.rng);
    const nonce = kms.challenge(f.rng);
    const doc = f.enclave.attest(nonce, { purpose: PURPOSE });
    const g = kms.releaseKey({ datasetId: "people", document: doc, nonce, recipientPublicKey: f.enclave.channelPublicKey }, f.rng);
    const d = attestationDisplay(doc, { grantedTo: g.datasetId }, { title: "enclave for room-1", rngStamp: rngStamp(f.rng) });
    expect(AttestationPayload.safeParse(d).success).toBe(true);
    expect(d.checks.every((c) => c.status === "ok")).toBe(true);
    expect(d.keyRelease.outcome).toBe("released");
    expect(d.label).toMatch(/teaching mode/);
  });

  it("a refusal: checks before the failure ok, the failing one with its code, later ones skipped", () => {
    const f = fixture("report-debug");
    const dbg = f.launch({ debug: true });
    const nonce = f.verifier.challenge(f.rng);
    const doc = dbg.attest(nonce, { purpose: PURPOSE });
    const err = expectRefusal(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_DEBUG");
    const d = attestationDisplay(doc, { error: err });
    expect(AttestationPayload.safeParse(d).success).toBe(true);
    expect(d.checks.map((c) => c.status)).toEqual(["ok", "ok", "ok", "ok", "ok", "ok", "failed", "skipped", "skipped", "skipped"]);
    expect(d.checks[6]!.reason).toMatch(/^ATTESTATION_DEBUG: /);
    expect(d).toMatchObject({ verified: false, keyRelease: { outcome: "denied", reason: "ATTESTATION_DEBUG" } });
    expect(d.document.find((x) => x.name === "debug")!.value).toBe(true);
  });

  it("a malformed document is shown as such, failing at the structure check", () => {
    const f = fixture("report-bad");
    const nonce = f.verifier.challenge(f.rng);
    const doc = { ...f.enclave.attest(nonce, { purpose: PURPOSE }), payload: "!!" };
    const err = expectRefusal(() => f.verifier.verify(doc, { nonce, purpose: PURPOSE, measurements: f.policy }), "ATTESTATION_INVALID");
    const d = attestationDisplay(doc, { error: err });
    expect(AttestationPayload.safeParse(d).success).toBe(true);
    expect(d.checks[0]).toMatchObject({ status: "failed" });
    expect(d.document).toEqual([{ name: "document", value: "malformed (cannot be decoded)" }]);
  });
});
