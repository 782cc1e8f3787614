/**
 * The clean-room server: one room (the same SQLite ledger, audit chain, approvals and sealed
 * datasets as `openLab`) served to its members over 127.0.0.1. Run it as its own process with
 * scripts/room-server.mjs (`npm run room -- --store room.db --port 7700`).
 *
 * Every connection is a socket transport (transport/socket.ts) under a SecureChannel
 * (transport/secure.ts) in which the server proves its static X25519 key: members pin that key
 * (from the room URL or the `<store>.server.json` file the server writes), so a process that
 * merely listens on the port cannot pose as the room. Members prove who they are per request:
 * each request is signed by the member's Ed25519 key (server/protocol.ts) and admitted only
 * after signature, membership, time window, nonce and seq checks; every refusal at that gate is
 * audited (action `room.request`) and has no other side effect. What runs is the session's one
 * road (session/road.ts) with the member as the party: the party of a request is always the
 * signer, so no member can act as, upload as, or mint another party.
 *
 * Threat model: see server/protocol.ts. The operator runs this process and can read its
 * database; it cannot sign as a member, so approvals it inserts are reported and refused.
 * Identifiers never reach the server: PSI runs member to member (psiWithPeer) and uploads
 * carry keyed join ids.
 */
import fs from "node:fs";
import { CleanRoomError, isCleanRoomError, type ErrorCode } from "../errors.js";
import { makeRng, type Rng } from "../rng.js";
import { fromHex, hex, x25519KeyPair, type KeyPair } from "../crypto/primitives.js";
import { DEFAULT_MAX_FRAME_BYTES, LOOPBACK, listen, type SocketTransport } from "../transport/socket.js";
import { secureTransport } from "../transport/secure.js";
import { openLab, type Lab } from "../session/lab.js";
import type { OpenLabOptions } from "../session/types.js";
import { Membership } from "./membership.js";
import { EnclaveRelay, runOp, type EnclaveServing, type OpContext } from "./ops.js";
import { DEFAULT_INVITATION_TTL_MS, Invitations, type Invitation } from "./invitations.js";
import { fingerprintOf } from "./identity.js";
import { RefusalAudit, RemoteWindows, rateLimited, refusalLimits, type ConnectionState, type RefusalLimits } from "./limits.js";
import {
  DEFAULT_TIME_WINDOW_MS,
  MEMBER_NAME,
  OPS,
  ROOM_PROTOCOL,
  ROOM_PROTOCOL_VERSION,
  SignedRequest,
  requestBytes,
  type MemberSpec,
  type RoomResponse,
} from "./protocol.js";
import { ed25519Verify } from "../crypto/primitives.js";

export interface RoomServerOptions extends Pick<OpenLabOptions, "room" | "rng" | "budget" | "engine" | "enclave">, EnclaveServing {
  /** The room database (SQLite); ":memory:" for a throwaway room. */
  store: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Requests whose time is further than this from the server's clock are refused (default 120 s). */
  timeWindowMs?: number;
  /** Server clock (tests of staleness); default Date.now. */
  now?: () => number;
  /**
   * A class in a room: make one room per pair for this many students, with single-use invitation
   * codes (server/invitations.ts). Only the first start of a store makes them; a restart keeps them.
   */
  class?: number;
  /** Lifetime of the invitation codes made now (ms, default 7 days). */
  invitationTtlMs?: number;
  /**
   * What an unauthenticated peer may cost (server/limits.ts): the frame bound before a connection
   * authenticated, refusals per connection and per remote, audit entries per window. Tests turn a
   * defence off with Infinity (or a large frame bound) for their positive controls.
   */
  limits?: Partial<RefusalLimits>;
  /**
   * A dishonest operator (tests and teaching only): rewrite what an operation answers before it is
   * sent, e.g. show a member other content for a template hash. Members must catch it themselves.
   */
  operatorFilter?: (op: string, result: unknown) => unknown;
}

/** What the server writes beside its store so members can pin its key. */
export interface ServerInfo {
  url: string;
  room: string;
  port: number;
  publicKey: string;
  fingerprint: string;
  pid: number;
}

