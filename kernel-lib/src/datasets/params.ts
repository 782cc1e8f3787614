/**
 * Parameters of the canonical lift study generator: validation, defaults, the dimension
 * tables, and the closed-form *expected* (super-population) truth.
 *
 * Model (see datasets/README.md): every advertiser person has a region, age band and
 * channel; conversion propensity and reach probability both depend on these cells, so the
 * naive "reached vs control" comparison is biased while the randomised test-vs-control
 * (intent-to-treat) comparison is not. A reached test person's probability of converting in
 * the campaign window is `min(p·(1 + liftPct/100), 1)` instead of `p`.
 */
import { DEFAULT_MESS, type MessRates } from "./emails.js";
import { invalid } from "../errors.js";

export const GENERATOR_NAME = "cleanroom-lab/datasets/study";
/** Bump whenever the output for a given seed and parameters changes. */
export const GENERATOR_VERSION = "1.0.0";

export const REGIONS = ["north", "south", "east", "west"] as const;
export const AGE_BANDS = ["18-24", "25-34", "35-44", "45-54", "55+"] as const;
export const CHANNELS = ["search", "social", "video", "display"] as const;
export const CATEGORIES = ["grocery", "beauty", "electronics", "home", "apparel", "toys", "sports"] as const;
export type Region = (typeof REGIONS)[number];
export type AgeBand = (typeof AGE_BANDS)[number];
export type Channel = (typeof CHANNELS)[number];

export const REGION_WEIGHTS = [22, 30, 26, 22];
export const AGE_WEIGHTS = [16, 24, 22, 19, 19];
export const CHANNEL_WEIGHTS = [30, 35, 20, 15];
export const CATEGORY_WEIGHTS = [30, 12, 10, 16, 18, 6, 8];

/** Normalise multipliers to weighted mean 1, so the population mean equals the parameter. */
function meanOne(mult: number[], weights: number[]): number[] {
  const tw = weights.reduce((a, b) => a + b, 0);
  const m = mult.reduce((a, x, i) => a + x * weights[i]!, 0) / tw;
  return mult.map((x) => x / m);
}
export const CONV_MULT = {
  region: meanOne([1.0, 1.1, 0.95, 0.9], REGION_WEIGHTS),
  age: meanOne([0.7, 1.0, 1.25, 1.1, 0.9], AGE_WEIGHTS),
  channel: meanOne([1.3, 0.9, 0.85, 0.9], CHANNEL_WEIGHTS),
};
export const REACH_MULT = {
  age: meanOne([1.25, 1.15, 1.0, 0.85, 0.75], AGE_WEIGHTS),
  channel: meanOne([0.9, 1.15, 1.0, 0.85], CHANNEL_WEIGHTS),
};

export interface StudyParams {
  /** Seed string for `seededRng` — same seed and params → byte-identical output. */
  seed: string;
  /** Rows of the advertiser's exposure file = advertiser people (1 … 20,000,000). */
  advertiserRows: number;
  /** Target number of purchase rows (approximate; the realised count is in the ground truth). Default: advertiserRows. */
  retailerRows?: number;
  /** Share of advertiser people who are retailer customers, in [0, 1]. */
  overlap: number;
  /** Probability a person is randomised into the holdout (control) group, in (0, 1). */
  holdoutShare: number;
  /** Control converter rate in the campaign window among matched people, in (0, 0.5]. */
  baseConversionRate: number;
  /** Relative lift in converter probability for reached test people, in percent, [0, 1000]. */
  liftPct: number;
  /** Mean P(reached | test), in (0, 1]. Default 0.7. */
  reachRate?: number;
  /** Campaign window length in days; conversions are purchases with 0 ≤ purchase_day < campaignDays. Default 28. */
  campaignDays?: number;
  /** Pre-period length in days (every retailer customer buys at least once in it). Default 56. */
  prePeriodDays?: number;
  /** Probability of each further purchase by a converter (geometric repeats). Default 0.35. */
  repeatPurchaseRate?: number;
  /** Typical order value in cents (lognormal scale). Default 4500. */
  orderValueCents?: number;
  /** Lognormal sigma of order values within a person. Default 0.6. */
  valueSigma?: number;
  /** Share of heavy spenders whose spend scale gets a Pareto(α = 1.5) multiplier (capped at 50). Default 0.02. */
  whaleShare?: number;
  /** Identifier mess rates. Default `DEFAULT_MESS`. */
  mess?: Partial<MessRates>;
}

