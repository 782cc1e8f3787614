/**
 * The Room panel's data, against a real room server process (scripts/room-server.mjs, started
 * here and killed by pid after): the read-only `roomStatus` op, and the payload a member's
 * kernel builds from it — members and acceptances, pending change requests, approvals with
 * signatures verified in the member's kernel (a forged one shows as forged), and the budget equal
 * to the server's ledger. Needs the build (kernel-lib/dist).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, describe, expect, it } from "vitest";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { createIdentity } from "../../kernel-lib/src/server/identity.js";
import { acceptCollaboration, createCollaboration, joinRoom, proposeChange } from "../../kernel-lib/src/server/client.js";
import { roomPanelPayload, type RoomStatus } from "../../kernel-lib/src/server/panel.js";
import { parseRoomPanel, roomPanelText } from "../../kernel-lib/src/display/room-panel.js";
import { approveTemplate } from "../../kernel-lib/src/verbs/room.js";
import { cleanRoomQuery } from "../../kernel-lib/src/verbs/query.js";
import { liveBudgetSnapshots, refreshRoomPanel } from "../../kernel-lib/src/verbs/live.js";
import { joinRoom as joinLive } from "../../kernel-lib/src/verbs/join.js";
import { closeAll, killAll, ledgerSpent, startServer, studyRoom } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-panel-"));
afterAll(() => {
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("Room panel data from the server (roomStatus)", () => {
  it("before the collaboration is active: a pending creation with who accepted and who is missing; no budget", async () => {
    const store = path.join(dir, "pending.db");
    const server = await startServer(store, ["--room", "lab"]);
    const a = createIdentity({ name: "advertiser", file: path.join(dir, "p-adv.key"), rng: { seed: "p-adv" } });
    const r = createIdentity({ name: "retailer", file: path.join(dir, "p-ret.key"), rng: { seed: "p-ret" } });
    const ra = await joinRoom(server.url, { as: "advertiser", identity: a, rng: { seed: "p-adv-c" } });
    await createCollaboration(ra, {
      members: [
        { name: "advertiser", publicKey: a.publicKey, abilities: ["own", "query", "receive"] },
        { name: "retailer", publicKey: r.publicKey, abilities: ["own"] },
      ],
      description: "lift study",
    });
    await acceptCollaboration(ra);
    const s = await ra.request<RoomStatus>("roomStatus");
    expect(s.budget).toBeNull();
    const p = roomPanelPayload(ra, s);
    expect(p.active).toBeNull();
    expect(p.pending?.kind).toBe("creation");
    expect(p.pending?.signed).toEqual(["advertiser"]);
    expect(p.pending?.missing).toEqual(["retailer"]);
    expect(p.pending?.members.map((m) => [m.name, m.accepted])).toEqual([
      ["advertiser", true],
      ["retailer", false],
    ]);
    expect(p.server.matches).toBe(true);
    expect(p.server.url).not.toContain("#");
    expect(roomPanelText(p)).toContain("waiting for retailer");
    ra.close();
    server.proc.kill("SIGKILL");
  });

  it("an active room: members, abilities, verified acceptances and approvals, budget = ledger; a change request and a forged approval show", async () => {
    const store = path.join(dir, "active.db");
    const server = await startServer(store, ["--room", "lab", "--epsilon", "3", "--seed", "panel"]);
    const { rooms, ids, template } = await studyRoom(server.url, dir, { queriers: ["analyst"], rows: 600, seed: "panel" });
    await cleanRoomQuery(rooms.advertiser!, {
      template,
      params: { startDay: 0, endDay: 27 },
      party: "advertiser",
      analyst: "an",
      purpose: "measurement",
    });
    let p = roomPanelPayload(rooms.retailer!, await rooms.retailer!.request<RoomStatus>("roomStatus"));
    expect(parseRoomPanel(JSON.parse(JSON.stringify(p))).ok).toBe(true);
    expect(p.member).toBe("retailer");
    expect(p.active?.verified).toBe(true);
    expect(p.active?.members.map((m) => `${m.name}:${m.abilities.join("+")}:${m.accepted}`)).toEqual([
      "advertiser:own+query+receive:true",
      "retailer:own:true",
      "analyst:query+receive:true",
    ]);
    const hash = parseTemplate(template).hash;
    const ap = p.approvals.find((x) => x.templateHash === hash)!;
    expect(ap).toMatchObject({ verified: ["advertiser", "retailer"], forged: [], waiting: [], approved: true });
    // the budget the panel shows is the server's ledger (spent per subject, as the file says)
    const spent = ledgerSpent(store);
    const shown = Object.fromEntries(p.budget!.budgets.map((b) => [`${b.scope}/${b.subject}`, b.spent]));
    expect(Object.keys(spent).length).toBeGreaterThan(0);
    for (const [k, json] of Object.entries(spent).filter(([k]) => !k.startsWith("dataset/"))) {
      const eps = (JSON.parse(json) as { epsilon?: { num: string; den: string } }).epsilon;
      if (eps !== undefined) expect(Number(shown[k]), k).toBeCloseTo(Number(eps.num) / Number(eps.den), 9);
    }
    expect(p.budget!.budgets.some((b) => b.spent > 0)).toBe(true);
    // dataset budgets by owner/name, not by content fingerprint
    expect(
      p
        .budget!.budgets.filter((b) => b.scope === "dataset")
        .map((b) => b.subject)
        .sort(),
    ).toEqual(["advertiser/exposures", "retailer/purchases"]);

    // a change request: add a member; the proposer's signature is not there until it accepts
    const extra = createIdentity({ name: "auditor", file: path.join(dir, "auditor.key"), rng: { seed: "panel-auditor" } });
    const defs = [...p.active!.members.map((m) => ({ name: m.name, publicKey: ids[m.name]!.publicKey, abilities: m.abilities }))];
    await proposeChange(rooms.advertiser!, { members: [...defs, { name: "auditor", publicKey: extra.publicKey, abilities: [] }] });
    await acceptCollaboration(rooms.advertiser!);
    p = roomPanelPayload(rooms.retailer!, await rooms.retailer!.request<RoomStatus>("roomStatus"));
    expect(p.pending?.kind).toBe("change");
    expect(p.pending?.changes).toEqual([{ member: "auditor", change: "added" }]);
    expect(p.pending?.signed).toEqual(["advertiser"]);
    expect(p.pending?.missing).toEqual(["analyst", "auditor", "retailer"]);
    expect(p.active?.version).toBe(1);

    // a forged approval: positive control — the server's own list says approved by both
    const t2 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.2", threshold: 20 });
    const h2 = parseTemplate(t2).hash;
    await approveTemplate(rooms.advertiser!, { template: t2, party: "advertiser" });
    p = roomPanelPayload(rooms.retailer!, await rooms.retailer!.request<RoomStatus>("roomStatus"));
    expect(p.approvals.find((x) => x.templateHash === h2)).toMatchObject({
      verified: ["advertiser"],
      waiting: ["retailer"],
      approved: false,
    });
    const db = new Database(store);
    db.prepare("INSERT INTO cleanroom_approvals (room_id, template_hash, party, approved_at) VALUES ('lab', ?, 'retailer', ?)").run(
      h2,
      new Date().toISOString(),
    );
    db.close();
    const raw = await rooms.retailer!.request<RoomStatus>("roomStatus");
    expect(raw.templates.find((x) => x.templateHash === h2)?.approved).toBe(true);
    p = roomPanelPayload(rooms.retailer!, raw);
    expect(p.approvals.find((x) => x.templateHash === h2)).toMatchObject({
      verified: ["advertiser"],
      forged: ["retailer"],
      approved: false,
    });
    closeAll(rooms);
    server.proc.kill("SIGKILL");
  }, 60_000);

  it("the live registry publishes a joined room's panel after a refresh; a non-member cannot read the status", async () => {
    const store = path.join(dir, "live.db");
    const server = await startServer(store, ["--room", "lab"]);
    const { rooms } = await studyRoom(server.url, dir, { rows: 300, seed: "panel-live" });
    const mine = await joinLive(server.url, {
      as: "retailer",
      identity: createIdentity({ name: "retailer", file: path.join(dir, "live-other.key"), rng: { seed: "not-the-member" } }),
      rng: { seed: "live-c" },
    });
    // a key that is not the retailer's: refused at the gate, the panel has nothing to show
    const refusals = () => {
      const db = new Database(store, { readonly: true });
      try {
        return (db.prepare("SELECT count(*) AS n FROM purpose_audit_log").get() as { n: number }).n;
      } finally {
        db.close();
      }
    };
    const n0 = refusals();
    expect(await refreshRoomPanel(mine)).toBeNull();
    const n1 = refusals();
    expect(n1).toBe(n0 + 1); // positive control: the refusal was audited
    // every refusal is audited: the live view does not ask again after every cell
    expect(await refreshRoomPanel(mine)).toBeNull();
    expect(refusals()).toBe(n1);
    mine.close();
    rooms.retailer!.close();
    const ret = await joinLive(server.url, {
      as: "retailer",
      identity: (await import("../../kernel-lib/src/server/identity.js")).loadIdentity(path.join(dir, "retailer.key")),
      rng: { seed: "live-c2" },
    });
    const reg = (globalThis as Record<symbol, { refresh?: (ms?: number) => Promise<void> }>)[Symbol.for("cleanroom-lab.live-budgets")]!;
    await reg.refresh!(5000);
    const snaps = liveBudgetSnapshots();
    const panel = snaps.find((x) => x.displayId === "cleanroom-room:lab@retailer");
    expect(panel).toBeDefined();
    const parsed = parseRoomPanel((panel!.bundle as Record<string, unknown>)["application/vnd.cleanroom-lab.room+json"]);
    expect(parsed.ok && parsed.payload.active?.members.map((m) => m.name)).toEqual(["advertiser", "retailer"]);
    expect(snaps.some((x) => x.displayId === "cleanroom-budget:lab@retailer")).toBe(true);
    // the server goes away: the panel keeps the last state, marked stale
    server.proc.kill("SIGKILL");
    await server.exited;
    await reg.refresh!(5000);
    const after = liveBudgetSnapshots().find((x) => x.displayId === "cleanroom-room:lab@retailer");
    const again = parseRoomPanel((after?.bundle as Record<string, unknown> | undefined)?.["application/vnd.cleanroom-lab.room+json"]);
    expect(again.ok && again.payload.stale).toBeTruthy();
    ret.close();
    closeAll(rooms);
  }, 60_000);
});
