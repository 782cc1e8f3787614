/**
 * Release pipeline: exact aggregates → (contribution bounding, done by the engine from the
 * plan's row cap and clamp bounds) → difference check → noise → threshold/suppression →
 * an immutable, plain-data `QueryResult`.
 *
 * Threshold decision: with noise on, the minimum-units rule is applied to the NOISY
 * distinct-unit count (ADH noise mode, Tumult-style: the decision is post-processing of a
 * DP release, so it leaks nothing beyond the charged ε); with noise off it is applied to the
 * exact count (ADH difference-check mode, AWS/fbpcs k-anonymity). With noise off and an
 * events table, a row must ALSO have at least the minimum of distinct units that contributed
 * event rows (the plan's hidden `EVENT_UNITS_MEASURE`, computed by the engine after filters
 * and row caps): AWS applies each table's COUNT DISTINCT constraint per output row, so the
 * events owner's constraint counts the people whose events are in the row, not the base
 * population (otherwise one buyer among k exposed people has their exact value released).
 * With noise on this second count is not used: DP bounds what the released values say about
 * each person's events. Styles: `drop` (row
 * removed, reported), `remainder` (Snowflake: merged into one row whose dimensions are
 * null; its values are sums of the merged rows' released — i.e. noisy — values, so it costs
 * no extra budget, and it is itself thresholded), `error` (`THRESHOLD_NOT_MET`).
 * `complementary` (exact two-way tables, cleanroom/suppression.ts): released with row, column
 * and grand totals; small cells and totals are withheld, then complementary cells until no
 * withheld value follows from the published ones; every withheld row carries the same reason,
 * so the report does not say which cells are small.
 * The "why suppressed" report names rows and rules, never the true small count.
 * Threat model: a curious analyst; a result never contains identifiers, join keys or row
 * data — only dimension values declared in the template and aggregates.
 */
import { CleanRoomError } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { ratToDecimal, ratToString } from "../dp/rational.js";
import { costText, type PrivacyCost } from "../dp/accountant.js";
import { releasedInt, sortGroups, type DimValue, type ExactAggregates, type GroupAggregate } from "./aggregates.js";
import type { DifferenceHistory } from "./diffcheck.js";
import { EVENT_UNITS_MEASURE, type CheckedTemplate } from "./plan.js";
import { noiseParams, type Template } from "./template.js";
import { complementarySuppression } from "./suppression.js";

export type SuppressionReason = "below_threshold" | "difference_check" | "complementary";

/** The "why suppressed" report. Never contains a true small count. */
export interface SuppressionReport {
  style: "drop" | "remainder" | "error" | "complementary";
  /** Minimum distinct privacy units per released row. */
  minimum: number;
  /** Who set the minimum: "template" or the dataset whose rule was strictest. */
  minimumFrom: string;
  /** Whether the threshold compared the exact or the noisy unit count. */
  decidedOn: "exact" | "noisy";
  rows: { key: Record<string, DimValue>; reason: SuppressionReason; rule: string }[];
  /** Remainder style only: how many rows were merged and whether the merged row was released. */
  remainder: {
    mergedRows: number;
    released: boolean;
    rowIndex: number | null;
    /**
     * Noised and released only: the remainder row's noise variance per quantity (names as in
     * `NoiseInfo`) — the per-row variance × merged rows, since it sums their noisy values.
     */
    noiseVariance?: Record<string, number>;
  } | null;
  /**
   * Complementary style only: the table is released with its margins (rows whose other
   * dimension is `null`; both `null` = grand total). Counts of withheld cells by reason and
   * of margin rows released — never a withheld value.
   */
  complementary?: { primaryCells: number; complementaryCells: number; marginsWithheld: number; marginRows: number };
}

/** Noise description per released aggregate. */
export interface NoiseInfo {
  /** Display name of the registered mechanism (dp/registry.ts), e.g. "discreteLaplace". */
  mechanism: string;
  /** Per noised quantity (`units` is the distinct-unit count used by the threshold). */
  perAggregate: {
    name: string;
    scale: string;
    scaleExact: string;
    l1Sensitivity: string;
    variance: number;
    /** The aggregate function released from this quantity (`units`: "countUnits"; an `avg` noises its sum). */
    fn?: string;
  }[];
  /**
   * Cells whose noise variance differs from their column's per-row `variance`, APPROXIMATE:
   * every `avg` cell (noisy sum S ÷ noisy unit count N; delta method around the released
   * values: (Var S + avg² · Var N) / N²) and every cell of a released remainder row (it sums
   * `mergedRows` independently noised rows: that many times the variance). Computed from
   * released values only (post-processing). Absent when there is no such cell.
   */
  cellVariance?: { row: number; column: string; variance: number; how: "ratio" | "remainder" | "ratio+remainder" }[];
}

