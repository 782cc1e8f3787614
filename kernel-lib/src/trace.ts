/**
 * The "why was this blocked" trace of one call: the steps of DESIGN.md's road
 * (parse → purpose → rule → plan → cost → budget → execute → threshold → audit), each ok,
 * refused or skipped, with a reason. A refusal re-throws the layer's CleanRoomError with the
 * trace attached (`details.trace`), so a notebook can show exactly where and why.
 */
import { CleanRoomError, isCleanRoomError } from "./errors.js";

export const STEPS = ["parse", "purpose", "rule", "plan", "cost", "budget", "execute", "threshold", "audit"] as const;
export type StepName = (typeof STEPS)[number];
export interface TraceStep {
  step: StepName;
  status: "ok" | "refused" | "skipped";
  reason?: string;
}
export type Trace = TraceStep[];

export interface TraceBuilder {
  steps: Trace;
  ok(step: StepName, reason?: string): TraceBuilder;
  skip(step: StepName, reason: string): TraceBuilder;
  /** Mark `step` refused, the rest skipped, and return the error to throw (trace attached). */
  refuse(step: StepName, e: unknown): CleanRoomError;
}

/** @example const t = traceOf(); t.ok("parse"); throw t.refuse("purpose", err) */
export function traceOf(): TraceBuilder {
  const steps: Trace = [];
  const b: TraceBuilder = {
    steps,
    ok(step, reason) {
      steps.push(reason === undefined ? { step, status: "ok" } : { step, status: "ok", reason });
      return b;
    },
    skip(step, reason) {
      steps.push({ step, status: "skipped", reason });
      return b;
    },
    refuse(step, e) {
      const err = isCleanRoomError(e)
        ? e
        : new CleanRoomError("INTERNAL", `${(e as Error)?.message ?? String(e)} — this is a bug in cleanroom-lab, please report it`);
      steps.push({ step, status: "refused", reason: `${err.code}: ${err.message.replace(/^\[[A-Z_]+\] /, "")}` });
      for (const s of STEPS.slice(STEPS.indexOf(step) + 1))
        if (!steps.some((x) => x.step === s)) steps.push({ step: s, status: "skipped" });
      const out = new CleanRoomError(err.code, err.message.replace(/^\[[A-Z_]+\] /, ""), { ...err.details, trace: steps.slice() });
      if (err.stack) out.stack = err.stack;
      return out;
    },
  };
  return b;
}
