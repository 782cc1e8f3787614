/**
 * Embeds the Vega-Lite charts of a view with vega-embed (SVG renderer, no actions menu, no
 * network: specs carry inline data). vega-embed is imported lazily so it lands in its own
 * chunk and only loads when a chart is shown. Colours follow JupyterLab's CSS variables.
 */
import type { ChartSlot } from "./views/payload.js";

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.body).getPropertyValue(name).trim();
  return v || fallback;
}

/** Vega config from the current JupyterLab theme. */
export function themeConfig(): Record<string, unknown> {
  const fg = cssVar("--jp-ui-font-color1", "#333");
  const muted = cssVar("--jp-ui-font-color2", "#666");
  const grid = cssVar("--jp-border-color2", "#ddd");
  const font = cssVar("--jp-ui-font-family", "sans-serif");
  return {
    background: "transparent",
    font,
    title: { color: fg },
    axis: { labelColor: muted, titleColor: fg, domainColor: grid, gridColor: grid, tickColor: grid },
    legend: { labelColor: muted, titleColor: fg },
    view: { stroke: "transparent" },
  };
}

/** Render every chart slot; a failing chart shows its error in place, the rest of the view stays. */
export async function embedCharts(charts: ChartSlot[]): Promise<void> {
  if (charts.length === 0) return;
  const { default: embed } = await import("vega-embed");
  await Promise.all(
    charts.map(async ({ host, spec }) => {
      try {
        await embed(host, spec as never, { actions: false, renderer: "svg", config: themeConfig() as never });
      } catch (e) {
        host.textContent = `chart could not be drawn: ${e instanceof Error ? e.message : String(e)}`;
        host.classList.add("crl-chart-error");
      }
    }),
  );
}
