/**
 * Statistics for the DP test suite (dp-testing.md M1, M4): χ² goodness-of-fit with tail
 * pooling and log-space p-values (regularised upper incomplete gamma), Hoeffding bounds,
 * and the empirical ε lower bound of an audit. Floats are fine here: this is the referee,
 * not the mechanism.
 */

/** ln Γ(x), x > 0 (Lanczos, g = 7, n = 9; ≈ 1e-15 relative). */
export function lnGamma(x: number): number {
  const c = [
    0.99999999999980993, 676.5203681218851, -1259.1392167224028, 771.32342877765313, -176.61502916214059, 12.507343278686905,
    -0.13857109526572012, 9.9843695780195716e-6, 1.5056327351493116e-7,
  ];
  if (x < 0.5) return Math.log(Math.PI / Math.abs(Math.sin(Math.PI * x))) - lnGamma(1 - x);
  x -= 1;
  let a = c[0]!;
  const t = x + 7.5;
  for (let i = 1; i < 9; i++) a += c[i]! / (x + i);
  return 0.5 * Math.log(2 * Math.PI) + (x + 0.5) * Math.log(t) - t + Math.log(a);
}

/** ln Q(a, x): log of the regularised upper incomplete gamma function (NR gser / gcf). */
export function lnGammaQ(a: number, x: number): number {
  if (!(a > 0) || !(x >= 0)) throw new RangeError(`lnGammaQ(${a}, ${x})`);
  if (x === 0) return 0;
  const lnPre = -x + a * Math.log(x) - lnGamma(a);
  if (x < a + 1) {
    let ap = a;
    let del = 1 / a;
    let sum = del;
    for (let n = 0; n < 100000; n++) {
      ap += 1;
      del *= x / ap;
      sum += del;
      if (Math.abs(del) < Math.abs(sum) * 1e-17) break;
    }
    const p = sum * Math.exp(lnPre);
    return Math.log1p(-Math.min(p, 1));
  }
  const FPMIN = 1e-300;
  let b = x + 1 - a;
  let c = 1 / FPMIN;
  let d = 1 / b;
  let h = d;
  for (let i = 1; i < 100000; i++) {
    const an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (Math.abs(d) < FPMIN) d = FPMIN;
    c = b + an / c;
    if (Math.abs(c) < FPMIN) c = FPMIN;
    d = 1 / d;
    const del = d * c;
    h *= del;
    if (Math.abs(del - 1) < 1e-16) break;
  }
  return lnPre + Math.log(h);
}

/** ln of the χ² upper-tail p-value P(χ²_k ≥ x). */
export function lnChiSquarePValue(x: number, k: number): number {
  return lnGammaQ(k / 2, x / 2);
}

/** Wilson–Hilferty normal approximation of the χ² quantile (a cross-check for the helper). */
export function wilsonHilfertyQuantile(z: number, k: number): number {
  const h = 2 / (9 * k);
  return k * Math.pow(1 - h + z * Math.sqrt(h), 3);
}

export interface ChiSquareResult {
  statistic: number;
  df: number;
  lnP: number;
  bins: number;
}

/**
 * χ² goodness-of-fit of integer samples against a pmf on ℤ. Bins are single integers while the
 * expected count is ≥ 5; both tails are pooled into "≤ lo" and "≥ hi" bins (dp-testing M1).
 */
export function chiSquareDiscrete(samples: ArrayLike<number>, pmf: (x: number) => number, center = 0): ChiSquareResult {
  const n = samples.length;
  // walk outwards from the centre to find the inner range with expected ≥ 5
  let lo = center;
  let hi = center;
  while (n * pmf(lo - 1) >= 5) lo--;
  while (n * pmf(hi + 1) >= 5) hi++;
  const inner: number[] = [];
  for (let x = lo; x <= hi; x++) inner.push(pmf(x));
  // tail masses summed outwards until negligible
  const tailMass = (from: number, step: number) => {
    let s = 0;
    for (let x = from, i = 0; i < 1e6; x += step, i++) {
      const p = pmf(x);
      s += p;
      if (p < 1e-300 || (p < s * 1e-18 && i > 10)) break;
    }
    return s;
  };
  const left = tailMass(lo - 1, -1);
  const right = tailMass(hi + 1, 1);
  const counts = new Array<number>(inner.length + 2).fill(0);
  for (let i = 0; i < n; i++) {
    const x = samples[i]!;
    if (x < lo) counts[0]!++;
    else if (x > hi) counts[counts.length - 1]!++;
    else counts[x - lo + 1]!++;
  }
  const expected = [left, ...inner, right].map((p) => p * n);
  const obs = counts.slice();
  const pool = (from: number, into: number) => {
    expected[into]! += expected[from]!;
    obs[into]! += obs[from]!;
    expected[from] = 0;
    obs[from] = 0;
  };
  // a tail bin with expected < 5 is folded into its neighbour
  if (expected[0]! < 5) pool(0, 1);
  if (expected[expected.length - 1]! < 5) pool(expected.length - 1, expected.length - 2);
  let stat = 0;
  let bins = 0;
  for (let i = 0; i < expected.length; i++) {
    if (expected[i] === 0) {
      if (obs[i]! > 0) return { statistic: Infinity, df: 0, lnP: -Infinity, bins };
      continue;
    }
    bins++;
    stat += (obs[i]! - expected[i]!) ** 2 / expected[i]!;
  }
  const df = bins - 1;
  return { statistic: stat, df, lnP: lnChiSquarePValue(stat, df), bins };
}

