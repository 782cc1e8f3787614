/**
 * The operator's side of enclave mode: the room's simulated hardware root, the current
 * enclave, and everything the operator holds — its catalog (metadata only: schema, rows,
 * fingerprint, the owners' rules as it was told them), KMS-protected ciphertexts, attestation
 * documents, sealed keys and released outputs.
 *
 * Threat model: the operator is curious. Nothing it holds is plaintext of an enclave-mode
 * dataset (operatorHoldings and the views check that with its own powers). Its catalog is
 * NOT owner-signed: an operator may edit it (e.g. weaken a rule) — the owners then compute
 * an image they did not pin and refuse their keys (session/enclave-mode.ts).
 */
import { aq } from "../cleanroom/arquero.js";
import type { KeyReleaseGrant } from "../enclave/keyRelease.js";
import { inProcessLauncher, type EnclaveHandle, type EnclaveLauncher } from "./enclave-handle.js";
import { processLauncher, type Relay } from "./enclave-process.js";
import type { EncryptedDataset } from "../enclave/keyRelease.js";
import { sha384Hex, type EnclaveImage, type JsonValue } from "../enclave/measurement.js";
import type { AttestationDocument } from "../enclave/document.js";
import type { PlanContext } from "../cleanroom/plan.js";
import { enclaveRoomImage, type EnclaveInputMeta, type PublishedCode } from "../enclave-room-workload.js";
import type { AnalysisRule } from "../cleanroom/rules.js";
import type { Rng } from "../rng.js";
import type { EnclaveTamper } from "./enclave-types.js";
import type { Room } from "./room.js";

/** One entry of the operator's enclave-mode catalog. */
export type CatalogEntry = EnclaveInputMeta & { rows: number; purposes: string[] };

/**
 * A relay that misbehaves (tests, teaching): the operator may rewrite what it passes between
 * the enclave and the owners. Owners must catch it (a tampered document fails verification; a
 * tampered grant does not open inside the enclave).
 */
export interface RelayFilter {
  document?: (doc: AttestationDocument) => AttestationDocument;
  grant?: (grant: KeyReleaseGrant) => KeyReleaseGrant;
}

export class EnclaveOperator {
  /** Starts enclaves: in this process (default) or each as its own OS process (`openLab({ enclave: "process" })`). */
  readonly launcher: EnclaveLauncher;
  /** The hardware root public key the owners pin (hex). */
  readonly rootPublicKeyHex: string;
  /** What the operator relayed to/from an enclave process (the envelopes it sees), and the test seams. */
  readonly relay: Relay = { log: [] };
  /** A misbehaving relay (null: relays faithfully). */
  relayFilter: RelayFilter | null = null;
  enclave: EnclaveHandle | null = null;
  /** The purpose the current enclave was attested for. */
  purpose: string | null = null;
  /** KMS-protected ciphertexts by dataset key (what the current enclave was given). */
  readonly ciphertexts = new Map<string, EncryptedDataset>();
  readonly documents: AttestationDocument[] = [];
  readonly sealedKeys: { datasetId: string; ephemeralPublicKey: string; ciphertextBytes: number }[] = [];
  readonly outputs: JsonValue[] = [];
  attests = 0;
  readonly #room: Room;

  constructor(room: Room) {
    this.#room = room;
    this.launcher =
      room.enclaveHost === "process"
        ? processLauncher(room.roomId, room.enclaveRootKey, this.relay)
        : inProcessLauncher(room.roomId, room.enclaveRootKey);
    this.rootPublicKeyHex = this.launcher.rootPublicKeyHex;
    room.db.exec(
      `CREATE TABLE IF NOT EXISTS enclave_datasets (room_id TEXT NOT NULL, key TEXT NOT NULL, meta_json TEXT NOT NULL, PRIMARY KEY (room_id, key))`,
    );
  }

  /** The enclave-mode catalog, read from the room's database each time (the operator may edit it). */
  catalog(): Map<string, CatalogEntry> {
    const rows = this.#room.db.prepare("SELECT key, meta_json FROM enclave_datasets WHERE room_id = ?").all(this.#room.roomId) as {
      key: string;
      meta_json: string;
    }[];
    return new Map(rows.map((r) => [r.key, JSON.parse(r.meta_json)]));
  }

  /** Catalog an owner-sealed upload (inside the upload transaction). */
  addToCatalog(key: string, meta: CatalogEntry): void {
    this.#room.db
      .prepare("INSERT INTO enclave_datasets (room_id, key, meta_json) VALUES (?, ?, ?)")
      .run(this.#room.roomId, key, JSON.stringify(meta));
  }

  /** The sealed record the operator's purpose gate keeps for `key` (purpose-gate seal over the owner's blob). */
  atRest(key: string): ReturnType<Room["purpose"]["store"]["sealed"]> {
    return this.#room.purpose.store.sealed(key);
  }

  /** Planner context over the enclave-mode catalog (metadata only), then the plain catalog. */
  planContext(): PlanContext {
    const base = this.#room.planContext();
    return {
      dataset: (owner, name) => {
        const m = this.catalog().get(`${owner}/${name}`);
        if (!m) return base.dataset(owner, name);
        const table = aq().table(Object.fromEntries(Object.keys(m.schema.columns).map((c) => [c, []]))) as never;
        return { name: m.name, owner: m.owner, schema: m.schema, rows: m.rows, fingerprint: m.fingerprint, table };
      },
      rule: (owner, name) => this.catalog().get(`${owner}/${name}`)?.rule ?? base.rule(owner, name),
    };
  }

  /**
   * Launch the enclave-room image of the `approved` template hashes and the owners' `rules` as this
   * operator's catalog states them, on the room's engine — for the lab's attestation and for the
   * room server alike. `tamper` is the dishonest operator of the tests and labs: "code" runs a
   * modified workload, "template" slips one template hash nobody approved into the image, "debug"
   * (or `debug`) launches a debug enclave. Returns the handle and the published code the owners
   * measure their expected image from, and the honest image (what an owner pins).
   */
  async launchImage(
    approved: string[],
    rules: { [datasetKey: string]: AnalysisRule | null },
    tamper: EnclaveTamper,
    debug: boolean,
    rng: Rng,
  ): Promise<{ enclave: EnclaveHandle; image: EnclaveImage; code: PublishedCode }> {
    const code = this.launcher.publishedCode();
    const image = enclaveRoomImage(this.#room.engine.name, approved, rules, code);
    const launched = tamper === "template" ? [...approved, sha384Hex("a template no data owner approved").slice(0, 64)] : approved;
    // In process mode this starts a new OS process: the host measures the code IT loaded.
    const enclave = await this.launcher.launch(
      {
        engine: image.engine,
        approvedTemplateHashes: launched,
        config: image.config,
        workload: tamper === "code" ? "tampered" : "approved",
        debug: tamper === "debug" || debug,
      },
      rng,
    );
    return { enclave, image, code };
  }

  /** Stop the current enclave (its process, in process mode) — lab close. */
  close(): void {
    this.enclave = null;
    this.launcher.close();
  }

  /** The plain path's planner (the operator trying to plan over an enclave-mode dataset). */
  plainPlanContext(): PlanContext {
    return this.#room.planContext();
  }
}
