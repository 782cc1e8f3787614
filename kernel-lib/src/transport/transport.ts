/**
 * The transport seam: where a network goes between a party and another party or the room.
 *
 * A {@link Transport} is one end of an ordered, reliable, bidirectional link that carries
 * plain, JSON-serialisable, versioned messages ({@link Envelope}). Two implementations:
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
}

/** One end of a link. */
export interface Transport {
  /** This end's party name. */
  readonly self: string;
  /** The other end's party name. */
  readonly peer: string;
  /** Send `body` as a `kind` message of `protocol` (refused unless plain JSON data). */
  send(protocol: string, kind: string, body: unknown): Promise<void>;
  /** The next message from the peer; refused if its protocol/kind is not the one expected. */
  receive(expect?: { protocol?: string; kind?: string }): Promise<Envelope>;
  /** Close the link (both directions); a pending or later receive on either end is refused. */
  close(): void;
}

/** What a tap sees of every message that crossed: the envelope and its wire form. */
export type Tap = (envelope: Envelope, wire: string) => void;

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
  const inbox = new Map<string, { queue: string[]; waiting: { resolve: (w: string) => void; reject: (e: Error) => void }[] }>([
    [nameA, { queue: [], waiting: [] }],
    [nameB, { queue: [], waiting: [] }],
  ]);
  const closedError = () =>
    new CleanRoomError("STATE_INVALID", `"transport" expected an open link, got a closed one`, { field: "transport" });
  const end = (self: string, peer: string): Transport => ({
    self,
    peer,
    async send(protocol, kind, body) {
      if (closed) throw closedError();
      if (typeof protocol !== "string" || !protocol)
        throw new CleanRoomError("INPUT_INVALID", `"protocol" expected a non-empty string`, { field: "protocol" });
      if (typeof kind !== "string" || !kind)
        throw new CleanRoomError("INPUT_INVALID", `"kind" expected a non-empty string`, { field: "kind" });
      assertPlainJson(body, "body");
      const envelope: Envelope = { v: ENVELOPE_VERSION, protocol, kind, from: self, to: peer, body };
      const wire = JSON.stringify(envelope);
      opts.tap?.(JSON.parse(wire) as Envelope, wire);
      const box = inbox.get(peer)!;
      const w = box.waiting.shift();
      if (w) w.resolve(wire);
      else box.queue.push(wire);
    },
    async receive(expect = {}) {
      if (closed) throw closedError();
      const box = inbox.get(self)!;
      const wire = box.queue.length
        ? box.queue.shift()!
        : await new Promise<string>((resolve, reject) => box.waiting.push({ resolve, reject }));
      const env = JSON.parse(wire) as Envelope;
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
