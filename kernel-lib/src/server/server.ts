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
import { listen, type SocketTransport } from "../transport/socket.js";
import { secureTransport } from "../transport/secure.js";
import { openLab, type Lab } from "../session/lab.js";
import type { OpenLabOptions } from "../session/types.js";
import { Membership } from "./membership.js";
import { runOp } from "./ops.js";
import { fingerprintOf } from "./identity.js";
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

export interface RoomServerOptions extends Pick<OpenLabOptions, "room" | "rng" | "budget" | "engine"> {
  /** The room database (SQLite); ":memory:" for a throwaway room. */
  store: string;
  /** 0 (default) picks a free port. */
  port?: number;
  /** Requests whose time is further than this from the server's clock are refused (default 120 s). */
  timeWindowMs?: number;
  /** Server clock (tests of staleness); default Date.now. */
  now?: () => number;
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
  /** Requests answered (ok or refused), for the bench. */
  answered = 0;

  private constructor(lab: Lab, key: KeyPair, rng: Rng, o: RoomServerOptions, port: number, close: () => Promise<void>) {
    this.lab = lab;
    this.membership = new Membership(lab.db, lab.roomId);
    this.#key = key;
    this.#rng = rng;
    this.#window = o.timeWindowMs ?? DEFAULT_TIME_WINDOW_MS;
    this.#now = o.now ?? Date.now;
    this.port = port;
    this.publicKey = hex(key.publicKey);
    this.fingerprint = fingerprintOf(this.publicKey);
    this.url = `cleanroom://127.0.0.1:${port}/${lab.roomId}#${this.publicKey}`;
    this.#close = close;
    // a restart sees the active members as parties (Room re-reads lab_parties)
  }

  /**
   * Open the room's store and listen on 127.0.0.1.
   * @example const s = await RoomServer.start({ store: "room.db", port: 7700, budget: { epsilon: 3 } }); s.url
   */
  static async start(o: RoomServerOptions): Promise<RoomServer> {
    if (!o || typeof o.store !== "string" || !o.store) fail("PARAM_INVALID", "store", "expected a database path");
    const lab = openLab({
      store: o.store,
      ...(o.room ? { room: o.room } : {}),
      ...(o.rng ? { rng: o.rng } : {}),
      ...(o.budget ? { budget: o.budget } : {}),
      ...(o.engine ? { engine: o.engine } : {}),
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
        const resp = await this.handle(env.body);
        await st.send(ROOM_PROTOCOL, "response", resp as never);
      }
    } catch {
      // peer gone, a bad frame or a failed handshake: this connection ends, the room goes on
    } finally {
      this.#open.delete(t);
      t.close();
    }
  }

  #audit(member: string, op: string, code: string): void {
    const party = MEMBER_NAME.test(member) ? member : "unknown";
    try {
      this.lab.purpose.audit.append({
        action: `room.${op.replace(/[^A-Za-z0-9_.]/g, "_").slice(0, 30) || "request"}`,
        who: { party },
        outcome: "refused",
        errorCode: code as never,
      });
    } catch {
      /* the audit refused the entry (e.g. an odd code): the refusal still stands */
    }
  }

  /** Answer one request (already decrypted): the gate, then the operation. Never throws. */
  async handle(raw: unknown): Promise<RoomResponse> {
    const seq = typeof (raw as { seq?: unknown })?.seq === "number" ? (raw as { seq: number }).seq : -1;
    const claimed = typeof (raw as { member?: unknown })?.member === "string" ? (raw as { member: string }).member : "unknown";
    const op = typeof (raw as { op?: unknown })?.op === "string" ? (raw as { op: string }).op : "request";
    let gatePassed = false;
    this.answered++;
    try {
      const parsed = SignedRequest.safeParse(raw);
      if (!parsed.success) {
        const i = parsed.error.issues[0]!;
        fail("INPUT_INVALID", `request.${i.path.join(".")}`, `expected ${i.message}`);
      }
      const r = parsed.data!;
      if (r.room !== this.lab.roomId) fail("NOT_FOUND", "request.room", `expected this server's room "${this.lab.roomId}"`);
      // who signs: an active member; a member of a pending definition (collab ops only); the creator of version 1
      let spec: MemberSpec | null = null;
      let active = false;
      const k = this.membership.keyOf(r.member);
      if (k) ({ member: spec, active } = k);
      else if (r.op === "collab.create" && !this.membership.hasAny()) {
        const def = OPS["collab.create"].safeParse(r.body);
        spec = def.success ? (def.data.definition.members.find((m) => m.name === r.member) ?? null) : null;
      }
      if (!spec) fail("NOT_A_MEMBER", "request.member", "expected a member of this room's collaboration, got a name that is not one");
      if (!ed25519Verify(fromHex(spec!.publicKey), requestBytes(r), fromHex(r.sig)))
        fail("SIGNATURE_INVALID", "request.sig", `expected a signature by ${r.member}'s key, got one that does not verify`);
      const now = this.#now();
      if (Math.abs(now - r.time) > this.#window)
        fail("REQUEST_STALE", "request.time", `expected a time within ${this.#window / 1000} s of the server's clock, got one outside it`);
      this.membership.admit(r.member, r.seq, r.nonce, r.time, this.#window);
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
      const result = await runOp(this, r.op, spec!, body.data as Record<string, unknown>);
      return { v: ROOM_PROTOCOL_VERSION, seq, ok: true, result: toPlain(result) };
    } catch (e) {
      const err = isCleanRoomError(e) ? e : new CleanRoomError("INTERNAL", "the server could not complete the request");
      // gate refusals are audited here; refusals inside the room's roads audit themselves
      if (!gatePassed || (err.details as { audit?: boolean })?.audit === true) this.#audit(claimed, op, err.code);
      const { trace: _t, ...details } = (err.details ?? {}) as Record<string, unknown>;
      return {
        v: ROOM_PROTOCOL_VERSION,
        seq,
        ok: false,
        error: { code: err.code, message: err.message, details: toPlain(details) as Record<string, unknown> },
      };
    }
  }

  /** Stop listening, end every session, close the database. */
  async close(): Promise<void> {
    await this.#close();
    for (const t of this.#open) t.close();
    this.lab.close();
  }
}
