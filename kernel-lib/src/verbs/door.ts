/**
 * The door: the one validation step every notebook verb takes before it touches the lab.
 *
 * Purpose: a verb's WHOLE input is known to be well-formed before the first side effect
 * (budget charge, audit row, file, key). Two stages:
 *
 *   1. `snapshot` copies the input into fresh plain data, refusing what plain data cannot be:
 *      Proxies, accessor properties (getters run caller code — and could answer differently
 *      the second time), class instances other than plain objects/arrays/Uint8Array,
 *      functions, symbols, `__proto__`/`constructor`/`prototype` keys, non-finite numbers,
 *      and anything over the size limits (string length, array length, key count, depth).
 *      Work is linear in the size of the input and bounded by the limits.
 *   2. a zod strict schema per verb checks the snapshot's shape (unknown keys refused).
 *
 * The lab then only ever sees the snapshot, so what was validated is what runs (no TOCTOU
 * through getters). Every refusal is a `CleanRoomError` naming the field by its path; values
 * are never echoed (see the redaction rule in errors.ts). A door refusal carries
 * `details.door === true`: it happened before the lab was asked, so it has no side effect at all
 * (not even an audit entry).
 *
 * Threat model: a notebook cell (or code it pasted) handing the library hostile or malformed
 * objects; not an attacker with access to the process (who could call the lab directly).
 */
import { types } from "node:util";
import { z } from "zod";
import { CleanRoomError, describeValue, type ErrorCode } from "../errors.js";
import { Lab } from "../session.js";
import { RemoteRoom } from "../server/client.js";

/** Size limits at the door. Rows get their own (larger) array bound. */
export const DOOR_LIMITS = Object.freeze({
  /** Longest string anywhere in a request (names are bounded much tighter by their schemas). */
  string: 4096,
  /** Longest array outside `rows`. */
  array: 10_000,
  /** Most rows one call takes. */
  rows: 10_000_000,
  /** Most keys of one object. */
  keys: 256,
  /** Deepest nesting. */
  depth: 32,
});

const FORBIDDEN_KEYS = new Set(["__proto__", "constructor", "prototype"]);

function refuse(field: string, expected: string, got: string, code: ErrorCode = "INPUT_INVALID"): never {
  throw new CleanRoomError(code, `"${field}" expected ${expected}, got ${got}`, { field, expected, got, door: true });
}

const pathOf = (base: string, key: string | number): string =>
  typeof key === "number" ? `${base}[${key}]` : base ? `${base}.${key}` : key;

/**
 * Copy `value` into fresh plain data (see the module header), or throw INPUT_INVALID naming
 * the path. `rowsAt` names paths whose arrays may hold up to `DOOR_LIMITS.rows` elements.
 */
export function snapshot(value: unknown, field: string, rowsAt: ReadonlySet<string> = new Set()): unknown {
  const walk = (v: unknown, at: string, depth: number): unknown => {
    switch (typeof v) {
      case "string":
        if (v.length > DOOR_LIMITS.string) refuse(at, `a string of at most ${DOOR_LIMITS.string} characters`, `string(length ${v.length})`);
        return v;
      case "number":
        if (!Number.isFinite(v)) refuse(at, "a finite number", describeValue(v));
        return v;
      case "boolean":
      case "undefined":
      case "bigint":
        return v;
      case "function":
      case "symbol":
        return refuse(at, "plain data", typeof v);
    }
    if (v === null) return null;
    if (depth >= DOOR_LIMITS.depth) refuse(at, `nesting of at most ${DOOR_LIMITS.depth} levels`, "deeper nesting");
    if (types.isProxy(v)) refuse(at, "plain data", "a Proxy");
    if (v instanceof Uint8Array) return new Uint8Array(v);
    if (Array.isArray(v)) {
      const max = rowsAt.has(at) ? DOOR_LIMITS.rows : DOOR_LIMITS.array;
      if (Object.getPrototypeOf(v) !== Array.prototype) refuse(at, "a plain array", "an array subclass");
      const n = v.length;
      if (n > max) refuse(at, `an array of at most ${max} elements`, `array(length ${n})`);
      const out = new Array<unknown>(n);
      for (let i = 0; i < n; i++) {
        const d = Object.getOwnPropertyDescriptor(v, i);
        if (d && !("value" in d)) refuse(pathOf(at, i), "a data property", "a getter");
        out[i] = walk(d?.value, pathOf(at, i), depth + 1);
      }
      return out;
    }
    const proto = Object.getPrototypeOf(v) as unknown;
    if (proto !== Object.prototype && proto !== null) refuse(at, "a plain object", describeKind(v));
    const keys = Reflect.ownKeys(v as object);
    if (keys.length > DOOR_LIMITS.keys) refuse(at, `an object with at most ${DOOR_LIMITS.keys} keys`, `${keys.length} keys`);
    const out: Record<string, unknown> = {};
    for (const k of keys) {
      if (typeof k === "symbol") {
        const d = Object.getOwnPropertyDescriptor(v, k)!;
        if (d.enumerable) refuse(at, "string keys only", "a symbol key");
        continue; // e.g. the rich-output symbol of a result handed back in
      }
      if (k.length > 64) refuse(at, "keys of at most 64 characters", `a key of length ${k.length}`);
      if (FORBIDDEN_KEYS.has(k)) refuse(pathOf(at, k), "no such key (reserved name)", "a reserved key");
      const d = Object.getOwnPropertyDescriptor(v, k)!;
      if (!("value" in d)) refuse(pathOf(at, k), "a data property", "a getter");
      if (!d.enumerable) continue;
      out[k] = walk(d.value, pathOf(at, k), depth + 1);
    }
    return out;
  };
  try {
    return walk(value, field, 0);
  } catch (e) {
    if (e instanceof CleanRoomError) throw e;
    // anything else (a revoked Proxy hidden inside a Uint8Array view, a stack overflow): typed
    return refuse(field, "plain data", "an object that could not be read");
  }
}

