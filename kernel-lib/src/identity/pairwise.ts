/**
 * Decentralized crosswalks: every PAIR of parties derives its own pseudonyms with ECDH-PSI
 * (run-psi.ts, joinKeys mode), so no single place ever holds the identity graph.
 *
 *   parties A, B, C …           for each pair (P, Q): one PSI session with fresh keys p, q
 *   A keeps  { recordId → jk_AB }, { recordId → jk_AC }      jk = HKDF(H(email)^pq, sessionId, "pair/P|Q")
 *   B keeps  { recordId → jk_AB }, { recordId → jk_BC }
 *
 * A pairwise pseudonym is meaningful only inside its pair: `jk_AB` and `jk_AC` of the same
 * person are HKDF outputs of different group elements (H(x)^ab vs H(x)^ac) with different
 * session salts, so under DDH on ristretto255 nobody holding only pseudonyms can tell they
 * belong to one person. Each party stores only its own records' pseudonyms for its own pairs.
 *
 * The contrast is the central identity provider of crosswalk.ts: it holds the whole graph
 * (person → every party's identifiers). `centralGraphOf` builds that graph for the same world,
 * so the two designs can be "breached" side by side (`breachReport`, `crossPairLinkingAttack`).
 * `pseudonyms: "hashedEmail"` is the naive decentralised variant (each pair keys on
 * SHA-256(normalised email), as hashed-email matching does): the positive control — its
 * pseudonyms are the same in every pair, so cross-pair linking works.
 *
 * Threat model: semi-honest parties (as PSI); the thief steals stored tables, not keys in
 * flight (PSI keys are wiped after each session). What PSI itself reveals to the pair (who is
 * in the intersection) is by design; what a table links is that pair's overlap and nothing else.
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { invalid } from "../errors.js";
import { makeRng, rngStamp, type Rng, type RngStamp } from "../rng.js";
import { hex, utf8 } from "../crypto/primitives.js";
import type { BackendName } from "./psi-backend.js";
import { normalizeEmail as normalizeResult } from "./normalize.js";
import { runPsi, type PsiRunResult } from "./run-psi.js";
import type { IdentityGraph, PartyIdentifier } from "./crosswalk.js";

/** One party's own records: a local record id and the e-mail it knows the person by. */
export interface PartyRecord {
  recordId: string;
  email: string;
}

/** A seeded multi-party world, with its ground truth kept apart from what parties hold. */
export interface PairwiseWorld {
  parties: string[];
  /** What each party holds (its records only). */
  records: Record<string, PartyRecord[]>;
  /** Ground truth (no party has it): `${party}/${recordId}` → person index. */
  truth: Map<string, number>;
  people: number;
}

export interface PairwiseWorldOptions {
  people: number;
  parties: string[];
  /** Share of people each party holds a record for (default 0.6). */
  coverage?: number;
  rng: Rng;
}

/**
 * A seeded world of `people` people and `parties` that each hold some of them under their own
 * random record ids (and e-mails written their own way: case, spaces).
 *
 * @example
 * const world = pairwiseWorld({ people: 300, parties: ["retailer", "publisher", "bank"], rng: seededRng("w") });
 */
export function pairwiseWorld(o: PairwiseWorldOptions): PairwiseWorld {
  if (o === null || typeof o !== "object") invalid("options", "{ people, parties, coverage?, rng }", o);
  if (!Number.isSafeInteger(o.people) || o.people < 1 || o.people > 200_000) invalid("people", "integer in [1, 200000]", o.people);
  if (
    !Array.isArray(o.parties) ||
    o.parties.length < 2 ||
    o.parties.length > 8 ||
    new Set(o.parties).size !== o.parties.length ||
    !o.parties.every((p) => typeof p === "string" && /^[a-z][a-z0-9_-]{0,31}$/.test(p))
  )
    invalid("parties", "2 to 8 distinct party names [a-z][a-z0-9_-]{0,31}", o.parties);
  const coverage = o.coverage ?? 0.6;
  if (!(typeof coverage === "number" && coverage > 0 && coverage <= 1)) invalid("coverage", "number in (0, 1]", coverage);
  if (!o.rng || typeof o.rng.fork !== "function") invalid("rng", "an Rng", o.rng);
  const records: Record<string, PartyRecord[]> = Object.fromEntries(o.parties.map((p) => [p, []]));
  const truth = new Map<string, number>();
  const u = (rng: Rng) => rng.int(1 << 30) / (1 << 30);
  const rng = o.rng;
  for (let person = 0; person < o.people; person++) {
    const email = `patron${person}@example.${["com", "org", "net"][person % 3]}`;
    for (const party of o.parties) {
      if (u(rng) >= coverage) continue;
      const recordId = `${party.slice(0, 3)}-${hex(rng.bytes(5))}`;
      const styled = rng.int(2) === 0 ? email.toUpperCase() : ` ${email}`;
      records[party]!.push({ recordId, email: styled });
      truth.set(`${party}/${recordId}`, person);
    }
  }
  // each party's file is in its own order (not person order)
  for (const party of o.parties) records[party]!.sort((a, b) => (a.recordId < b.recordId ? -1 : 1));
  return { parties: o.parties.slice(), records, truth, people: o.people };
}

