/**
 * Secret-shared lift: the fbpcs LiftMetrics of the clean room's lift template, computed by two
 * computing parties that hold additive shares mod 2^64 (Meta Private Lift's shape: the
 * advertiser and the retailer ARE the two computing parties), so that no process ever holds
 * a row or a per-person value of the other side.
 *
 *   advertiser A (t_i = 1 if test)        dealer D (no data)         retailer R (x_i, 5 per person)
 *   hello {n, H(sorted join keys)} ◀────────────────────────────────▶ (both check the same matched set)
 *            ──── {n} ────▶  Beaver triples (a_i, b_ij, c_ij = a_i·b_ij), one share to each ◀── {n}
 *   input: A sends R a uniform share of t; R sends A a uniform share of x
 *   Beaver: both open d = t − a and e = x − b (uniform: a, b mask them); locally
 *           [t·x] = [c] + d·[b] + e·[a] (+ d·e on A's side) — t·x per person, summed
 *   test sums Σ t·x, totals Σ x, control = total − test; populations Σ t and n − Σ t
 *   noise: EACH party adds its own full discrete noise sample to its share of every released
 *          quantity (the mechanism and scale the template's approved noise gives, from
 *          dp/registry.ts), then the shares are opened to the output party only.
 *
 * Per person, R's vector is (converter, conversions, value, value², conversions²) over
 * purchases with startDay ≤ day ≤ endDay, at most `maxRowsPerUnit` per person (earliest
 * first, ties by lower value, as the oracle), value clamped to the template's bound.
 *
 * Noise: each party's own sample alone gives the released vector ε-DP (the other sample is
 * independent post-processing), so neither party — knowing its own noise and subtracting it —
 * nor the output party can get below the template's ε; the ledger is charged the template's
 * cost once, as the clean room is. The price is twice the noise variance of the clean room's
 * release (reported per quantity). A distributed sampler splitting ONE sample (Pólya shares of
 * a discrete Laplace) would halve the variance but lets a party that skips its share weaken
 * the noise; with full shares a party that skips its noise only removes its own protection.
 *
 * Trust: semi-honest (honest-but-curious) parties and a dealer that colludes with neither.
 * What each learns: |∩| (n) and the matched set from the PSI that made the join keys (both),
 * the opened released aggregates (output party only). What a MALICIOUS party could do: add any
 * offset to its shares (the output is wrong and nobody notices: there are no MACs as in SPDZ),
 * lie about its inputs (inherent to any computation), or abort after seeing the output. A
 * dealer that colludes with one party learns the other's inputs (it knows a and b, so d and e
 * reveal t and x). Not done here: hiding the matched set itself (fbpcs Private ID).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng } from "../rng.js";
import type { Rational } from "../dp/rational.js";
import type { Transport } from "../transport/transport.js";
import { hex, utf8 } from "../crypto/primitives.js";
import { noiseParams, parseTemplate, validateParams, type ParsedTemplate } from "../cleanroom/template.js";
import { decodeVec, encodeVec, randomVec, signed, type RingVec } from "./ring.js";

export const SHARED_LIFT_PROTOCOL = "cleanroom-lab/shared-lift/v1";

/** Per-person features the retailer contributes (fbpcs order). */
export const FEATURES = ["converters", "conversions", "value", "valueSquared", "numConvSquared"] as const;
const K = FEATURES.length;

export type SharedLiftRole = "advertiser" | "retailer";

/** The aggregates a lift template may release, mapped to the noise quantity that covers each. */
const RELEASABLE: Record<string, { fn: string; noise: string }> = {
  population: { fn: "countUnits", noise: "units" },
  conversions: { fn: "count", noise: "conversions" },
  converters: { fn: "countUnitsWithRows", noise: "converters" },
  value: { fn: "sum", noise: "value" },
  valueSquared: { fn: "sumSquares", noise: "valueSquared" },
  numConvSquared: { fn: "countSquares", noise: "numConvSquared" },
};

