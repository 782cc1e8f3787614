/**
 * Planner: checks a parsed template against the datasets' schemas and the owners'
 * analysis rules, and compiles it with bound parameters into an engine `Plan`.
 *
 * Checks (all before anything runs): every referenced column exists; no identifier
 * (privacy unit, join key or a column flagged `identifier`) is grouped by, aggregated,
 * filtered or ordered on — a plan has no expressions, so "a function of an identifier" can
 * only be written by naming one, and that is refused; dimensions come from the base table
 * when two tables are joined (each unit then lands in exactly one group); the join is on
 * matched identity; every owner's AWS-shaped rule allows the dimensions, aggregate
 * functions and join, and the strictest output constraint sets the threshold.
 * Threat model: a curious analyst proposing templates; refusals are `QUERY_NOT_APPROVED`
 * (rule/identifier) or `TEMPLATE_INVALID` (malformed plan), naming the field.
 */
import { CleanRoomError, invalid } from "../errors.js";
import type { Dataset } from "./dataset.js";
import type { DimValue } from "./aggregates.js";
import { requireExactRange } from "./aggregates.js";
import { isIdentifierColumn } from "./dataset.js";
import { didYouMean } from "../purpose/taxonomy.js";
import { allowsAggregate, combineRules, joinIsRequired, type AnalysisRule, type AnalysisRuleAggregation } from "./rules.js";
import { groupsPerUnit, noiseQuantities, templateMinimum, validateParams, type ParamValues, type Template } from "./template.js";

export type Side = "base" | "events";
export interface ColumnRef {
  side: Side;
  column: string;
}
export type ScalarOp = "eq" | "ne" | "lt" | "le" | "gt" | "ge";
/** A filter with its value bound: a constant, a list (`in`) or another column (cross filter). */
export type PlanFilter =
  | { side: Side; column: string; op: ScalarOp; value: string | number }
  | { side: Side; column: string; op: "in"; value: string[] }
  | { side: Side; column: string; op: ScalarOp; other: ColumnRef };

export type MeasureKind = "count" | "countSquares" | "unitsWithRows" | "sum" | "sumSquares";
/** A per-unit measure aggregated over units: Σ_units f(unit's rows in group). */
export interface Measure {
  name: string;
  kind: MeasureKind;
  /** For sum/sumSquares: the int column and the per-unit clamp bounds. */
  column?: ColumnRef;
  lo?: number;
  hi?: number;
}

/**
 * Name of the hidden measure an exact-mode (no noise) join plan carries: the distinct units
 * that contributed event rows to a group (after filters and row caps). The release thresholds
 * it like the unit count, then drops it. Not a valid template aggregate name, so it cannot
 * collide with one.
 */
export const EVENT_UNITS_MEASURE = "$unitsWithEvents";

/** The compiled, parameter-bound plan an engine executes. Plain data. */
export interface Plan {
  /** Table keys for `execute(plan, tables)`: `"owner/dataset"`. */
  base: { table: string; unit: string };
  events?: { table: string; joinOn: string; join: "left" | "inner" };
  filters: PlanFilter[];
  /** Per-unit cap of measured rows (events, or base rows without events), with a total order. */
  rowCap?: { cap: number; orderBy: string[] };
  groupBy: (ColumnRef & { as: string })[];
  measures: Measure[];
  /** Return the sorted unit ids per group (difference checks need them). */
  withUnits: boolean;
}

/** What the planner needs to know about the room. */
export interface PlanContext {
  dataset(owner: string, name: string): Dataset;
  rule(owner: string, name: string): AnalysisRule | undefined;
}

/** Result of checking a template against the room. */
export interface CheckedTemplate {
  /** Effective minimum distinct units per row (template vs rules: maximum wins). */
  minimum: number;
  /** Which source set the minimum: `"template"` or the dataset key of the strictest rule. */
  minimumFrom: string;
  /** Owners whose approval the template needs. */
  owners: string[];
  /**
   * Noised templates only: every output key, drawn from the declared schema (enum values,
   * bounded int ranges) rather than from the data. The release noises and thresholds every
   * key of this set, present in the data or not, so which keys appear (released or reported
   * as suppressed) says nothing about who is in the data.
   */
  domain?: DimValue[][];
}

/** Largest number of output keys a noised template may declare (cross product of its dimensions). */
export const MAX_NOISED_GROUPS = 10_000;

/**
 * The public key set of a noised template's dimensions: the cross product of each column's
 * declared values. `TEMPLATE_INVALID` when a dimension has no declared finite domain (a
 * free string or an unbounded number): its keys could only come from the data, and a key
 * that exists only because one person has it is released (or reported as suppressed) with
 * certainty, outside any ε.
 */