export type ResolvedStudyParams = Required<Omit<StudyParams, "mess">> & { mess: MessRates };

function num(field: string, v: unknown, lo: number, hi: number, opt: { int?: boolean; loOpen?: boolean; hiOpen?: boolean } = {}): number {
  const ok =
    typeof v === "number" &&
    Number.isFinite(v) &&
    (!opt.int || Number.isSafeInteger(v)) &&
    (opt.loOpen ? v > lo : v >= lo) &&
    (opt.hiOpen ? v < hi : v <= hi);
  if (!ok) invalid(field, `${opt.int ? "integer" : "number"} in ${opt.loOpen ? "(" : "["}${lo}, ${hi}${opt.hiOpen ? ")" : "]"}`, v);
  return v as number;
}

/**
 * Validate `p` and fill defaults. Throws `PARAM_INVALID` naming the field.
 *
 * @example
 * resolveStudyParams({ seed: "s", advertiserRows: 1e4, overlap: 0.6, holdoutShare: 0.2, baseConversionRate: 0.08, liftPct: 20 })
 */
export function resolveStudyParams(p: StudyParams): ResolvedStudyParams {
  if (typeof p !== "object" || p === null) invalid("params", "object", p);
  if (typeof p.seed !== "string" || p.seed.length === 0) invalid("seed", "non-empty string", p.seed);
  const advertiserRows = num("advertiserRows", p.advertiserRows, 1, 20_000_000, { int: true });
  const mess = { ...DEFAULT_MESS };
  if (p.mess !== undefined) {
    if (typeof p.mess !== "object" || p.mess === null) invalid("mess", "object of rates", p.mess);
    for (const [k, v] of Object.entries(p.mess)) {
      if (!(k in DEFAULT_MESS)) invalid(`mess.${k}`, `one of ${Object.keys(DEFAULT_MESS).join(", ")}`, k);
      mess[k as keyof MessRates] = num(`mess.${k}`, v, 0, 1);
    }
  }
  return {
    seed: p.seed,
    advertiserRows,
    retailerRows: p.retailerRows === undefined ? advertiserRows : num("retailerRows", p.retailerRows, 0, 100_000_000, { int: true }),
    overlap: num("overlap", p.overlap, 0, 1),
    holdoutShare: num("holdoutShare", p.holdoutShare, 0, 1, { loOpen: true, hiOpen: true }),
    baseConversionRate: num("baseConversionRate", p.baseConversionRate, 0, 0.5, { loOpen: true }),
    liftPct: num("liftPct", p.liftPct, 0, 1000),
    reachRate: p.reachRate === undefined ? 0.7 : num("reachRate", p.reachRate, 0, 1, { loOpen: true }),
    campaignDays: p.campaignDays === undefined ? 28 : num("campaignDays", p.campaignDays, 1, 366, { int: true }),
    prePeriodDays: p.prePeriodDays === undefined ? 56 : num("prePeriodDays", p.prePeriodDays, 1, 366, { int: true }),
    repeatPurchaseRate: p.repeatPurchaseRate === undefined ? 0.35 : num("repeatPurchaseRate", p.repeatPurchaseRate, 0, 0.95),
    orderValueCents: p.orderValueCents === undefined ? 4500 : num("orderValueCents", p.orderValueCents, 1, 10_000_000),
    valueSigma: p.valueSigma === undefined ? 0.6 : num("valueSigma", p.valueSigma, 0, 3),
    whaleShare: p.whaleShare === undefined ? 0.02 : num("whaleShare", p.whaleShare, 0, 1),
    mess,
  };
}

