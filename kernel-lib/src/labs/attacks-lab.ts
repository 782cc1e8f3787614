/**
 * Attack lab: the small rooms, cohort templates and simulations behind the notebook
 * "Attack lab: differencing, trackers and averaging" (notebooks/05-attack-lab.ipynb).
 *
 * Everything here is *teaching apparatus*: a seeded population with one target who is the
 * only north-region customer over 60; the approved cohort template an analyst may call with
 * any region list and age range (threshold, optional difference check, optional Laplace
 * noise); the tracker query sets (Denning's individual tracker and a 2-D inclusion–exclusion
 * tracker whose four cohorts are pairwise far apart, so it slips past an ADH difference
 * check); and Monte-Carlo measurements of attacker accuracy against ε, against repetitions
 * (averaging) and across monthly budget refreshes, using the library's real discrete
 * Laplace sampler and a real PrivacyLedger with an injected clock.
 *
 * Threat model: a curious analyst with approved-template access who knows the target's
 * region and age (background knowledge) and wants her `converted` bit. The simulations
 * compute exact cohort answers in the clear (the same numbers the engine returns — tested)
 * and add the template's noise, so thousands of trials run in seconds; the notebook runs
 * the same attacks once through a real `Lab` first. Attacker accuracy is compared with the
 * ε-DP bound e^ε/(1+e^ε) for distinguishing two neighbouring worlds on a fair coin.
 * References: Denning et al. 1979 (trackers), ADH difference checks (reference §1.2, §7.1),
 * AWS Clean Rooms budget refresh warning.
 */
