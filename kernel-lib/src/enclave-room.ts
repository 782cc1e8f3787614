/**
 * Enclave mode for a lab: data owners' keys go only to an attested enclave, and the clean-room
 * query runs inside it (issue 7 wired into the session; notebook 04).
 *
 *   enclaveUpload     the OWNER validates and serializes its table on its side, keeps it, and
 *                     hands the operator only an owner-sealed blob (AES-256-GCM under an
 *                     owner-held storage key). The purpose gate labels that blob (so grants,
 *                     deny rules and the audit work as in plain mode) and seals it again; the
 *                     operator's catalog gets metadata only (schema, row count, fingerprint).
 *   attestEnclave     the operator launches an enclave from the lab's hardware root whose
 *                     measurement covers the engine, the release config, the workload code and
 *                     the lab's approved template hashes. Each owner computes the measurement
 *                     it expects ON ITS OWN (enclave-room-workload.ts), protects its table for
 *                     exactly that image and the declared purpose with its own
 *                     KeyReleaseService, and releases the data key only after its verifier
 *                     passes (pinned root, signature, fresh nonce, no replay, window, debug off,
 *                     measurement, channel key, purpose in the signed evidence).
 *   enclaveQuery      purpose decision → approval/plan/cost → attest + key release → atomic
 *                     ledger charge → execute inside → same released result as cleanRoomQuery,
 *                     plus the attestation report; audited via the purpose layer. Key release
 *                     comes BEFORE the charge so a refused enclave costs no budget.
 *
 * What the simulation protects: the session object, its database and everything it holds
 * (gate contents, ciphertexts, documents, sealed keys, outputs) contain no plaintext of an
 * enclave-mode dataset; opening its own purpose gate yields only owner ciphertext; a
 * modified, debug or foreign enclave gets no key. What it does NOT protect: everything runs in
 * one JS process — the owners' side (their KMS, storage key and retained tables) lives in a
 * module-private WeakMap here, and the enclave is a class with #private fields, so isolation
 * from code in the same process is by language scoping, not hardware. The rows a notebook
 * passes to `enclaveUpload` are of course visible to that notebook (it plays the owner). The
 * catalog metadata and rules are supplied by the operator and re-checked inside (fingerprints,
 * rules, template hash) but not owner-signed. Owner state is in memory only: after a kernel
 * restart, owners re-upload (nothing secret is persisted in the db; the hardware root secret
 * stays in the session's sidecar key file); `enclaveUpload` with the same rows re-attaches.
 * Key material (owner storage keys, data keys, nonces) is drawn from forks of the lab's Rng: in
 * seeded teaching mode all of it is reproducible from the seed — not private, by design.
 * Templates with a difference check are refused in enclave mode (the difference history lives
 * outside the enclave).
 */
import * as aq from "arquero";
import { CleanRoomError, invalid, isCleanRoomError } from "./errors.js";
import { rngStamp, TEACHING_LABEL, type RngStamp } from "./rng.js";
import { aesGcmSeal, b64, utf8 } from "./crypto/primitives.js";
import type { Lab, Party, QueryRequest, UploadOptions, CleanRoomResult } from "./session.js";
import { loadDataset, type DatasetSchema } from "./cleanroom/dataset.js";
import { serializeTable } from "./cleanroom/serialize.js";
import { prepareQuery, type PreparedQuery } from "./cleanroom/query.js";
import type { PlanContext } from "./cleanroom/plan.js";
import { parseAnalysisRule, type AnalysisRule } from "./cleanroom/rules.js";
import { templateHash, type Template } from "./cleanroom/template.js";
import { datasetBudgetKey } from "./dp/budget.js";
import { costFromJson } from "./dp/ledger.js";
import { auditCost } from "./purpose/audit.js";
import { isWithin } from "./purpose/taxonomy.js";
import { labelForColumns, tagDataset } from "./purpose/labels.js";
import { traceOf } from "./trace.js";
import { SimulatedHardwareRoot, type EnclaveInstance } from "./enclave/enclave.js";
import { KeyReleaseService, type EncryptedDataset } from "./enclave/keyRelease.js";
import { canonicalJson, measureImage, sha384Hex, type JsonValue } from "./enclave/measurement.js";
import { allowImages } from "./enclave/verifier.js";
import type { AttestationDocument } from "./enclave/document.js";
import { attestationDisplay, type AttestationDisplay } from "./enclave/report.js";
import { withMimeBundle } from "./display/bundle.js";
import { queryPayloadFromResult } from "./display/from-results.js";
export { enclaveRoomViews, operatorHoldings, type EnclaveRoomViews } from "./enclave-room-views.js";
import { ENCLAVE_DEPENDENCIES, enclaveRoomImage, enclaveRoomWorkload, tamperedEnclaveRoomWorkload, type EnclaveInputMeta, type EnclaveQueryParams } from "./enclave-room-workload.js";

