/**
 * Enclave measurement: SHA-384 over a canonical image, laid out as Nitro-style PCRs.
 *
 * What it does: an `EnclaveImage` (engine name + version, the sorted set of approved template
 * hashes, the configuration that changes behaviour, the workload code, the image signer) is
 * encoded as canonical JSON and hashed with SHA-384 into platform configuration registers
 * (PCRs). Each PCR is *extended* from 48 zero bytes the way a TPM / Nitro PCR is
 * (`PCR' = SHA-384(PCR ‖ SHA-384(data))`), so a register can only be reproduced by
 * replaying exactly the same measured bytes.
 *
 * PCR mapping to AWS Nitro Enclaves (reference §5, §8 "TEE mock"):
 *   PCR0  the whole enclave image (Nitro: EIF image; KMS condition `ImageSha384`)
 *   PCR1  engine name + version + behaviour config (Nitro: kernel and bootstrap)
 *   PCR2  workload code (+ measured dependencies) + sorted approved template hashes
 *         (Nitro: the application)
 *   PCR3  the operator / parent role that launched it (Nitro: parent IAM role)
 *   PCR4  the host instance id (Nitro: parent instance id)
 *   PCR8  the image signer's public key (Nitro: EIF signing certificate)
 * PCR3/PCR4 describe *where* the image runs, not *what* it is, so they are not part of PCR0.
 *
 * Threat model: a measurement is only as good as what it covers. The workload's source text
 * is measured, but code it calls (the query engine library) is covered only by the engine
 * name + version in PCR1 — a real image would hash the whole file system. Change one byte
 * of anything measured and every register that covers it changes, so a key-release policy
 * pinned to the old value refuses.
 */
import { sha384 } from "@noble/hashes/sha2.js";
import { invalid } from "../errors.js";
import { hex, utf8 } from "../crypto/primitives.js";
import { canonicalJson, type JsonValue } from "../crypto/canonical.js";

// Canonical JSON is the library's one implementation (crypto/canonical.ts); re-exported
// here because the enclave layer's importers (and enclave-room.ts) name it from this module.
export { canonicalJson, type JsonValue } from "../crypto/canonical.js";

/**
 * SHA-384 of bytes or of a string's UTF-8, as lowercase hex (96 chars).
 *
 * @example
 * sha384Hex("abc").slice(0, 8) // "cb00753f"
 */
export function sha384Hex(data: Uint8Array | string): string {
  return hex(sha384(typeof data === "string" ? utf8(data) : data));
}

/** The behaviour-defining contents of an enclave. */
export interface EnclaveImage {
  /** The query engine inside the enclave, e.g. `{ name: "arquero", version: "8.0.3" }`. */
  engine: { name: string; version: string };
  /** Hashes of the approved query templates the enclave may run (order does not matter). */
  approvedTemplateHashes: string[];
  /** Configuration that changes behaviour: thresholds, noise settings, output limits, ... */
  config: { [k: string]: JsonValue };
  /** The workload's code: the source text of the function that runs on decrypted inputs. */
  workloadCode: string;
  /**
   * Source texts of code the workload calls (name → source), measured like the workload. Use
   * it for functions outside the engine package, e.g. `{ releaseResult: releaseResult.toString() }`.
   */
  dependencies?: { [name: string]: string };
  /** Hex Ed25519 public key of whoever signed (published) the image. Goes to PCR8. */
  signer?: string;
}

/** Where the image is launched (not part of PCR0). */
export interface LaunchContext {
  /** The operator (parent role) launching the enclave. PCR3. */
  operator?: string;
  /** The host instance id. PCR4. */
  hostId?: string;
}

/** PCR index (as a decimal string) → 48-byte register as hex. */
export type PcrMap = { [index: string]: string };

export interface EnclaveMeasurement {
  /** PCR0, the value a `ImageSha384` key policy pins. */
  imageSha384: string;
  pcrs: PcrMap;
  /** The canonical image text that PCR0 measures (for teaching: diff two of these). */
  canonicalImage: string;
  /** Human-readable description of each register. */
  pcrMeaning: { [index: string]: string };
}

export const PCR_MEANING: { [index: string]: string } = {
  "0": "enclave image (engine, config, templates, workload code, signer) — KMS ImageSha384",
  "1": "engine name + version + behaviour config (Nitro: kernel and bootstrap)",
  "2": "workload code + approved template hashes (Nitro: application)",
  "3": "operator / parent role (Nitro: parent IAM role)",
  "4": "host instance id (Nitro: parent instance id)",
  "8": "image signer public key (Nitro: EIF signing certificate)",
};

export const PCR_BYTES = 48;
export const ZERO_PCR = "0".repeat(PCR_BYTES * 2);

/**
 * TPM/Nitro-style extend: `SHA-384(pcr ‖ SHA-384(data))`.
 *
 * @example
 * extendPcr(new Uint8Array(48), "hello").length // 48
 */