/** What one party stores for one pair: its matched records and the pair's pseudonym for each. */
export interface PairwiseTable {
  owner: string;
  peer: string;
  pair: string;
  rows: { recordId: string; pseudonym: string }[];
}

export interface PairwiseCrosswalkOptions {
  /** "psi" (default): pairwise ECDH-PSI join keys. "hashedEmail": SHA-256 of the normalised e-mail in every pair (defence off). */
  pseudonyms?: "psi" | "hashedEmail";
  backend?: BackendName;
  threads?: number;
  rng?: Rng | "secure" | { seed: string };
  /**
   * How one pair's PSI runs (default: `runPsi`, both parties in this process over a linked pair).
   * A test passes a runner that starts each party as its own OS process (scripts/psi-party.mjs);
   * it must return one join key (or null) per row of each side.
   */
  runPair?: (pair: { a: string; b: string; label: string; rowsA: PartyRecord[]; rowsB: PartyRecord[]; rng: Rng }) => Promise<{
    keysA: (string | null)[];
    keysB: (string | null)[];
    sessionId: string | null;
  }>;
}

export interface PairwiseCrosswalk {
  pseudonyms: "psi" | "hashedEmail";
  /** Each party's own store: one table per peer. There is no other copy and no graph. */
  stores: Record<string, PairwiseTable[]>;
  /** Per pair: the PSI match report (sizes, session id; no identifiers). */
  pairs: { pair: string; a: string; b: string; matched: number; sessionId: string | null }[];
  rngStamp: RngStamp;
}

/** The normal form of an e-mail, or null when it is rejected. */
const normalizeEmail = (raw: string): { value: string | null } => {
  const r = normalizeResult(raw);
  return { value: r.ok ? r.value : null };
};
const pairName = (a: string, b: string) => `${a}|${b}`;
const hashedEmail = (email: string): string => "he_" + hex(sha256(utf8(email))).slice(0, 32);

/**
 * Run one PSI per pair of parties and give each party its own pairwise tables.
 *
 * @example
 * const cw = await pairwiseCrosswalk(world, { rng: { seed: "pairs" } });
 * cw.stores.retailer.map((t) => [t.peer, t.rows.length])   // the retailer's overlap with each peer
 */
export async function pairwiseCrosswalk(world: PairwiseWorld, options: PairwiseCrosswalkOptions = {}): Promise<PairwiseCrosswalk> {
  if (world === null || typeof world !== "object" || !Array.isArray(world.parties)) invalid("world", "a PairwiseWorld", world);
  const mode = options.pseudonyms ?? "psi";
  if (mode !== "psi" && mode !== "hashedEmail") invalid("pseudonyms", '"psi" | "hashedEmail"', mode);
  const rng = makeRng(options.rng);
  const stores: Record<string, PairwiseTable[]> = Object.fromEntries(world.parties.map((p) => [p, []]));
  const pairs: PairwiseCrosswalk["pairs"] = [];
  for (let i = 0; i < world.parties.length; i++) {
    for (let j = i + 1; j < world.parties.length; j++) {
      const a = world.parties[i]!;
      const b = world.parties[j]!;
      const pair = pairName(a, b);
      const ra = world.records[a]!;
      const rb = world.records[b]!;
      let keysA: (string | null)[];
      let keysB: (string | null)[];
      let sessionId: string | null = null;
      if (mode === "psi" && options.runPair) {
        const r = await options.runPair({ a, b, label: `pair/${pair}`, rowsA: ra, rowsB: rb, rng: rng.fork(`pair/${pair}`) });
        if (!Array.isArray(r.keysA) || r.keysA.length !== ra.length || !Array.isArray(r.keysB) || r.keysB.length !== rb.length)
          invalid("runPair", "one join key (or null) per row of each side", r);
        keysA = r.keysA;
        keysB = r.keysB;
        sessionId = r.sessionId;
      } else if (mode === "psi") {
        const r: PsiRunResult = await runPsi(ra, rb, {
          column: "email",
          mode: "joinKeys",
          sessionLabel: `pair/${pair}`,
          names: { a, b },
          backend: options.backend ?? "libsodium",
          threads: options.threads ?? 1,
          rng: rng.fork(`pair/${pair}`),
        });
        keysA = r.joinKeysA!;
        keysB = r.joinKeysB!;
        sessionId = r.matchReport.sessionId;
      } else {
        // naive: a deterministic hash of the normalised e-mail, matched in the clear
        const norm = (rows: PartyRecord[]) => rows.map((x) => normalizeEmail(x.email).value);
        const ha = norm(ra).map((e) => (e ? hashedEmail(e) : null));
        const hb = norm(rb).map((e) => (e ? hashedEmail(e) : null));
        const inA = new Set(ha);
        const inB = new Set(hb);
        keysA = ha.map((h) => (h && inB.has(h) ? h : null));
        keysB = hb.map((h) => (h && inA.has(h) ? h : null));
      }
      const table = (owner: string, peer: string, rows: PartyRecord[], keys: (string | null)[]): PairwiseTable => ({
        owner,
        peer,
        pair,
        rows: rows.flatMap((x, k) => (keys[k] ? [{ recordId: x.recordId, pseudonym: keys[k]! }] : [])),
      });
      const ta = table(a, b, ra, keysA);
      stores[a]!.push(ta);
      stores[b]!.push(table(b, a, rb, keysB));
      pairs.push({ pair, a, b, matched: ta.rows.length, sessionId });
    }
  }
  return { pseudonyms: mode, stores, pairs, rngStamp: rngStamp(rng) };
}