function serverKey(store: string, rng: Rng): KeyPair {
  if (store === ":memory:") return x25519KeyPair(rng);
  const file = `${store}.server-key.json`;
  if (fs.existsSync(file)) {
    const st = fs.statSync(file);
    if (process.platform !== "win32" && (st.mode & 0o077) !== 0)
      throw new CleanRoomError("ACCESS_DENIED", `"server key file" expected mode 0600, got ${(st.mode & 0o777).toString(8)}`, {
        field: "store",
      });
    const o = JSON.parse(fs.readFileSync(file, "utf8")) as { secretKey: string; publicKey: string };
    return { secretKey: fromHex(o.secretKey), publicKey: fromHex(o.publicKey) };
  }
  const kp = x25519KeyPair(rng);
  fs.writeFileSync(file, JSON.stringify({ secretKey: hex(kp.secretKey), publicKey: hex(kp.publicKey) }) + "\n", {
    mode: 0o600,
    flag: "wx",
  });
  return kp;
}

/** JSON round trip with bigint as decimal strings (what crosses the wire is plain data). */
export function toPlain(x: unknown): unknown {
  return JSON.parse(JSON.stringify(x, (_k, v) => (typeof v === "bigint" ? v.toString() : v)) ?? "null");
}

const fail = (code: ErrorCode, field: string, message: string): never => {
  throw new CleanRoomError(code, `"${field}" ${message}`, { field });
};

export class RoomServer {
  readonly lab: Lab;
  readonly membership: Membership;
  readonly port: number;
  readonly publicKey: string;
  readonly fingerprint: string;
  readonly url: string;
  readonly #key: KeyPair;
  readonly #rng: Rng;
  readonly #window: number;
  readonly #now: () => number;
  readonly #close: () => Promise<void>;
  readonly #open = new Set<SocketTransport>();
  /** Every room this server serves, by id: its own, and a class's pair rooms. */
  readonly #rooms = new Map<string, OpContext>();
  readonly invitations: Invitations;
  readonly enclave: EnclaveRelay; // enclave mode of the served room (server/enclave-ops.ts)
  /** The plaintext codes of a class this start created (null otherwise); also in `<store>.invitations.json` (0600). */
  invitationCodes: Invitation[] | null = null;
  /** Requests answered (ok or refused), for the bench. */
  answered = 0;
  readonly limits: RefusalLimits;
  readonly #remotes: RemoteWindows;
  readonly #refusalAudits = new Map<Lab, RefusalAudit>();
  readonly #operatorFilter: ((op: string, result: unknown) => unknown) | undefined;

  private constructor(lab: Lab, key: KeyPair, rng: Rng, o: RoomServerOptions, port: number, close: () => Promise<void>) {
    this.lab = lab;
    this.membership = new Membership(lab.db, lab.roomId);
    this.#key = key;
    this.#rng = rng;
    this.#window = o.timeWindowMs ?? DEFAULT_TIME_WINDOW_MS;
    this.#now = o.now ?? Date.now;
    this.limits = refusalLimits(o.limits, DEFAULT_MAX_FRAME_BYTES);
    this.#remotes = new RemoteWindows(this.limits, Date.now);
    this.#operatorFilter = o.operatorFilter;
    this.port = port;
    this.publicKey = hex(key.publicKey);
    this.fingerprint = fingerprintOf(this.publicKey);
    this.url = `cleanroom://127.0.0.1:${port}/${lab.roomId}#${this.publicKey}`;
    this.#close = close;
    this.invitations = new Invitations(lab.db, lab.roomId);
    this.enclave = new EnclaveRelay(lab, { allowTamper: o.allowTamper === true });
    this.#rooms.set(lab.roomId, this);
    // a restart sees the active members as parties (Room re-reads lab_parties)
  }

