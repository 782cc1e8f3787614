/**
 * Enclave mode of a lab (issue 7; notebook 04): the data owners' keys go only to an attested
 * enclave and the clean-room query runs inside it. This module wires the two sides together
 * and gives the session's ONE roads what differs in this mode:
 *
 *   sealing()   the upload road's strategy: the OWNER keeps its validated table and hands
 *               the operator only an owner-sealed blob, which the purpose gate labels and
 *               seals again; the operator catalogs metadata only.
 *   attest()    the operator launches an enclave from the room's hardware root whose
 *               measurement covers the engine, the release config, the workload code and the
 *               approved template hashes. Each owner computes the measurement it expects ON ITS
 *               OWN (enclave-room-workload.ts) with its own rule, protects its table for exactly
 *               that image and purpose, and releases the data key only after its verifier passes.
 *   executor()  the query road's executor: admission (enclave-mode inputs only), planning over
 *               metadata, key acquisition (attest + release, BEFORE the charge: a refused
 *               enclave costs no budget), execution + release INSIDE the enclave.
 *
 * Threat model: see session/data-owner.ts (owners) and session/enclave-operator.ts (operator).
 * By default everything runs in one JS process; isolation is by object boundaries (#private
 * fields), not hardware. With `openLab({ enclave: "process" })` each enclave is its own OS
 * process (session/enclave-process.ts, enclave-host.ts) and the operator only relays
 * documents and ciphertext to it; the owners stay in the lab's process — except on a room
 * server (server/enclave-ops.ts sets `remoteOwners`), where each owner is its own kernel and a
 * query runs only on an enclave they all released to. A query pins the enclave it acquired until
 * it settles, so a concurrent attestation never terminates it under a charged query. Key
 * material is drawn from forks of the lab's Rng: in seeded teaching mode it is reproducible
 * from the seed — not private, by design. Templates with a difference check
 * are refused (the difference history lives outside the enclave).
 */
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { rngStamp, TEACHING_LABEL } from "../rng.js";
import type { DatasetSchema } from "../cleanroom/dataset.js";
import type { AnalysisRule } from "../cleanroom/rules.js";
import type { QueryResult } from "../cleanroom/release.js";
import type { ApprovalStatus } from "../cleanroom/approvals.js";
import { labelForColumns, tagDataset } from "../purpose/labels.js";
import { canonicalJson, measureImage, type JsonValue } from "../enclave/measurement.js";
import { attestationDisplay, type AttestationDisplay } from "../enclave/report.js";
import { enclaveRoomImage, type EnclaveQueryParams } from "../enclave-room-workload.js";
import type { Room, Sealing, ValidatedUpload } from "./room.js";
import type { QueryExecutor } from "./road.js";
import { DataOwner } from "./data-owner.js";
import { EnclaveOperator } from "./enclave-operator.js";
import type { EnclaveAttestation, EnclaveAttestOptions, EnclaveQueryExtra, EnclaveUploadReceipt, OwnerDecision } from "./enclave-types.js";
import { tick, type StepReport } from "../steps.js";
import type { EncryptedDataset } from "../enclave/keyRelease.js";
import type { EnclaveHandle } from "./enclave-handle.js";

/** What an enclave query acquired before its charge: the attestation (if one ran), the enclave and the ciphertexts it was given keys for. */
interface AcquiredEnclave {
  att: EnclaveAttestation | null;
  enclave: NonNullable<EnclaveOperator["enclave"]>;
  ciphertexts: Record<string, EncryptedDataset>;
}

/** The phases of an attestation, as a progress bar shows them. */
export const LAUNCH_PHASE = "launch and measure";
export const KEY_RELEASE_PHASE = "verify and release keys";

export class EnclaveMode {
  readonly operator: EnclaveOperator;
  readonly #room: Room;
  /** The data owners of this room, by party (never handed to the operator). */
  readonly #owners = new Map<string, DataOwner>();
  /** In-flight queries per enclave they pinned (acquire → settle). */
  readonly #pins = new Map<EnclaveHandle, number>();
  /** Enclaves replaced while a query still ran on them: terminated when its last query settles. */
  readonly #retired = new Set<EnclaveHandle>();
  /**
   * Keep an enclave a query pinned alive until that query settles (default). Off only in the
   * race test's positive control: a concurrent attestation then terminates it under the query.
   */
  keepPinned = true;
  /**
   * A joined room's server (server/enclave-ops.ts): the data owners are other processes, so a
   * query never attests on its own — it runs only on an enclave every needed owner released
   * to (enclave.release), and is refused typed, nothing charged, before that.
   */
  remoteOwners: null | { mustRelease: (purpose: string, datasets: string[]) => string[] } = null;

