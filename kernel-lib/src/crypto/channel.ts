/**
 * An encrypted, ordered channel between two participants (advertiser ↔ retailer, party ↔
 * clean room), in the shape of a minimal Noise/TLS 1.3 record layer:
 *
 *  1. handshake — each side sends a `ChannelHello` with a fresh X25519 ephemeral key
 *     (RFC 7748) and, optionally, its static X25519 identity key; the initiator also picks
 *     the session id;
 *  2. keys — `ikm = ee [‖ es ‖ se ‖ ss]` (Noise KK's terms with static keys, e = ephemeral,
 *     s = static, initiator first), `salt = SHA-256(transcript)` where the
 *     transcript is both hellos in canonical JSON, and HKDF-SHA256 (RFC 5869) with info
 *     `"…/initiator→responder"` or `"…/responder→initiator"`: one key per direction, so a
 *     frame reflected back to its sender does not open;
 *  3. records — AES-256-GCM (NIST SP 800-38D) with nonce = direction tag (4 bytes) ‖
 *     sequence number (8 bytes, big-endian) and associated data binding protocol, session,
 *     direction, sequence and purpose.
 *
 * Threat model: an active network attacker who can drop, replay, reorder, modify, reflect
 * or paste frames from another session. All of these are refused with typed errors:
 * `CHANNEL_WRONG_SESSION`, `CHANNEL_REPLAY`, `CHANNEL_REORDER`, `CHANNEL_TAMPERED`. Without
 * static keys the channel is anonymous (like unauthenticated DH) — pass `staticKey` and
 * `peerStaticPublicKey` to bind it to known identities (implicit authentication: a MITM
 * cannot compute the static–static term, and a thief of one party's static key still
 * cannot compute es/se to impersonate the other party to it). No forward secrecy beyond the ephemeral keys'
 * lifetime: an endpoint's keys live as long as the object.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng } from "../rng.js";
import {
  aesGcmOpen,
  aesGcmSeal,
  b64,
  fromB64,
  fromHex,
  hex,
  hkdfSha256,
  utf8,
  x25519KeyPair,
  x25519Shared,
  type KeyPair,
} from "./primitives.js";

export const CHANNEL_PROTOCOL = "cleanroom-lab/channel/v1";
type Role = "initiator" | "responder";
type Direction = "i2r" | "r2i";

export interface ChannelHello {
  kind: "channel.hello";
  protocol: typeof CHANNEL_PROTOCOL;
  role: Role;
  party: string;
  sessionId: string;
  ephemeralPublicKey: string;
  staticPublicKey: string | null;
}

export interface ChannelFrame {
  kind: "channel.frame";
  protocol: typeof CHANNEL_PROTOCOL;
  sessionId: string;
  direction: Direction;
  seq: number;
  purpose: string;
  ciphertext: string;
}

/** A frame without its ciphertext: what crosses as JSON when the ciphertext travels as raw bytes. */
export type ChannelFrameHeader = Omit<ChannelFrame, "ciphertext">;

export interface ChannelOptions {
  /** Name of this participant, shown in the hello (not secret). */
  party: string;
  rng: Rng;
  /** Long-term X25519 identity of this participant (optional). */
  staticKey?: KeyPair;
  /** Expected long-term X25519 key of the peer (required iff `staticKey` is given). */
  peerStaticPublicKey?: Uint8Array;
}

const DIR_TAG: Record<Direction, number> = { i2r: 0x69327200, r2i: 0x72326900 };

function checkOptions(o: ChannelOptions): void {
  if (o === null || typeof o !== "object") invalid("options", "ChannelOptions", o);
  if (typeof o.party !== "string" || o.party.length === 0 || o.party.length > 128)
    invalid("party", "non-empty string (≤ 128 chars)", o.party);
  if (!o.rng || typeof o.rng.bytes !== "function") invalid("rng", "an Rng", o.rng);
  if ((o.staticKey === undefined) !== (o.peerStaticPublicKey === undefined))
    invalid("peerStaticPublicKey", "given together with staticKey", o.peerStaticPublicKey);
}

