/**
 * One literal example payload per kind: documentation of the MIME contract by example, the
 * fixtures of the display tests and golden specs, and the content of the extension's
 * browser test notebook (test/e2e). The numbers are illustrative, not results of a run.
 */
import type { CleanRoomPayloadInput, PayloadKind } from "./schema.js";

const H1 = "9f2c4e1ab37d55c0e8b1a2d3c4f5061728394a5b6c7d8e9f00112233445566aa";
const H2 = "1b7e3d9c0a4f6e2d8c5b7a9f1e3d5c7b9a0f2e4d6c8b0a1f3e5d7c9b1a3f5e7d";

/** Example payloads keyed by kind. */
export const EXAMPLE_PAYLOADS: { [K in PayloadKind]: Extract<CleanRoomPayloadInput, { kind: K }> } = {
  budget: {
    kind: "budget",
    version: 1,
    roomId: "lift-study-2026",
    budgets: [
      {
        scope: "collaboration",
        subject: "lift-study-2026",
        accountant: "pureDp",
        unit: "epsilon",
        total: 3,
        spent: 1.25,
        remaining: 1.75,
        exact: { total: "3", spent: "5/4", remaining: "7/4" },
        history: [
          { at: "2026-11-25T03:01:12Z", templateHash: H1, purpose: "measurement.lift", cost: 1, outcome: "charged" },
          { at: "2026-11-25T03:04:40Z", templateHash: H2, purpose: "measurement.reach", cost: 0.25, outcome: "charged" },
          {
            at: "2026-11-25T03:05:02Z",
            templateHash: H1,
            purpose: "measurement.lift",
            cost: 2,
            outcome: "refused",
            note: "BUDGET_EXCEEDED",
          },
        ],
      },
      {
        scope: "party",
        subject: "retailer",
        accountant: "pureDp",
        unit: "epsilon",
        total: 2,
        spent: 1.25,
        remaining: 0.75,
        history: [],
      },
    ],
  },
  query: {
    kind: "query",
    version: 1,
    title: "Conversions by region",
    templateHash: H1,
    purpose: "measurement.lift",
    engine: "arquero",
    columns: [
      { name: "region", type: "string" },
      {
        name: "converters",
        type: "integer",
        noisy: true,
        noise: { parameterName: "scale", scale: 2, sensitivity: 1, halfWidth: 6, level: 0.95 },
      },
      {
        name: "value_cents",
        type: "integer",
        noisy: true,
        noise: { parameterName: "scale", scale: 20000, sensitivity: 10000, halfWidth: 59915, level: 0.95 },
      },
    ],
    rows: [
      { values: ["north", 1312, 905144] },
      { values: ["south", 1187, 811930] },
      { values: ["east", 1254, 880012] },
      { values: ["online", 57, -21870] },
      {
        values: ["west", null, null],
        suppressed: { rule: "minimum group size", threshold: 50, reason: "fewer distinct privacy units than the threshold" },
      },
    ],
    noise: { mechanism: "discreteLaplace", cost: 0.5, unit: "epsilon" },
    rngMode: "seeded",
    label: "teaching mode — not private",
  },
  lift: {
    kind: "lift",
    version: 1,
    level: 0.95,
    test: { population: 40000, conversions: 1840, rate: 0.046, ci: [0.0439, 0.0481] },
    control: { population: 10000, conversions: 400, rate: 0.04, ci: [0.0362, 0.0438] },
    lift: { estimate: 0.15, ci: [0.028, 0.272] },
    incrementalConversions: { estimate: 240, ci: [45, 435] },
    noiseVarianceShare: 0.083,
    flags: [{ code: "SMALL_CONTROL", severity: "warning", message: "control group under 25% of the study: wide interval" }],
    groundTruth: { lift: 0.14 },
  },
  psi: {
    kind: "psi",
    version: 1,
    mode: "cardinality",
    parties: [
      {
        name: "advertiser",
        setSize: 50000,
        learned: "the intersection size only",
        saw: [
          {
            message: "response",
            from: "retailer",
            to: "advertiser",
            summary: "50,000 doubly blinded points, shuffled; 80,000 singly blinded points",
            bytes: 4160000,
          },
        ],
      },
      {
        name: "retailer",
        setSize: 80000,
        learned: "the advertiser's set size",
        saw: [{ message: "request", from: "advertiser", to: "retailer", summary: "50,000 blinded ristretto255 points", bytes: 1600000 }],
      },
    ],
    matchCount: 31250,
    matchRate: 0.625,
  },
  attestation: {
    kind: "attestation",
    version: 1,
    document: [
      { name: "module_id", value: "cleanroom-enclave-01" },
      { name: "digest", value: "SHA384" },
      { name: "timestamp", value: "2026-11-25T03:10:00Z" },
      { name: "pcr0 (measurement)", value: "a3f1…" + H1.slice(0, 24) },
      { name: "debug", value: false },
      { name: "nonce", value: H2.slice(0, 32) },
    ],
    checks: [
      { name: "signature chains to the lab root", status: "ok" },
      { name: "measurement is approved", status: "ok" },
      { name: "nonce is fresh", status: "ok" },
      { name: "not a debug enclave", status: "ok" },
      { name: "timestamp within 5 minutes", status: "failed", reason: "document is 17 minutes old" },
    ],
    verified: false,
    keyRelease: { outcome: "denied", reason: "ATTESTATION_STALE" },
  },
  audit: {
    kind: "audit",
    version: 1,
    entries: [
      { index: 0, at: "2026-11-25T03:00:00Z", actor: "advertiser", action: "upload exposures", outcome: "ok", hash: H1 },
      {
        index: 1,
        at: "2026-11-25T03:01:12Z",
        actor: "advertiser",
        action: "query",
        outcome: "ok",
        hash: H2,
        prevHash: H1,
        template: { name: "conversions by region", hash: H1 },
      },
      {
        index: 2,
        at: "2026-11-25T03:05:02Z",
        actor: "advertiser",
        action: "query",
        outcome: "refused: BUDGET_EXCEEDED",
        hash: H1.split("").reverse().join(""),
        prevHash: H2,
        template: { name: "conversions by region", hash: H1 },
      },
    ],
    verification: { ok: false, firstBadIndex: 2, reason: "entry hash does not match its contents" },
    heads: [{ index: 1, hash: H2, signature: "ed25519:" + H1.slice(0, 16), verified: true }],
  },
  purpose: {
    kind: "purpose",
    version: 1,
    grants: [
      {
        party: "retailer",
        dataset: "purchases",
        purpose: "measurement.lift",
        dataUses: ["analytics.reporting.ad_performance"],
        expires: "2027-01-01",
        status: "active",
      },
    ],
    decisions: [
      { requester: "advertiser", purpose: "measurement.lift", dataset: "purchases", decision: "allow", reason: "grant matches" },
      {
        requester: "advertiser",
        purpose: "marketing.advertising.targeting",
        dataset: "purchases",
        decision: "deny",
        reason: "no grant for this purpose",
      },
    ],
  },
  error: {
    kind: "error",
    version: 1,
    code: "BUDGET_EXCEEDED",
    message: "Requested ε 2, Remaining ε 1.75, Difference ε 0.25",
    field: "epsilon",
  },
  progress: {
    kind: "progress",
    version: 1,
    task: "PSI (joinKeys)",
    phase: "server: blind client set",
    done: 12000,
    total: 20000,
    phases: [
      { name: "client: hash and blind own set", done: 5000, total: 5000 },
      { name: "server: hash and blind own set", done: 5000, total: 5000 },
      { name: "server: blind client set", done: 2000, total: 5000 },
    ],
    elapsedMs: 6200,
    etaMs: 4100,
    state: "running",
  },
  preview: {
    kind: "preview",
    version: 1,
    title: "Preview — lift by region (nothing charged)",
    templateHash: H2,
    threshold: {
      effective: 100,
      from: "advertiser/exposures",
      template: 20,
      text:
        "≥ 100 distinct people per released row (set by the analysis rule of advertiser/exposures; " +
        "the template's own minimum 20 is looser and does not apply)",
    },
    checks: [
      {
        use: "aggregate",
        column: "AVG(purchases.value_cents)",
        rule: "retailer/purchases",
        allowed: false,
        reason: "allows SUM(value_cents)",
      },
      { use: "dimension", column: "exposures.region", rule: "advertiser/exposures", allowed: true, reason: "allows region as a dimension" },
    ],
    plusMinus: [
      { name: "units", plusMinus: 15 },
      { name: "value", plusMinus: 1497683 },
    ],
    confidence: 0.95,
    cost: "ε = 1",
    runsLeft: { party: "advertiser", runs: 3 },
    refused: {
      code: "QUERY_NOT_APPROVED",
      message: "AVG(value_cents) is not allowed by the rule of retailer/purchases; on value_cents it allows SUM(value_cents)",
    },
  },
  export: {
    kind: "export",
    version: 1,
    title: "Export — basket value by region",
    templateName: "basket value by region",
    templateHash: H2,
    targets: [
      {
        target: "aws",
        name: "AWS Clean Rooms",
        files: [
          { name: "analysis-template.sql", language: "sql", text: "WITH b AS (SELECT b.`join_key` FROM `exposures` AS b) SELECT 1" },
          { name: "create-analysis-template.json", language: "json", text: '{ "format": "SQL" }' },
        ],
        differences: ["noise: AWS adds its own differential-privacy noise, not the lab's"],
        shims: ['identifiers: `backticks` → "double quotes"'],
        proof: { equal: true, rows: 4, suppressed: 0, difference: null },
      },
      {
        target: "bigquery",
        name: "BigQuery data clean rooms",
        files: [{ name: "query.sql", language: "sql", text: "SELECT WITH AGGREGATION_THRESHOLD OPTIONS(threshold = 120) …" }],
        differences: ["threshold: groups below the threshold are dropped silently"],
        shims: ["`WITH AGGREGATION_THRESHOLD OPTIONS(…)` removed"],
      },
    ],
  },
};

/** A refused query: empty rows, with the "why blocked" trace. */
export const EXAMPLE_REFUSED_QUERY: Extract<CleanRoomPayloadInput, { kind: "query" }> = {
  kind: "query",
  version: 1,
  title: "Row export attempt",
  purpose: "marketing.advertising.targeting",
  columns: [],
  rows: [],
  refused: { code: "PURPOSE_DENIED", message: "purpose marketing.advertising.targeting is not granted on dataset purchases" },
  trace: [
    { step: "parse", status: "ok" },
    { step: "purpose", status: "refused", reason: "no grant for marketing.advertising.targeting" },
    { step: "rule", status: "skipped" },
    { step: "plan", status: "skipped" },
    { step: "cost", status: "skipped" },
    { step: "budget", status: "skipped", reason: "nothing charged" },
    { step: "execute", status: "skipped" },
    { step: "threshold", status: "skipped" },
    { step: "audit", status: "ok", reason: "refusal recorded" },
  ],
};
