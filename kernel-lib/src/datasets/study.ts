/**
 * The canonical lift study, generated: an advertiser's ad exposures and a retailer's
 * purchases, with a stated ground truth (DESIGN.md "datasets/"; issue 2 "Synthetic datasets").
 *
 * What it does: one sequential pass over people, driven by independent forks of
 * `seededRng(seed)` ("people", "advertiser-mess", "retailer-mess", "retailer-only",
 * "retailer-order"), emitting rows to a sink as it goes — memory stays flat from 10k to
 * 10M rows. Each matched person's *potential outcomes* (purchases if untreated, extra
 * purchases if treated and reached) are drawn before and independently of the randomised
 * test/control assignment, so the ground truth contains the exact finite-population causal
 * effect, not only its expectation.
 *
 * Who is matched: retailer customers are defined by the pre-period (everyone buys at least
 * once before day 0), so matching never depends on treatment (no collider bias).
 * Purchase rows are shuffled within fixed blocks of 65,536 rows so the two files' row
 * orders are unrelated within a block (coarse order correlation remains across blocks of
 * very large files — do not rely on row order).
 *
 * Threat model: synthetic data for teaching and tests; the files are "what each party
 * holds", the ground truth is the god's-eye view no party has.
 */
import { rngStamp, seededRng } from "../rng.js";
import { invalid } from "../errors.js";
import { UniformSource, cumulative } from "./detmath.js";
import { baseEmail, normalizeStudyEmail, renderEmail } from "./emails.js";
import {
  AGE_BANDS,
  AGE_WEIGHTS,
  CATEGORIES,
  CATEGORY_WEIGHTS,
  CHANNELS,
  CHANNEL_WEIGHTS,
  GENERATOR_NAME,
  GENERATOR_VERSION,
  REGIONS,
  REGION_WEIGHTS,
  cellConversionRate,
  cellReachRate,
  expectedTruth,
  resolveStudyParams,
  treatedRate,
  type AgeBand,
  type Channel,
  type Region,
  type ResolvedStudyParams,
  type StudyParams,
} from "./params.js";
import { newGroundTruthAccumulator, type GroundTruth } from "./truth.js";

export interface ExposureRow {
  email: string;
  group: "test" | "control";
  reached: 0 | 1;
  impressions: number;
  first_exposure_day: number;
  region: Region;
  age_band: AgeBand;
  channel: Channel;
}

export interface PurchaseRow {
  email: string;
  purchase_day: number;
  value_cents: number;
  store_region: Region;
  category: string;
}

export const EXPOSURE_COLUMNS = [
  "email",
  "group",
  "reached",
  "impressions",
  "first_exposure_day",
  "region",
  "age_band",
  "channel",
] as const;
export const PURCHASE_COLUMNS = ["email", "purchase_day", "value_cents", "store_region", "category"] as const;

/** Where rows go. Rows arrive in final file order. */
export interface StudySink {
  exposure(row: ExposureRow): void;
  purchase(row: PurchaseRow): void;
}

const PURCHASE_BLOCK = 65536;
const REGION_CUM = cumulative(REGION_WEIGHTS);
const AGE_CUM = cumulative(AGE_WEIGHTS);
const CHANNEL_CUM = cumulative(CHANNEL_WEIGHTS);
const CATEGORY_CUM = cumulative(CATEGORY_WEIGHTS);
export const MAX_VALUE_CENTS = 10_000_000;
/** P(another pre-period purchase): every customer buys 1 + Geometric(0.3) times before day 0. */
export const PRE_REPEAT = 0.3;

/** How many retailer-only customers fill the purchase file up to ~retailerRows (also study-sql.ts). */
export function retailerOnlyCustomers(p: ResolvedStudyParams): number {
  const rowsPerCustomer = 1 + PRE_REPEAT / (1 - PRE_REPEAT) + p.baseConversionRate / (1 - p.repeatPurchaseRate);
  return Math.max(0, Math.round(p.retailerRows / rowsPerCustomer - p.overlap * p.advertiserRows));
}

