/**
 * Display payloads from the result objects of the other layers: a clean-room `QueryResult`,
 * a `LiftResult`, a PSI run, an audit report. Pure functions of already-released data: they
 * copy what the result says (never anything else) into the MIME payload's shape and validate
 * it. (The enclave layer builds its attestation payload itself: enclave/report.ts; the DP
 * ledger's budget payload is in ./from-ledger.ts.)
 */
import type { QueryResult } from "../cleanroom/release.js";
import type { LiftEstimate, LiftResult } from "../studies/lift.js";
import type { PsiRunResult, TranscriptStep } from "../identity/run-psi.js";
import type { AuditEntry, AuditHead, AuditVerification } from "../purpose/audit.js";
import type { PayloadOf, TraceStepName } from "./schema.js";
import { checkPayload } from "./bundle.js";
import { cellPlusMinusRows, columnNoise } from "./noise.js";

/**
 * What an opt-in non-negative clamp changed in a query result (post-processing of released
 * values: no privacy cost, never silent): every cell it touched with the value the room released.
 */
export interface ClampReport {
  clamp: "nonNegative";
  note: string;
  cells: { row: number; column: string; released: number | string }[];
}

type Opts = { title?: string };
const ratNum = (s: string | undefined): number | undefined => {
  if (s === undefined) return undefined;
  const [n, d] = s.split("/");
  return d === undefined ? Number(n) : Number(n) / Number(d);
};

/**
 * A clean-room query result → `query` payload: released rows, then one row per suppressed
 * group (dimension values only, aggregates `null`) marked with its rule and the threshold.
 *
 * @example
 * show(queryPayloadFromResult(result, { purpose: "measurement.lift" }));
 */
export function queryPayloadFromResult(
  r: QueryResult & { postProcessing?: ClampReport },
  opts: Opts & { purpose?: string } = {},
): PayloadOf<"query"> {
  const noisy = r.noise !== null;
  const columns = [
    ...r.dimensions.map((name) => ({ name, type: "string" as const })),
    ...r.aggregates.map((name) => {
      const n = r.noise ? columnNoise(r.noise, name) : undefined;
      return { name, type: "number" as const, noisy, ...(n ? { noise: n } : {}) };
    }),
  ];
  const names = [...r.dimensions, ...r.aggregates];
  const clampedAt = new Map<number, { column: number; released: number | string }[]>();
  for (const c of r.postProcessing?.cells ?? []) {
    const list = clampedAt.get(c.row) ?? [];
    list.push({ column: names.indexOf(c.column), released: c.released });
    clampedAt.set(c.row, list);
  }
  const pm = r.noise ? cellPlusMinusRows(r.noise, r.rows.length, names) : [];
  const rows: PayloadOf<"query">["rows"] = r.rows.map((row, i) => ({
    values: names.map((n) => row[n] ?? null),
    ...(clampedAt.has(i) ? { clamped: clampedAt.get(i)! } : {}),
    ...(pm[i] ? { plusMinus: pm[i] } : {}),
  }));
  for (const s of r.suppressed.rows) {
    rows.push({
      values: names.map((n, i) => (i < r.dimensions.length ? (s.key[n] ?? null) : null)),
      suppressed: {
        rule: s.rule,
        threshold: r.suppressed.minimum,
        reason:
          s.reason === "difference_check"
            ? "difference check: releasing it would reveal a small group by subtraction"
            : s.reason === "complementary"
              ? `withheld: fewer than ${r.suppressed.minimum} distinct privacy units, or it would reveal such a cell from the published totals`
              : `fewer than ${r.suppressed.minimum} distinct privacy units (${r.suppressed.decidedOn} count; minimum set by ${r.suppressed.minimumFrom})`,
      },
    });
  }
  const cost = r.cost;
  // one query-wide scale only when it is true of every noisy column (each column carries its own)
  const scales = new Set(columns.flatMap((c) => ("noise" in c && c.noise ? [`${c.noise.scale}/${c.noise.sensitivity}`] : [])));
  const uniform = scales.size === 1 ? columns.find((c) => "noise" in c && c.noise) : undefined;
  const shared =
    uniform && "noise" in uniform && uniform.noise ? { scale: uniform.noise.scale, sensitivity: uniform.noise.sensitivity } : {};
  const p = {
    kind: "query" as const,
    version: 1 as const,
    title: opts.title ?? r.templateName,
    templateHash: r.templateHash,
    ...(opts.purpose ? { purpose: opts.purpose } : {}),
    engine: r.engine,
    columns,
    rows,
    noise: r.noise
      ? {
          mechanism: r.noise.mechanism,
          ...shared,
          ...(cost
            ? {
                cost: ratNum(cost.kind === "zCdp" ? cost.rho : cost.epsilon),
                unit: cost.kind === "zCdp" ? ("rho" as const) : ("epsilon" as const),
              }
            : {}),
        }
      : { mechanism: "none" as const },
    ...(r.postProcessing ? { postProcessing: { clamp: r.postProcessing.clamp, cells: r.postProcessing.cells.length } } : {}),
    rngMode: r.rngStamp.rngMode,
    ...(r.rngStamp.label ? { label: r.rngStamp.label } : {}),
  };
  return checkPayload(p) as PayloadOf<"query">;
}

