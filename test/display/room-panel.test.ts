// @vitest-environment happy-dom
/**
 * The Room panel: the payload a member's kernel builds from a `roomStatus` answer (signatures
 * verified here, with seeded member keys) and the extension's view of it (roomPanelFrom +
 * roomPanelView). Attack with a positive control: an approval and an acceptance the server claims
 * without a valid signature show as forged / not accepted, while the same data with the real
 * signatures shows verified. The server-side op runs against a real process in
 * test/server/room-panel.test.ts.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it, vi } from "vitest";

vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/progress-view.js", () => import("../../kernel-lib/src/display/progress-view.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/room-panel.js", () => import("../../kernel-lib/src/display/room-panel.js"));

import { createIdentity, fingerprintOf, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import { collaborationHash, statementBytes, type CollaborationDef } from "../../kernel-lib/src/server/protocol.js";
import { roomPanelPayload, type RoomStatus } from "../../kernel-lib/src/server/panel.js";
import { ROOM_PANEL_MIME, parseRoomPanel, type RoomPanelPayload } from "../../kernel-lib/src/display/room-panel.js";
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import { roomPanelFrom, roomPanelView } from "../../extension/src/views/room.js";
import { liveBudgetFrom } from "../../extension/src/views/sidebar.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-panel-view-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
const id = (name: string) => createIdentity({ name, file: path.join(dir, `${name}.key`), rng: { seed: `panel-view-${name}` } });
const ids: Record<string, MemberIdentity> = {
  "advertiser-with-a-long-name": id("advertiser-with-a-long-name"),
  retailer: id("retailer"),
  analyst: id("analyst"),
};
const ADV = "advertiser-with-a-long-name";
const SERVER_KEY = "11".repeat(32);
const TH = "ab".repeat(32);
const text = (el: Element | null) => (el?.textContent ?? "").replace(/\s+/g, " ").trim();

const def: CollaborationDef = {
  room: "lift-room",
  version: 1,
  previous: null,
  description: "lift study between the advertiser and the retailer",
  members: [
    { name: ADV, publicKey: ids[ADV]!.publicKey, abilities: ["own", "query", "receive"] },
    { name: "retailer", publicKey: ids.retailer!.publicKey, abilities: ["own"] },
  ],
};
const h1 = collaborationHash(def);
const accept = (m: string, hash: string) =>
  ids[m]!.sign(statementBytes({ statement: "accept", room: "lift-room", collaboration: hash, member: m }));
const approve = (m: string) => ids[m]!.sign(statementBytes({ statement: "approve", room: "lift-room", templateHash: TH, member: m }));
const def2: CollaborationDef = {
  ...def,
  version: 2,
  previous: h1,
  members: [...def.members, { name: "analyst", publicKey: ids.analyst!.publicKey, abilities: ["query", "receive"] }],
};
const h2 = collaborationHash(def2);

function status(o: { forgeApproval?: boolean; forgeAcceptance?: boolean } = {}): RoomStatus {
  return {
    room: "lift-room",
    protocol: "cleanroom-lab/room/v1",
    publicKey: SERVER_KEY,
    fingerprint: fingerprintOf(SERVER_KEY),
    member: "retailer",
    collaboration: {
      active: {
        hash: h1,
        definition: def,
        // a forged acceptance: the retailer's signature over another hash
        acceptances: { [ADV]: accept(ADV, h1), retailer: o.forgeAcceptance ? accept("retailer", h2) : accept("retailer", h1) },
      },
      pending: { hash: h2, definition: def2, acceptances: { [ADV]: accept(ADV, h2) }, missing: ["analyst", "retailer"] },
    },
    templates: [
      {
        templateHash: TH,
        name: "lift-by-exposure",
        owners: [ADV, "retailer"],
        approvedBy: o.forgeApproval ? [ADV, "retailer"] : [ADV],
        approved: !!o.forgeApproval,
        // the operator wrote the retailer's approval row but cannot sign for it
        signatures: [
          { member: ADV, signature: approve(ADV) },
          ...(o.forgeApproval ? [{ member: "retailer", signature: approve(ADV) }] : []),
        ],
      },
    ],
    budget: {
      roomId: "lift-room",
      budgets: [],
      overall: [],
      text: "",
      rngMode: "secure",
    },
  };
}
const room = {
  roomId: "lift-room",
  member: "retailer",
  url: `cleanroom://127.0.0.1:7700/lift-room#${SERVER_KEY}`,
  serverKey: SERVER_KEY,
  publicKey: ids.retailer!.publicKey,
};
const msg = (p: unknown, displayId = "cleanroom-room:lift-room@retailer", type = "update_display_data") => ({
  header: { msg_type: type },
  content: { data: { [ROOM_PANEL_MIME]: p, "text/plain": "room" }, transient: { display_id: displayId } },
});

describe("Room panel payload (verified in the member's kernel)", () => {
  it("members, acceptances, a pending change request and approvals with verified signatures", () => {
    const p = roomPanelPayload(room, status());
    expect(parseRoomPanel(JSON.parse(JSON.stringify(p))).ok).toBe(true);
    expect(p.server).toEqual({ url: "cleanroom://127.0.0.1:7700/lift-room", fingerprint: fingerprintOf(SERVER_KEY), matches: true });
    expect(p.active?.verified).toBe(true);
    expect(p.active?.members.map((m) => [m.name, m.accepted])).toEqual([
      [ADV, true],
      ["retailer", true],
    ]);
    expect(p.pending).toMatchObject({ kind: "change", version: 2, signed: [ADV], missing: ["analyst", "retailer"] });
    expect(p.pending?.changes).toEqual([{ member: "analyst", change: "added" }]);
    expect(p.approvals[0]).toMatchObject({ verified: [ADV], forged: [], waiting: ["retailer"], approved: false });
  });

  it("attack: an approval and an acceptance the server records without a valid signature show as forged / not accepted", () => {
    // positive control: what the server claims says approved and accepted
    const s = status({ forgeApproval: true, forgeAcceptance: true });
    expect(s.templates[0]!.approved).toBe(true);
    expect(Object.keys(s.collaboration.active!.acceptances)).toContain("retailer");
    const p = roomPanelPayload(room, s);
    expect(p.approvals[0]).toMatchObject({ verified: [ADV], forged: ["retailer"], waiting: [], approved: false });
    expect(p.active?.members.find((m) => m.name === "retailer")?.accepted).toBe(false);
    expect(p.active?.verified).toBe(false);
  });

  it("a server reporting another key than the pinned one is flagged", () => {
    const p = roomPanelPayload(room, { ...status(), fingerprint: fingerprintOf("22".repeat(32)) });
    expect(p.server.matches).toBe(false);
  });
});

describe("Room panel view (extension)", () => {
  const payload = (o?: Parameters<typeof status>[0]): RoomPanelPayload => JSON.parse(JSON.stringify(roomPanelPayload(room, status(o))));

  it("takes snapshots only from update_display_data with a cleanroom-room display id and a valid payload; the budget sidebar ignores them", () => {
    expect(roomPanelFrom(msg(payload()))?.payload.member).toBe("retailer");
    expect(roomPanelFrom(msg(payload(), "cleanroom-budget:lift-room"))).toBeNull();
    expect(roomPanelFrom(msg(payload(), undefined, "display_data"))).toBeNull();
    expect(roomPanelFrom(msg({ ...payload(), approvals: "oops" }))).toBeNull();
    expect(liveBudgetFrom(msg(payload()))).toBeNull();
    expect(
      roomPanelFrom({
        header: { msg_type: "update_display_data" },
        content: { data: { [CLEANROOM_MIME]: payload() }, transient: { display_id: "cleanroom-room:x" } },
      }),
    ).toBeNull();
  });

  it("shows the server and pinned fingerprint, members by name with abilities, the change request, approvals and who is missing", () => {
    const el = roomPanelView("08-retailer.ipynb", [payload()]);
    const block = el.querySelector('[data-room="lift-room"]')!;
    expect(text(block.querySelector('[data-field="server"]'))).toBe(
      `server cleanroom://127.0.0.1:7700/lift-room · pinned key ${fingerprintOf(SERVER_KEY)}`,
    );
    expect(text(block.querySelector('[data-field="room"]'))).toBe("room lift-room · you are retailer");
    const members = [...block.querySelectorAll('[data-field="members"] li')].map((li) => [
      li.getAttribute("data-member"),
      li.getAttribute("data-accepted"),
    ]);
    expect(members).toEqual([
      [ADV, "true"],
      ["retailer", "true"],
    ]);
    expect(text(block.querySelector('[data-field="members"] [data-member="retailer"]'))).toContain(
      "retailer (you) · data owner · ✓ accepted",
    );
    expect(text(block.querySelector('[data-field="pending"] [data-field="changes"]'))).toBe("analyst added");
    expect(text(block.querySelector('[data-field="pending"] [data-field="signed"]'))).toBe(`signed (verified): ${ADV}`);
    expect(text(block.querySelector('[data-field="pending"] [data-field="missing"]'))).toBe("waiting for: analyst, retailer");
    const ap = block.querySelector('[data-template="lift-by-exposure"]')!;
    expect(ap.getAttribute("data-approved")).toBe("false");
    expect(text(ap.querySelector('[data-field="waiting"]'))).toBe("waiting for: retailer");
    // names, not hashes: the template hash only on hover
    expect(text(block)).not.toContain(TH);
    expect(ap.getAttribute("title")).toBe(`template ${TH}`);
    expect((el as HTMLElement).getAttribute("style")).toContain("overflow-wrap:anywhere");
  });

  it("a forged approval is shown as such; a stale read says so; no room shows how to join", () => {
    const forged = roomPanelView("nb", [{ ...payload({ forgeApproval: true }), stale: "NETWORK: the server did not answer" }]);
    expect(text(forged.querySelector('[data-field="forged"]'))).toBe("⚠ recorded without a valid signature: retailer");
    expect(text(forged.querySelector('[data-field="stale"]'))).toContain("last read failed");
    expect(text(roomPanelView("nb", []))).toContain("No joined room");
  });
});
