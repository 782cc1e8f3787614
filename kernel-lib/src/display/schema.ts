/**
 * The rich-output contract between the kernel library and the JupyterLab extension.
 *
 * Every result a notebook cell shows is one payload of MIME type
 * `application/vnd.cleanroom-lab.v1+json`: a zod discriminated union on `kind`, always with
 * `version: 1`. The kernel builds payloads from plain result objects and emits them together
 * with `text/html` and `text/plain` fallbacks; the extension parses the payload with this same
 * schema on arrival and shows a readable error box when it does not parse.
 *
 * Threat model: payloads are display data, already released. They must never carry row-level
 * data of another party or pre-noise values; suppressed query rows carry `null` in every
 * value cell and say which rule suppressed them. The extension treats a payload as untrusted
 * input (it may come from any kernel), so every string is rendered as text, never as HTML.
 *
 * This module is imported by the CommonJS kernel build and by the extension's webpack
 * bundle: it depends on zod only. See DESIGN.md § Contracts → MIME.
 */
import { z } from "zod";

/** The one vendor MIME type of cleanroom-lab outputs. */
export const CLEANROOM_MIME = "application/vnd.cleanroom-lab.v1+json" as const;

/** Payload version carried in every payload (`version: 1`). */
export const PAYLOAD_VERSION = 1 as const;

const finite = z.number().refine(Number.isFinite, { message: "expected a finite number" });
const nonNeg = finite.refine((v) => v >= 0, { message: "expected a number ≥ 0" });
const fraction = finite.refine((v) => v >= 0 && v <= 1, { message: "expected a number in [0, 1]" });
const count = z.number().int().nonnegative();
const interval = z.tuple([finite, finite]);
/** A table cell: what a released aggregate or dimension value can be. */
export const CellValue = z.union([z.string(), finite, z.boolean(), z.null()]);

/** Fields every payload kind shares. `rngMode: "seeded"` outputs carry the teaching label. */
const base = {
  version: z.literal(PAYLOAD_VERSION),
  title: z.string().optional(),
  rngMode: z.enum(["secure", "seeded"]).optional(),
  label: z.string().optional(),
};

// ---------------------------------------------------------------- budget

/** One charge (or refused charge) against a budget. `cost` is in the budget's unit. */
export const BudgetCharge = z.strictObject({
  at: z.string(),
  templateHash: z.string(),
  /** The template's approved name, when the room knows it (the views show it, the hash on hover). */
  templateName: z.string().optional(),
  purpose: z.string(),
  cost: nonNeg,
  outcome: z.enum(["charged", "refused"]),
  note: z.string().optional(),
});

/** Exact decimal/rational renderings of the ledger's amounts ("1/4"), for display only. */
const exactAmounts = z.strictObject({ total: z.string(), spent: z.string(), remaining: z.string() });

/** One budget of a room: the collaboration's, a party's or a dataset's. */
export const BudgetLine = z.strictObject({
  scope: z.enum(["collaboration", "party", "dataset"]),
  subject: z.string(),
  accountant: z.enum(["pureDp", "approxDp", "zCdp"]),
  unit: z.enum(["epsilon", "rho"]),
  total: nonNeg,
  spent: nonNeg,
  remaining: nonNeg,
  exact: exactAmounts.optional(),
  delta: z.strictObject({ total: nonNeg, spent: nonNeg }).optional(),
  /** Refreshing budgets: what was ever charged across refreshes (the real cumulative loss). */
  lifetimeSpent: nonNeg.optional(),
  /** Refreshing budgets: what refresh costs (averaging across periods), and when it refreshes. */
  refresh: z.strictObject({ policy: z.enum(["daily", "monthly"]), nextRefresh: z.string().nullable(), warning: z.string() }).optional(),
  /** What the remaining budget buys: how many more runs of each named query fit (exact). */
  buys: z.array(z.strictObject({ name: z.string(), perQuery: z.string(), count: count })).optional(),
  /** Charges, oldest first (the ledger may cap it to the most recent ones). */
  history: z.array(BudgetCharge),
});

export const BudgetPayload = z.strictObject({
  kind: z.literal("budget"),
  ...base,
  roomId: z.string(),
  budgets: z.array(BudgetLine),
});

// ---------------------------------------------------------------- query

/** The steps of DESIGN.md's "one call, one direction" road, in order. */
export const TRACE_STEPS = ["parse", "purpose", "rule", "plan", "cost", "budget", "execute", "threshold", "audit"] as const;