/**
 * A refusal → `query` payload with the "why blocked" trace: every step before `failedAt` ok,
 * `failedAt` refused with the error's message, later steps skipped — except `audit`, which
 * records the refusal (DESIGN.md: a refusal leaves only its own audit entry).
 *
 * @example
 * try { room.cleanRoomQuery(...) } catch (e) { show(refusedQueryPayload(e, "purpose")) }
 */
export function refusedQueryPayload(
  error: { code: string; message: string },
  failedAt: TraceStepName,
  opts: Opts & { purpose?: string; templateHash?: string; audited?: boolean } = {},
): PayloadOf<"query"> {
  const order: TraceStepName[] = ["parse", "purpose", "rule", "plan", "cost", "budget", "execute", "threshold", "audit"];
  const at = order.indexOf(failedAt);
  const message = error.message.replace(/^\[[A-Z_]+\] /, "");
  const trace = order.map((step, i) => {
    if (step === "audit" && failedAt !== "audit") {
      return opts.audited === false ? { step, status: "skipped" as const } : { step, status: "ok" as const, reason: "refusal recorded" };
    }
    if (i < at) return { step, status: "ok" as const };
    if (i === at) return { step, status: "refused" as const, reason: message };
    return { step, status: "skipped" as const, ...(step === "budget" ? { reason: "nothing charged" } : {}) };
  });
  return checkPayload({
    kind: "query",
    version: 1,
    title: opts.title ?? "Query refused",
    columns: [],
    rows: [],
    ...(opts.purpose ? { purpose: opts.purpose } : {}),
    ...(opts.templateHash ? { templateHash: opts.templateHash } : {}),
    refused: { code: error.code, message },
    trace,
  }) as PayloadOf<"query">;
}

/** Wald interval of one arm's rate, widened by the noise variance of its numerator. */
function armCi(rate: number, n: number, z: number, numeratorNoiseVar = 0): [number, number] {
  const se = Math.sqrt(Math.max(0, (rate * (1 - rate)) / n + numeratorNoiseVar / (n * n)));
  return [Math.max(0, rate - z * se), Math.min(1, rate + z * se)];
}

/**
 * A lift result (converter rate, the headline metric) → `lift` payload; an `error` payload
 * when the lift is not estimable (suppressed or empty arm).
 *
 * @example
 * show(liftPayloadFromResult(computeLift(aggregates, { noiseVariance }), { converterNoiseVariance: 4, groundTruth: { lift: 0.12 } }));
 */
export function liftPayloadFromResult(
  r: LiftResult,
  opts: Opts & {
    converterNoiseVariance?: number;
    groundTruth?: { lift: number; incrementalConversions?: number };
    rngStamp?: { rngMode: "secure" | "seeded"; label?: string };
  } = {},
): PayloadOf<"lift"> | PayloadOf<"error"> {
  const e: LiftEstimate = r.converters;
  const rel = e.ci?.relativeLiftLog ?? e.ci?.relativeLift ?? null;
  if (r.belowThreshold || e.test === null || e.control === null || e.relativeLift === null || rel === null || !e.ci || !e.variance) {
    return checkPayload({
      kind: "error",
      version: 1,
      code: "THRESHOLD_NOT_MET",
      field: "lift",
      message: r.flags.map((f) => f.reason).join("; ") || "lift is not estimable for this study (an arm is empty or suppressed)",
    }) as PayloadOf<"error">;
  }
  const noise = opts.converterNoiseVariance ?? 0;
  const v = e.variance.relativeLift ?? e.variance.absoluteLift;
  const p = {
    kind: "lift" as const,
    version: 1 as const,
    ...(opts.title ? { title: opts.title } : {}),
    level: r.confidence,
    test: {
      population: r.testPopulation,
      conversions: Math.round(e.test * r.testPopulation),
      rate: e.test,
      ci: armCi(e.test, r.testPopulation, r.z, noise),
    },
    control: {
      population: r.controlPopulation,
      conversions: Math.round(e.control * r.controlPopulation),
      rate: e.control,
      ci: armCi(e.control, r.controlPopulation, r.z, noise),
    },
    lift: { estimate: e.relativeLift, ci: rel },
    ...(e.incremental !== null ? { incrementalConversions: { estimate: e.incremental, ci: e.ci.incremental } } : {}),
    noiseVarianceShare: Math.min(1, Math.max(0, v.noiseShare)),
    flags: [
      ...r.flags.map((f) => ({ code: `BELOW_THRESHOLD_${f.field}`, severity: "warning" as const, message: f.reason })),
      ...r.notes.map((n, i) => ({ code: `NOTE_${i + 1}`, severity: "info" as const, message: n })),
    ],
    ...(opts.groundTruth ? { groundTruth: opts.groundTruth } : {}),
    ...(opts.rngStamp ?? {}),
  };
  return checkPayload(p) as PayloadOf<"lift">;
}

