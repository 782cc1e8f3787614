/**
 * DP-SGD for logistic regression (Abadi et al. 2016, Algorithm 1, with Poisson subsampling as
 * analysed by Mironov–Talwar–Zhang 2019): each step samples every training example
 * independently with probability q, clips each example's gradient to L2 norm ≤ C, sums, adds
 * N(0, σ²C²) to every coordinate and divides by the EXPECTED batch size qn (as Opacus does for
 * Poisson sampling — dividing by the realised size would leak it). Per epoch, one noisy
 * histogram of held-out scores × label (Gaussian, L2 sensitivity 1) gives the loss curve,
 * accuracy, AUC and calibration that leave with the model. Everything is a function of
 * (data, spec, rng).
 *
 * Features are scaled to [−1, 1] by PUBLIC bounds the analyst declares (clamped outside), never
 * by statistics of the private data (a mean or a standard deviation computed in the enclave and
 * shipped with the model would be an unaccounted release).
 *
 * Randomness: `rng` (secure by default; seeded teaching mode labelled by the callers). Uniform
 * doubles take 53 bits of the stream; Gaussians by Box–Muller in float64. Caveat (Mironov 2012;
 * Jin et al. 2022): floating-point Gaussian samples are not exactly Gaussian — the same caveat
 * as Opacus and TF Privacy; the exact discrete samplers in dp/mechanisms.ts serve the queries.
 */
import { invalid } from "../errors.js";
import type { Rng } from "../rng.js";

/** A feature with its public bounds. */
export interface FeatureSpec {
  name: string;
  lo: number;
  hi: number;
}

export interface DpSgdSpec {
  features: FeatureSpec[];
  label: string;
  epochs: number;
  /** Poisson sampling rate q (expected batch = q · training rows). */
  sampleRate: number;
  /** σ: noise std / clip norm. */
  noiseMultiplier: number;
  clipNorm: number;
  learningRate: number;
  /** Share of rows held out for the noisy metrics (never trained on). */
  holdoutFraction: number;
  /** σ of the per-epoch metrics histogram (counts; L2 sensitivity 1). */
  metricsNoise: number;
  /** Score bins of the metrics histogram. */
  bins: number;
}

/** Noisy per-bin counts of held-out examples by label (bin b covers scores [b/B, (b+1)/B)). */
export interface ScoreHistogram {
  positives: number[];
  negatives: number[];
}

export interface EpochRecord {
  epoch: number;
  /** Cumulative DP-SGD steps at the end of this epoch. */
  steps: number;
  histogram: ScoreHistogram;
}

export interface Model {
  kind: "logistic";
  features: FeatureSpec[];
  /** Weights on the scaled features (x − lo)/(hi − lo)·2 − 1, then the bias. */
  weights: number[];
  bias: number;
}

/** Dense design matrix: n rows × d scaled features, labels 0/1. */
export interface Matrix {
  n: number;
  d: number;
  x: Float64Array;
  y: Uint8Array;
}

/** Uniform doubles in [0, 1) from an Rng, 53 bits each, drawn in 4 KiB chunks. */
export class UniformStream {
  readonly #rng: Rng;
  #buf: Uint8Array = new Uint8Array(0);
  #view = new DataView(this.#buf.buffer);
  #pos = 0;
  constructor(rng: Rng) {
    this.#rng = rng;
  }
  next(): number {
    if (this.#pos + 8 > this.#buf.length) {
      this.#buf = this.#rng.bytes(4096);
      this.#view = new DataView(this.#buf.buffer, this.#buf.byteOffset, this.#buf.byteLength);
      this.#pos = 0;
    }
    const hi = this.#view.getUint32(this.#pos) >>> 11; // 21 bits
    const lo = this.#view.getUint32(this.#pos + 4); // 32 bits
    this.#pos += 8;
    return (hi * 4294967296 + lo) / 9007199254740992;
  }
  /** Standard normal (Box–Muller, one of the pair). */
  normal(): number {
    const u = 1 - this.next(); // (0, 1]
    const v = this.next();
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  }
}

/**
 * Build the scaled design matrix; a row whose label is not 0/1/true/false or whose feature is not a
 * finite number is refused naming the column (never the value).
 * @example toMatrix([{ age: 30, spend: 12, converted: 1 }], [{ name: "age", lo: 18, hi: 90 }, { name: "spend", lo: 0, hi: 500 }], "converted")
 */
