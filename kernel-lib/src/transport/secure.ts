/**
 * A Transport wrapped in an X25519/HKDF/AES-256-GCM SecureChannel (crypto/channel.ts): the
 * handshake hellos and then every message cross the inner transport as `channel.frame`
 * envelopes; what the receiver processes is what came out of the channel. A message with a
 * binary attachment is sealed as one plaintext — a 0x00 byte, the envelope JSON's length
 * (uint32 BE), the JSON, the attachment — whose ciphertext crosses as the frame's own
 * attachment (no base64); a plaintext that starts with anything else is the envelope's JSON.
 *
 * Threat model: an observer of the inner transport sees frame sizes, order and the public
 * hellos only; a modified, replayed, reordered or reflected frame is refused
 * (CHANNEL_* codes) before the message reaches its protocol. No peer authentication unless
 * the channel is given static keys (see crypto/channel.ts).
 */
import { CleanRoomError, invalid } from "../errors.js";
import { decodeEnvelope, frameRefusal } from "./frame.js";
import type { Rng } from "../rng.js";
import { CHANNEL_PROTOCOL, SecureChannel, type ChannelFrame, type ChannelFrameHeader, type ChannelHello } from "../crypto/channel.js";
import { utf8, type KeyPair } from "../crypto/primitives.js";
import { assertAttachment, assertPlainJson, tapMessage, ENVELOPE_VERSION, type Envelope, type Tap, type Transport } from "./transport.js";

/** One plaintext for an envelope and its attachment: 0x00 ‖ JSON length (uint32 BE) ‖ JSON ‖ bytes. */
function packPlain(json: string, bytes: Uint8Array): Uint8Array {
  const j = Buffer.from(json, "utf8");
  const out = new Uint8Array(5 + j.length + bytes.length);
  new DataView(out.buffer).setUint32(1, j.length);
  out.set(j, 5);
  out.set(bytes, 5 + j.length);
  return out;
}

/**
 * The envelope (with its attachment, if any) in an opened plaintext from `peer` to `self`,
 * checked as the socket checks a frame (frame.ts `decodeEnvelope`: strict UTF-8 JSON, exactly
 * the six envelope fields); a malformed one is a typed refusal even from an authenticated peer.
 */
function unpackPlain(pt: Uint8Array, self: string, peer: string): Envelope {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  if (pt[0] !== 0) return decodeEnvelope(pt, decoder, self, peer);
  const n = pt.length >= 5 ? new DataView(pt.buffer, pt.byteOffset, pt.length).getUint32(1) : -1;
  if (n < 0 || n > pt.length - 5)
    throw frameRefusal("message", "an envelope's JSON length within the sealed message", "a length beyond it");
  const env = decodeEnvelope(pt.subarray(5, 5 + n), decoder, self, peer);
  env.bytes = pt.subarray(5 + n);
  return env;
}

/**
 * Run the channel handshake over `inner` (the initiator sends its hello first) and return a
 * Transport that seals every message. `tap` sees each plaintext envelope this end sends.
 *
 * @example
 * const [a, b] = linkedPair("A", "B");
 * const [sa, sb] = await Promise.all([secureTransport(a, "initiator", { rng: rngA }), secureTransport(b, "responder", { rng: rngB })]);
 */
export async function secureTransport(
  inner: Transport,
  role: "initiator" | "responder",
  o: {
    rng: Rng;
    tap?: Tap;
    /** This end's static X25519 key (authenticates it to a peer that pins its public key). */
    staticKey?: KeyPair;
    /** The peer's pinned static public key, or (responder) a choice made from the initiator's hello. */
    peerStaticPublicKey?: Uint8Array | ((hello: ChannelHello) => Uint8Array);
  },
): Promise<Transport & { readonly transcriptHash: string }> {
  let channel: SecureChannel;
  const keys = (hello: ChannelHello | null) => {
    if (!o.staticKey) return {};
    const p = o.peerStaticPublicKey;
    if (p === undefined) invalid("peerStaticPublicKey", "given together with staticKey", p);
    if (typeof p !== "function") return { staticKey: o.staticKey, peerStaticPublicKey: p };
    if (hello === null) return invalid("peerStaticPublicKey", "a key (the initiator has no hello to choose from)", "a function");
    return { staticKey: o.staticKey, peerStaticPublicKey: p(hello) };
  };
  if (role === "initiator") {
    const hello = SecureChannel.initiate({ party: inner.self, rng: o.rng, ...keys(null) });
    await inner.send(CHANNEL_PROTOCOL, "channel.hello", hello.hello);
    const reply = await inner.receive({ protocol: CHANNEL_PROTOCOL, kind: "channel.hello" });
    hello.channel.complete(reply.body as unknown as ChannelHello);
    channel = hello.channel;
  } else {
    const hello = await inner.receive({ protocol: CHANNEL_PROTOCOL, kind: "channel.hello" });
    const peerHello = hello.body as unknown as ChannelHello;
    const reply = SecureChannel.accept(peerHello, { party: inner.self, rng: o.rng, ...keys(peerHello) });
    await inner.send(CHANNEL_PROTOCOL, "channel.hello", reply.hello);
    channel = reply.channel;
  }
  return {
    self: inner.self,
    peer: inner.peer,
    transcriptHash: channel.transcriptHash,
    async send(protocol, kind, body, attachment) {
      assertPlainJson(body, "body");
      const bytes = assertAttachment(attachment);
      const env: Envelope = { v: ENVELOPE_VERSION, protocol, kind, from: inner.self, to: inner.peer, body };
      const plain = JSON.stringify(env);
      tapMessage(o.tap, plain, bytes);
      if (!bytes) return inner.send(CHANNEL_PROTOCOL, "channel.frame", channel.seal(utf8(plain), kind));
      const { header, ciphertext } = channel.sealRaw(packPlain(plain, bytes), kind);
      await inner.send(CHANNEL_PROTOCOL, "channel.frame", header, ciphertext);
    },
    async receive(expect = {}) {
      const frame = await inner.receive({ protocol: CHANNEL_PROTOCOL, kind: "channel.frame" });
      const env = unpackPlain(
        frame.bytes
          ? channel.openRaw(frame.body as unknown as ChannelFrameHeader, frame.bytes)
          : channel.open(frame.body as unknown as ChannelFrame),
        inner.self,
        inner.peer,
      );
      if (expect.protocol !== undefined && env.protocol !== expect.protocol)
        throw new CleanRoomError("STATE_INVALID", `"message.protocol" expected ${expect.protocol}, got ${env.protocol}`, {
          field: "message.protocol",
        });
      if (expect.kind !== undefined && env.kind !== expect.kind)
        throw new CleanRoomError("STATE_INVALID", `"message.kind" expected ${expect.kind}, got ${env.kind}`, { field: "message.kind" });
      return env;
    },
    close: () => inner.close(),
  };
}