  constructor(room: Room) {
    this.#room = room;
    this.operator = new EnclaveOperator(room);
  }

  #owner(name: string): DataOwner {
    let o = this.#owners.get(name);
    if (!o) this.#owners.set(name, (o = new DataOwner(name, this.operator.rootPublicKeyHex, this.#room.rng.fork(`owner-storage:${name}`))));
    return o;
  }

  /** The upload road's owner-sealed strategy. */
  sealing(): Sealing<EnclaveUploadReceipt> {
    const room = this.#room;
    // The owner's own reading of its tags (dataset + every column, most restrictive: the enclave
    // decrypts the whole table). Its key release follows THIS label, never the operator's catalog.
    const keep = (u: ValidatedUpload) => {
      const own = labelForColumns(tagDataset(room.purpose.taxonomy, u.tags));
      this.#owner(u.owner).keep(u.key, { bytes: u.bytes, allow: own.allow, deny: own.deny, rule: u.rule });
    };
    const receipt = (u: ValidatedUpload, purposes: string[], operatorHoldsBytes: number): EnclaveUploadReceipt =>
      Object.freeze({
        kind: "dataset",
        name: u.name,
        owner: u.owner,
        rows: u.ds.rows,
        columns: Object.keys(u.ds.schema.columns),
        fingerprint: u.ds.fingerprint,
        purposes,
        sealed: true,
        mode: "enclave",
        operatorHoldsBytes,
      });
    return {
      taken: (key) => this.operator.catalog().has(key) && !!this.#owners.get(key.split("/")[0]!)?.holds(key),
      reattach: (u) => {
        const known = this.operator.catalog().get(u.key);
        if (!known) return null;
        // After a kernel restart the owner re-attaches its copy: same content only, nothing new stored.
        if (known.fingerprint !== u.ds.fingerprint)
          invalid(
            "rows",
            `the content already catalogued as ${u.key} (fingerprint ${known.fingerprint.slice(0, 12)}…)`,
            `fingerprint ${u.ds.fingerprint.slice(0, 12)}…`,
            "ALREADY_EXISTS",
          );
        keep(u);
        return receipt(u, known.purposes, Buffer.from(this.operator.atRest(u.key).ciphertext, "base64").length);
      },
      seal: (u) => this.#owner(u.owner).sealForStorage(u.key, u.bytes, room.rng),
      catalog: (u, purposes) =>
        this.operator.addToCatalog(u.key, {
          owner: u.owner,
          name: u.name,
          schema: u.ds.schema,
          fingerprint: u.ds.fingerprint,
          rule: u.rule,
          rows: u.ds.rows,
          purposes,
        }),
      done: (u, purposes, storedBytes) => {
        keep(u);
        return receipt(u, purposes, storedBytes);
      },
    };
  }

  /** An owner approves a template over enclave-mode (and/or plain) datasets (audited like the plain approval). */
  approve(template: unknown, by: string): ApprovalStatus {
    return this.#room.approve(template, by, this.operator.planContext());
  }

  /**
   * Launch an enclave and run every owner's verifier + key-release policy (refusals as data),
   * reporting the phases ("launch and measure", then "verify and release keys" once per
   * dataset) to `report`. What the operator keeps (ciphertexts, documents, sealed keys) and the
   * current enclave are written only after the last owner has decided, so a caller awaiting
   * between steps never sees a half-attested room.
   */
  async attest(opts: EnclaveAttestOptions, report?: (s: StepReport) => void): Promise<EnclaveAttestation> {
    const room = this.#room;
    const op = this.operator;
    if (typeof opts !== "object" || opts === null) invalid("opts", "{ purpose, tamper?, debug?, datasets? }", opts);
    const tamper = opts.tamper ?? "none";
    if (!["none", "code", "template", "debug"].includes(tamper)) invalid("opts.tamper", "none | code | template | debug", tamper);
    if (opts.debug !== undefined && typeof opts.debug !== "boolean") invalid("opts.debug", "boolean", opts.debug);
    const pin = opts.ownersPin ?? "ownImage";
    if (pin !== "ownImage" && pin !== "operatorClaim") invalid("opts.ownersPin", "ownImage | operatorClaim", pin);
    const purpose = room.purpose.taxonomy.resolveUse(opts.purpose, "opts.purpose");
    const cat = op.catalog();
    const keys = opts.datasets ?? [...cat.keys()];
    if (keys.length === 0) invalid("opts.datasets", "enclave-mode datasets (upload with enclaveUpload first)", keys, "NOT_FOUND");
    for (const k of keys)
      if (!cat.has(k)) invalid("opts.datasets", `enclave-mode datasets of this room (${[...cat.keys()].join(", ")})`, k, "NOT_FOUND");
    const rng = room.rng.fork(`attest:${++op.attests}`);
    const approved = room.templates.approvedHashes();
    // The operator's view of the owners' rules (its catalog) is measured into the image; each
    // owner below recomputes the image with ITS OWN rule for its dataset, so a catalog edited to
    // weaken a rule (e.g. a lower threshold) yields an image that owner did not pin.
    const catalogRules = Object.fromEntries([...keys].sort().map((k) => [k, cat.get(k)!.rule ?? null]));
    // The operator launches (in process mode a new OS process: the host measures the code IT loaded).
    const { enclave, image, code } = await op.launchImage(approved, catalogRules, tamper, opts.debug === true, rng);
    // Each owner computes the image it expects from the approved hashes and the published code.
    // Defence OFF ("operatorClaim"): owners pin whatever image the operator says it launched.
    const ownerExpects = (k: string, own: AnalysisRule | null): string =>
      pin === "ownImage"
        ? measureImage(enclaveRoomImage(room.engine.name, approved, { ...catalogRules, [k]: own }, code)).imageSha384
        : enclave.measurement.imageSha384;
    // Report, then let the event loop run (a progress bar's update leaves the kernel; other code may
    // run: the operator's records are written only after the last step). A throwing report is ignored.
    const step = async (r: StepReport): Promise<void> => {
      try {
        report?.(r);
      } catch {
        // a failing report (display gone, a throwing callback) never fails the attestation
      }
      await tick();
    };
    await step({ phase: LAUNCH_PHASE, done: 1, total: 1 });
    const ciphertexts: [string, Parameters<typeof op.ciphertexts.set>[1]][] = [];
    const documents: typeof op.documents = [];
    const sealedKeys: typeof op.sealedKeys = [];
    let expected = pin === "ownImage" ? measureImage(image).imageSha384 : enclave.measurement.imageSha384;
    let shownExpected: string | null = null;
    const decisions: OwnerDecision[] = [];
    // every owner's key-release decision is audited, granted or refused (a refused attestation
    // is exactly what a misuse review should see)
    const auditDecisions = () => {
      for (const d of decisions)
        room.purpose.audit.append({
          action: "keyRelease",
          who: { party: d.owner },
          purpose,
          datasets: [d.dataset],
          outcome: d.outcome === "released" ? "granted" : "refused",
          errorCode: (d.code ?? null) as never,
        });
    };
    let shown: AttestationDisplay | null = null;
    const title = (d: string) => `Enclave attestation — ${d}`;
    try {
      for (const [i, k] of keys.entries()) {
        await step({ phase: KEY_RELEASE_PHASE, done: i, total: keys.length });
        const owner = cat.get(k)!.owner;
        const side = this.#owners.get(owner);
        if (!side?.holds(k)) {
          decisions.push({
            owner,
            dataset: k,
            outcome: "refused",
            code: "NOT_FOUND",
            check: null,
            reason:
              "the owner holds no copy in this kernel (owner state is in memory only): the owner re-attaches it with enclaveUpload (same rows)",
          });
          continue;
        }
        expected = ownerExpects(k, side.ownRule(k) ?? null);
        shownExpected ??= expected;
        const enc = side.protect(k, expected, purpose, rng);
        if ("refused" in enc) {
          decisions.push({ owner, dataset: k, outcome: "refused", code: "KEY_RELEASE_DENIED", check: "purpose", reason: enc.refused });
          continue;
        }
        ciphertexts.push([k, enc]);
        const nonce = side.challenge(rng);
        // the operator relays the document to the owner (a misbehaving relay may rewrite it)
        const made = await enclave.attest(nonce, { purpose, userData: `${room.roomId}|${k}` });
        const doc = op.relayFilter?.document ? op.relayFilter.document(made) : made;
        documents.push(doc);
        try {
          const grant = side.releaseKey(
            { datasetId: enc.datasetId, document: doc, nonce, recipientPublicKey: enclave.channelPublicKey },
            rng,
          );
          sealedKeys.push({
            datasetId: grant.datasetId,
            ephemeralPublicKey: grant.sealedKey.ephemeralPublicKey,
            ciphertextBytes: grant.sealedKey.ciphertext.length,
          });
          // ... and the grant back to the enclave: sealed to the attested key, opened only inside
          await enclave.acceptKey(op.relayFilter?.grant ? op.relayFilter.grant(grant) : grant);
          decisions.push({ owner, dataset: k, outcome: "released", code: null, check: null, reason: null });
          shown ??= attestationDisplay(
            doc,
            { grantedTo: k },
            { title: title(`${owner} released the key for ${k}`), rngStamp: rngStamp(rng) },
          );
        } catch (e) {
          if (!isCleanRoomError(e)) throw e;
          decisions.push({
            owner,
            dataset: k,
            outcome: "refused",
            code: e.code,
            check: (e.details.check as string) ?? null,
            reason: (e.details.reason as string) ?? e.message,
          });
          if (!shown || shown.keyRelease.outcome === "released")
            shown = attestationDisplay(doc, { error: e }, { title: title(`${owner} refused the key for ${k}`), rngStamp: rngStamp(rng) });
        }
      }
    } catch (e) {
      // the enclave failed mid-attestation (e.g. its process died): the keys released so far were
      // sealed to an enclave that is gone; the decisions made are audited, then the failure surfaces
      enclave.terminate();
      auditDecisions();
      throw e;
    }
    await step({ phase: KEY_RELEASE_PHASE, done: keys.length, total: keys.length });
    // no await from here on: the operator's records and the current enclave change together
    for (const [k, enc] of ciphertexts) op.ciphertexts.set(k, enc);
    op.documents.push(...documents);
    op.sealedKeys.push(...sealedKeys);
    const ok = decisions.every((d) => d.outcome === "released");
    auditDecisions();
    if (ok) this.promote(enclave, purpose);
    else enclave.terminate();
    const m = enclave.measurement;
    return {
      kind: "enclaveAttestation",
      ok,
      moduleId: enclave.moduleId,
      imageSha384: m.imageSha384,
      ownersExpectImageSha384: shownExpected ?? expected,
      ownersPin: pin,
      rootPublicKeyHex: op.rootPublicKeyHex,
      pcrs: { ...m.pcrs },
      debug: enclave.debug,
      purpose,
      approvedTemplateHashes: [...enclave.approvedTemplateHashes],
      owners: decisions,
      display: shown ?? {
        kind: "attestation",
        version: 1,
        title: title("no owner was asked"),
        document: [{ name: "document", value: "none requested" }],
        checks: [],
        verified: false,
        keyRelease: { outcome: "not-requested", reason: decisions[0]?.reason ?? "no dataset" },
        ...(rng.mode === "seeded" ? { rngMode: "seeded" as const, label: TEACHING_LABEL } : { rngMode: "secure" as const }),
      },
      rngStamp: rngStamp(rng),
    };
  }

  /**
   * Make `enclave` the operator's current one (attested for `purpose`). The one it replaces is
   * terminated now, or — while a query that pinned it still runs — when that query settles, so
   * a concurrent attestation never fails a query after its charge.
   */
  promote(enclave: EnclaveHandle, purpose: string): void {
    const op = this.operator;
    const prev = op.enclave;
    op.enclave = enclave;
    op.purpose = purpose;
    if (!prev || prev === enclave) return;
    if (this.keepPinned && (this.#pins.get(prev) ?? 0) > 0) this.#retired.add(prev);
    else prev.terminate();
  }

  /** Queries running on `e` now (tests, status). */
  pinned(e: EnclaveHandle): number {
    return this.#pins.get(e) ?? 0;
  }

  #pin(e: EnclaveHandle): void {
    this.#pins.set(e, (this.#pins.get(e) ?? 0) + 1);
  }

  #unpin(e: EnclaveHandle): void {
    const n = (this.#pins.get(e) ?? 1) - 1;
    if (n > 0) return void this.#pins.set(e, n);
    this.#pins.delete(e);
    if (this.#retired.delete(e)) e.terminate();
  }

  /** The query road's executor for this mode (one per query: it snapshots the catalog at admission). */
  executor(): QueryExecutor<AcquiredEnclave, EnclaveQueryExtra> {
    const op = this.operator;
    const room = this.#room;
    let cat = op.catalog();
    return {
      name: "enclave",
      admit: (template) => {
        cat = op.catalog();
        for (const i of [template.base, ...(template.events ? [template.events] : [])])
          if (!cat.has(`${i.owner}/${i.dataset}`))
            invalid(
              "template",
              "inputs uploaded in enclave mode (enclaveUpload); use cleanRoomQuery for plain datasets",
              `${i.owner}/${i.dataset}`,
              "STATE_INVALID",
            );
      },
      purposeNote: (purpose) => `granted for ${purpose}; the gate released owner-sealed ciphertext only`,
      planContext: () => op.planContext(),
      checkPlan: (_prep, template) => {
        if (template.differenceCheck)
          throw new CleanRoomError(
            "STATE_INVALID",
            `"template.differenceCheck" is not supported in enclave mode (the difference history lives outside the enclave)`,
            { field: "template.differenceCheck" },
          );
      },
      planNote: "from metadata; recompiled inside the enclave",
      acquire: async (q) => {
        const ids = q.datasets;
        const cur = op.enclave;
        const measuredRules = (cur?.config.rules ?? {}) as { [k: string]: JsonValue };
        const needsAttest =
          !cur ||
          !cur.alive ||
          op.purpose !== q.purpose ||
          !cur.approvedTemplateHashes.includes(q.templateHash) ||
          ids.some((k) => !cur.view().keysHeld.some((h) => h.datasetId === op.ciphertexts.get(k)?.datasetId)) ||
          ids.some((k) => canonicalJson(measuredRules[k] ?? null) !== canonicalJson(JSON.parse(JSON.stringify(cat.get(k)!.rule ?? null))));
        // the query runs on THE enclave (and ciphertexts) acquired here, even if a concurrent
        // attestEnclave replaces the operator's current one between the charge and the run
        const pin = (att: EnclaveAttestation | null): AcquiredEnclave => {
          this.#pin(op.enclave!);
          return { att, enclave: op.enclave!, ciphertexts: Object.fromEntries(ids.map((k) => [k, op.ciphertexts.get(k)!])) };
        };
        if (!needsAttest) return pin(null);
        if (this.remoteOwners) {
          // the owners are other processes: they release on their own (attestEnclave in their kernels)
          const must = this.remoteOwners.mustRelease(q.purpose, ids);
          throw new CleanRoomError(
            "STATE_INVALID",
            `"enclave" expected an enclave every owner released its key to for purpose ${q.purpose} and this template; ` +
              `still to release: ${must.join(", ") || "(a new launch: call attestEnclave)"} — nothing charged`,
            { field: "enclave", reason: "enclave-not-ready", mustRelease: must, purpose: q.purpose },
          );
        }
        const att = await this.attest({ purpose: q.purpose, datasets: ids });
        if (!att.ok) {
          const bad = att.owners.find((o) => o.outcome === "refused")!;
          throw new CleanRoomError(
            (bad.code as never) ?? "KEY_RELEASE_DENIED",
            `${bad.owner} refused to release the key for ${bad.dataset}: ${bad.reason}`,
            { field: "enclave", check: bad.check },
          );
        }
        return pin(att);
      },
      chargeNote: (keys) => ` (after the owners released their keys to ${keys.enclave.moduleId})`,
      settle: (keys) => this.#unpin(keys.enclave),
      execute: async (q, { att, enclave, ciphertexts }) => {
        const ids = q.datasets;
        const qp: EnclaveQueryParams = {
          template: JSON.parse(JSON.stringify(q.template)),
          params: q.prep.params as JsonValue,
          inputs: Object.fromEntries(
            ids.map((k) => {
              const m = cat.get(k)!;
              return [k, { owner: m.owner, name: m.name, schema: m.schema as DatasetSchema, fingerprint: m.fingerprint, rule: m.rule }];
            }),
          ) as never,
        };
        let run;
        try {
          run = await enclave.runAsync({
            datasets: ciphertexts,
            templateHash: q.templateHash,
            params: qp as unknown as JsonValue,
            purpose: q.purpose,
          });
        } catch (e) {
          // a dead enclave (its process killed mid-query) is forgotten: the next query attests a new one
          if (!enclave.alive && op.enclave === enclave) op.enclave = null;
          throw e;
        }
        op.outputs.push(run.output);
        const owners =
          att?.owners ??
          ids.map((k) => ({
            owner: cat.get(k)!.owner,
            dataset: k,
            outcome: "released" as const,
            code: null,
            check: null,
            reason: "key released earlier to this enclave",
          }));
        return {
          result: run.output as unknown as QueryResult,
          where: `inside ${enclave.moduleId} (${room.engine.name})`,
          extra: {
            mode: "enclave" as const,
            attestation: { moduleId: run.moduleId, imageSha384: run.imageSha384, owners, outputSha384: run.outputSha384 },
          },
        };
      },
    };
  }
}
