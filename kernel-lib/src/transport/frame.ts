/**
 * The socket transport's frame format (see socket.ts): a 12-byte header — magic "CRL1",
 * payload length (uint32 BE), the length's bitwise complement (uint32 BE) — then one
 * envelope as strict UTF-8 JSON. Everything here is a pure check that throws a typed
 * refusal naming the field; nothing is delivered before it passes.
 *
 * Threat model: framing hygiene only (no secrecy, no integrity against an attacker — that is
 * the SecureChannel's job): a corrupted length is caught by its check word instead of
 * desynchronising the stream, an oversized length is refused before anything is buffered,
 * and only a plain envelope with exactly the six fields and the expected names passes.
 */
import { CleanRoomError } from "../errors.js";
import { ENVELOPE_VERSION, type Envelope } from "./transport.js";

export const MAGIC = 0x43524c31; // "CRL1"
export const HEADER_BYTES = 12;
export const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:@/-]{0,127}$/;
export const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,255}$/;

/** Encode one payload as a frame (header + bytes). Exposed for tests that play a raw peer. */
export function encodeFrame(payload: Uint8Array): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(MAGIC, 0);
  h.writeUInt32BE(payload.length, 4);
  h.writeUInt32BE(~payload.length >>> 0, 8);
  return Buffer.concat([h, payload]);
}

export const frameRefusal = (field: string, expected: string, got: string) =>
  new CleanRoomError("INPUT_INVALID", `"${field}" expected ${expected}, got ${got}`, { field, expected, got });

const refusal = frameRefusal;

/** Check a 12-byte header and return the payload length (≤ `maxFrame`). */
export function frameLength(h: Uint8Array, maxFrame: number): number {
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const len = v.getUint32(4);
  if (v.getUint32(0) !== MAGIC) throw refusal("frame.header", `the "CRL1" frame magic`, "other bytes");
  if (~len >>> 0 !== v.getUint32(8)) throw refusal("frame.length", "a length whose check word matches", "a corrupted length");
  if (len > maxFrame) throw refusal("frame.length", `at most ${maxFrame} bytes (maxFrameBytes)`, `${len} bytes`);
  return len;
}

/** Decode and check one frame payload as an envelope from `peer` (if known) to `self`; throws a typed refusal. */
export function decodeEnvelope(payload: Uint8Array, decoder: TextDecoder, self: string, peer: string): Envelope {
  let text: string, v: unknown;
  try {
    text = decoder.decode(payload);
  } catch {
    throw refusal("frame", "UTF-8 text", "invalid UTF-8");
  }
  try {
    v = JSON.parse(text);
  } catch {
    throw refusal("frame", "one JSON envelope", "text that is not JSON");
  }
  if (v === null || typeof v !== "object" || Array.isArray(v))
    throw refusal("message", "an envelope object", Array.isArray(v) ? "an array" : String(v === null ? "null" : typeof v));
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(",");
  if (keys !== "body,from,kind,protocol,to,v")
    throw refusal(
      "message",
      "exactly the fields v, protocol, kind, from, to, body",
      `fields ${JSON.stringify(Object.keys(o).slice(0, 8))}`,
    );
  if (o.v !== ENVELOPE_VERSION)
    throw refusal("message.v", `envelope version ${ENVELOPE_VERSION}`, typeof o.v === "number" ? String(o.v) : typeof o.v);
  for (const f of ["protocol", "kind"] as const)
    if (typeof o[f] !== "string" || !TOKEN.test(o[f] as string))
      throw refusal(`message.${f}`, "a protocol/kind token (1–256 characters)", typeof o[f]);
  if (typeof o.from !== "string" || !NAME.test(o.from)) throw refusal("message.from", "a party name", typeof o.from);
  if (peer && o.from !== peer) throw refusal("message.from", `the peer "${peer}"`, "another sender");
  if (o.to !== self) throw refusal("message.to", `this end "${self}"`, "another recipient");
  return o as unknown as Envelope;
}
