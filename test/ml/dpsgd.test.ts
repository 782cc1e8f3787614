/**
 * The DP-SGD pieces (ml/dpsgd.ts) as an attacker would probe them: the per-example sensitivity
 * after clipping (with the unclipped positive control), the noise's scale (χ²-style variance test
 * with power at 0.8× and 1.25×), Poisson batch sizes (mean and binomial variance), seeded
 * reproducibility. Seeded throughout.
 */
import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import {
  addClippedGradient,
  addGaussianNoise,
  metricsOf,
  poissonSample,
  toMatrix,
  trainLogistic,
  UniformStream,
  type DpSgdSpec,
  type Matrix,
} from "../../kernel-lib/src/ml/dpsgd.js";

function randomMatrix(n: number, d: number, scale: number, seed: string): Matrix {
  const u = new UniformStream(seededRng(seed));
  const x = new Float64Array(n * d).map(() => (u.next() * 2 - 1) * scale);
  const y = Uint8Array.from({ length: n }, () => (u.next() < 0.5 ? 1 : 0));
  return { n, d, x, y };
}

const norm = (a: Float64Array, b: Float64Array) => Math.sqrt(a.reduce((s, v, i) => s + (v - b[i]!) ** 2, 0));

describe("per-example clipping bounds the sensitivity of a batch sum", () => {
  it("adding any one row moves the sum by ≤ C; unclipped it moves by far more (control)", () => {
    const m = randomMatrix(200, 8, 50, "clip"); // huge features: raw gradients ≫ C
    const u = new UniformStream(seededRng("w"));
    let worstClipped = 0;
    let worstRaw = 0;
    for (let trial = 0; trial < 50; trial++) {
      const w = new Float64Array(8).map(() => u.next() * 2 - 1);
      const b = u.next();
      const base = new Float64Array(9);
      for (let i = 1; i < 200; i++) addClippedGradient(m, i, w, b, 1, base);
      const plus = base.slice();
      addClippedGradient(m, 0, w, b, 1, plus);
      worstClipped = Math.max(worstClipped, norm(plus, base));
      const raw = new Float64Array(9);
      addClippedGradient(m, 0, w, b, Infinity, raw);
      worstRaw = Math.max(worstRaw, norm(raw, new Float64Array(9)));
    }
    expect(worstClipped).toBeLessThanOrEqual(1 + 1e-12);
    expect(worstRaw).toBeGreaterThan(10);
  });
});

describe("Gaussian noise has the stated scale", () => {
  const N = 40_000;
  const variance = (std: number, seed: string) => {
    const out = new Float64Array(N);
    addGaussianNoise(out, std, new UniformStream(seededRng(seed)));
    const mean = out.reduce((a, b) => a + b, 0) / N;
    return { mean, v: out.reduce((a, b) => a + (b - mean) ** 2, 0) / (N - 1) };
  };
  it("variance matches σ² (z < 4), and the same test rejects 0.8× and 1.25× the scale (power)", () => {
    const sigma = 3;
    const { mean, v } = variance(sigma, "noise");
    // sample variance of N normals: sd ≈ σ²·√(2/(N−1))
    const z = (x: number, s: number) => Math.abs(x - s * s) / (s * s * Math.sqrt(2 / (N - 1)));
    expect(Math.abs(mean) / (sigma / Math.sqrt(N))).toBeLessThan(4);
    expect(z(v, sigma)).toBeLessThan(4);
    expect(z(v, sigma * 0.8)).toBeGreaterThan(4);
    expect(z(v, sigma * 1.25)).toBeGreaterThan(4);
  });
});

describe("Poisson sampling", () => {
  it("batch sizes have mean qn and binomial variance qn(1−q) (a fixed-size batch, variance 0, would fail)", () => {
    const n = 5000;
    const q = 0.02;
    const u = new UniformStream(seededRng("poisson"));
    const sizes: number[] = [];
    const hits = new Uint32Array(n);
    for (let s = 0; s < 2000; s++) {
      let c = 0;
      poissonSample(n, Math.log1p(-q), u, (k) => {
        c++;
        hits[k]!++;
      });
      sizes.push(c);
    }
    const mean = sizes.reduce((a, b) => a + b, 0) / sizes.length;
    const v = sizes.reduce((a, b) => a + (b - mean) ** 2, 0) / (sizes.length - 1);
    const ev = n * q * (1 - q);
    expect(Math.abs(mean - n * q) / Math.sqrt(ev / sizes.length)).toBeLessThan(4);
    expect(Math.abs(v / ev - 1)).toBeLessThan(0.15);
    // every index is reachable, first and last included
    expect(hits[0]).toBeGreaterThan(0);
    expect(hits[n - 1]).toBeGreaterThan(0);
  });
});

describe("training", () => {
  const rows = Array.from({ length: 3000 }, (_, i) => ({
    a: (i * 7919) % 100,
    b: (i * 104729) % 50,
    y: ((i * 7919) % 100) + ((i * 104729) % 50) > 75 ? 1 : 0,
  }));
  const m = toMatrix(
    rows,
    [
      { name: "a", lo: 0, hi: 100 },
      { name: "b", lo: 0, hi: 50 },
    ],
    "y",
  );
  const idx = Uint32Array.from({ length: 2400 }, (_, i) => i);
  const hold = Uint32Array.from({ length: 600 }, (_, i) => 2400 + i);
  const spec: DpSgdSpec = {
    features: [],
    label: "y",
    epochs: 3,
    sampleRate: 0.05,
    noiseMultiplier: 1,
    clipNorm: 1,
    learningRate: 2,
    holdoutFraction: 0.2,
    metricsNoise: 3,
    bins: 10,
  };
  it("is reproducible under a seed, differs across seeds, and learns a separable rule", () => {
    const a = trainLogistic(m, idx, hold, spec, seededRng("t1"), { private: true });
    const b = trainLogistic(m, idx, hold, spec, seededRng("t1"), { private: true });
    const c = trainLogistic(m, idx, hold, spec, seededRng("t2"), { private: true });
    expect([...a.weights]).toEqual([...b.weights]);
    expect([...a.weights]).not.toEqual([...c.weights]);
    expect(a.steps).toBe(3 * 20);
    expect(metricsOf(a.epochs.at(-1)!.histogram).auc).toBeGreaterThan(0.85);
  });
  it("toMatrix refuses a non-numeric feature or a bad label naming the column, never the value", () => {
    expect(() => toMatrix([{ a: "secret-value", y: 1 }], [{ name: "a", lo: 0, hi: 1 }], "y")).toThrow(/rows\[0\]\.a/);
    expect(() => toMatrix([{ a: 1, y: "secret-value" }], [{ name: "a", lo: 0, hi: 1 }], "y")).toThrow(/rows\[0\]\.y/);
    expect(() => toMatrix([{ a: 1, y: "secret-value" }], [{ name: "a", lo: 0, hi: 1 }], "y")).not.toThrow(/secret-value/);
  });
});