export function toMatrix(rows: readonly Record<string, unknown>[], features: readonly FeatureSpec[], label: string): Matrix {
  const n = rows.length;
  const d = features.length;
  const x = new Float64Array(n * d);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    for (let j = 0; j < d; j++) {
      const f = features[j]!;
      const v = r[f.name];
      if (typeof v !== "number" || !Number.isFinite(v)) invalid(`rows[${i}].${f.name}`, "a finite number", typeof v, "DATASET_INVALID");
      const c = Math.min(f.hi, Math.max(f.lo, v));
      x[i * d + j] = ((c - f.lo) / (f.hi - f.lo)) * 2 - 1;
    }
    const l = r[label];
    if (l === 1 || l === true) y[i] = 1;
    else if (l === 0 || l === false) y[i] = 0;
    else invalid(`rows[${i}].${label}`, "a 0/1 or boolean label", typeof l, "DATASET_INVALID");
  }
  return { n, d, x, y };
}

const sigmoid = (z: number) => (z >= 0 ? 1 / (1 + Math.exp(-z)) : Math.exp(z) / (1 + Math.exp(z)));

/** Score of row i of `m` under (w, b). */
export function score(m: Matrix, i: number, w: Float64Array | number[], b: number): number {
  let z = b;
  const o = i * m.d;
  for (let j = 0; j < m.d; j++) z += w[j]! * m.x[o + j]!;
  return sigmoid(z);
}

/** Per-example log-loss (clamped away from 0/1). */
export function exampleLoss(m: Matrix, i: number, w: Float64Array | number[], b: number): number {
  const p = Math.min(1 - 1e-12, Math.max(1e-12, score(m, i, w, b)));
  return m.y[i] === 1 ? -Math.log(p) : -Math.log(1 - p);
}

/**
 * Histogram of scores × label over rows `idx`, each count + N(0, noise²) (noise 0: exact, for labs).
 * Adding or removing one row changes one count by 1: L2 sensitivity 1.
 */
export function scoreHistogram(
  m: Matrix,
  idx: Uint32Array,
  w: Float64Array,
  b: number,
  bins: number,
  noise: number,
  u: UniformStream,
): ScoreHistogram {
  const positives = new Array<number>(bins).fill(0);
  const negatives = new Array<number>(bins).fill(0);
  for (const i of idx) {
    const k = Math.min(bins - 1, Math.floor(score(m, i, w, b) * bins));
    if (m.y[i] === 1) positives[k]! += 1;
    else negatives[k]! += 1;
  }
  if (noise > 0)
    for (let k = 0; k < bins; k++) {
      positives[k]! += noise * u.normal();
      negatives[k]! += noise * u.normal();
    }
  return { positives, negatives };
}

/** What the histogram says (noisy counts clamped at 0): accuracy at 0.5, AUC, binned log-loss, calibration. */
export interface HistogramMetrics {
  rows: number;
  accuracy: number;
  auc: number;
  logLoss: number;
  calibration: { bin: number; predicted: number; observed: number | null; rows: number }[];
}

/** @example metricsOf({ positives: [0, 5], negatives: [5, 0] }).auc // 1 */
export function metricsOf(h: ScoreHistogram): HistogramMetrics {
  const B = h.positives.length;
  const pos = h.positives.map((c) => Math.max(0, c));
  const neg = h.negatives.map((c) => Math.max(0, c));
  const P = pos.reduce((a, b) => a + b, 0);
  const N = neg.reduce((a, b) => a + b, 0);
  const total = P + N;
  let correct = 0;
  let loss = 0;
  let negBelow = 0;
  let aucSum = 0;
  const calibration: HistogramMetrics["calibration"] = [];
  for (let k = 0; k < B; k++) {
    const mid = (k + 0.5) / B;
    if (mid >= 0.5) correct += pos[k]!;
    else correct += neg[k]!;
    loss += pos[k]! * -Math.log(mid) + neg[k]! * -Math.log(1 - mid);
    aucSum += pos[k]! * (negBelow + 0.5 * neg[k]!);
    negBelow += neg[k]!;
    const c = pos[k]! + neg[k]!;
    calibration.push({ bin: k, predicted: mid, observed: c >= 1 ? pos[k]! / c : null, rows: Math.round(c) });
  }
  return {
    rows: Math.round(total),
    accuracy: total > 0 ? correct / total : 0,
    auc: P > 0 && N > 0 ? aucSum / (P * N) : 0.5,
    logLoss: total > 0 ? loss / total : 0,
    calibration,
  };
}

/** Steps per epoch for sampling rate q (Opacus: ⌈1/q⌉). */
export const stepsPerEpoch = (q: number): number => Math.ceil(1 / q - 1e-9);

/**
 * Indices of a random split: each row goes to the holdout independently with probability
 * `holdoutFraction` (Bernoulli, not a fixed-size sample). With a fixed-size split, adding one
 * person can push another person across (a changed holdout size, or the new row taking a slot),
 * so the holdout metrics would change by two rows while the training set changes too; with
 * independent draws a neighbouring dataset only adds that person to one side, and the metrics
 * histogram keeps sensitivity 1 as charged.
 */