function checkHello(h: unknown, role: Role): ChannelHello {
  if (h === null || typeof h !== "object") invalid("hello", "a channel.hello message", h, "PARAM_INVALID");
  const o = h as Record<string, unknown>;
  if (o.kind !== "channel.hello" || o.protocol !== CHANNEL_PROTOCOL)
    invalid("hello.kind", `"channel.hello" of ${CHANNEL_PROTOCOL}`, o.kind);
  if (o.role !== role) invalid("hello.role", `"${role}"`, o.role);
  if (typeof o.party !== "string" || o.party.length === 0) invalid("hello.party", "non-empty string", o.party);
  if (typeof o.sessionId !== "string" || !/^[0-9a-f]{32}$/.test(o.sessionId)) invalid("hello.sessionId", "32 hex characters", o.sessionId);
  if (typeof o.ephemeralPublicKey !== "string" || !/^[0-9a-f]{64}$/.test(o.ephemeralPublicKey))
    invalid("hello.ephemeralPublicKey", "64 hex characters", o.ephemeralPublicKey, "CRYPTO_INVALID_KEY");
  if (o.staticPublicKey !== null && (typeof o.staticPublicKey !== "string" || !/^[0-9a-f]{64}$/.test(o.staticPublicKey)))
    invalid("hello.staticPublicKey", "64 hex characters or null", o.staticPublicKey, "CRYPTO_INVALID_KEY");
  return o as unknown as ChannelHello;
}

const canonicalHello = (h: ChannelHello) =>
  JSON.stringify([h.protocol, h.role, h.party, h.sessionId, h.ephemeralPublicKey, h.staticPublicKey]);

/**
 * One end of an encrypted channel. Create with `SecureChannel.initiate` / `SecureChannel.accept`.
 *
 * @example
 * const { channel: adv, hello } = SecureChannel.initiate({ party: "advertiser", rng: secureRng() });
 * const { channel: ret, hello: reply } = SecureChannel.accept(hello, { party: "retailer", rng: secureRng() });
 * adv.complete(reply);
 * const frame = adv.seal(utf8("hello"), "psi.request");
 * ret.open(frame) // → bytes of "hello"
 */
export class SecureChannel {
  readonly role: Role;
  readonly sessionId: string;
  private sendKey: Uint8Array | undefined;
  private recvKey: Uint8Array | undefined;
  private sendSeq = 0;
  private recvSeq = 0;
  /** SHA-256 of the handshake transcript, hex: both sides show the same value. */
  transcriptHash = "";

  private constructor(
    role: Role,
    sessionId: string,
    private readonly eph: KeyPair,
    private readonly own: ChannelHello,
    private readonly opts: ChannelOptions,
  ) {
    this.role = role;
    this.sessionId = sessionId;
  }

  /** Start a channel: returns the endpoint and the hello to send to the peer. */
  static initiate(options: ChannelOptions): { channel: SecureChannel; hello: ChannelHello } {
    checkOptions(options);
    const sessionId = hex(options.rng.bytes(16));
    const eph = x25519KeyPair(options.rng);
    const hello: ChannelHello = {
      kind: "channel.hello",
      protocol: CHANNEL_PROTOCOL,
      role: "initiator",
      party: options.party,
      sessionId,
      ephemeralPublicKey: hex(eph.publicKey),
      staticPublicKey: options.staticKey ? hex(options.staticKey.publicKey) : null,
    };
    return { channel: new SecureChannel("initiator", sessionId, eph, hello, options), hello };
  }

  /** Answer an initiator's hello: returns the (ready) endpoint and the reply hello. */
  static accept(peerHello: ChannelHello, options: ChannelOptions): { channel: SecureChannel; hello: ChannelHello } {
    checkOptions(options);
    const peer = checkHello(peerHello, "initiator");
    const eph = x25519KeyPair(options.rng);
    const hello: ChannelHello = {
      kind: "channel.hello",
      protocol: CHANNEL_PROTOCOL,
      role: "responder",
      party: options.party,
      sessionId: peer.sessionId,
      ephemeralPublicKey: hex(eph.publicKey),
      staticPublicKey: options.staticKey ? hex(options.staticKey.publicKey) : null,
    };
    const ch = new SecureChannel("responder", peer.sessionId, eph, hello, options);
    ch.derive(peer, hello);
    return { channel: ch, hello };
  }

  /** Initiator: finish the handshake with the responder's hello. */
  complete(peerHello: ChannelHello): void {
    if (this.role !== "initiator" || this.sendKey)
      throw new CleanRoomError(
        "STATE_INVALID",
        `"channel" expected an initiator awaiting the reply hello, got ${this.sendKey ? "a completed channel" : "a responder"}`,
      );
    const peer = checkHello(peerHello, "responder");
    if (peer.sessionId !== this.sessionId)
      throw new CleanRoomError("CHANNEL_WRONG_SESSION", `"hello.sessionId" expected this channel's session, got another session's`, {
        field: "hello.sessionId",
      });
    this.derive(this.own, peer);
  }

