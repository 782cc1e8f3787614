/**
 * Query templates: plans as data (never SQL text), canonicalised and SHA-256 hashed.
 *
 * A template names its inputs (a base dataset whose privacy-unit column defines the
 * population and, optionally, an events dataset joined on matched identity), filters with
 * typed parameter slots and allowed ranges, group-by dimensions, aggregates with clamp
 * bounds and per-unit contribution limits, an output threshold and optional DP noise.
 * Every data owner approves the template's hash; only an approved hash runs, so changing a
 * filter or adding a column changes the hash and is refused (`QUERY_NOT_APPROVED`), while
 * a parameter outside its declared range is refused with `PARAM_INVALID` naming it.
 *
 * The privacy cost is a pure function of the template (Snowflake style: per noised
 * aggregate, GROUP BY free because groups are disjoint per unit), so it is known before
 * anything runs. Threat model: the analyst is curious and may submit any template JSON;
 * parsing is strict and all checks happen before the ledger is charged.
 * Anchors: AWS analysis templates, ADH privacy checks, Snowflake per-aggregate DP cost
 * (reference/clean-room-systems.md §1, §8).
 */
import { z } from "zod";
import { sha256 } from "@noble/hashes/sha2.js";
import { CleanRoomError, invalid } from "../errors.js";
import { hex, utf8 } from "../crypto/primitives.js";
import { canonicalJson } from "../crypto/canonical.js";
import { rat, ratFromDecimal, ratMul, type Rational } from "../dp/rational.js";
import type { PrivacyCost } from "../dp/accountant.js";
import { countSensitivity, sumSensitivity } from "../dp/bounding.js";
import { costOf, mechanism, mechanisms, registryVersion, sensitivityFor, type NoiseMechanism } from "../dp/registry.js";
import { AWS_MAX_THRESHOLD, AWS_MIN_THRESHOLD } from "./rules.js";
import { didYouMean } from "../purpose/taxonomy.js";

/** Threshold presets matching the anchors (ADH, fbpcs, AWS). */
export const THRESHOLD_PRESETS = {
  adh_diffcheck: 50,
  adh_noise: 20,
  adh_clicks_conversions: 10,
  fbpcs_kanon: 100,
  aws_min: AWS_MIN_THRESHOLD,
  aws_max: AWS_MAX_THRESHOLD,
} as const;
export type ThresholdPreset = keyof typeof THRESHOLD_PRESETS;

const Name = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}$/, "expected an identifier [A-Za-z_][A-Za-z0-9_]*");
const ColRef = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,63}\.[A-Za-z_][A-Za-z0-9_]{0,63}$/, 'expected "dataset.column"');
const SafeInt = z.number().int().min(-Number.MAX_SAFE_INTEGER).max(Number.MAX_SAFE_INTEGER);
const DecimalString = z.string().regex(/^\d+(\.\d+)?([eE][+-]?\d+)?$|^\d+\/\d+$/, 'expected a positive decimal string such as "0.1"');
/**
 * A budget amount: a decimal string (kept as written, so canonical forms and approved hashes
 * do not change), or a finite JS number ≥ 0, converted EXACTLY to the decimal string of its
 * shortest round trip, `String(x)` (0.1 → "0.1", 1e-7 → "1e-7"): the number the user typed,
 * not the binary double's expansion. `{ epsilonPerAggregate: 0.1 }` and `"0.1"` are the same
 * template with the same hash.
 */
const Decimal = z.union([
  DecimalString,
  z
    .number()
    .refine((x) => Number.isFinite(x) && x >= 0, 'expected a positive decimal string such as "0.1" or a finite number ≥ 0')
    .transform((x) => decimalFromNumber(x)),
]);

/**
 * The exact decimal string of a finite number ≥ 0: its shortest round-trip form `String(x)`
 * (how JS prints it), so `0.1` means the rational 1/10. The rule for every budget amount
 * given as a number.
 *
 * @example decimalFromNumber(0.1) // "0.1"
 */
export function decimalFromNumber(x: number): string {
  if (typeof x !== "number" || !Number.isFinite(x) || x < 0) invalid("value", "a finite number ≥ 0", x, "DP_PARAM_INVALID");
  return String(x);
}

