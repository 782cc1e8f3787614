/**
 * The lift chart drawn here as a self-contained SVG, for the `text/html` fallback: nbconvert's
 * HTML export and GitHub strip scripts and inline `<svg>`, so the HTML view embeds it as an
 * `<img>` data URI (as labs/lab-chart.ts does). Same content as the Vega-Lite spec the
 * extension draws (vegalite.ts `liftChartSpec`): conversion rate per arm with its interval,
 * the relative lift with its interval and zero line, and the ground truth when the payload
 * carries one.
 *
 * Nothing here is privacy-relevant (already released numbers); every string is XML-escaped.
 */
import type { PayloadOf } from "./schema.js";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const pct = (v: number, d = 1) => `${+(v * 100).toFixed(d)}%`;

/** An error bar's path: a line from x1 to x2 at y with end ticks of half-height h. */
function whisker(x1: number, x2: number, y: number, h: number): string {
  const [a, b] = [x1.toFixed(1), x2.toFixed(1)];
  return `M${a},${y - h}v${2 * h}M${a},${y}H${b}M${b},${y - h}v${2 * h}`;
}

/** Up to ~6 round ticks covering [lo, hi]. */
function ticks(lo: number, hi: number): number[] {
  const raw = (hi - lo) / 5 || 0.01;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + 1e-12; v += step) out.push(Number(v.toPrecision(10)));
  return out;
}

/**
 * The lift payload's chart as an SVG document (560 × 250 px).
 *
 * @example
 * const svg = liftChartSvg(payload); // "<svg xmlns=…"
 */
export function liftChartSvg(p: PayloadOf<"lift">): string {
  const level = Math.round((p.level ?? 0.95) * 100);
  const W = 560;
  const L = 130;
  const R = 24;
  const plot = W - L - R;
  const parts: string[] = [];
  const text = (x: number, y: number, s: string, extra = "", fill = "#555") =>
    `<text x="${x.toFixed(1)}" y="${y.toFixed(1)}" fill="${fill}" ${extra}>${esc(s)}</text>`;
  parts.push(text(8, 18, `Conversion rate by group and lift, ${level}% CI`, 'font-weight="600" font-size="13"', "#333"));

  // panel 1: rate per arm
  const rmax = Math.max(p.test.ci[1], p.control.ci[1], p.test.rate, p.control.rate) * 1.08 || 0.01;
  const plot1 = plot - 130; // room on the right for each bar's "rate [CI]" label
  const rx = (v: number) => L + (Math.max(0, v) / rmax) * plot1;
  const arms: [string, PayloadOf<"lift">["test"], string][] = [
    ["test (exposed)", p.test, "#3b7dd8"],
    ["control (holdout)", p.control, "#8c8c8c"],
  ];
  const top = 34;
  for (const t of ticks(0, rmax)) {
    parts.push(`<line x1="${rx(t).toFixed(1)}" y1="${top}" x2="${rx(t).toFixed(1)}" y2="${top + 90}" stroke="#ddd"/>`);
    parts.push(text(rx(t), top + 104, pct(t), 'text-anchor="middle" font-size="10"'));
  }
  arms.forEach(([name, a, color], i) => {
    const y = top + 14 + i * 40;
    parts.push(text(L - 8, y + 17, name, 'text-anchor="end"'));
    parts.push(`<rect x="${L}" y="${y}" width="${(rx(a.rate) - L).toFixed(1)}" height="26" fill="${color}" fill-opacity="0.75"/>`);
    const [x1, x2, yc] = [rx(a.ci[0]), rx(a.ci[1]), y + 13];
    parts.push(`<path d="${whisker(x1, x2, yc, 6)}" stroke="#555" stroke-width="1.5" fill="none"/>`);
    parts.push(text(x2 + 6, yc + 4, `${pct(a.rate, 2)} [${pct(a.ci[0], 2)}, ${pct(a.ci[1], 2)}]`, 'font-size="10"'));
  });
  parts.push(text(L + plot1 / 2, top + 120, "conversion rate", 'text-anchor="middle" font-size="11"', "#333"));

  // panel 2: relative lift, zero line, ground truth
  const gt = p.groundTruth?.lift;
  const lo0 = Math.min(0, p.lift.ci[0], gt ?? 0);
  const hi0 = Math.max(0, p.lift.ci[1], gt ?? 0);
  const pad = (hi0 - lo0) * 0.08 || 0.01;
  const [lo, hi] = [lo0 - pad, hi0 + pad];
  const lx = (v: number) => L + ((v - lo) / (hi - lo)) * plot;
  const t2 = top + 158;
  for (const t of ticks(lo, hi)) {
    parts.push(`<line x1="${lx(t).toFixed(1)}" y1="${t2}" x2="${lx(t).toFixed(1)}" y2="${t2 + 44}" stroke="#ddd"/>`);
    parts.push(text(lx(t), t2 + 58, pct(t, 0), 'text-anchor="middle" font-size="10"'));
  }
  parts.push(`<line x1="${lx(0).toFixed(1)}" y1="${t2}" x2="${lx(0).toFixed(1)}" y2="${t2 + 44}" stroke="#8c8c8c"/>`);
  const yc = t2 + 22;
  const [a, b, e] = [lx(p.lift.ci[0]), lx(p.lift.ci[1]), lx(p.lift.estimate)];
  parts.push(text(L - 8, yc + 4, "relative lift", 'text-anchor="end"'));
  parts.push(`<path d="${whisker(a, b, yc, 7)}" stroke="#3b7dd8" stroke-width="2" fill="none"/>`);
  parts.push(`<circle cx="${e.toFixed(1)}" cy="${yc}" r="5.5" fill="#3b7dd8"/>`);
  parts.push(text(e, yc + 19, pct(p.lift.estimate), 'text-anchor="middle" font-size="10"', "#3b7dd8"));
  if (gt !== undefined) {
    const g = lx(gt);
    parts.push(
      `<line x1="${g.toFixed(1)}" y1="${t2 - 2}" x2="${g.toFixed(1)}" y2="${t2 + 46}" stroke="#e07b00" stroke-width="2" stroke-dasharray="5 3"/>`,
    );
    parts.push(text(g + 4, t2 - 4, `ground truth ${pct(gt, 2)}`, 'font-size="11"', "#e07b00"));
  }
  parts.push(text(L + plot / 2, t2 + 74, `relative lift, ${level}% CI`, 'text-anchor="middle" font-size="11"', "#333"));
  const H = t2 + 84;
  return (
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">` +
    `<rect width="${W}" height="${H}" fill="#fff"/>${parts.join("")}</svg>`
  );
}

/** The chart as a `data:image/svg+xml;base64,…` URI for an `<img>`. */
export function liftChartDataUri(p: PayloadOf<"lift">): string {
  return `data:image/svg+xml;base64,${Buffer.from(liftChartSvg(p), "utf8").toString("base64")}`;
}