export function split(n: number, holdoutFraction: number, u: UniformStream): { train: Uint32Array; holdout: Uint32Array } {
  const train: number[] = [];
  const holdout: number[] = [];
  for (let i = 0; i < n; i++) (u.next() < holdoutFraction ? holdout : train).push(i);
  return { holdout: Uint32Array.from(holdout), train: Uint32Array.from(train) };
}

export interface TrainOptions {
  /** false: plain SGD (no clipping, no noise, full passes) — for the membership-inference lab's control only. */
  private: boolean;
  onEpoch?: (e: EpochRecord, w: Float64Array, b: number) => void;
  /** Realised Poisson batch sizes (tests; never released). */
  onBatch?: (size: number) => void;
}

/**
 * Add row i's log-loss gradient (weights, then bias) to `out`, scaled down to L2 norm ≤ `clip`
 * (Infinity: unclipped). Adding or removing one row changes a batch sum by at most `clip`.
 */
export function addClippedGradient(m: Matrix, i: number, w: Float64Array, b: number, clip: number, out: Float64Array): void {
  const d = m.d;
  const o = i * d;
  let z = b;
  for (let j = 0; j < d; j++) z += w[j]! * m.x[o + j]!;
  const r = sigmoid(z) - m.y[i]!;
  let scale = r;
  if (Number.isFinite(clip)) {
    let sq = 1;
    for (let j = 0; j < d; j++) sq += m.x[o + j]! * m.x[o + j]!;
    const norm = Math.abs(r) * Math.sqrt(sq);
    if (norm > clip) scale = (r * clip) / norm;
  }
  for (let j = 0; j < d; j++) out[j]! += scale * m.x[o + j]!;
  out[d]! += scale;
}

/** Every coordinate += N(0, std²). */
export function addGaussianNoise(out: Float64Array, std: number, u: UniformStream): void {
  for (let j = 0; j < out.length; j++) out[j]! += std * u.normal();
}

/**
 * Poisson sampling of indices 0..n−1, each independently with probability q (logSkip = ln(1 − q)),
 * by geometric skips: the gap to the next sampled index is Geometric(q). O(qn) uniforms.
 */
export function poissonSample(n: number, logSkip: number, u: UniformStream, take: (k: number) => void): void {
  let k = -1;
  for (;;) {
    k += 1 + Math.floor(Math.log(1 - u.next()) / logSkip);
    if (k >= n) return;
    take(k);
  }
}

/**
 * Train with DP-SGD (or, `private: false`, with plain full-batch gradient descent for the lab's
 * positive control). Returns the model and the per-epoch noisy histograms.
 * @example trainLogistic(m, train, holdout, spec, rng, { private: true })
 */
export function trainLogistic(
  m: Matrix,
  train: Uint32Array,
  holdout: Uint32Array,
  spec: DpSgdSpec,
  rng: Rng,
  opts: TrainOptions,
): { weights: Float64Array; bias: number; epochs: EpochRecord[]; steps: number; expectedBatch: number } {
  const u = new UniformStream(rng);
  const d = m.d;
  const w = new Float64Array(d);
  let b = 0;
  const grad = new Float64Array(d + 1);
  const nt = train.length;
  const q = spec.sampleRate;
  const C = spec.clipNorm;
  const expectedBatch = opts.private ? q * nt : nt;
  const perEpoch = opts.private ? stepsPerEpoch(q) : 1;
  const logSkip = Math.log1p(-q);
  const epochs: EpochRecord[] = [];
  let steps = 0;
  const addExample = (i: number) => addClippedGradient(m, i, w, b, opts.private ? C : Infinity, grad);
  for (let e = 1; e <= spec.epochs; e++) {
    for (let s = 0; s < perEpoch; s++) {
      grad.fill(0);
      if (!opts.private) for (let k = 0; k < nt; k++) addExample(train[k]!);
      else if (q >= 1) for (let k = 0; k < nt; k++) addExample(train[k]!);
      else {
        let batch = 0;
        poissonSample(nt, logSkip, u, (k) => {
          addExample(train[k]!);
          batch++;
        });
        opts.onBatch?.(batch);
      }
      if (opts.private) addGaussianNoise(grad, spec.noiseMultiplier * C, u);
      const lr = spec.learningRate / expectedBatch;
      for (let j = 0; j < d; j++) w[j]! -= lr * grad[j]!;
      b -= lr * grad[d]!;
      steps++;
    }
    const rec: EpochRecord = {
      epoch: e,
      steps,
      histogram: scoreHistogram(m, holdout, w, b, spec.bins, opts.private ? spec.metricsNoise : 0, u),
    };
    epochs.push(rec);
    opts.onEpoch?.(rec, w, b);
  }
  return { weights: w, bias: b, epochs, steps, expectedBatch };
}
