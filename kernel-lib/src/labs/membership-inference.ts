/**
 * Membership inference on a trained model (Yeom et al. 2018, the loss-threshold attack): the
 * attacker holds the released model and candidate records and guesses "member" when the
 * model's loss on a record is below a threshold. A model that memorises its training rows
 * gives members a visibly lower loss; DP-SGD bounds how much any one row can change the model.
 *
 * The lab, per trial: draw fresh members and non-members from the same population (features
 * in [−1, 1]; labels only weakly predictable, so fitting them well means memorising), train a
 * model on the members — plain full-batch gradient descent (the defence OFF) or DP-SGD (ON) —
 * then run the attack. The threshold is fitted on half of the members and non-members and the
 * advantage (TPR − FPR) measured on the other half, so it is an honest out-of-sample number.
 * Over `trials` seeded trials: mean advantage with a 95% normal interval; the power check is
 * the interval's half-width (an advantage that large would be detected).
 *
 * Teaching only: simulated data, seeded; nothing here touches a room.
 */
import { invalid } from "../errors.js";
import type { Rng } from "../rng.js";
import { rngStamp, type RngStamp } from "../rng.js";
import { dpSgdEpsilon } from "../dp/rdp.js";
import { exampleLoss, stepsPerEpoch, trainLogistic, UniformStream, type DpSgdSpec, type Matrix } from "../ml/dpsgd.js";

export interface MiaOptions {
  /** Members (= training rows) per trial. */
  members: number;
  features: number;
  trials: number;
  /** Plain training: epochs of full-batch descent. */
  epochs: number;
  learningRate: number;
  /** DP-SGD (defence on). */
  dp: { sampleRate: number; noiseMultiplier: number; clipNorm: number; epochs: number; learningRate: number; delta: number };
}

export interface MiaArm {
  defence: "off" | "dp-sgd";
  /** Mean out-of-sample advantage TPR − FPR over trials, and its 95% interval. */
  advantage: number;
  ci95: [number, number];
  /** Half-width of the interval: the smallest advantage this run could tell from 0. */
  resolution: number;
  memberLoss: number;
  nonMemberLoss: number;
  epsilon: number | null;
  perTrial: number[];
}

export interface MiaReport {
  kind: "membershipInference";
  off: MiaArm;
  on: MiaArm;
  rngStamp: RngStamp;
}

function population(n: number, d: number, u: UniformStream): Matrix {
  const x = new Float64Array(n * d);
  const y = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    let z = 0;
    for (let j = 0; j < d; j++) {
      const v = u.next() * 2 - 1;
      x[i * d + j] = v;
      if (j < 2) z += v; // a weak true signal on two features
    }
    y[i] = u.next() < 1 / (1 + Math.exp(-z)) ? 1 : 0;
  }
  return { n, d, x, y };
}

/** Best threshold on (member, non-member) losses: maximise TPR − FPR of "loss ≤ t ⇒ member". */
function fitThreshold(mem: number[], non: number[]): number {
  const cands = [...mem, ...non].sort((a, b) => a - b);
  let best = -Infinity;
  let bestT = cands[0]!;
  for (const t of cands) {
    const adv = mem.filter((l) => l <= t).length / mem.length - non.filter((l) => l <= t).length / non.length;
    if (adv > best) {
      best = adv;
      bestT = t;
    }
  }
  return bestT;
}

