/**
 * Attack demonstrations, as library functions a notebook can run against the protections
 * in this layer — each one succeeds against the naive variant and fails against the real
 * one (tests hold both sides).
 *
 *  1. Dictionary attack: "hashed emails" (plain SHA-256) are pseudonyms only in name —
 *     anyone who can enumerate likely addresses re-identifies them. ECDH-PSI messages are
 *     keyed (H(x)^a with a secret a), so the same dictionary finds nothing.
 *  2. Naive "PSI" with hashToScalar(x)·G: its discrete logs are public, so one known pair
 *     (x0, k·h(x0)·G) lets anyone compute k·h(x)·G = (h(x)/h(x0))·(k·h(x0)·G) for every
 *     candidate x without knowing k. With RFC 9380 hash-to-group the log of H(x) is
 *     unknown and the same algebra yields nothing.
 *  3. Cardinality membership inference: a client running cardinality-only PSI twice, with S
 *     and S ∪ {target}, learns whether the target is in the server's set from the difference.
 *     A minimum set size does not stop it (the attacker pads with dummies); releasing the
 *     count with ε-DP noise (possible only where a third party — the clean room, over join
 *     keys — computes the count, since in ECDH-PSI the client counts itself) bounds the
 *     attacker's success by e^{2ε}/(1+e^{2ε}) for the two queries.
 */
