/**
 * From payload to notebook output: the MIME bundle `{vendor json, text/html, text/plain}` and
 * the ways a tslab cell emits it.
 *
 * Emission routes, in order of preference:
 *  1. the cleanroom-ts kernel launcher's API `globalThis[Symbol.for("cleanroom-lab.kernel")]
 *     .display(bundle)` (kernel-lib/jupyter/kernels/cleanroom-ts/launcher.js), one
 *     multi-MIME `display_data`;
 *  2. a plain tslab kernel: its own wire writer `tslab/dist/jupyter.js#lastWriteDisplayData`,
 *     looked up in `require.cache` so we use the kernel's module instance, not a copy;
 *  3. no kernel (plain Node, tests): the text/plain rendering to stdout.
 * A result object can also carry the bundle itself under `Symbol.for("jupyter.mimebundle")`
 * (see {@link withMimeBundle}); the cleanroom-ts launcher renders a cell's last expression
 * that way, as IPython does with `_repr_mimebundle_`.
 *
 * Payloads are validated before anything is emitted: a malformed payload is a library bug and
 * raises `INTERNAL`, never a half-rendered output.
 */
import { CleanRoomError } from "../errors.js";
import { CLEANROOM_MIME, CleanRoomPayload, type CleanRoomPayloadInput } from "./schema.js";
import { toHtml } from "./html.js";
import { toText } from "./text.js";

/** A Jupyter MIME bundle as produced by {@link toMimeBundle}. */
export interface MimeBundle {
  [CLEANROOM_MIME]: CleanRoomPayload;
  "text/html": string;
  "text/plain": string;
}

/** The well-known symbol the cleanroom-ts kernel renders a last-expression value through. */
export const MIMEBUNDLE_SYMBOL: unique symbol = Symbol.for("jupyter.mimebundle") as never;
const KERNEL_API = Symbol.for("cleanroom-lab.kernel");

/** Validate a payload, raising INTERNAL with zod's readable message when it is malformed. */
export function checkPayload(payload: CleanRoomPayloadInput): CleanRoomPayload {
  const r = CleanRoomPayload.safeParse(payload);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new CleanRoomError(
      "INTERNAL",
      `display payload does not match the ${CLEANROOM_MIME} schema — this is a bug in cleanroom-lab, please report it: ${issues}`,
      { field: "payload" },
    );
  }
  return r.data;
}

/**
 * Build the MIME bundle of a payload.
 *
 * @example
 * const bundle = toMimeBundle({ kind: "error", version: 1, code: "BUDGET_EXCEEDED", message: "Requested ε 1" });
 * bundle["text/plain"]; // "✗ BUDGET_EXCEEDED: Requested ε 1"
 */
export function toMimeBundle(payload: CleanRoomPayloadInput): MimeBundle {
  const p = checkPayload(payload);
  return { [CLEANROOM_MIME]: p, "text/html": toHtml(p), "text/plain": toText(p) };
}

type WriteDisplayData = (content: { data: object; metadata: object; transient: object }, update: boolean) => void;

function tslabWriter(): WriteDisplayData | null {
  if (typeof require === "undefined" || !require.cache) return null;
  for (const [file, mod] of Object.entries(require.cache)) {
    if (!/[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(file)) continue;
    const w = (mod?.exports as { lastWriteDisplayData?: unknown } | undefined)?.lastWriteDisplayData;
    if (typeof w === "function") return w as WriteDisplayData;
  }
  return null;
}

/** Which route {@link show} would take right now: "cleanroom-ts", "tslab" or "stdout". */
export function displayRoute(): "cleanroom-ts" | "tslab" | "stdout" {
  const api = (globalThis as Record<symbol, unknown>)[KERNEL_API] as { display?: unknown } | undefined;
  if (api && typeof api.display === "function") return "cleanroom-ts";
  return tslabWriter() ? "tslab" : "stdout";
}

/**
 * Display a payload in the current cell's output as one multi-MIME `display_data`.
 *
 * @example
 * import { show } from "@cleanroom-lab/kernel/dist/display/bundle";
 * show({ kind: "error", version: 1, code: "PURPOSE_DENIED", message: "purpose marketing.ads not granted" });
 */
export function show(payload: CleanRoomPayloadInput): void {
  const bundle = toMimeBundle(payload);
  const api = (globalThis as Record<symbol, unknown>)[KERNEL_API] as { display?: (b: object, m?: object) => void } | undefined;
  if (api && typeof api.display === "function") {
    api.display(bundle, {});
    return;
  }
  const w = tslabWriter();
  if (w) {
    w({ data: bundle, metadata: {}, transient: {} }, false);
    return;
  }
  process.stdout.write(bundle["text/plain"] + "\n");
}

/**
 * Attach a rich rendering to a plain result object without changing its JSON form: a
 * non-enumerable `Symbol.for("jupyter.mimebundle")` method (rendered by the cleanroom-ts
 * kernel when the object is a cell's last expression) and a `util.inspect.custom` text view.
 * The payload is computed lazily, on display.
 *
 * @example
 * return withMimeBundle(result, (r) => ({ kind: "budget", version: 1, roomId: r.roomId, budgets: r.budgets }));
 */
export function withMimeBundle<T extends object>(obj: T, toPayload: (o: T) => CleanRoomPayloadInput): T {
  Object.defineProperty(obj, MIMEBUNDLE_SYMBOL, {
    value: () => toMimeBundle(toPayload(obj)),
    enumerable: false,
    configurable: true,
  });
  Object.defineProperty(obj, Symbol.for("nodejs.util.inspect.custom"), {
    value: () => toText(checkPayload(toPayload(obj))),
    enumerable: false,
    configurable: true,
  });
  return obj;
}

/**
 * A value that renders as the payload when it is a cell's last expression.
 *
 * @example
 * display({ kind: "error", version: 1, code: "NOT_FOUND", message: "no such party" }) // last line of a cell
 */
export function display(payload: CleanRoomPayloadInput): { payload: CleanRoomPayload } {
  return withMimeBundle({ payload: checkPayload(payload) }, (o) => o.payload);
}