// ---------------------------------------------------------------- the owners' side (not reachable from the Lab)

interface OwnerSide {
  kms: KeyReleaseService;
  storageKey: Uint8Array;
  /** The owner's own copy: bytes, allowed purposes and the analysis rule IT set (not the catalog's). */
  tables: Map<string, { bytes: Uint8Array; allow: string[]; deny: string[]; rule: AnalysisRule | null }>;
  /** `${datasetKey}|${image}|${purpose}` → ciphertext handed to the operator. */
  protectedFor: Map<string, EncryptedDataset>;
}
const OWNERS = new WeakMap<Lab, Map<string, OwnerSide>>();

// ---------------------------------------------------------------- the operator's side

export interface RoomState {
  root: SimulatedHardwareRoot;
  enclave: EnclaveInstance | null;
  purpose: string | null;
  /** What the operator holds: ciphertexts by dataset key, and the last documents / grants. */
  ciphertexts: Map<string, EncryptedDataset>;
  documents: AttestationDocument[];
  sealedKeys: { datasetId: string; ephemeralPublicKey: string; ciphertextBytes: number }[];
  outputs: JsonValue[];
  attests: number;
}
const ROOMS = new WeakMap<Lab, RoomState>();

/** @internal the operator-side state of a lab in enclave mode (enclave-room-views.ts). @example roomState(lab).ciphertexts.size */
export function roomState(lab: Lab): RoomState {
  let s = ROOMS.get(lab);
  if (!s) {
    s = { root: SimulatedHardwareRoot.fromSecretKey(lab.roomId, lab.enclaveRootKey), enclave: null, purpose: null, ciphertexts: new Map(), documents: [], sealedKeys: [], outputs: [], attests: 0 };
    ROOMS.set(lab, s);
  }
  return s;
}

function catalogTable(lab: Lab): void {
  lab.db.exec(`CREATE TABLE IF NOT EXISTS enclave_datasets (room_id TEXT NOT NULL, key TEXT NOT NULL, meta_json TEXT NOT NULL, PRIMARY KEY (room_id, key))`);
}
/** @internal the enclave-mode catalog (metadata only). @example [...catalog(lab).keys()] // ["advertiser/exposures"] */
export function catalog(lab: Lab): Map<string, EnclaveInputMeta & { rows: number; purposes: string[] }> {
  catalogTable(lab);
  const rows = lab.db.prepare("SELECT key, meta_json FROM enclave_datasets WHERE room_id = ?").all(lab.roomId) as { key: string; meta_json: string }[];
  return new Map(rows.map((r) => [r.key, JSON.parse(r.meta_json)]));
}

/** Planner context over the lab's datasets plus its enclave-mode catalog (metadata only). */
function enclaveContext(lab: Lab): PlanContext {
  const base = lab.planContext();
  return {
    dataset: (owner, name) => {
      const m = catalog(lab).get(`${owner}/${name}`);
      if (!m) return base.dataset(owner, name);
      const table = aq.table(Object.fromEntries(Object.keys(m.schema.columns).map((c) => [c, []]))) as never;
      return { name: m.name, owner: m.owner, schema: m.schema, rows: m.rows, fingerprint: m.fingerprint, table };
    },
    rule: (owner, name) => catalog(lab).get(`${owner}/${name}`)?.rule ?? base.rule(owner, name),
  };
}