export const TraceStep = z.strictObject({
  step: z.enum(TRACE_STEPS),
  status: z.enum(["ok", "refused", "skipped"]),
  reason: z.string().optional(),
});

export const QueryColumn = z.strictObject({
  name: z.string(),
  type: z.enum(["string", "number", "integer", "boolean"]).optional(),
  /** True when the column's values carry DP noise. */
  noisy: z.boolean().optional(),
  /**
   * This column's own noise (each aggregate has its own sensitivity, hence its own scale):
   * the mechanism's parameter (`scale`, e.g. the Laplace scale or the Gaussian σ²), the
   * sensitivity that calibrated it, and `halfWidth`: with probability `level` a released
   * value is within ± halfWidth of the exact one (from the mechanism's exact tail). A ratio
   * column (`avg`) has no fixed ± (`halfWidth` absent, `note` says why).
   */
  noise: z
    .strictObject({
      parameterName: z.string().max(16).optional(),
      scale: nonNeg,
      sensitivity: nonNeg,
      halfWidth: nonNeg.optional(),
      level: fraction.optional(),
      note: z.string().optional(),
    })
    .optional(),
});

export const Suppression = z.strictObject({
  rule: z.string(),
  threshold: nonNeg,
  reason: z.string().optional(),
});

export const QueryRow = z.strictObject({
  values: z.array(CellValue),
  suppressed: Suppression.optional(),
  /**
   * Opt-in post-processing: the column indices whose released value was clamped, with the
   * value the room released (a view labels every such cell; nothing is clamped silently).
   */
  clamped: z.array(z.strictObject({ column: count, released: z.union([finite, z.string()]) })).optional(),
  /**
   * This row's own ± per column (null: the column's ± in the footer applies, or none), where it
   * differs from the column's: `avg` cells and a remainder row's cells. A normal approximation
   * at the columns' `level` (views mark it ≈; see `CELL_PM_NOTE` in format.ts).
   */
  plusMinus: z.array(nonNeg.nullable()).optional(),
});

export const NoiseInfo = z.strictObject({
  /**
   * "none", or the display name of the kernel's registered mechanism (kernel-lib dp/registry.ts,
   * e.g. "discreteLaplace", "discreteGaussian"): a kernel may register more than the built-ins,
   * so the contract is the name's shape (the extension renders it as text).
   */
  mechanism: z.string().regex(/^[A-Za-z][A-Za-z0-9]{0,39}$/, "expected a mechanism name such as discreteLaplace, or none"),
  scale: nonNeg.optional(),
  sigma: nonNeg.optional(),
  sensitivity: nonNeg.optional(),
  cost: nonNeg.optional(),
  unit: z.enum(["epsilon", "rho"]).optional(),
});

export const QueryPayload = z.strictObject({
  kind: z.literal("query"),
  ...base,
  templateHash: z.string().optional(),
  purpose: z.string().optional(),
  engine: z.string().optional(),
  columns: z.array(QueryColumn),
  rows: z.array(QueryRow),
  noise: NoiseInfo.optional(),
  /** Opt-in post-processing applied after the release (e.g. `clamp: "nonNegative"`): no privacy cost, labelled. */
  postProcessing: z.strictObject({ clamp: z.literal("nonNegative"), cells: count }).optional(),
  /** Present when the query was refused: then `rows` is empty and `trace` says where. */
  refused: z.strictObject({ code: z.string(), message: z.string() }).optional(),
  trace: z.array(TraceStep).optional(),
});

// ---------------------------------------------------------------- lift

export const LiftArm = z.strictObject({
  population: count,
  /** Numerator of the headline rate: converters (people with ≥ 1 conversion), shown as "converters". */
  conversions: nonNeg,
  rate: finite,
  ci: interval,
});

export const LiftFlag = z.strictObject({
  code: z.string(),
  severity: z.enum(["info", "warning"]),
  message: z.string(),
});

export const LiftPayload = z.strictObject({
  kind: z.literal("lift"),
  ...base,
  test: LiftArm,
  control: LiftArm,
  /** Relative lift (test rate / control rate − 1) with its interval. */
  lift: z.strictObject({ estimate: finite, ci: interval }),
  level: fraction.default(0.95),
  incrementalConversions: z.strictObject({ estimate: finite, ci: interval.optional() }).optional(),
  /** Share of the lift estimator's variance that comes from DP noise, in [0, 1]. */
  noiseVarianceShare: fraction,
  flags: z.array(LiftFlag),
  /** Only for synthetic studies: the generator's stated truth. */
  groundTruth: z.strictObject({ lift: finite, incrementalConversions: finite.optional() }).optional(),
});

