/**
 * ECDH private set intersection (commutative blinding) on ristretto255, with explicit
 * OpenMined-shaped protocol messages (psi-wire.ts): their points cross packed (n × 32 bytes,
 * `encoding: "packed"`, what runPsi and psiParty use) or as the plain-JSON view with one hex
 * string per point (the default of this direct API), so a notebook can show exactly what each
 * party sent and saw.
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
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, bug, invalid } from "../errors.js";
import { PackedSet } from "./packed-set.js";
import { shuffle, type Rng } from "../rng.js";
import { hex, hkdfSha256, utf8 } from "../crypto/primitives.js";
import {
  decodePoints,
  gather,
  hexPoints,
  isSortedPacked,
  JOIN_KEY_INFO,
  joinKeyStrings,
  messageDigest,
  permute,
  PSI_PROTOCOL,
  sortedOrder,
  type PsiEncoding,
  type PsiFinish,
  type PsiMessage,
  type PsiMode,
  type PsiPoints,
  type PsiRequest,
  type PsiResponse,
  type PsiSetup,
} from "./psi-wire.js";
import { PSI_DST, POINT_BYTES, packedOps, randomScalar, scalarFromBytes, type ProgressFn, type PsiBackend } from "./psi-backend.js";

export { hexPoints, psiMessageView, PSI_PROTOCOL } from "./psi-wire.js";
export type { PsiEncoding, PsiFinish, PsiMessage, PsiMode, PsiPoints, PsiRequest, PsiResponse, PsiSetup } from "./psi-wire.js";
export const PSI_MODES: readonly PsiMode[] = ["intersection", "cardinality", "joinKeys"];
/** Default declared size cap per side. */
export const DEFAULT_MAX_SET_SIZE = 2_000_000;

/** What a party sent or received, summarised for display (full messages stay with the caller). */
export interface TranscriptEntry {
  direction: "sent" | "received";
  kind: PsiMessage["kind"];
  sessionId: string;
  count: number;
  /** Size and SHA-256 of the message's OpenMined-shaped JSON view (hex points), whichever encoding crossed. */
  bytes: number;
  sha256: string;
  /** Its first two points, hex. */
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
  /** How this party's messages carry their points: "hex" (the OpenMined JSON view; default) or "packed" (n × 32 bytes). */
  encoding?: PsiEncoding;
}

/**
 * Derive the join key both parties compute from a doubly-blinded element H(x)^ab:
 * HKDF-SHA256(ikm = point, salt = sessionId, info = protocol/join-key/label), 16 bytes.
 * @example deriveJoinKey(point, request.sessionId, "room-1") // "jk_3f…"
 */
export function deriveJoinKey(doublyBlinded: Uint8Array, sessionId: string, label = ""): string {
  return "jk_" + hex(hkdfSha256(doublyBlinded, utf8(sessionId), utf8(`${JOIN_KEY_INFO}${label}`), 16));
}

function summarize(direction: "sent" | "received", m: PsiMessage<PsiPoints>, packed: Uint8Array): TranscriptEntry {
  return {
    direction,
    kind: m.kind,
    sessionId: m.sessionId,
    count: packed.length / POINT_BYTES,
    ...messageDigest(m),
    preview: hexPoints(packed, 0, Math.min(2, packed.length / POINT_BYTES)),
  };
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
  protected readonly encoding: PsiEncoding;
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
    if (o.encoding !== undefined && o.encoding !== "hex" && o.encoding !== "packed") invalid("encoding", `"hex" | "packed"`, o.encoding);
    this.encoding = o.encoding ?? "hex";
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
    // shape, count bounds and duplicates in one pass; hex strings are decoded straight into one packed buffer
    const packed = decodePoints(field, o.encryptedElements, { max: this.maxSetSize, exactly: expectLength });
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
    this.transcript.push(summarize("received", m as PsiMessage<PsiPoints>, packed));
    return packed;
  }

  /** Join keys for the packed doubly-blinded points at `rows` (derived on the backend's workers). */
  protected async joinKeysAt(packed: Uint8Array, rows: readonly number[]): Promise<string[]> {
    if (rows.length === 0) return [];
    const keys = await this.ops.deriveJoinKeysPacked(gather(packed, rows), utf8(this.sessionId), utf8(`${JOIN_KEY_INFO}${this.label}`));
    return joinKeyStrings(keys);
  }

  /** A message of this party with `packed` as its points, in this party's encoding, recorded as sent. */
  protected sent<M extends PsiMessage<PsiPoints>>(m: Omit<M, "encryptedElements">, packed: Uint8Array): M {
    const out = { ...m, encryptedElements: this.encoding === "packed" ? packed : hexPoints(packed) } as M;
    this.transcript.push(summarize("sent", out, packed));
    return out;
  }
}