/** What the template fixes for both parties: window, caps, released names and their noise. */
export interface LiftSpec {
  startDay: number;
  endDay: number;
  conversionCap: number;
  valueCap: number;
  /** Released aggregates (fbpcs base names, e.g. "converters"), in template order. */
  released: string[];
  /** Per released name: the mechanism and its parameter, or null without noise. */
  noise: Map<string, NonNullable<ReturnType<typeof noiseParams>>[number]> | null;
  templateHash: string;
}

/**
 * Read the lift template (as liftTemplate builds it) into the spec both parties compute.
 * `TEMPLATE_INVALID` naming the field for a template this protocol cannot compute.
 */
export function liftSpec(template: unknown, params: unknown): LiftSpec {
  const t: ParsedTemplate = parseTemplate(template);
  const p = validateParams(t, params);
  if (t.groupBy.length !== 1)
    invalid("template.groupBy", "exactly the group column (no breakdown in the secret-shared lift)", t.groupBy.length, "TEMPLATE_INVALID");
  if (!t.events) invalid("template.events", "the retailer's events table joined on the join key", undefined, "TEMPLATE_INVALID");
  const startDay = p["startDay"];
  const endDay = p["endDay"];
  if (typeof startDay !== "number" || typeof endDay !== "number") invalid("params", "{ startDay, endDay } integers", params);
  let valueCap = Infinity;
  for (const [i, a] of t.aggregates.entries()) {
    const r = RELEASABLE[a.name];
    if (!r || r.fn !== a.fn) invalid(`template.aggregates[${i}]`, "a liftTemplate aggregate", a.name, "TEMPLATE_INVALID");
    if ((a.fn === "sum" || a.fn === "sumSquares") && "bounds" in a) valueCap = Math.min(valueCap, a.bounds[1]);
  }
  const np = noiseParams(t);
  const noise = np ? new Map(np.map((q) => [q.name, q])) : null;
  return {
    startDay,
    endDay,
    conversionCap: t.contribution?.maxRowsPerUnit ?? Infinity,
    valueCap,
    released: t.aggregates.map((a) => a.name),
    noise,
    templateHash: t.hash,
  };
}

export interface AdvertiserRow {
  join_key: string;
  group: "test" | "control";
}
export interface RetailerRow {
  join_key: string;
  purchase_day: number;
  value_cents: number;
}

/** Sorted distinct join keys and the hash both parties compare (reveals only equality). */
function keySet(keys: Iterable<string>) {
  const sorted = [...new Set(keys)].sort();
  return { sorted, hash: hex(sha256(utf8(sorted.join("\n")))) };
}

/** The advertiser's private input: t_i per matched person (sorted join-key order). */
export function advertiserInput(rows: readonly AdvertiserRow[]) {
  if (!Array.isArray(rows)) invalid("rows", "array of { join_key, group }", rows);
  const group = new Map<string, number>();
  rows.forEach((r, i) => {
    if (typeof r?.join_key !== "string") invalid(`rows[${i}].join_key`, "string join key", r?.join_key);
    if (r.group !== "test" && r.group !== "control") invalid(`rows[${i}].group`, '"test" or "control"', r.group);
    if (group.has(r.join_key)) invalid(`rows[${i}].join_key`, "one row per person", "a repeated key");
    group.set(r.join_key, r.group === "test" ? 1 : 0);
  });
  const ks = keySet(group.keys());
  const t = new BigUint64Array(ks.sorted.length);
  ks.sorted.forEach((k, i) => (t[i] = BigInt(group.get(k)!)));
  return { ...ks, t };
}

