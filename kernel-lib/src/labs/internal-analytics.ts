/**
 * Internal analytics on sensitive data, one organisation (seed, "Choosing the Right Tools":
 * purpose limitation + query anonymization + DP), as three layers whose effect is measured:
 *
 *   1. purpose per team: the dataset's label (fideslang taxonomy, purpose/labels.ts) decides
 *      which team may use which columns for what — the sensitive column only for reporting;
 *   2. k-anonymity by generalisation (Sweeney 2002; full-domain generalisation over a lattice
 *      of ZIP digits × age band × sex, least information loss with ≤ 2% suppression), tested by
 *      a re-identification (linkage) attack with an auxiliary list of ZIP, age, sex;
 *   3. DP on top: the analyst gets counts per (generalised class × condition) with discrete
 *      Laplace noise (add/remove one person changes one count by 1: L1 sensitivity 1).
 *
 * What each layer adds, measured: identity disclosure (a unique linkage) falls to 0 with
 * k-anonymity, but attribute disclosure (guessing a person's condition from their class, the
 * homogeneity attack of Machanavajjhala et al. 2007) stays above the base rate — and DP does not
 * change that: it is inference from a population statistic, which DP allows by design. What DP
 * stops is learning about ONE person: differencing last month's and this month's release around a
 * new joiner reveals the joiner's condition exactly under k-anonymity, and only up to the DP
 * bound with noise; the cost is measured as the error of the analysts' counts.
 *
 * Teaching only: synthetic, seeded data; nothing here touches a room.
 */
import { invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { sampleDiscreteLaplaceMany } from "../dp/mechanisms.js";
import { defaultTaxonomy } from "../purpose/taxonomy.js";
import { explainPermit, tagDataset } from "../purpose/labels.js";

export interface Person {
  id: string;
  zip: string;
  age: number;
  sex: "F" | "M";
  condition: string;
}

export const CONDITIONS = ["none", "asthma", "diabetes", "hypertension", "depression", "cancer"] as const;

/** Draw uniforms from an Rng in 4 KiB chunks. */
function uniforms(rng: Rng): () => number {
  let buf: Uint8Array = new Uint8Array(0);
  let view = new DataView(buf.buffer);
  let pos = 0;
  return () => {
    if (pos + 8 > buf.length) {
      buf = rng.bytes(4096);
      view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      pos = 0;
    }
    const x = (view.getUint32(pos) * 2 ** 21 + (view.getUint32(pos + 4) >>> 11)) / 2 ** 53;
    pos += 8;
    return x;
  };
}

/**
 * `n` people in 40 ZIP codes of 4 regions; the condition depends on age and region (so small
 * classes tend to be homogeneous — what the homogeneity attack exploits).
 * @example internalPopulation(2000, seededRng("org"))[0] // { id: "p0", zip: "02139", age: 41, sex: "F", condition: "none" }
 */
export function internalPopulation(n: number, rng: Rng): Person[] {
  if (!Number.isSafeInteger(n) || n < 10 || n > 1_000_000) invalid("n", "an integer in [10, 1e6]", n);
  const u = uniforms(rng);
  const out: Person[] = [];
  for (let i = 0; i < n; i++) {
    const region = Math.floor(u() * 4);
    const zip = `${region + 1}${String(100 + Math.floor(u() * 10)).padStart(3, "0")}${Math.floor(u() * 1)}`;
    const age = 18 + Math.floor(u() * 70);
    const sex = u() < 0.5 ? "F" : "M";
    // condition: mostly "none" when young; region 3 has a chronic-condition cluster
    const older = age >= 55;
    const weights =
      region === 3 && older
        ? [0.5, 0.2, 8, 1, 0.2, 0.5]
        : older
          ? [5, 1, 2, 3, 1, 1]
          : region === 3
            ? [4, 3, 1, 1, 3, 0.2]
            : [12, 2, 0.5, 0.5, 2, 0.2];
    const tot = weights.reduce((a, b) => a + b, 0);
    let r = u() * tot;
    let c = 0;
    while (r >= weights[c]!) r -= weights[c++]!;
    out.push({ id: `p${i}`, zip, age, sex, condition: CONDITIONS[c]! });
  }
  return out;
}

/** A full-domain generalisation: ZIP digits kept, age band width, sex kept or not. */
export interface Generalisation {
  zipDigits: number;
  ageBand: number;
  sex: boolean;
}

const ZIP_LEVELS = [5, 4, 3, 2, 1, 0];
const AGE_LEVELS = [1, 5, 10, 20, 100];

/** The quasi-identifier class of a person under `g`, e.g. "021**|40-49|F". */
export function qiClass(p: Pick<Person, "zip" | "age" | "sex">, g: Generalisation): string {
  const zip = p.zip.slice(0, g.zipDigits).padEnd(5, "*");
  const lo = Math.floor(p.age / g.ageBand) * g.ageBand;
  const age = g.ageBand === 1 ? String(p.age) : g.ageBand >= 100 ? "*" : `${lo}-${lo + g.ageBand - 1}`;
  return `${zip}|${age}|${g.sex ? p.sex : "*"}`;
}

/** Information loss of a generalisation in [0, 3] (0 = released as is). */
export const informationLoss = (g: Generalisation): number => (5 - g.zipDigits) / 5 + Math.log(g.ageBand) / Math.log(100) + (g.sex ? 0 : 1);

export interface KAnonymous {
  k: number;
  generalisation: Generalisation;
  /** Released rows: generalised class + condition; people in classes smaller than k suppressed. */
  rows: { qi: string; condition: string }[];
  suppressed: number;
  classes: number;
  smallestClass: number;
}

/**
 * The least-lossy full-domain generalisation under which every released class has ≥ k people,
 * suppressing at most `maxSuppression` of the rows (those in classes still below k).
 * @example kAnonymise(people, 5).generalisation // e.g. { zipDigits: 3, ageBand: 10, sex: true }
 */
export function kAnonymise(people: readonly Person[], k: number, maxSuppression = 0.02): KAnonymous {
  if (!Number.isSafeInteger(k) || k < 1 || k > people.length) invalid("k", `an integer in [1, ${people.length}]`, k);
  let best: { g: Generalisation; loss: number } | null = null;
  for (const zipDigits of ZIP_LEVELS)
    for (const ageBand of AGE_LEVELS)
      for (const sex of [true, false]) {
        const g = { zipDigits, ageBand, sex };
        const sizes = new Map<string, number>();
        for (const p of people) sizes.set(qiClass(p, g), (sizes.get(qiClass(p, g)) ?? 0) + 1);
        let small = 0;
        for (const s of sizes.values()) if (s < k) small += s;
        if (small <= maxSuppression * people.length) {
          const loss = informationLoss(g);
          if (!best || loss < best.loss) best = { g, loss };
        }
      }
  const g = best!.g; // the fully generalised point always qualifies (one class of n ≥ k)
  const sizes = new Map<string, number>();
  for (const p of people) sizes.set(qiClass(p, g), (sizes.get(qiClass(p, g)) ?? 0) + 1);
  const rows: KAnonymous["rows"] = [];
  let suppressed = 0;
  for (const p of people) {
    const c = qiClass(p, g);
    if (sizes.get(c)! < k) suppressed++;
    else rows.push({ qi: c, condition: p.condition });
  }
  const kept = [...sizes.values()].filter((s) => s >= k);
  return { k, generalisation: g, rows, suppressed, classes: kept.length, smallestClass: Math.min(...kept) };
}

/** Counts per (class, condition) — what an analyst's group-by returns — optionally with discrete Laplace noise. */
export function classCounts(rows: readonly { qi: string; condition: string }[], epsilon: number | null, rng: Rng): Map<string, number[]> {
  const counts = new Map<string, number[]>();
  for (const r of rows) {
    let c = counts.get(r.qi);
    if (!c) counts.set(r.qi, (c = CONDITIONS.map(() => 0)));
    c[CONDITIONS.indexOf(r.condition as (typeof CONDITIONS)[number])]!++;
  }
  if (epsilon !== null) {
    const keys = [...counts.keys()].sort();
    const noise = sampleDiscreteLaplaceMany(String(1 / epsilon), keys.length * CONDITIONS.length, rng);
    keys.forEach((q, i) =>
      counts.set(
        q,
        counts.get(q)!.map((v, j) => v + Number(noise[i * CONDITIONS.length + j]!)),
      ),
    );
  }
  return counts;
}

export interface LayerResult {
  layer: string;
  /** Share of the attacker's targets linked to exactly one released row (identity disclosure). */
  uniqueLinkage: number;
  /** Share of targets whose condition the attacker guesses right (attribute disclosure). */
  attributeGuess: number;
  /**
   * Share of new joiners whose condition the attacker learns by differencing this month's and
   * last month's release (the joiner is the only change): k-anonymity cannot stop it, DP does.
   */
  newJoinerGuess: number;
  /** Mean absolute error of the analysts' prevalence-by-age-decade counts vs the truth. */
  analystError: number;
}

/** Differencing two monthly releases around each joiner: guess = the condition whose count grew most. */
function newJoinerAttack(
  people: readonly Person[],
  joiners: readonly number[],
  g: Generalisation,
  release: (rows: { qi: string; condition: string }[], label: string) => Map<string, number[]>,
): number {
  let correct = 0;
  const all = people.map((p) => ({ qi: qiClass(p, g), condition: p.condition }));
  for (const j of joiners) {
    const was = release(
      all.filter((_, i) => i !== j),
      `before:${j}`,
    ).get(all[j]!.qi);
    const after = release(all, `after:${j}`).get(all[j]!.qi);
    if (!after) continue; // suppressed class
    const before = was ?? CONDITIONS.map(() => 0); // the joiner's class may be new
    let arg = 0;
    after.forEach((v, c) => {
      if (v - before[c]! > after[arg]! - before[arg]!) arg = c;
    });
    if (CONDITIONS[arg] === people[j]!.condition) correct++;
  }
  return correct / joiners.length;
}

/**
 * The linkage attack: the attacker knows ZIP, age and sex of `targets` people (an auxiliary list,
 * e.g. a voter roll) and that they are in the data; it looks up each target's class in what was
 * released and guesses the most frequent condition there (a unique row = identity disclosed).
 */
function attack(targets: readonly Person[], g: Generalisation, counts: Map<string, number[]>): { unique: number; correct: number } {
  let unique = 0;
  let correct = 0;
  for (const t of targets) {
    const c = counts.get(qiClass(t, g));
    if (!c) continue; // suppressed: nothing to learn
    const total = c.reduce((a, b) => a + Math.max(0, b), 0);
    if (Math.round(total) === 1) unique++;
    let arg = 0;
    c.forEach((v, j) => {
      if (v > c[arg]!) arg = j;
    });
    if (CONDITIONS[arg] === t.condition) correct++;
  }
  return { unique: unique / targets.length, correct: correct / targets.length };
}

/** The analysts' question: how many people of each age decade have each condition (summed from class counts). */
function analystError(people: readonly Person[], g: Generalisation, counts: Map<string, number[]>): number {
  if (g.ageBand > 10) return NaN; // the release cannot answer by decade
  const truth = new Map<number, number[]>();
  for (const p of people) {
    const d = Math.floor(p.age / 10);
    if (!truth.has(d))
      truth.set(
        d,
        CONDITIONS.map(() => 0),
      );
    truth.get(d)![CONDITIONS.indexOf(p.condition as (typeof CONDITIONS)[number])]!++;
  }
  const est = new Map<number, number[]>();
  for (const [q, c] of counts) {
    const age = q.split("|")[1]!;
    const d = Math.floor(Number(age.split("-")[0]) / 10);
    if (!est.has(d))
      est.set(
        d,
        CONDITIONS.map(() => 0),
      );
    c.forEach((v, j) => (est.get(d)![j]! += v));
  }
  let err = 0;
  let cells = 0;
  for (const [d, t] of truth)
    t.forEach((v, j) => {
      err += Math.abs((est.get(d)?.[j] ?? 0) - v);
      cells++;
    });
  return err / cells;
}

export interface InternalAnalyticsReport {
  kind: "internalAnalytics";
  people: number;
  targets: number;
  baseRate: number;
  /** Bound on the new-joiner guess under ε-DP per release (a joiner's condition changes two counts of one release: 2ε): e^{2ε} · base rate. */
  newJoinerBound: number;
  teams: { team: string; purpose: string; column: string; permitted: boolean; deniedBy: string | null }[];
  kAnon: Omit<KAnonymous, "rows">;
  layers: LayerResult[];
  epsilon: number;
  rngStamp: RngStamp;
}

/**
 * Run the three layers on a seeded population and measure what each adds.
 * @example const r = internalAnalyticsLab(seededRng("org")); r.layers.map((l) => [l.layer, l.uniqueLinkage, l.attributeGuess])
 */
export function internalAnalyticsLab(
  rng: Rng,
  opts: { people?: number; k?: number; epsilon?: number; targets?: number; joiners?: number } = {},
): InternalAnalyticsReport {
  const n = opts.people ?? 5000;
  const k = opts.k ?? 10;
  const epsilon = opts.epsilon ?? 0.2;
  if (!(epsilon > 0 && epsilon <= 10)) invalid("epsilon", "a number in (0, 10]", epsilon, "DP_PARAM_INVALID");
  const people = internalPopulation(n, rng.fork("population"));
  const u = uniforms(rng.fork("targets"));
  const targets = people.filter(() => u() < (opts.targets ?? 400) / n);
  // 1 · purpose per team (the dataset's label decides; the sensitive column is reporting-only)
  const tx = defaultTaxonomy();
  const labels = tagDataset(tx, {
    purposes: ["analytics", "essential"],
    deny: ["marketing"],
    columns: { condition: { purposes: ["analytics.reporting"] } },
  });
  const asks = [
    { team: "population-health", purpose: "analytics.reporting", column: "condition" },
    { team: "growth", purpose: "marketing.advertising", column: "zip" },
    { team: "fraud", purpose: "essential.fraud_detection", column: "zip" },
    { team: "fraud", purpose: "essential.fraud_detection", column: "condition" },
  ];
  const teams = asks.map((a) => {
    const e = explainPermit(labels.columns[a.column] ?? labels.dataset, tx.resolveUse(a.purpose));
    return { ...a, permitted: e.permitted, deniedBy: e.deniedBy };
  });
  // 2 · raw release vs k-anonymous release; 3 · DP counts on top of the k-anonymous classes
  const raw: Generalisation = { zipDigits: 5, ageBand: 1, sex: true };
  const rawCounts = classCounts(
    people.map((p) => ({ qi: qiClass(p, raw), condition: p.condition })),
    null,
    rng,
  );
  const ka = kAnonymise(people, k);
  const kaCounts = classCounts(ka.rows, null, rng);
  const dpCounts = classCounts(ka.rows, epsilon, rng.fork("dp"));
  const joiners = Array.from({ length: opts.joiners ?? 60 }, (_, i) => Math.floor((i * n) / (opts.joiners ?? 60)));
  const layer = (name: string, g: Generalisation, c: Map<string, number[]>, eps: number | null): LayerResult => {
    const a = attack(targets, g, c);
    const joinerRng = rng.fork(`joiners:${name}`);
    return {
      layer: name,
      uniqueLinkage: a.unique,
      attributeGuess: a.correct,
      newJoinerGuess: newJoinerAttack(people, joiners, g, (rows, label) => classCounts(rows, eps, joinerRng.fork(label))),
      analystError: analystError(people, g, c),
    };
  };
  const base = Math.max(...CONDITIONS.map((c) => people.filter((p) => p.condition === c).length)) / n;
  const { rows: _rows, ...kAnon } = ka;
  return {
    kind: "internalAnalytics",
    people: n,
    targets: targets.length,
    baseRate: base,
    newJoinerBound: Math.min(1, Math.exp(2 * epsilon) * base),
    teams,
    kAnon,
    layers: [
      layer("raw (ZIP, age, sex as is)", raw, rawCounts, null),
      layer(`k-anonymous (k = ${k})`, ka.generalisation, kaCounts, null),
      layer(`k-anonymous + DP (ε = ${epsilon})`, ka.generalisation, dpCounts, epsilon),
    ],
    epsilon,
    rngStamp: rngStamp(rng),
  };
}
