/**
 * Crosswalk through an identity provider (the LiveRamp/RampID, InfoSum-style alternative to
 * PSI): a provider holds an identity graph — people → emails, cookies and device ids as
 * each party observed them — and resolves a party's identifiers to
 *
 *  - a *party pseudonym* `HMAC-SHA256(K_party, personId)`: stable for that party, different
 *    for every party, so two parties cannot join their pseudonyms directly;
 *  - a *collaboration token*: `AES-256-GCM(K_room, HMAC-SHA256(K_collab, personId))` with a
 *    random nonce. Only the clean room holds `K_room` (delivered sealed to its X25519 key
 *    with crypto/seal.ts), so only it can turn tokens into the common collaboration id and
 *    join; tokens of the same person differ every time, so parties cannot join on them.
 *
 * The graph decays: cookies expire and devices change. `decay` ∈ [0, 1] is the share of
 * cookies that have expired (and half that share of device ids replaced) since the party
 * observed them; the provider no longer recognises those identifiers, and match rate falls.
 *
 * Threat model: the provider is trusted with the graph and keys (as in the commercial
 * services); parties are semi-honest and see only pseudonyms for identifiers they
 * submitted. Unresolved identifiers return null with a reason, never the graph's data.
 */
import { hmac } from "@noble/hashes/hmac.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, invalid } from "../errors.js";
import { makeRng, rngStamp, type Rng, type RngStamp } from "../rng.js";
import { aesGcmOpen, aesGcmSeal, b64, fromB64, hex, utf8, x25519KeyPair } from "./../crypto/primitives.js";
import { openSealed, sealTo, type SealedBox } from "../crypto/seal.js";

export type IdentifierType = "email" | "cookie" | "device";
export interface PartyIdentifier {
  type: IdentifierType;
  value: string;
}

interface GraphEntry {
  person: number;
  party: string;
  /** Uniform in [0,1): the identifier is stale once `decay` exceeds its threshold. */
  staleAt: number;
}

/** The provider's private graph. Not for display: no party may see it. */
export interface IdentityGraph {
  people: number;
  parties: string[];
  /** `${party}|${type}:${value}` → who it belongs to (scoped per party: a party resolves only what it observed). */
  index: Map<string, GraphEntry>;
  /** What each party holds (its own observations, before decay). */
  observations: Record<string, PartyIdentifier[]>;
}

export interface IdentityGraphOptions {
  people: number;
  parties: string[];
  /** Share of people each party has observed (default 0.6). */
  coverage?: number;
  rng: Rng;
}

/**
 * A seeded synthetic identity graph.
 *
 * @example
 * const graph = generateIdentityGraph({ people: 1000, parties: ["advertiser", "publisher"], rng: seededRng("g") });
 */
export function generateIdentityGraph(o: IdentityGraphOptions): IdentityGraph {
  if (!Number.isSafeInteger(o.people) || o.people < 1 || o.people > 1_000_000) invalid("people", "integer in [1, 1000000]", o.people);
  if (
    !Array.isArray(o.parties) ||
    o.parties.length < 2 ||
    new Set(o.parties).size !== o.parties.length ||
    !o.parties.every((p) => typeof p === "string" && p.length > 0)
  ) {
    invalid("parties", "at least two distinct party names", o.parties);
  }
  const coverage = o.coverage ?? 0.6;
  if (!(typeof coverage === "number" && coverage > 0 && coverage <= 1)) invalid("coverage", "number in (0, 1]", coverage);
  const rng = o.rng;
  const u = () => rng.int(1 << 30) / (1 << 30);
  const index = new Map<string, GraphEntry>();
  const observations: Record<string, PartyIdentifier[]> = Object.fromEntries(o.parties.map((p) => [p, []]));
  const add = (party: string, person: number, id: PartyIdentifier) => {
    index.set(`${party}|${id.type}:${id.value}`, {
      person,
      party,
      staleAt: id.type === "email" ? 2 : id.type === "device" ? 2 * u() : u(),
    });
    observations[party]!.push(id);
  };
  for (let p = 0; p < o.people; p++) {
    const email = `person${p}@example.${["com", "org", "net"][p % 3]}`;
    const device = hex(rng.bytes(8));
    for (const party of o.parties) {
      if (u() >= coverage) continue;
      const kind = rng.int(3); // what this party knows the person by
      if (kind === 0) add(party, p, { type: "email", value: email });
      else if (kind === 1) add(party, p, { type: "cookie", value: `${party}-${hex(rng.bytes(8))}` });
      else add(party, p, { type: "device", value: device });
    }
  }
  return { people: o.people, parties: o.parties.slice(), index, observations };
}