/** Hoeffding half-width h = √(ln(2/β)/(2n)). */
export const hoeffding = (n: number, beta: number) => Math.sqrt(Math.log(2 / beta) / (2 * n));

/**
 * dp-testing M4: ε_lb = ln((p̂ − h − δ)/(q̂ + h)) from event frequencies on neighbouring
 * inputs; with probability ≥ 1 − β (union bound over both sides) the true ε is ≥ ε_lb.
 */
export function epsilonLowerBound(hitsD1: number, hitsD0: number, n: number, beta: number, delta = 0): number {
  const h = hoeffding(n, beta);
  const p = hitsD1 / n;
  const q = hitsD0 / n;
  const num = p - h - delta;
  return num <= 0 ? -Infinity : Math.log(num / (q + h));
}

/**
 * dp-testing M3 (Google's stochastic tester): T = Σ_o max(0, (c_A(o) − e^ε·c_B(o))/N) over
 * the exact output histogram. An ε-DP mechanism has T ≤ δ (+ sampling tolerance) both ways.
 */
export function dpPredicateExcess(a: readonly bigint[], b: readonly bigint[], epsilon: number): number {
  const hist = (xs: readonly bigint[]) => {
    const m = new Map<bigint, number>();
    for (const x of xs) m.set(x, (m.get(x) ?? 0) + 1);
    return m;
  };
  const ha = hist(a);
  const hb = hist(b);
  let t = 0;
  for (const [o, ca] of ha) t += Math.max(0, (ca - Math.exp(epsilon) * (hb.get(o) ?? 0)) / a.length);
  return t;
}

/** Regularised incomplete beta I_x(a, b) (NR betacf continued fraction). */
export function betaInc(x: number, a: number, b: number): number {
  if (x <= 0) return 0;
  if (x >= 1) return 1;
  const lnFront = lnGamma(a + b) - lnGamma(a) - lnGamma(b) + a * Math.log(x) + b * Math.log1p(-x);
  const cf = (x: number, a: number, b: number) => {
    const FPMIN = 1e-300;
    let c = 1;
    let d = 1 - ((a + b) * x) / (a + 1);
    if (Math.abs(d) < FPMIN) d = FPMIN;
    d = 1 / d;
    let h = d;
    for (let m = 1; m < 10000; m++) {
      const m2 = 2 * m;
      let aa = (m * (b - m) * x) / ((a - 1 + m2) * (a + m2));
      d = 1 + aa * d;
      if (Math.abs(d) < FPMIN) d = FPMIN;
      c = 1 + aa / c;
      if (Math.abs(c) < FPMIN) c = FPMIN;
      d = 1 / d;
      h *= d * c;
      aa = (-(a + m) * (a + b + m) * x) / ((a + m2) * (a + 1 + m2));
      d = 1 + aa * d;
      if (Math.abs(d) < FPMIN) d = FPMIN;
      c = 1 + aa / c;
      if (Math.abs(c) < FPMIN) c = FPMIN;
      d = 1 / d;
      const del = d * c;
      h *= del;
      if (Math.abs(del - 1) < 1e-15) break;
    }
    return h;
  };
  return x < (a + 1) / (a + b + 2) ? (Math.exp(lnFront) * cf(x, a, b)) / a : 1 - (Math.exp(lnFront) * cf(1 - x, b, a)) / b;
}

/** Clopper–Pearson two-sided interval for k successes in n trials at confidence 1 − beta. */
export function clopperPearson(k: number, n: number, beta: number): { lo: number; hi: number } {
  const quantile = (q: number, a: number, b: number) => {
    let lo = 0;
    let hi = 1;
    for (let i = 0; i < 200; i++) {
      const mid = (lo + hi) / 2;
      if (betaInc(mid, a, b) < q) lo = mid;
      else hi = mid;
    }
    return (lo + hi) / 2;
  };
  return { lo: k === 0 ? 0 : quantile(beta / 2, k, n - k + 1), hi: k === n ? 1 : quantile(1 - beta / 2, k + 1, n - k) };
}

/** M4 with Clopper–Pearson instead of Hoeffding: ε_lb = ln((p_lo − δ)/q_hi). */
export function epsilonLowerBoundCP(hitsD1: number, hitsD0: number, n: number, beta: number, delta = 0): number {
  const p = clopperPearson(hitsD1, n, beta).lo - delta;
  const q = clopperPearson(hitsD0, n, beta).hi;
  return p <= 0 ? -Infinity : Math.log(p / q);
}