/** What `enclaveUpload` returns (metadata the operator may see). */
export interface EnclaveUploadReceipt {
  kind: "dataset";
  name: string;
  owner: string;
  rows: number;
  columns: string[];
  fingerprint: string;
  purposes: string[];
  sealed: true;
  mode: "enclave";
  /** Bytes of the owner-sealed blob the operator stores (ciphertext). */
  operatorHoldsBytes: number;
}

/**
 * Upload a party's table in enclave mode: validated and serialized on the owner's side, kept
 * there; the operator stores an owner-sealed blob (labelled by the purpose gate) and metadata.
 *
 * @example
 * enclaveUpload(lab, adv, "exposures", m.joinedA, { schema: liftSchemas().exposures, purposes: ["measurement"], rule: liftRules(100).exposures })
 */
export function enclaveUpload(lab: Lab, party: Party | string, name: string, rows: unknown, opts: UploadOptions): EnclaveUploadReceipt {
  const owner = typeof party === "string" ? party : party?.name;
  lab.datasets(owner as string); // NOT_FOUND unless a party of this room
  if (!opts || typeof opts !== "object") invalid("options", "{ schema, purposes, idColumn? }", opts);
  if (opts.purposes === undefined) invalid("options.purposes", "allowed purposes, e.g. [\"measurement\"]", undefined, "PURPOSE_UNKNOWN");
  const key = `${owner}/${name}`;
  const known = catalog(lab).get(key);
  if (lab.datasets(owner as string).some((d) => d.name === name) || (known && OWNERS.get(lab)?.get(owner as string)?.tables.has(key)))
    invalid("name", "a dataset name not yet used by this party", name, "ALREADY_EXISTS");
  const schema = { ...(opts.schema ?? {}), privacyUnit: opts.schema?.privacyUnit ?? opts.idColumn };
  const rule: AnalysisRule | null = opts.rule === undefined ? null : parseAnalysisRule(opts.rule);
  const tags = { purposes: Array.isArray(opts.purposes) ? opts.purposes : [opts.purposes], ...(opts.categories ? { categories: opts.categories } : {}), ...(opts.columns ? { columns: opts.columns } : {}) };
  // The owner's own reading of its tags (dataset + every column, most restrictive: the enclave
  // decrypts the whole table). Its key release follows THIS label, never the operator's catalog.
  const ownLabel = labelForColumns(tagDataset(lab.purpose.taxonomy, tags));
  // --- owner side: validate, serialize, keep, seal for storage at the operator
  const input = Array.isArray(rows) ? aq.from(rows) : rows;
  const ds = loadDataset(name, owner as string, input, schema);
  const bytes = serializeTable(ds.table);
  let owners = OWNERS.get(lab);
  if (!owners) OWNERS.set(lab, (owners = new Map()));
  let side = owners.get(owner as string);
  if (!side) {
    const kms = new KeyReleaseService({ owner: owner as string, pinnedRootPublicKey: roomState(lab).root.publicKeyHex });
    side = { kms, storageKey: lab.rng.fork(`owner-storage:${owner}`).bytes(32), tables: new Map(), protectedFor: new Map() };
    owners.set(owner as string, side);
  }
  if (known) {
    // After a kernel restart the owner re-attaches its copy: same content only, nothing new stored.
    if (known.fingerprint !== ds.fingerprint) invalid("rows", `the content already catalogued as ${key} (fingerprint ${known.fingerprint.slice(0, 12)}…)`, `fingerprint ${ds.fingerprint.slice(0, 12)}…`, "ALREADY_EXISTS");
    side.tables.set(key, { bytes, allow: ownLabel.allow, deny: ownLabel.deny, rule });
    return Object.freeze({ kind: "dataset", name, owner: owner as string, rows: ds.rows, columns: Object.keys(ds.schema.columns), fingerprint: ds.fingerprint, purposes: known.purposes, sealed: true, mode: "enclave", operatorHoldsBytes: Buffer.from(lab.purpose.store.sealed(key).ciphertext, "base64").length } as EnclaveUploadReceipt);
  }
  const nonce = lab.rng.bytes(12);
  const blob = utf8(JSON.stringify({ format: "cleanroom-lab/owner-sealed/v1", owner, datasetId: key, nonce: b64(nonce), ciphertext: b64(aesGcmSeal(side.storageKey, nonce, bytes, utf8(`owner-storage|${key}`))) }));
  // --- operator side: label the blob in the purpose gate, catalog the metadata, dataset budget
  const meta = { owner: owner as string, name, schema: ds.schema, fingerprint: ds.fingerprint, rule, rows: ds.rows, purposes: [] as string[] };
  catalogTable(lab);
  lab.db.transaction(() => {
    meta.purposes = lab.purpose.upload({ party: owner as string, analyst: opts.analyst ?? "owner", datasetId: key, bytes: blob, tags }).label.allow;
    const collab = lab.ledger.status(lab.roomId).budgets.find((b) => b.scope === "collaboration");
    if (collab) lab.ledger.createBudget(lab.roomId, datasetBudgetKey(ds.fingerprint), costFromJson(collab.total), { refresh: collab.refresh });
    lab.db.prepare("INSERT INTO enclave_datasets (room_id, key, meta_json) VALUES (?, ?, ?)").run(lab.roomId, key, JSON.stringify(meta));
  })();
  side.tables.set(key, { bytes, allow: ownLabel.allow, deny: ownLabel.deny, rule });
  const receipt: EnclaveUploadReceipt = { kind: "dataset", name, owner: owner as string, rows: ds.rows, columns: Object.keys(ds.schema.columns), fingerprint: ds.fingerprint, purposes: meta.purposes, sealed: true, mode: "enclave", operatorHoldsBytes: blob.length };
  return Object.freeze(receipt);
}

