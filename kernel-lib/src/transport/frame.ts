/**
 * The socket transport's frame format (see socket.ts): a 12-byte header — magic, payload
 * length (uint32 BE), the length's bitwise complement (uint32 BE) — then the payload. Magic
 * "CRL1": the payload is one envelope as strict UTF-8 JSON. Magic "CRB1" (a message with a
 * binary attachment): the payload is the JSON's length (uint32 BE), the envelope's JSON, then
 * the attachment's raw bytes (e.g. PSI's packed points). Everything here is a pure check that
 * throws a typed refusal naming the field; nothing is delivered before it passes.
 *
 * Threat model: framing hygiene only (no secrecy, no integrity against an attacker — that is
 * the SecureChannel's job): a corrupted length is caught by its check word instead of
 * desynchronising the stream, an oversized length is refused before anything is buffered,
 * and only a plain envelope with exactly the six fields and the expected names passes.
 */
import { CleanRoomError } from "../errors.js";
import { ENVELOPE_VERSION, type Envelope } from "./transport.js";

export const MAGIC = 0x43524c31; // "CRL1"
export const BINARY_MAGIC = 0x43524231; // "CRB1"
export const HEADER_BYTES = 12;
export const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:@/-]{0,127}$/;
export const TOKEN = /^[A-Za-z0-9][A-Za-z0-9._:/@-]{0,255}$/;

function header(magic: number, length: number): Buffer {
  const h = Buffer.alloc(HEADER_BYTES);
  h.writeUInt32BE(magic, 0);
  h.writeUInt32BE(length, 4);
  h.writeUInt32BE(~length >>> 0, 8);
  return h;
}

/** Encode one payload as a frame (header + bytes). Exposed for tests that play a raw peer. */
export function encodeFrame(payload: Uint8Array): Buffer {
  return Buffer.concat([header(MAGIC, payload.length), payload]);
}

/**
 * The parts of a "CRB1" frame carrying `json` (an envelope's UTF-8 JSON) and the attachment
 * `bytes`, to be written in order (the attachment is not copied). Exposed for tests that play a raw peer.
 */
export function encodeBinaryFrame(json: Uint8Array, bytes: Uint8Array): Buffer[] {
  const n = Buffer.alloc(4);
  n.writeUInt32BE(json.length, 0);
  return [
    header(BINARY_MAGIC, 4 + json.length + bytes.length),
    n,
    Buffer.from(json),
    Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length),
  ];
}

export const frameRefusal = (field: string, expected: string, got: string) =>
  new CleanRoomError("INPUT_INVALID", `"${field}" expected ${expected}, got ${got}`, { field, expected, got });

const refusal = frameRefusal;

/** Check a 12-byte header; return the payload length (≤ `maxFrame`) and whether the frame carries an attachment. */
export function frameLength(h: Uint8Array, maxFrame: number): { length: number; binary: boolean } {
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  const len = v.getUint32(4);
  const magic = v.getUint32(0);
  if (magic !== MAGIC && magic !== BINARY_MAGIC) throw refusal("frame.header", `the "CRL1" or "CRB1" frame magic`, "other bytes");
  if (~len >>> 0 !== v.getUint32(8)) throw refusal("frame.length", "a length whose check word matches", "a corrupted length");
  if (len > maxFrame) throw refusal("frame.length", `at most ${maxFrame} bytes (maxFrameBytes)`, `${len} bytes`);
  if (magic === BINARY_MAGIC && len < 4) throw refusal("frame.length", "at least 4 bytes in a CRB1 frame", `${len} bytes`);
  return { length: len, binary: magic === BINARY_MAGIC };
}

/**
 * Decode and check a frame's payload (see {@link decodeEnvelope}); a "CRB1" payload's
 * attachment becomes `bytes` (a view of the frame's own payload buffer: not copied, never reused).
 */
export function decodeFrame(payload: Uint8Array, binary: boolean, decoder: TextDecoder, self: string, peer: string): Envelope {
  if (!binary) return decodeEnvelope(payload, decoder, self, peer);
  const jsonLength = new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0);
  if (jsonLength > payload.length - 4)
    throw refusal("frame.jsonLength", `at most ${payload.length - 4} bytes (the payload after it)`, `${jsonLength} bytes`);
  const env = decodeEnvelope(payload.subarray(4, 4 + jsonLength), decoder, self, peer);
  env.bytes = new Uint8Array(payload.buffer, payload.byteOffset + 4 + jsonLength, payload.length - 4 - jsonLength);
  return env;
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
