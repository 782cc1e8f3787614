/**
 * A class in a room (issue 13): one scripts/room-server.mjs process started with `--class 30`
 * makes 15 pair rooms and 30 single-use invitation codes (stored hashed); 30 students — each
 * its own Ed25519 identity, in-process clients over real sockets — redeem them, and every pair's
 * collaboration is active once both of its students signed it. Reused, forged, expired and
 * wrong-seat codes are refused (one typed error, audited, nothing registered); a student cannot
 * act in another pair's room.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { createIdentity, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import { acceptCollaboration, joinRoom, type RemoteRoom } from "../../kernel-lib/src/server/client.js";
import type { CollaborationView } from "../../kernel-lib/src/server/membership.js";
import type { Invitation } from "../../kernel-lib/src/server/invitations.js";
import { audit } from "../../kernel-lib/src/verbs/ledger.js";
import { killAll, startServer, type ServerProc } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "invitations-"));
const store = path.join(dir, "class.db");
let server: ServerProc;
let codes: Invitation[];
const students: { inv: Invitation; id: MemberIdentity; room?: RemoteRoom }[] = [];
const extra: RemoteRoom[] = [];

async function refusedWith(p: Promise<unknown>, code: string, field?: string): Promise<void> {
  try {
    await p;
  } catch (e) {
    expect(isCleanRoomError(e), String(e)).toBe(true);
    expect((e as { code: string }).code, (e as Error).message).toBe(code);
    if (field) expect((e as { details: { field: string } }).details.field).toBe(field);
    return;
  }
  throw new Error(`expected ${code}, got success`);
}

function auditOf(room: string): { action: string; party: string; outcome: string; errorCode: string | null }[] {
  const db = new Database(store, { readonly: true });
  try {
    return (db.prepare("SELECT entry FROM purpose_audit_log WHERE room_id = ? ORDER BY seq").all(room) as { entry: string }[]).map((r) => {
      const e = JSON.parse(r.entry);
      return { action: e.action, party: e.who.party, outcome: e.outcome, errorCode: e.errorCode };
    });
  } finally {
    db.close();
  }
}

function seatCount(): number {
  const db = new Database(store, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM server_seats").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const newId = (name: string, tag: string) =>
  createIdentity({ name, file: path.join(dir, tag, `${name}.key`), rng: { seed: `inv-${tag}-${name}` } });

beforeAll(async () => {
  server = await startServer(store, ["--room", "class", "--class", "30", "--epsilon", "3", "--seed", "invitations-test"]);
  const file = `${store}.invitations.json`;
  expect(fs.statSync(file).mode & 0o777).toBe(0o600);
  codes = JSON.parse(fs.readFileSync(file, "utf8"));
  codes.forEach((inv, i) => students.push({ inv, id: newId(inv.seat, `s${i}`) }));
}, 60_000);

afterAll(() => {
  for (const s of students) s.room?.close();
  for (const r of extra) r.close();
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("a class in a room: 30 students, 15 pairs, invitation codes", () => {
  it("the teacher's file holds 30 distinct codes for 15 pair rooms; the database holds none of them in plaintext", () => {
    expect(codes).toHaveLength(30);
    expect(new Set(codes.map((c) => c.code)).size).toBe(30);
    expect(new Set(codes.map((c) => c.room)).size).toBe(15);
    for (const c of codes) expect(c.code).toMatch(new RegExp(`^${c.room}-${c.seat}-[a-z2-9]{10}$`));
    // every byte of the database files (the teacher's own <store>.invitations.json aside)
    const bytes = fs
      .readdirSync(dir)
      .filter((f) => f.startsWith("class.db") && !f.endsWith(".invitations.json"))
      .map((f) => fs.readFileSync(path.join(dir, f)).toString("latin1"))
      .join("");
    expect(bytes.length).toBeGreaterThan(4096);
    for (const c of codes) expect(bytes.includes(c.code.slice(-10))).toBe(false);
  });

  it("30 students redeem their codes concurrently and land in their own pair's room, pending until both signed", async () => {
    await Promise.all(
      students.map(async (s, i) => {
        s.room = await joinRoom(server.url, { as: s.inv.seat, identity: s.id, invitation: s.inv.code, rng: { seed: `inv-c${i}` } });
        expect(s.room.roomId).toBe(s.inv.room);
        expect(s.room.url).toBe(server.url.replace("/class#", `/${s.inv.room}#`));
      }),
    );
    // every pair now has a pending definition listing exactly its two students' keys
    for (const s of students) {
      const v = await s.room!.request<CollaborationView>("collab.status");
      expect(v.active).toBeNull();
      const mates = students.filter((x) => x.inv.room === s.inv.room);
      expect(v.pending!.definition.members.map((m) => [m.name, m.publicKey]).sort()).toEqual(
        mates.map((x) => [x.inv.seat, x.id.publicKey]).sort(),
      );
    }
    // nothing runs before both accepted
    const r = students.find((s) => s.inv.seat === "retailer")!;
    await refusedWith(r.room!.request("budget", { input: {} }), "STATE_INVALID");
    await Promise.all(students.map((s) => acceptCollaboration(s.room!)));
    for (const s of students) {
      const v = await s.room!.request<CollaborationView>("collab.status");
      expect(v.active?.definition.members.map((m) => m.name).sort()).toEqual(["advertiser", "retailer"]);
      expect(Object.keys(v.active!.acceptances).sort()).toEqual(["advertiser", "retailer"]);
    }
    expect(seatCount()).toBe(30);
  }, 120_000);

  it("a used code is refused for any other key, typed and audited; the same student re-joining with it is harmless", async () => {
    const s = students[0]!;
    const thief = newId(s.inv.seat, "thief");
    await refusedWith(joinRoom(server.url, { as: s.inv.seat, identity: thief, invitation: s.inv.code }), "ACCESS_DENIED", "invitation");
    const again = await joinRoom(server.url, { as: s.inv.seat, identity: s.id, invitation: s.inv.code });
    extra.push(again);
    expect(again.roomId).toBe(s.inv.room);
    const refusals = auditOf("class").filter((e) => e.action === "room.invite.redeem" && e.outcome === "refused");
    expect(refusals.length).toBeGreaterThanOrEqual(1);
    expect(refusals.every((e) => e.errorCode === "ACCESS_DENIED")).toBe(true);
    expect(seatCount()).toBe(30);
  });

  it("forged codes (right form, wrong secret; another pair's number; another seat) are refused with the same error", async () => {
    const before = auditOf("class").filter((e) => e.outcome === "refused").length;
    const s = students[2]!;
    const forged = [
      s.inv.code.slice(0, -10) + "abcdefghjk",
      `pair-99-${s.inv.seat}-${s.inv.code.slice(-10)}`,
      s.inv.code.replace(`-${s.inv.seat}-`, `-${s.inv.seat === "retailer" ? "advertiser" : "retailer"}-`),
    ];
    for (const [i, code] of forged.entries()) {
      const id = newId(s.inv.seat, `forger${i}`);
      await refusedWith(joinRoom(server.url, { as: s.inv.seat, identity: id, invitation: code }), "ACCESS_DENIED", "invitation");
    }
    // a real, unused-looking code presented for the other seat: `as` must be the code's seat
    const other = newId(s.inv.seat === "retailer" ? "advertiser" : "retailer", "seat-swap");
    await refusedWith(joinRoom(server.url, { as: other.name, identity: other, invitation: s.inv.code }), "ACCESS_DENIED", "invitation");
    const after = auditOf("class").filter((e) => e.outcome === "refused" && e.action === "room.invite.redeem").length;
    expect(after - before).toBe(4);
    expect(seatCount()).toBe(30);
  });

  it("a student cannot act in another pair's room, nor take a seat there with its own key", async () => {
    const me = students.find((s) => s.inv.room === "pair-01" && s.inv.seat === "retailer")!;
    const url2 = server.url.replace("/class#", "/pair-02#");
    // same seat name, my key: pair-02's retailer is someone else's key
    const intruder = await joinRoom(url2, { as: "retailer", identity: me.id });
    extra.push(intruder);
    await refusedWith(intruder.request("collab.status"), "SIGNATURE_INVALID");
    await refusedWith(intruder.request("datasets", { input: {} }), "SIGNATURE_INVALID");
    // a name that is no member of pair-02
    const eve = newId("eve", "eve");
    const eveRoom = await joinRoom(url2, { as: "eve", identity: eve });
    extra.push(eveRoom);
    await refusedWith(eveRoom.request("collab.status"), "NOT_A_MEMBER");
    // pair-02's own members are unaffected and see only themselves
    const p2 = students.filter((s) => s.inv.room === "pair-02");
    const v = await p2[0]!.room!.request<CollaborationView>("collab.status");
    expect(v.active!.definition.members.map((m) => m.publicKey).sort()).toEqual(p2.map((s) => s.id.publicKey).sort());
    expect(v.pending).toBeNull();
    const refused = auditOf("pair-02").filter((e) => e.outcome === "refused");
    expect(refused.length).toBeGreaterThanOrEqual(3);
  });

  it("kill -9 of the class server and a restart keep the class: no new codes, used codes stay used, pairs stay active", async () => {
    const file = `${store}.invitations.json`;
    const before = fs.readFileSync(file, "utf8");
    for (const s of students) s.room?.close();
    server.proc.kill("SIGKILL");
    await server.exited;
    server = await startServer(store, ["--room", "class", "--class", "30", "--epsilon", "3", "--seed", "invitations-test"]);
    expect(fs.readFileSync(file, "utf8")).toBe(before);
    expect(seatCount()).toBe(30);
    // every student rejoins its pair room's URL (new port, same key) without a code
    for (const [i, s] of students.entries()) {
      s.room = await joinRoom(server.url.replace("/class#", `/${s.inv.room}#`), {
        as: s.inv.seat,
        identity: s.id,
        rng: { seed: `inv-r${i}` },
      });
      const v = await s.room.request<CollaborationView>("collab.status");
      expect(v.active?.definition.members.find((m) => m.name === s.inv.seat)?.publicKey).toBe(s.id.publicKey);
    }
    const thief = newId(students[5]!.inv.seat, "thief-after-restart");
    await refusedWith(
      joinRoom(server.url, { as: students[5]!.inv.seat, identity: thief, invitation: students[5]!.inv.code }),
      "ACCESS_DENIED",
      "invitation",
    );
    const a = await audit(students[0]!.room!, { limit: 5 });
    expect(a.verification.ok).toBe(true);
  }, 120_000);

  it("a seat holder cannot write its pair's collaboration itself before the mate joins", async () => {
    // a fresh server with 2 students: one seat taken, the other not
    const store2 = path.join(dir, "solo.db");
    const s2 = await startServer(store2, ["--room", "class", "--class", "2", "--seed", "inv-solo"]);
    const inv: Invitation[] = JSON.parse(fs.readFileSync(`${store2}.invitations.json`, "utf8"));
    const r = inv.find((c) => c.seat === "retailer")!;
    const id = newId("retailer", "solo");
    const room = await joinRoom(s2.url, { as: "retailer", identity: id, invitation: r.code });
    extra.push(room);
    const v = await room.request<CollaborationView>("collab.status");
    expect(v.active).toBeNull();
    expect(v.pending).toBeNull();
    const friend = newId("advertiser", "friend");
    await refusedWith(
      room.request("collab.create", {
        definition: {
          room: room.roomId,
          version: 1,
          previous: null,
          members: [
            { name: "retailer", publicKey: id.publicKey, abilities: ["own", "query", "receive"] },
            { name: "advertiser", publicKey: friend.publicKey, abilities: ["own"] },
          ],
        },
      }),
      "ACCESS_DENIED",
      "op",
    );
    s2.proc.kill("SIGKILL");
  }, 30_000);

  it("a new class refuses to start over a stale invitations file (before making any code), typed", async () => {
    const store4 = path.join(dir, "stale.db");
    fs.writeFileSync(`${store4}.invitations.json`, "[]\n", { mode: 0o600 });
    await expect(startServer(store4, ["--room", "class", "--class", "4"])).rejects.toThrow(/ALREADY_EXISTS/);
    const db = new Database(store4, { readonly: true });
    try {
      expect((db.prepare("SELECT count(*) AS n FROM server_invites").get() as { n: number }).n).toBe(0);
    } finally {
      db.close();
    }
  }, 30_000);

  it("an expired code is refused", async () => {
    const store3 = path.join(dir, "expiring.db");
    const s3 = await startServer(store3, ["--room", "class", "--class", "2", "--invite-ttl-ms", "300"]);
    const inv: Invitation[] = JSON.parse(fs.readFileSync(`${store3}.invitations.json`, "utf8"));
    await new Promise((r) => setTimeout(r, 500));
    const id = newId(inv[0]!.seat, "late");
    await refusedWith(joinRoom(s3.url, { as: inv[0]!.seat, identity: id, invitation: inv[0]!.code }), "ACCESS_DENIED", "invitation");
    s3.proc.kill("SIGKILL");
  }, 30_000);
});