function arm(defence: "off" | "dp-sgd", o: MiaOptions, rng: Rng): MiaArm {
  const perTrial: number[] = [];
  let ml = 0;
  let nl = 0;
  for (let t = 0; t < o.trials; t++) {
    const u = new UniformStream(rng.fork(`data:${t}`));
    const m = population(2 * o.members, o.features, u);
    const members = Uint32Array.from({ length: o.members }, (_, i) => i);
    const others = Uint32Array.from({ length: o.members }, (_, i) => o.members + i);
    const spec: DpSgdSpec = {
      features: [],
      label: "y",
      epochs: defence === "off" ? o.epochs : o.dp.epochs,
      sampleRate: o.dp.sampleRate,
      noiseMultiplier: o.dp.noiseMultiplier,
      clipNorm: o.dp.clipNorm,
      learningRate: defence === "off" ? o.learningRate : o.dp.learningRate,
      holdoutFraction: 0,
      metricsNoise: 1,
      bins: 2,
    };
    const model = trainLogistic(m, members, new Uint32Array(0), spec, rng.fork(`train:${t}`), { private: defence === "dp-sgd" });
    const loss = (i: number) => exampleLoss(m, i, model.weights, model.bias);
    const mem = [...members].map(loss);
    const non = [...others].map(loss);
    ml += mem.reduce((a, b) => a + b, 0) / mem.length / o.trials;
    nl += non.reduce((a, b) => a + b, 0) / non.length / o.trials;
    const h = Math.floor(o.members / 2);
    const thr = fitThreshold(mem.slice(0, h), non.slice(0, h));
    const testM = mem.slice(h);
    const testN = non.slice(h);
    perTrial.push(testM.filter((l) => l <= thr).length / testM.length - testN.filter((l) => l <= thr).length / testN.length);
  }
  const mean = perTrial.reduce((a, b) => a + b, 0) / perTrial.length;
  const sd = Math.sqrt(perTrial.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, perTrial.length - 1));
  const half = (1.96 * sd) / Math.sqrt(perTrial.length);
  const epsilon =
    defence === "off"
      ? null
      : dpSgdEpsilon({
          sampleRate: o.dp.sampleRate,
          noiseMultiplier: o.dp.noiseMultiplier,
          steps: o.dp.epochs * stepsPerEpoch(o.dp.sampleRate),
          delta: o.dp.delta,
        }).epsilon;
  return {
    defence,
    advantage: mean,
    ci95: [mean - half, mean + half],
    resolution: half,
    memberLoss: ml,
    nonMemberLoss: nl,
    epsilon,
    perTrial,
  };
}

/** Defaults: 100 members, 150 features (a plain model can memorise them), 30 trials; DP-SGD at ε ≈ 0.76 (δ = 1e-5). */
export const MIA_DEFAULTS: MiaOptions = Object.freeze({
  members: 100,
  features: 150,
  trials: 30,
  epochs: 300,
  learningRate: 2,
  dp: Object.freeze({ sampleRate: 0.1, noiseMultiplier: 4, clipNorm: 1, epochs: 5, learningRate: 0.1, delta: 1e-5 }),
}) as MiaOptions;

/** The largest membership advantage TPR − FPR any attack can have against an (ε, δ)-DP mechanism. @example dpAdvantageBound(1, 0) // ≈ 0.462 */
export const dpAdvantageBound = (epsilon: number, delta: number): number => (Math.exp(epsilon) - 1 + 2 * delta) / (Math.exp(epsilon) + 1);

/**
 * Run the loss-threshold membership-inference attack with the defence off and on.
 * @example const r = membershipInferenceLab(seededRng("mia")); r.off.advantage // ≈ 0.7; r.on.advantage // ≈ 0.03
 */
export function membershipInferenceLab(rng: Rng, opts: Partial<MiaOptions> = {}): MiaReport {
  const o: MiaOptions = { ...MIA_DEFAULTS, ...opts, dp: { ...MIA_DEFAULTS.dp, ...(opts.dp ?? {}) } };
  if (!Number.isSafeInteger(o.members) || o.members < 10 || o.members > 10_000) invalid("members", "an integer in [10, 10000]", o.members);
  if (!Number.isSafeInteger(o.features) || o.features < 1 || o.features > 1000) invalid("features", "an integer in [1, 1000]", o.features);
  if (!Number.isSafeInteger(o.trials) || o.trials < 2 || o.trials > 1000) invalid("trials", "an integer in [2, 1000]", o.trials);
  return {
    kind: "membershipInference",
    off: arm("off", o, rng.fork("off")),
    on: arm("dp-sgd", o, rng.fork("on")),
    rngStamp: rngStamp(rng),
  };
}
