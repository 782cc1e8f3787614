import { describe, expect, it } from "vitest";
import { sha384 } from "@noble/hashes/sha2.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import {
  canonicalJson,
  extendPcr,
  measureImage,
  sha384Hex,
  ZERO_PCR,
  type EnclaveImage,
} from "../../kernel-lib/src/enclave/measurement.js";
import { approvedWorkload, tamperedWorkload } from "../../kernel-lib/src/labs/enclave-demo-workload.js";

const H1 = "aa".repeat(32);
const H2 = "bb".repeat(32);
const base = (): EnclaveImage => ({
  engine: { name: "arquero", version: "8.0.3" },
  approvedTemplateHashes: [H1, H2],
  config: { minAggregation: 50, noise: { kind: "laplace", scale: "2" } },
  workloadCode: "({ inputs }) => count(inputs)",
});

function throwsCode(f: () => unknown, code: string, field?: RegExp): void {
  try {
    f();
  } catch (e) {
    expect(isCleanRoomError(e, code as never)).toBe(true);
    if (field) expect((e as Error).message).toMatch(field);
    return;
  }
  throw new Error("expected a CleanRoomError");
}

describe("canonical JSON", () => {
  it("sorts keys at every depth and drops undefined, so equal values give equal bytes", () => {
    expect(canonicalJson({ b: 1, a: { d: [true, null], c: "x" }, z: undefined })).toBe('{"a":{"c":"x","d":[true,null]},"b":1}');
    expect(canonicalJson({ x: 1, y: 2 })).toBe(canonicalJson({ y: 2, x: 1 }));
  });

  it("refuses NaN, Infinity, bigint, functions and class instances naming the field", () => {
    throwsCode(() => canonicalJson({ a: Number.NaN }), "PARAM_INVALID", /"value\.a" expected finite number/);
    throwsCode(() => canonicalJson({ a: [1, Infinity] }), "PARAM_INVALID", /"value\.a\[1\]"/);
    throwsCode(() => canonicalJson({ a: 1n }), "PARAM_INVALID", /bigint/);
    throwsCode(() => canonicalJson({ f: () => 1 }), "PARAM_INVALID", /"value\.f"/);
    throwsCode(() => canonicalJson(new Date(0)), "PARAM_INVALID", /plain object/);
  });
});

