/**
 * In-process runs of the "no one sees the rows" protocols: every party is its own object with
 * its own rows, talking only through `linkedPair` links (JSON round-tripped, so nothing but
 * data crosses). The same party functions run as separate OS processes over sockets in
 * scripts/mpc-party.mjs. A `tap` sees every envelope (for transcript scans and byte counts).
 */
import { invalid } from "../errors.js";
import { linkedPair, type Envelope, type Tap } from "../transport/transport.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { normalizeEmail } from "../identity/normalize.js";
import { pjcIdsParty, pjcValuesParty, type PjcIdsResult, type PjcValuesResult } from "./pjc.js";
import {
  FEATURES,
  liftSpec,
  retailerInput,
  sharedLiftDealer,
  sharedLiftParty,
  type AdvertiserRow,
  type RetailerRow,
  type SharedLiftPartyResult,
  type SharedLiftRole,
} from "./shared-lift.js";

export interface WireLog {
  /** Every envelope that crossed any link, in order, with its wire bytes. */
  messages: { from: string; to: string; kind: string; bytes: number; wire: string }[];
  bytes: number;
}

/** A tap that records every envelope (wire JSON) into `log`. */
export function recordingTap(log: WireLog): Tap {
  return (env: Envelope, wire: string) => {
    log.messages.push({ from: env.from, to: env.to, kind: env.kind, bytes: wire.length, wire });
    log.bytes += wire.length;
  };
}

export interface RunSharedLiftOptions {
  advertiserRows: readonly AdvertiserRow[];
  retailerRows: readonly RetailerRow[];
  template: unknown;
  params: unknown;
  rng: Rng;
  outputTo?: SharedLiftRole;
  /** ATTACK DEMO ONLY (see SharedLiftPartyOptions.insecureNoMask). */
  insecureNoMask?: boolean;
}

export interface SharedLiftRun {
  protocol: "secret-shared lift (2 computing parties + triple dealer, additive shares mod 2^64)";
  aggregates: Record<string, number>;
  noiseVariance: Record<string, number> | null;
  matched: number;
  parties: { advertiser: SharedLiftPartyResult; retailer: SharedLiftPartyResult; dealer: { bytesSent: number } };
  wire: WireLog;
  ms: number;
  /** Secure or seeded (teaching mode — not private) randomness of every party's draws. */
  rngStamp: RngStamp;
}

/** Run advertiser, retailer and dealer in this process over linked pairs. */
export async function runSharedLift(o: RunSharedLiftOptions): Promise<SharedLiftRun> {
  const wire: WireLog = { messages: [], bytes: 0 };
  const tap = recordingTap(wire);
  const [ar, ra] = linkedPair("advertiser", "retailer", { tap });
  const [ad, da] = linkedPair("advertiser", "dealer", { tap });
  const [rd, dr] = linkedPair("retailer", "dealer", { tap });
  const t0 = performance.now();
  const common = {
    template: o.template,
    params: o.params,
    outputTo: o.outputTo ?? "advertiser",
    insecureNoMask: o.insecureNoMask === true,
  };
  const runs = [
    sharedLiftParty({ ...common, role: "advertiser", peer: ar, dealer: ad, rows: o.advertiserRows, rng: o.rng.fork("advertiser") }),
    sharedLiftParty({ ...common, role: "retailer", peer: ra, dealer: rd, rows: o.retailerRows, rng: o.rng.fork("retailer") }),
    sharedLiftDealer({ advertiser: da, retailer: dr, rng: o.rng.fork("dealer") }),
  ] as const;
  const settled = await Promise.allSettled(runs);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  const [adv, ret, dealer] = settled.map((s) => (s as PromiseFulfilledResult<unknown>).value) as [
    SharedLiftPartyResult,
    SharedLiftPartyResult,
    { bytesSent: number },
  ];
  const out = adv.aggregates ? adv : ret;
  return {
    protocol: "secret-shared lift (2 computing parties + triple dealer, additive shares mod 2^64)",
    aggregates: out.aggregates!,
    noiseVariance: out.noiseVariance,
    matched: adv.matched,
    parties: { advertiser: adv, retailer: ret, dealer },
    wire,
    ms: performance.now() - t0,
    rngStamp: rngStamp(o.rng),
  };
}

