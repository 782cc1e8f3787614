/**
 * ECDH private set intersection (commutative blinding) on ristretto255, with explicit
 * OpenMined-shaped protocol messages that are plain JSON (hex strings), so a notebook can
 * show exactly what each party sent and saw.
 *
 *   client (A, set X, key a)                        server (B, set Y, key b)
 *   request  { H(x)^a, in a secret shuffle } ──▶
 *                                           ◀──     setup    { H(y)^b, sorted }
 *                                           ◀──     response { H(x)^ab, request order — or sorted
 *                                                              in cardinality mode }
 *   A computes H(y)^ab and compares.
 *   joinKeys mode only:
 *   finish   { H(y)^ab, in setup order }    ──▶     B compares with its H(x)^ab.
 *   Both derive joinKey = HKDF-SHA256(H(·)^ab, salt = sessionId, info = label) per match.
 *
 * Modes: "intersection" (A learns which of its elements match; B learns only |X|),
 * "cardinality" (A learns only the count: the response is sorted, so A cannot tell which
 * of its elements matched), "joinKeys" (both learn their own matched records and a common
 * pseudonym for each; unmatched records get none).
 *
 * Threat model: semi-honest parties (as OpenMined PSI and Google PJC). Each session draws
 * fresh secret scalars, claimed in a `KeyRegistry` that refuses reuse (a reused key turns
 * the peer into an oracle across sessions). Every received message is validated completely
 * — shape, session id, hex length, canonical encoding, identity point, duplicates, empty
 * set, declared size cap — BEFORE any scalar multiplication; any failure aborts the session,
 * wipes its key, and nothing partial is returned. Set sizes are public (as in every ECDH
 * PSI); small identifier domains can be brute-forced by a party that holds the key — see
 * attacks.ts.
 *
 * Specs: RFC 9496 (ristretto255), RFC 9380 §3 and Appendix B (hash to group), RFC 5869
 * (HKDF); message names follow OpenMined PSI (`createRequest`, `processRequest`,
 * `getIntersection`, `revealIntersection`).
 */
import { createHash } from "node:crypto";
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, bug, invalid } from "../errors.js";
import { PackedSet } from "./packed-set.js";
import { shuffle, type Rng } from "../rng.js";
import { hex, hkdfSha256, utf8 } from "../crypto/primitives.js";
import {
  JOIN_KEY_BYTES,
  PSI_DST,
  POINT_BYTES,
  packedOps,
  randomScalar,
  scalarFromBytes,
  type ProgressFn,
  type PsiBackend,
} from "./psi-backend.js";

export const PSI_PROTOCOL = "cleanroom-lab/psi/v1";
export type PsiMode = "intersection" | "cardinality" | "joinKeys";
export const PSI_MODES: readonly PsiMode[] = ["intersection", "cardinality", "joinKeys"];
/** Default declared size cap per side. */
export const DEFAULT_MAX_SET_SIZE = 2_000_000;

export interface PsiRequest {
  kind: "psi.request";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  mode: PsiMode;
  revealIntersection: boolean;
  dst: string;
  encryptedElements: string[];
}
export interface PsiSetup {
  kind: "psi.setup";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  encryptedElements: string[];
}
export interface PsiResponse {
  kind: "psi.response";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  order: "request" | "sorted";
  encryptedElements: string[];
}
export interface PsiFinish {
  kind: "psi.finish";
  protocol: typeof PSI_PROTOCOL;
  sessionId: string;
  encryptedElements: string[];
}
export type PsiMessage = PsiRequest | PsiSetup | PsiResponse | PsiFinish;

/** What a party sent or received, summarised for display (full messages stay with the caller). */
export interface TranscriptEntry {
  direction: "sent" | "received";
  kind: PsiMessage["kind"];
  sessionId: string;
  count: number;
  bytes: number;
  sha256: string;
  preview: string[];
}

/**
 * Remembers (a SHA-256 fingerprint of) every PSI scalar claimed in this process and refuses
 * a second use with `PSI_KEY_REUSE`.
 * @example const registry = new KeyRegistry(); new PsiClient({ backend, rng, registry })
 */
