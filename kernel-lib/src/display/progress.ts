/**
 * Progress bars for calls that take seconds (PSI, large uploads, attestation, big queries).
 *
 * In the cleanroom-ts kernel a bar is one `display_data` published with a `display_id`, then
 * updated in place with `update_display_data` (the Jupyter protocol way), at most 5 times a
 * second, with phase names, done/total and an ETA; the final update says 100% (or "failed").
 * The route is the launcher's kernel API `globalThis[Symbol.for("cleanroom-lab.kernel")]`
 * (`display(bundle, metadata, displayId)` / `updateDisplay(bundle, displayId)`). Outside a
 * kernel (plain Node, tests) {@link startProgress} returns null and nothing is printed: the
 * text rendering of a bar is its bundle's `text/plain`, shown by non-lab front ends.
 *
 * Threat model: the bar publishes counts of work units and library-chosen phase names only —
 * never an element, a row or a value. A failing sink (front end gone) never fails the call it
 * reports on: display errors are swallowed.
 */
import { randomUUID } from "node:crypto";
import type { PayloadOf } from "./schema.js";
import { toMimeBundle, type MimeBundle } from "./bundle.js";
import { Throttle, estimateEtaMs, PROGRESS_MIN_INTERVAL_MS } from "./progress-view.js";

const KERNEL_API = Symbol.for("cleanroom-lab.kernel");

/** Where a bar is published: the first call shows it, later ones update it in place. */
export interface ProgressSink {
  show(bundle: MimeBundle, displayId: string): void;
  update(bundle: MimeBundle, displayId: string): void;
}

interface KernelApi {
  display?: (bundle: object, metadata?: object, displayId?: string) => void;
  updateDisplay?: (bundle: object, displayId: string, metadata?: object) => void;
}

/** The cleanroom-ts kernel's display as a sink, or null outside that kernel. */
export function kernelProgressSink(): ProgressSink | null {
  const api = (globalThis as Record<symbol, unknown>)[KERNEL_API] as KernelApi | undefined;
  if (!api || typeof api.display !== "function" || typeof api.updateDisplay !== "function") return null;
  const { display, updateDisplay } = api;
  return {
    show: (bundle, id) => display(bundle, {}, id),
    update: (bundle, id) => updateDisplay(bundle, id, {}),
  };
}

/** Options of a {@link ProgressBar}. */
export interface ProgressOptions {
  /** Expected work units over all phases, when known up front (phases may add more). */
  total?: number;
  title?: string;
  rngMode?: "secure" | "seeded";
  label?: string;
  /** Milliseconds since some origin (default: performance.now). Tests pass a fake clock. */
  clock?: () => number;
  minIntervalMs?: number;
}

/**
 * One progress bar. Feed it `(done, total, phase)` reports (the shape of PSI's `ProgressFn`,
 * where done/total count within the phase), then {@link ProgressBar.finish}.
 *
 * @example
 * const bar = new ProgressBar("PSI (joinKeys)", sink, { total: 4000 });
 * bar.report(1024, 1000, "client: hash and blind own set");
 * bar.finish("done");
 */
export class ProgressBar {
  readonly displayId = `cleanroom-progress:${randomUUID()}`;
  private readonly phases = new Map<string, { done: number; total: number }>();
  private current = "starting";
  private readonly throttle: Throttle;
  private readonly clock: () => number;
  private readonly started: number;
  private shown = false;
  private state: "running" | "done" | "failed" = "running";

  constructor(
    readonly task: string,
    private readonly sink: ProgressSink,
    private readonly opts: ProgressOptions = {},
  ) {
    this.clock = opts.clock ?? (() => performance.now());
    this.throttle = new Throttle(opts.minIntervalMs ?? PROGRESS_MIN_INTERVAL_MS);
    this.started = this.clock();
    this.publish(true);
  }

  /** A `ProgressFn` bound to this bar. */
  readonly report = (done: number, total: number, phase: string): void => {
    if (this.state !== "running") return;
    const t = Math.max(0, Math.floor(total));
    this.phases.set(phase, { done: Math.min(t, Math.max(0, Math.floor(done))), total: t });
    this.current = phase;
    this.publish(false);
  };