const ParamSpec = z.discriminatedUnion("type", [
  z.strictObject({ type: z.literal("int"), min: SafeInt, max: SafeInt }),
  z.strictObject({ type: z.literal("enum"), values: z.array(z.string()).min(1) }),
  z.strictObject({ type: z.literal("enumList"), values: z.array(z.string()).min(1), maxItems: z.number().int().positive().optional() }),
]);
export type ParamSpec = z.infer<typeof ParamSpec>;

const Operand = z.union([
  z.strictObject({ param: Name }),
  z.strictObject({ literal: z.union([z.string(), SafeInt, z.array(z.string()).min(1)]) }),
  z.strictObject({ column: ColRef }),
]);
export type Operand = z.infer<typeof Operand>;

export const FILTER_OPS = ["eq", "ne", "lt", "le", "gt", "ge", "in"] as const;
const Filter = z.strictObject({ column: ColRef, op: z.enum(FILTER_OPS), value: Operand });
export type Filter = z.infer<typeof Filter>;

const Bounds = z.tuple([SafeInt, SafeInt]);
const Aggregate = z.discriminatedUnion("fn", [
  z.strictObject({ name: Name, fn: z.literal("countUnits") }),
  z.strictObject({ name: Name, fn: z.literal("countUnitsWithRows") }),
  z.strictObject({ name: Name, fn: z.literal("count") }),
  /** Σ over units of (rows per unit)² — fbpcs `testNumConvSquared`, for conversion variance. */
  z.strictObject({ name: Name, fn: z.literal("countSquares") }),
  z.strictObject({ name: Name, fn: z.literal("sum"), column: ColRef, bounds: Bounds }),
  z.strictObject({ name: Name, fn: z.literal("sumSquares"), column: ColRef, bounds: Bounds }),
  z.strictObject({ name: Name, fn: z.literal("avg"), column: ColRef, bounds: Bounds }),
]);
export type Aggregate = z.infer<typeof Aggregate>;

const InputRef = z.strictObject({ owner: z.string().min(1).max(64), dataset: Name });

/**
 * A template's noise: `{ mechanism: <template name>, <budget field>: "<decimal>" }`, e.g.
 * `{ mechanism: "laplace", epsilonPerAggregate: "0.1" }` or `{ mechanism: "gaussian",
 * rhoPerAggregate: "0.01" }`: one shape per mechanism of the registry (dp/registry.ts).
 */
export type TemplateNoise = { mechanism: string } & { [budgetField: string]: string };
/** A template's noise as written: the budget field may be a decimal string or a number (see `Decimal`). */
export type TemplateNoiseInput = { mechanism: string } & { [budgetField: string]: string | number };

/** The discriminated union over the registered mechanisms. */
function noiseSchema(): z.ZodType<TemplateNoise, TemplateNoiseInput> {
  const options = mechanisms().map((m) => z.strictObject({ mechanism: z.literal(m.templateName), [m.budgetField]: Decimal }));
  type Option = (typeof options)[number];
  return z.discriminatedUnion("mechanism", options as unknown as [Option, ...Option[]]) as unknown as z.ZodType<
    TemplateNoise,
    TemplateNoiseInput
  >;
}