  private derive(initiator: ChannelHello, responder: ChannelHello): void {
    const peer = this.role === "initiator" ? responder : initiator;
    let ikm = x25519Shared(this.eph.secretKey, fromHex(peer.ephemeralPublicKey));
    if (this.opts.staticKey) {
      const expected = hex(this.opts.peerStaticPublicKey!);
      if (peer.staticPublicKey !== expected)
        throw new CleanRoomError(
          "CRYPTO_INVALID_KEY",
          `"hello.staticPublicKey" expected the peer's known identity key, got ${peer.staticPublicKey === null ? "none" : "a different key"}`,
          { field: "hello.staticPublicKey" },
        );
      const peerStatic = fromHex(peer.staticPublicKey);
      const ss = x25519Shared(this.opts.staticKey.secretKey, peerStatic);
      // Noise KK's mixed terms: es = DH(e_i, S_r), se = DH(s_i, E_r). Without them a thief of
      // ONE party's static key could impersonate the other party to it (key-compromise
      // impersonation): ee needs only its own ephemeral, ss only the stolen static key.
      const eToStatic = x25519Shared(this.eph.secretKey, peerStatic); // mine: e ⋅ S_peer
      const sToEph = x25519Shared(this.opts.staticKey.secretKey, fromHex(peer.ephemeralPublicKey)); // mine: s ⋅ E_peer
      const [es, se] = this.role === "initiator" ? [eToStatic, sToEph] : [sToEph, eToStatic];
      ikm = new Uint8Array([...ikm, ...es, ...se, ...ss]);
    } else if (peer.staticPublicKey !== null) {
      throw new CleanRoomError("CRYPTO_INVALID_KEY", `"hello.staticPublicKey" expected none (anonymous channel), got a static key`, {
        field: "hello.staticPublicKey",
      });
    }
    const th = sha256(utf8(canonicalHello(initiator) + "\n" + canonicalHello(responder)));
    this.transcriptHash = hex(th);
    const i2r = hkdfSha256(ikm, th, utf8(`${CHANNEL_PROTOCOL}/key/initiator→responder`), 32);
    const r2i = hkdfSha256(ikm, th, utf8(`${CHANNEL_PROTOCOL}/key/responder→initiator`), 32);
    [this.sendKey, this.recvKey] = this.role === "initiator" ? [i2r, r2i] : [r2i, i2r];
    this.eph.secretKey.fill(0);
  }

  private get sendDir(): Direction {
    return this.role === "initiator" ? "i2r" : "r2i";
  }
  private get recvDir(): Direction {
    return this.role === "initiator" ? "r2i" : "i2r";
  }

  /**
   * Encrypt `plaintext` as the next frame, labelled with `purpose`.
   *
   * @example
   * const frame = channel.seal(utf8(JSON.stringify(psiRequest)), "psi.request");
   */
  seal(plaintext: Uint8Array, purpose: string): ChannelFrame {
    const { header, ciphertext } = this.sealRaw(plaintext, purpose);
    return { ...header, ciphertext: b64(ciphertext) };
  }

  /**
   * `seal` with the ciphertext (‖ tag) as raw bytes beside the frame's header, for a link
   * that carries binary attachments (transport/secure.ts): no base64.
   * @example const { header, ciphertext } = channel.sealRaw(points, "psi.request");
   */
  sealRaw(plaintext: Uint8Array, purpose: string): { header: ChannelFrameHeader; ciphertext: Uint8Array } {
    if (!this.sendKey) throw new CleanRoomError("STATE_INVALID", `"channel" expected a completed handshake, got a pending one`);
    if (!(plaintext instanceof Uint8Array)) invalid("plaintext", "Uint8Array", plaintext);
    if (typeof purpose !== "string" || purpose.length === 0 || purpose.length > 256)
      invalid("purpose", "non-empty string (≤ 256 chars)", purpose);
    if (this.sendSeq >= Number.MAX_SAFE_INTEGER)
      throw new CleanRoomError("STATE_INVALID", `"channel" expected fewer than 2^53 frames, got the limit: open a new channel`);
    const seq = this.sendSeq++;
    const dir = this.sendDir;
    const ciphertext = aesGcmSeal(this.sendKey, nonceFor(dir, seq), plaintext, aadFor(this.sessionId, dir, seq, purpose));
    return {
      header: { kind: "channel.frame", protocol: CHANNEL_PROTOCOL, sessionId: this.sessionId, direction: dir, seq, purpose },
      ciphertext,
    };
  }

