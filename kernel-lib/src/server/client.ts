/**
 * A member's side of the room protocol: `joinRoom(url, { as, identity })` connects to the
 * clean-room server on 127.0.0.1, checks the server's static key against the one pinned by the
 * URL (or `serverKey`), and returns a {@link RemoteRoom}: the handle the same verbs take as a
 * lab from `openLab` (verbs/ dispatch to it). Every request is signed with the member's
 * identity (server/identity.ts) with a fresh nonce, a growing seq and the current time.
 *
 * Threat model: a process posing as the server (refused: it cannot complete the channel with
 * the pinned key), a network observer (SecureChannel). The member trusts the server with what
 * it uploads (keyed rows, sealed by the room's purpose gate), not with its identity: approvals
 * and acceptances are signatures anyone can check with {@link verifyApprovals}.
 */
import { CleanRoomError, invalid } from "../errors.js";
import { makeRng, type Rng } from "../rng.js";
import { fromHex, hex, x25519KeyPair } from "../crypto/primitives.js";
import { connect } from "../transport/socket.js";
import { secureTransport } from "../transport/secure.js";
import type { Transport } from "../transport/transport.js";
import { isIdentity, type MemberIdentity } from "./identity.js";
import {
  MEMBER_NAME,
  ROOM_PROTOCOL,
  ROOM_PROTOCOL_VERSION,
  RoomResponse,
  collaborationHash,
  parseRoomUrl,
  requestBytes,
  statementBytes,
  verifyStatement,
  type CollaborationDef,
  type Op,
  type SignedRequest,
  type Statement,
} from "./protocol.js";
import type { CollaborationView } from "./membership.js";
import { PRE_AUTH_FRAME_BYTES } from "./limits.js";

/**
 * The largest signed request (JSON bytes) sent on a connection that has not authenticated yet:
 * under the channel it grows by base64 (4/3) and two envelopes, and must stay under the server's
 * pre-authentication frame bound. A larger first request (an upload) is preceded by `room.info`.
 */
export const PRE_AUTH_REQUEST_BYTES = Math.floor(((PRE_AUTH_FRAME_BYTES - 2048) * 3) / 4);

export interface JoinOptions {
  /** The member name this notebook acts as (must be the identity's name). */
  as: string;
  identity: MemberIdentity;
  /** The server's static public key (hex), if the URL does not carry it. */
  serverKey?: string;
  /** Randomness for nonces and the session key (default: secure). */
  rng?: "secure" | { seed: string } | Rng;
  /** Keep retrying while the server is not up yet (ms, default 0). */
  retryMs?: number;
  /**
   * A class invitation code from the teacher (e.g. "pair-07-retailer-k3vq8xw2mz"), used with the
   * class room's URL: it registers this identity's key as that seat (`as` must be the seat) of
   * the pair's room, and the handle returned is that pair room's. Single use: later, join the
   * pair room's URL (`room.url`) without it (re-redeeming with the same key is harmless).
   */
  invitation?: string;
}

/** Operations after which the room's budget may differ (each needs an active collaboration, so a budget request may follow). */
const CHANGES: ReadonlySet<Op> = new Set<Op>(["upload", "approveTemplate", "cleanRoomQuery"]);

/** A joined room: what verbs take in place of a lab. Create with {@link joinRoom}. */
export class RemoteRoom {
  readonly roomId: string;
  readonly member: string;
  readonly url: string;
  readonly serverKey: string;
  readonly #identity: MemberIdentity;
  readonly #rng: Rng;
  readonly #link: Transport;
  /** This handle's session (random, signed into every request): the server orders seq per session. */
  readonly session: string;
  #seq: number;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #answered = 0;
  /** The server answered a request of this connection with a result: its gate let this member through. */
  #authenticated = false;
  readonly #onChange: (() => void)[] = [];

  /** @internal made by joinRoom */
  constructor(url: string, roomId: string, serverKey: string, identity: MemberIdentity, rng: Rng, link: Transport) {
    this.url = url;
    this.roomId = roomId;
    this.serverKey = serverKey;
    this.member = identity.name;
    this.#identity = identity;
    this.#rng = rng;
    this.#link = link;
    this.session = hex(rng.bytes(16));
    this.#seq = Date.now() * 1000;
  }

  /** This member's public key (hex). */
  get publicKey(): string {
    return this.#identity.publicKey;
  }

