/**
 * The data scientist's view of a DP-SGD training run: loss curve, ε over steps, accuracy vs ε
 * (one Vega-Lite v5 spec, three panels), an HTML summary and a text table. Attached to the plain
 * result like `withMimeBundle` does, under `application/vnd.vegalite.v5+json` (any Vega
 * renderer), `text/html` and `text/plain`. Every number shown is already released (model,
 * noisy-histogram metrics) or public (ε from public parameters). Strings are HTML-escaped.
 */
import type { RngMode } from "../rng.js";

export interface TrainingCurvePoint {
  epoch: number;
  steps: number;
  epsilon: number;
  loss: number;
  accuracy: number;
  auc: number;
}

/** What `trainModel` returns (plain data). */
export interface TrainingResult {
  kind: "dpTraining";
  model: { kind: "logistic"; features: { name: string; lo: number; hi: number }[]; weights: number[]; bias: number };
  privacy: {
    accountant: string;
    sampleRate: number;
    noiseMultiplier: number;
    clipNorm: number;
    steps: number;
    epochs: number;
    metricsNoise: number;
    delta: number;
    epsilon: number;
    charged: string;
    chargeUnits: string;
    chargeId: string;
  };
  curve: TrainingCurvePoint[];
  metrics: {
    accuracy: number;
    auc: number;
    logLoss: number;
    calibration: { bin: number; predicted: number; observed: number | null; rows: number }[];
  };
  enclave: { moduleId: string; imageSha384: string; owners: string[]; outputSha384: string };
  rngMode: RngMode;
  label?: string;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const f3 = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : String(x));

/** The three-panel Vega-Lite spec. @example trainingSpec(result).hconcat.length // 3 */
export function trainingSpec(r: TrainingResult): Record<string, unknown> & { hconcat: unknown[] } {
  const values = r.curve.map((p) => ({ ...p }));
  const panel = (title: string, x: string, xTitle: string, y: string, yTitle: string) => ({
    title,
    width: 220,
    height: 180,
    mark: { type: "line", point: true },
    encoding: {
      x: { field: x, type: "quantitative", title: xTitle },
      y: { field: y, type: "quantitative", title: yTitle, scale: { zero: false } },
    },
  });
  return {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: `DP-SGD logistic regression (ε = ${f3(r.privacy.epsilon)}, δ = ${r.privacy.delta})`,
    data: { values },
    hconcat: [
      panel("Held-out loss (noisy)", "epoch", "epoch", "loss", "binned log-loss"),
      panel("Privacy spent", "steps", "DP-SGD steps", "epsilon", "ε"),
      panel("Accuracy vs ε", "epsilon", "ε", "accuracy", "held-out accuracy (noisy)"),
    ],
  };
}

/** Text view. */
export function trainingText(r: TrainingResult): string {
  const head = [
    `DP-SGD logistic regression — trained inside ${r.enclave.moduleId} (owners: ${r.enclave.owners.join(", ")})`,
    `  charged: ${r.privacy.charged}  [${r.privacy.chargeUnits}]`,
    `  RDP ε = ${f3(r.privacy.epsilon)} at δ = ${r.privacy.delta}; ` +
      `q = ${r.privacy.sampleRate}, σ = ${r.privacy.noiseMultiplier}, C = ${r.privacy.clipNorm}, ${r.privacy.steps} steps`,
    `  held-out (noisy): accuracy ${f3(r.metrics.accuracy)}, AUC ${f3(r.metrics.auc)}, log-loss ${f3(r.metrics.logLoss)}`,
    ...(r.rngMode === "seeded" ? [`  ${r.label ?? "teaching mode — not private"}`] : []),
    "  epoch  steps      ε   loss    acc    AUC",
  ];
  const rows = r.curve.map(
    (p) =>
      `  ${String(p.epoch).padStart(5)} ${String(p.steps).padStart(6)} ${f3(p.epsilon).padStart(6)} ${f3(p.loss)} ${f3(p.accuracy)} ${f3(p.auc)}`,
  );
  const w = r.model.features.map((f, i) => `${f.name} ${f3(r.model.weights[i]!)}`).join(", ");
  return [...head, ...rows, `  weights: ${w}; bias ${f3(r.model.bias)}`].join("\n");
}

/** HTML view (a summary and the curve as a table; the charts come with the Vega-Lite entry). */
export function trainingHtml(r: TrainingResult): string {
  const tr = (cells: string[], th = false) => `<tr>${cells.map((c) => (th ? `<th>${c}</th>` : `<td>${c}</td>`)).join("")}</tr>`;
  const label = r.rngMode === "seeded" ? `<p><strong>${esc(r.label ?? "teaching mode — not private")}</strong></p>` : "";
  return [
    `<div class="cleanroom-training"><h4>DP-SGD logistic regression — inside ${esc(r.enclave.moduleId)}</h4>`,
    label,
    `<p>Charged: <strong>${esc(r.privacy.charged)}</strong> (${esc(r.privacy.chargeUnits)}). RDP ε = ${f3(r.privacy.epsilon)} at δ = ${r.privacy.delta}.</p>`,
    `<p>Held-out, from noisy histograms: accuracy ${f3(r.metrics.accuracy)}, AUC ${f3(r.metrics.auc)}.</p>`,
    "<table>",
    tr(["epoch", "steps", "ε", "loss", "accuracy", "AUC"], true),
    ...r.curve.map((p) => tr([String(p.epoch), String(p.steps), f3(p.epsilon), f3(p.loss), f3(p.accuracy), f3(p.auc)])),
    "</table></div>",
  ].join("");
}

/**
 * Attach the view (non-enumerable: the JSON form stays plain data).
 * @example withTrainingView(result)[Symbol.for("jupyter.mimebundle")]()["text/plain"]
 */
export function withTrainingView<T extends TrainingResult>(r: T): T {
  Object.defineProperty(r, Symbol.for("jupyter.mimebundle"), {
    value: () => ({ "application/vnd.vegalite.v5+json": trainingSpec(r), "text/html": trainingHtml(r), "text/plain": trainingText(r) }),
    enumerable: false,
    configurable: true,
  });
  Object.defineProperty(r, Symbol.for("nodejs.util.inspect.custom"), {
    value: () => trainingText(r),
    enumerable: false,
    configurable: true,
  });
  return r;
}