export class KeyRegistry {
  private readonly used = new Set<string>();
  claim(scalar: Uint8Array): void {
    const fp = hex(sha256(scalar));
    if (this.used.has(fp))
      throw new CleanRoomError("PSI_KEY_REUSE", `"secretKey" expected a fresh PSI key, got one already used in an earlier session`, {
        field: "secretKey",
      });
    this.used.add(fp);
  }
  /** True if `scalar` was already claimed (lets a caller pick the next seeded key instead). */
  has(scalar: Uint8Array): boolean {
    return this.used.has(hex(sha256(scalar)));
  }
  get size(): number {
    return this.used.size;
  }
}
/** The process-wide registry sessions use unless given their own. */
export const defaultKeyRegistry = new KeyRegistry();

export interface PsiPartyOptions {
  mode?: PsiMode;
  backend: PsiBackend;
  rng: Rng;
  /** Declared cap on either set's size (both own and peer's). */
  maxSetSize?: number;
  /** Refuse to run against fewer than this many peer elements (bounds cardinality attacks). */
  minPeerSetSize?: number;
  registry?: KeyRegistry;
  /** Injected key (vectors, backend comparisons, runPsi's seeded keys); still claimed in the registry. */
  secretKey?: Uint8Array;
  /** Join-key label mixed into HKDF info (e.g. the room id). */
  sessionLabel?: string;
  progress?: ProgressFn;
}

const HEX64 = /^[0-9a-f]{64}$/;

/**
 * Derive the join key both parties compute from a doubly-blinded element H(x)^ab:
 * HKDF-SHA256(ikm = point, salt = sessionId, info = protocol/join-key/label), 16 bytes.
 * @example deriveJoinKey(point, request.sessionId, "room-1") // "jk_3f…"
 */
export function deriveJoinKey(doublyBlinded: Uint8Array, sessionId: string, label = ""): string {
  return "jk_" + hex(hkdfSha256(doublyBlinded, utf8(sessionId), utf8(`${PSI_PROTOCOL}/join-key/${label}`), 16));
}

const SENTINEL = "\u0000elements";

/**
 * Size and SHA-256 of `JSON.stringify(m)`, computed in blocks of elements so the message's
 * JSON (~67 MB at 1M elements) is never built whole. Elements are validated (or generated)
 * 64-hex strings, which JSON writes as `"…"`; the envelope around them is stringified as is.
 */
function jsonDigest(m: PsiMessage): { bytes: number; sha256: string } {
  const els = m.encryptedElements;
  const shell = JSON.stringify({ ...m, encryptedElements: [SENTINEL] });
  const hole = JSON.stringify([SENTINEL]);
  const at = shell.indexOf(hole);
  if (at < 0) bug("message shell without its element list");
  // node:crypto's SHA-256 (native): the noble one took ~0.5 s per 1M-element message
  const h = createHash("sha256").update(shell.slice(0, at) + "[", "utf8");
  let bytes = at + 1;
  const STEP = 8192;
  for (let i = 0; i < els.length; i += STEP) {
    const part = (i > 0 ? "," : "") + JSON.stringify(els.slice(i, i + STEP)).slice(1, -1);
    h.update(part, "utf8");
    bytes += part.length;
  }
  const tail = "]" + shell.slice(at + hole.length);
  h.update(tail, "utf8");
  return { bytes: bytes + tail.length, sha256: h.digest("hex") };
}

function summarize(direction: "sent" | "received", m: PsiMessage): TranscriptEntry {
  return {
    direction,
    kind: m.kind,
    sessionId: m.sessionId,
    count: m.encryptedElements.length,
    ...jsonDigest(m),
    preview: m.encryptedElements.slice(0, 2),
  };
}