  /** Publish the final state (always, unthrottled): 100% for "done". Later reports are ignored. */
  finish(state: "done" | "failed"): void {
    if (this.state !== "running") return;
    this.state = state;
    this.publish(true);
  }

  /** The payload of the bar as it stands. */
  payload(): PayloadOf<"progress"> {
    const phases = [...this.phases].map(([name, v]) => ({ name, done: v.done, total: v.total }));
    const known = phases.reduce((s, p) => s + p.total, 0);
    const total = Math.max(known, Math.floor(this.opts.total ?? 0));
    const done =
      this.state === "done"
        ? total
        : Math.min(
            total,
            phases.reduce((s, p) => s + p.done, 0),
          );
    const elapsedMs = Math.max(0, this.clock() - this.started);
    return {
      kind: "progress",
      version: 1,
      ...(this.opts.title ? { title: this.opts.title } : {}),
      ...(this.opts.rngMode ? { rngMode: this.opts.rngMode } : {}),
      ...(this.opts.label ? { label: this.opts.label } : {}),
      task: this.task,
      phase: this.current,
      done,
      total,
      phases,
      elapsedMs,
      etaMs: this.state === "running" ? estimateEtaMs(done, total, elapsedMs) : null,
      state: this.state,
    };
  }

  private publish(force: boolean): void {
    const now = this.clock();
    if (force) this.throttle.mark(now);
    else if (!this.throttle.ready(now)) return;
    try {
      const bundle = toMimeBundle(this.payload());
      if (this.shown) this.sink.update(bundle, this.displayId);
      else this.sink.show(bundle, this.displayId);
      this.shown = true;
    } catch {
      // a display that fails (front end gone) must not fail the work it reports on
    }
  }
}

/**
 * A bar on the kernel's display, or null outside the cleanroom-ts kernel (then nothing is shown).
 *
 * @example
 * const bar = startProgress("PSI (joinKeys)", { total: 2 * (a.length + b.length) });
 * try { await work(bar?.report); bar?.finish("done"); } catch (e) { bar?.finish("failed"); throw e; }
 */
export function startProgress(
  task: string,
  opts: ProgressOptions = {},
  sink: ProgressSink | null = kernelProgressSink(),
): ProgressBar | null {
  return sink ? new ProgressBar(task, sink, opts) : null;
}

/**
 * Run `work` with a bar (when in the kernel): finished as "done" when it resolves, "failed"
 * when it throws (the error is re-thrown unchanged).
 */
export async function withProgress<T>(
  task: string,
  opts: ProgressOptions,
  work: (report: ((done: number, total: number, phase: string) => void) | undefined) => Promise<T>,
  sink: ProgressSink | null = kernelProgressSink(),
): Promise<T> {
  const bar = startProgress(task, opts, sink);
  try {
    const r = await work(bar?.report);
    bar?.finish("done");
    return r;
  } catch (e) {
    bar?.finish("failed");
    throw e;
  }
}

/**
 * A bar that appears on its first report (nothing is shown for a call refused before any work,
 * or while it only waits, e.g. for a peer to connect). `finish` is a no-op if it never appeared.
 *
 * @example
 * const bar = lazyProgress("PSI with retailer", { total: 2 * rows.length });
 * try { await work(bar.report); bar.finish("done"); } catch (e) { bar.finish("failed"); throw e; }
 */
export function lazyProgress(
  task: string,
  opts: ProgressOptions = {},
  sink: ProgressSink | null = kernelProgressSink(),
): { report: ((done: number, total: number, phase: string) => void) | undefined; finish(state: "done" | "failed"): void } {
  if (!sink) return { report: undefined, finish: () => undefined };
  let bar: ProgressBar | null = null;
  return {
    report: (done, total, phase) => (bar ??= new ProgressBar(task, sink, opts)).report(done, total, phase),
    finish: (state) => bar?.finish(state),
  };
}
