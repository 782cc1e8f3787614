/**
 * The "Room" panel's content: a pure view of the rooms the active notebook's kernel joined with
 * `joinRoom` — published by the cleanroom-ts kernel after every execution as an iopub
 * `update_display_data` with display id `cleanroom-room:<room>@<member>` (MIME
 * application/vnd.cleanroom-lab.room+json, kernel-lib/src/display/room-panel.ts), read from the
 * room's server and with every signature verified in the member's kernel. The panel never runs
 * code in the kernel. Names, not hashes (hashes on hover); long names wrap.
 */
import {
  ROOM_PANEL_MIME,
  ROOM_PANEL_PREFIX,
  parseRoomPanel,
  type RoomPanelPayload,
} from "@cleanroom-lab/kernel/dist/display/room-panel.js";
import type { IopubLike } from "./sidebar.js";
import { budgetGauge } from "./payload.js";
import { h, type Child } from "./dom.js";

/**
 * The Room panel snapshot carried by an iopub message, or null (anything else, or a payload that
 * does not validate: untrusted data).
 *
 * @example roomPanelFrom(msg)?.payload.member // "retailer"
 */
export function roomPanelFrom(msg: IopubLike): { displayId: string; payload: RoomPanelPayload } | null {
  if (msg.header.msg_type !== "update_display_data") return null;
  const c = msg.content as { transient?: { display_id?: unknown }; data?: Record<string, unknown> } | null;
  const id = c?.transient?.display_id;
  if (typeof id !== "string" || !id.startsWith(ROOM_PANEL_PREFIX)) return null;
  const r = parseRoomPanel(c?.data?.[ROOM_PANEL_MIME]);
  return r.ok ? { displayId: id, payload: r.payload } : null;
}

const ABILITY: Record<string, string> = { own: "data owner", query: "can query", receive: "receives results" };
const section = (title: string, field: string, ...children: Child[]) =>
  h("div", { class: "crl-room-section", "data-field": field }, h("div", { class: "crl-room-heading" }, title), ...children);
const names = (xs: readonly string[]) => (xs.length ? xs.join(", ") : "nobody");
const tag = (text: string, tone: "good" | "bad" | "neutral") => h("span", { class: `crl-status crl-status-${tone}` }, text);

function membersList(ms: NonNullable<RoomPanelPayload["active"]>["members"], me: string): HTMLElement {
  return h(
    "ul",
    { class: "crl-room-members" },
    ...ms.map((m) =>
      h(
        "li",
        { "data-member": m.name, "data-accepted": String(m.accepted) },
        h("b", {}, m.name),
        m.name === me ? " (you)" : "",
        " · ",
        m.abilities.length ? m.abilities.map((a) => ABILITY[a] ?? a).join(", ") : "no abilities",
        " · ",
        m.accepted ? tag("✓ accepted", "good") : tag("… not accepted", "neutral"),
        h("span", { class: "crl-muted", title: `Ed25519 key fingerprint ${m.keyFingerprint}` }, ` key ${m.keyFingerprint}`),
      ),
    ),
  );
}

