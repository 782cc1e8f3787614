/**
 * A small line chart for the course notebooks (attacker accuracy vs ε, match rate vs graph
 * decay): one plain result object that renders, as a cell's last expression, as a MIME
 * bundle with a Vega-Lite v5 spec (`application/vnd.vegalite.v5+json`, for Vega renderers), a
 * self-contained SVG drawn here (`image/svg+xml`, and as an `<img>` data URI in `text/html` —
 * what JupyterLab and nbconvert's HTML show) and a text table (`text/plain`).
 *
 * Nothing here is privacy-relevant: charts show already released or simulated numbers. All
 * strings are XML-escaped into the SVG.
 */
import { invalid } from "../errors.js";

/** One point of one named series. */
export interface ChartPoint {
  x: number;
  y: number;
  series: string;
}

export interface LineChartOptions {
  title: string;
  data: ChartPoint[];
  x: { title: string; log?: boolean };
  y: { title: string; min?: number; max?: number };
  /** Series drawn dashed (e.g. a theoretical bound). */
  dashed?: string[];
}

/** What {@link lineChart} returns: plain data plus the Vega-Lite spec. */
export interface LineChart {
  kind: "lineChart";
  title: string;
  data: ChartPoint[];
  spec: Record<string, unknown>;
}

const PALETTE = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2"];
const esc = (s: string) => s.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]!);
const fmt = (v: number) =>
  Math.abs(v) >= 100 || Number.isInteger(v) ? String(Math.round(v * 100) / 100) : v.toPrecision(3).replace(/\.?0+$/, "");

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++)
      for (const m of [1, 2, 5]) {
        const v = m * 10 ** e;
        if (v >= lo * 0.999 && v <= hi * 1.001) out.push(Number(v.toPrecision(3)));
      }
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 4 || 1));
  const n = (hi - lo) / step;
  const s = n > 10 ? step * (n > 20 ? 5 : 2) : step;
  const out: number[] = [];
  for (let v = Math.ceil(lo / s) * s; v <= hi + 1e-9; v += s) out.push(Number(v.toPrecision(6)));
  return out;
}

function svgOf(c: LineChart, o: LineChartOptions): string {
  const longest = Math.max(...c.data.map((p) => p.series.length));
  const R = Math.min(320, 50 + Math.ceil(longest * 6.2)),
    W = 400 + R,
    H = 300,
    L = 56,
    T = 34,
    B = 44;
  const xs = c.data.map((p) => p.x),
    ys = c.data.map((p) => p.y);
  const log = !!o.x.log;
  const xlo = Math.min(...xs),
    xhi = Math.max(...xs);
  const ylo = o.y.min ?? Math.min(...ys),
    yhi = o.y.max ?? Math.max(...ys);
  const tx = (v: number) => (log ? Math.log10(v / xlo) / Math.log10(xhi / xlo || 10) : (v - xlo) / (xhi - xlo || 1));
  const px = (v: number) => L + tx(v) * (W - L - R);
  const py = (v: number) => H - B - ((v - ylo) / (yhi - ylo || 1)) * (H - T - B);
  const parts: string[] = [];
  parts.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
  );
  parts.push(`<rect width="${W}" height="${H}" fill="#ffffff"/>`);
  parts.push(`<text x="${L}" y="18" font-size="13" font-weight="bold">${esc(c.title)}</text>`);
  for (const v of ticks(ylo, yhi, false))
    parts.push(
      `<line x1="${L}" x2="${W - R}" y1="${py(v)}" y2="${py(v)}" stroke="#ddd"/><text x="${L - 6}" y="${py(v) + 4}" text-anchor="end">${fmt(v)}</text>`,
    );
  for (const v of ticks(xlo, xhi, log))
    parts.push(
      `<line x1="${px(v)}" x2="${px(v)}" y1="${H - B}" y2="${H - B + 4}" stroke="#333"/>` +
        `<text x="${px(v)}" y="${H - B + 16}" text-anchor="middle">${fmt(v)}</text>`,
    );
  parts.push(
    `<line x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}" stroke="#333"/><line x1="${L}" x2="${L}" y1="${T}" y2="${H - B}" stroke="#333"/>`,
  );
  parts.push(`<text x="${(L + W - R) / 2}" y="${H - 8}" text-anchor="middle">${esc(o.x.title + (log ? " (log scale)" : ""))}</text>`);
  parts.push(`<text transform="translate(14 ${(T + H - B) / 2}) rotate(-90)" text-anchor="middle">${esc(o.y.title)}</text>`);
  const series = [...new Set(c.data.map((p) => p.series))];
  series.forEach((s, i) => {
    const col = PALETTE[i % PALETTE.length]!;
    const pts = c.data.filter((p) => p.series === s).sort((a, b) => a.x - b.x);
    const dash = o.dashed?.includes(s) ? ` stroke-dasharray="5 4"` : "";
    parts.push(
      `<polyline fill="none" stroke="${col}" stroke-width="2"${dash} points="${pts.map((p) => `${px(p.x).toFixed(1)},${py(p.y).toFixed(1)}`).join(" ")}"/>`,
    );
    for (const p of pts)
      parts.push(
        `<circle cx="${px(p.x).toFixed(1)}" cy="${py(p.y).toFixed(1)}" r="3" fill="${col}"><title>${esc(`${s}: ${fmt(p.x)} → ${fmt(p.y)}`)}</title></circle>`,
      );
    const ly = T + 10 + i * 18;
    parts.push(
      `<line x1="${W - R + 12}" x2="${W - R + 32}" y1="${ly}" y2="${ly}" stroke="${col}" stroke-width="2"${dash}/>` +
        `<text x="${W - R + 36}" y="${ly + 4}">${esc(s)}</text>`,
    );
  });
  parts.push("</svg>");
  return parts.join("");
}