/** The retailer's private input: 5 features per matched person (sorted join-key order, row-major). */
export function retailerInput(rows: readonly RetailerRow[], spec: LiftSpec) {
  if (!Array.isArray(rows)) invalid("rows", "array of { join_key, purchase_day, value_cents }", rows);
  const conv = new Map<string, Array<[number, number]>>();
  rows.forEach((r, i) => {
    if (typeof r?.join_key !== "string") invalid(`rows[${i}].join_key`, "string join key", r?.join_key);
    if (!Number.isSafeInteger(r.purchase_day)) invalid(`rows[${i}].purchase_day`, "integer day", r.purchase_day);
    if (!Number.isSafeInteger(r.value_cents) || r.value_cents < 0) invalid(`rows[${i}].value_cents`, "integer ≥ 0", r.value_cents);
    let c = conv.get(r.join_key);
    if (!c) conv.set(r.join_key, (c = []));
    if (r.purchase_day >= spec.startDay && r.purchase_day <= spec.endDay) c.push([r.purchase_day, r.value_cents]);
  });
  const ks = keySet(conv.keys());
  const x = new BigUint64Array(ks.sorted.length * K);
  ks.sorted.forEach((key, i) => {
    const c = conv.get(key)!;
    const kept = c.length > spec.conversionCap ? [...c].sort((p, q) => p[0] - q[0] || p[1] - q[1]).slice(0, spec.conversionCap) : c;
    const k = BigInt(kept.length);
    const v = BigInt(
      Math.min(
        spec.valueCap,
        kept.reduce((s, p) => s + p[1], 0),
      ),
    );
    x.set([k > 0n ? 1n : 0n, k, v, v * v, k * k], i * K);
  });
  return { ...ks, x };
}

/**
 * One computing party's noise for one released quantity: a FULL sample of the template's
 * mechanism at the template's scale (not a fraction of it), so that the release stays ε-DP
 * against the other party even after it subtracts its own sample. `test/mpc` audits exactly
 * this function empirically, with a naive split (half scale each) as the positive control.
 */
export function partyNoise(q: { mechanism: { sample(p: Rational, rng: Rng): bigint }; scale: Rational }, rng: Rng): bigint {
  return q.mechanism.sample(q.scale, rng);
}

/** One party's view of the run: bytes it sent and received, and what it learned. */
export interface SharedLiftPartyResult {
  role: SharedLiftRole;
  /** Matched people (n, public to both after PSI). */
  matched: number;
  /** The opened aggregates (fbpcs names), only at the output party; null elsewhere. */
  aggregates: Record<string, number> | null;
  bytesSent: number;
  bytesReceived: number;
  /** Noise variance of each opened aggregate: the sum of both parties' samples (2× one release). */
  noiseVariance: Record<string, number> | null;
}

export interface SharedLiftPartyOptions {
  role: SharedLiftRole;
  /** The link to the other computing party. */
  peer: Transport;
  /** The link to the triple dealer. */
  dealer: Transport;
  /** This party's own rows (PSI-matched, keyed by join key). */
  rows: readonly AdvertiserRow[] | readonly RetailerRow[];
  /** The approved lift template and its parameters (both parties hold the same). */
  template: unknown;
  params: unknown;
  /** Who receives the opened aggregates (default: the advertiser). */
  outputTo?: SharedLiftRole;
  rng: Rng;
  /**
   * ATTACK DEMO ONLY: send the input itself as the peer's share (no masking) and add no noise,
   * so a transcript scan can show what masking prevents. Never set in a real run.
   */
  insecureNoMask?: boolean;
}

/** Counts bytes of every body this party sends and receives (JSON length, as on the wire). */
function metered(t: Transport) {
  const m = { sent: 0, received: 0 };
  return {
    m,
    send: (kind: string, body: unknown) => {
      m.sent += JSON.stringify(body).length;
      return t.send(SHARED_LIFT_PROTOCOL, kind, body);
    },
    receive: async (kind: string) => {
      const env = await t.receive({ protocol: SHARED_LIFT_PROTOCOL, kind });
      m.received += JSON.stringify(env.body).length;
      if (typeof env.body !== "object" || env.body === null || Array.isArray(env.body))
        invalid(`${kind}`, "a message object", env.body, "INPUT_INVALID");
      return env.body as Record<string, unknown>;
    },
  };
}

const LABELS = ["test", "control"] as const;
const cap = (s: string) => s[0]!.toUpperCase() + s.slice(1);
/** fbpcs name of a released aggregate in an arm: population → testPopulation, value → controlValue … */
export const fbpcsName = (arm: "test" | "control", name: string) => `${arm}${cap(name)}`;

