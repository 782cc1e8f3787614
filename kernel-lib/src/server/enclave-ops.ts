/**
 * Enclave mode of a joined room, the server's (operator's) side: the `enclave.*` operations of
 * the room protocol (docs/protocol.md, "Enclave mode"). The data owners are other processes
 * (server/enclave-owner.ts runs in each owner's kernel), so key release is asynchronous:
 *
 *   enclave.upload     an owner catalogs an owner-sealed blob + metadata it validated itself;
 *                      the blob goes through the same store step as the lab's upload road.
 *   enclave.launch     launch (or reuse) an enclave process for (purpose, approved templates,
 *                      catalog rules, datasets) — one pending launch at a time.
 *   enclave.challenge  relay an owner's fresh nonce to the enclave and its attestation document back.
 *   enclave.release    relay an owner's KMS-protected ciphertext and its grant sealed to the
 *                      enclave's channel key (or record its refusal). Once every needed owner
 *                      has released, the launch becomes the room's ready enclave.
 *   enclave.status     what is launched, who still must release.
 *
 * A query (`cleanRoomQuery` with `executor: "enclave"`) runs only on a ready enclave that
 * matches its purpose, template and rules; before that it is refused typed (which owners still
 * must release), nothing charged (session/enclave-mode.ts `remoteOwners`). A newly approved
 * template, another purpose or a changed rule make the ready enclave stale: a new launch, new releases.
 *
 * Threat model: the operator (this process) is curious. It receives metadata, an owner-sealed
 * blob (AES-GCM under the owner's storage key), KMS-protected ciphertexts and grants sealed to
 * the enclave's attested X25519 key: never a data key, never a row. It does hold the simulated
 * hardware root secret (session/enclave-process.ts): a dishonest operator could sign a document
 * for any image — the simulation's limit, stated in the README.
 */
import type { z } from "zod";
import { CleanRoomError, invalid } from "../errors.js";
import { internals, type Lab } from "../session/lab.js";
import type { EnclaveHandle } from "../session/enclave-handle.js";
import type { EnclaveMode } from "../session/enclave-mode.js";
import type { EnclaveInputMeta } from "../enclave-room-workload.js";
import { canonicalJson } from "../enclave/measurement.js";
import type { EncryptedDataset, KeyReleaseGrant } from "../enclave/keyRelease.js";
import type { AttestationDocument } from "../enclave/document.js";
import { parseAnalysisRule, type AnalysisRule } from "../cleanroom/rules.js";
import type { DatasetSchema } from "../cleanroom/dataset.js";
import { ENCLAVE_OPS, type MemberSpec } from "./protocol.js";

/** Attestation documents the operator's holdings keep (the newest; older ones are dropped). */
const KEPT_DOCUMENTS = 64;

/** One launch the operator relays for: pending until every needed owner released. */
interface Launch {
  id: string;
  enclave: EnclaveHandle;
  purpose: string;
  /** canonical JSON of what it was launched for (purpose, approved hashes, rules, datasets). */
  basis: string;
  rules: { [k: string]: AnalysisRule | null };
  /** canonical JSON of the room state it measured (approved hashes, rules): changes make it stale. */
  state: string;
  datasets: string[];
  released: Map<string, EncryptedDataset>;
  refused: Map<string, string>;
}

/** What a member sees of a launch (no ciphertext, no key). */
export interface LaunchView {
  launch: string;
  pid: number | null;
  alive: boolean;
  ready: boolean;
  purpose: string;
  engine: string;
  imageSha384: string;
  pcrs: { [i: string]: string };
  debug: boolean;
  channelPublicKey: string;
  approvedTemplateHashes: string[];
  /** The rules the operator measured (from its catalog); each owner substitutes its own. */
  rules: { [k: string]: AnalysisRule | null };
  datasets: { dataset: string; owner: string; released: boolean; refused: string | null }[];
  mustRelease: string[];
}

export interface EnclaveStatus {
  host: "process" | "in-process";
  rootPublicKeyHex: string;
  /** The launch owners are releasing to now (null: none pending). */
  pending: LaunchView | null;
  /** The launch queries run on (null: none ready). */
  ready: LaunchView | null;
}

/** The room server's enclave-mode options (RoomServerOptions). */
export interface EnclaveServing {
  /** Teaching: let `enclave.launch` ask for a modified image (owners must refuse it). Default false. */
  allowTamper?: boolean;
}

/** The operator's enclave relay of one served room. */
export class EnclaveRelay {
  readonly #lab: Lab;
  readonly #allowTamper: boolean;
  #pending: Launch | null = null;
  #ready: Launch | null = null;
  #chain: Promise<unknown> = Promise.resolve();
  #launches = 0;

