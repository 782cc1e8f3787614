/**
 * The Room panel's contract: what the cleanroom-ts kernel publishes, after every execution, for
 * each room joined with `joinRoom` (display id `cleanroom-room:<room>@<member>`, MIME
 * {@link ROOM_PANEL_MIME}), and what the JupyterLab "Room" panel renders. Built in the member's
 * kernel from the server's read-only `roomStatus` answer (server/panel.ts), with every acceptance
 * and approval signature verified there against the keys of the collaboration: the panel shows
 * "verified" only for signatures this kernel checked, never for what the server merely claims.
 *
 * Threat model: the payload is untrusted input to the extension (any kernel may publish it), so
 * it is zod-checked on arrival and every string is rendered as text. It carries names (members,
 * templates, budgets: schema), public keys' fingerprints and the released budget view — no rows,
 * no values. Depends on zod and display/schema.ts only (the extension bundles it).
 */
import { z } from "zod";
import { BudgetPayload } from "./schema.js";

/** The MIME type of a Room panel snapshot (not a cell output: no output shows its display id). */
export const ROOM_PANEL_MIME = "application/vnd.cleanroom-lab.room+json" as const;
/** The display id prefix of Room panel snapshots. */
export const ROOM_PANEL_PREFIX = "cleanroom-room:";

const name = z.string().min(1).max(128);
const hash = z.string().regex(/^[0-9a-f]{64}$/);
const ability = z.enum(["own", "query", "receive"]);

const Member = z.strictObject({
  name,
  abilities: z.array(ability).max(3),
  /** First 16 hex of SHA-256 of the member's Ed25519 public key. */
  keyFingerprint: z.string().regex(/^[0-9a-f]{16}$/),
  /** The member's acceptance signature verified in this kernel (false: missing or not valid). */
  accepted: z.boolean(),
});

const Definition = z.strictObject({
  version: z.number().int().min(1),
  hash,
  description: z.string().max(1000).optional(),
  members: z.array(Member).max(256),
});

export const RoomPanelPayload = z.strictObject({
  kind: z.literal("room-panel"),
  version: z.literal(1),
  roomId: name,
  /** This kernel's member name. */
  member: name,
  server: z.strictObject({
    /** `cleanroom://127.0.0.1:PORT/ROOM` (the pinned key is shown as its fingerprint). */
    url: z.string().max(300),
    /** Fingerprint of the server key this member pinned (first 16 hex of SHA-256). */
    fingerprint: z.string().regex(/^[0-9a-f]{16}$/),
    /** The server reported the same fingerprint as the pinned key's. */
    matches: z.boolean(),
  }),
  /** The collaboration in force (null: none yet, nothing runs). */
  active: Definition.extend({
    /** Every member's acceptance verified and this member's own key listed. */
    verified: z.boolean(),
  }).nullable(),
  /** A pending definition: the first collaboration, or a change request. */
  pending: Definition.extend({
    kind: z.enum(["creation", "change"]),
    /** Members whose signature is still needed. */
    missing: z.array(name),
    /** Members (of the current or new definition) whose signature on it was verified. */
    signed: z.array(name),
    /** Members added, removed or whose abilities change versus the active definition. */
    changes: z.array(z.strictObject({ member: name, change: z.enum(["added", "removed", "abilities"]) })),
  }).nullable(),
  approvals: z
    .array(
      z.strictObject({
        templateHash: hash,
        name,
        owners: z.array(name),
        /** Owners whose approval signature was verified in this kernel. */
        verified: z.array(name),
        /** Recorded approvals without a valid signature by that member's key. */
        forged: z.array(name),
        /** Owners who have not approved yet. */
        waiting: z.array(name),
        approved: z.boolean(),
      }),
    )
    .max(1000),
  /** The room's budgets as the server's ledger reports them (null before the collaboration is active). */
  budget: BudgetPayload.nullable(),
  /** When this kernel last read the server (ISO 8601). */
  readAt: z.string().max(40),
  /** The last read failed: the panel shows the previous state with this note (a CleanRoomError's `CODE: message`). */
  stale: z.string().max(500).optional(),
  rngMode: z.enum(["secure", "seeded"]).optional(),
  label: z.string().optional(),
});
export type RoomPanelPayload = z.infer<typeof RoomPanelPayload>;

/**
 * Check an untrusted Room panel snapshot.
 * @example parseRoomPanel(bundle[ROOM_PANEL_MIME]).ok
 */
export function parseRoomPanel(data: unknown): { ok: true; payload: RoomPanelPayload } | { ok: false; error: string } {
  const r = RoomPanelPayload.safeParse(data);
  return r.success ? { ok: true, payload: r.data } : { ok: false, error: z.prettifyError(r.error) };
}

/** A plain-text summary (the bundle's text/plain). */
export function roomPanelText(p: RoomPanelPayload): string {
  const lines = [`room ${p.roomId} as ${p.member} · server ${p.server.url} · key ${p.server.fingerprint}`];
  if (p.active) lines.push(`members: ${p.active.members.map((m) => `${m.name} (${m.abilities.join(", ") || "no abilities"})`).join("; ")}`);
  else lines.push("no active collaboration");
  if (p.pending) lines.push(`pending ${p.pending.kind} v${p.pending.version}: waiting for ${p.pending.missing.join(", ") || "nobody"}`);
  for (const a of p.approvals.filter((x) => !x.approved)) lines.push(`template ${a.name}: waiting for ${a.waiting.join(", ")}`);
  if (p.stale) lines.push(`(last read failed: ${p.stale})`);
  return lines.join("\n");
}