import Database from "better-sqlite3";
import { invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { hex } from "../crypto/primitives.js";
import { sampleDiscreteLaplaceMany, laplaceScaleFor } from "../dp/mechanisms.js";
import { pureDp } from "../dp/accountant.js";
import { PrivacyLedger } from "../dp/ledger.js";
import { refreshWarning } from "../dp/budget.js";
import { ratFrom, ratToNumber } from "../dp/rational.js";
import { isCleanRoomError } from "../errors.js";
import type { DatasetSchema } from "../cleanroom/dataset.js";
import type { TemplateInput } from "../cleanroom/template.js";

export const LAB_REGIONS = ["north", "south", "east", "west"] as const;
export type LabRegion = (typeof LAB_REGIONS)[number];

/** One customer row of the lab's retailer table (join_key is a pseudonym). */
export interface LabCustomer {
  join_key: string;
  region: LabRegion;
  age: number;
  converted: 0 | 1;
}

/** A dataset schema as `lab.upload` takes it (privacy unit = `idColumn`). */
export type LabSchema = Omit<DatasetSchema, "privacyUnit">;

/** Cohort parameters of {@link cohortTemplate}. */
export interface CohortParams {
  regions: LabRegion[];
  minAge: number;
  maxAge: number;
}

export interface AttackPopulation {
  rows: LabCustomer[];
  /** What the attacker knows about the target (not her `converted` bit). */
  target: { join_key: string; region: "north"; age: number; converted: 0 | 1 };
  /** Dataset schema and AWS-shaped aggregation rule for `lab.upload`. */
  schema: LabSchema;
  rule: object;
}

/**
 * A seeded retailer population with one target: the only customer in the north aged over 60.
 *
 * @example
 * const pop = attackPopulation({ rng: seededRng("lab5"), people: 800 });
 * pop.rows.filter((r) => r.region === "north" && r.age > 60).length // 1 (the target)
 */
export function attackPopulation(o: { rng: Rng; people?: number; targetConverted?: 0 | 1; minimum?: number }): AttackPopulation {
  const n = o.people ?? 800;
  if (!Number.isSafeInteger(n) || n < 200 || n > 100_000) invalid("people", "integer in [200, 100000]", n);
  const tc = o.targetConverted ?? 1;
  if (tc !== 0 && tc !== 1) invalid("targetConverted", "0 or 1", tc);
  const rng = o.rng;
  const rows: LabCustomer[] = [];
  for (let i = 0; i < n - 1; i++) {
    const region = LAB_REGIONS[rng.int(4)]!;
    // North customers are all 60 or younger; a quarter of everyone else is older.
    const old = region !== "north" && rng.int(4) === 0;
    rows.push({
      join_key: "jk_" + hex(rng.bytes(8)),
      region,
      age: old ? 61 + rng.int(25) : 18 + rng.int(43),
      converted: rng.int(10) < 3 ? 1 : 0,
    });
  }
  const target = { join_key: "jk_" + hex(rng.bytes(8)), region: "north" as const, age: 67, converted: tc as 0 | 1 };
  rows.splice(rng.int(rows.length + 1), 0, { ...target });
  return {
    rows,
    target,
    schema: {
      columns: {
        join_key: { type: "string" },
        region: { type: "string" },
        age: { type: "int", min: 0, max: 120 },
        converted: { type: "int", min: 0, max: 1 },
      },
    } as LabSchema,
    rule: {
      type: "AGGREGATION",
      aggregateColumns: [{ columnNames: ["converted"], function: "SUM" }],
      dimensionColumns: ["region", "age"],
      joinColumns: ["join_key"],
      outputConstraints: [{ columnName: "join_key", minimum: o.minimum ?? 20, type: "COUNT_DISTINCT" }],
    },
  };
}

/**
 * The approved cohort template: people and converters for any region list and age range.
 * Defences are template properties, so each variant has its own hash and approval.
 *
 * @example
 * cohortTemplate({ owner: "retailer", differenceCheck: 50 })
 * cohortTemplate({ owner: "retailer", epsilonPerAggregate: "0.5" })
 */
export function cohortTemplate(o: {
  owner: string;
  dataset?: string;
  name?: string;
  threshold?: number;
  differenceCheck?: number;
  epsilonPerAggregate?: string;
}): TemplateInput {
  const ds = o.dataset ?? "customers";
  const defences = [
    o.differenceCheck ? `diffcheck k=${o.differenceCheck}` : null,
    o.epsilonPerAggregate ? `laplace ε=${o.epsilonPerAggregate}` : null,
  ].filter(Boolean);
  return {
    version: 1,
    name: o.name ?? `cohort converters (${defences.length ? defences.join(", ") : "threshold only"})`,
    base: { owner: o.owner, dataset: ds },
    params: {
      regions: { type: "enumList", values: [...LAB_REGIONS] },
      minAge: { type: "int", min: 18, max: 99 },
      maxAge: { type: "int", min: 18, max: 99 },
    },
    filters: [
      { column: `${ds}.region`, op: "in", value: { param: "regions" } },
      { column: `${ds}.age`, op: "ge", value: { param: "minAge" } },
      { column: `${ds}.age`, op: "le", value: { param: "maxAge" } },
    ],
    aggregates: [
      { name: "people", fn: "countUnits" },
      { name: "converters", fn: "sum", column: `${ds}.converted`, bounds: [0, 1] },
    ],
    threshold: { minimum: o.threshold ?? 20, style: "drop" },
    ...(o.epsilonPerAggregate
      ? { noise: { mechanism: "laplace", epsilonPerAggregate: o.epsilonPerAggregate }, contribution: { maxRowsPerUnit: 1, orderBy: [] } }
      : {}),
    ...(o.differenceCheck ? { differenceCheck: { k: o.differenceCheck } } : {}),
  };
}

const OTHERS: LabRegion[] = ["south", "east", "west"];

/** A signed query of a tracker: the target's value is Σ sign × answer(params). */
export interface TrackerStep {
  params: CohortParams;
  sign: 1 | -1;
  /** Does the cohort contain the target? (Only these depend on her value.) */
  containsTarget: boolean;
}

/**
 * The attacks on the target (north, age 67), as cohort parameter sets:
 * `direct` asks for her cohort (one person: the threshold suppresses it); `pair` is the
 * individual tracker (north 18–99 minus north 18–60); `general` is the 2-D
 * inclusion–exclusion tracker A − B − C + D whose cohorts differ pairwise by dozens of
 * people, so no pair trips a difference check.
 *
 * @example trackers().general.map((s) => s.sign) // [1, -1, -1, 1]
 */
export function trackers(): { direct: CohortParams; pair: TrackerStep[]; general: TrackerStep[] } {
  const all = [...LAB_REGIONS];
  return {
    direct: { regions: ["north"], minAge: 61, maxAge: 99 },
    pair: [
      { params: { regions: ["north"], minAge: 18, maxAge: 99 }, sign: 1, containsTarget: true },
      { params: { regions: ["north"], minAge: 18, maxAge: 60 }, sign: -1, containsTarget: false },
    ],
    general: [
      { params: { regions: all, minAge: 41, maxAge: 99 }, sign: 1, containsTarget: true },
      { params: { regions: [...OTHERS], minAge: 41, maxAge: 99 }, sign: -1, containsTarget: false },
      { params: { regions: all, minAge: 41, maxAge: 60 }, sign: -1, containsTarget: false },
      { params: { regions: [...OTHERS], minAge: 41, maxAge: 60 }, sign: 1, containsTarget: false },
    ],
  };
}

/**
 * Exact cohort answer computed in the clear (what the engine computes before noise).
 * @example exactCohort(pop.rows, trackers().direct) // { people: 1, converters: 1 }
 */
export function exactCohort(rows: readonly LabCustomer[], p: CohortParams): { people: number; converters: number } {
  let people = 0;
  let converters = 0;
  for (const r of rows) {
    if (!p.regions.includes(r.region) || r.age < p.minAge || r.age > p.maxAge) continue;
    people++;
    converters += r.converted;
  }
  return { people, converters };
}

/** Best success any attacker can have distinguishing two ε-DP neighbours on a fair coin. */
export const dpGuessBound = (epsilon: number): number => (Number.isFinite(epsilon) ? 1 / (1 + Math.exp(-epsilon)) : 1);

export interface AccuracyPoint {
  epsilon: number;
  repeats: number;
  /** Fraction of trials in which the attacker guessed the target's bit. */
  accuracy: number;
  /** e^ε_total/(1+e^ε_total) with ε_total = repeats × ε × (target-containing queries). */
  bound: number;
  /** Std. dev. of the attacker's estimate of the bit. */
  estimateSd: number;
  trials: number;
}

/**
 * Monte-Carlo attacker accuracy of a tracker against Laplace noise: each trial flips a fair
 * coin for the target's `converted` bit, answers every cohort (`repeats` times, averaged)
 * with discrete Laplace noise of scale 1/ε (the template's converters noise), and guesses
 * 1 when Σ sign × answer ≥ ½. `epsilon: Infinity` means no noise.
 *
 * @example
 * trackerAccuracy({ rows: pop.rows, tracker: "general", epsilons: [0.1, 1, Infinity], trials: 300, rng })
 */
export function trackerAccuracy(o: {
  rows: readonly LabCustomer[];
  tracker: "pair" | "general";
  epsilons: number[];
  repeats?: number;
  trials?: number;
  rng: Rng;
}): { points: AccuracyPoint[]; rngStamp: RngStamp } {
  const steps = trackers()[o.tracker];
  if (!steps) invalid("tracker", `"pair" or "general"`, o.tracker);
  const trials = o.trials ?? 400;
  const repeats = o.repeats ?? 1;
  if (!Number.isSafeInteger(trials) || trials < 1 || trials > 100_000) invalid("trials", "integer in [1, 100000]", trials);
  if (!Number.isSafeInteger(repeats) || repeats < 1 || repeats > 10_000) invalid("repeats", "integer in [1, 10000]", repeats);
  if (!Array.isArray(o.epsilons) || o.epsilons.length === 0 || !o.epsilons.every((e) => e > 0))
    invalid("epsilons", "non-empty list of ε > 0 (Infinity = no noise)", o.epsilons);
  const target = o.rows.find((r) => r.region === "north" && r.age > 60);
  if (!target) invalid("rows", "an attack population with a target (attackPopulation)", o.rows);
  // Answers without the target's bit; her contribution is added per world.
  const base = steps.map((s) => exactCohort(o.rows, s.params).converters - (s.containsTarget ? target.converted : 0));
  const points: AccuracyPoint[] = [];
  for (const eps of o.epsilons) {
    const scale = Number.isFinite(eps) ? laplaceScaleFor(decimal(eps), 1n) : null;
    let correct = 0;
    let sumSq = 0;
    for (let t = 0; t < trials; t++) {
      const bit = o.rng.int(2);
      let estimate = 0;
      steps.forEach((s, i) => {
        const exact = base[i]! + (s.containsTarget ? bit : 0);
        let noise = 0;
        if (scale) for (const z of sampleDiscreteLaplaceMany(scale, repeats, o.rng)) noise += Number(z);
        estimate += s.sign * (exact + noise / repeats);
      });
      if ((estimate >= 0.5 ? 1 : 0) === bit) correct++;
      sumSq += (estimate - bit) ** 2;
    }
    const epsTotal = eps * repeats * steps.filter((s) => s.containsTarget).length;
    points.push({
      epsilon: eps,
      repeats,
      accuracy: correct / trials,
      bound: dpGuessBound(epsTotal),
      estimateSd: Math.sqrt(sumSq / trials),
      trials,
    });
  }
  return { points, rngStamp: rngStamp(o.rng) };
}

/** ε as an exact decimal string for the rational DP API (e.g. 0.1 → "0.1"). */
function decimal(x: number): string {
  const s = String(x);
  if (!/^\d+(\.\d+)?$/.test(s)) invalid("epsilon", "a plain decimal ε such as 0.25", x);
  return s;
}

export interface RefreshMonth {
  month: string;
  /** Tracker rounds the ledger admitted this month before BUDGET_EXCEEDED. */
  rounds: number;
  /** Cumulative rounds since the start. */
  totalRounds: number;
  /** Cumulative privacy loss (the ledger's lifetime spend), ε. */
  lifetimeEpsilon: number;
  /** Attacker accuracy averaging every round so far (Monte Carlo). */
  accuracy: number;
  bound: number;
}

/**
 * What a monthly-refreshing budget lets an averaging attacker do: a real PrivacyLedger with
 * an injected clock admits tracker rounds (each charging queries × quantities × ε) until
 * BUDGET_EXCEEDED, month after month; the attacker averages every round so far.
 *
 * @example
 * refreshAveraging({ rows: pop.rows, monthlyEpsilon: "4", epsilonPerAggregate: "0.25", months: 12, rng })
 */
export function refreshAveraging(o: {
  rows: readonly LabCustomer[];
  monthlyEpsilon: string;
  epsilonPerAggregate: string;
  months: number;
  tracker?: "pair" | "general";
  trials?: number;
  rng: Rng;
}): { months: RefreshMonth[]; costPerRound: string; refreshWarning: string | null; refusal: string; rngStamp: RngStamp } {
  if (!Number.isSafeInteger(o.months) || o.months < 1 || o.months > 60) invalid("months", "integer in [1, 60]", o.months);
  const tracker = o.tracker ?? "general";
  const steps = trackers()[tracker];
  const eps = Number(o.epsilonPerAggregate);
  // Each run of the cohort template noises 2 quantities (the unit count and converters).
  const perRound = pureDp(decimal(Number((steps.length * 2 * eps).toPrecision(12))));
  let clock = new Date(Date.UTC(2026, 0, 15));
  const db = new Database(":memory:");
  const ledger = new PrivacyLedger(db, { now: () => clock });
  const key = { scope: "party" as const, subject: "advertiser" };
  ledger.createBudget("attack-lab", key, pureDp(o.monthlyEpsilon), { refresh: "monthly" });
  const out: RefreshMonth[] = [];
  let total = 0;
  let refusal = "";
  for (let m = 0; m < o.months; m++) {
    clock = new Date(Date.UTC(2026, m, 15));
    let rounds = 0;
    for (;;) {
      try {
        ledger.chargeAtomic("attack-lab", [key], perRound, { templateHash: "cohort-tracker", purpose: "measurement", party: "advertiser" });
      } catch (e) {
        if (!isCleanRoomError(e, "BUDGET_EXCEEDED")) throw e;
        if (!refusal) refusal = e.message;
        break;
      }
      rounds++;
    }
    total += rounds;
    const status = ledger.status("attack-lab").budgets.find((b) => b.scope === "party")!;
    const acc =
      total > 0
        ? trackerAccuracy({ rows: o.rows, tracker, epsilons: [eps], repeats: total, trials: o.trials ?? 200, rng: o.rng.fork(`month${m}`) })
            .points[0]!
        : null;
    out.push({
      month: clock.toISOString().slice(0, 7),
      rounds,
      totalRounds: total,
      lifetimeEpsilon: status.lifetimeSpent.kind === "pureDp" ? ratToNumber(ratFrom(status.lifetimeSpent.epsilon)) : NaN,
      accuracy: acc?.accuracy ?? 0.5,
      bound: acc?.bound ?? 0.5,
    });
  }
  db.close();
  return {
    months: out,
    costPerRound: `${steps.length} runs × 2 noised quantities × ε ${o.epsilonPerAggregate} = ε ${decimal(Number((steps.length * 2 * eps).toPrecision(12)))}`,
    refreshWarning: refreshWarning("monthly", pureDp(o.monthlyEpsilon)),
    refusal,
    rngStamp: rngStamp(o.rng),
  };
}

export interface ReconstructionPoint {
  /** ε of each subset-sum answer (Infinity = exact answers). */
  epsilonPerQuery: number;
  /** Privacy loss of one person: ε × the number of queries that include her (mean over people). */
  epsilonPerPerson: number;
  /** Fraction of secret bits the attacker recovered (mean over trials). */
  accuracy: number;
  /** Mean over people of the ε-DP bound e^ε_i/(1+e^ε_i) on guessing her bit. */
  bound: number;
}

/**
 * Dinur–Nissim reconstruction: `queries` random subset sums of `people` secret bits, each
 * answered with discrete Laplace noise of scale 1/ε (sensitivity 1); the attacker solves the
 * least-squares system and rounds. Exact (or lightly noised) answers give the whole database
 * back; the per-person privacy loss shows why a budget must cap the number of queries.
 *
 * @example
 * reconstructionAttack({ people: 60, queries: 240, epsilons: [0.01, 1, Infinity], rng }).points
 */
export function reconstructionAttack(o: { people?: number; queries?: number; epsilons: number[]; trials?: number; rng: Rng }): {
  points: ReconstructionPoint[];
  people: number;
  queries: number;
  rngStamp: RngStamp;
} {
  const n = o.people ?? 60;
  const m = o.queries ?? 4 * n;
  const trials = o.trials ?? 3;
  if (!Number.isSafeInteger(n) || n < 4 || n > 400) invalid("people", "integer in [4, 400]", n);
  if (!Number.isSafeInteger(m) || m < n || m > 4000) invalid("queries", `integer in [people, 4000]`, m);
  if (!Number.isSafeInteger(trials) || trials < 1 || trials > 100) invalid("trials", "integer in [1, 100]", trials);
  if (!Array.isArray(o.epsilons) || o.epsilons.length === 0 || !o.epsilons.every((e) => e > 0))
    invalid("epsilons", "non-empty list of ε > 0 (Infinity = exact)", o.epsilons);
  const points: ReconstructionPoint[] = [];
  for (const eps of o.epsilons) {
    const scale = Number.isFinite(eps) ? laplaceScaleFor(decimal(eps), 1n) : null;
    let correct = 0;
    let loss = 0;
    let bound = 0;
    for (let t = 0; t < trials; t++) {
      const x = Array.from({ length: n }, () => o.rng.int(2));
      const A = Array.from({ length: m }, () => Array.from({ length: n }, () => o.rng.int(2)));
      const noise = scale ? sampleDiscreteLaplaceMany(scale, m, o.rng).map(Number) : new Array<number>(m).fill(0);
      const y = A.map((row, j) => row.reduce((s, a, i) => s + a * x[i]!, 0) + noise[j]!);
      const est = leastSquares(A, y);
      est.forEach((v, i) => (correct += (v >= 0.5 ? 1 : 0) === x[i] ? 1 : 0));
      for (let i = 0; i < n; i++) {
        const k = A.reduce((s, row) => s + row[i]!, 0);
        loss += k * eps;
        bound += dpGuessBound(k * eps);
      }
    }
    points.push({
      epsilonPerQuery: eps,
      epsilonPerPerson: loss / (n * trials),
      accuracy: correct / (n * trials),
      bound: bound / (n * trials),
    });
  }
  return { points, people: n, queries: m, rngStamp: rngStamp(o.rng) };
}

/** Solve min ‖A·x − y‖₂ through the normal equations (Gaussian elimination, partial pivoting). */
function leastSquares(A: number[][], y: number[]): number[] {
  const n = A[0]!.length;
  const M = Array.from({ length: n }, (_, r) => {
    const row = new Array<number>(n + 1).fill(0);
    for (const [j, a] of A.entries()) {
      const ar = a[r]!;
      if (ar === 0) continue;
      for (let c = 0; c < n; c++) row[c]! += ar * a[c]!;
      row[n]! += ar * y[j]!;
    }
    return row;
  });
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r]![c]!) > Math.abs(M[p]![c]!)) p = r;
    [M[c], M[p]] = [M[p]!, M[c]!];
    const piv = M[c]![c]!;
    if (Math.abs(piv) < 1e-12) continue; // singular direction: leave that unknown at 0
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r]![c]! / piv;
      if (f !== 0) for (let k = c; k <= n; k++) M[r]![k]! -= f * M[c]![k]!;
    }
  }
  return M.map((row, i) => (Math.abs(row[i]!) < 1e-12 ? 0 : row[n]! / row[i]!));
}