/** Converter propensity of a cell (before treatment). */
export function cellConversionRate(p: ResolvedStudyParams, region: number, age: number, channel: number): number {
  return Math.min(1, p.baseConversionRate * CONV_MULT.region[region]! * CONV_MULT.age[age]! * CONV_MULT.channel[channel]!);
}

/** P(reached | test) of a cell. */
export function cellReachRate(p: ResolvedStudyParams, age: number, channel: number): number {
  return Math.min(1, p.reachRate * REACH_MULT.age[age]! * REACH_MULT.channel[channel]!);
}

/** Converter probability of a reached, treated person with baseline propensity `base`. */
export function treatedRate(p: ResolvedStudyParams, base: number): number {
  return Math.min(1, base * (1 + p.liftPct / 100));
}

export interface ExpectedTruth {
  /** E[converter rate] of matched control people. */
  controlConversionRate: number;
  /** E[converter rate] of matched test people (intent-to-treat: reached or not). */
  testConversionRate: number;
  /** testConversionRate / controlConversionRate − 1. */
  relativeLift: number;
  /** E[P(reached | test)]. */
  reachRate: number;
  /** E[converter rate] of reached test people had they not been treated vs treated. */
  reachedBaselineRate: number;
  reachedTreatedRate: number;
  /** What a naive "reached test vs control" comparison converges to (biased by who is reachable). */
  naiveReachedVsControlLift: number;
  /** The same control/test rates and relative lift within each dimension value. */
  byDimension: Record<
    "region" | "age_band" | "channel",
    Record<string, { controlConversionRate: number; testConversionRate: number; relativeLift: number }>
  >;
}

/** Closed-form super-population truth: sums over the 80 region × age × channel cells. */
export function expectedTruth(p: ResolvedStudyParams): ExpectedTruth {
  const w = (a: number[], i: number) => a[i]! / a.reduce((x, y) => x + y, 0);
  let control = 0;
  let test = 0;
  let reach = 0;
  let reachedBase = 0;
  let reachedTreated = 0;
  const dims = { region: REGIONS, age_band: AGE_BANDS, channel: CHANNELS } as const;
  const per: Record<string, Record<string, { w: number; c: number; t: number }>> = { region: {}, age_band: {}, channel: {} };
  for (let r = 0; r < REGIONS.length; r++)
    for (let a = 0; a < AGE_BANDS.length; a++)
      for (let c = 0; c < CHANNELS.length; c++) {
        const wt = w(REGION_WEIGHTS, r) * w(AGE_WEIGHTS, a) * w(CHANNEL_WEIGHTS, c);
        const base = cellConversionRate(p, r, a, c);
        const rr = cellReachRate(p, a, c);
        const treated = treatedRate(p, base);
        control += wt * base;
        test += wt * (base + rr * (treated - base));
        reach += wt * rr;
        reachedBase += wt * rr * base;
        reachedTreated += wt * rr * treated;
        for (const [d, v] of [
          ["region", REGIONS[r]],
          ["age_band", AGE_BANDS[a]],
          ["channel", CHANNELS[c]],
        ] as const) {
          const cell = (per[d]![v] ??= { w: 0, c: 0, t: 0 });
          cell.w += wt;
          cell.c += wt * base;
          cell.t += wt * (base + rr * (treated - base));
        }
      }
  return {
    controlConversionRate: control,
    testConversionRate: test,
    relativeLift: test / control - 1,
    reachRate: reach,
    reachedBaselineRate: reachedBase / reach,
    reachedTreatedRate: reachedTreated / reach,
    naiveReachedVsControlLift: reachedTreated / reach / control - 1,
    byDimension: Object.fromEntries(
      Object.entries(dims).map(([d, values]) => [
        d,
        Object.fromEntries(
          values.map((v) => {
            const x = per[d]![v]!;
            return [v, { controlConversionRate: x.c / x.w, testConversionRate: x.t / x.w, relativeLift: x.t / x.c - 1 }];
          }),
        ),
      ]),
    ) as ExpectedTruth["byDimension"],
  };
}
