/**
 * Identities, change requests and the wire, against a RoomServer in this process (real
 * sockets on 127.0.0.1; the room-server tests run it as its own process).
 */
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import util from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { createIdentity, loadIdentity, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import { RoomServer } from "../../kernel-lib/src/server/server.js";
import {
  acceptCollaboration,
  createCollaboration,
  joinRoom,
  proposeChange,
  verifyApprovals,
  type RemoteRoom,
} from "../../kernel-lib/src/server/client.js";
import { budget } from "../../kernel-lib/src/verbs/ledger.js";
import { joinRoom as joinLive } from "../../kernel-lib/src/verbs/join.js";
import { liveBudgetSnapshots, refreshLiveRoom } from "../../kernel-lib/src/verbs/live.js";
import { declarePurpose, upload } from "../../kernel-lib/src/verbs/room.js";
import { liftSchemas } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { pureDp } from "../../kernel-lib/src/dp/accountant.js";
import Database from "better-sqlite3";
import { Membership } from "../../kernel-lib/src/server/membership.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-members-"));
let server: RoomServer;
const ids: Record<string, MemberIdentity> = {};
const rooms: Record<string, RemoteRoom> = {};
afterAll(async () => {
  for (const r of Object.values(rooms)) r.close();
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

async function code(p: Promise<unknown> | (() => unknown)): Promise<string> {
  try {
    await (typeof p === "function" ? p() : p);
    return "ok";
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    return e.code;
  }
}

describe("a member identity", () => {
  it("is a 0600 key file whose secret never shows (JSON, inspect); a readable key file or a tampered one is refused", () => {
    const file = path.join(dir, "ana.key");
    const me = createIdentity({ name: "ana", file });
    expect(fs.statSync(file).mode & 0o777).toBe(0o600);
    const secret = JSON.parse(fs.readFileSync(file, "utf8")).secretKey as string;
    expect(secret).toMatch(/^[0-9a-f]{64}$/);
    expect(JSON.stringify(me)).not.toContain(secret);
    expect(util.inspect(me, { depth: 5 })).not.toContain(secret);
    expect(Object.values(me).join(" ")).not.toContain(secret);
    const again = loadIdentity(file);
    expect(again.publicKey).toBe(me.publicKey);
    expect(again.sign(new Uint8Array([1]))).toBe(me.sign(new Uint8Array([1])));
    expect(() => createIdentity({ name: "ana", file })).toThrow(/ALREADY_EXISTS|already|exists/i);
    fs.chmodSync(file, 0o644);
    let e: unknown = null;
    try {
      loadIdentity(file);
    } catch (x) {
      e = x;
    }
    expect(isCleanRoomError(e, "ACCESS_DENIED")).toBe(true);
    fs.chmodSync(file, 0o600);
    const o = JSON.parse(fs.readFileSync(file, "utf8"));
    fs.writeFileSync(file, JSON.stringify({ ...o, publicKey: "00".repeat(32) }));
    expect(() => loadIdentity(file)).toThrow(/public key/);
  });
});

describe("fixed membership changes only when every member signs", () => {
  beforeAll(async () => {
    server = await RoomServer.start({ store: path.join(dir, "room.db"), budget: { epsilon: 3, perParty: 1 }, rng: { seed: "members" } });
    for (const n of ["a", "b", "c"]) {
      ids[n] = createIdentity({ name: n, file: path.join(dir, `${n}.key`), rng: { seed: `id-${n}` } });
      rooms[n] = await joinRoom(server.url, { as: n, identity: ids[n]!, rng: { seed: `join-${n}` } });
    }
    await createCollaboration(rooms.a!, {
      members: [
        { name: "a", publicKey: ids.a!.publicKey, abilities: ["own", "query", "receive"] },
        { name: "b", publicKey: ids.b!.publicKey, abilities: ["own"] },
      ],
    });
    await acceptCollaboration(rooms.a!);
    await acceptCollaboration(rooms.b!);
  });

  it("a member not yet added cannot act; a change signed by some is pending and changes nothing; signed by all, it is active", async () => {
    expect(await code(budget(rooms.c!))).toBe("NOT_A_MEMBER");
    const change = await proposeChange(rooms.a!, {
      members: [
        { name: "a", publicKey: ids.a!.publicKey, abilities: ["own", "query", "receive"] },
        { name: "b", publicKey: ids.b!.publicKey, abilities: ["own", "query", "receive"] },
        { name: "c", publicKey: ids.c!.publicKey, abilities: ["query"] },
      ],
    });
    expect(change.pending!.missing).toEqual(["a", "b", "c"]);
    await acceptCollaboration(rooms.a!);
    await acceptCollaboration(rooms.c!); // c may sign the definition that names it, nothing else
    expect(await code(budget(rooms.c!))).toBe("STATE_INVALID");
    // b still has its old abilities while the change is pending
    expect(await code(declarePurpose(rooms.b!, { party: "b", analyst: "x", purpose: "measurement", justification: "b still acts" }))).toBe(
      "ok",
    );
    const v = await acceptCollaboration(rooms.b!);
    expect(v.active!.definition.version).toBe(2);
    expect(v.pending).toBeNull();
    const b = await budget(rooms.c!);
    expect(b.budgets.map((x) => `${x.scope}/${x.subject}`)).toContain("party/c");
    const check = await verifyApprovals(rooms.c!);
    expect(check.collaboration!.ok).toBe(true);
    expect(check.collaboration!.members).toEqual(["a", "b", "c"]);
  });

  it("budget on a joined room takes the same options as on a lab (named query costs, an accuracy target)", async () => {
    const b = await budget(rooms.a!, {
      queries: [{ name: "lift", cost: pureDp("0.5") }],
      target: { accuracy: 50, confidence: 0.95, sensitivity: 1n },
    });
    const collab = b.budgets.find((x) => x.scope === "collaboration")!;
    expect(collab.buys.map((x) => x.name)).toContain("lift");
  });

  it("a change request by a non-member or out of sequence is refused; a second one while one is pending too", async () => {
    const spec = [{ name: "a", publicKey: ids.a!.publicKey, abilities: ["own" as const] }];
    const outsider = createIdentity({ name: "z", file: path.join(dir, "z.key") });
    const z = await joinRoom(server.url, { as: "z", identity: outsider });
    expect(await code(proposeChange(z, { members: spec }))).toBe("NOT_A_MEMBER");
    z.close();
    await proposeChange(rooms.a!, { members: spec });
    expect(await code(proposeChange(rooms.a!, { members: spec }))).toBe("STATE_INVALID");
    // a member checks the pending definition in its own kernel before signing: b is not named in it
    // (it would be dropped), and a pins the member list it was told about
    expect(await code(acceptCollaboration(rooms.b!))).toBe("SIGNATURE_INVALID");
    expect(await code(acceptCollaboration(rooms.a!, { expectMembers: ["a", "b"] }))).toBe("SIGNATURE_INVALID");
    expect((await verifyApprovals(rooms.a!)).collaboration!.members).toEqual(["a", "b", "c"]); // nothing signed, nothing changed
  });

  it("the live budget (what the sidebar shows) follows the server's ledger for a joined room", async () => {
    const live = await joinLive(server.url, { as: "b", identity: ids.b! });
    const id = "cleanroom-budget:lab@b";
    expect(liveBudgetSnapshots().some((x) => x.displayId === id)).toBe(false); // nothing asked yet
    await budget(live);
    const snap = liveBudgetSnapshots().find((x) => x.displayId === id)!;
    const payload = snap.bundle["application/vnd.cleanroom-lab.v1+json"] as { kind: string; budgets: { scope: string; subject: string }[] };
    expect(payload.kind).toBe("budget");
    expect(payload.budgets.map((b) => `${b.scope}/${b.subject}`)).toContain("party/b");
    // a change refreshes it from the server
    await declarePurpose(live, { party: "b", analyst: "x", purpose: "measurement", justification: "live view" });
    await upload(live, {
      party: "b",
      name: "live_rows",
      rows: [{ join_key: "q1", day: 1, value_cents: 5 }],
      schema: liftSchemas().purchases,
      purposes: ["measurement"],
    }).catch(() => undefined);
    await refreshLiveRoom(live);
    expect(liveBudgetSnapshots().some((x) => x.displayId === id)).toBe(true);
    live.close();
    expect(liveBudgetSnapshots().some((x) => x.displayId === id)).toBe(false);
  });

  it("joinRoom refuses an unpinned server, a name that is not the identity's, a URL off 127.0.0.1", async () => {
    const unpinned = server.url.replace(/#.*$/, "");
    expect(await code(joinRoom(unpinned, { as: "a", identity: ids.a! }))).toBe("PARAM_INVALID");
    expect(await code(joinRoom(server.url, { as: "b", identity: ids.a! }))).toBe("ACCESS_DENIED");
    expect(await code(joinRoom(server.url.replace("127.0.0.1", "10.0.0.1"), { as: "a", identity: ids.a! }))).toBe("PARAM_INVALID");
    // positive control: the same call with the pinned URL and the right name joins
    const ok = await joinRoom(server.url, { as: "a", identity: ids.a! });
    ok.close();
  });

  it("the wire carries no row, key or name beyond the socket hello (a relay records every byte)", async () => {
    const bytes: Buffer[] = [];
    const relay = net.createServer((inbound) => {
      const out = net.connect({ host: "127.0.0.1", port: server.port });
      inbound.on("data", (d) => (bytes.push(Buffer.from(d)), out.write(d)));
      out.on("data", (d) => (bytes.push(Buffer.from(d)), inbound.write(d)));
      inbound.on("close", () => out.destroy());
      out.on("close", () => inbound.destroy());
    });
    await new Promise<void>((r) => relay.listen(0, "127.0.0.1", () => r()));
    const port = (relay.address() as net.AddressInfo).port;
    const url = server.url.replace(`:${server.port}/`, `:${port}/`);
    const a = await joinRoom(url, { as: "a", identity: ids.a!, rng: { seed: "relay" } });
    const canary = "canary.person@example.com";
    const rows = [{ join_key: "jk-7f3a9c", day: 1, value_cents: 77 }];
    // the upload carries its rows and the purpose its justification: both cross the wire, sealed
    await code(upload(a, { party: "a", name: "p", rows, schema: liftSchemas().purchases, purposes: ["measurement"], analyst: "x" }));
    await code(declarePurpose(a, { party: "a", analyst: "x", purpose: "measurement", justification: canary }));
    a.close();
    relay.close();
    const wire = Buffer.concat(bytes).toString("latin1");
    expect(wire).toContain('"a"'); // positive control: the socket hello names the member in clear
    for (const s of [canary, "jk-7f3a9c", "justification", "value_cents", ids.a!.publicKey]) expect(wire.includes(s), s).toBe(false);
  });
});

describe("freshness per member session (Membership.admit)", () => {
  it("seq is ordered per session, nonces are unique per member, and a session idle for twice the window is forgotten", () => {
    const db = new Database(":memory:");
    const m = new Membership(db, "lab");
    const code = (f: () => void) => {
      try {
        f();
        return "ok";
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    const t = 1_000_000;
    expect(code(() => m.admit("ann", "s1", 10, "n1", t, 1000))).toBe("ok");
    expect(code(() => m.admit("ann", "s2", 5, "n2", t, 1000))).toBe("ok"); // another session: its own order
    expect(code(() => m.admit("ann", "s1", 9, "n3", t, 1000))).toBe("REQUEST_REORDER");
    expect(code(() => m.admit("ann", "s2", 6, "n1", t, 1000))).toBe("REQUEST_REPLAY"); // s1's nonce
    expect(code(() => m.admit("bob", "s1", 1, "n1", t, 1000))).toBe("ok"); // another member's nonces are its own
    expect(m.sessions("ann")).toBe(2);
    expect(code(() => m.admit("ann", "s3", 1, "n4", t + 2500, 1000))).toBe("ok");
    expect(m.sessions("ann")).toBe(1); // s1 and s2: every request they carried is stale by now
    db.close();
  });
});
