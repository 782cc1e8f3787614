/**
 * Enclave mode of a joined room, a data owner's side — runs in the OWNER's kernel, never on
 * the server. `upload(room, { …, sealing: "enclave" })` validates the table here with the lab's
 * own code (session/room.ts `validateUploadSteps`, the purpose taxonomy for the tags), keeps it
 * in this process with the owner's own KMS (session/data-owner.ts), and sends the server only
 * metadata and the owner-sealed blob (`enclave.upload`). `attestEnclave(room, { purpose })`
 * asks the server to launch (or reuse) the enclave process, then for each of this member's
 * datasets: computes the image it expects ON ITS OWN (templates whose content it re-hashed and
 * whose input owners — read from the content — all signed, its own rule, the published code),
 * sends a fresh challenge nonce, verifies the document the server relays with its own
 * verifier pinned to the room's hardware root key, and only then sends the KMS-protected
 * ciphertext and the data key sealed to the enclave's attested channel key (or its refusal).
 *
 * Threat model: the server (operator) is curious and may lie about the image, the rules, the
 * approved templates or the document; each lie yields an image this owner did not pin, or a
 * document that fails verification, and the key stays here. Limits: owner state is in memory
 * (per room handle): after a kernel restart or a new joinRoom the owner re-attaches its copy by
 * uploading the same rows again (the server stores nothing new). The hardware root public key
 * is taken from the server at the first enclave upload (trust on first use); the simulation's
 * root secret lives in the operator's process anyway (README).
 */
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { b64 } from "../crypto/primitives.js";
import type { UploadOptions } from "../session/types.js";
import { validateUploadSteps } from "../session/room.js";
import { DataOwner } from "../session/data-owner.js";
import { builtPublishedCode } from "../session/enclave-process.js";
import type { EnclaveTamper, OwnerDecision, EnclaveUploadReceipt } from "../session/enclave-types.js";
import { defaultTaxonomy } from "../purpose/taxonomy.js";
import { labelForColumns, tagDataset } from "../purpose/labels.js";
import { enclaveRoomImage } from "../enclave-room-workload.js";
import { measureImage } from "../enclave/measurement.js";
import type { AttestationDocument } from "../enclave/document.js";
import { attestationDisplay, type AttestationDisplay } from "../enclave/report.js";
import { rngStamp, type Rng } from "../rng.js";
import { runStepsAsync, type StepReport } from "../steps.js";
import { parseTemplate } from "../cleanroom/template.js";
import { verifyApprovals, type RemoteRoom } from "./client.js";
import type { EnclaveStatus, LaunchView } from "./enclave-ops.js";

interface OwnerSide {
  owner: DataOwner;
  rng: Rng;
  root: string;
}
const sides = new WeakMap<RemoteRoom, OwnerSide>();

async function side(room: RemoteRoom): Promise<OwnerSide> {
  const have = sides.get(room);
  if (have) return have;
  // trust on first use: the simulated root's public key, pinned from here on by this owner's verifier
  const root = (await room.request<EnclaveStatus>("enclave.status")).rootPublicKeyHex;
  if (!/^[0-9a-f]{64}$/.test(root)) invalid("rootPublicKey", "the room's hardware root public key (64 hex)", "another form");
  const rng = room.rngFork(`owner:${room.member}`);
  const s = { owner: new DataOwner(room.member, root, rng.fork("storage")), rng, root };
  sides.set(room, s);
  return s;
}

/**
 * Validate, keep and owner-seal a table in this kernel; the server catalogs metadata + blob.
 * @example await remoteEnclaveUpload(room, "retailer", "purchases", rows, { schema, purposes: ["measurement"], rule })
 */