/** Lexicographic order of packed 32-byte values `i` and `j` (the order of their hex strings). */
function comparePacked(p: Uint8Array, i: number, j: number): number {
  const a = i * POINT_BYTES;
  const b = j * POINT_BYTES;
  for (let k = 0; k < POINT_BYTES; k++) {
    const d = p[a + k]! - p[b + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

/** Indices of the packed values in ascending byte (= hex string) order. */
function sortedOrder(packed: Uint8Array): Uint32Array {
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

/** Packed values reordered by `order`. */
function permute(packed: Uint8Array, order: Uint32Array): Uint8Array {
  const out = new Uint8Array(packed.length);
  for (let r = 0; r < order.length; r++) out.set(packed.subarray(order[r]! * POINT_BYTES, (order[r]! + 1) * POINT_BYTES), r * POINT_BYTES);
  return out;
}

/** Packed points (n × 32 bytes) as lowercase hex strings, one per point (the wire form). */
export function hexPoints(packed: Uint8Array): string[] {
  const out: string[] = new Array(packed.length / POINT_BYTES);
  const STEP = 8192; // points per hex conversion: bounded temporary strings
  for (let i = 0; i < out.length; i += STEP) {
    const end = Math.min(out.length, i + STEP);
    const h = Buffer.from(packed.buffer, packed.byteOffset + i * POINT_BYTES, (end - i) * POINT_BYTES).toString("hex");
    for (let j = i; j < end; j++) out[j] = h.slice((j - i) * 64, (j - i + 1) * 64);
  }
  return out;
}

/** Join keys ("jk_" + 32 hex) from packed 16-byte keys. */
function joinKeyStrings(packed: Uint8Array): string[] {
  const h = Buffer.from(packed.buffer, packed.byteOffset, packed.length).toString("hex");
  const out: string[] = new Array(packed.length / JOIN_KEY_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = "jk_" + h.slice(i * 32, (i + 1) * 32);
  return out;
}

/** The packed points at `rows` of `packed`. */
function gather(packed: Uint8Array, rows: readonly number[]): Uint8Array {
  const out = new Uint8Array(rows.length * POINT_BYTES);
  rows.forEach((r, i) => out.set(packed.subarray(r * POINT_BYTES, (r + 1) * POINT_BYTES), i * POINT_BYTES));
  return out;
}

abstract class PsiParty {
  protected readonly mode: PsiMode;
  protected readonly backend: PsiBackend;
  protected readonly maxSetSize: number;
  protected readonly minPeer: number;
  protected readonly label: string;
  protected readonly progress: ProgressFn | undefined;
  protected key: Uint8Array;
  protected state: "fresh" | "waiting" | "done" | "aborted" = "fresh";
  protected sessionId = "";
  protected readonly idBytes: Uint8Array;
  protected readonly rng: Rng;
  protected readonly ops: ReturnType<typeof packedOps>;
  readonly transcript: TranscriptEntry[] = [];

  constructor(
    protected readonly role: "client" | "server",
    o: PsiPartyOptions,
  ) {
    if (o === null || typeof o !== "object") invalid("options", "PSI party options", o);
    const mode = o.mode ?? "intersection";
    if (!PSI_MODES.includes(mode)) invalid("mode", PSI_MODES.map((m) => `"${m}"`).join(" | "), mode);
    if (!o.backend || typeof o.backend.blind !== "function") invalid("backend", "a PsiBackend (makeBackend())", o.backend);
    if (!o.rng || typeof o.rng.bytes !== "function") invalid("rng", "an Rng", o.rng);
    const max = o.maxSetSize ?? DEFAULT_MAX_SET_SIZE;
    if (!Number.isSafeInteger(max) || max < 1) invalid("maxSetSize", "positive integer", max);
    const min = o.minPeerSetSize ?? 1;
    if (!Number.isSafeInteger(min) || min < 1 || min > max) invalid("minPeerSetSize", `integer in [1, ${max}]`, min);
    this.mode = mode;
    this.backend = o.backend;
    this.ops = packedOps(o.backend);
    this.maxSetSize = max;
    this.minPeer = min;
    this.label = o.sessionLabel ?? "";
    this.progress = o.progress;
    if (o.secretKey !== undefined) scalarFromBytes(o.secretKey);
    this.key = o.secretKey ? o.secretKey.slice() : randomScalar(o.rng);
    (o.registry ?? defaultKeyRegistry).claim(this.key);
    this.idBytes = o.rng.bytes(16);
    this.rng = o.rng;
  }

  /** Run `fn`; on any error abort the session (wipe the key) and rethrow. */
  protected async guard<T>(expect: "fresh" | "waiting", fn: () => Promise<T>): Promise<T> {
    if (this.state === "aborted")
      throw new CleanRoomError("PSI_SESSION_ABORTED", `"session" expected a live PSI session, got one aborted after an earlier error`, {
        field: "session",
      });
    if (this.state !== expect)
      throw new CleanRoomError("STATE_INVALID", `"session" expected state ${expect}, got ${this.state}`, { field: "session" });
    try {
      return await fn();
    } catch (e) {
      this.abort();
      throw e;
    }
  }

  protected abort(): void {
    this.state = "aborted";
    this.key.fill(0);
  }

  protected finishSession(): void {
    this.state = "done";
    this.key.fill(0);
  }

  /** Validate and deduplicate a party's own input set (before hashing). */
  protected checkOwnSet(field: string, elements: readonly string[]): void {
    if (!Array.isArray(elements)) invalid(field, "array of normalised identifier strings", elements);
    if (elements.length === 0)
      throw new CleanRoomError("PSI_EMPTY_SET", `"${field}" expected at least one element, got an empty set`, { field });
    if (elements.length > this.maxSetSize)
      throw new CleanRoomError("PSI_SET_TOO_LARGE", `"${field}" expected at most ${this.maxSetSize} elements, got ${elements.length}`, {
        field,
        limit: this.maxSetSize,
        size: elements.length,
      });
    const seen = new Set<string>();
    for (let i = 0; i < elements.length; i++) {
      const e = elements[i];
      // Never echo the value: a numeric phone number or customer id would land in the error text.
      if (typeof e !== "string" || e.length === 0)
        throw new CleanRoomError(
          "INPUT_INVALID",
          `"${field}[${i}]" expected non-empty string, got ${e === null ? "null" : typeof e === "string" ? "an empty string" : typeof e}`,
          { field: `${field}[${i}]`, expected: "non-empty string", got: e === null ? "null" : typeof e },
        );
      if (seen.has(e))
        throw new CleanRoomError("PSI_DUPLICATE_ELEMENT", `"${field}[${i}]" expected a distinct element, got a duplicate`, {
          field: `${field}[${i}]`,
        });
      seen.add(e);
    }
  }

  /**
   * Validate a received message's envelope and points in one pass over its elements; returns
   * the decoded points packed (n × 32 bytes).
   */
  protected async checkMessage(m: unknown, kind: PsiMessage["kind"], expectLength?: number): Promise<Uint8Array> {
    const field = kind;
    if (m === null || typeof m !== "object" || Array.isArray(m)) invalid(field, `a ${kind} message object`, m, "PSI_INVALID_MESSAGE");
    const o = m as Record<string, unknown>;
    if (o.kind !== kind) invalid(`${field}.kind`, `"${kind}"`, o.kind, "PSI_INVALID_MESSAGE");
    if (o.protocol !== PSI_PROTOCOL) invalid(`${field}.protocol`, `"${PSI_PROTOCOL}"`, o.protocol, "PSI_INVALID_MESSAGE");
    if (typeof o.sessionId !== "string" || !/^[0-9a-f]{32}$/.test(o.sessionId))
      invalid(`${field}.sessionId`, "32 hex characters", o.sessionId, "PSI_INVALID_MESSAGE");
    if (this.sessionId && o.sessionId !== this.sessionId) {
      throw new CleanRoomError("PSI_INVALID_MESSAGE", `"${field}.sessionId" expected this session's id, got another session's`, {
        field: `${field}.sessionId`,
      });
    }
    const els = o.encryptedElements;
    if (!Array.isArray(els)) invalid(`${field}.encryptedElements`, "array of hex points", els, "PSI_INVALID_MESSAGE");
    if (els.length === 0)
      throw new CleanRoomError("PSI_EMPTY_SET", `"${field}.encryptedElements" expected at least one element, got an empty set`, {
        field: `${field}.encryptedElements`,
      });
    if (els.length > this.maxSetSize) {
      throw new CleanRoomError(
        "PSI_SET_TOO_LARGE",
        `"${field}.encryptedElements" expected at most ${this.maxSetSize} elements, got ${els.length}`,
        { field: `${field}.encryptedElements`, limit: this.maxSetSize, size: els.length },
      );
    }
    if (expectLength !== undefined && els.length !== expectLength)
      invalid(`${field}.encryptedElements`, `exactly ${expectLength} elements`, els, "PSI_INVALID_MESSAGE");
    const badHex = (i: number): never =>
      invalid(
        `${field}.encryptedElements[${i}]`,
        "64 lowercase hex characters (a 32-byte ristretto255 encoding)",
        els[i],
        "PSI_INVALID_MESSAGE",
      );
    // Shape and hex decoding straight into one packed buffer (a block of strings at a time,
    // checked canonical — lowercase, no stray characters — by re-encoding); then duplicates,
    // on the packed bytes (a hex string and its bytes are one-to-one once canonical).
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
    const dup = firstDuplicate(packed);
    if (dup >= 0) {
      const f = `${field}.encryptedElements[${dup}]`;
      throw new CleanRoomError("PSI_DUPLICATE_ELEMENT", `"${f}" expected a distinct element, got a duplicate`, { field: f });
    }
    // canonical encoding and not the identity (RFC 9496 §4.3.1 decode), possibly on workers
    const bad = await this.ops.firstInvalidPacked(packed);
    if (bad >= 0) {
      const f = `${field}.encryptedElements[${bad}]`;
      throw new CleanRoomError(
        "CRYPTO_INVALID_POINT",
        `"${f}" expected a canonical non-identity ristretto255 encoding, got an invalid or identity point`,
        { field: f },
      );
    }
    this.transcript.push(summarize("received", m as PsiMessage));
    return packed;
  }

  /** Join keys for the packed doubly-blinded points at `rows` (derived on the backend's workers). */
  protected async joinKeysAt(packed: Uint8Array, rows: readonly number[]): Promise<string[]> {
    if (rows.length === 0) return [];
    const keys = await this.ops.deriveJoinKeysPacked(
      gather(packed, rows),
      utf8(this.sessionId),
      utf8(`${PSI_PROTOCOL}/join-key/${this.label}`),
    );
    return joinKeyStrings(keys);
  }

  protected sent<M extends PsiMessage>(m: M): M {
    this.transcript.push(summarize("sent", m));
    return m;
  }
}

export type PsiClientOutput =
  | { mode: "intersection"; intersectionSize: number; intersection: number[] }
  | { mode: "cardinality"; intersectionSize: number }
  | { mode: "joinKeys"; intersectionSize: number; intersection: number[]; joinKeys: (string | null)[]; finish: PsiFinish };

/**
 * The party that asks (OpenMined's client): sends its blinded set, learns the result.
 *
 * @example
 * const backend = await makeBackend({ backend: "noble" });
 * const client = new PsiClient({ backend, rng: secureRng(), mode: "joinKeys" });
 * const server = new PsiServer({ backend, rng: secureRng(), mode: "joinKeys" });
 * const request = await client.createRequest(["a@x.org", "b@y.org"]);
 * const { setup, response } = await server.processRequest(request, ["b@y.org", "c@z.org"]);
 * const out = await client.processResponse(setup, response); // out.intersection → [1]
 */
export class PsiClient extends PsiParty {
  private n = 0;
  private perm: number[] = [];
  constructor(options: PsiPartyOptions) {
    super("client", options);
  }

  /** Hash and blind the client's distinct normalised elements: H(x)^a, in a secret random order. */
  createRequest(elements: readonly string[]): Promise<PsiRequest> {
    return this.guard("fresh", async () => {
      this.checkOwnSet("elements", elements);
      this.sessionId = hex(this.idBytes);
      // Send in a secret random order: otherwise, in joinKeys mode, the server would learn
      // which *positions* of our (possibly meaningfully ordered) list matched.
      this.perm = shuffle(
        elements.map((_, i) => i),
        this.rng,
      );
      const blinded = await this.ops.hashAndBlindPacked(
        this.perm.map((i) => elements[i]!),
        this.key,
        this.progress,
        "client: hash and blind own set",
      );
      this.n = elements.length;
      this.state = "waiting";
      return this.sent({
        kind: "psi.request",
        protocol: PSI_PROTOCOL,
        sessionId: this.sessionId,
        mode: this.mode,
        revealIntersection: this.mode !== "cardinality",
        dst: PSI_DST,
        encryptedElements: hexPoints(blinded),
      });
    });
  }

  /** Check setup and response, then compute the intersection / count / join keys. */
  processResponse(setup: PsiSetup, response: PsiResponse): Promise<PsiClientOutput> {
    // Held in a box the session drops once they are decoded: at 1M elements the two messages
    // are ~180 MB of strings that nothing needs after checkMessage.
    const msgs: { setup: PsiSetup | null; response: PsiResponse | null } = { setup, response };
    return this.guard("waiting", async () => {
      const setupPts = await this.checkMessage(msgs.setup, "psi.setup");
      msgs.setup = null;
      if (setupPts.length / POINT_BYTES < this.minPeer)
        invalid(
          "psi.setup.encryptedElements",
          `at least ${this.minPeer} elements (minPeerSetSize)`,
          new Array(setupPts.length / POINT_BYTES),
          "PSI_SET_TOO_SMALL",
        );
      if (!isSortedPacked(setupPts)) unsorted("psi.setup.encryptedElements");
      const respPts = await this.checkMessage(msgs.response, "psi.response", this.n);
      const order = (msgs.response as PsiResponse).order;
      msgs.response = null;
      const wantOrder = this.mode === "cardinality" ? "sorted" : "request";
      if (order !== wantOrder) invalid("psi.response.order", `"${wantOrder}"`, order, "PSI_INVALID_MESSAGE");
      if (wantOrder === "sorted" && !isSortedPacked(respPts)) unsorted("psi.response.encryptedElements");
      const serverDouble = await this.ops.blindPacked(setupPts, this.key, this.progress, "client: blind server set");
      // matched packed, not as a Set of hex strings: ~8 bytes per element instead of ~130 (packed-set.ts)
      const serverSet = new PackedSet(serverDouble);
      const hits: number[] = []; // positions in the (shuffled) request
      for (let r = 0; r < this.n; r++) if (serverSet.has(respPts, r)) hits.push(r);
      this.finishSession();
      if (this.mode === "cardinality") return { mode: "cardinality", intersectionSize: hits.length };
      const intersection = hits.map((r) => this.perm[r]!).sort((x, y) => x - y);
      if (this.mode === "intersection") return { mode: "intersection", intersectionSize: intersection.length, intersection };
      const joinKeys: (string | null)[] = new Array(this.n).fill(null);
      const keys = await this.joinKeysAt(respPts, hits);
      hits.forEach((r, i) => (joinKeys[this.perm[r]!] = keys[i]!));
      const finish = this.sent<PsiFinish>({
        kind: "psi.finish",
        protocol: PSI_PROTOCOL,
        sessionId: this.sessionId,
        encryptedElements: hexPoints(serverDouble),
      });
      return { mode: "joinKeys", intersectionSize: intersection.length, intersection, joinKeys, finish };
    });
  }
}

export type PsiServerOutput = { intersectionSize: number; intersection: number[]; joinKeys: (string | null)[] };

/**
 * The party that answers (OpenMined's server). See `PsiClient` for a full example.
 */
export class PsiServer extends PsiParty {
  private perm: Uint32Array = new Uint32Array(0);
  private clientDouble: PackedSet | null = null;
  private n = 0;
  constructor(options: PsiPartyOptions) {
    super("server", options);
  }

  /** Validate the request, then answer with setup (H(y)^b sorted) and response (H(x)^ab). */
  private own: { elements: readonly string[]; blinded: Promise<Uint8Array> } | null = null;

  /**
   * Check and start hashing and blinding this server's own set now, before the request
   * arrives: it depends only on our set and key, so it runs while the client is still hashing
   * its own (off the critical path). `processRequest` with the same array then uses it.
   * @example server.precompute(mySet); const { setup, response } = await server.processRequest(request, mySet);
   */
  precompute(elements: readonly string[]): void {
    if (this.state !== "fresh" || this.own)
      throw new CleanRoomError("STATE_INVALID", `"session" expected a fresh session to precompute, got ${this.state}`, {
        field: "session",
      });
    try {
      this.checkOwnSet("elements", elements);
    } catch (e) {
      this.abort();
      throw e;
    }
    const blinded = this.ops.hashAndBlindPacked(elements, this.key, this.progress, "server: hash and blind own set");
    blinded.catch(() => undefined); // reported when processRequest awaits it
    this.own = { elements, blinded };
  }

  async processRequest(req: PsiRequest, elements: readonly string[]): Promise<{ setup: PsiSetup; response: PsiResponse }> {
    const { setup, response } = await this.answerRequest(req, elements);
    return { setup, response: response() };
  }

  /**
   * `processRequest` with the response built on demand, so a party that sends the setup first
   * never holds both messages' strings at once (PsiResponder; ~100 MB each at 1M elements).
   */
  answerRequest(req: PsiRequest, elements: readonly string[]): Promise<{ setup: PsiSetup; response: () => PsiResponse }> {
    // the request's strings are dropped once decoded (see processResponse)
    const box: { request: PsiRequest | null } = { request: req };
    return this.guard("fresh", async () => {
      const own = this.own?.elements === elements ? this.own.blinded : null;
      this.own = null;
      if (!own) this.checkOwnSet("elements", elements);
      const pts = await this.checkMessage(box.request, "psi.request");
      const r = box.request as PsiRequest;
      const request = { mode: r.mode, revealIntersection: r.revealIntersection, dst: r.dst, sessionId: r.sessionId };
      box.request = null;
      if (request.mode !== this.mode)
        invalid("psi.request.mode", `"${this.mode}" (the server's mode)`, request.mode, "PSI_INVALID_MESSAGE");
      if (request.revealIntersection !== (this.mode !== "cardinality"))
        invalid("psi.request.revealIntersection", String(this.mode !== "cardinality"), request.revealIntersection, "PSI_INVALID_MESSAGE");
      if (request.dst !== PSI_DST) invalid("psi.request.dst", `"${PSI_DST}"`, request.dst, "PSI_INVALID_MESSAGE");
      if (pts.length / POINT_BYTES < this.minPeer)
        invalid(
          "psi.request.encryptedElements",
          `at least ${this.minPeer} elements (minPeerSetSize)`,
          new Array(pts.length / POINT_BYTES),
          "PSI_SET_TOO_SMALL",
        );
      this.sessionId = request.sessionId;
      const doublePacked = await this.ops.blindPacked(pts, this.key, this.progress, "server: blind client set");
      const ownPacked = await (own ?? this.ops.hashAndBlindPacked(elements, this.key, this.progress, "server: hash and blind own set"));
      // sort own blinded set on its bytes (= hex order); remember where each of our rows went (joinKeys mode)
      const order = sortedOrder(ownPacked);
      this.perm = order;
      this.n = elements.length;
      if (this.mode === "joinKeys") this.clientDouble = new PackedSet(doublePacked);
      const sorted = this.mode === "cardinality";
      const setup = this.sent<PsiSetup>({
        kind: "psi.setup",
        protocol: PSI_PROTOCOL,
        sessionId: this.sessionId,
        encryptedElements: hexPoints(permute(ownPacked, order)),
      });
      let double: Uint8Array | null = sorted ? permute(doublePacked, sortedOrder(doublePacked)) : doublePacked;
      let built: PsiResponse | null = null;
      const response = (): PsiResponse => {
        built ??= this.sent<PsiResponse>({
          kind: "psi.response",
          protocol: PSI_PROTOCOL,
          sessionId: this.sessionId,
          order: sorted ? "sorted" : "request",
          encryptedElements: hexPoints(double ?? bug("response built twice")),
        });
        double = null;
        return built;
      };
      if (this.mode === "joinKeys") this.state = "waiting";
      else this.finishSession();
      return { setup, response };
    });
  }

  /** joinKeys mode: match the client's H(y)^ab (setup order) against our H(x)^ab. */
  processFinish(finish: PsiFinish): Promise<PsiServerOutput> {
    if (this.mode !== "joinKeys" && this.state !== "aborted") {
      return Promise.reject(
        new CleanRoomError("STATE_INVALID", `"session" expected a joinKeys session, got mode ${this.mode}`, { field: "session" }),
      );
    }
    const box: { finish: PsiFinish | null } = { finish };
    return this.guard("waiting", async () => {
      const pts = await this.checkMessage(box.finish, "psi.finish", this.n);
      box.finish = null;
      const joinKeys: (string | null)[] = new Array(this.n).fill(null);
      const hits: number[] = [];
      const clientDouble = this.clientDouble ?? bug("client set lost");
      for (let j = 0; j < this.n; j++) if (clientDouble.has(pts, j)) hits.push(j);
      const keys = await this.joinKeysAt(pts, hits);
      const intersection: number[] = hits.map((j, i) => {
        const row = this.perm[j] ?? bug("setup permutation lost");
        joinKeys[row] = keys[i]!;
        return row;
      });
      intersection.sort((a, b) => a - b);
      this.clientDouble = null;
      this.finishSession();
      return { intersectionSize: intersection.length, intersection, joinKeys };
    });
  }
}

function unsorted(field: string): never {
  throw new CleanRoomError("PSI_INVALID_MESSAGE", `"${field}" expected sorted elements, got elements out of order`, {
    field,
    expected: "sorted elements",
  });
}

/** Strictly ascending packed values (= strictly ascending hex strings). */
function isSortedPacked(p: Uint8Array): boolean {
  for (let i = 1; i < p.length / POINT_BYTES; i++) if (comparePacked(p, i - 1, i) >= 0) return false;
  return true;
}