  /**
   * Decrypt the next frame from the peer. Refuses frames from another session, replays,
   * out-of-order frames, reflections of our own frames and any modification.
   *
   * @example
   * const bytes = channel.open(frame);
   */
  open(frame: ChannelFrame): Uint8Array {
    checkFrameShape(frame, FRAME_KEYS);
    return this.openChecked(frame, typeof frame.ciphertext === "string" ? fromB64(frame.ciphertext) : undefined);
  }

  /**
   * `open` for a frame whose ciphertext came as raw bytes beside its header (`sealRaw`).
   * @example const points = channel.openRaw(envelope.body, envelope.bytes);
   */
  openRaw(frame: ChannelFrameHeader, ciphertext: Uint8Array | undefined): Uint8Array {
    checkFrameShape(frame, HEADER_KEYS);
    return this.openChecked(frame, ciphertext);
  }

  private openChecked(frame: ChannelFrameHeader, ciphertext: Uint8Array | undefined): Uint8Array {
    if (!this.recvKey) throw new CleanRoomError("STATE_INVALID", `"channel" expected a completed handshake, got a pending one`);
    if (frame.sessionId !== this.sessionId)
      throw new CleanRoomError("CHANNEL_WRONG_SESSION", `"frame.sessionId" expected this channel's session, got another session's`, {
        field: "frame.sessionId",
      });
    if (frame.direction !== this.recvDir)
      throw new CleanRoomError(
        "CHANNEL_TAMPERED",
        `"frame.direction" expected "${this.recvDir}", got "${String(frame.direction)}" (a reflected frame?)`,
        { field: "frame.direction" },
      );
    if (!Number.isSafeInteger(frame.seq) || frame.seq < 0) invalid("frame.seq", "non-negative integer", frame.seq, "CHANNEL_TAMPERED");
    if (frame.seq < this.recvSeq)
      throw new CleanRoomError("CHANNEL_REPLAY", `"frame.seq" expected ${this.recvSeq}, got ${frame.seq} (already received)`, {
        field: "frame.seq",
        expectedSeq: this.recvSeq,
        receivedSeq: frame.seq,
      });
    if (frame.seq > this.recvSeq)
      throw new CleanRoomError(
        "CHANNEL_REORDER",
        `"frame.seq" expected ${this.recvSeq}, got ${frame.seq} (out of order or a frame was dropped)`,
        { field: "frame.seq", expectedSeq: this.recvSeq, receivedSeq: frame.seq },
      );
    if (typeof frame.purpose !== "string" || !(ciphertext instanceof Uint8Array))
      invalid("frame", "purpose and ciphertext", frame, "CHANNEL_TAMPERED");
    let pt: Uint8Array;
    try {
      pt = aesGcmOpen(
        this.recvKey,
        nonceFor(frame.direction, frame.seq),
        ciphertext,
        aadFor(this.sessionId, frame.direction, frame.seq, frame.purpose),
      );
    } catch {
      throw new CleanRoomError(
        "CHANNEL_TAMPERED",
        `"frame" expected an authentic frame, got one whose ciphertext, purpose or header was modified (or from another session with the same id)`,
        { field: "frame", seq: frame.seq },
      );
    }
    this.recvSeq++;
    return pt;
  }
}

const HEADER_KEYS = "direction,kind,protocol,purpose,seq,sessionId";
const FRAME_KEYS = "ciphertext,direction,kind,protocol,purpose,seq,sessionId";

/**
 * A frame (or, for `openRaw`, a header) with exactly its fields: a header that also carries a
 * `ciphertext` beside raw bytes, or any other extra field, is refused.
 */
function checkFrameShape(frame: unknown, keys: string): void {
  const f = frame as Partial<ChannelFrame> | null;
  if (f === null || typeof f !== "object" || Array.isArray(f) || f.kind !== "channel.frame" || f.protocol !== CHANNEL_PROTOCOL)
    invalid("frame", "a channel.frame message", frame, "CHANNEL_TAMPERED");
  if (Object.keys(f).sort().join(",") !== keys)
    throw new CleanRoomError("CHANNEL_TAMPERED", `"frame" expected exactly the fields ${keys.split(",").join(", ")}, got others`, {
      field: "frame",
    });
}

function nonceFor(dir: Direction, seq: number): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(0, DIR_TAG[dir]);
  v.setBigUint64(4, BigInt(seq));
  return n;
}

function aadFor(sessionId: string, dir: Direction, seq: number, purpose: string): Uint8Array {
  return utf8(JSON.stringify([CHANNEL_PROTOCOL, sessionId, dir, seq, purpose]));
}