/** zod schema of a query template (strict everywhere) whose noise is one of `noise`'s shapes. */
const schemaWith = (noise: z.ZodType<TemplateNoise, TemplateNoiseInput>) =>
  z.strictObject({
    version: z.literal(1),
    name: z.string().min(1).max(100),
    /** Population table: one row per privacy unit when `events` is set. */
    base: InputRef,
    /** Optional second party's table, joined on matched identity (base unit = events.joinOn). */
    events: z.strictObject({ owner: z.string().min(1).max(64), dataset: Name, joinOn: Name, join: z.enum(["left", "inner"]) }).optional(),
    params: z.record(Name, ParamSpec).default({}),
    filters: z.array(Filter).max(16).default([]),
    groupBy: z.array(ColRef).max(4).default([]),
    /** Per-unit cap on measured rows (events, or base rows in single-input mode), fbpcs-style. */
    contribution: z
      .strictObject({ maxRowsPerUnit: z.number().int().min(1).max(1000), orderBy: z.array(ColRef).max(4).default([]) })
      .optional(),
    aggregates: z.array(Aggregate).min(1).max(16),
    threshold: z.strictObject({
      minimum: z.union([
        z.number().int().min(AWS_MIN_THRESHOLD).max(AWS_MAX_THRESHOLD),
        z.enum(Object.keys(THRESHOLD_PRESETS) as [ThresholdPreset, ...ThresholdPreset[]]),
      ]),
      /**
       * `complementary`: two dimensions, released with their margins; small cells and the cells that
       * would reveal them by subtraction are withheld (cleanroom/suppression.ts).
       */
      style: z.enum(["drop", "remainder", "error", "complementary"]),
    }),
    noise: noise.optional(),
    /** ADH-style difference check against this collaboration's earlier results. */
    differenceCheck: z.strictObject({ k: z.number().int().min(AWS_MIN_THRESHOLD).max(AWS_MAX_THRESHOLD) }).optional(),
  });
export type Template = z.infer<ReturnType<typeof schemaWith>>;
export type TemplateInput = z.input<ReturnType<typeof schemaWith>>;

/** `T` with every literal type widened to its base type and tuples to arrays: what `const t = { … }` infers. */
type Widened<T> = T extends string
  ? string
  : T extends number
    ? number
    : T extends boolean
      ? boolean
      : T extends readonly (infer U)[]
        ? readonly Widened<U>[]
        : T extends object
          ? { [K in keyof T]: Widened<T[K]> }
          : T;
/**
 * A template as a cell writes it without an annotation: the shape of {@link TemplateInput}
 * (an inline literal's field names are still checked by the compiler) with its literal values
 * widened (`version: number`, `fn: string`, `bounds: number[]`). Every verb that takes a
 * template accepts it; the room checks the values (`fn: "avgg"` is refused naming the field and the
 * allowed functions). Annotate
 * `const t: TemplateInput = { … }` to have the editor check the values too.
 */
export type TemplateLike = Widened<TemplateInput>;

let schemaCache: { version: number; schema: ReturnType<typeof schemaWith> } | null = null;
/** The zod schema of a query template for the mechanisms registered now (dp/registry.ts). */
export function templateSchema(): ReturnType<typeof schemaWith> {
  if (schemaCache?.version !== registryVersion()) schemaCache = { version: registryVersion(), schema: schemaWith(noiseSchema()) };
  return schemaCache.schema;
}

/**
 * A template parsed at the boundary: the zod output with the structural checks passed,
 * deeply frozen, carrying its approval `hash` and `canonical` JSON, computed once (both
 * non-enumerable, so the value's own JSON and canonical form are exactly the template's).
 * `parseTemplate`, `templateHash`, `templateCost`, the approvals registry and `prepareQuery`
 * take it as is instead of parsing again; a spread copy (`{ ...t, name }`) is a new input.
 */
export type ParsedTemplate = Template & {
  /** SHA-256 (hex) of `cleanroom-lab/template/v1\n` + `canonical`: what every owner approves. */
  readonly hash: string;
  /** Canonical JSON of the template (crypto/canonical.ts), as stored with approvals. */
  readonly canonical: string;
};

/** Values this module produced (frozen, so unchanged since they were checked). */
const parsedTemplates = new WeakSet<object>();