/**
 * A data owner approves a template over enclave-mode (and/or plain) datasets.
 * @example approveEnclaveTemplate(lab, liftTemplate({ advertiser: "advertiser", retailer: "retailer" }), "retailer")
 */
export function approveEnclaveTemplate(lab: Lab, template: unknown, by: Party | string): ReturnType<Lab["approveTemplate"]> {
  const party = typeof by === "string" ? by : by?.name;
  lab.datasets(party as string); // NOT_FOUND unless a party
  return lab.templates.approve(template, party as string, enclaveContext(lab));
}

// ---------------------------------------------------------------- attestation

export type EnclaveTamper = "none" | "code" | "template" | "debug";

/** One owner's decision in an attestation. */
export interface OwnerDecision {
  owner: string;
  dataset: string;
  outcome: "released" | "refused";
  code: string | null;
  check: string | null;
  reason: string | null;
}

/** What `attestEnclave` returns (plain data; renders as the `attestation` payload). */
export interface EnclaveAttestation {
  kind: "enclaveAttestation";
  ok: boolean;
  moduleId: string;
  imageSha384: string;
  /** The image the owners computed on their own and pinned. */
  ownersExpectImageSha384: string;
  /** What the owners pinned: their own computation (default) or the operator's claim. */
  ownersPin: "ownImage" | "operatorClaim";
  /** The lab's hardware root public key (hex) every owner's verifier pins; survives restarts. */
  rootPublicKeyHex: string;
  pcrs: { [i: string]: string };
  debug: boolean;
  purpose: string;
  approvedTemplateHashes: string[];
  owners: OwnerDecision[];
  display: AttestationDisplay;
  rngStamp: RngStamp;
}

