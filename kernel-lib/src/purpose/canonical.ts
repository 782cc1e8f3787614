/**
 * Canonical JSON and safe-text helpers shared by the purpose layer (grants, sealed-dataset
 * headers, the audit chain).
 *
 * Canonical form (in the spirit of RFC 8785 JCS, restricted to what we emit): object keys
 * sorted by UTF-16 code units, no whitespace, only strings, finite numbers, booleans, null,
 * arrays and plain objects. `undefined` members are dropped; bigint and non-finite numbers are
 * refused, so two honest implementations hash the same bytes.
 *
 * `looksLikeIdentifier` is the purpose layer's canary guard: audit fields, grant justifications
 * and echoed names must never carry a personal identifier (email, phone-like digit run).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bug, invalid } from "../errors.js";
import { hex, utf8 } from "../crypto/primitives.js";

/**
 * Canonical JSON string of `value` (sorted keys, no whitespace).
 *
 * @example
 * canonicalJson({ b: 1, a: [true, null] }) // '{"a":[true,null],"b":1}'
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return "null";
  switch (typeof value) {
    case "string":
      return JSON.stringify(value);
    case "boolean":
      return value ? "true" : "false";
    case "number":
      if (!Number.isFinite(value)) return invalid("value", "finite number", value);
      return JSON.stringify(value);
    case "object": {
      if (Array.isArray(value)) return `[${value.map(canonicalJson).join(",")}]`;
      const proto = Object.getPrototypeOf(value);
      if (proto !== Object.prototype && proto !== null) return invalid("value", "plain object", value);
      const obj = value as Record<string, unknown>;
      const keys = Object.keys(obj).filter((k) => obj[k] !== undefined).sort();
      return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(",")}}`;
    }
    default:
      return invalid("value", "JSON value (string, number, boolean, null, array, object)", value);
  }
}

/**
 * SHA-256 (hex) of the canonical JSON of `value`.
 *
 * @example
 * sha256Canonical({ purpose: "marketing.advertising" }) // 64 hex chars
 */
export function sha256Canonical(value: unknown): string {
  return hex(sha256(utf8(canonicalJson(value))));
}

/** SHA-256 (hex) of a UTF-8 string. */
export function sha256Hex(s: string): string {
  if (typeof s !== "string") bug("sha256Hex expects a string");
  return hex(sha256(utf8(s)));
}

// one character either side of an "@" is what /[^\s@]+@[^\s@]+/ matched, without its
// quadratic backtracking on a long string with no "@" (issue 14 #4): fixed width, linear
const EMAIL_LIKE = /[^\s@]@[^\s@]/;
const DIGIT_RUN = /\d[\d\s().-]{5,}\d/;

/**
 * True when a string looks like a personal identifier (an email address, or a run of 7+
 * digits such as a phone number). Used to refuse such strings in audit fields and grants.
 *
 * @example
 * looksLikeIdentifier("jane.doe@example.com") // true
 * looksLikeIdentifier("retail-analyst")       // false
 */
export function looksLikeIdentifier(s: string): boolean {
  if (EMAIL_LIKE.test(s)) return true;
  const noDates = s.replace(/\d{4}-\d{2}-\d{2}/g, "_"); // "purchases_2026-11-25" is a name, not a phone number
  return (noDates.match(new RegExp(DIGIT_RUN.source, "g")) ?? []).some((run) => run.replace(/\D/g, "").length >= 7);
}

/** Names that are safe to echo in errors and store in the audit log. */
export const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_.:\/-]{0,63}$/;

/** `s` if it is a safe name to echo, otherwise a type/length description. */
export function echoSafe(s: unknown): string {
  if (typeof s === "string" && SAFE_NAME.test(s) && !looksLikeIdentifier(s)) return `"${s}"`;
  return typeof s === "string" ? `string(length ${s.length})` : typeof s;
}