/**
 * Ads Data Hub's documented difference-check example as a one-table room: campaign 123 has
 * 400 users by day 1 and one more on day 2; campaign 789 has 100 users on day 2.
 *
 * @example const adh = adhImpressions(seededRng("adh")); lab.upload(p, "impressions", adh.rows, { ...adh })
 */
export function adhImpressions(rng: Rng): {
  rows: { join_key: string; campaign: string; day: number }[];
  schema: LabSchema;
  rule: object;
  template: (o: { owner: string; differenceCheck?: number }) => TemplateInput;
} {
  const rows: { join_key: string; campaign: string; day: number }[] = [];
  for (let i = 0; i < 400; i++) rows.push({ join_key: "jk_" + hex(rng.bytes(8)), campaign: "123", day: 1 });
  rows.push({ join_key: "jk_" + hex(rng.bytes(8)), campaign: "123", day: 2 });
  for (let i = 0; i < 100; i++) rows.push({ join_key: "jk_" + hex(rng.bytes(8)), campaign: "789", day: 2 });
  return {
    rows,
    schema: { columns: { join_key: { type: "string" }, campaign: { type: "string" }, day: { type: "int", min: 0, max: 31 } } } as LabSchema,
    rule: {
      type: "AGGREGATION",
      aggregateColumns: [],
      dimensionColumns: ["campaign", "day"],
      joinColumns: ["join_key"],
      outputConstraints: [{ columnName: "join_key", minimum: 2, type: "COUNT_DISTINCT" }],
    },
    template: ({ owner, differenceCheck }) => ({
      version: 1,
      name: `users per campaign${differenceCheck ? ` (diffcheck k=${differenceCheck})` : ""}`,
      base: { owner, dataset: "impressions" },
      params: { maxDay: { type: "int", min: 0, max: 30 } },
      filters: [{ column: "impressions.day", op: "le", value: { param: "maxDay" } }],
      groupBy: ["impressions.campaign"],
      aggregates: [{ name: "users", fn: "countUnits" }],
      threshold: { minimum: "adh_diffcheck", style: "drop" },
      ...(differenceCheck ? { differenceCheck: { k: differenceCheck } } : {}),
    }),
  };
}