export async function remoteEnclaveUpload(
  room: RemoteRoom,
  party: string,
  name: string,
  data: unknown,
  opts: UploadOptions,
  report?: (s: StepReport) => void,
): Promise<EnclaveUploadReceipt> {
  if (party !== room.member)
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"input.party" expected the joined member "${room.member}" (a member uploads only its own data)`,
      {
        field: "input.party",
      },
    );
  // the lab's validation, here: schema, rule, every row; then the tags against the purpose taxonomy
  const u = await runStepsAsync(validateUploadSteps(party, name, data, opts), report);
  const own = labelForColumns(tagDataset(defaultTaxonomy(), u.tags));
  const s = await side(room);
  const sealed = s.owner.sealForStorage(u.key, u.bytes, s.rng);
  const receipt = await room.request<EnclaveUploadReceipt>("enclave.upload", {
    input: {
      name,
      schema: JSON.parse(JSON.stringify(u.ds.schema)),
      rows: u.ds.rows,
      fingerprint: u.ds.fingerprint,
      rule: u.rule === null ? null : JSON.parse(JSON.stringify(u.rule)),
      tags: JSON.parse(JSON.stringify(u.tags)),
      ...(opts.analyst ? { analyst: opts.analyst } : {}),
    },
    sealed: b64(sealed),
  });
  // kept only once the server catalogued it: the owner's key release follows ITS label and rule
  s.owner.keep(u.key, { bytes: u.bytes, allow: own.allow, deny: own.deny, rule: u.rule });
  return receipt;
}

/**
 * The owner's own view of what the enclave may run, decided in this kernel: each template the
 * server calls approved is fetched (`template` op) and re-hashed here; its owners are read from
 * its OWN inputs (base/events `.owner`), never from the server's list; it counts only when every
 * one of them signed an "approve" statement that verifies under the member's key in the
 * collaboration. A template the operator recorded with no owners, or content that does not hash
 * to the hash shown, is left out — so an image holding it is not the image this owner pins.
 */
async function ownApprovedHashes(room: RemoteRoom): Promise<string[]> {
  const out: string[] = [];
  for (const t of (await verifyApprovals(room)).templates) {
    if (!t.approved || t.verified.length === 0) continue;
    const got = await room.request<{ templateHash: string; template: unknown }>("template", { template: t.templateHash });
    let parsed;
    try {
      parsed = parseTemplate(got.template);
    } catch {
      continue; // not a template: never counted
    }
    if (parsed.hash !== t.templateHash) continue;
    const owners = [...new Set([parsed.base.owner, ...(parsed.events ? [parsed.events.owner] : [])])];
    if (owners.length > 0 && owners.every((o) => t.verified.includes(o))) out.push(t.templateHash);
  }
  return out.sort();
}

/** What `attestEnclave(room, …)` returns in a joined room. */
export interface RemoteEnclaveAttestation {
  kind: "enclaveAttestation";
  /** True once the launch is the room's ready enclave (every needed owner released). */
  ok: boolean;
  ready: boolean;
  moduleId: string;
  pid: number | null;
  imageSha384: string;
  /** The image this owner computed and pinned (null when it owns none of the datasets). */
  ownersExpectImageSha384: string | null;
  ownersPin: "ownImage" | "operatorClaim";
  rootPublicKeyHex: string;
  purpose: string;
  approvedTemplateHashes: string[];
  /** This member's decisions in this call. */
  owners: OwnerDecision[];
  /** Owners that still must release (each in its own kernel). */
  mustRelease: string[];
  display: AttestationDisplay | null;
}

/**
 * Ask for the room's enclave for `purpose` and release this member's keys to it if it verifies.
 * @example (await remoteAttest(room, { purpose: "measurement" })).mustRelease
 */
export async function remoteAttest(
  room: RemoteRoom,
  o: { purpose: string; datasets?: readonly string[]; tamper?: EnclaveTamper; ownersPin?: "ownImage" | "operatorClaim"; debug?: boolean },
): Promise<RemoteEnclaveAttestation> {
  const pin = o.ownersPin ?? "ownImage";
  const tamper = o.tamper ?? (o.debug ? "debug" : "none");
  let st = await room.request<EnclaveStatus>("enclave.launch", {
    purpose: o.purpose,
    ...(o.datasets ? { datasets: [...o.datasets] } : {}),
    ...(tamper !== "none" ? { tamper } : {}),
  });
  const l: LaunchView | null = st.pending ?? st.ready;
  if (!l) throw new CleanRoomError("STATE_INVALID", `"enclave" expected a launch from the server, got none`, { field: "enclave" });
  const decisions: OwnerDecision[] = [];
  let expected: string | null = null;
  let shown: AttestationDisplay | null = null;
  const mine = l.datasets.filter((d) => d.owner === room.member && !d.released);
  const s = sides.get(room);
  if (mine.length > 0) {
    const approved = await ownApprovedHashes(room);
    const code = builtPublishedCode();
    for (const d of mine) {
      const k = d.dataset;
      const refuse = async (code: string, check: string | null, reason: string) => {
        decisions.push({ owner: room.member, dataset: k, outcome: "refused", code, check, reason });
        st = await room.request<EnclaveStatus>("enclave.release", { launch: l.launch, dataset: k, refused: { code, check, reason } });
      };
      if (!s?.owner.holds(k)) {
        await refuse("NOT_FOUND", null, 'the owner holds no copy in this kernel: re-attach it with upload (same rows, sealing: "enclave")');
        continue;
      }
      const own = s.owner.ownRule(k) ?? null;
      expected =
        pin === "ownImage" ? measureImage(enclaveRoomImage(l.engine, approved, { ...l.rules, [k]: own }, code)).imageSha384 : l.imageSha384;
      const enc = s.owner.protect(k, expected, l.purpose, s.rng);
      if ("refused" in enc) {
        await refuse("KEY_RELEASE_DENIED", "purpose", enc.refused);
        continue;
      }
      const nonce = s.owner.challenge(s.rng);
      const { document } = await room.request<{ document: AttestationDocument }>("enclave.challenge", {
        launch: l.launch,
        dataset: k,
        nonce,
      });
      let grant;
      try {
        grant = s.owner.releaseKey({ datasetId: enc.datasetId, document, nonce, recipientPublicKey: l.channelPublicKey }, s.rng);
      } catch (e) {
        if (!isCleanRoomError(e)) throw e;
        shown ??= attestationDisplay(
          document,
          { error: e },
          { title: `Enclave attestation — ${room.member} refused the key for ${k}`, rngStamp: rngStamp(s.rng) },
        );
        await refuse(e.code, (e.details.check as string) ?? null, (e.details.reason as string) ?? e.message);
        continue;
      }
      st = await room.request<EnclaveStatus>("enclave.release", {
        launch: l.launch,
        dataset: k,
        ciphertext: JSON.parse(JSON.stringify(enc)),
        grant: JSON.parse(JSON.stringify(grant)),
      });
      decisions.push({ owner: room.member, dataset: k, outcome: "released", code: null, check: null, reason: null });
      shown ??= attestationDisplay(
        document,
        { grantedTo: k },
        { title: `Enclave attestation — ${room.member} released the key for ${k}`, rngStamp: rngStamp(s.rng) },
      );
    }
  }
  const now = st.ready?.launch === l.launch ? st.ready : st.pending?.launch === l.launch ? st.pending : null;
  return {
    kind: "enclaveAttestation",
    ok: st.ready?.launch === l.launch,
    ready: st.ready?.launch === l.launch,
    moduleId: l.launch,
    pid: l.pid,
    imageSha384: l.imageSha384,
    ownersExpectImageSha384: expected,
    ownersPin: pin,
    rootPublicKeyHex: st.rootPublicKeyHex,
    purpose: l.purpose,
    approvedTemplateHashes: l.approvedTemplateHashes,
    owners: decisions,
    mustRelease: now?.mustRelease ?? [],
    display: shown,
  };
}