  constructor(lab: Lab, o: { allowTamper?: boolean } = {}) {
    this.#lab = lab;
    this.#allowTamper = o.allowTamper === true;
    // the owners are other processes: queries never attest by themselves
    this.#mode().remoteOwners = { mustRelease: (purpose, ids) => this.#mustRelease(purpose, ids) };
  }

  #mode(): EnclaveMode {
    return internals(this.#lab).enclave();
  }

  /** One enclave operation at a time (a launch and a release never interleave). */
  #serial<T>(fn: () => Promise<T> | T): Promise<T> {
    const p = this.#chain.then(fn);
    this.#chain = p.catch(() => undefined);
    return p;
  }

  #mustRelease(purpose: string, ids: string[]): string[] {
    const cat = this.#mode().operator.catalog();
    const p = this.#pending;
    const open = p && p.purpose === purpose && p.enclave.alive ? ids.filter((k) => !p.released.has(k)) : ids;
    return [...new Set(open.map((k) => cat.get(k)?.owner ?? k.split("/")[0]!))].sort();
  }

  #view(l: Launch | null): LaunchView | null {
    if (!l) return null;
    const cat = this.#mode().operator.catalog();
    const m = l.enclave.measurement;
    const open = l.datasets.filter((k) => !l.released.has(k));
    return {
      launch: l.id,
      pid: l.enclave.pid,
      alive: l.enclave.alive,
      ready: l === this.#ready,
      purpose: l.purpose,
      engine: internals(this.#lab).room.engine.name,
      imageSha384: m.imageSha384,
      pcrs: { ...m.pcrs },
      debug: l.enclave.debug,
      channelPublicKey: l.enclave.channelPublicKey,
      approvedTemplateHashes: [...l.enclave.approvedTemplateHashes],
      rules: l.rules,
      datasets: l.datasets.map((k) => ({
        dataset: k,
        owner: cat.get(k)?.owner ?? k.split("/")[0]!,
        released: l.released.has(k),
        refused: l.refused.get(k) ?? null,
      })),
      mustRelease: [...new Set(open.map((k) => cat.get(k)?.owner ?? k.split("/")[0]!))].sort(),
    };
  }

  status(): EnclaveStatus {
    const mode = this.#mode();
    if (this.#ready && !this.#ready.enclave.alive) this.#ready = null;
    return {
      host: internals(this.#lab).room.enclaveHost,
      rootPublicKeyHex: mode.operator.rootPublicKeyHex,
      pending: this.#view(this.#pending),
      ready: this.#view(this.#ready),
    };
  }

  #requireProcess(): void {
    if (internals(this.#lab).room.enclaveHost !== "process")
      throw new CleanRoomError(
        "STATE_INVALID",
        `"enclave" expected a room server started with --enclave process (owners release keys only to an enclave in its own process)`,
        { field: "enclave" },
      );
  }

  /** enclave.upload: catalog an owner-sealed blob the owner validated in its own kernel. */
  upload(m: MemberSpec, body: z.infer<(typeof ENCLAVE_OPS)["enclave.upload"]>): unknown {
    this.#requireProcess();
    const { room } = internals(this.#lab);
    const mode = this.#mode();
    const op = mode.operator;
    const i = body.input;
    const key = `${m.name}/${i.name}`;
    const columns = (i.schema as { columns?: unknown }).columns;
    if (typeof columns !== "object" || columns === null || Array.isArray(columns) || Object.keys(columns).length === 0)
      invalid("input.schema.columns", "the dataset's columns (names and types)", columns ?? null);
    const rule = i.rule === null ? null : parseAnalysisRule(i.rule);
    // the blob must be the owner's seal of THIS dataset (never opened here: the server has no key)
    let blob: { format?: unknown; owner?: unknown; datasetId?: unknown };
    const bytes = Buffer.from(body.sealed, "base64");
    try {
      blob = JSON.parse(bytes.toString("utf8"));
    } catch {
      return invalid("sealed", "an owner-sealed blob (cleanroom-lab/owner-sealed/v1)", "another form", "INPUT_INVALID");
    }
    if (blob.format !== "cleanroom-lab/owner-sealed/v1" || blob.owner !== m.name || blob.datasetId !== key)
      invalid("sealed", `an owner-sealed blob of ${key} by ${m.name}`, "another blob", "INPUT_INVALID");
    const known = op.catalog().get(key);
    const receipt = (purposes: string[], stored: number) => ({
      kind: "dataset",
      name: i.name,
      owner: m.name,
      rows: i.rows,
      columns: Object.keys(columns as object),
      fingerprint: i.fingerprint,
      purposes,
      sealed: true,
      mode: "enclave",
      operatorHoldsBytes: stored,
    });
    if (known) {
      // the owner re-attaches its copy after a kernel restart: same content only, nothing stored
      if (known.fingerprint !== i.fingerprint)
        invalid("input.name", "a dataset name not yet used by this party (or the same content, to re-attach)", i.name, "ALREADY_EXISTS");
      return receipt(known.purposes, Buffer.from(op.atRest(key).ciphertext, "base64").length);
    }
    if (room.hasPlain(key)) invalid("input.name", "a dataset name not yet used by this party", i.name, "ALREADY_EXISTS");
    const meta = {
      owner: m.name,
      name: i.name,
      schema: i.schema as unknown as DatasetSchema,
      fingerprint: i.fingerprint,
      rule,
    } satisfies EnclaveInputMeta;
    const purposes = room.commitUpload(
      { owner: m.name, key, fingerprint: i.fingerprint, tags: i.tags as never, analyst: i.analyst ?? "owner" },
      new Uint8Array(bytes),
      (p) => op.addToCatalog(key, { ...meta, rows: i.rows, purposes: p }),
    );
    return receipt(purposes, bytes.length);
  }

  /** enclave.launch: the launch owners release to (reused while nothing it was launched for changed). */
  launch(m: MemberSpec, body: z.infer<(typeof ENCLAVE_OPS)["enclave.launch"]>): Promise<EnclaveStatus> {
    this.#requireProcess();
    const tamper = body.tamper ?? "none";
    if (tamper !== "none" && !this.#allowTamper)
      invalid("tamper", '"none" (a server started with --enclave-tamper, for teaching, launches modified images)', tamper, "ACCESS_DENIED");
    const { room } = internals(this.#lab);
    const purpose = room.purpose.taxonomy.resolveUse(body.purpose, "purpose");
    const op = this.#mode().operator;
    const cat = op.catalog();
    const keys = [...new Set(body.datasets ?? [...cat.keys()])].sort();
    if (keys.length === 0) invalid("datasets", 'enclave-mode datasets (upload with sealing: "enclave" first)', keys, "NOT_FOUND");
    for (const k of keys) if (!cat.has(k)) invalid("datasets", "enclave-mode datasets of this room", k, "NOT_FOUND");
    return this.#serial(async () => {
      const approved = room.templates.approvedHashes();
      const now = op.catalog();
      const rules = Object.fromEntries([...now.keys()].sort().map((k) => [k, now.get(k)!.rule ?? null]));
      const basis = canonicalJson(JSON.parse(JSON.stringify({ purpose, approved, rules, keys, tamper })));
      const state = canonicalJson(JSON.parse(JSON.stringify({ approved, rules })));
      for (const l of [this.#pending, this.#ready])
        if (l && l.basis === basis && l.enclave.alive) {
          if (l === this.#ready && this.#pending && this.#pending !== l) {
            this.#pending.enclave.terminate();
            this.#pending = null;
          }
          return this.status();
        }
      // a pending launch some owner already released to is replaced only when the room state it
      // measured changed (approvals, rules): another member's other purpose or dataset list would
      // otherwise void those releases
      const p = this.#pending;
      if (p && p !== this.#ready && p.enclave.alive && p.released.size > 0 && p.state === state)
        throw new CleanRoomError(
          "STATE_INVALID",
          `"enclave" expected no pending launch with releases (${[...p.released.keys()].join(", ")} released to it ` +
            `for "${p.purpose}"): ask for the same purpose and datasets, or wait until it is ready`,
          { field: "enclave", reason: "launch-in-progress" },
        );
      const { enclave } = await op.launchImage(approved, rules, tamper, false, room.rng.fork(`room-launch:${++this.#launches}:${m.name}`));
      // a stale pending launch (other purpose, templates or rules) is replaced: its releases are void
      if (this.#pending && this.#pending !== this.#ready) this.#pending.enclave.terminate();
      this.#pending = {
        id: enclave.moduleId,
        enclave,
        purpose,
        basis,
        rules,
        state,
        datasets: keys,
        released: new Map(),
        refused: new Map(),
      };
      return this.status();
    });
  }

  #launchFor(m: MemberSpec, id: string, dataset: string): Launch {
    const owner = this.#mode().operator.catalog().get(dataset)?.owner;
    if (owner !== m.name)
      throw new CleanRoomError(
        "ACCESS_DENIED",
        `"dataset" expected an enclave-mode dataset of the signing member "${m.name}" (only its owner releases its key)`,
        { field: "dataset", audit: true },
      );
    const l = this.#pending;
    if (!l || l.id !== id || !l.enclave.alive)
      throw new CleanRoomError(
        "STATE_INVALID",
        `"launch" expected the pending launch (it was replaced, released already or its process exited: call attestEnclave again)`,
        { field: "launch", reason: "launch-stale" },
      );
    if (!l.datasets.includes(dataset)) invalid("dataset", `a dataset of this launch (${l.datasets.join(", ")})`, dataset, "NOT_FOUND");
    return l;
  }

  /** enclave.challenge: relay the owner's nonce; the enclave's signed document comes back. */
  challenge(m: MemberSpec, body: z.infer<(typeof ENCLAVE_OPS)["enclave.challenge"]>): Promise<{ document: AttestationDocument }> {
    return this.#serial(async () => {
      const l = this.#launchFor(m, body.launch, body.dataset);
      const document = await l.enclave.attest(body.nonce, { purpose: l.purpose, userData: `${this.#lab.roomId}|${body.dataset}` });
      // the operator's holdings (what it saw): the last few documents, not every one ever relayed
      const docs = this.#mode().operator.documents;
      docs.push(document);
      if (docs.length > KEPT_DOCUMENTS) docs.splice(0, docs.length - KEPT_DOCUMENTS);
      return { document };
    });
  }

  /** enclave.release: relay the owner's ciphertext and sealed grant (or record its refusal). */
  release(m: MemberSpec, body: z.infer<(typeof ENCLAVE_OPS)["enclave.release"]>): Promise<EnclaveStatus> {
    return this.#serial(async () => {
      const l = this.#launchFor(m, body.launch, body.dataset);
      const { room } = internals(this.#lab);
      const mode = this.#mode();
      const op = mode.operator;
      const audit = (outcome: "granted" | "refused", code: string | null) =>
        room.purpose.audit.append({
          action: "keyRelease",
          who: { party: m.name },
          purpose: l.purpose,
          datasets: [body.dataset],
          outcome,
          errorCode: code as never,
        });
      if (body.refused) {
        l.refused.set(body.dataset, `${body.refused.code}${body.refused.check ? ` (${body.refused.check})` : ""}`);
        audit("refused", body.refused.code);
        return this.status();
      }
      const enc = body.ciphertext;
      const grant = body.grant as unknown as KeyReleaseGrant | undefined;
      if (!enc || !grant) return invalid("ciphertext", "the owner's ciphertext and its grant (or refused)", "neither");
      if (enc.owner !== m.name || typeof grant.datasetId !== "string" || grant.datasetId !== enc.datasetId)
        invalid("grant", `a grant of ${m.name} for the ciphertext it sends`, "another grant");
      // the key is filed under an id of THIS dataset (the owner's kernel builds "<owner>:<name>.…",
      // session/data-owner.ts): a member never files a key under another owner's dataset id
      const prefix = `${body.dataset.replace("/", ":")}.`;
      if (!enc.datasetId.startsWith(prefix) || enc.datasetId.length === prefix.length)
        invalid("grant.datasetId", `a key id of the dataset ${body.dataset} (${prefix}…)`, "an id of another dataset");
      try {
        // the grant is opened inside the enclave process only (sealed to its attested key)
        await l.enclave.acceptKey(grant);
      } catch (e) {
        audit("refused", (e as { code?: string }).code ?? "INTERNAL");
        throw e;
      }
      l.released.set(body.dataset, enc as EncryptedDataset);
      l.refused.delete(body.dataset);
      op.sealedKeys.push({
        datasetId: grant.datasetId,
        ephemeralPublicKey: String(grant.sealedKey?.ephemeralPublicKey ?? ""),
        ciphertextBytes: String(grant.sealedKey?.ciphertext ?? "").length,
      });
      audit("granted", null);
      if (l.datasets.every((k) => l.released.has(k))) {
        // every needed owner released: the launch is the room's enclave (a query pinned to the
        // previous one keeps it until it settles)
        for (const [k, c] of l.released) op.ciphertexts.set(k, c);
        mode.promote(l.enclave, l.purpose);
        this.#ready = l;
        this.#pending = null;
      }
      return this.status();
    });
  }

  /** Stop a pending launch (server close). */
  close(): void {
    if (this.#pending && this.#pending !== this.#ready) this.#pending.enclave.terminate();
    this.#pending = null;
  }
}
