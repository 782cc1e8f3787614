/**
 * Per-column noise for the query view: which mechanism parameter and sensitivity each released
 * aggregate had, and its ± (the half-width that holds with a stated probability), computed
 * from the registered mechanism's exact tail (dp/registry.ts).
 *
 * Threat model: reads only the released noise description (public by design: the scale is a
 * function of the approved template), never a value. Pure functions.
 */
import { findMechanism } from "../dp/registry.js";
import { ratFromDecimal } from "../dp/rational.js";
import type { NoiseInfo } from "../cleanroom/release.js";
import { normalQuantile } from "../studies/normal.js";

/** The confidence of the ± the views show. */
export const NOISE_LEVEL = 0.95;

/**
 * Smallest integer n with P(|noise| > n) ≤ 1 − level for the registered mechanism `name`
 * (display or template name) at parameter `scale` (decimal or "a/b"); `undefined` for an
 * unknown mechanism.
 *
 * @example noiseHalfWidthOf("discreteLaplace", "10", 0.95) // 30
 */
export function noiseHalfWidthOf(name: string, scale: string, level = NOISE_LEVEL): number | undefined {
  const m = findMechanism(name);
  if (!m) return undefined;
  const s = ratFromDecimal(scale, "scale");
  const beta = 1 - level;
  const tail = (k: number) => m.tail(k, s);
  if (tail(0) <= beta) return 0;
  let lo = 0;
  let hi = 1;
  while (tail(hi) > beta && hi < Number.MAX_SAFE_INTEGER / 2) hi *= 2;
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (tail(mid) <= beta) hi = mid;
    else lo = mid;
  }
  return hi;
}

/**
 * Each released row's own ± per column (null where the column's ± applies), from
 * `NoiseInfo.cellVariance`: z · √variance at {@link NOISE_LEVEL} (normal approximation). A
 * remainder cell of a count or sum is never shown tighter than one row's exact ± and is rounded
 * up to an integer like it; an avg cell keeps 3 significant digits.
 *
 * @example cellPlusMinusRows(result.noise, result, ["region", "spend", "avgSpend"]) // [[null, null, 4.1], …]
 */
export function cellPlusMinusRows(noise: NoiseInfo, rows: number, names: readonly string[]): ((number | null)[] | undefined)[] {
  const out: ((number | null)[] | undefined)[] = Array.from({ length: rows }, () => undefined);
  const z = normalQuantile(1 - (1 - NOISE_LEVEL) / 2);
  for (const c of noise.cellVariance ?? []) {
    const j = names.indexOf(c.column);
    if (j < 0 || c.row < 0 || c.row >= rows || !(c.variance >= 0)) continue;
    const approx = z * Math.sqrt(c.variance);
    let pm: number;
    if (c.how === "remainder") pm = Math.ceil(Math.max(approx, columnNoise(noise, c.column)?.halfWidth ?? 0));
    else pm = Number(approx.toPrecision(3));
    (out[c.row] ??= names.map(() => null))[j] = pm;
  }
  return out;
}

/** The payload's per-column noise of one aggregate column, or `undefined` when it carries none. */
export function columnNoise(
  noise: NoiseInfo,
  column: string,
): { parameterName?: string; scale: number; sensitivity: number; halfWidth?: number; level?: number; note?: string } | undefined {
  const q = noise.perAggregate.find((p) => p.name === column) ?? noise.perAggregate.find((p) => p.name === "units");
  if (!q) return undefined;
  const m = findMechanism(noise.mechanism);
  const base = {
    ...(m ? { parameterName: m.parameterName } : {}),
    scale: Number(q.scale),
    sensitivity: Number(q.l1Sensitivity),
  };
  if (q.fn === "avg")
    return { ...base, note: "a ratio of two noisy values (sum ÷ count): its ± depends on the group's size, shown per row (≈)" };
  const hw = noiseHalfWidthOf(noise.mechanism, q.scaleExact);
  return hw === undefined ? base : { ...base, halfWidth: hw, level: NOISE_LEVEL };
}
