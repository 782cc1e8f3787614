/**
 * A seeded two-party propensity study for the DP-SGD scenario: the advertiser knows each
 * exposed customer's exposure features, the retailer knows who converted; they share a join key
 * (as after PSI). Conversion follows a known logistic model, so a trained model can be checked
 * against the truth.
 *
 * Ground truth: P(convert) = σ(b + Σ w_j · x̃_j) on the features scaled to [−1, 1] by the bounds
 * in `PROPENSITY_FEATURES` (the bounds the analyst declares to trainModel).
 */
import type { Rng } from "../rng.js";

/** Public feature bounds (what the analyst declares). */
export const PROPENSITY_FEATURES = Object.freeze([
  { name: "impressions", lo: 0, hi: 30 },
  { name: "minutes", lo: 0, hi: 120 },
  { name: "age", lo: 18, hi: 80 },
  { name: "visits", lo: 0, hi: 20 },
]);

/** The true model on scaled features (weights in PROPENSITY_FEATURES order, then bias). */
export const PROPENSITY_TRUTH = Object.freeze({ weights: [1.6, 0.8, -0.5, 1.2], bias: -0.6 });

export interface PropensityStudy {
  advertiser: { id: string; impressions: number; minutes: number; age: number }[];
  retailer: { id: string; visits: number; converted: 0 | 1 }[];
  truth: { weights: readonly number[]; bias: number };
}

/**
 * `n` joined customers (each party also has a few rows the other lacks: 10% each).
 * @example propensityStudy(1000, seededRng("ml")).advertiser.length // 1100
 */
export function propensityStudy(n: number, rng: Rng): PropensityStudy {
  const extra = Math.round(n * 0.1);
  let buf: Uint8Array = new Uint8Array(0);
  let view = new DataView(buf.buffer);
  let pos = 0;
  const u = () => {
    if (pos + 8 > buf.length) {
      buf = rng.bytes(4096); // the secure Rng hands out at most 64 KiB per call
      view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
      pos = 0;
    }
    const x = (view.getUint32(pos) * 2 ** 21 + (view.getUint32(pos + 4) >>> 11)) / 2 ** 53;
    pos += 8;
    return x;
  };
  const advertiser: PropensityStudy["advertiser"] = [];
  const retailer: PropensityStudy["retailer"] = [];
  const scale = (v: number, lo: number, hi: number) => ((v - lo) / (hi - lo)) * 2 - 1;
  for (let i = 0; i < n + 2 * extra; i++) {
    const id = `c${i}`;
    const impressions = Math.floor(u() * u() * 31);
    const minutes = Math.round(impressions * 3 * u() + u() * 20);
    const age = 18 + Math.floor(u() * 63);
    const visits = Math.floor(u() * 21);
    const z =
      PROPENSITY_TRUTH.bias +
      PROPENSITY_TRUTH.weights[0]! * scale(impressions, 0, 30) +
      PROPENSITY_TRUTH.weights[1]! * scale(Math.min(minutes, 120), 0, 120) +
      PROPENSITY_TRUTH.weights[2]! * scale(age, 18, 80) +
      PROPENSITY_TRUTH.weights[3]! * scale(visits, 0, 20);
    const converted = u() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
    if (i < n + extra) advertiser.push({ id, impressions, minutes, age });
    if (i < n || i >= n + extra) retailer.push({ id, visits, converted });
  }
  return { advertiser, retailer, truth: { weights: [...PROPENSITY_TRUTH.weights], bias: PROPENSITY_TRUTH.bias } };
}
