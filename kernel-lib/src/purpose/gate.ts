/**
 * The encryption gate: purpose limitation enforced by keys, not only by `if` statements
 * (Meta Policy Zones' lesson that point checks are fragile; reference §4, §7.10).
 *
 * Envelope encryption (NIST SP 800-38D AES-256-GCM, RFC 5869 HKDF-SHA256):
 *  - each dataset's bytes (from `serializeTable`) are sealed under a fresh 256-bit data key;
 *  - the data key is wrapped once per allowed purpose tag under that purpose's key-encryption
 *    key, KEK(p) = HKDF(master, salt "cleanroom-lab/purpose-gate/v1", info "kek" ‖ room ‖ p);
 *  - the label (allow/deny/categories/subjects) and dataset id are bound as AES-GCM associated
 *    data into the ciphertext and every wrap, so editing a label, re-pointing a wrap at another
 *    purpose or swapping wraps between datasets makes decryption fail.
 * `PurposeKeyService.releaseDataKey` verifies the grant (signature, room, requester, expiry),
 * evaluates deny rules and the label, and only then derives the KEK of the tag covering the
 * query purpose and unwraps. A purpose with no covering tag has no wrapped key: there is
 * nothing any code path could unwrap, and a KEK for another purpose fails GCM authentication.
 *
 * Threat model: the store (`GatedTableStore`) holds only sealed blobs; the master secret lives
 * in the key service only. Column-level tags are enforced by policy (policy.ts) — the gate
 * seals at dataset granularity, so put columns that need key separation in their own dataset.
 */
import type { Database } from "better-sqlite3";
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { aesGcmOpen, aesGcmSeal, b64, fromB64, GCM_NONCE_BYTES, hkdfSha256, utf8 } from "../crypto/primitives.js";
import type { Rng } from "../rng.js";
import { echoSafe, SAFE_NAME, sha256Canonical } from "./canonical.js";
import { labelForColumns, makeLabel, tagDataset, type DatasetLabels, type DatasetTagsInput, type PurposeLabel } from "./labels.js";
import { evaluatePurpose, type DenyRule, type PurposeDecision, type PurposeGrant, type Requester } from "./policy.js";
import { isWithin, type Taxonomy } from "./taxonomy.js";

/** A sealed dataset: JSON-able, safe to store or hand to an engine (ciphertext only). */
export interface SealedDataset {
  version: 1;
  roomId: string;
  datasetId: string;
  label: PurposeLabel;
  /** Column labels (dataset label combined with column tags), bound into the AAD like `label`. */
  columns: Record<string, PurposeLabel>;
  /** base64 nonce and AES-256-GCM ciphertext‖tag of the dataset bytes. */
  nonce: string;
  ciphertext: string;
  /** One wrapped data key per allowed purpose tag. */
  wraps: Array<{ purpose: string; nonce: string; wrappedKey: string }>;
}

const SALT = utf8("cleanroom-lab/purpose-gate/v1");

/**
 * KEK for purpose `purpose` in room `roomId` (exported for tests that bypass policy code).
 *
 * @example
 * deriveKek(master, "room-1", "marketing.advertising") // 32 bytes
 */
export function deriveKek(master: Uint8Array, roomId: string, purpose: string): Uint8Array {
  return hkdfSha256(master, SALT, utf8(`kek\0${roomId}\0${purpose}`), 32);
}

const bindLabel = (s: Pick<SealedDataset, "roomId" | "datasetId" | "label" | "columns">): string =>
  sha256Canonical({ roomId: s.roomId, datasetId: s.datasetId, label: s.label, columns: s.columns });
const dataAad = (s: SealedDataset) => utf8(`data\0${bindLabel(s)}`);
const wrapAad = (s: SealedDataset, purpose: string) => utf8(`wrap\0${bindLabel(s)}\0${purpose}`);

/**
 * The raw unwrap path, with no policy code at all: given a KEK, find the wrap for `purpose`
 * and decrypt the dataset. Exists so tests can show that a wrong purpose key yields nothing.
 * Throws `KEY_RELEASE_DENIED` when no wrap exists for `purpose`, `CRYPTO_DECRYPT_FAILED`
 * when the KEK does not open it.
 *
 * @example
 * unwrapAndOpen(sealed, "safety", deriveKek(master, "room-1", "safety"))
 */
export function unwrapAndOpen(sealed: SealedDataset, purpose: string, kek: Uint8Array): Uint8Array {
  const wrap = sealed.wraps.find((w) => w.purpose === purpose);
  if (!wrap)
    throw new CleanRoomError(
      "KEY_RELEASE_DENIED",
      `no data key is wrapped for purpose "${purpose}" on dataset ${echoSafe(sealed.datasetId)}`,
      { purpose },
    );
  const dataKey = aesGcmOpen(kek, fromB64(wrap.nonce), fromB64(wrap.wrappedKey), wrapAad(sealed, purpose));
  return aesGcmOpen(dataKey, fromB64(sealed.nonce), fromB64(sealed.ciphertext), dataAad(sealed));
}

