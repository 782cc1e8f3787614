/**
 * Typed errors for every layer of cleanroom-lab.
 *
 * Every refusal the library makes is a `CleanRoomError` carrying one code from the closed
 * union below, the offending field (when there is one) and what was expected. Errors are
 * raised before any side effect: a caller that catches one may assume no budget was
 * charged and nothing was written, except the refusal's own audit entry.
 *
 * The redaction rule (one rule for every message, `details.field`, `details.got` and trace):
 *
 *   - SCHEMA is echoed: names the caller or the schema declared — field paths, column,
 *     parameter, dataset, party, analyst and purpose names, template hashes — because they
 *     say what to fix. An unknown key or name is echoed only when it is itself a safe short
 *     name (letters, digits, `_.:/-`, ≤ 64 characters, not email- or phone-shaped; see
 *     purpose/canonical.ts `echoSafe`), otherwise as "(unnamed)" / its type and length;
 *     where cheap (a short list of valid names) the closest valid name is suggested.
 *   - VALUES are never echoed: no row value, identifier, parameter value, free text or
 *     pre-noise number. `got` describes a value by type and size only (`describeValue`:
 *     "string(length 12)", "array(length 0)", "NaN"); the one exception is a number given
 *     for a configuration or privacy parameter (ε, a limit), which is schema, not data.
 *
 * `details` is for structured, non-sensitive context (sizes, limits, hashes).
 */

/** The closed list of error codes. Grouped by layer; add new codes here, nowhere else. */
export const ERROR_CODES = [
  // input / generic
  "INPUT_INVALID",
  "PARAM_INVALID",
  "NOT_FOUND",
  "ALREADY_EXISTS",
  "STATE_INVALID",
  "INTERNAL",
  // rng
  "RNG_INVALID",
  // crypto / transport
  "CRYPTO_INVALID_KEY",
  "CRYPTO_INVALID_POINT",
  "CRYPTO_DECRYPT_FAILED",
  "CHANNEL_REPLAY",
  "CHANNEL_REORDER",
  "CHANNEL_WRONG_SESSION",
  "CHANNEL_TAMPERED",
  "SIGNATURE_INVALID",
  // room server: signed requests from members
  "NOT_A_MEMBER",
  "REQUEST_REPLAY",
  "REQUEST_REORDER",
  "REQUEST_STALE",
  "RATE_LIMITED",
  // identity / PSI
  "IDENTIFIER_MALFORMED",
  "PSI_INVALID_MESSAGE",
  "PSI_DUPLICATE_ELEMENT",
  "PSI_EMPTY_SET",
  "PSI_SET_TOO_LARGE",
  "PSI_SET_TOO_SMALL",
  "PSI_SESSION_ABORTED",
  "PSI_KEY_REUSE",
  "CROSSWALK_DENIED",
  // clean room
  "DATASET_INVALID",
  "SCHEMA_INVALID",
  "RULE_INVALID",
  "QUERY_NOT_APPROVED",
  "TEMPLATE_INVALID",
  "ROW_EXPORT_REFUSED",
  "THRESHOLD_NOT_MET",
  "DIFFERENCE_CHECK_FAILED",
  "ENGINE_ERROR",
  "ACCESS_DENIED",
  // differential privacy
  "DP_PARAM_INVALID",
  "BUDGET_EXCEEDED",
  "BUDGET_NOT_FOUND",
  "LEDGER_ERROR",
  // purpose limitation / audit
  "PURPOSE_UNKNOWN",
  "PURPOSE_DENIED",
  "GRANT_INVALID",
  "GRANT_EXPIRED",
  "KEY_RELEASE_DENIED",
  "AUDIT_TAMPERED",
  // enclave / attestation
  "ATTESTATION_INVALID",
  "ATTESTATION_SIGNATURE",
  "ATTESTATION_UNTRUSTED_ROOT",
  "ATTESTATION_NONCE",
  "ATTESTATION_REPLAY",
  "ATTESTATION_STALE",
  "ATTESTATION_MEASUREMENT",
  "ATTESTATION_DEBUG",
  "ATTESTATION_KEY_MISMATCH",
  "ATTESTATION_PURPOSE",
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface ErrorDetails {
  /** Dotted path of the offending input field, e.g. `"params.minAge"` or `"rows[12].email"`. */
  field?: string;
  /** What was expected, in words: `"integer in [18, 99]"`. */
  expected?: string;
  /** A safe description of what was received (a type or size, never a raw identifier). */
  got?: string;
  /** Structured non-sensitive context. */
  [key: string]: unknown;
}

/**
 * The one error class of the library.
 *
 * @example
 * try { room.query(...) } catch (e) { if (isCleanRoomError(e, "BUDGET_EXCEEDED")) console.log(e.details) }
 */
export class CleanRoomError extends Error {
  override readonly name = "CleanRoomError";
  readonly code: ErrorCode;
  readonly details: ErrorDetails;

  constructor(code: ErrorCode, message: string, details: ErrorDetails = {}) {
    super(`[${code}] ${message}`);
    this.code = code;
    this.details = Object.freeze({ ...details });
  }

  /** Plain JSON form (for MIME payloads and audit entries). */
  toJSON(): { code: ErrorCode; message: string; details: ErrorDetails } {
    return { code: this.code, message: this.message, details: this.details };
  }
}

/** True when `e` is a CleanRoomError (optionally with the given code). */
export function isCleanRoomError(e: unknown, code?: ErrorCode): e is CleanRoomError {
  return e instanceof CleanRoomError && (code === undefined || e.code === code);
}

/** Describe a value's type/size for `got`, without echoing its content. */
export function describeValue(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return `array(length ${v.length})`;
  if (v instanceof Uint8Array) return `bytes(length ${v.length})`;
  if (typeof v === "string") return `string(length ${v.length})`;
  if (typeof v === "number") return Number.isNaN(v) ? "NaN" : Number.isFinite(v) ? `number ${v}` : `${v}`;
  if (typeof v === "bigint") return `bigint ${v}`;
  return typeof v;
}

/** Raise `PARAM_INVALID` (or another code) for field `field`: `"field" expected X, got Y`. */
export function invalid(field: string, expected: string, value: unknown, code: ErrorCode = "PARAM_INVALID"): never {
  const got = describeValue(value);
  throw new CleanRoomError(code, `"${field}" expected ${expected}, got ${got}`, { field, expected, got });
}

/** Raise `INTERNAL`: an invariant of the library itself failed. */
export function bug(message: string): never {
  throw new CleanRoomError("INTERNAL", `${message} — this is a bug in cleanroom-lab, please report it`);
}