/**
 * Launch the lab's enclave and run every owner's verifier + key-release policy for `purpose`.
 * Refusals are returned as data (`ok: false`, the failing check in `display`); on success the
 * enclave holds the keys and becomes the lab's current enclave for `enclaveQuery`.
 * `tamper`: "code" (workload changed by one byte), "template" (an unapproved template hash
 * measured in), "debug" (debugger attached). `ownersPin: "operatorClaim"` switches the
 * defence off: owners pin the image the operator reports instead of the one they compute —
 * then a tampered enclave gets the keys (and its query output shows what it leaks).
 *
 * @example
 * attestEnclave(lab, { purpose: "measurement" }).owners   // each owner: released
 * attestEnclave(lab, { purpose: "measurement", tamper: "code" }).ok   // false: ATTESTATION_MEASUREMENT
 */
export function attestEnclave(lab: Lab, opts: { purpose: string; tamper?: EnclaveTamper; debug?: boolean; datasets?: string[]; ownersPin?: "ownImage" | "operatorClaim" }): EnclaveAttestation {
  if (typeof opts !== "object" || opts === null) invalid("opts", "{ purpose, tamper?, debug?, datasets? }", opts);
  const tamper = opts.tamper ?? "none";
  if (!["none", "code", "template", "debug"].includes(tamper)) invalid("opts.tamper", "none | code | template | debug", tamper);
  if (opts.debug !== undefined && typeof opts.debug !== "boolean") invalid("opts.debug", "boolean", opts.debug);
  const pin = opts.ownersPin ?? "ownImage";
  if (pin !== "ownImage" && pin !== "operatorClaim") invalid("opts.ownersPin", "ownImage | operatorClaim", pin);
  const purpose = lab.purpose.taxonomy.resolveUse(opts.purpose, "opts.purpose");
  const cat = catalog(lab);
  const keys = opts.datasets ?? [...cat.keys()];
  if (keys.length === 0) invalid("opts.datasets", "enclave-mode datasets (upload with enclaveUpload first)", keys, "NOT_FOUND");
  for (const k of keys) if (!cat.has(k)) invalid("opts.datasets", `enclave-mode datasets of this room (${[...cat.keys()].join(", ")})`, k, "NOT_FOUND");
  const st = roomState(lab);
  const rng = lab.rng.fork(`attest:${++st.attests}`);
  const approved = lab.templates.approvedHashes();
  // The operator's view of the owners' rules (its catalog) is measured into the image; each
  // owner below recomputes the image with ITS OWN rule for its dataset, so a catalog edited to
  // weaken a rule (e.g. a lower threshold) yields an image that owner did not pin.
  const catalogRules = Object.fromEntries([...keys].sort().map((k) => [k, cat.get(k)!.rule ?? null]));
  const image = enclaveRoomImage(lab.engine.name, approved, catalogRules);
  // "template": the operator slips one template hash nobody approved into the image.
  const launched = tamper === "template" ? [...approved, sha384Hex("a template no data owner approved").slice(0, 64)] : approved;
  const enclave = st.root.launch(
    { engine: image.engine, approvedTemplateHashes: launched, config: image.config, workload: tamper === "code" ? tamperedEnclaveRoomWorkload : enclaveRoomWorkload, dependencies: ENCLAVE_DEPENDENCIES, debug: tamper === "debug" || opts.debug === true },
    rng,
  );
  // Each owner computes the image it expects from the approved hashes and the published code.
  // Defence OFF ("operatorClaim"): owners pin whatever image the operator says it launched.
  const ownerExpects = (k: string, own: AnalysisRule | null): string =>
    pin === "ownImage" ? measureImage(enclaveRoomImage(lab.engine.name, approved, { ...catalogRules, [k]: own })).imageSha384 : enclave.measurement.imageSha384;
  let expected = pin === "ownImage" ? measureImage(image).imageSha384 : enclave.measurement.imageSha384;
  let shownExpected: string | null = null;
  const decisions: OwnerDecision[] = [];
  let shown: AttestationDisplay | null = null;
  const title = (d: string) => `Enclave attestation — ${d}`;
  for (const k of keys) {
    const owner = cat.get(k)!.owner;
    const side = OWNERS.get(lab)?.get(owner);
    const held = side?.tables.get(k);
    if (!side || !held) {
      decisions.push({ owner, dataset: k, outcome: "refused", code: "NOT_FOUND", check: null, reason: "the owner holds no copy in this kernel (owner state is in memory only): the owner re-attaches it with enclaveUpload (same rows)" });
      continue;
    }
    expected = ownerExpects(k, held.rule);
    shownExpected ??= expected;
    if (held.allow.length === 0) {
      decisions.push({ owner, dataset: k, outcome: "refused", code: "KEY_RELEASE_DENIED", check: "purpose", reason: "the owner's tags (dataset and columns combined) allow no purpose" });
      continue;
    }
    const tag = held.allow.find((a) => isWithin(purpose, a)) ?? held.allow[0]!;
    const pk = `${k}|${expected}|${tag}`;
    let enc = side.protectedFor.get(pk);
    if (!enc) {
      enc = side.kms.protectDataset(`${k.replace("/", ":")}.${expected.slice(0, 16)}.${side.protectedFor.size}`, held.bytes, { allowedMeasurements: allowImages([expected]), requiredPurpose: tag, ...(held.deny.length ? { deniedPurposes: held.deny } : {}) }, rng);
      side.protectedFor.set(pk, enc);
    }
    st.ciphertexts.set(k, enc);
    const nonce = side.kms.challenge(rng);
    const doc = enclave.attest(nonce, { purpose, userData: `${lab.roomId}|${k}` });
    st.documents.push(doc);
    try {
      const grant = side.kms.releaseKey({ datasetId: enc.datasetId, document: doc, nonce, recipientPublicKey: enclave.channelPublicKey }, rng);
      st.sealedKeys.push({ datasetId: grant.datasetId, ephemeralPublicKey: grant.sealedKey.ephemeralPublicKey, ciphertextBytes: grant.sealedKey.ciphertext.length });
      enclave.acceptKey(grant);
      decisions.push({ owner, dataset: k, outcome: "released", code: null, check: null, reason: null });
      shown ??= attestationDisplay(doc, { grantedTo: k }, { title: title(`${owner} released the key for ${k}`), rngStamp: rngStamp(rng) });
    } catch (e) {
      if (!isCleanRoomError(e)) throw e;
      decisions.push({ owner, dataset: k, outcome: "refused", code: e.code, check: (e.details.check as string) ?? null, reason: (e.details.reason as string) ?? e.message });
      if (!shown || shown.keyRelease.outcome === "released") shown = attestationDisplay(doc, { error: e }, { title: title(`${owner} refused the key for ${k}`), rngStamp: rngStamp(rng) });
    }
  }
  const ok = decisions.every((d) => d.outcome === "released");
  // every owner's key-release decision is audited, granted or refused (a refused attestation
  // is exactly what a misuse review should see)
  for (const d of decisions)
    lab.purpose.audit.append({ action: "keyRelease", who: { party: d.owner }, purpose, datasets: [d.dataset], outcome: d.outcome === "released" ? "granted" : "refused", errorCode: (d.code ?? null) as never });
  if (ok) {
    st.enclave?.terminate();
    st.enclave = enclave;
    st.purpose = purpose;
  } else enclave.terminate();
  const m = enclave.measurement;
  const out: EnclaveAttestation = {
    kind: "enclaveAttestation", ok, moduleId: enclave.moduleId, imageSha384: m.imageSha384, ownersExpectImageSha384: shownExpected ?? expected, ownersPin: pin, rootPublicKeyHex: st.root.publicKeyHex, pcrs: { ...m.pcrs }, debug: enclave.debug, purpose,
    approvedTemplateHashes: [...enclave.approvedTemplateHashes], owners: decisions,
    display: shown ?? {
      kind: "attestation", version: 1, title: title("no owner was asked"), document: [{ name: "document", value: "none requested" }], checks: [], verified: false,
      keyRelease: { outcome: "not-requested", reason: decisions[0]?.reason ?? "no dataset" }, ...(rng.mode === "seeded" ? { rngMode: "seeded" as const, label: TEACHING_LABEL } : { rngMode: "secure" as const }),
    },
    rngStamp: rngStamp(rng),
  };
  return withMimeBundle(out, (r) => ({ ...r.display, title: `${r.display.title} (${r.owners.filter((o) => o.outcome === "released").length}/${r.owners.length} owners released)` }));
}