export interface RunPjcOptions {
  /** The advertiser's rows (identifier column + group). */
  advertiserRows: readonly { email: string; group: string }[];
  /** The retailer's purchase rows (identifier column + day + value). */
  retailerRows: readonly { email: string; purchase_day: number; value_cents: number }[];
  /** Which of the advertiser's people: one arm or everyone (default "all"). */
  arm?: "test" | "control" | "all";
  /** Per-customer columns the retailer encrypts (default ["value"]). */
  columns?: readonly ("converters" | "conversions" | "value")[];
  /** The lift template and parameters fixing the window and caps (as the secret-shared lift). */
  template: unknown;
  params: unknown;
  rng: Rng;
}

export interface PjcRun {
  protocol: "intersection-sum with cardinality (ECDH + exponential ElGamal on ristretto255)";
  intersectionSize: number;
  /** Σ of each column over the intersection, as the retailer decrypts it. */
  sums: Record<string, number>;
  parties: { advertiser: PjcIdsResult; retailer: PjcValuesResult };
  wire: WireLog;
  ms: number;
  rngStamp: RngStamp;
}

const normEmail = (e: unknown) => {
  const r = normalizeEmail(e);
  return r.ok ? r.value : null;
};

/** The ids party's own input: its normalised identifiers (one arm or all); rejected ones dropped. */
export function pjcIdsInput(rows: RunPjcOptions["advertiserRows"], arm: RunPjcOptions["arm"] = "all"): string[] {
  if (!Array.isArray(rows)) invalid("advertiserRows", "array of { email, group }", rows);
  return rows.filter((r) => arm === "all" || r.group === arm).flatMap((r) => normEmail(r.email) ?? []);
}

/** The values party's own input: distinct normalised identifiers and their per-customer columns (template window and caps). */
export function pjcValuesInput(
  rows: RunPjcOptions["retailerRows"],
  columns: NonNullable<RunPjcOptions["columns"]>,
  template: unknown,
  params: unknown,
) {
  if (!Array.isArray(rows)) invalid("retailerRows", "array of { email, purchase_day, value_cents }", rows);
  const spec = liftSpec(template, params);
  const purchases = rows.flatMap((r) => {
    const k = normEmail(r.email);
    return k === null ? [] : [{ join_key: k, purchase_day: r.purchase_day, value_cents: r.value_cents }];
  });
  const ri = retailerInput(purchases, spec);
  const idx = columns.map((c, i) => {
    const j = FEATURES.indexOf(c);
    if (j < 0) invalid(`columns[${i}]`, FEATURES.join(" | "), c);
    return j;
  });
  return { ids: ri.sorted, values: ri.sorted.map((_, i) => idx.map((j) => Number(ri.x[i * FEATURES.length + j]!))) };
}

/** Run both PJC parties in this process; each prepares its own input first. */
export async function runPjc(o: RunPjcOptions): Promise<PjcRun> {
  const cols = o.columns ?? ["value"];
  const advIds = pjcIdsInput(o.advertiserRows, o.arm ?? "all");
  const { ids, values } = pjcValuesInput(o.retailerRows, cols, o.template, o.params);
  const wire: WireLog = { messages: [], bytes: 0 };
  const [a, b] = linkedPair("advertiser", "retailer", { tap: recordingTap(wire) });
  const t0 = performance.now();
  const settled = await Promise.allSettled([
    pjcIdsParty({ link: a, ids: advIds, rng: o.rng.fork("advertiser") }),
    pjcValuesParty({ link: b, ids, values, rng: o.rng.fork("retailer") }),
  ]);
  for (const s of settled) if (s.status === "rejected") throw s.reason;
  const adv = (settled[0] as PromiseFulfilledResult<PjcIdsResult>).value;
  const ret = (settled[1] as PromiseFulfilledResult<PjcValuesResult>).value;
  return {
    protocol: "intersection-sum with cardinality (ECDH + exponential ElGamal on ristretto255)",
    intersectionSize: ret.intersectionSize,
    sums: Object.fromEntries(cols.map((c, i) => [c, ret.sums[i]!])),
    parties: { advertiser: adv, retailer: ret },
    wire,
    ms: performance.now() - t0,
    rngStamp: rngStamp(o.rng),
  };
}