function summary(t: TranscriptStep): string {
  return `${t.count.toLocaleString("en-US")} ${t.kind} element${t.count === 1 ? "" : "s"} (sha256 ${t.sha256.slice(0, 12)}…)`;
}

/**
 * A PSI run → `psi` payload: set sizes, match count and rate, and for each party the
 * messages it received (summaries from the transcript, never elements) and what it learned.
 *
 * @example
 * show(psiPayloadFromRun(runPsi(advertiserRows, retailerRows, { mode: "cardinality", rng })));
 */
export function psiPayloadFromRun(r: PsiRunResult, opts: Opts = {}): PayloadOf<"psi"> {
  const m = r.matchReport;
  const learned = (who: "A" | "B"): string => {
    if (r.mode === "joinKeys") return "the intersection size and a join key for each matched record";
    if (who === "A") return r.mode === "intersection" ? "which of its records matched (the intersection)" : "the intersection size only";
    return "the other party's set size only";
  };
  const party = (s: typeof m.partyA, who: "A" | "B") => ({
    name: s.name,
    setSize: s.distinctIdentifiers,
    learned: learned(who),
    saw: r.transcript
      .filter((t) => t.to === s.name)
      .map((t) => ({ message: t.kind, from: t.from, to: t.to, summary: summary(t), bytes: t.bytes })),
  });
  const smaller = Math.min(m.partyA.distinctIdentifiers, m.partyB.distinctIdentifiers);
  return checkPayload({
    kind: "psi",
    version: 1,
    ...(opts.title ? { title: opts.title } : {}),
    mode: r.mode,
    parties: [party(m.partyA, "A"), party(m.partyB, "B")],
    matchCount: m.intersectionSize,
    matchRate: smaller > 0 ? m.intersectionSize / smaller : 0,
    rngMode: r.rngStamp.rngMode,
    ...(r.rngStamp.label ? { label: r.rngStamp.label } : {}),
  }) as PayloadOf<"psi">;
}

/**
 * An audit report (`AuditLog.report()`) → `audit` payload. `templateNames` maps template
 * hashes to their approved names (the room's template registry): the view shows the name and
 * keeps the hash on hover.
 *
 * @example
 * show(auditPayloadFromReport(audit.report({ limit: 50 })));
 */
export function auditPayloadFromReport(
  rep: {
    verification: AuditVerification;
    rows: Array<{ index: number; hash: string; prevHash: string; entry: AuditEntry }>;
    heads: Array<AuditHead & { verified: boolean }>;
  },
  opts: Opts & { templateNames?: Readonly<Record<string, string>> } = {},
): PayloadOf<"audit"> {
  const names = opts.templateNames ?? {};
  const v = rep.verification;
  return checkPayload({
    kind: "audit",
    version: 1,
    ...(opts.title ? { title: opts.title } : {}),
    entries: rep.rows.map(({ index, hash, prevHash, entry: e }) => ({
      index,
      at: e.ts,
      actor: e.who.analyst ? `${e.who.party}/${e.who.analyst}` : e.who.party,
      action: e.action,
      // a counted entry (the room server's summary of unauthenticated refusals) says how many it stands for
      outcome: (e.errorCode ? `${e.outcome}: ${e.errorCode}` : e.outcome) + (e.count !== undefined ? ` ×${e.count}` : ""),
      hash,
      prevHash,
      ...(e.purpose ? { details: e.purpose } : {}),
      ...(e.templateHash
        ? { template: { hash: e.templateHash, ...(Object.hasOwn(names, e.templateHash) ? { name: names[e.templateHash] } : {}) } }
        : {}),
    })),
    verification: { ok: v.ok, firstBadIndex: v.firstBadIndex, ...(v.ok ? {} : { reason: `${v.problem ?? "problem"}: ${v.detail}` }) },
    heads: rep.heads.map((h) => ({ index: Math.max(0, h.count - 1), hash: h.hash, signature: h.signature, verified: h.verified })),
  }) as PayloadOf<"audit">;
}