// ---------------------------------------------------------------- query

/** What `enclaveQuery` returns: the plain path's result shape plus the attestation. */
export interface EnclaveQueryResult extends CleanRoomResult {
  mode: "enclave";
  attestation: { moduleId: string; imageSha384: string; owners: OwnerDecision[]; outputSha384: string };
}

/**
 * An enclave-backed clean-room query (same request as `cleanRoomQuery`): purpose decision →
 * approval/plan/cost → attestation + owners' key release (no budget spent if refused) →
 * atomic charge → execute + release INSIDE the enclave → audit.
 *
 * @example
 * const r = await enclaveQuery(lab, { template: t, params: { startDay: 0, endDay: 27 }, as: { party: "advertiser", analyst: "bo" }, purpose: "measurement" })
 * r.rows; r.attestation.imageSha384
 */
export async function enclaveQuery(lab: Lab, req: QueryRequest): Promise<EnclaveQueryResult> {
  const trace = traceOf();
  let template: Template;
  let requester: { party: string; analyst: string };
  const cat = catalog(lab);
  try {
    if (!req || typeof req !== "object") invalid("request", "{ template, params, as, purpose }", req);
    requester = { party: req.as?.party as string, analyst: req.as?.analyst };
    lab.datasets(requester.party); // NOT_FOUND unless a party
    if (typeof requester.analyst !== "string" || !/^[a-z][a-z0-9_-]{0,31}$/.test(requester.analyst)) invalid("as.analyst", "analyst short name [a-z][a-z0-9_-]{0,31}", requester.analyst);
    if (typeof req.purpose !== "string" || req.purpose.length === 0) invalid("purpose", "a declared purpose, e.g. \"measurement\"", req.purpose, "PURPOSE_UNKNOWN");
    template = lab.resolveTemplate(req.template);
    for (const i of [template.base, ...(template.events ? [template.events] : [])])
      if (!cat.has(`${i.owner}/${i.dataset}`)) invalid("template", "inputs uploaded in enclave mode (enclaveUpload); use cleanRoomQuery for plain datasets", `${i.owner}/${i.dataset}`, "STATE_INVALID");
    trace.ok("parse");
  } catch (e) {
    throw trace.refuse("parse", e);
  }
  const hash = templateHash(template);
  const inputs = [template.base, ...(template.events ? [template.events] : [])].map((i) => ({ datasetId: `${i.owner}/${i.dataset}` }));
  let authorized: ReturnType<Lab["purpose"]["authorizeQuery"]>;
  try {
    authorized = lab.purpose.authorizeQuery({ grant: req.grant, requester, purpose: req.purpose, templateHash: hash, inputs });
    trace.ok("purpose", `granted for ${authorized.purpose}; the gate released owner-sealed ciphertext only`);
  } catch (e) {
    throw trace.refuse("purpose", e);
  }
  const record = (outcome: "granted" | "refused", cost: PreparedQuery["cost"], errorCode: string | null = null) =>
    lab.purpose.recordQuery({ requester, purpose: authorized.purpose, grantId: authorized.grantId, templateHash: hash, datasets: inputs.map((i) => i.datasetId), privacyCost: cost ? auditCost(cost) : null, outcome, errorCode: errorCode as never });
  let prep: PreparedQuery;
  try {
    prep = prepareQuery({ template, params: req.params ?? {}, registry: lab.templates, ctx: enclaveContext(lab) });
    if (template.differenceCheck) throw new CleanRoomError("STATE_INVALID", `"template.differenceCheck" is not supported in enclave mode (the difference history lives outside the enclave)`, { field: "template.differenceCheck" });
    trace.ok("rule", "approved by every data owner").ok("plan", "from metadata; recompiled inside the enclave").ok("cost", prep.cost ? "computed before running" : "threshold only, no DP cost");
  } catch (e) {
    record("refused", null, isCleanRoomError(e) ? e.code : "INTERNAL");
    throw trace.refuse(isCleanRoomError(e) && e.code === "PARAM_INVALID" ? "plan" : "rule", e);
  }
  const st = roomState(lab);
  const ids = inputs.map((i) => i.datasetId);
  const measuredRules = (st.enclave?.config.rules ?? {}) as { [k: string]: JsonValue };
  const needsAttest = !st.enclave || st.purpose !== authorized.purpose || !st.enclave.approvedTemplateHashes.includes(hash) || ids.some((k) => !st.enclave!.view().keysHeld.some((h) => h.datasetId === st.ciphertexts.get(k)?.datasetId))
    || ids.some((k) => canonicalJson(measuredRules[k] ?? null) !== canonicalJson(JSON.parse(JSON.stringify(cat.get(k)!.rule ?? null))));
  let att: EnclaveAttestation | null = null;
  if (needsAttest) {
    att = attestEnclave(lab, { purpose: authorized.purpose, datasets: ids });
    if (!att.ok) {
      const bad = att.owners.find((o) => o.outcome === "refused")!;
      const err = new CleanRoomError((bad.code as never) ?? "KEY_RELEASE_DENIED", `${bad.owner} refused to release the key for ${bad.dataset}: ${bad.reason}`, { field: "enclave", check: bad.check });
      record("refused", null, err.code);
      trace.skip("budget", "nothing charged: the owners refused before any budget was spent");
      throw trace.refuse("execute", err);
    }
  }
  const enclave = st.enclave!;
  let charged: CleanRoomResult["charged"] = null;
  try {
    charged = lab.charge(prep, requester.party, authorized.purpose);
    if (charged) trace.ok("budget", `charged ${charged.text} (after the owners released their keys to ${enclave.moduleId})`);
    else trace.skip("budget", "no DP noise in this template");
  } catch (e) {
    record("refused", prep.cost, isCleanRoomError(e) ? e.code : "INTERNAL");
    throw trace.refuse("budget", e);
  }
  try {
    const qp: EnclaveQueryParams = {
      template: JSON.parse(JSON.stringify(template)), params: prep.params as JsonValue,
      inputs: Object.fromEntries(ids.map((k) => { const m = cat.get(k)!; return [k, { owner: m.owner, name: m.name, schema: m.schema as DatasetSchema, fingerprint: m.fingerprint, rule: m.rule }]; })) as never,
    };
    const run = await enclave.runAsync({ datasets: Object.fromEntries(ids.map((k) => [k, st.ciphertexts.get(k)!])), templateHash: hash, params: qp as unknown as JsonValue, purpose: authorized.purpose });
    st.outputs.push(run.output);
    const result = run.output as unknown as CleanRoomResult;
    trace.ok("execute", `inside ${enclave.moduleId} (${lab.engine.name})`).ok("threshold", `${result.suppressed.rows.length} row(s) suppressed (minimum ${result.suppressed.minimum})`);
    record("granted", prep.cost);
    trace.ok("audit");
    const owners = att?.owners ?? ids.map((k) => ({ owner: cat.get(k)!.owner, dataset: k, outcome: "released" as const, code: null, check: null, reason: "key released earlier to this enclave" }));
    const out: EnclaveQueryResult = { ...result, purpose: authorized.purpose, charged, trace: trace.steps, mode: "enclave", attestation: { moduleId: run.moduleId, imageSha384: run.imageSha384, owners, outputSha384: run.outputSha384 } };
    return withMimeBundle(out, (x) => queryPayloadFromResult(x, { purpose: x.purpose, title: `Enclave query (${x.attestation.moduleId})` }));
  } catch (e) {
    record("refused", prep.cost, isCleanRoomError(e) ? e.code : "INTERNAL");
    throw trace.refuse("execute", e);
  }
}