function textOf(c: LineChart): string {
  const series = [...new Set(c.data.map((p) => p.series))];
  const xs = [...new Set(c.data.map((p) => p.x))].sort((a, b) => a - b);
  const rows = [
    ["x", ...series],
    ...xs.map((x) => [
      fmt(x),
      ...series.map((s) => {
        const p = c.data.find((d) => d.series === s && d.x === x);
        return p ? fmt(p.y) : "";
      }),
    ]),
  ];
  const w = rows[0]!.map((_, j) => Math.max(...rows.map((r) => r[j]!.length)));
  return [c.title, ...rows.map((r) => r.map((v, j) => v.padEnd(w[j]!)).join("  "))].join("\n");
}

/**
 * A line chart of one or more series (renders as Vega-Lite, SVG or a text table).
 *
 * @example
 * lineChart({ title: "Attacker accuracy vs ε", x: { title: "ε", log: true }, y: { title: "accuracy", min: 0.4, max: 1 },
 *   data: [{ x: 0.1, y: 0.52, series: "attack" }, { x: 1, y: 0.7, series: "attack" }] })
 */
export function lineChart(o: LineChartOptions): LineChart {
  if (!o || typeof o.title !== "string") invalid("title", "a chart title", o?.title);
  if (!Array.isArray(o.data) || o.data.length === 0) invalid("data", "non-empty array of { x, y, series }", o.data);
  o.data.forEach((p, i) => {
    if (!p || !Number.isFinite(p.x) || !Number.isFinite(p.y) || typeof p.series !== "string")
      invalid(`data[${i}]`, "{ x: finite number, y: finite number, series: string }", p);
    if (o.x?.log && !(p.x > 0)) invalid(`data[${i}].x`, "x > 0 on a log axis", p.x);
  });
  const data = o.data.map((p) => ({ x: p.x, y: p.y, series: p.series }));
  const spec = {
    $schema: "https://vega.github.io/schema/vega-lite/v5.json",
    title: o.title,
    width: 380,
    height: 220,
    data: { values: data },
    mark: { type: "line", point: true },
    encoding: {
      x: { field: "x", type: "quantitative", title: o.x.title, scale: o.x.log ? { type: "log" } : {} },
      y: {
        field: "y",
        type: "quantitative",
        title: o.y.title,
        scale:
          o.y.min !== undefined || o.y.max !== undefined
            ? { domain: [o.y.min ?? Math.min(...data.map((d) => d.y)), o.y.max ?? Math.max(...data.map((d) => d.y))] }
            : {},
      },
      color: { field: "series", type: "nominal", title: null },
      strokeDash: {
        field: "series",
        type: "nominal",
        legend: null,
        scale: {
          domain: [...new Set(data.map((d) => d.series))],
          range: [...new Set(data.map((d) => d.series))].map((s) => (o.dashed?.includes(s) ? [5, 4] : [1, 0])),
        },
      },
    },
  };
  const chart: LineChart = { kind: "lineChart", title: o.title, data, spec };
  Object.defineProperty(chart, Symbol.for("jupyter.mimebundle"), {
    value: () => {
      const svg = svgOf(chart, o);
      // nbconvert strips the children of an inline image/svg+xml output; an <img> with a data
      // URI survives its (and JupyterLab's) sanitiser and renders everywhere.
      const html = `<img alt="${esc(chart.title)}" src="data:image/svg+xml;base64,${Buffer.from(svg, "utf8").toString("base64")}"/>`;
      return { "application/vnd.vegalite.v5+json": spec, "text/html": html, "image/svg+xml": svg, "text/plain": textOf(chart) };
    },
    enumerable: false,
  });
  Object.defineProperty(chart, Symbol.for("nodejs.util.inspect.custom"), { value: () => textOf(chart), enumerable: false });
  return chart;
}