/**
 * The central provider's graph for the same world (what crosswalk.ts's IdentityProvider holds):
 * every party's identifiers, linked by person. Feed it to `new IdentityProvider(graph, …)`.
 *
 * @example const graph = centralGraphOf(world); new IdentityProvider(graph, { rng }).resolve("bank", graph.observations.bank)
 */
export function centralGraphOf(world: PairwiseWorld): IdentityGraph {
  const index: IdentityGraph["index"] = new Map();
  const observations: Record<string, PartyIdentifier[]> = {};
  for (const party of world.parties) {
    observations[party] = world.records[party]!.map((r) => {
      const value = normalizeEmail(r.email).value ?? r.email;
      index.set(`${party}|email:${value}`, { person: world.truth.get(`${party}/${r.recordId}`)!, party, staleAt: 2 });
      return { type: "email" as const, value };
    });
  }
  return { people: world.people, parties: world.parties.slice(), index, observations };
}

/** What a thief learns from one stolen artefact (counts only; no identifiers). */
export interface BreachReport {
  stolen: string;
  /** Party pairs whose shared customers the thief can now link. */
  pairsLinked: string[];
  /** People the thief can link across at least two parties. */
  peopleLinked: number;
  /**
   * People the thief knows to be held by three or more parties. From the central graph these are
   * full cross-platform profiles (every party's identifiers); from one party's tables, only that
   * party's own records marked "also at both peers" (what its PSI runs told it), without the peers' records.
   */
  peopleLinkedAcross3Plus: number;
  /** Parties whose identifiers (e-mails) are in the stolen artefact. */
  identifiersOf: string[];
  /** Identifiers (e-mails, cookies, device ids) in the stolen artefact. */
  identifiersExposed: number;
}

/**
 * "Breach" the central graph: the thief links every person across every party that holds them.
 * @example breachCentral(centralGraphOf(world)).peopleLinked
 */
export function breachCentral(graph: IdentityGraph): BreachReport {
  const partiesOf = new Map<number, Set<string>>();
  for (const e of graph.index.values()) {
    let s = partiesOf.get(e.person);
    if (!s) partiesOf.set(e.person, (s = new Set()));
    s.add(e.party);
  }
  const pairs = new Set<string>();
  let linked = 0;
  let linked3 = 0;
  for (const s of partiesOf.values()) {
    if (s.size >= 2) linked++;
    if (s.size >= 3) linked3++;
    const l = graph.parties.filter((p) => s.has(p));
    for (let i = 0; i < l.length; i++) for (let j = i + 1; j < l.length; j++) pairs.add(pairName(l[i]!, l[j]!));
  }
  return {
    stolen: "central identity graph",
    pairsLinked: [...pairs].sort(),
    peopleLinked: linked,
    peopleLinkedAcross3Plus: linked3,
    identifiersOf: graph.parties.slice(),
    identifiersExposed: graph.index.size,
  };
}

/**
 * "Breach" one party's pairwise store: the thief holds that party's record ids (which the
 * party already has) and, per peer, which of them the peer also holds — under a pseudonym
 * that means nothing outside the pair. No peer's record ids, no identifiers, no other pair.
 * `world.truth` is used only to count the people the tables link (the thief gets counts too).
 *
 * @example breachPairwise(world, cw, "retailer").pairsLinked   // ["bank|retailer"?, …] only pairs with the retailer
 */