  /** A seeded room labels results in teaching mode; the stamp of this side's randomness. */
  get stamp(): { rngMode: "secure" | "seeded" } {
    return { rngMode: this.#rng.mode };
  }

  /** A fork of this side's randomness (a data owner's own keys in enclave mode: server/enclave-owner.ts). */
  rngFork(label: string): Rng {
    return this.#rng.fork(`local:${label}`);
  }
  /** Sign `s` with this member's key (approvals, acceptances). */
  signStatement(s: Statement): string {
    return this.#identity.sign(statementBytes(s));
  }

  /** Build a signed request (the wire form) without sending it. */
  sign(op: Op, body: Record<string, unknown>, o: { seq?: number; time?: number; nonce?: string; session?: string } = {}): SignedRequest {
    this.#seq = Math.max(this.#seq + 1, Date.now() * 1000);
    const unsigned = {
      room: this.roomId,
      member: this.member,
      session: o.session ?? this.session,
      seq: o.seq ?? this.#seq,
      nonce: o.nonce ?? hex(this.#rng.bytes(16)),
      time: o.time ?? Date.now(),
      op,
      body,
    };
    return { v: ROOM_PROTOCOL_VERSION, ...unsigned, sig: this.#identity.sign(requestBytes(unsigned)) };
  }

  /** Send a signed request as is and return the server's raw response (tests, replays). */
  sendRaw(req: unknown): Promise<RoomResponse> {
    const run = this.#queue.then(async () => {
      if (this.#closed)
        throw new CleanRoomError("STATE_INVALID", `"room" expected an open room handle, got a closed one`, { field: "room" });
      await this.#link.send(ROOM_PROTOCOL, "request", req);
      const env = await this.#link.receive({ protocol: ROOM_PROTOCOL, kind: "response" });
      const r = RoomResponse.safeParse(env.body);
      if (!r.success) throw new CleanRoomError("INPUT_INVALID", `"response" expected a ${ROOM_PROTOCOL} response`, { field: "response" });
      return r.data;
    });
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Call `fn` after every request that may have changed the room (a live view refreshes then). */
  onChange(fn: () => void): void {
    this.#onChange.push(fn);
  }

  /** How many requests the server answered with a result (a live view retries a refused read only after another succeeded). */
  get answered(): number {
    return this.#answered;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Sign and send one operation; a refusal is thrown as the server's typed CleanRoomError. */
  async request<T = unknown>(op: Op, body: Record<string, unknown> = {}): Promise<T> {
    let req = this.sign(op, body);
    // the server reads only small frames until this connection authenticated: prove it with a small request first
    // (then sign again: the unsent request's seq is below room.info's)
    if (!this.#authenticated && op !== "invite.redeem" && Buffer.byteLength(JSON.stringify(req)) > PRE_AUTH_REQUEST_BYTES) {
      await this.request("room.info");
      req = this.sign(op, body);
    }
    const r = await this.sendRaw(req);
    if (CHANGES.has(op)) for (const fn of this.#onChange) fn();
    if (r.ok) {
      this.#answered++;
      this.#authenticated = true;
      return r.result as T;
    }
    const prefix = `[${r.error.code}] `;
    const message = r.error.message.startsWith(prefix) ? r.error.message.slice(prefix.length) : r.error.message;
    throw new CleanRoomError(r.error.code as never, message, { ...(r.error.details ?? {}), remote: true });
  }

  /** Close the connection (the room and its ledger stay on the server). */
  close(): void {
    this.#closed = true;
    this.#link.close();
  }

  toJSON() {
    return { kind: "remote-room", room: this.roomId, member: this.member, url: this.url };
  }
}

/**
 * Join a room served by scripts/room-server.mjs as one member.
 * @example const room = await joinRoom("cleanroom://127.0.0.1:7700/lab#<key>", { as: "retailer", identity: loadIdentity("retailer.key") })
 */
export async function joinRoom(url: string, o: JoinOptions): Promise<RemoteRoom> {
  const u = typeof url === "string" ? parseRoomUrl(url) : null;
  if (!u) return invalid("url", "cleanroom://127.0.0.1:PORT/ROOM[#SERVER_KEY_HEX]", typeof url === "string" ? "another form" : url);
  if (!o || typeof o !== "object") invalid("options", "{ as, identity }", o);
  if (!isIdentity(o.identity)) invalid("identity", "a member identity from createIdentity or loadIdentity", o.identity);
  if (typeof o.as !== "string" || !MEMBER_NAME.test(o.as)) invalid("as", "a member name", o.as);
  if (o.as !== o.identity.name) invalid("as", `the identity's own name "${o.identity.name}"`, o.as, "ACCESS_DENIED");
  // never echo a code: it is a secret
  if (o.invitation !== undefined && (typeof o.invitation !== "string" || !/^[a-z0-9-]{1,100}$/.test(o.invitation)))
    invalid("invitation", "an invitation code from the teacher (letters, digits, dashes)", "a malformed code");
  const key = o.serverKey ?? u.serverKey;
  if (typeof key !== "string" || !/^[0-9a-f]{64}$/.test(key))
    invalid("serverKey", "the server's public key (64 hex) from the URL or the server's .server.json", key ?? null);
  if (u.serverKey && o.serverKey && u.serverKey !== o.serverKey)
    invalid("serverKey", "the key the URL pins", "another key", "CRYPTO_INVALID_KEY");
  const rng = makeRng(o.rng ?? "secure").fork(`member:${o.as}`);
  const socket = await connect({ self: o.as, peer: "room", port: u.port, retryMs: o.retryMs ?? 0 });
  let link: Transport;
  try {
    link = await secureTransport(socket, "initiator", {
      rng: rng.fork("session"),
      staticKey: x25519KeyPair(rng.fork("session-key")),
      peerStaticPublicKey: fromHex(key!),
    });
  } catch (e) {
    socket.close();
    throw e;
  }
  const room = new RemoteRoom(url, u.room, key!, o.identity, rng.fork("requests"), link);
  if (o.invitation === undefined) return room;
  try {
    const got = await room.request<{ room: string; url: string }>("invite.redeem", {
      invitation: o.invitation,
      publicKey: o.identity.publicKey,
    });
    const pair = parseRoomUrl(got.url);
    if (!pair || pair.port !== u.port || pair.serverKey !== key || pair.room !== got.room)
      throw new CleanRoomError("INPUT_INVALID", `"response.url" expected a room of the same server`, { field: "response.url" });
    // same link, same identity: the handle now speaks for the pair's room
    return new RemoteRoom(got.url, got.room, key!, o.identity, rng.fork("pair-requests"), link);
  } catch (e) {
    room.close();
    throw e;
  }
}

/** What {@link verifyApprovals} reports. */
export interface ApprovalVerification {
  ok: boolean;
  collaboration: { hash: string; version: number; ok: boolean; members: string[]; unsigned: string[] } | null;
  templates: { templateHash: string; name: string; owners: string[]; approved: boolean; verified: string[]; forged: string[] }[];
}

/**
 * Check, in this member's kernel, every acceptance of the active collaboration and every
 * approval the server records: each must be a valid signature under the member's key listed
 * in the collaboration this member itself accepted. An approval the operator inserted without
 * the member's key shows under `forged`.
 * @example (await verifyApprovals(room)).ok
 */
export async function verifyApprovals(room: RemoteRoom): Promise<ApprovalVerification> {
  const r = await room.request<{
    collaboration: CollaborationView;
    templates: {
      templateHash: string;
      name: string;
      owners?: string[];
      approvedBy: string[];
      approved: boolean;
      signatures: { member: string; signature: string }[];
    }[];
  }>("approvals");
  const a = r.collaboration.active;
  let collab: ApprovalVerification["collaboration"] = null;
  const keys = new Map<string, string>();
  if (a) {
    const hash = collaborationHash(a.definition as CollaborationDef);
    const unsigned = a.definition.members
      .filter(
        (m) =>
          !verifyStatement(
            { statement: "accept", room: room.roomId, collaboration: hash, member: m.name },
            m.publicKey,
            a.acceptances[m.name] ?? "",
          ),
      )
      .map((m) => m.name);
    for (const m of a.definition.members) keys.set(m.name, m.publicKey);
    // my own entry must carry my key: a definition the operator made up without me fails here
    const me = a.definition.members.find((m) => m.name === room.member)?.publicKey === room.publicKey;
    collab = {
      hash,
      version: a.definition.version,
      ok: hash === a.hash && unsigned.length === 0 && me,
      members: a.definition.members.map((m) => m.name),
      unsigned,
    };
  }
  const templates = r.templates.map((t) => {
    const sigs = new Map(t.signatures.map((s) => [s.member, s.signature]));
    const verified: string[] = [];
    const forged: string[] = [];
    for (const m of t.approvedBy) {
      const k = keys.get(m);
      const ok =
        !!k && verifyStatement({ statement: "approve", room: room.roomId, templateHash: t.templateHash, member: m }, k, sigs.get(m) ?? "");
      (ok ? verified : forged).push(m);
    }
    const owners = t.owners ?? [];
    return { templateHash: t.templateHash, name: t.name, owners, approved: t.approved && forged.length === 0, verified, forged };
  });
  return { ok: (collab?.ok ?? false) && templates.every((t) => t.forged.length === 0), collaboration: collab, templates };
}

/**
 * Create the collaboration (version 1) as its first member: names, public keys and abilities.
 * Nothing runs until every member has accepted (see {@link acceptCollaboration}).
 * @example await createCollaboration(room, { members: [{ name: "retailer", publicKey: r.publicKey, abilities: ["own"] }, …] })
 */
export async function createCollaboration(
  room: RemoteRoom,
  o: { members: { name: string; publicKey: string; abilities: ("own" | "query" | "receive")[] }[]; description?: string },
): Promise<CollaborationView & { collaboration: string }> {
  const definition: CollaborationDef = {
    room: room.roomId,
    version: 1,
    previous: null,
    members: o.members,
    ...(o.description ? { description: o.description } : {}),
  };
  return room.request("collab.create", { definition });
}

/**
 * Propose a change of membership or abilities: the next version, active once every member signed.
 * @example await proposeChange(room, { members: [...] })
 */
export async function proposeChange(
  room: RemoteRoom,
  o: { members: { name: string; publicKey: string; abilities: ("own" | "query" | "receive")[] }[]; description?: string },
): Promise<CollaborationView & { collaboration: string }> {
  const status = await room.request<CollaborationView>("collab.status");
  if (!status.active)
    throw new CleanRoomError("STATE_INVALID", `"collaboration" expected an active collaboration to change, got none`, {
      field: "collaboration",
    });
  const definition: CollaborationDef = {
    room: room.roomId,
    version: status.active.definition.version + 1,
    previous: status.active.hash,
    members: o.members,
    ...(o.description ? { description: o.description } : {}),
  };
  return room.request("collab.propose", { definition });
}

/**
 * Sign the pending collaboration definition (creation or change) after checking its hash here.
 * The definition must name this member with this identity's key; `expectHash` or
 * `expectMembers` pin what you were told about (names are schema, so they are echoed).
 * @example await acceptCollaboration(room, { expectMembers: ["advertiser", "retailer", "observer"] })
 */
export async function acceptCollaboration(
  room: RemoteRoom,
  o: { expectHash?: string; expectMembers?: readonly string[] } = {},
): Promise<CollaborationView> {
  const status = await room.request<CollaborationView>("collab.status");
  const p = status.pending;
  if (!p)
    throw new CleanRoomError("STATE_INVALID", `"collaboration" expected a pending definition to accept, got none`, {
      field: "collaboration",
    });
  const def = p.definition as CollaborationDef;
  const hash = collaborationHash(def);
  if (hash !== p.hash || (o.expectHash !== undefined && hash !== o.expectHash))
    throw new CleanRoomError("SIGNATURE_INVALID", `"collaboration" expected the definition you were shown (hash mismatch): not signed`, {
      field: "collaboration",
    });
  // checked here, not trusted to the server: the definition names THIS member with THIS key, and
  // (when given) exactly the members you were told about — a member slipped in is never signed
  const me = def.members.find((m) => m.name === room.member);
  if (!me || me.publicKey !== room.publicKey)
    throw new CleanRoomError(
      "SIGNATURE_INVALID",
      `"collaboration.members" expected member "${room.member}" with this identity's public key: not signed`,
      { field: "collaboration.members", expected: "this member with its own public key" },
    );
  if (o.expectMembers !== undefined) {
    const want = [...new Set(o.expectMembers)].sort();
    const got = def.members.map((m) => m.name).sort();
    if (want.join("\n") !== got.join("\n"))
      throw new CleanRoomError(
        "SIGNATURE_INVALID",
        `"collaboration.members" expected exactly ${want.join(", ")}, got ${got.join(", ")}: not signed`,
        { field: "collaboration.members", expected: want.join(", ") },
      );
  }
  const signature = room.signStatement({ statement: "accept", room: room.roomId, collaboration: hash, member: room.member });
  return room.request("collab.accept", { collaboration: hash, signature });
}

/**
 * Wait (polling the server) until the collaboration is pending or active, or a template is
 * approved by every owner — how a member's notebook waits for the others.
 * @example await waitForRoom(room, { until: "active" })
 */
export async function waitForRoom(
  room: RemoteRoom,
  o: { until: "pending" | "active" | { approved: string }; timeoutMs?: number; everyMs?: number },
): Promise<void> {
  const deadline = Date.now() + (o.timeoutMs ?? 120_000);
  for (;;) {
    if (o.until === "pending" || o.until === "active") {
      const v = await room.request<CollaborationView>("collab.status");
      if (o.until === "pending" ? v.pending !== null : v.active !== null && v.pending === null) return;
    } else {
      const hash = o.until.approved;
      const r = await room.request<{ templates: { templateHash: string; approved: boolean }[] }>("approvals");
      if (r.templates.some((t) => t.templateHash === hash && t.approved)) return;
    }
    if (Date.now() > deadline)
      throw new CleanRoomError("STATE_INVALID", `"until" expected the room to reach the awaited state, got a timeout`, { field: "until" });
    await new Promise((r) => setTimeout(r, o.everyMs ?? 200));
  }
}