export interface ResolveResult {
  pseudonyms: (string | null)[];
  collaborationTokens: (string | null)[];
  /** Why an identifier was not resolved (no values echoed). */
  reasons: (null | "UNKNOWN" | "EXPIRED")[];
  resolved: number;
}

/**
 * The identity provider. Holds the graph and all keys; answers `resolve` per party.
 *
 * @example
 * const idp = new IdentityProvider(graph, { rng: secureRng(), decay: 0.2 });
 * const room = x25519KeyPair(secureRng());
 * const keyBox = idp.sealRoomKey(room.publicKey);
 * const adv = idp.resolve("advertiser", graph.observations.advertiser);
 */
export class IdentityProvider {
  private readonly master: Uint8Array;
  private readonly roomKey: Uint8Array;
  readonly decay: number;

  constructor(
    private readonly graph: IdentityGraph,
    private readonly opts: { rng: Rng; decay?: number },
  ) {
    const d = opts.decay ?? 0;
    if (!(typeof d === "number" && d >= 0 && d <= 1)) invalid("decay", "number in [0, 1]", d);
    this.decay = d;
    this.master = opts.rng.bytes(32);
    this.roomKey = opts.rng.bytes(32);
  }

  private key(label: string): Uint8Array {
    return hmac(sha256, this.master, utf8(`cleanroom-lab/crosswalk/v1/${label}`));
  }

  /** Deliver the clean room's token key, sealed to its X25519 public key. */
  sealRoomKey(cleanRoomPublicKey: Uint8Array): SealedBox {
    return sealTo(cleanRoomPublicKey, this.roomKey, "cleanroom-lab/crosswalk/v1/room-key", this.opts.rng);
  }

  /** Resolve a party's own identifiers to its pseudonyms and sealed collaboration tokens. */
  resolve(party: string, identifiers: readonly PartyIdentifier[]): ResolveResult {
    if (!this.graph.parties.includes(party))
      throw new CleanRoomError("CROSSWALK_DENIED", `"party" expected a party enrolled with the provider, got an unknown party`, {
        field: "party",
      });
    if (!Array.isArray(identifiers)) invalid("identifiers", "array of { type, value }", identifiers);
    const kParty = this.key(`party/${party}`);
    const kCollab = this.key("collaboration");
    const out: ResolveResult = { pseudonyms: [], collaborationTokens: [], reasons: [], resolved: 0 };
    identifiers.forEach((id, i) => {
      if (!id || !["email", "cookie", "device"].includes(id.type) || typeof id.value !== "string")
        invalid(`identifiers[${i}]`, "{ type: email|cookie|device, value: string }", id, "INPUT_INVALID");
      const e = this.graph.index.get(`${party}|${id.type}:${id.value}`);
      const reason = !e ? "UNKNOWN" : e.staleAt < this.decay ? "EXPIRED" : null;
      if (reason || !e) {
        out.pseudonyms.push(null);
        out.collaborationTokens.push(null);
        out.reasons.push(reason ?? "UNKNOWN");
        return;
      }
      const person = utf8(`person/${e.person}`);
      out.pseudonyms.push("pp_" + hex(hmac(sha256, kParty, person)).slice(0, 32));
      const collabId = hmac(sha256, kCollab, person).slice(0, 16);
      const nonce = this.opts.rng.bytes(12);
      out.collaborationTokens.push(b64(new Uint8Array([...nonce, ...aesGcmSeal(this.roomKey, nonce, collabId, utf8("crosswalk-token"))])));
      out.reasons.push(null);
      out.resolved++;
    });
    return out;
  }
}

/**
 * The clean room's side: opens collaboration tokens into join ids.
 *
 * @example
 * const joiner = new CrosswalkJoiner(room.secretKey, room.publicKey, keyBox);
 * joiner.joinId(adv.collaborationTokens[0]!) // "cw_…", same for every party's record of that person
 */
