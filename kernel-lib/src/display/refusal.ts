/**
 * The "why blocked" view of a refused call: one function shared by `attempt()` (which returns
 * it as a displayable value) and the cleanroom-ts kernel launcher (which renders a cell's
 * uncaught CleanRoomError the same way, with a one-line `CODE: message` traceback instead of
 * library stack frames — kernel-lib/jupyter/kernels/cleanroom-ts/launcher.js loads this file
 * lazily, only when a cell fails).
 *
 * Threat model: what is shown is what the error already carries — its code, its message
 * (which by the errors.ts contract names fields and expectations, never values), the field at
 * fault and the query trace (step names and reasons). Nothing is read from the room. An error
 * is recognised by shape (`name` "CleanRoomError" and a code from the closed list), so one
 * raised by another loaded copy of the library renders too; anything else is not a refusal.
 */
import { ERROR_CODES, type ErrorCode } from "../errors.js";
import { toMimeBundle, withMimeBundle, type MimeBundle } from "./bundle.js";
import { refusedQueryPayload } from "./from-results.js";
import type { CleanRoomPayloadInput, TraceStepName } from "./schema.js";

/** What `attempt` returns for a refused call (the same shape as index.ts's `Refusal`). */
export interface RefusalView {
  ok: false;
  code: string;
  message: string;
  field?: string;
  trace: { step: TraceStepName; status: "ok" | "refused" | "skipped"; reason?: string }[] | null;
}

interface RefusalLike {
  name: "CleanRoomError";
  code: ErrorCode;
  message: string;
  details?: { field?: unknown; trace?: unknown };
}

const CODES: ReadonlySet<string> = new Set(ERROR_CODES);

/** True for a CleanRoomError from any loaded copy of the library (checked by shape). */
export function isRefusal(e: unknown): e is RefusalLike {
  if (e === null || typeof e !== "object") return false;
  const o = e as { name?: unknown; code?: unknown; message?: unknown };
  return o.name === "CleanRoomError" && typeof o.code === "string" && CODES.has(o.code) && typeof o.message === "string";
}

/** The message without its `[CODE] ` prefix. */
function bareMessage(e: RefusalLike): string {
  return e.message.replace(/^\[[A-Z_]+\] /, "");
}

/** The plain refusal record of a CleanRoomError (code, message, field, trace). */
export function refusalOf(e: RefusalLike): RefusalView {
  const details = e.details ?? {};
  const trace = Array.isArray(details.trace) ? (details.trace as RefusalView["trace"]) : null;
  return { ok: false, code: e.code, message: bareMessage(e), trace, ...(details.field ? { field: String(details.field) } : {}) };
}

/** The display payload: the query trace ("why blocked") when there is one, else an error card. */
export function refusalPayload(r: RefusalView): CleanRoomPayloadInput {
  if (r.trace) {
    const at = r.trace.find((s) => s.status === "refused")?.step ?? "parse";
    return refusedQueryPayload({ code: r.code, message: r.message }, at, { title: "Refused" });
  }
  return { kind: "error", version: 1, code: r.code, message: r.message, ...(r.field ? { field: r.field } : {}) };
}

/**
 * `attempt()`'s value for a refused call: the refusal record, rendered as "why blocked" when it
 * is a cell's last expression.
 *
 * @example
 * try { await cleanRoomQuery(lab, req) } catch (e) { if (isRefusal(e)) return refusalValue(e) }
 */
export function refusalValue(e: RefusalLike): RefusalView {
  return withMimeBundle(refusalOf(e), refusalPayload);
}

/**
 * The MIME bundle of a refusal (vendor JSON, HTML, text), or null when `e` is not a
 * CleanRoomError. Used by the kernel launcher for an uncaught refusal.
 *
 * @example
 * refusalBundle(new CleanRoomError("PURPOSE_UNKNOWN", "…"))?.["text/plain"]
 */
export function refusalBundle(e: unknown): MimeBundle | null {
  return isRefusal(e) ? toMimeBundle(refusalPayload(refusalOf(e))) : null;
}

/** The one-line text form of a refusal: `CODE: message` (no stack frames). */
export function refusalLine(e: RefusalLike): string {
  return `${e.code}: ${bareMessage(e)}`;
}