/** One room's block. */
export function roomBlock(p: RoomPanelPayload): HTMLElement {
  const pend = p.pending;
  const open = p.approvals.filter((a) => !a.approved);
  const done = p.approvals.filter((a) => a.approved);
  return h(
    "div",
    { class: "crl-room", "data-room": p.roomId, "data-member": p.member },
    h("div", { "data-field": "room", style: "font-weight:600;margin-top:6px" }, `room ${p.roomId} · you are ${p.member}`),
    h(
      "div",
      { class: "crl-muted", "data-field": "server" },
      `server ${p.server.url} · pinned key `,
      h("code", { "data-field": "fingerprint", title: "first 16 hex of SHA-256 of the server's X25519 key" }, p.server.fingerprint),
      p.server.matches ? "" : " ⚠ the server reports another key",
    ),
    p.stale
      ? h(
          "div",
          { class: "crl-status crl-status-bad", "data-field": "stale" },
          `last read failed — showing the previous state (${p.stale})`,
        )
      : null,
    p.rngMode === "seeded" ? h("div", { class: "crl-teaching" }, `⚠ ${p.label ?? "teaching mode — not private"}`) : null,
    p.active
      ? section(
          `Members (collaboration v${p.active.version})`,
          "members",
          p.active.description ? h("div", { class: "crl-muted" }, p.active.description) : null,
          membersList(p.active.members, p.member),
          p.active.verified
            ? h("div", { class: "crl-muted", "data-field": "verified" }, "every acceptance verified in your kernel")
            : h("div", { class: "crl-status crl-status-bad", "data-field": "verified" }, "⚠ not every acceptance verifies"),
        )
      : section(
          "Members",
          "members",
          h("div", { class: "crl-muted" }, "no active collaboration yet: nothing runs until every member accepted"),
        ),
    pend
      ? section(
          pend.kind === "change" ? `Pending change request (v${pend.version})` : `Pending collaboration (v${pend.version})`,
          "pending",
          pend.changes.length
            ? h(
                "div",
                { "data-field": "changes" },
                pend.changes.map((c) => `${c.member} ${c.change === "abilities" ? "changes abilities" : c.change}`).join("; "),
              )
            : null,
          h("div", { "data-field": "signed" }, `signed (verified): ${names(pend.signed)}`),
          h("div", { "data-field": "missing" }, `waiting for: ${names(pend.missing)}`),
          membersList(pend.members, p.member),
        )
      : null,
    section(
      "Template approvals",
      "approvals",
      p.approvals.length === 0 ? h("div", { class: "crl-muted" }, "no templates proposed") : null,
      ...[...open, ...done].map((a) =>
        h(
          "div",
          { class: "crl-room-approval", "data-template": a.name, "data-approved": String(a.approved), title: `template ${a.templateHash}` },
          h("b", {}, a.name),
          " ",
          a.approved ? tag("✓ approved", "good") : tag("pending", "neutral"),
          h("div", { "data-field": "verified" }, `signed (verified): ${names(a.verified)}`),
          a.waiting.length ? h("div", { "data-field": "waiting" }, `waiting for: ${names(a.waiting)}`) : null,
          a.forged.length
            ? h(
                "div",
                { class: "crl-status crl-status-bad", "data-field": "forged" },
                `⚠ recorded without a valid signature: ${names(a.forged)}`,
              )
            : null,
        ),
      ),
    ),
    section(
      "Budget (from the server's ledger)",
      "budget",
      p.budget && p.budget.budgets.length
        ? h("div", {}, ...p.budget.budgets.map((b) => h("div", { class: "crl-sidebar-budget" }, budgetGauge(b))))
        : h("div", { class: "crl-muted" }, p.budget ? "no budgets in this room" : "no budget until the collaboration is active"),
    ),
    h("div", { class: "crl-muted", "data-field": "read-at" }, `read from the server ${p.readAt.replace("T", " ").slice(0, 19)} UTC`),
  );
}

/**
 * Build the Room panel body for a notebook and its kernel's joined rooms.
 * @example roomPanelView("08-retailer.ipynb", [...byRoom.values()])
 */
export function roomPanelView(notebook: string | null, rooms: ReadonlyArray<RoomPanelPayload>): HTMLElement {
  const root = h(
    "div",
    { class: "crl-sidebar-body", style: "overflow-wrap:anywhere;word-break:break-word" },
    h("div", { class: "crl-sidebar-title" }, "Room"),
    h("div", { class: "crl-muted", "data-field": "notebook" }, notebook ?? "no notebook open"),
  );
  if (rooms.length === 0)
    root.appendChild(
      h(
        "div",
        { class: "crl-sidebar-empty crl-muted" },
        "No joined room. Join one with joinRoom(url, { as, identity }); this panel shows it after the next cell.",
      ),
    );
  for (const p of rooms) root.appendChild(roomBlock(p));
  return root;
}