export class CrosswalkJoiner {
  private readonly key: Uint8Array;
  constructor(secretKey: Uint8Array, publicKey: Uint8Array, box: SealedBox) {
    this.key = openSealed(secretKey, publicKey, box, "cleanroom-lab/crosswalk/v1/room-key");
  }
  joinId(token: string): string {
    const raw = fromB64(token);
    if (raw.length < 12 + 16) invalid("token", "a collaboration token", token, "CROSSWALK_DENIED");
    try {
      return "cw_" + hex(aesGcmOpen(this.key, raw.slice(0, 12), raw.slice(12), utf8("crosswalk-token")));
    } catch {
      throw new CleanRoomError("CROSSWALK_DENIED", `"token" expected a token issued for this clean room, got one that does not open`, {
        field: "token",
      });
    }
  }
}

export interface CrosswalkOptions {
  people?: number;
  parties?: [string, string];
  coverage?: number;
  decay?: number;
  rng?: Rng | "secure" | { seed: string };
}

export interface CrosswalkResult {
  parties: { party: string; identifiers: number; resolved: number; expired: number; unknown: number; resolveRate: number }[];
  /** People both parties hold a resolved record for, as joined by the clean room. */
  matchedPeople: number;
  /** matchedPeople / people both parties observed (the ceiling without decay). */
  matchRate: number;
  decay: number;
  /** Example rows a party uploads (pseudonym + token; no identifiers). */
  sampleUpload: { pseudonym: string; collaborationToken: string }[];
  rngStamp: RngStamp;
}

/**
 * Whole crosswalk flow for a notebook cell: graph → provider → each party resolves its own
 * identifiers → the clean room joins on collaboration ids.
 *
 * @example
 * [0, 0.2, 0.5].map((decay) => crosswalk({ people: 2000, decay, rng: { seed: "cw" } }).matchRate)
 */
export function crosswalk(options: CrosswalkOptions = {}): CrosswalkResult {
  const rng = makeRng(options.rng);
  const parties = options.parties ?? ["advertiser", "publisher"];
  const graph = generateIdentityGraph({ people: options.people ?? 2000, parties, coverage: options.coverage, rng: rng.fork("graph") });
  const idp = new IdentityProvider(graph, { rng: rng.fork("provider"), decay: options.decay ?? 0 });
  const room = x25519KeyPair(rng.fork("room"));
  const joiner = new CrosswalkJoiner(room.secretKey, room.publicKey, idp.sealRoomKey(room.publicKey));
  const joined: Set<string>[] = [];
  const partyStats = parties.map((party) => {
    const ids = graph.observations[party]!;
    const r = idp.resolve(party, ids);
    joined.push(new Set(r.collaborationTokens.filter((t): t is string => t !== null).map((t) => joiner.joinId(t))));
    const expired = r.reasons.filter((x) => x === "EXPIRED").length;
    return {
      party,
      identifiers: ids.length,
      resolved: r.resolved,
      expired,
      unknown: ids.length - r.resolved - expired,
      resolveRate: ids.length ? r.resolved / ids.length : 0,
      r,
    };
  });
  const possible = new Set<number>();
  const seen0 = new Set(graph.observations[parties[0]]!.map((id) => graph.index.get(`${parties[0]}|${id.type}:${id.value}`)!.person));
  for (const id of graph.observations[parties[1]]!) {
    const p = graph.index.get(`${parties[1]}|${id.type}:${id.value}`)!.person;
    if (seen0.has(p)) possible.add(p);
  }
  let matched = 0;
  for (const j of joined[0]!) if (joined[1]!.has(j)) matched++;
  const first = partyStats[0]!.r;
  const sampleUpload: { pseudonym: string; collaborationToken: string }[] = [];
  for (let i = 0; i < first.pseudonyms.length && sampleUpload.length < 3; i++) {
    if (first.pseudonyms[i]) sampleUpload.push({ pseudonym: first.pseudonyms[i]!, collaborationToken: first.collaborationTokens[i]! });
  }
  return {
    parties: partyStats.map(({ r: _r, ...s }) => s),
    matchedPeople: matched,
    matchRate: possible.size ? matched / possible.size : 0,
    decay: idp.decay,
    sampleUpload,
    rngStamp: rngStamp(rng),
  };
}
