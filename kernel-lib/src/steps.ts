/**
 * Work in steps: a long synchronous job written as a generator that yields a progress report
 * between steps, run either to completion at once (`runSteps`, the synchronous API) or with a
 * yield to the event loop after each step (`runStepsAsync`), so a kernel can publish a
 * progress bar while it runs. One body, two schedules: the steps and their order are the same.
 *
 * Threat model: a report carries a library-chosen phase name and counts only — never a value.
 * A generator must not yield between a side effect and the check it depends on (the event loop
 * may run other code at a yield): every yield sits in the validation part, before the first
 * write, or the check is repeated after the last yield.
 */

/** One report: `done` of `total` units within `phase`. */
export interface StepReport {
  phase: string;
  done: number;
  total: number;
}

/** A job in steps that returns `T`. */
export type Steps<T> = Generator<StepReport, T, void>;

/**
 * Run every step now (no report, no yield).
 *
 * @example runSteps(loadDatasetSteps(name, owner, rows, schema))
 */
export function runSteps<T>(steps: Steps<T>): T {
  let r = steps.next();
  while (!r.done) r = steps.next();
  return r.value;
}

/** Let the event loop run (I/O, timers, e.g. a progress update leaving the kernel). */
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Run the steps, reporting each and yielding to the event loop in between. A throwing `report`
 * is ignored: it never fails the work it reports on.
 *
 * @example await runStepsAsync(room.uploadSteps(...), (s) => bar.report(s.done, s.total, s.phase))
 */
export async function runStepsAsync<T>(steps: Steps<T>, report?: (s: StepReport) => void): Promise<T> {
  let r = steps.next();
  while (!r.done) {
    try {
      report?.(r.value);
    } catch {
      // a failing report (display gone, a throwing callback) never fails the work it reports on
    }
    await tick();
    r = steps.next();
  }
  return r.value;
}
