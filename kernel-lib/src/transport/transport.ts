/**
 * The transport seam: where a network goes between a party and another party or the room.
 *
 * A {@link Transport} is one end of an ordered, reliable, bidirectional link that carries
 * plain, JSON-serialisable, versioned messages ({@link Envelope}), each optionally with one
 * binary attachment (`bytes`: e.g. PSI's packed points, n × 32 bytes, instead of n hex strings). Two implementations:
 * in-process ({@link linkedPair}) and a TCP socket between processes on 127.0.0.1
 * (transport/socket.ts). Code that talks through a Transport can hold nothing of its peer but what
 * arrives as data.
 *
 * Threat model: the in-process pair enforces what a wire would: every message is checked to
 * be plain data (null, booleans, finite numbers, strings, arrays, plain objects — no bytes,
 * functions, class instances, undefined, NaN or shared references) and crosses as a JSON
 * string the receiver parses, so no object reference, closure or key material can cross by
 * accident and a sender's later mutation cannot reach the receiver. It gives no
 * confidentiality or integrity against an observer: put a SecureChannel over it for that
 * (see identity/run-psi.ts `channel: true`). A refusal is a typed CleanRoomError raised
 * before anything is delivered.
 */
import { CleanRoomError } from "../errors.js";

/** Version of the envelope format. */
export const ENVELOPE_VERSION = 1;

/** A plain JSON value (what may cross a transport). */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One message on the wire. */
export interface Envelope<B extends Json = Json> {
  v: typeof ENVELOPE_VERSION;
  /** Protocol the body belongs to, e.g. "cleanroom-lab/psi/v1". */
  protocol: string;
  /** Message kind within the protocol, e.g. "psi.request". */
  kind: string;
  from: string;
  to: string;
  body: B;
  /**
   * The message's binary attachment, when it was sent with one. Its own bytes, not shared with
   * the sender, but possibly a view into a larger buffer (a socket chunk, Node's Buffer pool):
   * read it or copy it; do not transfer or reuse its `.buffer`.
   */
  bytes?: Uint8Array;
}

/** One end of a link. */
export interface Transport {
  /** This end's party name. */
  readonly self: string;
  /** The other end's party name. */
  readonly peer: string;
  /**
   * Send `body` as a `kind` message of `protocol` (refused unless plain JSON data), with `bytes`
   * as its binary attachment if given (the receiver gets its own bytes in `Envelope.bytes`; the
   * sender must not change `bytes` afterwards: a socket may still be writing them).
   */
  send(protocol: string, kind: string, body: unknown, bytes?: Uint8Array): Promise<void>;
  /** The next message from the peer; refused if its protocol/kind is not the one expected. */
  receive(expect?: { protocol?: string; kind?: string }): Promise<Envelope>;
  /** Close the link (both directions); a pending or later receive on either end is refused. */
  close(): void;
}

/** What a tap sees of every message that crossed: the envelope, its JSON wire form and its binary attachment (read only). */
export type Tap = (envelope: Envelope, wire: string, bytes?: Uint8Array) => void;

/** Show a tap the message that crossed: a parse of its JSON wire form, with the attachment (not copied). */
export function tapMessage(tap: Tap | undefined, wire: string, bytes: Uint8Array | undefined): void {
  if (tap) tap({ ...(JSON.parse(wire) as Envelope), ...(bytes ? { bytes } : {}) }, wire, bytes);
}

/**
 * Throw a typed INPUT_INVALID unless `bytes` is absent or a Uint8Array (a message's attachment).
 * @example assertAttachment(points) // returns points
 */
export function assertAttachment(bytes: unknown): Uint8Array | undefined {
  if (bytes === undefined || bytes instanceof Uint8Array) return bytes;
  throw new CleanRoomError("INPUT_INVALID", `"bytes" expected a Uint8Array attachment or none, got ${typeof bytes}`, { field: "bytes" });
}

function plainCheck(v: unknown, path: string, seen: Set<object>): void {
  const refuse = (what: string): never => {
    throw new CleanRoomError(
      "INPUT_INVALID",
      `"${path}" expected plain JSON data (null, boolean, finite number, string, array, plain object), got ${what}`,
      { field: path },
    );
  };
  if (v === null || typeof v === "boolean" || typeof v === "string") return;
  if (typeof v === "number") return void (Number.isFinite(v) || refuse(String(v)));
  if (typeof v !== "object") return refuse(typeof v);
  if (seen.has(v)) refuse("a shared or cyclic reference");
  seen.add(v);
  if (Array.isArray(v)) {
    // scalars inline: a 1M-element array of strings must not build 1M path strings
    for (let i = 0; i < v.length; i++) {
      const x: unknown = v[i];
      if (typeof x === "string" || typeof x === "boolean" || x === null || (typeof x === "number" && Number.isFinite(x))) continue;
      if (!(i in v)) continue; // a hole (as forEach skipped them)
      plainCheck(x, `${path}[${i}]`, seen);
    }
  } else {
    const proto = Object.getPrototypeOf(v);
    if (proto !== Object.prototype && proto !== null) refuse(`an instance of ${(v as object).constructor?.name ?? "a class"}`);
    for (const [k, x] of Object.entries(v)) plainCheck(x, `${path}.${k}`, seen);
  }
  seen.delete(v);
}