/**
 * Run ONE computing party of the secret-shared lift over its two links. Both parties (and
 * the dealer, {@link sharedLiftDealer}) must run concurrently — in this process over
 * `linkedPair`s, or as separate processes over sockets (scripts/mpc-party.mjs).
 */
export async function sharedLiftParty(o: SharedLiftPartyOptions): Promise<SharedLiftPartyResult> {
  if (o.role !== "advertiser" && o.role !== "retailer") invalid("role", '"advertiser" or "retailer"', o.role);
  const outputTo = o.outputTo ?? "advertiser";
  if (outputTo !== "advertiser" && outputTo !== "retailer") invalid("outputTo", '"advertiser" or "retailer"', outputTo);
  const spec = liftSpec(o.template, o.params);
  const me = o.role === "advertiser" ? 0 : 1;
  // private input, validated before anything is sent
  const adv = me === 0 ? advertiserInput(o.rows as AdvertiserRow[]) : null;
  const ret = me === 1 ? retailerInput(o.rows as RetailerRow[], spec) : null;
  const hash = (adv ?? ret)!.hash;
  const n = (adv ?? ret)!.sorted.length;
  const peer = metered(o.peer);
  const dealer = metered(o.dealer);
  const abort = (e: unknown): never => {
    o.peer.close();
    o.dealer.close();
    throw e;
  };
  try {
    await peer.send("hello", { n, keys: hash, template: spec.templateHash });
    const hello = await peer.receive("hello");
    if (hello["keys"] !== hash || hello["n"] !== n)
      throw new CleanRoomError(
        "INPUT_INVALID",
        `"rows.join_key" expected the same PSI-matched join keys on both sides, got different sets`,
        {
          field: "rows.join_key",
        },
      );
    if (hello["template"] !== spec.templateHash)
      throw new CleanRoomError("QUERY_NOT_APPROVED", `"template" expected the same approved template on both sides, got another hash`, {
        field: "template",
      });
    await dealer.send("need", { n, k: K });
    const tri = await dealer.receive("triples");
    const a = decodeVec(tri["a"], n, "triples.a");
    const b = decodeVec(tri["b"], n * K, "triples.b");
    const c = decodeVec(tri["c"], n * K, "triples.c");

    // input sharing: the owner sends a uniform share, keeps input − share
    let T: RingVec, X: RingVec;
    if (me === 0) {
      const s = o.insecureNoMask ? adv!.t : randomVec(n, o.rng.fork("input"));
      await peer.send("input", { share: encodeVec(s) });
      T = o.insecureNoMask ? new BigUint64Array(n) : adv!.t.map((v, i) => v - s[i]!);
      X = decodeVec((await peer.receive("input"))["share"], n * K, "input.share");
    } else {
      T = decodeVec((await peer.receive("input"))["share"], n, "input.share");
      const s = o.insecureNoMask ? ret!.x : randomVec(n * K, o.rng.fork("input"));
      await peer.send("input", { share: encodeVec(s) });
      X = o.insecureNoMask ? new BigUint64Array(n * K) : ret!.x.map((v, i) => v - s[i]!);
    }

    // Beaver: open d = t − a, e = x − b
    const D = T.map((v, i) => v - a[i]!);
    const E = X.map((v, i) => v - b[i]!);
    await peer.send("open", { d: encodeVec(D), e: encodeVec(E) });
    const po = await peer.receive("open");
    const d = decodeVec(po["d"], n, "open.d").map((v, i) => v + D[i]!);
    const e = decodeVec(po["e"], n * K, "open.e").map((v, i) => v + E[i]!);

    // local: shares of Σ t·x (test), Σ x (all), Σ t
    const test = new Array<bigint>(K).fill(0n);
    const total = new Array<bigint>(K).fill(0n);
    let pop = 0n;
    for (let i = 0; i < n; i++) {
      const di = d[i]!;
      const ai = a[i]!;
      pop += T[i]!;
      for (let j = 0; j < K; j++) {
        const q = i * K + j;
        const ei = e[q]!;
        test[j]! += c[q]! + di * b[q]! + ei * ai + (me === 0 ? di * ei : 0n);
        total[j]! += X[q]!;
      }
    }
    const share = (arm: "test" | "control", name: string): bigint => {
      if (name === "population") return arm === "test" ? pop : (me === 0 ? BigInt(n) : 0n) - pop;
      const j = FEATURES.indexOf(name as (typeof FEATURES)[number]);
      return arm === "test" ? test[j]! : total[j]! - test[j]!;
    };

    // noise inside, before opening: each party its own full sample per released quantity and arm
    const out = new BigUint64Array(2 * spec.released.length);
    const nrng = o.rng.fork("noise");
    spec.released.forEach((name, r) => {
      LABELS.forEach((arm, g) => {
        const q = spec.noise?.get(RELEASABLE[name]!.noise);
        const noise = q && !o.insecureNoMask ? partyNoise(q, nrng) : 0n;
        out[2 * r + g] = share(arm, name) + noise;
      });
    });

    // open to the output party only
    let aggregates: Record<string, number> | null = null;
    if (o.role === outputTo) {
      const theirs = decodeVec((await peer.receive("result"))["share"], out.length, "result.share");
      aggregates = {};
      spec.released.forEach((name, r) =>
        LABELS.forEach((arm, g) => (aggregates![fbpcsName(arm, name)] = Number(signed(out[2 * r + g]! + theirs[2 * r + g]!)))),
      );
    } else await peer.send("result", { share: encodeVec(out) });
    const noiseVariance = spec.noise
      ? Object.fromEntries(
          spec.released.flatMap((name) => {
            const q = spec.noise!.get(RELEASABLE[name]!.noise)!;
            return LABELS.map((arm) => [fbpcsName(arm, name), 2 * q.mechanism.variance(q.scale)]);
          }),
        )
      : null;
    return {
      role: o.role,
      matched: n,
      aggregates,
      bytesSent: peer.m.sent + dealer.m.sent,
      bytesReceived: peer.m.received + dealer.m.received,
      noiseVariance: aggregates ? noiseVariance : null,
    };
  } catch (err) {
    return abort(err);
  }
}