export interface KeyServiceOptions {
  roomId: string;
  /** 32-byte gate master secret (keep it out of the store). */
  masterSecret: Uint8Array;
  /** Hex Ed25519 policy public key that signs grants (`PurposeAuthority.publicKey`). */
  policyPublicKey: string;
  /** The taxonomy, or a getter when the notebook extends it over time. */
  taxonomy: Taxonomy | (() => Taxonomy);
  /** Compiled deny rules, or a getter. */
  rules?: readonly DenyRule[] | (() => readonly DenyRule[]);
  clock?: () => Date;
}

/**
 * Holds the gate master secret; seals datasets and releases data keys against grants.
 *
 * @example
 * const keys = PurposeKeyService.generate({ roomId: "room-1", policyPublicKey: authority.publicKey, taxonomy }, rng)
 * const sealed = keys.seal("exposures", bytes, makeLabel(taxonomy, { purposes: ["ads", "measurement"] }), rng)
 * const plain = keys.open(sealed, grant, { party: "advertiser", analyst: "bo" })
 */
export class PurposeKeyService {
  readonly roomId: string;
  readonly #master: Uint8Array;
  readonly #opts: KeyServiceOptions;

  constructor(opts: KeyServiceOptions) {
    if (typeof opts?.roomId !== "string" || !SAFE_NAME.test(opts.roomId)) invalid("roomId", "short name", opts?.roomId, "INPUT_INVALID");
    if (!(opts.masterSecret instanceof Uint8Array) || opts.masterSecret.length !== 32)
      invalid("masterSecret", "32 bytes", opts.masterSecret, "CRYPTO_INVALID_KEY");
    if (typeof opts.policyPublicKey !== "string" || !/^[0-9a-f]{64}$/i.test(opts.policyPublicKey))
      invalid("policyPublicKey", "64 hex chars", opts.policyPublicKey, "CRYPTO_INVALID_KEY");
    this.roomId = opts.roomId;
    this.#master = opts.masterSecret.slice();
    this.#opts = { ...opts, masterSecret: new Uint8Array(0) };
  }

  /** A key service with a fresh random master secret. */
  static generate(opts: Omit<KeyServiceOptions, "masterSecret">, rng: Rng): PurposeKeyService {
    return new PurposeKeyService({ ...opts, masterSecret: rng.bytes(32) });
  }

  private taxonomy(): Taxonomy {
    const t = this.#opts.taxonomy;
    return typeof t === "function" ? t() : t;
  }