/**
 * Throw a typed INPUT_INVALID unless `v` is plain JSON data (the field named `path`).
 * @example assertPlainJson({ kind: "psi.request", n: 3 }, "message")
 */
export function assertPlainJson(v: unknown, path = "message"): asserts v is Json {
  plainCheck(v, path, new Set());
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9 ._:@/-]{0,127}$/;

/**
 * Two linked in-process ends: what one sends the other receives, in order, as a fresh
 * parse of its JSON wire form. `tap` sees every message that crossed (for transcripts and
 * tests).
 *
 * @example
 * const [a, b] = linkedPair("advertiser", "retailer");
 * await a.send("demo/v1", "hello", { n: 1 }); (await b.receive({ kind: "hello" })).body // { n: 1 }
 */
export function linkedPair(nameA: string, nameB: string, opts: { tap?: Tap } = {}): [Transport, Transport] {
  for (const [f, n] of [
    ["nameA", nameA],
    ["nameB", nameB],
  ] as const)
    if (typeof n !== "string" || !NAME.test(n))
      throw new CleanRoomError("INPUT_INVALID", `"${f}" expected a party name (1–128 characters)`, { field: f });
  if (nameA === nameB) throw new CleanRoomError("INPUT_INVALID", `"nameB" expected a name different from nameA`, { field: "nameB" });
  let closed = false;
  type Wire = { wire: string; bytes?: Uint8Array };
  const inbox = new Map<string, { queue: Wire[]; waiting: { resolve: (w: Wire) => void; reject: (e: Error) => void }[] }>([
    [nameA, { queue: [], waiting: [] }],
    [nameB, { queue: [], waiting: [] }],
  ]);
  const closedError = () =>
    new CleanRoomError("STATE_INVALID", `"transport" expected an open link, got a closed one`, { field: "transport" });
  const end = (self: string, peer: string): Transport => ({
    self,
    peer,
    async send(protocol, kind, body, attachment) {
      if (closed) throw closedError();
      if (typeof protocol !== "string" || !protocol)
        throw new CleanRoomError("INPUT_INVALID", `"protocol" expected a non-empty string`, { field: "protocol" });
      if (typeof kind !== "string" || !kind)
        throw new CleanRoomError("INPUT_INVALID", `"kind" expected a non-empty string`, { field: "kind" });
      assertPlainJson(body, "body");
      // the attachment crosses as a copy (what a wire does): a later change by the sender cannot reach the receiver
      const bytes = assertAttachment(attachment)?.slice();
      const envelope: Envelope = { v: ENVELOPE_VERSION, protocol, kind, from: self, to: peer, body };
      const wire = JSON.stringify(envelope);
      tapMessage(opts.tap, wire, bytes);
      const box = inbox.get(peer)!;
      const w = box.waiting.shift();
      const msg: Wire = bytes ? { wire, bytes } : { wire };
      if (w) w.resolve(msg);
      else box.queue.push(msg);
    },
    async receive(expect = {}) {
      if (closed) throw closedError();
      const box = inbox.get(self)!;
      const msg = box.queue.length
        ? box.queue.shift()!
        : await new Promise<Wire>((resolve, reject) => box.waiting.push({ resolve, reject }));
      const env = JSON.parse(msg.wire) as Envelope;
      if (msg.bytes) env.bytes = msg.bytes;
      if (env.v !== ENVELOPE_VERSION)
        throw new CleanRoomError("INPUT_INVALID", `"message.v" expected envelope version ${ENVELOPE_VERSION}, got ${String(env.v)}`, {
          field: "message.v",
        });
      if (expect.protocol !== undefined && env.protocol !== expect.protocol)
        throw new CleanRoomError("STATE_INVALID", `"message.protocol" expected ${expect.protocol}, got ${env.protocol}`, {
          field: "message.protocol",
        });
      if (expect.kind !== undefined && env.kind !== expect.kind)
        throw new CleanRoomError("STATE_INVALID", `"message.kind" expected ${expect.kind}, got ${env.kind}`, { field: "message.kind" });
      return env;
    },
    close() {
      if (closed) return;
      closed = true;
      for (const box of inbox.values()) for (const w of box.waiting.splice(0)) w.reject(closedError());
    },
  });
  return [end(nameA, nameB), end(nameB, nameA)];
}