/** True for a value `parseTemplate` returned. */
export function isParsedTemplate(x: unknown): x is ParsedTemplate {
  return typeof x === "object" && x !== null && parsedTemplates.has(x);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === "object" && !Object.isFrozen(o)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

function seal(t: Template): ParsedTemplate {
  const canonical = canonicalJson(t, "template");
  const hash = hex(sha256(utf8(`cleanroom-lab/template/v1\n${canonical}`)));
  Object.defineProperties(t, { hash: { value: hash, enumerable: false }, canonical: { value: canonical, enumerable: false } });
  deepFreeze(t);
  parsedTemplates.add(t);
  return t as ParsedTemplate;
}

/** Parameter values as bound at run time. */
export type ParamValues = Record<string, string | number | string[]>;

/**
 * Parse a template at the boundary (`TEMPLATE_INVALID` naming the field), plus the
 * structural checks that need no dataset: unique names, known aliases, declared params.
 * Returns a frozen `ParsedTemplate` with its hash; given one, returns it unchanged.
 *
 * @example
 * const t = parseTemplate({ version: 1, name: "spend by region", base: { owner: "retailer", dataset: "purchases" },
 *   groupBy: ["purchases.store_region"], aggregates: [{ name: "spend", fn: "sum", column: "purchases.value_cents", bounds: [0, 100000] }],
 *   threshold: { minimum: "adh_diffcheck", style: "drop" } });
 */
export function parseTemplate(input: unknown): ParsedTemplate {
  if (isParsedTemplate(input)) return input;
  const r = templateSchema().safeParse(input);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const field = ["template", ...issue.path.map(String)].join(".");
    throw new CleanRoomError("TEMPLATE_INVALID", `"${field}" ${issue.message}`, { field });
  }
  const t = r.data;
  const aliases = new Set([t.base.dataset]);
  if (t.events) {
    if (t.events.dataset === t.base.dataset)
      invalid("template.events.dataset", "a dataset name different from the base", t.events.dataset, "TEMPLATE_INVALID");
    aliases.add(t.events.dataset);
  }
  const checkRef = (ref: string, field: string) => {
    if (!aliases.has(ref.split(".")[0]!)) invalid(field, `a column of ${[...aliases].join(" or ")}`, ref, "TEMPLATE_INVALID");
  };
  const names = new Set<string>();
  t.groupBy.forEach((g, i) => {
    checkRef(g, `template.groupBy.${i}`);
    const out = g.split(".")[1]!;
    if (names.has(out)) invalid(`template.groupBy.${i}`, "distinct output column names", out, "TEMPLATE_INVALID");
    names.add(out);
  });
  t.aggregates.forEach((a, i) => {
    if (names.has(a.name))
      invalid(`template.aggregates.${i}.name`, "a name unique among dimensions and aggregates", a.name, "TEMPLATE_INVALID");
    names.add(a.name);
    if ("column" in a) checkRef(a.column, `template.aggregates.${i}.column`);
    if ("bounds" in a && a.bounds[0] > a.bounds[1])
      invalid(`template.aggregates.${i}.bounds`, "[lo, hi] with lo <= hi", a.bounds[1], "TEMPLATE_INVALID");
  });
  t.filters.forEach((f, i) => {
    checkRef(f.column, `template.filters.${i}.column`);
    if ("column" in f.value) checkRef(f.value.column, `template.filters.${i}.value.column`);
    // own properties only: `in` also finds Object.prototype members ("toString", "constructor",
    // "__proto__"), which then bound a built-in function/object as the filter value
    if ("param" in f.value && !Object.hasOwn(t.params, f.value.param))
      invalid(`template.filters.${i}.value.param`, "a declared parameter", f.value.param, "TEMPLATE_INVALID");
    const isList =
      ("param" in f.value && t.params[f.value.param]!.type === "enumList") || ("literal" in f.value && Array.isArray(f.value.literal));
    if ((f.op === "in") !== isList)
      invalid(`template.filters.${i}.op`, f.op === "in" ? "a list operand for 'in'" : "a scalar operand", f.op, "TEMPLATE_INVALID");
  });
  t.contribution?.orderBy.forEach((o, i) => checkRef(o, `template.contribution.orderBy.${i}`));
  // A difference check filters or refuses on EXACT unit sets; next to noise that decision is
  // a certain, un-noised signal about who is in the data (a row filtered because it differs
  // from an earlier one by 1..k-1 people), outside the charged ε. ADH likewise runs either
  // difference checks or noise injection, never both.
  if (t.noise && t.differenceCheck)
    invalid(
      "template.differenceCheck",
      "no difference check on a noised template (its exact-set decision would leak outside ε; noise already covers differencing)",
      t.differenceCheck.k,
      "TEMPLATE_INVALID",
    );
  for (const [name, p] of Object.entries(t.params))
    if (p.type === "int" && p.min > p.max) invalid(`template.params.${name}.max`, `>= min (${p.min})`, p.max, "TEMPLATE_INVALID");
  return seal(t);
}