// ---------------------------------------------------------------- psi

export const PsiMessageSummary = z.strictObject({
  message: z.string(),
  from: z.string(),
  to: z.string(),
  summary: z.string(),
  bytes: count.optional(),
});

export const PsiParty = z.strictObject({
  name: z.string(),
  setSize: count,
  /** Messages this party received, summarised (never the elements themselves). */
  saw: z.array(PsiMessageSummary),
  learned: z.string(),
});

export const PsiPayload = z.strictObject({
  kind: z.literal("psi"),
  ...base,
  mode: z.string(),
  parties: z.array(PsiParty).min(2),
  matchCount: count,
  /** matchCount / the smaller set size. */
  matchRate: fraction,
});

// ---------------------------------------------------------------- attestation

export const AttestationCheck = z.strictObject({
  name: z.string(),
  status: z.enum(["ok", "failed", "skipped"]),
  reason: z.string().optional(),
});

export const AttestationPayload = z.strictObject({
  kind: z.literal("attestation"),
  ...base,
  /** The document's fields in display order (hex strings, timestamps, flags). */
  document: z.array(z.strictObject({ name: z.string(), value: CellValue })),
  checks: z.array(AttestationCheck),
  verified: z.boolean(),
  keyRelease: z.strictObject({
    outcome: z.enum(["released", "denied", "not-requested"]),
    reason: z.string().optional(),
  }),
});

// ---------------------------------------------------------------- audit

export const AuditEntry = z.strictObject({
  index: count,
  at: z.string(),
  actor: z.string().optional(),
  action: z.string(),
  outcome: z.string().optional(),
  hash: z.string(),
  prevHash: z.string().optional(),
  details: z.string().optional(),
  /** The template the entry concerns: its approved name (when the room knows it) and its hash. */
  template: z.strictObject({ name: z.string().optional(), hash: z.string() }).optional(),
});

export const AuditPayload = z.strictObject({
  kind: z.literal("audit"),
  ...base,
  entries: z.array(AuditEntry),
  verification: z.strictObject({
    ok: z.boolean(),
    firstBadIndex: count.nullable(),
    reason: z.string().optional(),
  }),
  heads: z.array(
    z.strictObject({
      index: count,
      hash: z.string(),
      signature: z.string(),
      verified: z.boolean(),
    }),
  ),
});

// ---------------------------------------------------------------- purpose

export const PurposePayload = z.strictObject({
  kind: z.literal("purpose"),
  ...base,
  grants: z.array(
    z.strictObject({
      party: z.string(),
      dataset: z.string().optional(),
      purpose: z.string(),
      dataUses: z.array(z.string()).optional(),
      expires: z.string().optional(),
      status: z.enum(["active", "expired", "revoked"]).optional(),
    }),
  ),
  decisions: z.array(
    z.strictObject({
      at: z.string().optional(),
      requester: z.string(),
      purpose: z.string(),
      dataset: z.string().optional(),
      decision: z.enum(["allow", "deny"]),
      reason: z.string(),
    }),
  ),
});

// ---------------------------------------------------------------- error

export const ErrorPayload = z.strictObject({
  kind: z.literal("error"),
  ...base,
  code: z.string(),
  message: z.string(),
  field: z.string().optional(),
});

// ---------------------------------------------------------------- progress

/**
 * A long call in flight (PSI, a large upload, attestation, a big query): published once with
 * a `display_id` and then updated in place (`update_display_data`). Counts of work units only —
 * never an element, a row or a value.
 */
export const ProgressPayload = z.strictObject({
  kind: z.literal("progress"),
  ...base,
  /** What runs, e.g. "PSI (joinKeys)". */
  task: z.string(),
  /** The phase now running (the last one when finished). */
  phase: z.string(),
  /** Work units done and expected over all phases (done ≤ total). */
  done: count,
  total: count,
  /** Phases seen so far, in order, each with its own done/total. */
  phases: z.array(z.strictObject({ name: z.string(), done: count, total: count })),
  elapsedMs: nonNeg,
  /** Estimated time left, null while unknown (too early to tell, or finished). */
  etaMs: nonNeg.nullable(),
  state: z.enum(["running", "done", "failed"]),
});

// ---------------------------------------------------------------- preview

