/**
 * Hashing and safe-text helpers shared by the purpose layer (grants, sealed-dataset headers,
 * the audit chain). Canonical JSON itself is `crypto/canonical.ts` (one implementation for
 * the whole library: sorted keys, no whitespace, refuses what JSON cannot say).
 *
 * `looksLikeIdentifier` is the purpose layer's canary guard: audit fields, grant justifications
 * and echoed names must never carry a personal identifier (email, phone-like digit run).
 */
import { sha256 } from "@noble/hashes/sha2.js";
import { bug } from "../errors.js";
import { hex, utf8 } from "../crypto/primitives.js";
import { canonicalJson } from "../crypto/canonical.js";

/** The one canonical JSON lives in `crypto/canonical.ts`; re-exported for the purpose layer's importers. */
export { canonicalJson };

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
export const SAFE_NAME = /^[A-Za-z][A-Za-z0-9_.:/-]{0,63}$/;

/** `s` if it is a safe name to echo, otherwise a type/length description. */
export function echoSafe(s: unknown): string {
  if (typeof s === "string" && SAFE_NAME.test(s) && !looksLikeIdentifier(s)) return `"${s}"`;
  return typeof s === "string" ? `string(length ${s.length})` : typeof s;
}
