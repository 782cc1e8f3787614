/**
 * PSI messages and their two encodings (psi.ts runs the protocol over them).
 *
 * A message's points (`encryptedElements`) are either PACKED — one `Uint8Array` of n × 32
 * bytes, what the parties exchange (runPsi, psiParty: the bytes travel as the transport
 * envelope's binary attachment, `toEnvelope` / `fromEnvelope`) — or the OpenMined-shaped JSON
 * VIEW, one 64-hex string per point, which the direct `PsiClient`/`PsiServer` API speaks by
 * default and which `psiMessageView` builds on demand for display (`runPsi({ keepMessages })`).
 * Both decode to the same packed points through one validating pass (`decodePoints`), and the
 * transcript digest of a message (`messageDigest`) is the SHA-256 of its JSON view whatever
 * encoding carried it, so both parties compute the same digest from either form.
 *
 * Threat model: everything here is a pure check or conversion of what a semi-honest peer sent;
 * refusals are typed (PSI_INVALID_MESSAGE, PSI_EMPTY_SET, PSI_SET_TOO_LARGE,
 * PSI_DUPLICATE_ELEMENT) and name the field, never echo a value. Point validity (canonical,
 * not the identity) is the backend's check, made by psi.ts after this one.
 */
import { createHash } from "node:crypto";
import { CleanRoomError, bug, invalid } from "../errors.js";
import type { Envelope } from "../transport/transport.js";
import { JOIN_KEY_BYTES, POINT_BYTES } from "./psi-backend.js";

/**
 * Protocol version of the PSI messages. v2: points may cross packed (binary attachment); a
 * v1 peer is refused with a typed error (the transport's expected protocol, or
 * `psi.*.protocol`). Join keys are derived exactly as in v1 (`JOIN_KEY_INFO`).
 */
export const PSI_PROTOCOL = "cleanroom-lab/psi/v2";
/** HKDF info prefix of join keys (unchanged since v1, so join keys are the same). */
export const JOIN_KEY_INFO = "cleanroom-lab/psi/v1/join-key/";
export type PsiMode = "intersection" | "cardinality" | "joinKeys";

/** A message's points: packed (n × 32 bytes) or the OpenMined-shaped view (one 64-hex string each). */
export type PsiPoints = Uint8Array | string[];
/** Which of the two a party emits: "hex" (the OpenMined JSON shape, default of the direct API) or "packed". */
export type PsiEncoding = "hex" | "packed";

export interface PsiRequest<P extends PsiPoints = string[]> {
  kind: "psi.request";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  mode: PsiMode;
  revealIntersection: boolean;
  dst: string;
  encryptedElements: P;
}
export interface PsiSetup<P extends PsiPoints = string[]> {
  kind: "psi.setup";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  encryptedElements: P;
}
export interface PsiResponse<P extends PsiPoints = string[]> {
  kind: "psi.response";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  order: "request" | "sorted";
  encryptedElements: P;
}
export interface PsiFinish<P extends PsiPoints = string[]> {
  kind: "psi.finish";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  encryptedElements: P;
}
/** A PSI message in its OpenMined-shaped JSON view (the default) or with points `P`. */
export type PsiMessage<P extends PsiPoints = string[]> = PsiRequest<P> | PsiSetup<P> | PsiResponse<P> | PsiFinish<P>;

/** Number of points in either encoding. */
export const pointCount = (p: PsiPoints): number => (p instanceof Uint8Array ? p.length / POINT_BYTES : p.length);

/** Packed points (n × 32 bytes) as lowercase hex strings, one per point (the JSON view). */
export function hexPoints(packed: Uint8Array, from = 0, to = packed.length / POINT_BYTES): string[] {
  const out: string[] = new Array(to - from);
  const STEP = 8192; // points per hex conversion: bounded temporary strings
  for (let i = from; i < to; i += STEP) {
    const end = Math.min(to, i + STEP);
    const h = Buffer.from(packed.buffer, packed.byteOffset + i * POINT_BYTES, (end - i) * POINT_BYTES).toString("hex");
    for (let j = i; j < end; j++) out[j - from] = h.slice((j - i) * 64, (j - i + 1) * 64);
  }
  return out;
}

/**
 * The message in its OpenMined-shaped JSON view (hex strings), e.g. for display; a message
 * already in that shape is returned as it is.
 * @example psiMessageView(packedRequest).encryptedElements.slice(0, 2) // ["e2f2…", "8c1a…"]
 */
