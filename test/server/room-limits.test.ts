/**
 * What an anonymous peer may cost the room server (server/limits.ts), over real sockets on
 * 127.0.0.1 against an in-process RoomServer: the frame bound before a connection authenticated
 * (measured: the largest request a member sends first fits it), refusals per connection and per
 * remote, and the audit chain growing by a bounded number of entries however many frames a
 * non-member sends. Every defence has its positive control: the same attack with the limit
 * turned off does what the defence prevents.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { RoomServer } from "../../kernel-lib/src/server/server.js";
import { PRE_AUTH_FRAME_BYTES, type RefusalLimits } from "../../kernel-lib/src/server/limits.js";
import { createIdentity, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import {
  PRE_AUTH_REQUEST_BYTES,
  acceptCollaboration,
  createCollaboration,
  joinRoom,
  type RemoteRoom,
} from "../../kernel-lib/src/server/client.js";
import { ROOM_PROTOCOL, type CollaborationDef, type RoomResponse } from "../../kernel-lib/src/server/protocol.js";
import { connect } from "../../kernel-lib/src/transport/socket.js";
import { secureTransport } from "../../kernel-lib/src/transport/secure.js";
import { linkedPair, type Transport } from "../../kernel-lib/src/transport/transport.js";
import { fromHex, x25519KeyPair } from "../../kernel-lib/src/crypto/primitives.js";
import { makeRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { killAll, startServer } from "./helpers.js";
import { auditPayloadFromReport } from "../../kernel-lib/src/display/from-results.js";
import { upload } from "../../kernel-lib/src/verbs/room.js";
import { liftSchemas, liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-limits-"));
const servers: RoomServer[] = [];
const handles: RemoteRoom[] = [];
afterAll(async () => {
  for (const h of handles) h.close();
  killAll();
  for (const s of servers) await s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

let n = 0;
async function server(limits?: Partial<RefusalLimits>): Promise<RoomServer> {
  const s = await RoomServer.start({
    store: path.join(dir, `room-${++n}.db`),
    budget: { epsilon: 3 },
    rng: { seed: `limits-${n}` },
    ...(limits ? { limits } : {}),
  });
  servers.push(s);
  return s;
}

const ids: Record<string, MemberIdentity> = {};
const identity = (name: string) =>
  (ids[name] ??= createIdentity({ name, file: path.join(dir, `${name}.key`), rng: { seed: `limits-id-${name}` } }));

async function join(s: { url: string }, name: string): Promise<RemoteRoom> {
  const h = await joinRoom(s.url, { as: name, identity: identity(name), rng: { seed: `limits-${name}-${handles.length}` } });
  handles.push(h);
  return h;
}

/** A room whose collaboration (one owner, "retailer") is active. */
async function activeRoom(s: RoomServer): Promise<RemoteRoom> {
  const r = await join(s, "retailer");
  await createCollaboration(r, { members: [{ name: "retailer", publicKey: identity("retailer").publicKey, abilities: ["own"] }] });
  await acceptCollaboration(r);
  return r;
}

/** An anonymous connection: the channel to the server (pinned key), no member key at all. */
async function anonymous(s: RoomServer): Promise<Transport> {
  const rng = makeRng({ seed: `anon-${Math.random()}` });
  const sock = await connect({ self: "anon", peer: "room", port: s.port });
  return secureTransport(sock, "initiator", {
    rng: rng.fork("session"),
    staticKey: x25519KeyPair(rng.fork("key")),
    peerStaticPublicKey: fromHex(s.publicKey),
  });
}

/** Send one request on a raw link: the response, or "closed" if the server ended the connection instead. */
async function ask(link: Transport, req: unknown): Promise<RoomResponse | "closed"> {
  try {
    await link.send(ROOM_PROTOCOL, "request", req as never);
    return (await link.receive({ protocol: ROOM_PROTOCOL, kind: "response" })).body as unknown as RoomResponse;
  } catch (e) {
    expect(isCleanRoomError(e), String(e)).toBe(true);
    expect((e as { details?: { reason?: string } }).details?.reason).toMatch(/peer-closed|closed/);
    return "closed";
  }
}

const code = (r: RoomResponse | "closed") => (r === "closed" ? "closed" : r.ok ? "ok" : r.error.code);

/** The server's audit entries (its own database). */
function auditRows(s: RoomServer): { action: string; party: string; errorCode: string | null; count?: number }[] {
  return (
    s.lab.db.prepare("SELECT entry FROM purpose_audit_log WHERE room_id = ? ORDER BY seq").all(s.lab.roomId) as { entry: string }[]
  ).map((r) => {
    const e = JSON.parse(r.entry);
    return { action: e.action, party: e.who.party, errorCode: e.errorCode, ...(e.count !== undefined ? { count: e.count } : {}) };
  });
}

const unauthenticated = (s: RoomServer) => auditRows(s).filter((r) => r.party === "unauthenticated");
const refusedTotal = (s: RoomServer) => unauthenticated(s).reduce((a, r) => a + (r.count ?? 1), 0);