/** What `cleanRoomQuery` returns. Plain JSON-able data, deeply frozen. */
export interface QueryResult {
  kind: "query";
  templateName: string;
  templateHash: string;
  engine: string;
  dimensions: string[];
  aggregates: string[];
  /** Dimensions, then aggregates: exact integers as numbers, or decimal strings beyond ±(2^53 − 1) (`releasedInt`); `avg` is a float. */
  rows: Record<string, string | number | null>[];
  suppressed: SuppressionReport;
  noise: NoiseInfo | null;
  cost: { kind: PrivacyCost["kind"]; text: string; epsilon?: string; delta?: string; rho?: string } | null;
  differenceCheck: { k: number; filteredRows: number } | null;
  rngStamp: RngStamp;
}

/**
 * The cells whose noise variance is not their column's per-row variance (see
 * `NoiseInfo.cellVariance`): `avg` cells by the delta method around the released sum and unit
 * count, remainder-row cells as `mergedRows` × the per-row variance. Released values only.
 */
function cellVariances(
  t: Template,
  noise: NoiseInfo,
  released: { units: bigint; values: Record<string, bigint> }[],
  rows: Record<string, string | number | null>[],
  rem: { mergedRows: number; rowIndex: number | null } | null,
): NonNullable<NoiseInfo["cellVariance"]> {
  const varOf = (name: string) =>
    (noise.perAggregate.find((p) => p.name === name) ?? noise.perAggregate.find((p) => p.name === "units"))?.variance;
  const unitsVar = noise.perAggregate.find((p) => p.name === "units")?.variance;
  const out: NonNullable<NoiseInfo["cellVariance"]> = [];
  released.forEach((r, i) => {
    const k = rem && rem.rowIndex === i ? rem.mergedRows : 1;
    for (const a of t.aggregates) {
      const v = varOf(a.fn === "countUnits" ? "units" : a.name);
      if (v === undefined) continue;
      if (a.fn === "avg") {
        const avg = rows[i]![a.name];
        const n = Number(r.units);
        if (typeof avg !== "number" || !(n > 0) || unitsVar === undefined) continue;
        out.push({
          row: i,
          column: a.name,
          variance: (k * (v + avg * avg * unitsVar)) / (n * n),
          how: k > 1 ? "ratio+remainder" : "ratio",
        });
      } else if (k > 1) out.push({ row: i, column: a.name, variance: k * v, how: "remainder" });
    }
  });
  return out;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object") {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

function costJson(c: PrivacyCost | null): QueryResult["cost"] {
  if (!c) return null;
  if (c.kind === "pureDp") return { kind: c.kind, text: costText(c), epsilon: ratToString(c.epsilon) };
  if (c.kind === "approxDp") return { kind: c.kind, text: costText(c), epsilon: ratToString(c.epsilon), delta: ratToString(c.delta) };
  return { kind: c.kind, text: costText(c), rho: ratToString(c.rho) };
}

export interface ReleaseInput {
  template: Template;
  templateHash: string;
  checked: CheckedTemplate;
  exact: ExactAggregates;
  engine: string;
  cost: PrivacyCost | null;
  rng: Rng;
  /** Required when the template has a difference check (engine run with `withUnits`). */
  history?: DifferenceHistory;
  /** Id under which released unit sets are remembered. */
  resultId?: string;
}

const keyText = (key: readonly DimValue[]) => JSON.stringify(key.map((v) => (typeof v === "bigint" ? Number(v) : v)));

/** The groups of `domain` in domain order, empty (0 units, 0 values) where the data has none. */
function completeGroups(groups: readonly GroupAggregate[], domain: readonly DimValue[][], measures: readonly string[]): GroupAggregate[] {
  const byKey = new Map(groups.map((g) => [keyText(g.key), g]));
  const inDomain = new Set(domain.map(keyText));
  for (const k of byKey.keys())
    if (!inDomain.has(k))
      throw new CleanRoomError("INTERNAL", "an output key outside the declared domain — this is a bug in cleanroom-lab");
  const withIds = groups.some((g) => g.unitIds);
  // sorted like the engines' output, so rows keep their order whether or not a key was filled in
  return sortGroups(
    domain.map(
      (key) =>
        byKey.get(keyText(key)) ?? {
          key: [...key],
          units: 0,
          values: Object.fromEntries(measures.map((m) => [m, 0n])),
          ...(withIds ? { unitIds: [] } : {}),
        },
    ),
  );
}

/**
 * Turn exact aggregates into a released result (pure apart from `history.record`, which
 * runs last, only on success).
 *
 * @example
 * const result = releaseResult({ template: t, templateHash: h, checked, exact, engine: "arquero", cost, rng: seededRng("demo") });
 */
export function releaseResult(input: ReleaseInput): QueryResult {
  const run = (): QueryResult => {
    const { template: t, checked, exact, rng } = input;
    const dims = exact.dimensions;
    const keyObj = (key: DimValue[]) => Object.fromEntries(dims.map((d, i) => [d, key[i] ?? null]));
    const report: SuppressionReport = {
      style: t.threshold.style,
      minimum: checked.minimum,
      minimumFrom: checked.minimumFrom,
      decidedOn: t.noise ? "noisy" : "exact",
      rows: [],
      remainder: null,
    };
    const source = checked.minimumFrom === "template" ? "template threshold" : `analysis rule of ${checked.minimumFrom}`;
    const rule = `at least ${checked.minimum} distinct privacy units per row (${source})`;
    // Exact mode with an events table: the events side's distinct contributing units are
    // thresholded too (AWS: every table's constraint per row). Noise mode: DP covers it.
    const eventsKey = t.events && !t.noise ? `${t.events.owner}/${t.events.dataset}` : null;
    if (eventsKey && !exact.measures.includes(EVENT_UNITS_MEASURE))
      throw new CleanRoomError("INTERNAL", "an exact-mode join result without its events unit count — this is a bug in cleanroom-lab");
    const eventRule = `at least ${checked.minimum} distinct privacy units with rows in ${eventsKey} per row (${source})`;
    /** The rule a row fails, or null when it passes. */
    const failedRule = (r: { units: bigint; values: Record<string, bigint> }): string | null =>
      r.units < checked.minimum ? rule : eventsKey && r.values[EVENT_UNITS_MEASURE]! < checked.minimum ? eventRule : null;

    // 0. Noise mode: every key of the declared domain is released or suppressed by the noisy
    //    count, whether the data has it or not (a key present only because one person has it
    //    would otherwise be shown with certainty, outside ε). Keys come from the schema.
    let groups = exact.groups;
    if (t.noise && checked.domain) groups = completeGroups(groups, checked.domain, exact.measures);

    // 1. Difference check against earlier released results of this room.
    let filteredByDiff = 0;
    if (t.differenceCheck) {
      if (!input.history)
        throw new CleanRoomError("INTERNAL", "difference check requested without a history — this is a bug in cleanroom-lab");
      if (groups.some((g) => !g.unitIds))
        throw new CleanRoomError("INTERNAL", "difference check needs unit ids from the engine — this is a bug in cleanroom-lab");
      const verdict = input.history.evaluate(
        groups.map((g) => g.unitIds!),
        t.differenceCheck.k,
      );
      if (verdict.totalBlocked)
        throw new CleanRoomError(
          "DIFFERENCE_CHECK_FAILED",
          `result refused: combined with an earlier result it would isolate fewer than ${t.differenceCheck.k} privacy units`,
          {
            k: t.differenceCheck.k,
          },
        );
      groups = groups.filter((g, i) => {
        if (!verdict.rowBlocked[i]) return true;
        report.rows.push({
          key: keyObj(g.key),
          reason: "difference_check",
          rule: `difference check: must differ from every earlier row by 0 or at least ${t.differenceCheck!.k} units`,
        });
        filteredByDiff++;
        return false;
      });
    }

    // 2. Noise: the unit count and every aggregate quantity.
    const np = noiseParams(t);
    const noisy = groups.map((g) => {
      // exact integers (bigint) from the engine through the noise to the output: no rounding, no overflow
      if (!np) return { g, units: BigInt(g.units), values: { ...g.values } };
      const draw = (p: (typeof np)[number]) => p.mechanism.sample(p.scale, rng);
      const values: Record<string, bigint> = {};
      let units = BigInt(g.units);
      for (const p of np) {
        if (p.name === "units") units = BigInt(g.units) + draw(p);
        else values[p.name] = g.values[p.name]! + draw(p);
      }
      return { g, units, values };
    });

    // 3. Threshold / suppression.
    let passing = noisy.filter((r) => failedRule(r) === null);
    let failing = noisy.filter((r) => failedRule(r) !== null);
    // 3a. Complementary style (exact, two dimensions, one group per unit — checked in plan.ts):
    //     the grid with its margins; primary = the rule fails on a non-empty cell or margin,
    //     then complementary cells until no withheld value follows from the published ones.
    const marginRows: { key: DimValue[]; units: bigint; values: Record<string, bigint> }[] = [];
    if (t.threshold.style === "complementary") {
      // canonical order (not the engine's), so every engine withholds the same cells
      const distinct = (d: number) =>
        [...new Map(noisy.map((r) => [keyText([r.g.key[d]!]), r.g.key[d]!])).entries()]
          .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
          .map(([, v]) => v);
      const rk = distinct(0);
      const ck = distinct(1);
      if (rk.length > 64 || ck.length > 64)
        throw new CleanRoomError(
          "TEMPLATE_INVALID",
          `"template.groupBy" expected at most 64 values per dimension with threshold style complementary, got ${Math.max(rk.length, ck.length)}`,
          { field: "template.groupBy" },
        );
      const at = new Map(noisy.map((r) => [keyText(r.g.key), r]));
      const measures = exact.measures;
      const zero = () => ({ units: 0n, values: Object.fromEntries(measures.map((m) => [m, 0n])) as Record<string, bigint> });
      const grid = rk.map((a) => ck.map((b) => at.get(keyText([a, b])) ?? { g: { key: [a, b] }, ...zero() }));
      const sum = (cells: { units: bigint; values: Record<string, bigint> }[]) => {
        const z = zero();
        for (const c of cells) {
          z.units += c.units;
          for (const m of measures) z.values[m]! += c.values[m] ?? 0n;
        }
        return z;
      };
      const rowSums = grid.map((row) => sum(row));
      const colSums = ck.map((_, j) => sum(grid.map((row) => row[j]!)));
      const totalSum = sum(rowSums);
      const small = (c: { units: bigint; values: Record<string, bigint> }) => c.units > 0n && failedRule(c) !== null;
      const pattern = complementarySuppression(
        grid.map((row) => row.map((c) => c.units)),
        BigInt(checked.minimum),
        {
          primary: {
            cells: grid.map((row) => row.map(small)),
            rowMargins: rowSums.map(small),
            colMargins: colSums.map(small),
            total: small(totalSum),
          },
        },
      );
      const complementary = new Set(pattern.complementary.map(([i, j]) => `${i}:${j}`));
      const withheld = new Set<string>();
      const withheldRule = `withheld: ${rule}, or withheld so that no such cell can be computed from the published cells and totals`;
      grid.forEach((row, i) =>
        row.forEach((c, j) => {
          if (!pattern.cells[i]![j]) return;
          withheld.add(keyText(c.g.key));
          // one reason for every withheld cell: saying which ones are small would tell the
          // attacker that the others hold at least `minimum` units (narrower intervals)
          report.rows.push({ key: keyObj(c.g.key), reason: "complementary", rule: withheldRule });
        }),
      );
      passing = noisy.filter((r) => !withheld.has(keyText(r.g.key)));
      failing = [];
      const margin = (key: DimValue[], c: { units: bigint; values: Record<string, bigint> }, out: boolean) => {
        if (out) report.rows.push({ key: keyObj(key), reason: "complementary", rule: withheldRule });
        else marginRows.push({ key, ...c });
      };
      rowSums.forEach((c, i) => margin([rk[i]!, null], c, pattern.rowMargins[i]!));
      colSums.forEach((c, j) => margin([null, ck[j]!], c, pattern.colMargins[j]!));
      margin([null, null], totalSum, pattern.total);
      report.complementary = {
        primaryCells: withheld.size - complementary.size,
        complementaryCells: complementary.size,
        marginsWithheld: rk.length + ck.length + 1 - marginRows.length,
        marginRows: marginRows.length,
      };
    }
    if (failing.length && t.threshold.style === "error")
      throw new CleanRoomError(
        "THRESHOLD_NOT_MET",
        `${failing.length} row(s) are below the threshold (${rule}${eventsKey ? `; ${eventRule}` : ""}); no result released`,
        {
          rows: failing.map((r) => keyObj(r.g.key)),
          minimum: checked.minimum,
        },
      );
    for (const r of failing) report.rows.push({ key: keyObj(r.g.key), reason: "below_threshold", rule: failedRule(r)! });
    const released = passing.map((r) => ({ key: r.g.key, units: r.units, values: r.values, ids: r.g.unitIds }));
    if (t.threshold.style === "remainder" && failing.length) {
      const units = failing.reduce((s, r) => s + r.units, 0n);
      const values: Record<string, bigint> = {};
      for (const name of Object.keys(failing[0]!.values)) values[name] = failing.reduce((s, r) => s + r.values[name]!, 0n);
      // remainder is only allowed when each unit is in one group, so the sums are distinct counts
      const ok = failedRule({ units, values }) === null;
      report.remainder = { mergedRows: failing.length, released: ok, rowIndex: ok ? released.length : null };
      if (ok) {
        released.push({ key: dims.map(() => null), units, values, ids: failing.flatMap((r) => r.g.unitIds ?? []) });
      }
    } else if (t.threshold.style === "remainder") report.remainder = { mergedRows: 0, released: false, rowIndex: null };
    for (const m of marginRows) released.push({ key: m.key, units: m.units, values: m.values, ids: undefined });

    // 4. Output rows: dimensions + aggregates only.
    const rows = released.map((r) => {
      const row: Record<string, string | number | null> = keyObj(r.key);
      for (const a of t.aggregates) {
        if (a.fn === "countUnits") row[a.name] = releasedInt(r.units);
        else if (a.fn === "avg") row[a.name] = r.units > 0n ? Number(r.values[a.name]!) / Number(r.units) : null;
        else row[a.name] = releasedInt(r.values[a.name]!);
      }
      return row;
    });

    const noise: NoiseInfo | null = np
      ? {
          mechanism: np[0]!.mechanism.displayName,
          perAggregate: np.map((p) => ({
            name: p.name,
            scale: ratToDecimal(p.scale, 6),
            scaleExact: ratToString(p.scale),
            l1Sensitivity: p.l1.toString(),
            variance: p.mechanism.variance(p.scale),
            fn: p.name === "units" ? "countUnits" : (t.aggregates.find((a) => a.name === p.name)?.fn ?? "count"),
          })),
        }
      : null;

    // the remainder row sums `mergedRows` independently noised rows: its variance is that many times a row's
    const rem = report.remainder;
    if (noise && rem?.released)
      rem.noiseVariance = Object.fromEntries(noise.perAggregate.map((p) => [p.name, p.variance * rem.mergedRows]));
    if (noise) {
      const cells = cellVariances(t, noise, released, rows, rem?.released ? rem : null);
      if (cells.length) noise.cellVariance = cells;
    }

    const result: QueryResult = {
      kind: "query",
      templateName: t.name,
      templateHash: input.templateHash,
      engine: input.engine,
      dimensions: [...dims],
      aggregates: t.aggregates.map((a) => a.name),
      rows,
      suppressed: report,
      noise,
      cost: costJson(input.cost),
      differenceCheck: t.differenceCheck ? { k: t.differenceCheck.k, filteredRows: filteredByDiff } : null,
      rngStamp: rngStamp(rng),
    };
    // Last step, only on success: remember released unit sets for later difference checks.
    if (t.differenceCheck && input.history)
      input.history.record(
        input.resultId ?? `${input.templateHash}:${input.history.size()}`,
        released.map((r) => r.ids ?? []),
      );
    return deepFreeze(result);
  };
  // evaluate and record of the difference check in one IMMEDIATE transaction, so a second
  // kernel on the same room cannot check its half of a differencing pair against a history
  // that lacks the first half (the body stays in this function: the enclave measures its source)
  return input.template.differenceCheck && input.history ? input.history.atomically(run) : run();
}