  /**
   * Seal `bytes` under a fresh data key wrapped for each of the label's allow tags.
   *
   * @example
   * keys.seal("purchases", serializeTable(t), makeLabel(taxonomy, { purposes: "measurement" }), rng)
   */
  seal(datasetId: string, bytes: Uint8Array, label: PurposeLabel | DatasetLabels, rng: Rng): SealedDataset {
    const labels: DatasetLabels = "dataset" in label ? label : { dataset: label, columns: {} };
    if (typeof datasetId !== "string" || !SAFE_NAME.test(datasetId))
      invalid("datasetId", "short name (letters, digits, _.:-)", datasetId, "INPUT_INVALID");
    if (!(bytes instanceof Uint8Array)) invalid("bytes", "Uint8Array (serialised table)", bytes, "INPUT_INVALID");
    if (!Array.isArray(labels.dataset?.allow) || labels.dataset.allow.length === 0)
      invalid("label.allow", "at least one allowed purpose", labels.dataset?.allow, "INPUT_INVALID");
    const dataKey = rng.bytes(32);
    const head = {
      version: 1 as const,
      roomId: this.roomId,
      datasetId,
      label: labels.dataset,
      columns: labels.columns,
      nonce: b64(rng.bytes(GCM_NONCE_BYTES)),
      ciphertext: "",
      wraps: [] as SealedDataset["wraps"],
    };
    head.ciphertext = b64(aesGcmSeal(dataKey, fromB64(head.nonce), bytes, dataAad(head)));
    for (const purpose of labels.dataset.allow) {
      const nonce = rng.bytes(GCM_NONCE_BYTES);
      const wrappedKey = aesGcmSeal(deriveKek(this.#master, this.roomId, purpose), nonce, dataKey, wrapAad(head, purpose));
      head.wraps.push({ purpose, nonce: b64(nonce), wrappedKey: b64(wrappedKey) });
    }
    dataKey.fill(0);
    return head;
  }

  /**
   * Verify `grant` for `requester` (and the optional narrower `purpose`) against the sealed
   * label and deny rules; only then derive the covering purpose's KEK and unwrap the data key.
   * Any refusal is `KEY_RELEASE_DENIED` with `details.cause` = the policy code.
   *
   * @example
   * const { dataKey, wrapPurpose } = keys.releaseDataKey(sealed, grant, { party: "advertiser", analyst: "bo" })
   */
  releaseDataKey(
    sealed: SealedDataset,
    grant: PurposeGrant,
    requester: Requester,
    purpose?: string,
  ): { dataKey: Uint8Array; wrapPurpose: string; decision: PurposeDecision } {
    if (sealed?.version !== 1 || sealed.roomId !== this.roomId || !Array.isArray(sealed.wraps))
      invalid("sealed", "a SealedDataset of this room", sealed, "INPUT_INVALID");
    const rules = this.#opts.rules;
    const decision = evaluatePurpose(
      { grant, requester, ...(purpose === undefined ? {} : { purpose }), inputs: [{ datasetId: sealed.datasetId, label: sealed.label }] },
      {
        taxonomy: this.taxonomy(),
        roomId: this.roomId,
        policyPublicKey: this.#opts.policyPublicKey,
        now: (this.#opts.clock ?? (() => new Date()))(),
        rules: typeof rules === "function" ? rules() : (rules ?? []),
      },
    );
    if (decision.outcome === "refused" || decision.purpose === null)
      throw new CleanRoomError("KEY_RELEASE_DENIED", `data key for ${echoSafe(sealed.datasetId)} not released: ${decision.reason}`, {
        cause: decision.code,
        datasetId: echoSafe(sealed.datasetId),
      });
    const q = decision.purpose;
    const wrap = sealed.wraps.filter((w) => isWithin(q, w.purpose)).sort((a, b) => b.purpose.length - a.purpose.length)[0];
    if (!wrap)
      throw new CleanRoomError("KEY_RELEASE_DENIED", `no data key is wrapped for a purpose covering "${q}"`, { cause: "PURPOSE_DENIED" });
    try {
      const kek = deriveKek(this.#master, this.roomId, wrap.purpose);
      const dataKey = aesGcmOpen(kek, fromB64(wrap.nonce), fromB64(wrap.wrappedKey), wrapAad(sealed, wrap.purpose));
      return { dataKey, wrapPurpose: wrap.purpose, decision };
    } catch (e) {
      if (isCleanRoomError(e, "CRYPTO_DECRYPT_FAILED"))
        throw new CleanRoomError(
          "KEY_RELEASE_DENIED",
          `wrapped key for "${wrap.purpose}" does not open: sealed dataset or label was altered`,
          { cause: "CRYPTO_DECRYPT_FAILED" },
        );
      throw e;
    }
  }

  /**
   * Release the data key and decrypt the dataset bytes.
   *
   * @example
   * const bytes = keys.open(sealed, grant, { party: "advertiser", analyst: "bo" })
   */
  open(sealed: SealedDataset, grant: PurposeGrant, requester: Requester, purpose?: string): Uint8Array {
    const { dataKey } = this.releaseDataKey(sealed, grant, requester, purpose);
    try {
      return aesGcmOpen(dataKey, fromB64(sealed.nonce), fromB64(sealed.ciphertext), dataAad(sealed));
    } catch (e) {
      if (isCleanRoomError(e, "CRYPTO_DECRYPT_FAILED"))
        throw new CleanRoomError("KEY_RELEASE_DENIED", `dataset ciphertext does not open: sealed dataset was altered`, {
          cause: "CRYPTO_DECRYPT_FAILED",
        });
      throw e;
    } finally {
      dataKey.fill(0);
    }
  }
}

/** Summary of a stored dataset (plain data). */
export interface GatedDatasetInfo {
  datasetId: string;
  label: PurposeLabel;
  columns: Record<string, PurposeLabel>;
  wrappedFor: string[];
  ciphertextBytes: number;
}

/**
 * The engine-facing store: it keeps only sealed datasets (optionally in the room's sqlite db,
 * table `purpose_sealed_datasets`) and reads plaintext only through the key service.
 *
 * @example
 * const store = new GatedTableStore(keys, taxonomy, rng, db)
 * store.put("exposures", serializeTable(t), ["ads", "measurement"])
 * const bytes = store.get("exposures", grant, { requester: { party: "advertiser", analyst: "bo" } })
 */
export class GatedTableStore {
  readonly #mem = new Map<string, SealedDataset>();

  constructor(
    private readonly keys: PurposeKeyService,
    private readonly taxonomy: Taxonomy | (() => Taxonomy),
    private readonly rng: Rng,
    private readonly db?: Database,
  ) {
    db?.exec(`CREATE TABLE IF NOT EXISTS purpose_sealed_datasets (
      room_id TEXT NOT NULL, dataset_id TEXT NOT NULL, sealed TEXT NOT NULL, PRIMARY KEY (room_id, dataset_id))`);
  }

  /**
   * Seal and store `bytes` with allowed `purposes` (names, or a label from `makeLabel`/`tagDataset`).
   * Refuses to overwrite an existing dataset id (`ALREADY_EXISTS`).
   *
   * @example
   * store.put("purchases", bytes, { purposes: ["measurement"], categories: ["user.behavior.purchase_history"] })
   */
  put(datasetId: string, bytes: Uint8Array, purposes: string | string[] | DatasetTagsInput | PurposeLabel): GatedDatasetInfo {
    const tx = typeof this.taxonomy === "function" ? this.taxonomy() : this.taxonomy;
    const labels: DatasetLabels =
      typeof purposes === "object" && purposes !== null && "allow" in purposes
        ? {
            dataset: makeLabel(tx, {
              purposes: purposes.allow,
              deny: purposes.deny,
              categories: purposes.categories,
              subjects: purposes.subjects,
            }),
            columns: {},
          }
        : tagDataset(tx, typeof purposes === "string" || Array.isArray(purposes) ? { purposes } : purposes);
    if (this.sealedOrNull(datasetId) !== null) invalid("datasetId", "a dataset id not already uploaded", datasetId, "ALREADY_EXISTS");
    const sealed = this.keys.seal(datasetId, bytes, labels, this.rng);
    this.#mem.set(datasetId, sealed);
    this.db
      ?.prepare(`INSERT INTO purpose_sealed_datasets (room_id, dataset_id, sealed) VALUES (?, ?, ?)`)
      .run(sealed.roomId, datasetId, JSON.stringify(sealed));
    return this.info(datasetId);
  }

  /**
   * Plaintext bytes of `datasetId`, only if `grant` releases its data key for `requester`.
   *
   * @example
   * store.get("exposures", grant, { requester: { party: "advertiser", analyst: "bo" }, purpose: "measurement" })
   */
  get(datasetId: string, grant: PurposeGrant, opts: { requester: Requester; purpose?: string }): Uint8Array {
    return this.keys.open(this.sealed(datasetId), grant, opts.requester, opts.purpose);
  }

  /** The sealed form (ciphertext only). `NOT_FOUND` if absent. */
  sealed(datasetId: string): SealedDataset {
    const s = this.sealedOrNull(datasetId);
    if (s === null)
      throw new CleanRoomError("NOT_FOUND", `"datasetId" expected an uploaded dataset, got ${echoSafe(datasetId)}`, { field: "datasetId" });
    return s;
  }

  private sealedOrNull(datasetId: string): SealedDataset | null {
    const m = this.#mem.get(datasetId);
    if (m) return m;
    const row = this.db
      ?.prepare(`SELECT sealed FROM purpose_sealed_datasets WHERE room_id = ? AND dataset_id = ?`)
      .get(this.keys.roomId, datasetId) as { sealed: string } | undefined;
    if (!row) return null;
    const s = JSON.parse(row.sealed) as SealedDataset;
    this.#mem.set(datasetId, s);
    return s;
  }

  /** Label and wrap summary of a stored dataset. */
  info(datasetId: string): GatedDatasetInfo {
    const s = this.sealed(datasetId);
    return {
      datasetId,
      label: s.label,
      columns: s.columns,
      wrappedFor: s.wraps.map((w) => w.purpose),
      ciphertextBytes: fromB64(s.ciphertext).length,
    };
  }

  /**
   * The label a query reading `columns` of `datasetId` must satisfy (dataset label combined
   * with those columns' labels; all tagged columns when omitted).
   *
   * @example
   * store.labelFor("purchases", ["join_key", "value_cents"])
   */
  labelFor(datasetId: string, columns?: readonly string[]): PurposeLabel {
    const s = this.sealed(datasetId);
    return labelForColumns({ dataset: s.label, columns: s.columns }, columns);
  }

  /** Ids of stored datasets, sorted. */
  list(): string[] {
    const ids = new Set(this.#mem.keys());
    const rows = this.db?.prepare(`SELECT dataset_id FROM purpose_sealed_datasets WHERE room_id = ?`).all(this.keys.roomId) as
      Array<{ dataset_id: string }> | undefined;
    for (const r of rows ?? []) ids.add(r.dataset_id);
    return [...ids].sort();
  }
}