/**
 * SHA-256 (hex) of the canonical form of a parsed template (defaults filled in), so two
 * spellings of the same plan share one hash and any change of meaning changes it.
 *
 * @example
 * templateHash(parseTemplate(json)) // "3f1c…" (64 hex chars)
 */
export function templateHash(t: ParsedTemplate | Template | TemplateInput): string {
  return parseTemplate(t).hash;
}

/** The template's own minimum threshold (preset resolved). */
export function templateMinimum(t: Template): number {
  const m = t.threshold.minimum;
  return typeof m === "number" ? m : THRESHOLD_PRESETS[m];
}

/**
 * Validate run-time parameter values against the template's typed slots; `PARAM_INVALID`
 * naming `params.<name>` for a missing, extra, mistyped or out-of-range value.
 *
 * @example
 * validateParams(t, { minDay: 0 }) // → { minDay: 0 }; validateParams(t, { minDay: -5 }) throws PARAM_INVALID
 */
export function validateParams(t: Template, params: unknown): ParamValues {
  if (params === undefined) params = {};
  if (params === null || typeof params !== "object" || Array.isArray(params)) invalid("params", "an object of parameter values", params);
  const p = params as Record<string, unknown>;
  for (const k of Object.keys(p))
    if (!Object.hasOwn(t.params, k)) {
      const declared = Object.keys(t.params);
      const name = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(k) ? k : "(unnamed)"; // parameter names are schema; a garbage key is not echoed
      throw new CleanRoomError(
        "PARAM_INVALID",
        `"params.${k}" expected a parameter declared by the template, got an undeclared parameter ${name}${didYouMean(k, declared)}; ` +
          `declared: ${declared.join(", ") || "none"}`,
        { field: `params.${k}`, expected: "a parameter declared by the template", got: "an undeclared parameter", declared },
      );
    }
  const out: ParamValues = {};
  for (const [name, spec] of Object.entries(t.params)) {
    const v = p[name];
    const field = `params.${name}`;
    if (spec.type === "int") {
      if (typeof v !== "number" || !Number.isSafeInteger(v)) invalid(field, "an integer", v);
      if (v < spec.min || v > spec.max) invalid(field, `integer in [${spec.min}, ${spec.max}]`, v);
      out[name] = v;
    } else if (spec.type === "enum") {
      if (typeof v !== "string" || !spec.values.includes(v)) invalid(field, `one of ${spec.values.join(", ")}`, v);
      out[name] = v;
    } else {
      if (!Array.isArray(v) || v.length === 0) invalid(field, "a non-empty list", v);
      if (spec.maxItems !== undefined && v.length > spec.maxItems) invalid(field, `at most ${spec.maxItems} items`, v);
      if (new Set(v).size !== v.length) invalid(field, "distinct items", v);
      v.forEach((x, i) => {
        if (typeof x !== "string" || !spec.values.includes(x)) invalid(`${field}.${i}`, `one of ${spec.values.join(", ")}`, x);
      });
      out[name] = [...(v as string[])];
    }
  }
  return out;
}

/** Maximum number of output groups one privacy unit can contribute to. */
export function groupsPerUnit(t: Template): number | null {
  if (t.groupBy.length === 0) return 1;
  if (t.events) return 1; // dimensions come from the one base row of each unit (checked in plan.ts)
  return t.contribution?.maxRowsPerUnit ?? null;
}

/** One noised quantity of a template: which aggregate, its per-unit L1 bound and L2². */
export interface NoiseQuantity {
  /** Output aggregate name, or `"units"` for the distinct-unit count used by the threshold. */
  name: string;
  /** L1 sensitivity over all groups (per-group bound × groups per unit). */
  l1: bigint;
  /** Squared L2 sensitivity over all groups. */
  l2Squared: bigint;
}

const absBig = (x: number) => BigInt(Math.abs(x));

/**
 * The noised quantities of a template: the unit count (threshold decisions use its noisy
 * value) plus one per aggregate (`countUnits` reuses the unit count; `avg` noises its sum).
 * `TEMPLATE_INVALID` when a sensitivity is unbounded (e.g. `count` without a row cap).
 */