function describeKind(v: unknown): string {
  if (v instanceof Map) return "a Map";
  if (v instanceof Set) return "a Set";
  if (v instanceof Date) return "a Date";
  if (v instanceof Lab) return "a Lab";
  return "a class instance";
}

/** The first argument of every verb: an open lab. */
export function requireLab(lab: unknown, verb: string): Lab {
  const expected = `the lab returned by openLab() as the first argument of ${verb}(lab, { … })`;
  if (typeof lab === "object" && lab !== null && types.isProxy(lab)) refuse("lab", expected, "a Proxy"); // even a revoked one
  if (typeof lab !== "object" || lab === null || !(lab instanceof Lab)) refuse("lab", expected, kindOf(lab));
  return lab as Lab;
}

/**
 * The first argument of a verb that also works on a joined room: a lab from openLab, or the
 * room handle from joinRoom (the verb then sends its validated input to the room's server).
 */
export function requireRoom(lab: unknown, verb: string): Lab | RemoteRoom {
  if (typeof lab === "object" && lab !== null && !types.isProxy(lab) && lab instanceof RemoteRoom) return lab;
  return requireLab(lab, verb);
}

/** Snapshot then parse with a strict zod schema; a failure names the first bad field. */
export function parseAtDoor<S extends z.ZodType>(schema: S, input: unknown, field: string, rowsAt?: ReadonlySet<string>): z.output<S> {
  const plain = snapshot(input, field, rowsAt);
  const r = schema.safeParse(plain);
  if (r.success) return r.data;
  const issue = r.error.issues[0]!;
  const path = issue.path.reduce<string>((p, k) => pathOf(p, typeof k === "number" ? k : String(k)), field);
  // unknown keys: name them (schema names), with what is allowed
  if (issue.code === "unrecognized_keys") {
    const keys = (issue as { keys: string[] }).keys.map((k) => (/^[A-Za-z][A-Za-z0-9_]{0,63}$/.test(k) ? k : "(unnamed)"));
    throw new CleanRoomError(
      "INPUT_INVALID",
      `"${path}" has unknown key(s) ${keys.join(", ")}${closest(keys[0]!, shapeKeys(schema, issue.path))}`,
      { field: path, expected: "only the documented keys", got: `unknown key(s) ${keys.join(", ")}`, door: true },
    );
  }
  const got = kindOf(
    issue.path.reduce<unknown>(
      (o, k) => (o && typeof o === "object" ? (o as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined),
      plain,
    ),
  );
  throw new CleanRoomError("INPUT_INVALID", `"${path}" expected ${expectedOf(issue)}, got ${got}`, {
    field: path,
    expected: expectedOf(issue),
    got,
    door: true,
  });
}

/**
 * Take one own data property out of a plain input object, before the door (a function, or
 * rows handled in chunks, is not snapshotted with the rest). The other properties are copied
 * as descriptors, so a getter among them stays a getter and the snapshot refuses it. A getter
 * at `key` is refused here. Anything that is not a plain object is returned unchanged
 * (`present: false`) for the door to refuse.
 *
 * @example splitOption({ a: 1, rows: [] }, "rows", "input") // { rest: { a: 1 }, value: [], present: true }
 */
export function splitOption(input: unknown, key: string, field: string): { rest: unknown; value?: unknown; present: boolean } {
  if (typeof input !== "object" || input === null || types.isProxy(input) || Object.getPrototypeOf(input) !== Object.prototype)
    return { rest: input, present: false };
  const d = Object.getOwnPropertyDescriptor(input, key);
  if (!d) return { rest: input, present: false };
  if (!("value" in d)) refuse(pathOf(field, key), "a data property", "a getter");
  const rest = {};
  for (const k of Reflect.ownKeys(input)) if (k !== key) Object.defineProperty(rest, k, Object.getOwnPropertyDescriptor(input, k)!);
  return { rest, value: d.value, present: true };
}

/** A `progress` option: a `(done, total, phase)` callback, or true / false (show / hide the bar). */
export type ProgressOption = ((done: number, total: number, phase: string) => void) | boolean;

/**
 * Take a `progress` option (a function or a boolean) out of the input; any other value is left
 * in place for the strict schema to refuse.
 */
export function splitProgress(input: unknown): { rest: unknown; progress?: ProgressOption } {
  const { rest, value, present } = splitOption(input, "progress", "input");
  if (!present || (typeof value !== "function" && typeof value !== "boolean")) return { rest: input };
  return { rest, progress: value as ProgressOption };
}

/**
 * The rows of an upload, checked as an array before they are read in chunks
 * ({@link parseRowsAtDoor}): a plain array (not a Proxy, not a subclass) of 1 to
 * `DOOR_LIMITS.rows` elements.
 */
export function rowsArrayAtDoor(rows: unknown, field: string): readonly unknown[] {
  if (typeof rows === "object" && rows !== null && types.isProxy(rows)) refuse(field, "plain data", "a Proxy");
  if (!Array.isArray(rows)) refuse(field, "an array of row objects", kindOf(rows));
  if (Object.getPrototypeOf(rows) !== Array.prototype) refuse(field, "a plain array", "an array subclass");
  if (rows.length > DOOR_LIMITS.rows) refuse(field, `an array of at most ${DOOR_LIMITS.rows} elements`, `array(length ${rows.length})`);
  if (rows.length < 1) refuse(field, "at least one row", "array(length 0)");
  return rows;
}

/**
 * Snapshot and parse rows `[from, to)` of a checked rows array (the door, one chunk at a time:
 * a caller can yield to the event loop between chunks). Paths name the row index.
 */
export function parseRowsAtDoor<S extends z.ZodType>(
  schema: S,
  rows: readonly unknown[],
  field: string,
  from: number,
  to: number,
): z.output<S>[] {
  const out: z.output<S>[] = [];
  for (let i = from; i < to; i++) {
    const d = Object.getOwnPropertyDescriptor(rows, i);
    if (d && !("value" in d)) refuse(pathOf(field, i), "a data property", "a getter");
    out.push(parseAtDoor(schema, d?.value, pathOf(field, i)));
  }
  return out;
}

/** A value's type and size, never its content — not even a number (errors.ts, the redaction rule). */
function kindOf(v: unknown): string {
  return typeof v === "number" ? (Number.isInteger(v) ? "an integer" : "a number") : describeValue(v);
}

function expectedOf(issue: z.core.$ZodIssue): string {
  // zod's messages describe the expectation, never the value
  return issue.message.replace(/^Invalid input: /, "").replace(/^expected /, "");
}

function shapeKeys(schema: z.ZodType, path: readonly PropertyKey[]): string[] {
  let s: unknown = schema;
  for (const k of path) {
    const def = (s as { def?: { shape?: Record<string, unknown>; element?: unknown; innerType?: unknown } }).def;
    s = typeof k === "number" ? def?.element : def?.shape?.[k as string];
    while ((s as { def?: { innerType?: unknown } })?.def?.innerType) s = (s as { def: { innerType: unknown } }).def.innerType;
  }
  while ((s as { def?: { innerType?: unknown } })?.def?.innerType) s = (s as { def: { innerType: unknown } }).def.innerType;
  const shape = (s as { def?: { shape?: Record<string, unknown> } })?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

/** " (did you mean x?)" for a near miss among the schema's key names (cheap: ≤ 64-char names). */
function closest(key: string, names: string[]): string {
  if (!names.length || key.length > 64) return names.length ? ` (allowed: ${names.join(", ")})` : "";
  let best = "",
    bestD = Infinity;
  for (const n of names) {
    const d = editDistance(key.toLowerCase(), n.toLowerCase());
    if (d < bestD) {
      best = n;
      bestD = d;
    }
  }
  return bestD <= Math.max(2, Math.floor(key.length / 3)) ? ` (did you mean ${best}?)` : ` (allowed: ${names.join(", ")})`;
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}

// ---------------------------------------------------------------- shared schema pieces

/** A party or analyst short name, as the room registers them. */
export const shortName = z
  .string()
  .max(32)
  .regex(/^[a-z][a-z0-9_-]{0,31}$/, "a short name [a-z][a-z0-9_-]{0,31}");
/** A party: its name or the object `addParty` returned. Normalised to the name. */
export const partyArg = z.union([shortName, z.strictObject({ name: shortName }).transform((p) => p.name)]);
/** A purpose name (fideslang data use), e.g. "measurement" or "marketing.advertising". */
export const purposeName = z
  .string()
  .max(128)
  .regex(/^[a-z][a-z0-9_.]{0,127}$/, 'a purpose name, e.g. "measurement"');
/** A dataset or column name. */
export const datasetName = z
  .string()
  .max(64)
  .regex(/^[A-Za-z][A-Za-z0-9_]{0,63}$/, "a name [A-Za-z][A-Za-z0-9_]{0,63}");
/** A template (plan data, validated by the clean room) or the hash of an approved one. */
export const templateArg = z.union([z.string().max(128), z.record(z.string(), z.unknown())]);
/** Query parameters: names → plain values (checked against the template's declarations). */
export const paramsArg = z.record(z.string().max(64), z.unknown());
