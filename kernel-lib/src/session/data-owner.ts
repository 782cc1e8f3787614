/**
 * A data owner in enclave mode: its own KMS (KeyReleaseService pinning the room's hardware
 * root), its storage key, and its own copy of each table it uploaded with the purposes and
 * analysis rule IT set (never the operator's catalog).
 *
 * Threat model: the owner hands the operator only ciphertext — an owner-sealed blob at rest
 * (AES-256-GCM under the storage key) and, per attested image and purpose, a KMS-protected
 * copy whose key it releases only to an enclave its verifier accepts. In a lab the owner object
 * lives in the same JS process as the operator (held by the lab's enclave mode, never by the
 * operator object): isolation is by object boundaries, not hardware. In a joined room it lives in
 * the owner's own kernel (server/enclave-owner.ts) and the operator is another process. Owner state
 * is in memory only; after a kernel restart the owner re-attaches its copy (same rows).
 */
import type { Rng } from "../rng.js";
import { aesGcmSeal, b64, utf8 } from "../crypto/primitives.js";
import type { AnalysisRule } from "../cleanroom/rules.js";
import { KeyReleaseService, type EncryptedDataset, type KeyReleaseGrant, type KeyReleaseRequest } from "../enclave/keyRelease.js";
import { allowImages } from "../enclave/verifier.js";
import { isWithin } from "../purpose/taxonomy.js";

/** What the owner keeps of one table. */
export interface OwnedTable {
  bytes: Uint8Array;
  allow: string[];
  deny: string[];
  rule: AnalysisRule | null;
}

export class DataOwner {
  readonly name: string;
  readonly #kms: KeyReleaseService;
  readonly #storageKey: Uint8Array;
  readonly #tables = new Map<string, OwnedTable>();
  /** `${datasetKey}|${image}|${purpose}` → ciphertext handed to the operator. */
  readonly #protectedFor = new Map<string, EncryptedDataset>();

  constructor(name: string, pinnedRootPublicKey: string, storageRng: Rng) {
    this.name = name;
    this.#kms = new KeyReleaseService({ owner: name, pinnedRootPublicKey });
    this.#storageKey = storageRng.bytes(32);
  }

  holds(key: string): boolean {
    return this.#tables.has(key);
  }

  /** The owner's own rule for `key` (what it recomputes the expected image with). */
  ownRule(key: string): AnalysisRule | null | undefined {
    return this.#tables.get(key)?.rule;
  }

  /** Keep (or re-attach) the owner's copy. */
  keep(key: string, table: OwnedTable): void {
    this.#tables.set(key, table);
  }

  /** The blob the operator stores at rest: the table sealed under the owner's storage key. */
  sealForStorage(key: string, bytes: Uint8Array, rng: Rng): Uint8Array {
    const nonce = rng.bytes(12);
    return utf8(
      JSON.stringify({
        format: "cleanroom-lab/owner-sealed/v1",
        owner: this.name,
        datasetId: key,
        nonce: b64(nonce),
        ciphertext: b64(aesGcmSeal(this.#storageKey, nonce, bytes, utf8(`owner-storage|${key}`))),
      }),
    );
  }

  /**
   * Protect `key` for exactly the image `expected` and the owner's tag matching `purpose`;
   * a refusal reason instead when the owner's tags allow no purpose.
   */
  protect(key: string, expected: string, purpose: string, rng: Rng): EncryptedDataset | { refused: string } {
    const held = this.#tables.get(key)!;
    if (held.allow.length === 0) return { refused: "the owner's tags (dataset and columns combined) allow no purpose" };
    const tag = held.allow.find((a) => isWithin(purpose, a)) ?? held.allow[0]!;
    const pk = `${key}|${expected}|${tag}`;
    let enc = this.#protectedFor.get(pk);
    if (!enc) {
      enc = this.#kms.protectDataset(
        `${key.replace("/", ":")}.${expected.slice(0, 16)}.${this.#protectedFor.size}`,
        held.bytes,
        { allowedMeasurements: allowImages([expected]), requiredPurpose: tag, ...(held.deny.length ? { deniedPurposes: held.deny } : {}) },
        rng,
      );
      this.#protectedFor.set(pk, enc);
    }
    return enc;
  }

  challenge(rng: Rng): string {
    return this.#kms.challenge(rng);
  }

  /** The owner's verifier + key-release policy (throws a CleanRoomError on refusal). */
  releaseKey(req: KeyReleaseRequest, rng: Rng): KeyReleaseGrant {
    return this.#kms.releaseKey(req, rng);
  }
}