export type PsiClientOutput =
  | { mode: "intersection"; intersectionSize: number; intersection: number[] }
  | { mode: "cardinality"; intersectionSize: number }
  | { mode: "joinKeys"; intersectionSize: number; intersection: number[]; joinKeys: (string | null)[]; finish: PsiFinish<PsiPoints> };

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
  createRequest(elements: readonly string[]): Promise<PsiRequest<PsiPoints>> {
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
      return this.sent<PsiRequest<PsiPoints>>(
        {
          kind: "psi.request",
          protocol: PSI_PROTOCOL,
          sessionId: this.sessionId,
          mode: this.mode,
          revealIntersection: this.mode !== "cardinality",
          dst: PSI_DST,
        },
        blinded,
      );
    });
  }

  /** Check setup and response, then compute the intersection / count / join keys. */
  processResponse(setup: PsiSetup<PsiPoints>, response: PsiResponse<PsiPoints>): Promise<PsiClientOutput> {
    // Held in a box the session drops once they are decoded: at 1M elements the two messages
    // are ~180 MB of strings that nothing needs after checkMessage.
    const msgs: { setup: PsiSetup<PsiPoints> | null; response: PsiResponse<PsiPoints> | null } = { setup, response };
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
      const order = (msgs.response as PsiResponse<PsiPoints>).order;
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
      const finish = this.sent<PsiFinish<PsiPoints>>(
        { kind: "psi.finish", protocol: PSI_PROTOCOL, sessionId: this.sessionId },
        serverDouble,
      );
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
  private clientDouble: PackedSet | null = null; // over our own copy (a packed response hands its points out)
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

  async processRequest(
    req: PsiRequest<PsiPoints>,
    elements: readonly string[],
  ): Promise<{ setup: PsiSetup<PsiPoints>; response: PsiResponse<PsiPoints> }> {
    const { setup, response } = await this.answerRequest(req, elements);
    return { setup, response: response() };
  }

  /**
   * `processRequest` with the response built on demand, so a party that sends the setup first
   * never holds both messages' strings at once (PsiResponder; ~100 MB each at 1M elements).
   */
  answerRequest(
    req: PsiRequest<PsiPoints>,
    elements: readonly string[],
  ): Promise<{ setup: PsiSetup<PsiPoints>; response: () => PsiResponse<PsiPoints> }> {
    // the request's strings are dropped once decoded (see processResponse)
    const box: { request: PsiRequest<PsiPoints> | null } = { request: req };
    return this.guard("fresh", async () => {
      const own = this.own?.elements === elements ? this.own.blinded : null;
      this.own = null;
      if (!own) this.checkOwnSet("elements", elements);
      const pts = await this.checkMessage(box.request, "psi.request");
      const r = box.request as PsiRequest<PsiPoints>;
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
      if (this.mode === "joinKeys") this.clientDouble = new PackedSet(this.encoding === "packed" ? doublePacked.slice() : doublePacked);
      const sorted = this.mode === "cardinality";
      const setup = this.sent<PsiSetup<PsiPoints>>(
        { kind: "psi.setup", protocol: PSI_PROTOCOL, sessionId: this.sessionId },
        permute(ownPacked, order),
      );
      let double: Uint8Array | null = sorted ? permute(doublePacked, sortedOrder(doublePacked)) : doublePacked;
      let built: PsiResponse<PsiPoints> | null = null;
      const response = (): PsiResponse<PsiPoints> => {
        built ??= this.sent<PsiResponse<PsiPoints>>(
          { kind: "psi.response", protocol: PSI_PROTOCOL, sessionId: this.sessionId, order: sorted ? "sorted" : "request" },
          double ?? bug("response built twice"),
        );
        double = null;
        return built;
      };
      if (this.mode === "joinKeys") this.state = "waiting";
      else this.finishSession();
      return { setup, response };
    });
  }

  /** joinKeys mode: match the client's H(y)^ab (setup order) against our H(x)^ab. */
  processFinish(finish: PsiFinish<PsiPoints>): Promise<PsiServerOutput> {
    if (this.mode !== "joinKeys" && this.state !== "aborted") {
      return Promise.reject(
        new CleanRoomError("STATE_INVALID", `"session" expected a joinKeys session, got mode ${this.mode}`, { field: "session" }),
      );
    }
    const box: { finish: PsiFinish<PsiPoints> | null } = { finish };
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