/** A room-aware query preview (`previewQuery`): effective threshold, the owners' verdicts, ± per number, cost. Nothing charged. */
export const PreviewPayload = z.strictObject({
  kind: z.literal("preview"),
  ...base,
  templateHash: z.string(),
  /** The threshold a run would apply, who set it, and the template's own minimum. */
  threshold: z.strictObject({ effective: count, from: z.string(), template: count, text: z.string() }),
  /** Each column use the owners' rules judge: allowed or refused, by whose rule, and what it allows. */
  checks: z.array(z.strictObject({ use: z.string(), column: z.string(), rule: z.string(), allowed: z.boolean(), reason: z.string() })),
  /** ± (half-width at `confidence`) of every released noisy number. */
  plusMinus: z.array(z.strictObject({ name: z.string(), plusMinus: nonNeg })),
  confidence: fraction,
  /** Cost of one run as text (e.g. "ε = 1"), null for threshold-only templates. Not charged. */
  cost: z.string().nullable(),
  runsLeft: z.strictObject({ party: z.string(), runs: count }).optional(),
  /** The refusal approval and runs would raise. */
  refused: z.strictObject({ code: z.string(), message: z.string() }).optional(),
});

// ---------------------------------------------------------------- export

/** An approved template exported to warehouse clean rooms (`exportDesign`): each target's files side by side. */
export const ExportPayload = z.strictObject({
  kind: z.literal("export"),
  ...base,
  templateName: z.string(),
  templateHash: z.string(),
  targets: z
    .array(
      z.strictObject({
        target: z.enum(["aws", "bigquery", "snowflake"]),
        /** Display name, e.g. "AWS Clean Rooms". */
        name: z.string(),
        files: z.array(z.strictObject({ name: z.string(), language: z.enum(["json", "sql"]), text: z.string() })),
        /** What the target enforces differently from the lab. */
        differences: z.array(z.string()),
        /** How the SQL was made runnable on DuckDB for the equivalence proof. */
        shims: z.array(z.string()),
        /** The equivalence proof on DuckDB, when run. */
        proof: z.strictObject({ equal: z.boolean(), rows: count, suppressed: count, difference: z.string().nullable() }).optional(),
      }),
    )
    .min(1),
});

// ---------------------------------------------------------------- the union

/** The payload schema: one discriminated union on `kind`. */
export const CleanRoomPayload = z
  .discriminatedUnion("kind", [
    BudgetPayload,
    QueryPayload,
    LiftPayload,
    PsiPayload,
    AttestationPayload,
    AuditPayload,
    PurposePayload,
    ErrorPayload,
    ProgressPayload,
    PreviewPayload,
    ExportPayload,
  ])
  .superRefine((p, ctx) => {
    if (p.kind === "progress" && p.done > p.total) {
      ctx.addIssue({ code: "custom", path: ["done"], message: `expected done ≤ total (${p.total}), got ${p.done}` });
    }
    if (p.kind === "query") {
      p.rows.forEach((r, i) => {
        if (r.values.length !== p.columns.length) {
          ctx.addIssue({
            code: "custom",
            path: ["rows", i, "values"],
            message: `expected ${p.columns.length} values (one per column), got ${r.values.length}`,
          });
        }
        (r.clamped ?? []).forEach((c, j) => {
          if (c.column >= p.columns.length)
            ctx.addIssue({
              code: "custom",
              path: ["rows", i, "clamped", j, "column"],
              message: `expected a column index < ${p.columns.length}`,
            });
        });
      });
    }
  });

export type CleanRoomPayload = z.infer<typeof CleanRoomPayload>;
/** Input type: what a producer may write (defaults such as lift `level` may be omitted). */
export type CleanRoomPayloadInput = z.input<typeof CleanRoomPayload>;
export type PayloadKind = CleanRoomPayload["kind"];
export type PayloadOf<K extends PayloadKind> = Extract<CleanRoomPayload, { kind: K }>;
export type TraceStepName = (typeof TRACE_STEPS)[number];

/** Result of {@link parsePayload}: the payload, or a readable multi-line error message. */
export type ParseOutcome = { ok: true; payload: CleanRoomPayload } | { ok: false; error: string };

/**
 * Parse untrusted display data. Never throws.
 *
 * @example
 * const r = parsePayload({ kind: "error", version: 1, code: "PARAM_INVALID", message: "bad" });
 * if (r.ok) console.log(r.payload.kind); // "error"
 */
export function parsePayload(data: unknown): ParseOutcome {
  const r = CleanRoomPayload.safeParse(data);
  if (r.success) return { ok: true, payload: r.data };
  return { ok: false, error: z.prettifyError(r.error) };
}