/**
 * Stream the study to `sink` and return its ground truth. Use this for large sizes;
 * `generateStudy` collects the rows in memory, `writeStudyFiles` (files.ts) writes CSVs.
 *
 * @example
 * let n = 0;
 * const truth = streamStudy({ seed: "s", advertiserRows: 1e6, overlap: 0.6, holdoutShare: 0.2,
 *   baseConversionRate: 0.08, liftPct: 20 }, { exposure: () => n++, purchase: () => {} });
 */
export function streamStudy(params: StudyParams, sink: StudySink): GroundTruth {
  const p = resolveStudyParams(params);
  if (typeof sink !== "object" || sink === null || typeof sink.exposure !== "function" || typeof sink.purchase !== "function")
    invalid("sink", "{ exposure(row), purchase(row) }", sink);
  const root = seededRng(p.seed);
  const people = new UniformSource(root.fork("people"));
  const advMess = new UniformSource(root.fork("advertiser-mess"));
  const retMess = new UniformSource(root.fork("retailer-mess"));
  const retOnly = new UniformSource(root.fork("retailer-only"));
  const order = new UniformSource(root.fork("retailer-order"));
  const acc = newGroundTruthAccumulator();
  const D = p.campaignDays;
  const expected = expectedTruth(p);

  const retailerOnly = retailerOnlyCustomers(p);

  let block: PurchaseRow[] = [];
  const flush = () => {
    order.shuffle(block);
    for (const r of block) sink.purchase(r);
    acc.purchaseRows += block.length;
    block = [];
  };
  const emit = (row: PurchaseRow) => {
    if (row.email !== normalizeStudyEmail(row.email)) acc.messyPurchaseEmails++;
    block.push(row);
    if (block.length === PURCHASE_BLOCK) flush();
  };

  const spendScale = (u: UniformSource) => {
    let s = u.lognormal(-0.18, 0.6);
    if (u.bernoulli(p.whaleShare)) s *= Math.min(50, u.pareto(1, 1.5));
    return s;
  };
  const orderValue = (u: UniformSource, scale: number) =>
    Math.min(MAX_VALUE_CENTS, Math.round(p.orderValueCents * scale * u.lognormal((-p.valueSigma * p.valueSigma) / 2, p.valueSigma)));
  /** Draw `count` purchases on days [lo, hi) for a person; returns [days, values]. */
  const purchases = (u: UniformSource, count: number, lo: number, hi: number, scale: number) => {
    const out: Array<[number, number]> = [];
    for (let k = 0; k < count; k++) out.push([lo + u.below(hi - lo), orderValue(u, scale)]);
    return out;
  };
  const emitAll = (base: string, home: number, list: Array<[number, number]>) => {
    for (const [day, value] of list) {
      emit({
        email: renderEmail(base, retMess, p.mess),
        purchase_day: day,
        value_cents: value,
        store_region: REGIONS[retMess.bernoulli(0.85) ? home : retMess.below(REGIONS.length)]!,
        category: CATEGORIES[retMess.pick(CATEGORY_CUM)]!,
      });
    }
  };
  const sumValues = (list: Array<[number, number]>) => list.reduce((a, x) => a + x[1], 0);

  let onlyEmitted = 0;
  const emitRetailerOnlyUpTo = (target: number) => {
    for (; onlyEmitted < target; onlyEmitted++) {
      const base = baseEmail(p.advertiserRows + onlyEmitted, retOnly);
      const home = retOnly.pick(REGION_CUM);
      const scale = spendScale(retOnly);
      const list = purchases(retOnly, 1 + retOnly.geometric(PRE_REPEAT, 9), -p.prePeriodDays, 0, scale);
      if (retOnly.bernoulli(p.baseConversionRate))
        list.push(...purchases(retOnly, 1 + retOnly.geometric(p.repeatPurchaseRate, 19), 0, D, scale));
      emitAll(base, home, list);
      acc.retailerCustomers++;
    }
  };

  for (let i = 0; i < p.advertiserRows; i++) {
    const region = people.pick(REGION_CUM);
    const age = people.pick(AGE_CUM);
    const channel = people.pick(CHANNEL_CUM);
    const base = baseEmail(i, people);
    const matched = people.bernoulli(p.overlap);
    const isTest = !people.bernoulli(p.holdoutShare);
    // potential exposure if assigned to test
    const reachedIfTest = people.bernoulli(cellReachRate(p, age, channel));
    const firstDayIfTest = people.below(D);
    const impressionsIfTest = 1 + people.geometric(0.7, 59);
    const reached = isTest && reachedIfTest;

    const email = renderEmail(base, advMess, p.mess);
    if (email !== normalizeStudyEmail(email)) acc.messyExposureEmails++;
    sink.exposure({
      email,
      group: isTest ? "test" : "control",
      reached: reached ? 1 : 0,
      impressions: reached ? impressionsIfTest : 0,
      first_exposure_day: reached ? firstDayIfTest : -1,
      region: REGIONS[region]!,
      age_band: AGE_BANDS[age]!,
      channel: CHANNELS[channel]!,
    });
    acc.advertiserPeople++;
    if (isTest) acc.testPeople++;
    if (reached) acc.reachedPeople++;

    if (matched) {
      const pBase = cellConversionRate(p, region, age, channel);
      const scale = spendScale(people);
      const pre = purchases(people, 1 + people.geometric(PRE_REPEAT, 9), -p.prePeriodDays, 0, scale);
      const baseConverter = people.bernoulli(pBase);
      const baseline = baseConverter ? purchases(people, 1 + people.geometric(p.repeatPurchaseRate, 19), 0, D, scale) : [];
      // P(convert | treated, reached) = min(p(1+L), 1): extra conversion among baseline non-converters
      const q = pBase >= 1 ? 0 : (treatedRate(p, pBase) - pBase) / (1 - pBase);
      const incremental =
        reachedIfTest && !baseConverter && people.bernoulli(q)
          ? purchases(people, 1 + people.geometric(p.repeatPurchaseRate, 19), firstDayIfTest, D, scale)
          : [];
      acc.addMatched({
        dims: { region: REGIONS[region]!, age_band: AGE_BANDS[age]!, channel: CHANNELS[channel]! },
        isTest,
        reached,
        conv0: baseline.length,
        value0: sumValues(baseline),
        conv1: baseline.length + incremental.length,
        value1: sumValues(baseline) + sumValues(incremental),
      });
      emitAll(base, region, isTest ? [...pre, ...baseline, ...incremental] : [...pre, ...baseline]);
      acc.retailerCustomers++;
    }
    emitRetailerOnlyUpTo(Math.floor(((i + 1) * retailerOnly) / p.advertiserRows));
  }
  emitRetailerOnlyUpTo(retailerOnly);
  flush();
  return acc.finish({ generator: GENERATOR_NAME, generatorVersion: GENERATOR_VERSION, params: p, expected, rngStamp: rngStamp(root) });
}