function noisedDomain(t: Template, base: Dataset): DimValue[][] {
  let keys: DimValue[][] = [[]];
  t.groupBy.forEach((g, i) => {
    const column = g.split(".")[1]!;
    const spec = base.schema.columns[column]!;
    let values: DimValue[];
    if (spec.type === "enum") values = [...new Set(spec.values)];
    else if (spec.type === "int" && spec.min !== undefined && spec.max !== undefined && spec.max - spec.min < MAX_NOISED_GROUPS)
      values = Array.from({ length: spec.max - spec.min + 1 }, (_, k) => spec.min! + k);
    else
      return invalid(
        `template.groupBy.${i}`,
        "a dimension with declared values (an enum, or an int with min and max) when the template adds noise: keys taken from the data reveal who is in it",
        `${column} (${spec.type}${spec.type === "int" ? " without a bounded range" : ""})`,
        "TEMPLATE_INVALID",
      );
    if (keys.length * values.length > MAX_NOISED_GROUPS)
      invalid(
        `template.groupBy.${i}`,
        `at most ${MAX_NOISED_GROUPS} output keys in total for a noised template`,
        keys.length * values.length,
        "TEMPLATE_INVALID",
      );
    keys = keys.flatMap((k) => values.map((v) => [...k, v]));
  });
  return keys;
}

function refuse(field: string, why: string, reason: string): never {
  throw new CleanRoomError("QUERY_NOT_APPROVED", `"${field}" ${why}`, { field, reason });
}

/** A column the dataset does not have: echo the name and list the valid ones (schema names are not personal data). */
function unknownColumn(field: string, alias: string, column: string, valid: string[]): never {
  throw new CleanRoomError(
    "TEMPLATE_INVALID",
    `"${field}" expected a column of ${alias}, got ${column}, which ${alias} does not have${didYouMean(column, valid)}; ` +
      `columns of ${alias}: ${valid.join(", ")}`,
    { field, expected: `a column of ${alias}`, got: column, columns: valid },
  );
}

/** What `rule` allows on `column`, in words: "SUM(value_cents)", "store_region as a dimension", … */
export function ruleAllows(rule: AnalysisRuleAggregation, column: string): string {
  const fns = rule.aggregateColumns.filter((a) => a.columnNames.includes(column)).map((a) => `${a.function}(${column})`);
  const parts = [...fns, ...(rule.dimensionColumns.includes(column) ? [`${column} as a dimension`] : [])];
  return parts.length ? parts.join(", ") : `nothing on ${column}`;
}

function resolver(t: Template, ctx: PlanContext) {
  const base = ctx.dataset(t.base.owner, t.base.dataset);
  const events = t.events ? ctx.dataset(t.events.owner, t.events.dataset) : undefined;
  return (ref: string, field: string): ColumnRef & { ds: Dataset } => {
    const [alias, column] = ref.split(".") as [string, string];
    const side: Side = alias === t.base.dataset ? "base" : "events";
    const ds = side === "base" ? base : events!;
    if (!Object.hasOwn(ds.schema.columns, column)) unknownColumn(field, alias, column, Object.keys(ds.schema.columns));
    if (isIdentifierColumn(ds.schema, column))
      refuse(field, "names an identifier column; identifiers are never output, filtered or aggregated", "identifier");
    return { side, column, ds };
  };
}

/**
 * Check a parsed template against schemas and rules (no parameters needed).
 *
 * @example
 * const { minimum, owners } = checkTemplate(t, { dataset: (o, n) => catalog.get(o, n), rule: (o, n) => rules.get(`${o}/${n}`) });
 */
