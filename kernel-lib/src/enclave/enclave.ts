/**
 * A simulated TEE / confidential VM: a per-lab hardware root, enclaves launched from a
 * measured image, attestation, sealed key intake and a workload that runs on decrypted data.
 *
 * Model (AWS Nitro Enclaves, reference §5): the *hardware* (here `SimulatedHardwareRoot`)
 * measures the image at launch, gives each enclave a module signing key certified by the
 * root, and signs attestation documents with the PCRs *it* measured — the enclave cannot
 * choose its own PCRs. Inside, the enclave generates an ephemeral X25519 key pair; data owners
 * seal their data keys to that key after verifying the document (keyRelease.ts). The enclave
 * keeps released keys and decrypted inputs in private fields and never returns them: only
 * the workload's output leaves.
 *
 * Threat model of the simulation: the operator (the host process) is honest-but-curious and
 * sees everything the API returns: ciphertexts, documents, sealed boxes, outputs. Real
 * isolation (memory encryption, no debugger) is *simulated*: in one JS process the "enclave"
 * is a class with `#private` fields, which code outside the class cannot read. The
 * cryptography around it (signatures, sealing, measurement) is real. A debug enclave is
 * flagged in the signed document and refused by every verifier (a debugger can read memory).
 */
import { CleanRoomError, invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { aesGcmOpen, b64, ed25519KeyPair, fromB64, fromHex, hex, utf8, x25519KeyPair, type KeyPair } from "../crypto/primitives.js";
import { openSealed } from "../crypto/seal.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { canonicalJson } from "../crypto/canonical.js";
import { sha384Hex, measureImage, type EnclaveImage, type EnclaveMeasurement, type JsonValue, type LaunchContext } from "./measurement.js";
import {
  documentHash,
  encodeCertificate,
  issueCertificate,
  signDocument,
  type AttestationDocument,
  type SimCertificate,
} from "./document.js";
import type { EncryptedDataset, KeyReleaseGrant } from "./keyRelease.js";
import { datasetAad, releaseInfo } from "./keyRelease.js";

/**
 * What a workload receives: decrypted inputs by name, the template hash, params, purpose, the
 * measured config, and the enclave's own Rng (for DP noise drawn inside).
 */
export interface WorkloadInput {
  inputs: Record<string, Uint8Array>;
  templateHash: string;
  params: JsonValue;
  purpose: string;
  config: { [k: string]: JsonValue };
  rng: Rng;
}
/** The code that runs inside the enclave. Its source text is measured (PCR0/PCR2). */
export type EnclaveWorkload = (input: WorkloadInput) => JsonValue | Promise<JsonValue>;

/** A request to run the workload on encrypted inputs (names → ciphertexts the operator holds). */
export interface EnclaveRunRequest {
  datasets: Record<string, EncryptedDataset>;
  templateHash: string;
  params?: JsonValue;
  purpose: string;
}

export interface LaunchOptions {
  engine: { name: string; version: string };
  approvedTemplateHashes: string[];
  config: { [k: string]: JsonValue };
  workload: EnclaveWorkload;
  /** Functions (or source texts) the workload calls, measured into PCR2/PCR0 by source. */
  dependencies?: { [name: string]: string | ((...args: never[]) => unknown) };
  /** Launch with a debug console attached (memory readable). Always refused by verifiers. */
  debug?: boolean;
  signer?: string;
  operator?: string;
  hostId?: string;
}

/**
 * The source text that gets measured. Uses `Function.prototype.toString` directly, so a
 * function object cannot lie about its code with its own `toString`; refuses bound, native
 * and proxied functions, whose source text ("[native code]") would measure nothing.
 * Not measured: values the function closes over — keep workloads as top-level functions.
 */
function sourceOf(field: string, f: unknown): string {
  if (typeof f !== "function") invalid(field, "function", f);
  const src = Function.prototype.toString.call(f);
  if (/\{\s*\[native code\]\s*\}\s*$/.test(src))
    invalid(field, "a plain (not bound, native or proxied) function whose source can be measured", f);
  return src;
}

/**
 * The lab's simulated hardware root (Nitro PKI root + hypervisor). One per lab; verifiers pin
 * `publicKeyHex`. The root secret never leaves this object.
 *
 * @example
 * const root = SimulatedHardwareRoot.create("lab-1", rng)
 * const enclave = root.launch({ engine, approvedTemplateHashes, config, workload }, rng)
 */
export class SimulatedHardwareRoot {
  readonly labId: string;
  readonly publicKeyHex: string;
  readonly rootCertificate: SimCertificate;
  #secret: Uint8Array;
  #clock: () => number;
  #launched = 0;

  private constructor(labId: string, kp: KeyPair, clock: () => number) {
    this.labId = labId;
    this.publicKeyHex = hex(kp.publicKey);
    this.#secret = kp.secretKey;
    this.#clock = clock;
    const now = clock();
    this.rootCertificate = issueCertificate(
      {
        version: 1,
        subject: `cleanroom-lab simulated hardware root ${labId}`,
        issuer: `cleanroom-lab simulated hardware root ${labId}`,
        publicKey: this.publicKeyHex,
        notBefore: now,
        notAfter: now + 10 * 365 * 86_400_000,
      },
      kp.secretKey,
    );
  }

  /** Create a lab root. `clock` (ms) is injectable for tests; it stamps documents. */
  static create(labId: string, rng: Rng, opts: { clock?: () => number } = {}): SimulatedHardwareRoot {
    if (typeof labId !== "string" || labId.length === 0 || labId.length > 200) invalid("labId", "non-empty string", labId);
    const clock = opts.clock ?? (() => Date.now());
    if (typeof clock !== "function") invalid("opts.clock", "function returning ms", clock);
    return new SimulatedHardwareRoot(labId, ed25519KeyPair(rng), clock);
  }

  /**
   * Re-open a lab root from a stored 32-byte Ed25519 secret (so the pinned public key
   * survives kernel restarts). Keep the secret where the lab keeps its other secrets.
   *
   * @example
   * const root = SimulatedHardwareRoot.fromSecretKey("lab-1", secrets.hardwareRoot)
   */
  static fromSecretKey(labId: string, secretKey: Uint8Array, opts: { clock?: () => number } = {}): SimulatedHardwareRoot {
    if (typeof labId !== "string" || labId.length === 0 || labId.length > 200) invalid("labId", "non-empty string", labId);
    if (!(secretKey instanceof Uint8Array) || secretKey.length !== 32) invalid("secretKey", "32 bytes", secretKey, "CRYPTO_INVALID_KEY");
    const clock = opts.clock ?? (() => Date.now());
    return new SimulatedHardwareRoot(labId, { secretKey: secretKey.slice(), publicKey: ed25519.getPublicKey(secretKey) }, clock);
  }

  /**
   * Measure the image and start an enclave. The workload's source text is what gets measured.
   *
   * @example
   * const enclave = root.launch({ engine: { name: "arquero", version: "8.0.3" },
   *   approvedTemplateHashes: [h], config: { minAggregation: 50 }, workload: ({ inputs }) => ({ n: 1 }) }, rng)
   */
  launch(opts: LaunchOptions, rng: Rng): EnclaveInstance {
    if (typeof opts !== "object" || opts === null) invalid("opts", "LaunchOptions", opts);
    if (typeof opts.workload !== "function")
      invalid("opts.workload", "function ({ inputs, templateHash, params, purpose }) => JSON", opts.workload);
    if (opts.debug !== undefined && typeof opts.debug !== "boolean") invalid("opts.debug", "boolean", opts.debug);
    const image: EnclaveImage = {
      engine: opts.engine,
      approvedTemplateHashes: opts.approvedTemplateHashes,
      config: opts.config,
      workloadCode: sourceOf("opts.workload", opts.workload),
    };
    if (opts.signer !== undefined) image.signer = opts.signer;
    if (opts.dependencies !== undefined) {
      if (typeof opts.dependencies !== "object" || opts.dependencies === null)
        invalid("opts.dependencies", "{ name: function | source }", opts.dependencies);
      image.dependencies = Object.fromEntries(
        Object.entries(opts.dependencies).map(([k, v]) => [k, typeof v === "function" ? sourceOf(`opts.dependencies.${k}`, v) : v]),
      );
    }
    const ctx: LaunchContext = {};
    if (opts.operator !== undefined) ctx.operator = opts.operator;
    if (opts.hostId !== undefined) ctx.hostId = opts.hostId;
    const measurement = measureImage(image, ctx);
    const moduleId = `${this.labId}-enc-${String(++this.#launched).padStart(4, "0")}-${hex(rng.bytes(4))}`;
    const moduleKey = ed25519KeyPair(rng);
    const now = this.#clock();
    const cert = issueCertificate(
      {
        version: 1,
        subject: moduleId,
        issuer: this.rootCertificate.tbs.subject,
        publicKey: hex(moduleKey.publicKey),
        notBefore: now,
        notAfter: now + 86_400_000,
      },
      this.#secret,
    );
    return new EnclaveInstance({
      moduleId,
      measurement,
      moduleKey,
      cert,
      rootCert: this.rootCertificate,
      clock: this.#clock,
      debug: opts.debug ?? false,
      workload: opts.workload,
      rng,
    });
  }
}

interface IssuedDocument {
  purpose: string;
}
interface HeldKey {
  key: Uint8Array;
  purpose: string;
  documentHash: string;
}

/** What leaves the enclave after a run: the workload's output and where it came from. */
export interface EnclaveRunResult {
  output: JsonValue;
  moduleId: string;
  imageSha384: string;
  templateHash: string;
  purpose: string;
  outputSha384: string;
  rngStamp: RngStamp;
}

/** What an enclave holds, described without contents (the "enclave's view"). */
export interface EnclaveView {
  moduleId: string;
  imageSha384: string;
  debug: boolean;
  channelPublicKey: string;
  keysHeld: { datasetId: string; purpose: string; documentHash: string; keyBytes: number }[];
  lastRun: { datasetId: string; plaintextBytes: number; plaintextSha384: string }[];
  documentsIssued: number;
  note: string;
}

/**
 * A running enclave. Obtain from `SimulatedHardwareRoot.launch`. Holds its X25519 secret,
 * released data keys and decrypted inputs privately.
 */
export class EnclaveInstance {
  readonly moduleId: string;
  readonly measurement: EnclaveMeasurement;
  readonly debug: boolean;
  /** base64 X25519 channel public key generated inside at launch. */
  readonly channelPublicKey: string;
  readonly approvedTemplateHashes: readonly string[];
  /** The measured behaviour config (a copy of what PCR1 covers). */
  readonly config: { [k: string]: JsonValue };
  #channel: KeyPair;
  #moduleKey: KeyPair;
  #cert: SimCertificate;
  #rootCert: SimCertificate;
  #clock: () => number;
  #workload: EnclaveWorkload;
  #rng: Rng;
  #issued = new Map<string, IssuedDocument>();
  #keys = new Map<string, HeldKey>();
  #lastRun: EnclaveView["lastRun"] = [];
  #terminated = false;

  /** @internal use SimulatedHardwareRoot.launch */
  constructor(a: {
    moduleId: string;
    measurement: EnclaveMeasurement;
    moduleKey: KeyPair;
    cert: SimCertificate;
    rootCert: SimCertificate;
    clock: () => number;
    debug: boolean;
    workload: EnclaveWorkload;
    rng: Rng;
  }) {
    this.moduleId = a.moduleId;
    this.measurement = a.measurement;
    this.debug = a.debug;
    this.#moduleKey = a.moduleKey;
    this.#cert = a.cert;
    this.#rootCert = a.rootCert;
    this.#clock = a.clock;
    this.#workload = a.workload;
    this.#channel = x25519KeyPair(a.rng);
    this.#rng = a.rng.fork(`enclave-noise/${a.moduleId}`);
    this.channelPublicKey = b64(this.#channel.publicKey);
    const img = JSON.parse(a.measurement.canonicalImage);
    this.approvedTemplateHashes = Object.freeze(img.approvedTemplateHashes as string[]);
    this.config = Object.freeze(img.config);
  }

  /**
   * Ask the (simulated) hardware for a signed attestation document binding `nonce` (hex, from
   * the verifier's challenge), the declared `purpose`, optional `userData` and this enclave's
   * channel public key.
   *
   * @example
   * const doc = enclave.attest(kms.challenge(rng), { purpose: "marketing.advertising.measurement" })
   */
  attest(nonce: string, opts: { purpose: string; userData?: string | Uint8Array }): AttestationDocument {
    this.#alive();
    if (typeof nonce !== "string" || !/^([0-9a-f]{2}){16,512}$/.test(nonce))
      invalid("nonce", "hex string of 16..512 bytes", nonce, "ATTESTATION_NONCE");
    if (typeof opts !== "object" || opts === null) invalid("opts", "{ purpose, userData? }", opts);
    if (typeof opts.purpose !== "string" || !/^[a-z0-9_]+(\.[a-z0-9_]+)*$/.test(opts.purpose))
      invalid("opts.purpose", "dotted data use like marketing.advertising", opts.purpose, "ATTESTATION_PURPOSE");
    let userData: string | null = null;
    if (opts.userData !== undefined) {
      const u = typeof opts.userData === "string" ? utf8(opts.userData) : opts.userData;
      if (!(u instanceof Uint8Array) || u.length > 1024) invalid("opts.userData", "string or bytes (≤ 1024 bytes)", opts.userData);
      userData = b64(u);
    }
    const pcrs = { ...this.measurement.pcrs };
    const doc = signDocument(
      {
        module_id: this.moduleId,
        timestamp: this.#clock(),
        digest: "SHA384",
        pcrs,
        certificate: encodeCertificate(this.#cert),
        cabundle: [encodeCertificate(this.#rootCert)],
        public_key: this.channelPublicKey,
        user_data: userData,
        nonce: b64(fromHex(nonce)),
        debug: this.debug,
        purpose: opts.purpose,
      },
      this.#moduleKey.secretKey,
    );
    this.#issued.set(documentHash(doc), { purpose: opts.purpose });
    return doc;
  }

  /**
   * Take a key release grant: open the sealed data key with the channel secret. The key is
   * kept inside; the return value says only what was accepted.
   *
   * @example
   * enclave.acceptKey(kms.releaseKey({ datasetId: "retail", document: doc, recipientPublicKey: enclave.channelPublicKey }, rng))
   */
  acceptKey(grant: KeyReleaseGrant): { datasetId: string; purpose: string; accepted: true } {
    this.#alive();
    if (typeof grant !== "object" || grant === null || typeof grant.datasetId !== "string") invalid("grant", "KeyReleaseGrant", grant);
    if (typeof grant.documentHash !== "string" || typeof grant.purpose !== "string")
      invalid("grant.documentHash", "hex string (with grant.purpose)", grant.documentHash);
    const sk = grant.sealedKey;
    if (typeof sk !== "object" || sk === null || typeof sk.ephemeralPublicKey !== "string" || typeof sk.ciphertext !== "string")
      invalid("grant.sealedKey", "{ ephemeralPublicKey, ciphertext } (base64)", sk);
    // a key id is filed once: a second grant never replaces the key a query would open with
    if (this.#keys.has(grant.datasetId))
      throw new CleanRoomError("ALREADY_EXISTS", `"grant.datasetId" expected an id this enclave holds no key for yet`, {
        field: "grant.datasetId",
      });
    const issued = this.#issued.get(grant.documentHash);
    if (!issued)
      throw new CleanRoomError("KEY_RELEASE_DENIED", "grant does not refer to a document this enclave issued", {
        field: "grant.documentHash",
      });
    if (issued.purpose !== grant.purpose)
      throw new CleanRoomError("KEY_RELEASE_DENIED", "grant purpose differs from the attested purpose", { field: "grant.purpose" });
    const box = { ephemeralPublicKey: fromB64(grant.sealedKey.ephemeralPublicKey), ciphertext: fromB64(grant.sealedKey.ciphertext) };
    const key = openSealed(
      this.#channel.secretKey,
      this.#channel.publicKey,
      box,
      releaseInfo(grant.datasetId, grant.purpose, grant.documentHash),
    );
    this.#keys.set(grant.datasetId, { key, purpose: grant.purpose, documentHash: grant.documentHash });
    return { datasetId: grant.datasetId, purpose: grant.purpose, accepted: true };
  }

  /**
   * Decrypt the named encrypted datasets with released keys and run the measured workload on
   * them. Refuses a template not measured into the image (`QUERY_NOT_APPROVED`) and a dataset
   * whose key was not released for `purpose` (`KEY_RELEASE_DENIED`). Plaintext is wiped after.
   *
   * @example
   * const out = enclave.run({ datasets: { exposures: encExp }, templateHash: h, params: {}, purpose })
   */
  run(req: EnclaveRunRequest): EnclaveRunResult {
    const opened = this.#open(req);
    try {
      const output = this.#workload(opened.input);
      if (output instanceof Promise) {
        output.catch(() => undefined);
        throw new CleanRoomError("STATE_INVALID", "the workload returned a Promise; call runAsync for async workloads (e.g. DuckDB)", {
          field: "workload",
        });
      }
      return this.#finish(req, output, opened.seen);
    } finally {
      for (const pt of Object.values(opened.input.inputs)) pt.fill(0);
    }
  }

  /**
   * `run` for async workloads (an engine whose `execute` returns a Promise). Same checks,
   * same wiping of plaintext once the workload settles.
   *
   * @example
   * const out = await enclave.runAsync({ datasets: { exposures: enc }, templateHash: h, params: {}, purpose })
   */
  async runAsync(req: EnclaveRunRequest): Promise<EnclaveRunResult> {
    const opened = this.#open(req);
    try {
      const output = await this.#workload(opened.input);
      return this.#finish(req, output, opened.seen);
    } finally {
      for (const pt of Object.values(opened.input.inputs)) pt.fill(0);
    }
  }

  /** Check template, purpose and keys for every input, then decrypt (all or nothing). */
  #open(req: EnclaveRunRequest): { input: WorkloadInput; seen: EnclaveView["lastRun"] } {
    this.#alive();
    if (typeof req !== "object" || req === null || typeof req.datasets !== "object" || req.datasets === null)
      invalid("req.datasets", "Record<name, EncryptedDataset>", req?.datasets);
    if (!this.approvedTemplateHashes.includes(req.templateHash)) {
      throw new CleanRoomError(
        "QUERY_NOT_APPROVED",
        `"req.templateHash" expected a template hash measured into this enclave, ` +
          `got ${typeof req.templateHash === "string" ? req.templateHash.slice(0, 16) + "…" : typeof req.templateHash}`,
        { field: "req.templateHash" },
      );
    }
    if (typeof req.purpose !== "string") invalid("req.purpose", "string", req.purpose);
    const params = req.params ?? null;
    canonicalJson(params, "req.params");
    // Check every key before decrypting anything: refuse before any side effect.
    const plan = Object.entries(req.datasets).map(([name, ds]) => {
      const held = typeof ds?.datasetId === "string" ? this.#keys.get(ds.datasetId) : undefined;
      if (!held)
        throw new CleanRoomError("KEY_RELEASE_DENIED", `no key released to this enclave for dataset of input "${name}"`, {
          field: `req.datasets.${name}`,
        });
      if (held.purpose !== req.purpose)
        throw new CleanRoomError("KEY_RELEASE_DENIED", `key for input "${name}" was released for purpose "${held.purpose}" only`, {
          field: "req.purpose",
        });
      return { name, ds, held };
    });
    const inputs: Record<string, Uint8Array> = {};
    const seen: EnclaveView["lastRun"] = [];
    try {
      for (const { name, ds, held } of plan) {
        const pt = aesGcmOpen(held.key, fromB64(ds.nonce), fromB64(ds.ciphertext), datasetAad(ds.datasetId));
        inputs[name] = pt;
        seen.push({ datasetId: ds.datasetId, plaintextBytes: pt.length, plaintextSha384: sha384Hex(pt) });
      }
    } catch (e) {
      for (const pt of Object.values(inputs)) pt.fill(0);
      throw e;
    }
    return { input: { inputs, templateHash: req.templateHash, params, purpose: req.purpose, config: this.config, rng: this.#rng }, seen };
  }

  #finish(req: EnclaveRunRequest, output: JsonValue, seen: EnclaveView["lastRun"]): EnclaveRunResult {
    const text = canonicalJson(output, "workload output");
    this.#lastRun = seen;
    return {
      output: JSON.parse(text) as JsonValue,
      moduleId: this.moduleId,
      imageSha384: this.measurement.imageSha384,
      templateHash: req.templateHash,
      purpose: req.purpose,
      outputSha384: sha384Hex(text),
      rngStamp: rngStamp(this.#rng),
    };
  }

  /** The enclave's view: what it holds, described by sizes and digests, never contents. */
  view(): EnclaveView {
    return {
      moduleId: this.moduleId,
      imageSha384: this.measurement.imageSha384,
      debug: this.debug,
      channelPublicKey: this.channelPublicKey,
      keysHeld: [...this.#keys.entries()].map(([datasetId, k]) => ({
        datasetId,
        purpose: k.purpose,
        documentHash: k.documentHash,
        keyBytes: k.key.length,
      })),
      lastRun: this.#lastRun.map((r) => ({ ...r })),
      documentsIssued: this.#issued.size,
      note: "inside the enclave: data keys and plaintext inputs exist here (listed by size/digest); none of it is returned",
    };
  }

  #alive(): void {
    if (this.#terminated)
      throw new CleanRoomError("STATE_INVALID", `enclave ${this.moduleId} was terminated; launch a new one`, { field: "enclave" });
  }

  /** Destroy held keys (zeroised) and stop the enclave — e.g. when the session closes. */
  terminate(): void {
    this.#terminated = true;
    for (const k of this.#keys.values()) k.key.fill(0);
    this.#keys.clear();
    this.#channel.secretKey.fill(0);
  }

  /** Public summary (JSON-able). */
  toJSON(): { moduleId: string; imageSha384: string; debug: boolean; channelPublicKey: string } {
    return {
      moduleId: this.moduleId,
      imageSha384: this.measurement.imageSha384,
      debug: this.debug,
      channelPublicKey: this.channelPublicKey,
    };
  }
}