describe("frames before a connection authenticated", () => {
  it("measured: the largest request a member sends first (a full collab.create) fits the pre-authentication bound", async () => {
    // the wire size of a request under the channel, measured on the inner transport
    const sizes: number[] = [];
    const [a, b] = linkedPair("retailer", "room", { tap: (_e, wire) => sizes.push(Buffer.byteLength(wire)) });
    const rng = makeRng({ seed: "measure" });
    const [ca] = await Promise.all([
      secureTransport(a, "initiator", { rng: rng.fork("a") }),
      secureTransport(b, "responder", { rng: rng.fork("b") }),
    ]);
    const s = await server();
    const r = await join(s, "retailer");
    const name = (i: number) => `m${String(i).padStart(3, "0")}${"x".repeat(28)}`; // 32 characters: the longest name
    const definition: CollaborationDef = {
      room: s.lab.roomId,
      version: 1,
      previous: null,
      members: Array.from({ length: 256 }, (_, i) => ({
        name: name(i),
        publicKey: "ab".repeat(32),
        abilities: ["own", "query", "receive"] as ("own" | "query" | "receive")[],
      })),
      description: "d".repeat(1000),
    };
    const largest = r.sign("collab.create", { definition });
    const approve = r.sign("approveTemplate", {
      input: { template: liftTemplate({ advertiser: "advertiser", retailer: "retailer" }), party: "retailer" },
      templateHash: "00".repeat(32),
      signature: "00".repeat(64),
    });
    const info = r.sign("room.info", {});
    const measured: Record<string, { json: number; frame: number }> = {};
    for (const [k, req] of Object.entries({ largest, approve, info })) {
      sizes.length = 0;
      await ca.send(ROOM_PROTOCOL, "request", req as never);
      measured[k] = { json: Buffer.byteLength(JSON.stringify(req)), frame: sizes[0]! };
    }
    console.log("pre-auth request sizes (bytes)", measured, { bound: PRE_AUTH_FRAME_BYTES, clientJsonBound: PRE_AUTH_REQUEST_BYTES });
    expect(measured.largest!.frame).toBeLessThan(PRE_AUTH_FRAME_BYTES);
    expect(measured.largest!.json).toBeLessThanOrEqual(PRE_AUTH_REQUEST_BYTES);
    expect(measured.approve!.frame).toBeLessThan(8 * 1024); // a signed non-upload request: a few KiB
    // the client's JSON bound, grown by the channel, still fits the server's frame bound
    const grown = Math.ceil((PRE_AUTH_REQUEST_BYTES + 200) / 3) * 4 + 400;
    expect(grown).toBeLessThan(PRE_AUTH_FRAME_BYTES);
  });

  it("an anonymous 1 MiB frame closes the connection unread; with the bound off (positive control) the server reads it", async () => {
    const big = { v: 1, pad: "p".repeat(1024 * 1024) };
    const on = await server();
    const a = await anonymous(on);
    expect(code(await ask(a, big))).toBe("closed");
    const off = await server({ preAuthFrameBytes: 256 * 1024 * 1024 });
    const b = await anonymous(off);
    const r = await ask(b, big);
    expect(code(r)).toBe("INPUT_INVALID"); // read, parsed and refused: the server spent the memory
    b.close();
  });

  it("a member's first request may be a large upload (its handle authenticates with room.info first); a non-member's never reaches the server", async () => {
    const s = await server();
    await activeRoom(s);
    const fresh = await join(s, "retailer"); // a new connection: unauthenticated until its first request passes
    const rows = Array.from({ length: 3000 }, (_, i) => ({
      join_key: `k${i}`,
      purchase_day: i % 28,
      value_cents: i,
      store_region: "north",
      category: "c",
    }));
    expect(Buffer.byteLength(JSON.stringify(rows))).toBeGreaterThan(PRE_AUTH_FRAME_BYTES);
    const receipt = await upload(fresh, {
      party: "retailer",
      name: "big",
      rows,
      schema: liftSchemas().purchases,
      purposes: ["measurement"],
    });
    expect(receipt.rows).toBe(rows.length);
    const outsider = await join(s, "outsider");
    const before = auditRows(s).length;
    const e = await outsider.request("upload", { input: { party: "outsider", name: "x", rows } }).catch((x) => x);
    expect(e.code).toBe("NOT_A_MEMBER"); // the small room.info was refused; the upload was never sent
    expect(auditRows(s).length).toBe(before + 1);
  });
});