export function psiMessageView<M extends PsiMessage<PsiPoints>>(m: M): M & { encryptedElements: string[] } {
  const els = m.encryptedElements;
  return (els instanceof Uint8Array ? { ...m, encryptedElements: hexPoints(els) } : m) as M & { encryptedElements: string[] };
}

/** The message for a Transport: the JSON body (no points) and the packed points as its attachment. */
export function toEnvelope(m: PsiMessage<PsiPoints>): { body: Record<string, unknown>; bytes?: Uint8Array } {
  const { encryptedElements, ...body } = m;
  return encryptedElements instanceof Uint8Array ? { body, bytes: encryptedElements } : { body: m as unknown as Record<string, unknown> };
}

const PSI_KINDS: readonly string[] = ["psi.request", "psi.setup", "psi.response", "psi.finish"];

/** A received envelope as a message (unchecked: psi.ts validates it): its attachment becomes the packed points. */
export function fromEnvelope(env: Envelope): unknown {
  const body = env.body;
  if (!env.bytes) return body;
  if (body === null || typeof body !== "object" || Array.isArray(body) || "encryptedElements" in body)
    invalid(
      // the field names the kind only if it is a PSI one (the kind is the peer's text)
      `${PSI_KINDS.includes(env.kind) ? env.kind : "message"}.encryptedElements`,
      "the points once (as the binary attachment)",
      typeof body,
      "PSI_INVALID_MESSAGE",
    );
  return { ...body, encryptedElements: env.bytes };
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Check a received message's points (shape, count bounds, hex or byte length, duplicates) in
 * one pass and return them packed (n × 32 bytes; a packed input is returned as it is).
 */
export function decodePoints(field: string, els: unknown, limits: { max: number; exactly?: number }): Uint8Array {
  const f = `${field}.encryptedElements`;
  if (!Array.isArray(els) && !(els instanceof Uint8Array))
    invalid(f, "array of hex points or n × 32 packed bytes", els, "PSI_INVALID_MESSAGE");
  if (els instanceof Uint8Array && els.length % POINT_BYTES !== 0)
    invalid(f, `a multiple of ${POINT_BYTES} bytes (packed points)`, `${els.length} bytes`, "PSI_INVALID_MESSAGE");
  const n = pointCount(els);
  if (n === 0) throw new CleanRoomError("PSI_EMPTY_SET", `"${f}" expected at least one element, got an empty set`, { field: f });
  if (n > limits.max)
    throw new CleanRoomError("PSI_SET_TOO_LARGE", `"${f}" expected at most ${limits.max} elements, got ${n}`, {
      field: f,
      limit: limits.max,
      size: n,
    });
  if (limits.exactly !== undefined && n !== limits.exactly)
    invalid(f, `exactly ${limits.exactly} elements`, new Array(n), "PSI_INVALID_MESSAGE");
  const packed = els instanceof Uint8Array ? els : decodeHex(f, els);
  const dup = firstDuplicate(packed);
  if (dup >= 0) {
    const at = `${f}[${dup}]`;
    throw new CleanRoomError("PSI_DUPLICATE_ELEMENT", `"${at}" expected a distinct element, got a duplicate`, { field: at });
  }
  return packed;
}

/**
 * Hex strings decoded straight into one packed buffer, a block of strings at a time, checked
 * canonical (lowercase, no stray characters) by re-encoding.
 */
function decodeHex(f: string, els: readonly unknown[]): Uint8Array {
  const badHex = (i: number): never =>
    invalid(`${f}[${i}]`, "64 lowercase hex characters (a 32-byte ristretto255 encoding)", els[i], "PSI_INVALID_MESSAGE");
  const packed = new Uint8Array(els.length * POINT_BYTES);
  const BLOCK = 8192;
  for (let b = 0; b < els.length; b += BLOCK) {
    const end = Math.min(els.length, b + BLOCK);
    for (let i = b; i < end; i++) {
      const s = els[i];
      if (typeof s !== "string" || s.length !== 64) badHex(i);
    }
    const joined = (els as string[]).slice(b, end).join("");
    const bytes = Buffer.from(joined, "hex");
    if (bytes.length !== (end - b) * POINT_BYTES || bytes.toString("hex") !== joined) {
      for (let i = b; i < end; i++) if (!HEX64.test(els[i] as string)) badHex(i);
      bug("hex block refused without a bad element");
    }
    packed.set(bytes, b * POINT_BYTES);
  }
  return packed;
}

const SENTINEL = "\u0000elements";

/**
 * Size and SHA-256 of the message's JSON view (`JSON.stringify` of it with hex points), in
 * blocks of elements so neither the JSON (~67 MB at 1M elements) nor, for packed points, the
 * hex strings are ever built whole. The same for a message and its view.
 */
export function messageDigest(m: PsiMessage<PsiPoints>): { bytes: number; sha256: string } {
  const els = m.encryptedElements;
  const shell = JSON.stringify({ ...m, encryptedElements: [SENTINEL] });
  const hole = JSON.stringify([SENTINEL]);
  const at = shell.indexOf(hole);
  if (at < 0) bug("message shell without its element list");
  // node:crypto's SHA-256 (native): the noble one took ~0.5 s per 1M-element message
  const h = createHash("sha256").update(shell.slice(0, at) + "[", "utf8");
  let bytes = at + 1;
  const STEP = 8192;
  const n = pointCount(els);
  for (let i = 0; i < n; i += STEP) {
    const block = els instanceof Uint8Array ? hexPoints(els, i, Math.min(n, i + STEP)) : els.slice(i, i + STEP);
    const part = (i > 0 ? "," : "") + JSON.stringify(block).slice(1, -1);
    h.update(part, "utf8");
    bytes += part.length;
  }
  const tail = "]" + shell.slice(at + hole.length);
  h.update(tail, "utf8");
  return { bytes: bytes + tail.length, sha256: h.digest("hex") };
}

/** Lexicographic order of packed 32-byte values `i` and `j` (the order of their hex strings). */
export function comparePacked(p: Uint8Array, i: number, j: number): number {
  const a = i * POINT_BYTES;
  const b = j * POINT_BYTES;
  for (let k = 0; k < POINT_BYTES; k++) {
    const d = p[a + k]! - p[b + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Indices of the packed values in ascending byte (= hex string) order. */
export function sortedOrder(packed: Uint8Array): Uint32Array {
  const n = packed.length / POINT_BYTES;
  const order = new Uint32Array(n);
  for (let i = 0; i < n; i++) order[i] = i;
  return order.sort((i, j) => comparePacked(packed, i, j) || i - j);
}

/**
 * Position of the first element equal to an earlier one, or -1: found by sorting indices
 * (4 bytes per element, O(n log n) whatever the peer sent) instead of a Set of 1M strings.
 */
function firstDuplicate(packed: Uint8Array): number {
  const order = sortedOrder(packed);
  let first = -1;
  for (let r = 1; r < order.length; r++) {
    // equal values sit together, ascending by index: the run's second index repeats an earlier one
    if (comparePacked(packed, order[r - 1]!, order[r]!) === 0 && (first < 0 || order[r]! < first)) first = order[r]!;
  }
  return first;
}

/** Strictly ascending packed values (= strictly ascending hex strings). */
export function isSortedPacked(p: Uint8Array): boolean {
  for (let i = 1; i < p.length / POINT_BYTES; i++) if (comparePacked(p, i - 1, i) >= 0) return false;
  return true;
}

/** Packed values reordered by `order`. */
export function permute(packed: Uint8Array, order: Uint32Array): Uint8Array {
  const out = new Uint8Array(packed.length);
  for (let r = 0; r < order.length; r++) out.set(packed.subarray(order[r]! * POINT_BYTES, (order[r]! + 1) * POINT_BYTES), r * POINT_BYTES);
  return out;
}

/** The packed points at `rows` of `packed`. */
export function gather(packed: Uint8Array, rows: readonly number[]): Uint8Array {
  const out = new Uint8Array(rows.length * POINT_BYTES);
  rows.forEach((r, i) => out.set(packed.subarray(r * POINT_BYTES, (r + 1) * POINT_BYTES), i * POINT_BYTES));
  return out;
}

/** Join keys ("jk_" + 32 hex) from packed 16-byte keys. */
export function joinKeyStrings(packed: Uint8Array): string[] {
  const h = Buffer.from(packed.buffer, packed.byteOffset, packed.length).toString("hex");
  const out: string[] = new Array(packed.length / JOIN_KEY_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = "jk_" + h.slice(i * 32, (i + 1) * 32);
  return out;
}