export function checkTemplate(t: Template, ctx: PlanContext): CheckedTemplate {
  const col = resolver(t, ctx);
  const base = ctx.dataset(t.base.owner, t.base.dataset);
  const events = t.events ? ctx.dataset(t.events.owner, t.events.dataset) : undefined;
  if (t.events && events) {
    if (t.events.joinOn !== events.schema.privacyUnit)
      refuse("template.events.joinOn", "must be the events dataset's privacy-unit column (join on matched identity)", "join");
    if (base.schema.columns[base.schema.privacyUnit]!.type !== events.schema.columns[t.events.joinOn]!.type)
      invalid("template.events.joinOn", "the same type as the base privacy unit", t.events.joinOn, "TEMPLATE_INVALID");
  }
  const used: Record<Side, { dims: string[]; aggs: [string, "SUM" | "AVG"][]; filters: string[] }> = {
    base: { dims: [], aggs: [], filters: [] },
    events: { dims: [], aggs: [], filters: [] },
  };
  t.groupBy.forEach((g, i) => {
    const c = col(g, `template.groupBy.${i}`);
    if (t.events && c.side === "events")
      refuse(`template.groupBy.${i}`, "must be a base column when tables are joined (one group per unit)", "dimension");
    used[c.side].dims.push(c.column);
  });
  t.aggregates.forEach((a, i) => {
    if (!("column" in a)) return;
    const c = col(a.column, `template.aggregates.${i}.column`);
    if (c.ds.schema.columns[c.column]!.type !== "int")
      invalid(`template.aggregates.${i}.column`, "an int column", c.ds.schema.columns[c.column]!.type, "TEMPLATE_INVALID");
    requireExactRange(a.fn, a.bounds, `template.aggregates.${i}.bounds`, c.column); // exact sums fit 128 bits (issue 14.9)
    used[c.side].aggs.push([c.column, a.fn === "avg" ? "AVG" : "SUM"]);
  });
  t.filters.forEach((f, i) => {
    const c = col(f.column, `template.filters.${i}.column`);
    used[c.side].filters.push(c.column);
    const type = c.ds.schema.columns[c.column]!.type;
    const numeric = type === "int" || type === "number";
    if ("column" in f.value) {
      const o = col(f.value.column, `template.filters.${i}.value.column`);
      used[o.side].filters.push(o.column);
      const otype = o.ds.schema.columns[o.column]!.type;
      if (numeric !== (otype === "int" || otype === "number"))
        invalid(`template.filters.${i}.value.column`, `a column comparable with ${type}`, otype, "TEMPLATE_INVALID");
    } else {
      if (!numeric && !["eq", "ne", "in"].includes(f.op))
        invalid(`template.filters.${i}.op`, "eq, ne or in for a string column", f.op, "TEMPLATE_INVALID");
      const ptype = "param" in f.value ? t.params[f.value.param]!.type : typeof f.value.literal === "number" ? "int" : "enum";
      if (numeric !== (ptype === "int"))
        invalid(`template.filters.${i}.value`, `a ${numeric ? "number" : "string"} operand for ${type} column`, ptype, "TEMPLATE_INVALID");
    }
  });
  t.contribution?.orderBy.forEach((o, i) => {
    const c = col(o, `template.contribution.orderBy.${i}`);
    if (c.side !== (t.events ? "events" : "base"))
      invalid(`template.contribution.orderBy.${i}`, "a column of the measured (events) table", o, "TEMPLATE_INVALID");
  });
  if (t.threshold.style === "remainder" && groupsPerUnit(t) !== 1)
    invalid("template.threshold.style", "drop or error when a unit can fall in several groups", "remainder", "TEMPLATE_INVALID");
  if (t.threshold.style === "complementary") {
    if (t.groupBy.length !== 2)
      invalid("template.groupBy", "exactly two dimensions with threshold style complementary", `${t.groupBy.length}`, "TEMPLATE_INVALID");
    if (groupsPerUnit(t) !== 1)
      invalid("template.threshold.style", "drop or error when a unit can fall in several groups", "complementary", "TEMPLATE_INVALID");
    if (t.noise || t.differenceCheck)
      invalid(
        "template.threshold.style",
        "complementary only on exact (noise-free, no difference check) tables",
        "complementary",
        "TEMPLATE_INVALID",
      );
  }
  if (t.noise) noiseQuantities(t); // sensitivity must be bounded

  // Owners' analysis rules (AWS: every configured table needs an aggregation rule).
  const rules: Record<string, AnalysisRuleAggregation> = {};
  const sides: [Side, { owner: string; dataset: string }][] = [["base", t.base]];
  if (t.events) sides.push(["events", t.events]);
  for (const [side, ref] of sides) {
    const key = `${ref.owner}/${ref.dataset}`;
    const rule = ctx.rule(ref.owner, ref.dataset);
    if (!rule) refuse(`template.${side}`, `dataset ${key} has no analysis rule; it cannot be queried`, "rule");
    if (rule.type !== "AGGREGATION")
      refuse(`template.${side}`, `dataset ${key} has a LIST rule; aggregate templates may only use AGGREGATION-ruled tables`, "rule");
    rules[key] = rule;
    const u = used[side];
    for (const d of u.dims)
      if (!rule.dimensionColumns.includes(d))
        refuse(
          `template.groupBy`,
          `column ${d} is not a dimension column in the rule of ${key}; its dimension columns: ${rule.dimensionColumns.join(", ") || "none"}`,
          "rule",
        );
    for (const [c, fn] of u.aggs)
      if (!allowsAggregate(rule, c, fn))
        refuse(`template.aggregates`, `${fn}(${c}) is not allowed by the rule of ${key}; on ${c} it allows ${ruleAllows(rule, c)}`, "rule");
    const filterable = new Set([...rule.dimensionColumns, ...rule.aggregateColumns.flatMap((a) => a.columnNames)]);
    for (const c of u.filters)
      if (!filterable.has(c))
        refuse(`template.filters`, `column ${c} is neither a dimension nor an aggregate column in the rule of ${key}`, "rule");
    const joinCol = side === "base" ? ctx.dataset(ref.owner, ref.dataset).schema.privacyUnit : t.events?.joinOn;
    if (t.events && !rule.joinColumns.includes(joinCol!))
      refuse(`template.${side}`, `join column ${joinCol} is not a join column in the rule of ${key}`, "rule");
    if (!t.events && joinIsRequired(rule))
      refuse("template.events", `the rule of ${key} requires a join with another party's data`, "rule");
  }
  const combined = combineRules(rules);
  const own = templateMinimum(t);
  const owners = [...new Set(sides.map(([, r]) => r.owner))].sort();
  const domain = t.noise ? { domain: noisedDomain(t, base) } : {};
  return own >= combined.minimum
    ? { minimum: own, minimumFrom: "template", owners, ...domain }
    : { minimum: combined.minimum, minimumFrom: combined.minimumFrom, owners, ...domain };
}