export function noiseQuantities(t: Template): NoiseQuantity[] {
  const g = groupsPerUnit(t);
  if (g === null)
    invalid(
      "template.contribution.maxRowsPerUnit",
      "a per-unit row cap when grouping a single table with noise",
      undefined,
      "TEMPLATE_INVALID",
    );
  // sensitivities from dp/bounding.ts: a unit is in at most g groups; per group it adds at
  // most `rows` rows (counts) or a total clamped to [0, perGroup] (sums, squares)
  const count = (name: string, rows: number): NoiseQuantity => ({
    name,
    ...countSensitivity({ maxGroupsPerUnit: g, maxRowsPerGroupPerUnit: rows }),
  });
  const sum = (name: string, perGroup: bigint): NoiseQuantity => {
    if (perGroup < 1n)
      invalid(`template.aggregates.${name}.bounds`, "bounds with max(|lo|, |hi|) >= 1", Number(perGroup), "TEMPLATE_INVALID");
    return { name, ...sumSensitivity({ maxGroupsPerUnit: g, maxRowsPerGroupPerUnit: 1 }, 0n, perGroup) };
  };
  const out: NoiseQuantity[] = [count("units", 1)];
  for (const a of t.aggregates) {
    if (a.fn === "countUnits") continue;
    if (a.fn === "countUnitsWithRows") out.push(count(a.name, 1));
    else if (a.fn === "count" || a.fn === "countSquares") {
      const cap = t.contribution?.maxRowsPerUnit;
      if (cap === undefined)
        invalid("template.contribution.maxRowsPerUnit", "a per-unit row cap for a noised count", undefined, "TEMPLATE_INVALID");
      out.push(a.fn === "count" ? count(a.name, cap) : sum(a.name, BigInt(cap) * BigInt(cap)));
    } else {
      const m = absBig(Math.max(Math.abs(a.bounds[0]), Math.abs(a.bounds[1])));
      out.push(sum(a.name, a.fn === "sumSquares" ? m * m : m));
    }
  }
  return out;
}

/** Per-quantity noise parameters of the template's mechanism (e.g. Laplace scale, Gaussian σ²). */
export interface NoiseParams extends NoiseQuantity {
  /** The mechanism (a registry value: sample, variance, tail, names). */
  mechanism: NoiseMechanism;
  /** Its sensitivity for this quantity (L1 or squared L2, as the mechanism needs). */
  sensitivity: bigint;
  /** Its noise parameter: e.g. Laplace scale Δ₁/ε, or Gaussian σ² = Δ₂²/(2ρ). */
  scale: Rational;
}

/** The template's mechanism and per-aggregate budget (ε or ρ), or `null` without noise. */
export function templateNoise(t: Template): { mechanism: NoiseMechanism; budget: Rational } | null {
  if (!t.noise) return null;
  const m = mechanism(t.noise.mechanism, "template.noise.mechanism");
  return { mechanism: m, budget: ratFromDecimal(t.noise[m.budgetField]!, `template.noise.${m.budgetField}`) };
}

/** Noise parameters for every quantity, or `null` when the template has no noise. */
export function noiseParams(t: Template): NoiseParams[] | null {
  const n = templateNoise(t);
  if (!n) return null;
  return noiseQuantities(t).map((x) => {
    const sensitivity = sensitivityFor(n.mechanism, x);
    return { ...x, mechanism: n.mechanism, sensitivity, scale: n.mechanism.parameterFor(n.budget, sensitivity) };
  });
}

/**
 * Privacy cost of one run, computed before running: (number of noised quantities) × the
 * per-aggregate ε (pure DP) or ρ (zCDP). `null` for a threshold-only template (no noise,
 * no DP claim). Params are validated (a bad value is refused before any charge).
 *
 * @example
 * templateCost(t, { minDay: 0 }) // { kind: "pureDp", epsilon: { num: 3n, den: 10n } } for 3 quantities at ε=0.1
 */
export function templateCost(template: Template | TemplateInput, params: unknown): PrivacyCost | null {
  const t = parseTemplate(template);
  validateParams(t, params);
  const n = templateNoise(t);
  if (!n) return null;
  return costOf(n.mechanism, ratMul(rat(noiseQuantities(t).length), n.budget));
}