describe("refusals before the signature verifies", () => {
  /** `count` requests signed by a key that is no member, on one connection: what each got. */
  async function flood(s: { url: string }, count: number, handle?: RemoteRoom): Promise<string[]> {
    const h = handle ?? (await join(s, "outsider"));
    const out: string[] = [];
    for (let i = 0; i < count; i++) {
      try {
        const r = await h.sendRaw(h.sign("budget", { input: {} }));
        out.push(code(r));
      } catch (e) {
        expect((e as { details?: { reason?: string } }).details?.reason).toBe("peer-closed");
        out.push("closed");
      }
    }
    return out;
  }

  it("positive control: with the limits off, every refused frame is answered, checked and audited one by one", async () => {
    const s = await server({ perConnection: Infinity, perRemote: Infinity, auditEach: Infinity });
    const got = await flood(s, 60);
    expect(new Set(got)).toEqual(new Set(["NOT_A_MEMBER"]));
    expect(unauthenticated(s)).toHaveLength(60); // the chain grows with the attacker's frames
  });

  it("with the limits on: one connection gets perConnection refusals, then RATE_LIMITED and is closed; the chain grows by a bounded count", async () => {
    const s = await server({ perConnection: 16, auditEach: 4 });
    const got = await flood(s, 40);
    expect(got.slice(0, 16)).toEqual(Array(16).fill("NOT_A_MEMBER"));
    expect(got[16]).toBe("RATE_LIMITED");
    expect(got.slice(17)).toEqual(Array(23).fill("closed"));
    // 4 entries one by one, the rest counted: nothing yet for them until the window ends or the server closes
    expect(unauthenticated(s)).toHaveLength(4);
    await s.close();
    servers.splice(servers.indexOf(s), 1);
    const db = new (await import("better-sqlite3")).default(path.join(dir, `room-${n}.db`), { readonly: true });
    try {
      const rows = (db.prepare("SELECT entry FROM purpose_audit_log ORDER BY seq").all() as { entry: string }[]).map((r) =>
        JSON.parse(r.entry),
      );
      const anon = rows.filter((e) => e.who.party === "unauthenticated");
      expect(anon).toHaveLength(5);
      expect(anon[4]).toMatchObject({ action: "room.unauthenticated", count: 13, errorCode: null });
      expect(anon.slice(0, 4).map((e) => e.errorCode)).toEqual(Array(4).fill("NOT_A_MEMBER"));
    } finally {
      db.close();
    }
  });

  it("per remote: new connections do not reset the budget; a member's request still passes during the flood", async () => {
    const s = await server({ perConnection: 5, perRemote: 12, auditEach: 2 });
    const member = await activeRoom(s);
    const codes: string[] = [];
    for (let c = 0; c < 4; c++) codes.push(...(await flood(s, 5)));
    // 12 refusals answered as what they are, then each further one is RATE_LIMITED and ends its connection
    expect(codes.filter((x) => x === "NOT_A_MEMBER")).toHaveLength(12);
    expect(codes.filter((x) => x === "RATE_LIMITED").length).toBeGreaterThanOrEqual(2);
    const later = await flood(s, 3);
    expect(later[0]).toBe("RATE_LIMITED");
    expect(later.slice(1)).toEqual(["closed", "closed"]);
    // a member on a new connection (unauthenticated until this request) is checked, not turned away
    const again = await join(s, "retailer");
    expect(((await again.request("room.info")) as { room: string }).room).toBe(s.lab.roomId);
    expect(((await member.request("collab.status")) as { active: unknown }).active).not.toBeNull();
    // the chain: 2 one by one while the window lasts (the summary comes when it ends)
    expect(unauthenticated(s)).toHaveLength(2);
  });

  it("the summary is written when the window ends, and the next window audits its first refusals again", async () => {
    const s = await server({ perConnection: 100, auditEach: 1, windowMs: 300 });
    await flood(s, 5);
    await new Promise((r) => setTimeout(r, 450));
    expect(unauthenticated(s).map((r) => r.count ?? 1)).toEqual([1, 4]);
    // the chain still verifies, and its view says how many refusals the summary stands for
    const rep = s.lab.audit({});
    expect(rep.verification.ok).toBe(true);
    expect(auditPayloadFromReport(rep).entries.at(-1)).toMatchObject({
      actor: "unauthenticated",
      action: "room.unauthenticated",
      outcome: "refused ×4",
    });
    await flood(s, 2);
    expect(refusedTotal(s)).toBe(6); // the 7th is counted, pending the end of its window
    expect(unauthenticated(s).at(-1)!.errorCode).toBe("NOT_A_MEMBER");
  });

  it("bad limits are refused typed before any file is opened", async () => {
    const store = path.join(dir, "never.db");
    const e = await RoomServer.start({ store, limits: { perConnection: 0 } }).catch((x) => x);
    expect(e.code).toBe("PARAM_INVALID");
    expect(e.details.field).toBe("limits.perConnection");
    expect(fs.existsSync(store)).toBe(false);
  });

  it("room-server.mjs takes them as flags (--limit-per-connection 3 → RATE_LIMITED at the 4th); a bad value is refused before any file", async () => {
    const store = path.join(dir, "flags.db");
    const bad = await startServer(store, ["--limit-per-connection", "0"]).catch((e: Error) => e);
    expect(String(bad)).toMatch(/PARAM_INVALID/);
    expect(String(bad)).toMatch(/limits\.perConnection/);
    expect(fs.existsSync(store)).toBe(false);
    const p = await startServer(store, ["--epsilon", "3", "--limit-per-connection", "3", "--limit-audit-each", "off"]);
    expect(await flood(p, 5)).toEqual(["NOT_A_MEMBER", "NOT_A_MEMBER", "NOT_A_MEMBER", "RATE_LIMITED", "closed"]);
  });
});