  /**
   * Open the room's store and listen on 127.0.0.1.
   * @example const s = await RoomServer.start({ store: "room.db", port: 7700, budget: { epsilon: 3 } }); s.url
   */
  static async start(o: RoomServerOptions): Promise<RoomServer> {
    if (!o || typeof o.store !== "string" || !o.store) fail("PARAM_INVALID", "store", "expected a database path");
    refusalLimits(o.limits, DEFAULT_MAX_FRAME_BYTES); // before any file is opened
    const lab = openLab({
      store: o.store,
      ...(o.room ? { room: o.room } : {}),
      ...(o.rng ? { rng: o.rng } : {}),
      ...(o.budget ? { budget: o.budget } : {}),
      ...(o.engine ? { engine: o.engine } : {}),
      ...(o.enclave ? { enclave: o.enclave } : {}),
    });
    const rng = makeRng(o.rng ?? "secure").fork("room-server");
    let key: KeyPair;
    try {
      key = serverKey(o.store, rng.fork("server-key"));
    } catch (e) {
      lab.close();
      throw e;
    }
    const listener = await listen({ self: "room", port: o.port ?? 0 });
    let server: RoomServer | null = null;
    let stopped = false;
    const acceptLoop = async () => {
      for (;;) {
        let t: SocketTransport;
        try {
          t = await listener.accept();
        } catch {
          return;
        }
        if (stopped) return void t.close();
        void server!.#serve(t);
      }
    };
    server = new RoomServer(lab, key, rng, o, listener.port, async () => {
      stopped = true;
      await listener.close();
    });
    try {
      if (o.class !== undefined) {
        // the teacher's only copy of the codes must be writable before any code is made
        if (o.store !== ":memory:" && server.invitations.rooms().length === 0 && fs.existsSync(`${o.store}.invitations.json`))
          fail(
            "ALREADY_EXISTS",
            "store",
            "expected no <store>.invitations.json from another class beside a new class's store (move it away)",
          );
        server.invitationCodes = server.invitations.createClass(o.class, o.invitationTtlMs ?? DEFAULT_INVITATION_TTL_MS, server.#now());
        if (server.invitationCodes && o.store !== ":memory:")
          fs.writeFileSync(`${o.store}.invitations.json`, JSON.stringify(server.invitationCodes, null, 2) + "\n", {
            mode: 0o600,
            flag: "wx",
          });
      }
      for (const room of server.invitations.rooms()) {
        const pairLab = openLab({
          store: o.store,
          room,
          ...(o.rng ? { rng: typeof o.rng === "object" && "seed" in o.rng ? { seed: `${o.rng.seed}/${room}` } : o.rng } : {}),
          ...(o.budget ? { budget: o.budget } : {}),
          ...(o.engine ? { engine: o.engine } : {}),
        });
        server.#rooms.set(room, {
          lab: pairLab,
          membership: new Membership(pairLab.db, room),
          publicKey: server.publicKey,
          fingerprint: server.fingerprint,
        });
      }
    } catch (e) {
      await server.close();
      throw e;
    }
    void acceptLoop();
    if (o.store !== ":memory:") {
      const info: ServerInfo = {
        url: server.url,
        room: lab.roomId,
        port: server.port,
        publicKey: server.publicKey,
        fingerprint: server.fingerprint,
        pid: process.pid,
      };
      fs.writeFileSync(`${o.store}.server.json`, JSON.stringify(info, null, 2) + "\n");
    }
    return server;
  }

  async #serve(t: SocketTransport): Promise<void> {
    this.#open.add(t);
    // listen() accepts 127.0.0.1 only: every peer shares this remote (server/limits.ts)
    const conn: ConnectionState = { remote: LOOPBACK, authenticated: false, refusals: 0 };
    // until one request passes the gate, only small frames are read (a larger header ends the link unread)
    t.limitIncoming(this.limits.preAuthFrameBytes);
    try {
      const st = await secureTransport(t, "responder", {
        rng: this.#rng.fork(`session:${hex(this.#rng.bytes(8))}`),
        staticKey: this.#key,
        peerStaticPublicKey: (h) => {
          if (typeof h?.staticPublicKey !== "string" || !/^[0-9a-f]{64}$/.test(h.staticPublicKey))
            return fail("CRYPTO_INVALID_KEY", "hello.staticPublicKey", "expected the member's session key (64 hex characters)");
          return fromHex(h.staticPublicKey);
        },
      });
      for (;;) {
        const env = await st.receive({ protocol: ROOM_PROTOCOL, kind: "request" });
        const wasAuthenticated = conn.authenticated;
        const resp = await this.handle(env.body, conn);
        if (conn.authenticated && !wasAuthenticated) t.limitIncoming(DEFAULT_MAX_FRAME_BYTES);
        await st.send(ROOM_PROTOCOL, "response", resp as never);
        if (!conn.authenticated && conn.refusals > this.limits.perConnection) break;
      }
    } catch {
      // peer gone, a bad or oversized frame or a failed handshake: this connection ends, the room goes on
    } finally {
      this.#open.delete(t);
      t.close();
    }
  }

  /** The URL of one of this server's rooms (what a member of a pair room joins with later). */
  roomUrl(room: string): string {
    return `cleanroom://127.0.0.1:${this.port}/${room}#${this.publicKey}`;
  }

  #audit(member: string, op: string, code: string, lab: Lab = this.lab): void {
    const party = MEMBER_NAME.test(member) ? member : "unknown";
    try {
      lab.purpose.audit.append({
        action: `room.${op.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 30) || "request"}`,
        who: { party },
        outcome: "refused",
        errorCode: code as never,
      });
    } catch {
      /* the audit refused the entry (e.g. an odd code): the refusal still stands */
    }
  }

  /** Audit one refusal made before the signature verified: one by one up to a bound per window, then counted (server/limits.ts). */
  #auditUnauthenticated(lab: Lab, op: string, code: string): void {
    let a = this.#refusalAudits.get(lab);
    if (!a) {
      a = new RefusalAudit(this.limits, Date.now, (e) => {
        if ("count" in e) {
          try {
            lab.purpose.audit.append({
              action: "room.unauthenticated",
              who: { party: "unauthenticated" },
              outcome: "refused",
              count: e.count,
            });
          } catch {
            /* a closed room: the summary is lost with it */
          }
        } else this.#audit("unauthenticated", e.op, e.code, lab);
      });
      this.#refusalAudits.set(lab, a);
    }
    a.note(op, code);
  }

  /**
   * Answer one request (already decrypted): the gate, then the operation. Never throws. With
   * `conn` (a connection of #serve), the request counts against that connection's and its
   * remote's budget of unauthenticated refusals, and `conn.authenticated` is set once a request
   * passes the gate.
   */
  async handle(raw: unknown, conn?: ConnectionState): Promise<RoomResponse> {
    const seq = typeof (raw as { seq?: unknown })?.seq === "number" ? (raw as { seq: number }).seq : -1;
    const claimed = typeof (raw as { member?: unknown })?.member === "string" ? (raw as { member: string }).member : "unknown";
    const op = typeof (raw as { op?: unknown })?.op === "string" ? (raw as { op: string }).op : "request";
    let gatePassed = false;
    // until the signature verifies, the claimed name is the caller's word: a refusal is audited as
    // "unauthenticated", never as the member it names (nobody can fill the log with "retailer refused")
    let authenticated = false;
    let auditLab: Lab = this.lab;
    this.answered++;
    if (conn && !conn.authenticated && conn.refusals >= this.limits.perConnection) {
      // this connection used its refusals: answered without checking anything (counted in the audit summary); #serve closes it
      conn.refusals++;
      this.#auditUnauthenticated(this.lab, op, "RATE_LIMITED");
      return this.#refusal(seq, rateLimited(`${this.limits.perConnection} per connection`));
    }
    try {
      const parsed = SignedRequest.safeParse(raw);
      if (!parsed.success) {
        const i = parsed.error.issues[0]!;
        fail("INPUT_INVALID", `request.${i.path.join(".")}`, `expected ${i.message}`);
      }
      const r = parsed.data!;
      if (r.op === "invite.redeem") {
        const result = this.#redeem(r);
        gatePassed = true;
        if (conn) conn.authenticated = true;
        return { v: ROOM_PROTOCOL_VERSION, seq, ok: true, result: toPlain(result) };
      }
      const ctx = this.#rooms.get(r.room);
      if (!ctx) return fail("NOT_FOUND", "request.room", `expected a room this server serves, got another`);
      auditLab = ctx.lab;
      const pairRoom = ctx !== this;
      // who signs: an active member; a member of a pending definition (collab ops only); the creator of version 1;
      // in a class's pair room, a student whose invitation registered its key (collab ops only, until the pair is active)
      let spec: MemberSpec | null = null;
      let active = false;
      const k = ctx.membership.keyOf(r.member);
      if (k) ({ member: spec, active } = k);
      else if (pairRoom) spec = this.invitations.seat(r.room, r.member);
      else if (r.op === "collab.create" && !ctx.membership.hasAny()) {
        const def = OPS["collab.create"].safeParse(r.body);
        spec = def.success ? (def.data.definition.members.find((m) => m.name === r.member) ?? null) : null;
      }
      if (!spec) fail("NOT_A_MEMBER", "request.member", "expected a member of this room's collaboration, got a name that is not one");
      if (!ed25519Verify(fromHex(spec!.publicKey), requestBytes(r), fromHex(r.sig)))
        fail("SIGNATURE_INVALID", "request.sig", `expected a signature by ${r.member}'s key, got one that does not verify`);
      authenticated = true;
      const now = this.#now();
      if (Math.abs(now - r.time) > this.#window)
        fail("REQUEST_STALE", "request.time", `expected a time within ${this.#window / 1000} s of the server's clock, got one outside it`);
      ctx.membership.admit(r.member, r.session, r.seq, r.nonce, r.time, this.#window);
      // a member's key signed a fresh request: this connection may now send large frames (uploads)
      if (conn) conn.authenticated = true;
      if (pairRoom && r.op === "collab.create")
        fail(
          "ACCESS_DENIED",
          "op",
          "expected a pair room's collaboration to come from its invitations (the server writes it when both seats are taken)",
        );
      const body = OPS[r.op].safeParse(r.body);
      if (!body.success) {
        const i = body.error.issues[0]!;
        fail("INPUT_INVALID", `body.${i.path.join(".")}`, `expected ${i.message}`);
      }
      const collabOp = r.op.startsWith("collab.") || r.op === "room.info" || r.op === "roomStatus";
      if (!collabOp && !active)
        fail(
          "STATE_INVALID",
          "collaboration",
          "expected an active collaboration (every member accepted), got none: nothing runs until all have",
        );
      gatePassed = true;
      const result = await runOp(ctx, r.op, spec!, body.data as Record<string, unknown>);
      const plain = toPlain(result);
      return { v: ROOM_PROTOCOL_VERSION, seq, ok: true, result: this.#operatorFilter ? toPlain(this.#operatorFilter(r.op, plain)) : plain };
    } catch (e) {
      const err = isCleanRoomError(e) ? e : new CleanRoomError("INTERNAL", "the server could not complete the request");
      // gate refusals are audited here; refusals inside the room's roads audit themselves
      if (!authenticated && !gatePassed) {
        let shown = err;
        if (conn && !conn.authenticated) {
          conn.refusals++;
          this.#remotes.note(conn.remote);
          // the address used its refusals for this window: say so, and end this connection (a member's request still passes: it is checked first)
          if (this.#remotes.exhausted(conn.remote)) {
            shown = rateLimited(`${this.limits.perRemote} per ${this.limits.windowMs / 1000} s from one address`);
            conn.refusals = Math.max(conn.refusals, this.limits.perConnection + 1);
          }
        }
        this.#auditUnauthenticated(auditLab, op, shown.code);
        return this.#refusal(seq, shown);
      }
      if (!gatePassed || (err.details as { audit?: boolean })?.audit === true) this.#audit(claimed, op, err.code, auditLab);
      return this.#refusal(seq, err);
    }
  }

  #refusal(seq: number, err: CleanRoomError): RoomResponse {
    const { trace: _t, ...details } = (err.details ?? {}) as Record<string, unknown>;
    return {
      v: ROOM_PROTOCOL_VERSION,
      seq,
      ok: false,
      error: { code: err.code, message: err.message, details: toPlain(details) as Record<string, unknown> },
    };
  }

  /**
   * Redeem a class invitation (server/invitations.ts): signed by the key it registers, sent to
   * the class room. Refusals (one message for every bad code) happen before any write.
   */
  #redeem(r: SignedRequest): { room: string; member: string; url: string; collaboration: ReturnType<Membership["view"]> } {
    if (r.room !== this.lab.roomId) fail("NOT_FOUND", "request.room", `expected the class room "${this.lab.roomId}"`);
    const body = OPS["invite.redeem"].safeParse(r.body);
    if (!body.success) return fail("INPUT_INVALID", `body.${body.error.issues[0]!.path.join(".")}`, "expected { invitation, publicKey }");
    if (!MEMBER_NAME.test(r.member)) fail("INPUT_INVALID", "request.member", "expected a member name (the seat you join as)");
    if (!ed25519Verify(fromHex(body.data.publicKey), requestBytes(r), fromHex(r.sig)))
      fail("SIGNATURE_INVALID", "request.sig", "expected a signature by the key being registered, got one that does not verify");
    const now = this.#now();
    if (Math.abs(now - r.time) > this.#window)
      fail("REQUEST_STALE", "request.time", `expected a time within ${this.#window / 1000} s of the server's clock, got one outside it`);
    const got = this.invitations.redeem(body.data.invitation, r.member, body.data.publicKey, now);
    const ctx = this.#rooms.get(got.room)!;
    const seats = this.invitations.seats(got.room);
    // both seats taken (now, or before a restart): the server writes the pair's definition; the students sign it
    if (seats.length === 2 && !ctx.membership.hasAny())
      ctx.membership.create(
        {
          room: got.room,
          version: 1,
          previous: null,
          members: seats,
          description: `A pair of the class in room ${this.lab.roomId}: members registered by their invitation codes`,
        },
        r.member,
      );
    if (got.fresh) ctx.lab.purpose.audit.append({ action: "room.invite.redeem", who: { party: r.member }, outcome: "granted" });
    return { room: got.room, member: r.member, url: this.roomUrl(got.room), collaboration: ctx.membership.view() };
  }

  /** Stop listening, end every session, close the databases. */
  async close(): Promise<void> {
    await this.#close();
    this.enclave.close(); // a pending launch's enclave process ends with the server
    for (const a of this.#refusalAudits.values()) a.flush();
    for (const t of this.#open) t.close();
    for (const [id, c] of this.#rooms) if (id !== this.lab.roomId) c.lab.close();
    this.lab.close();
  }
}