describe("measurement", () => {
  it("extends a register as SHA-384(pcr ‖ SHA-384(data)) from 48 zero bytes", () => {
    const zero = new Uint8Array(48);
    const manual = sha384(new Uint8Array([...zero, ...sha384(new TextEncoder().encode("abc"))]));
    expect(Buffer.from(extendPcr(zero, "abc")).equals(Buffer.from(manual))).toBe(true);
    throwsCode(() => extendPcr(new Uint8Array(32), "abc"), "PARAM_INVALID", /"pcr" expected 48 bytes/);
  });

  it("is deterministic and independent of template order", () => {
    const a = measureImage(base());
    const b = measureImage({ ...base(), approvedTemplateHashes: [H2, H1, H2] });
    expect(a.pcrs).toEqual(b.pcrs);
    expect(a.imageSha384).toMatch(/^[0-9a-f]{96}$/);
    expect(a.imageSha384).toBe(a.pcrs["0"]);
  });

  it("one byte of workload code changes PCR0 and PCR2 but not the engine/config register PCR1", () => {
    const a = measureImage(base());
    const b = measureImage({ ...base(), workloadCode: "({ inputs }) => count(inputz)" });
    expect(b.pcrs["0"]).not.toBe(a.pcrs["0"]);
    expect(b.pcrs["2"]).not.toBe(a.pcrs["2"]);
    expect(b.pcrs["1"]).toBe(a.pcrs["1"]);
  });

  it("the demo's tampered workload differs from the approved one in exactly one byte, and measures differently", () => {
    const a = approvedWorkload.toString();
    const b = tamperedWorkload.toString();
    expect(a.length).toBe(b.length);
    expect([...a].filter((c, i) => c !== b[i]).length).toBe(1);
    expect(measureImage({ ...base(), workloadCode: a }).imageSha384).not.toBe(measureImage({ ...base(), workloadCode: b }).imageSha384);
  });

  it("a config change moves PCR0 and PCR1, an added template moves PCR0 and PCR2, a new engine version moves PCR1", () => {
    const a = measureImage(base());
    const cfg = measureImage({ ...base(), config: { minAggregation: 49, noise: { kind: "laplace", scale: "2" } } });
    expect([cfg.pcrs["0"] !== a.pcrs["0"], cfg.pcrs["1"] !== a.pcrs["1"], cfg.pcrs["2"] === a.pcrs["2"]]).toEqual([true, true, true]);
    const tpl = measureImage({ ...base(), approvedTemplateHashes: [H1, H2, "cc".repeat(32)] });
    expect([tpl.pcrs["0"] !== a.pcrs["0"], tpl.pcrs["1"] === a.pcrs["1"], tpl.pcrs["2"] !== a.pcrs["2"]]).toEqual([true, true, true]);
    const eng = measureImage({ ...base(), engine: { name: "arquero", version: "8.0.4" } });
    expect(eng.pcrs["1"]).not.toBe(a.pcrs["1"]);
  });

  it("launch context fills PCR3/PCR4 without moving PCR0; a signer fills PCR8 and moves PCR0", () => {
    const a = measureImage(base());
    expect([a.pcrs["3"], a.pcrs["4"], a.pcrs["8"]]).toEqual([ZERO_PCR, ZERO_PCR, ZERO_PCR]);
    const b = measureImage(base(), { operator: "clean-room-operator", hostId: "i-123" });
    expect(b.pcrs["0"]).toBe(a.pcrs["0"]);
    expect(b.pcrs["3"]).not.toBe(ZERO_PCR);
    expect(b.pcrs["4"]).not.toBe(ZERO_PCR);
    const c = measureImage({ ...base(), signer: "11".repeat(32) });
    expect(c.pcrs["8"]).not.toBe(ZERO_PCR);
    expect(c.pcrs["0"]).not.toBe(a.pcrs["0"]);
  });

  it("measured dependencies move PCR2 and PCR0: changing a called function's source is visible", () => {
    const a = measureImage({ ...base(), dependencies: { release: "function release(x) { return x }" } });
    const b = measureImage({ ...base(), dependencies: { release: "function release(x) { return x+1 }" } });
    expect(b.pcrs["2"]).not.toBe(a.pcrs["2"]);
    expect(b.pcrs["0"]).not.toBe(a.pcrs["0"]);
    expect(b.pcrs["1"]).toBe(a.pcrs["1"]);
    expect(a.imageSha384).not.toBe(measureImage(base()).imageSha384);
  });

  it("the canonical image names the workload by its SHA-384 and lists sorted template hashes", () => {
    const m = measureImage({ ...base(), approvedTemplateHashes: [H2, H1] });
    const img = JSON.parse(m.canonicalImage);
    expect(img.approvedTemplateHashes).toEqual([H1, H2]);
    expect(img.workloadCodeSha384).toBe(sha384Hex(base().workloadCode));
  });

  it("refuses malformed images naming the field", () => {
    throwsCode(() => measureImage({ ...base(), engine: { name: "", version: "1" } }), "PARAM_INVALID", /"image\.engine\.name"/);
    throwsCode(
      () => measureImage({ ...base(), approvedTemplateHashes: ["NOT-HEX"] }),
      "PARAM_INVALID",
      /"image\.approvedTemplateHashes\[0\]"/,
    );
    throwsCode(() => measureImage({ ...base(), config: { t: Number.NaN } }), "PARAM_INVALID", /"image\.config\.t"/);
    throwsCode(() => measureImage({ ...base(), workloadCode: "" }), "PARAM_INVALID", /"image\.workloadCode"/);
    throwsCode(() => measureImage({ ...base(), signer: "xyz" }), "PARAM_INVALID", /"image\.signer"/);
  });
});

describe("what the hardware measures at launch", () => {
  it("measures the real source: a workload cannot spoof its code with its own toString, and bound/proxied functions are refused", async () => {
    const { seededRng } = await import("../../kernel-lib/src/rng.js");
    const { SimulatedHardwareRoot } = await import("../../kernel-lib/src/enclave/enclave.js");
    const rng = seededRng("spoof");
    const root = SimulatedHardwareRoot.create("lab", rng);
    const launch = (workload: never) =>
      root.launch({ engine: { name: "e", version: "1" }, approvedTemplateHashes: [H1], config: {}, workload }, rng);
    const honest = launch(approvedWorkload as never);
    const liar = tamperedWorkload as unknown as { toString: () => string };
    liar.toString = () => approvedWorkload.toString();
    try {
      expect(launch(liar as never).measurement.imageSha384).not.toBe(honest.measurement.imageSha384);
    } finally {
      delete (liar as { toString?: unknown }).toString;
    }
    throwsCode(() => launch(approvedWorkload.bind(null) as never), "PARAM_INVALID", /"opts\.workload" expected a plain/);
    throwsCode(() => launch(new Proxy(approvedWorkload, {}) as never), "PARAM_INVALID", /"opts\.workload"/);
    throwsCode(() => launch(Math.max as never), "PARAM_INVALID", /"opts\.workload"/);
  });
});
