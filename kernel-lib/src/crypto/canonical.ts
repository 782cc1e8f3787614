/**
 * The one canonical JSON of cleanroom-lab: the bytes that are hashed or signed (template
 * approval hashes, purpose grants, the audit chain, enclave measurements and attestation
 * documents).
 *
 * Canonical form (in the spirit of RFC 8785 JCS, restricted to what we emit): object keys
 * sorted by UTF-16 code units, no whitespace, strings and numbers as `JSON.stringify` writes
 * them. Only what JSON can say is accepted: strings, finite numbers, booleans, null, dense
 * arrays and plain objects (prototype `Object.prototype` or `null`). An object member whose
 * value is `undefined` is omitted (as `JSON.stringify` does); `-0` is written `0` (JSON has
 * one zero). Everything else is refused with `PARAM_INVALID` naming the path of the
 * offending value (`value.a[2].b`), never the value itself: NaN and ±Infinity, `undefined`
 * outside an object member, functions, symbols, bigint (no encoding is chosen: callers send
 * decimal strings), non-plain objects (Date, Map, Set, typed arrays, class instances, boxed
 * primitives), symbol-keyed or accessor members, sparse arrays and cycles.
 *
 * Threat model: two honest parties must hash the same bytes for the same value, and a value
 * that would silently serialise to something else (NaN → null, a Date → a string, a Map →
 * `{}`) must not feed a hash or a signature. Output for every accepted value is
 * byte-identical to the three copies this module replaced, so stored hashes, signatures and
 * golden vectors stay valid.
 */
import { CleanRoomError } from "../errors.js";

/** A JSON value that canonicalises unambiguously (no undefined, no NaN, no bigint). */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [k: string]: JsonValue };

function refuse(path: string, expected: string, got: string): never {
  throw new CleanRoomError("PARAM_INVALID", `"${path}" expected ${expected}, got ${got}`, { field: path, expected, got });
}

/** Type-only description (never the content) of a refused value. */
function kindOf(v: unknown): string {
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : v > 0 ? "Infinity" : "-Infinity";
  if (typeof v !== "object" || v === null) return typeof v;
  const name = (Object.getPrototypeOf(v) as { constructor?: { name?: unknown } } | null)?.constructor?.name;
  return typeof name === "string" && /^[A-Za-z_$][\w$]{0,63}$/.test(name) ? `an instance of ${name}` : "a non-plain object";
}

function enc(value: unknown, path: string, stack: Set<object>): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) refuse(path, "finite number", kindOf(value));
      return JSON.stringify(value); // -0 → "0"
    case "object":
      break;
    default:
      return refuse(path, "JSON value (null, boolean, finite number, string, array, plain object)", typeof value);
  }
  const obj = value as object;
  if (stack.has(obj)) refuse(path, "an acyclic value", "a cycle");
  stack.add(obj);
  let out: string;
  if (Array.isArray(obj)) {
    const parts = new Array<string>(obj.length);
    for (let i = 0; i < obj.length; i++) {
      if (!Object.hasOwn(obj, i)) refuse(`${path}[${i}]`, "a dense array", "a hole");
      parts[i] = enc(obj[i], `${path}[${i}]`, stack);
    }
    out = `[${parts.join(",")}]`;
  } else {
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) refuse(path, "plain object, array or primitive", kindOf(obj));
    if (Object.getOwnPropertySymbols(obj).length > 0) refuse(path, "string keys only", "a symbol key");
    const rec = obj as Record<string, unknown>;
    const parts: string[] = [];
    for (const k of Object.keys(rec).sort()) {
      const d = Object.getOwnPropertyDescriptor(rec, k)!;
      if (!("value" in d)) refuse(`${path}.${k}`, "a data property", "an accessor");
      if (d.value === undefined) continue;
      parts.push(`${JSON.stringify(k)}:${enc(d.value, `${path}.${k}`, stack)}`);
    }
    out = `{${parts.join(",")}}`;
  }
  stack.delete(obj);
  return out;
}

/**
 * Canonical JSON string of `value` (sorted keys, no whitespace); `field` names the root in
 * errors.
 *
 * @example
 * canonicalJson({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 * canonicalJson({ a: NaN }) // throws PARAM_INVALID: "value.a" expected finite number, got NaN
 */
export function canonicalJson(value: unknown, field = "value"): string {
  return enc(value, field, new Set());
}