export interface GeneratedStudy {
  /** The advertiser's file: one row per advertiser person. */
  exposures: ExposureRow[];
  /** The retailer's file: one row per purchase (pre-period and campaign window). */
  purchases: PurchaseRow[];
  /** The god's-eye view: parameters, true overlap, true rates and lift. */
  groundTruth: GroundTruth;
}

/**
 * Generate the canonical study in memory (up to 2,000,000 advertiser rows; stream larger
 * sizes with `writeStudyFiles`). Deterministic: same params → identical rows.
 *
 * @example
 * const { exposures, purchases, groundTruth } = generateStudy({ seed: "week-1", advertiserRows: 10_000,
 *   overlap: 0.6, holdoutShare: 0.2, baseConversionRate: 0.08, liftPct: 25 });
 * groundTruth.truth.converters.relativeLift // the true intent-to-treat lift among matched people
 */
export function generateStudy(params: StudyParams): GeneratedStudy {
  const rows = (params as { advertiserRows?: unknown } | null)?.advertiserRows;
  if (typeof rows === "number" && rows > 2_000_000)
    invalid("advertiserRows", "at most 2000000 in memory (use writeStudyFiles for more)", rows);
  const exposures: ExposureRow[] = [];
  const purchases: PurchaseRow[] = [];
  const groundTruth = streamStudy(params, { exposure: (r) => exposures.push(r), purchase: (r) => purchases.push(r) });
  return { exposures, purchases, groundTruth };
}