export function breachPairwise(world: PairwiseWorld, cw: PairwiseCrosswalk, party: string): BreachReport {
  const store = cw.stores[party] ?? invalid("party", `one of ${Object.keys(cw.stores).join(", ")}`, party);
  const peersOf = new Map<number, Set<string>>();
  for (const t of store) {
    for (const r of t.rows) {
      const person = world.truth.get(`${party}/${r.recordId}`)!;
      let s = peersOf.get(person);
      if (!s) peersOf.set(person, (s = new Set([party])));
      s.add(t.peer);
    }
  }
  let linked = 0;
  let linked3 = 0;
  for (const s of peersOf.values()) {
    if (s.size >= 2) linked++;
    if (s.size >= 3) linked3++;
  }
  return {
    stolen: `${party}'s pairwise tables`,
    pairsLinked: store.filter((t) => t.rows.length > 0).map((t) => t.pair),
    peopleLinked: linked,
    peopleLinkedAcross3Plus: linked3,
    identifiersOf: [],
    identifiersExposed: 0,
  };
}

export interface LinkingAttackResult {
  /** The two stolen tables (owner ← pair). */
  from: string;
  to: string;
  /** People present in both stolen tables (ground truth): the attack's targets. */
  targets: number;
  correct: number;
  successRate: number;
  /** Success of a blind guess (1 / rows of the target table). */
  chance: number;
  /** Targets linked by equal pseudonyms (the rest are guessed at random). */
  linkedByPseudonym: number;
}

/**
 * The linking attack: a thief holds `source` (e.g. the publisher's table for the pair
 * retailer|publisher) and `target` (the bank's table for retailer|bank) and tries to find, for
 * each person in both, the target record of the source record — by equal pseudonym when one
 * exists, else a uniformly random guess. Pairwise PSI pseudonyms → chance; hashed e-mails → ~1.
 *
 * @example crossPairLinkingAttack(world, pubTable, bankTable, seededRng("attack")).successRate
 */
export function crossPairLinkingAttack(world: PairwiseWorld, source: PairwiseTable, target: PairwiseTable, rng: Rng): LinkingAttackResult {
  const byPseudonym = new Map(target.rows.map((r) => [r.pseudonym, r.recordId]));
  const personOfTarget = new Map(target.rows.map((r) => [world.truth.get(`${target.owner}/${r.recordId}`)!, r.recordId]));
  let targets = 0;
  let correct = 0;
  let viaPseudonym = 0;
  for (const r of source.rows) {
    const person = world.truth.get(`${source.owner}/${r.recordId}`)!;
    const truthRecord = personOfTarget.get(person);
    if (truthRecord === undefined) continue;
    targets++;
    let guess = byPseudonym.get(r.pseudonym);
    if (guess !== undefined) viaPseudonym++;
    else guess = target.rows[rng.int(target.rows.length)]!.recordId;
    if (guess === truthRecord) correct++;
  }
  return {
    from: `${source.owner} (${source.pair})`,
    to: `${target.owner} (${target.pair})`,
    targets,
    correct,
    successRate: targets ? correct / targets : 0,
    chance: target.rows.length ? 1 / target.rows.length : 0,
    linkedByPseudonym: viaPseudonym,
  };
}

/**
 * The central thief's version of the same attack: the stolen graph links source records to
 * target records through the person (identifiers → person → identifiers).
 *
 * @example centralLinkingAttack(world, graph, "publisher", "bank").successRate  // 1
 */
export function centralLinkingAttack(world: PairwiseWorld, graph: IdentityGraph, from: string, to: string): LinkingAttackResult {
  const personOf = (party: string, email: string) => graph.index.get(`${party}|email:${normalizeEmail(email).value}`)?.person;
  const targetByPerson = new Map<number, string>();
  for (const r of world.records[to] ?? invalid("to", "a party of the world", to)) {
    const p = personOf(to, r.email);
    if (p !== undefined) targetByPerson.set(p, r.recordId);
  }
  const truthByPerson = new Map(world.records[to]!.map((x) => [world.truth.get(`${to}/${x.recordId}`)!, x.recordId]));
  let targets = 0;
  let correct = 0;
  for (const r of world.records[from] ?? invalid("from", "a party of the world", from)) {
    const truthRecord = truthByPerson.get(world.truth.get(`${from}/${r.recordId}`)!);
    if (truthRecord === undefined) continue;
    targets++;
    const p = personOf(from, r.email);
    if (p !== undefined && targetByPerson.get(p) === truthRecord) correct++;
  }
  return {
    from: `${from} (central graph)`,
    to: `${to} (central graph)`,
    targets,
    correct,
    successRate: targets ? correct / targets : 0,
    chance: world.records[to]!.length ? 1 / world.records[to]!.length : 0,
    linkedByPseudonym: correct,
  };
}
