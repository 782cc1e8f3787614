/**
 * The member's side of the Room panel: read the server's `roomStatus` (one signed, read-only
 * request) and turn it into a {@link RoomPanelPayload}, verifying here — in the member's own
 * kernel — every acceptance (against the keys of the definition it accepts) and every approval
 * (against the keys of the active collaboration). What the server claims but no valid signature
 * backs shows as not accepted / forged, never as verified.
 *
 * Threat model: a dishonest operator who edits the room database (an approval or acceptance
 * without the member's key is detected), a server that is not the pinned one (the channel would
 * not open; the reported fingerprint is compared too). Names only; no rows.
 */
import { budgetPayloadFromLedger } from "../display/from-ledger.js";
import { RoomPanelPayload } from "../display/room-panel.js";
import type { BudgetReport } from "../dp/planner.js";
import { TEACHING_LABEL, type RngStamp } from "../rng.js";
import { fingerprintOf } from "./identity.js";
import { collaborationHash, verifyStatement, type CollaborationDef } from "./protocol.js";
import type { CollaborationView } from "./membership.js";
import type { RemoteRoom } from "./client.js";

/** What the server's `roomStatus` op answers (server/ops.ts). */
export interface RoomStatus {
  room: string;
  protocol: string;
  publicKey: string;
  fingerprint: string;
  member: string;
  collaboration: CollaborationView;
  templates: {
    templateHash: string;
    name: string;
    owners: string[];
    approvedBy: string[];
    approved: boolean;
    signatures: { member: string; signature: string }[];
  }[];
  budget: (BudgetReport & RngStamp) | null;
  /** `sha256:<fingerprint>` → `owner/name` for dataset budgets (absent from older servers). */
  datasetNames?: Record<string, string>;
}

type Def = { hash: string; definition: CollaborationDef; acceptances: Record<string, string> };

/** Members of `def` (or `also`) whose acceptance of `def` verifies under their key in `def` (or the active one). */
function acceptedBy(roomId: string, d: Def, keys: Map<string, string>): Set<string> {
  const hash = collaborationHash(d.definition);
  const ok = new Set<string>();
  if (hash !== d.hash) return ok; // the server's hash is not this definition's: nothing verifies
  for (const [member, sig] of Object.entries(d.acceptances)) {
    const key = d.definition.members.find((m) => m.name === member)?.publicKey ?? keys.get(member);
    if (key && verifyStatement({ statement: "accept", room: roomId, collaboration: hash, member }, key, sig)) ok.add(member);
  }
  return ok;
}

const members = (d: Def, accepted: Set<string>) =>
  d.definition.members.map((m) => ({
    name: m.name,
    abilities: [...m.abilities],
    keyFingerprint: fingerprintOf(m.publicKey),
    accepted: accepted.has(m.name),
  }));

/**
 * The Room panel payload for one joined room from the server's `roomStatus` answer.
 * @example roomPanelPayload(room, await room.request("roomStatus")).active?.members.map((m) => m.name)
 */
export function roomPanelPayload(
  room: Pick<RemoteRoom, "roomId" | "member" | "url" | "serverKey" | "publicKey">,
  s: RoomStatus,
  readAt = new Date(),
): RoomPanelPayload {
  const a = s.collaboration.active as Def | null;
  const p = s.collaboration.pending as (Def & { missing: string[] }) | null;
  const activeKeys = new Map((a?.definition.members ?? []).map((m) => [m.name, m.publicKey]));
  const pinned = fingerprintOf(room.serverKey);
  let active: RoomPanelPayload["active"] = null;
  if (a) {
    const ok = acceptedBy(room.roomId, a, new Map());
    const me = a.definition.members.find((m) => m.name === room.member)?.publicKey === room.publicKey;
    active = {
      version: a.definition.version,
      hash: a.hash,
      ...(a.definition.description ? { description: a.definition.description } : {}),
      members: members(a, ok),
      verified: me && a.definition.members.every((m) => ok.has(m.name)),
    };
  }
  let pending: RoomPanelPayload["pending"] = null;
  if (p) {
    const ok = acceptedBy(room.roomId, p, activeKeys);
    const before = new Map((a?.definition.members ?? []).map((m) => [m.name, [...m.abilities].sort().join(",")]));
    const after = new Map(p.definition.members.map((m) => [m.name, [...m.abilities].sort().join(",")]));
    const changes: NonNullable<RoomPanelPayload["pending"]>["changes"] = [];
    if (a) {
      for (const [n, ab] of after)
        if (!before.has(n)) changes.push({ member: n, change: "added" });
        else if (before.get(n) !== ab) changes.push({ member: n, change: "abilities" });
      for (const n of before.keys()) if (!after.has(n)) changes.push({ member: n, change: "removed" });
    }
    pending = {
      kind: a ? "change" : "creation",
      version: p.definition.version,
      hash: p.hash,
      ...(p.definition.description ? { description: p.definition.description } : {}),
      members: members(p, ok),
      missing: [...p.missing],
      signed: [...ok].sort(),
      changes,
    };
  }
  const approvals = s.templates.map((t) => {
    const sigs = new Map(t.signatures.map((x) => [x.member, x.signature]));
    const verified: string[] = [];
    const forged: string[] = [];
    for (const m of t.approvedBy) {
      const k = activeKeys.get(m);
      const ok =
        !!k && verifyStatement({ statement: "approve", room: room.roomId, templateHash: t.templateHash, member: m }, k, sigs.get(m) ?? "");
      (ok ? verified : forged).push(m);
    }
    const waiting = t.owners.filter((o) => !t.approvedBy.includes(o));
    return {
      templateHash: t.templateHash,
      name: t.name,
      owners: [...t.owners],
      verified,
      forged,
      waiting,
      approved: t.approved && forged.length === 0 && waiting.length === 0,
    };
  });
  const named = s.datasetNames ?? {};
  const ledgerView = s.budget
    ? budgetPayloadFromLedger(s.budget, {
        title: `Privacy budget — ${room.roomId} (server)`,
        rngMode: s.budget.rngMode,
        ...(s.budget.label ? { label: s.budget.label } : {}),
        templateNames: Object.fromEntries(s.templates.map((t) => [t.templateHash, t.name])),
      })
    : null;
  const budget = ledgerView && {
    ...ledgerView,
    budgets: ledgerView.budgets.map((b) => (b.scope === "dataset" && named[b.subject] ? { ...b, subject: named[b.subject]! } : b)),
  };
  const stamp = s.budget?.rngMode === "seeded" ? { rngMode: "seeded" as const, label: s.budget.label ?? TEACHING_LABEL } : {};
  return RoomPanelPayload.parse({
    kind: "room-panel",
    version: 1,
    roomId: room.roomId,
    member: room.member,
    server: { url: room.url.replace(/#.*$/, ""), fingerprint: pinned, matches: s.fingerprint === pinned },
    active,
    pending,
    approvals,
    budget,
    readAt: readAt.toISOString(),
    ...stamp,
  });
}