/**
 * Compile a checked template with validated parameters into an engine plan.
 *
 * @example
 * const plan = compilePlan(t, validateParams(t, { region: "north" }), ctx, { withUnits: false });
 */
export function compilePlan(t: Template, params: ParamValues, ctx: PlanContext, opts: { withUnits?: boolean } = {}): Plan {
  const p = validateParams(t, params);
  const base = ctx.dataset(t.base.owner, t.base.dataset);
  const ref = (r: string): ColumnRef => {
    const [alias, column] = r.split(".") as [string, string];
    return { side: alias === t.base.dataset ? "base" : "events", column };
  };
  const filters: PlanFilter[] = t.filters.map((f) => {
    const c = ref(f.column);
    if ("column" in f.value) return { ...c, op: f.op as ScalarOp, other: ref(f.value.column) };
    const v = "param" in f.value ? p[f.value.param]! : f.value.literal;
    return f.op === "in" ? { ...c, op: "in", value: [...(v as string[])] } : { ...c, op: f.op, value: v as string | number };
  });
  const measured: Side = t.events ? "events" : "base";
  const measures: Measure[] = [];
  for (const a of t.aggregates) {
    if (a.fn === "countUnits") continue;
    if (a.fn === "count") measures.push({ name: a.name, kind: "count" });
    else if (a.fn === "countSquares") measures.push({ name: a.name, kind: "countSquares" });
    else if (a.fn === "countUnitsWithRows") measures.push({ name: a.name, kind: "unitsWithRows" });
    else
      measures.push({
        name: a.name,
        kind: a.fn === "sumSquares" ? "sumSquares" : "sum",
        column: ref(a.column),
        lo: a.bounds[0],
        hi: a.bounds[1],
      });
  }
  // Exact mode with an events table: the events owner's COUNT DISTINCT constraint applies to
  // every output row too (AWS: each table's constraint, the most restrictive wins). Otherwise
  // one buyer among k exposed people would have their exact purchases released. Noise mode
  // needs no such count: DP covers each person's events.
  if (t.events && !t.noise) measures.push({ name: EVENT_UNITS_MEASURE, kind: "unitsWithRows" });
  let rowCap: Plan["rowCap"];
  if (t.contribution) {
    // Total order: declared keys, then every measured column the plan reads (ties are then
    // identical rows for the plan's purposes, so both engines keep equivalent rows).
    const keys = t.contribution.orderBy.map((o) => ref(o).column);
    const extra = [...filters.flatMap((f) => [f, "other" in f ? f.other : f]), ...measures.map((m) => m.column), ...t.groupBy.map(ref)]
      .filter((c): c is ColumnRef => !!c && c.side === measured)
      .map((c) => c.column);
    rowCap = { cap: t.contribution.maxRowsPerUnit, orderBy: [...new Set([...keys, ...[...new Set(extra)].sort()])] };
  }
  return {
    base: { table: `${t.base.owner}/${t.base.dataset}`, unit: base.schema.privacyUnit },
    ...(t.events ? { events: { table: `${t.events.owner}/${t.events.dataset}`, joinOn: t.events.joinOn, join: t.events.join } } : {}),
    filters,
    ...(rowCap ? { rowCap } : {}),
    groupBy: t.groupBy.map((g) => ({ ...ref(g), as: g.split(".")[1]! })),
    measures,
    withUnits: opts.withUnits ?? false,
  };
}
