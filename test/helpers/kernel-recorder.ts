/**
 * A stand-in for the cleanroom-ts kernel's display API (the global the launcher installs): every
 * `display` and `updateDisplay` a verb makes is recorded, so progress-bar tests can read what the
 * notebook would have shown. `afterEach(uninstallKernel)` removes it.
 */
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import type { MimeBundle } from "../../kernel-lib/src/display/bundle.js";

const KEY = Symbol.for("cleanroom-lab.kernel");
const g = globalThis as Record<symbol, unknown>;

export type KernelEvent = { op: "show" | "update"; id: string; payload: Record<string, unknown> };

/** Install the recorder; returns the list it appends to. */
export function installKernel(): KernelEvent[] {
  const events: KernelEvent[] = [];
  g[KEY] = {
    display: (b: MimeBundle, _m: object, id: string) => events.push({ op: "show", id, payload: b[CLEANROOM_MIME] as never }),
    updateDisplay: (b: MimeBundle, id: string) => events.push({ op: "update", id, payload: b[CLEANROOM_MIME] as never }),
  };
  return events;
}

export function uninstallKernel(): void {
  delete g[KEY];
}

const REGIONS = ["north", "south", "east", "west"];
/** `n` exposure rows matching liftSchemas().exposures (join keys k0…). */
export const exposureRows = (n: number) =>
  Array.from({ length: n }, (_, i) => ({
    join_key: `k${i}`,
    group: i % 2 ? "test" : "control",
    reached: 1,
    impressions: 1 + (i % 5),
    first_exposure_day: i % 28,
    region: REGIONS[i % 4]!,
    age_band: "25-34",
    channel: "search",
  }));