import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";
import { sha256 } from "@noble/hashes/sha2.js";
import { invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { hex, utf8 } from "../crypto/primitives.js";
import { sampleDiscreteLaplace, laplaceScaleFor } from "../dp/mechanisms.js";
import { normalizeEmail } from "../identity/normalize.js";
import { GROUP_ORDER, PSI_DST, expandForPsi, loadSodium, randomScalar, scalarToBytes, makeBackend } from "../identity/psi-backend.js";
import { KeyRegistry, PsiClient, PsiServer } from "../identity/psi.js";

/**
 * What an ad-tech "hashed email" upload looks like: SHA-256 of the normalised address.
 * @example sha256Email(" Alice@Example.com") === sha256Email("alice@example.com") // true
 */
export function sha256Email(email: string): string {
  const n = normalizeEmail(email);
  return hex(sha256(utf8(n.ok ? n.value : email)));
}

const FIRST = [
  "james",
  "mary",
  "john",
  "patricia",
  "robert",
  "jennifer",
  "michael",
  "linda",
  "william",
  "elizabeth",
  "david",
  "barbara",
  "richard",
  "susan",
  "joseph",
  "jessica",
  "thomas",
  "sarah",
  "chris",
  "karen",
  "daniel",
  "lisa",
  "matthew",
  "nancy",
  "anthony",
  "betty",
  "mark",
  "sandra",
  "paul",
  "ashley",
];
const LAST = [
  "smith",
  "johnson",
  "williams",
  "brown",
  "jones",
  "garcia",
  "miller",
  "davis",
  "rodriguez",
  "martinez",
  "hernandez",
  "lopez",
  "gonzalez",
  "wilson",
  "anderson",
  "thomas",
  "taylor",
  "moore",
  "jackson",
  "martin",
  "lee",
  "perez",
  "thompson",
  "white",
  "harris",
  "sanchez",
  "clark",
  "ramirez",
  "lewis",
  "robinson",
];
const DOMAINS = ["gmail.com", "yahoo.com", "outlook.com", "example.com"];

/**
 * Candidate addresses an attacker enumerates from common names and patterns
 * (first.last, firstlast, flast, first_last; optional 2-digit suffix).
 *
 * @example emailDictionary({ suffixes: false }).length // 14400
 */
export function emailDictionary(options: { suffixes?: boolean; limit?: number } = {}): string[] {
  const out: string[] = [];
  const limit = options.limit ?? Infinity;
  for (const d of DOMAINS)
    for (const f of FIRST)
      for (const l of LAST) {
        const base = [`${f}.${l}`, `${f}${l}`, `${f[0]}${l}`, `${f}_${l}`];
        for (const b of base) {
          out.push(`${b}@${d}`);
          if (options.suffixes) for (let n = 70; n < 100; n++) out.push(`${b}${n}@${d}`);
          if (out.length >= limit) return out;
        }
      }
  return out;
}

export interface DictionaryAttackResult {
  observed: number;
  dictionarySize: number;
  reidentified: number;
  rate: number;
  /** Indices of observed values the attacker re-identified (values are not echoed). */
  reidentifiedIndices: number[];
}

/**
 * Try a dictionary against observed pseudonyms: compares SHA-256 of each (normalised)
 * candidate, and the unkeyed hash-to-group point, with what was observed.
 *
 * @example
 * dictionaryAttack(victims.map(sha256Email), emailDictionary()).rate        // ≈ 1
 * dictionaryAttack(psiRequest.encryptedElements, emailDictionary()).rate    // 0
 */
export function dictionaryAttack(observed: readonly string[], dictionary: readonly string[]): DictionaryAttackResult {
  if (!Array.isArray(observed)) invalid("observed", "array of hex strings", observed);
  if (!Array.isArray(dictionary)) invalid("dictionary", "array of candidate emails", dictionary);
  const want = new Map<string, number>();
  observed.forEach((o, i) => want.set(String(o).toLowerCase(), i));
  const hits = new Set<number>();
  for (const c of dictionary) {
    const h = sha256Email(c);
    if (want.has(h)) hits.add(want.get(h)!);
    const n = normalizeEmail(c);
    const p = hex(ristretto255_hasher.hashToCurve(utf8(n.ok ? n.value : c), { DST: PSI_DST }).toBytes());
    if (want.has(p)) hits.add(want.get(p)!);
  }
  const idx = [...hits].sort((a, b) => a - b);
  return {
    observed: observed.length,
    dictionarySize: dictionary.length,
    reidentified: idx.length,
    rate: observed.length ? idx.length / observed.length : 0,
    reidentifiedIndices: idx,
  };
}

const NAIVE_DST = "cleanroom-lab-NAIVE-hashToScalar-v1";
const hScalar = (x: string): bigint => ristretto255_hasher.hashToScalar(utf8(x), { DST: NAIVE_DST });

/**
 * The broken construction: blind (hashToScalar(x)·G) with key k, i.e. (k·h(x))·G.
 *
 * @example naivePsiBlind(["a@x.org"], randomScalar(secureRng()))
 */
export async function naivePsiBlind(elements: readonly string[], scalar: Uint8Array): Promise<string[]> {
  const s = await loadSodium();
  return elements.map((x) =>
    hex(s.crypto_scalarmult_ristretto255(scalar, s.crypto_scalarmult_ristretto255_base(scalarToBytes(hScalar(x))))),
  );
}

/** The real construction, for side-by-side comparison: H(x)^k with RFC 9380 hash-to-group. */
export async function realPsiBlind(elements: readonly string[], scalar: Uint8Array): Promise<string[]> {
  const s = await loadSodium();
  return elements.map((x) => hex(s.crypto_scalarmult_ristretto255(scalar, s.crypto_core_ristretto255_from_hash(expandForPsi(x)))));
}

/**
 * Known-pair attack: given one (element, blinded) pair from the victim's key, compute the
 * blinded value of every dictionary candidate as (h(c)/h(x0))·blinded0 and look for it.
 * The known pair itself is not counted.
 *
 * @example
 * const k = randomScalar(rng); const obs = await naivePsiBlind(emails, k);
 * (await knownPairAttack(obs, { element: emails[0], blinded: obs[0] }, dict)).rate // ≈ 1
 */
export async function knownPairAttack(
  observed: readonly string[],
  known: { element: string; blinded: string },
  dictionary: readonly string[],
): Promise<DictionaryAttackResult> {
  const s = await loadSodium();
  const want = new Map<string, number>();
  observed.forEach((o, i) => want.set(o, i));
  const h0inv = ristretto255.Point.Fn.inv(hScalar(known.element));
  const q0 = Uint8Array.from(Buffer.from(known.blinded, "hex"));
  const hits = new Set<number>();
  for (const c of dictionary) {
    if (c === known.element) continue; // the pair the attacker already has is not a find
    const ratio = (hScalar(c) * h0inv) % GROUP_ORDER;
    if (ratio === 0n) continue;
    const guess = hex(s.crypto_scalarmult_ristretto255(scalarToBytes(ratio), q0));
    if (want.has(guess)) hits.add(want.get(guess)!);
  }
  const idx = [...hits].sort((a, b) => a - b);
  return {
    observed: observed.length,
    dictionarySize: dictionary.length,
    reidentified: idx.length,
    rate: observed.length ? idx.length / observed.length : 0,
    reidentifiedIndices: idx,
  };
}

export type CardinalityDefense = { kind: "none" } | { kind: "minSetSize"; min: number } | { kind: "dp"; epsilon: string | number };

export interface MembershipAttackResult {
  trials: number;
  correct: number;
  successRate: number;
  /** Best possible success for any attacker under the defense (1 without DP). */
  bound: number;
  /** Dummies the attacker added to satisfy a minimum set size. */
  paddedWith: number;
  oracle: "psi" | "exact";
  rngStamp: RngStamp;
}

/** One cardinality-only PSI session (fresh keys), client → count. */
async function psiCardinality(client: string[], server: string[], minSet: number, rng: Rng): Promise<number> {
  const backend = await makeBackend({ backend: "libsodium", threads: 1 });
  const registry = new KeyRegistry();
  const c = new PsiClient({ mode: "cardinality", backend, rng: rng.fork("c"), registry, minPeerSetSize: minSet });
  const sv = new PsiServer({ mode: "cardinality", backend, rng: rng.fork("s"), registry, minPeerSetSize: minSet });
  const req = await c.createRequest(client);
  const { setup, response } = await sv.processRequest(req, server);
  return (await c.processResponse(setup, response)).intersectionSize;
}

/**
 * Membership inference by differencing two cardinality queries, S and S ∪ {target}, over
 * `trials` independent worlds where the target is in the victim's set with probability ½.
 * `oracle: "psi"` runs the real protocol (slow, fresh keys each session); "exact" uses the
 * same count computed in the clear (identical output, for many trials).
 *
 * @example
 * await cardinalityMembershipAttack({ victim, probe, target, defense: { kind: "dp", epsilon: "0.5" }, trials: 200, rng })
 * // { successRate: ~0.7, bound: 0.731, ... }
 */
export async function cardinalityMembershipAttack(o: {
  victim: readonly string[];
  probe: readonly string[];
  target: string;
  defense?: CardinalityDefense;
  trials?: number;
  oracle?: "psi" | "exact";
  rng: Rng;
}): Promise<MembershipAttackResult> {
  const defense = o.defense ?? { kind: "none" };
  const trials = o.trials ?? 100;
  if (!Number.isSafeInteger(trials) || trials < 1 || trials > 100_000) invalid("trials", "integer in [1, 100000]", trials);
  if (o.probe.includes(o.target)) invalid("probe", "a set not containing the target", o.probe);
  const oracle = o.oracle ?? "exact";
  const minSet = defense.kind === "minSetSize" ? defense.min : 1;
  const probe = [...o.probe];
  let paddedWith = 0;
  while (probe.length < minSet) probe.push(`dummy-${paddedWith++}@attacker.invalid`);
  const victimBase = o.victim.filter((v) => v !== o.target);
  const scale = defense.kind === "dp" ? laplaceScaleFor(String(defense.epsilon), 1n) : null;
  let correct = 0;
  for (let t = 0; t < trials; t++) {
    const member = o.rng.int(2) === 1;
    const victim = member ? [...victimBase, o.target] : victimBase;
    const vset = new Set(victim);
    const count = async (q: string[]) => {
      const exact =
        oracle === "psi" ? await psiCardinality(q, victim, minSet, o.rng.fork(`t${t}/${q.length}`)) : q.filter((x) => vset.has(x)).length;
      return scale ? exact + Number(sampleDiscreteLaplace(scale, o.rng)) : exact;
    };
    const c1 = await count(probe);
    const c2 = await count([...probe, o.target]);
    if (c2 - c1 >= 1 === member) correct++;
  }
  const eps2 = defense.kind === "dp" ? 2 * Number(defense.epsilon) : Infinity;
  return {
    trials,
    correct,
    successRate: correct / trials,
    bound: Number.isFinite(eps2) ? Math.exp(eps2) / (1 + Math.exp(eps2)) : 1,
    paddedWith,
    oracle,
    rngStamp: rngStamp(o.rng),
  };
}

export { randomScalar };