/**
 * The triple dealer: sees no data, only n; sends each computing party its shares of Beaver
 * triples (a_i, b_ij, c_ij = a_i·b_ij mod 2^64). Trusted not to collude with either party.
 */
export async function sharedLiftDealer(o: { advertiser: Transport; retailer: Transport; rng: Rng }): Promise<{ bytesSent: number }> {
  const links = [metered(o.advertiser), metered(o.retailer)];
  try {
    const needs = await Promise.all(links.map((l) => l.receive("need")));
    const n = needs[0]!["n"];
    if (!Number.isSafeInteger(n) || (n as number) < 0 || needs[1]!["n"] !== n || needs[0]!["k"] !== K || needs[1]!["k"] !== K)
      invalid("need.n", "the same matched-set size and feature count from both parties", "different sizes", "INPUT_INVALID");
    const N = n as number;
    const a = randomVec(N, o.rng.fork("a"));
    const b = randomVec(N * K, o.rng.fork("b"));
    const c = new BigUint64Array(N * K);
    for (let i = 0; i < N; i++) for (let j = 0; j < K; j++) c[i * K + j] = a[i]! * b[i * K + j]!;
    const a0 = randomVec(N, o.rng.fork("a0"));
    const b0 = randomVec(N * K, o.rng.fork("b0"));
    const c0 = randomVec(N * K, o.rng.fork("c0"));
    const minus = (x: RingVec, y: RingVec) => x.map((v, i) => v - y[i]!);
    await links[0]!.send("triples", { a: encodeVec(a0), b: encodeVec(b0), c: encodeVec(c0) });
    await links[1]!.send("triples", { a: encodeVec(minus(a, a0)), b: encodeVec(minus(b, b0)), c: encodeVec(minus(c, c0)) });
    return { bytesSent: links[0]!.m.sent + links[1]!.m.sent };
  } catch (err) {
    o.advertiser.close();
    o.retailer.close();
    throw err;
  }
}