export function extendPcr(pcr: Uint8Array, data: Uint8Array | string): Uint8Array {
  if (!(pcr instanceof Uint8Array) || pcr.length !== PCR_BYTES) invalid("pcr", `${PCR_BYTES} bytes`, pcr);
  const d = sha384(typeof data === "string" ? utf8(data) : data);
  const buf = new Uint8Array(PCR_BYTES * 2);
  buf.set(pcr, 0);
  buf.set(d, PCR_BYTES);
  return sha384(buf);
}

function register(label: string, content: unknown): string {
  return hex(extendPcr(new Uint8Array(PCR_BYTES), canonicalJson({ register: label, content })));
}

function checkString(field: string, v: unknown, max = 1 << 20): string {
  if (typeof v !== "string" || v.length === 0 || v.length > max) invalid(field, `non-empty string (≤ ${max} chars)`, v);
  return v;
}

/**
 * Validate an image at the boundary and return its normalised form (sorted, deduplicated hashes).
 *
 * @example
 * normaliseImage(image).approvedTemplateHashes // sorted
 */
export function normaliseImage(image: EnclaveImage): EnclaveImage {
  if (typeof image !== "object" || image === null) invalid("image", "EnclaveImage object", image);
  if (typeof image.engine !== "object" || image.engine === null) invalid("image.engine", "{ name, version }", image.engine);
  const name = checkString("image.engine.name", image.engine.name, 200);
  const version = checkString("image.engine.version", image.engine.version, 200);
  if (!Array.isArray(image.approvedTemplateHashes))
    invalid("image.approvedTemplateHashes", "array of hex strings", image.approvedTemplateHashes);
  const hashes = image.approvedTemplateHashes.map((h, i) => {
    if (typeof h !== "string" || !/^[0-9a-f]{16,128}$/.test(h)) invalid(`image.approvedTemplateHashes[${i}]`, "lowercase hex hash", h);
    return h;
  });
  const sorted = [...new Set(hashes)].sort();
  if (typeof image.config !== "object" || image.config === null || Array.isArray(image.config))
    invalid("image.config", "plain object", image.config);
  canonicalJson(image.config, "image.config");
  const workloadCode = checkString("image.workloadCode", image.workloadCode);
  const out: EnclaveImage = { engine: { name, version }, approvedTemplateHashes: sorted, config: image.config, workloadCode };
  if (image.dependencies !== undefined) {
    if (typeof image.dependencies !== "object" || image.dependencies === null || Array.isArray(image.dependencies))
      invalid("image.dependencies", "{ name: source }", image.dependencies);
    const deps: { [name: string]: string } = {};
    for (const [k, v] of Object.entries(image.dependencies)) deps[k] = checkString(`image.dependencies.${k}`, v);
    out.dependencies = deps;
  }
  if (image.signer !== undefined) {
    if (typeof image.signer !== "string" || !/^[0-9a-f]{64}$/.test(image.signer))
      invalid("image.signer", "64-char hex Ed25519 public key", image.signer);
    out.signer = image.signer;
  }
  return out;
}

/**
 * Measure an image into PCRs. Pure and deterministic.
 *
 * @example
 * const m = measureImage({ engine: { name: "arquero", version: "8.0.3" },
 *   approvedTemplateHashes: [templateHash(t)], config: { minAggregation: 50 },
 *   workloadCode: myWorkload.toString() })
 * m.imageSha384 // 96 hex chars; put it in a KeyReleasePolicy
 */
export function measureImage(image: EnclaveImage, ctx: LaunchContext = {}): EnclaveMeasurement {
  const img = normaliseImage(image);
  const depHashes: { [name: string]: string } = {};
  for (const [k, v] of Object.entries(img.dependencies ?? {})) depHashes[k] = sha384Hex(v);
  const canonicalImage = canonicalJson({
    format: "cleanroom-lab/enclave-image/v1",
    engine: img.engine,
    config: img.config,
    approvedTemplateHashes: img.approvedTemplateHashes,
    workloadCodeSha384: sha384Hex(img.workloadCode),
    dependenciesSha384: depHashes,
    signer: img.signer ?? null,
  });
  const pcrs: PcrMap = {
    "0": register("image", canonicalImage),
    "1": register("engine+config", { engine: img.engine, config: img.config }),
    "2": register("application", {
      workloadCodeSha384: sha384Hex(img.workloadCode),
      dependenciesSha384: depHashes,
      approvedTemplateHashes: img.approvedTemplateHashes,
    }),
    "3": ctx.operator === undefined ? ZERO_PCR : register("operator", checkString("ctx.operator", ctx.operator, 200)),
    "4": ctx.hostId === undefined ? ZERO_PCR : register("host", checkString("ctx.hostId", ctx.hostId, 200)),
    "8": img.signer === undefined ? ZERO_PCR : register("signer", img.signer),
  };
  return { imageSha384: pcrs["0"]!, pcrs, canonicalImage, pcrMeaning: { ...PCR_MEANING } };
}
