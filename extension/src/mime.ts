/**
 * MIME renderer extension for `application/vnd.cleanroom-lab.v1+json` (JupyterLab core
 * renderer pattern: a factory `{safe, mimeTypes, createRenderer}` and a widget whose
 * `renderModel` calls pure view functions).
 *
 * Display data is untrusted: it is validated with the schema shared with the kernel library
 * and rendered through text nodes only, hence `safe: true` (renders in untrusted notebooks
 * too). Anything that does not validate shows a readable error box.
 */
import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { Widget } from "@lumino/widgets";
import { CLEANROOM_MIME, parsePayload } from "@cleanroom-lab/kernel/dist/display/schema.js";
import { invalidPayloadView, renderPayload } from "./views/payload.js";
import { embedCharts } from "./chart.js";

export { CLEANROOM_MIME };

/** The output widget of one cleanroom-lab payload. */
export class CleanRoomRenderer extends Widget implements IRenderMime.IRenderer {
  private themeObserver: MutationObserver | null = null;

  constructor(_options?: IRenderMime.IRendererOptions) {
    super();
    this.addClass("crl-output");
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    this.themeObserver?.disconnect();
    this.themeObserver = null;
    this.node.textContent = "";
    const parsed = parsePayload(model.data[CLEANROOM_MIME]);
    if (!parsed.ok) {
      this.node.appendChild(invalidPayloadView(parsed.error));
      return;
    }
    let view;
    try {
      view = renderPayload(parsed.payload);
    } catch (e) {
      this.node.appendChild(invalidPayloadView(`could not build the view: ${e instanceof Error ? e.message : String(e)}`));
      return;
    }
    this.node.appendChild(view.node);
    if (view.charts.length === 0) return;
    await embedCharts(view.charts);
    // Charts take their colours from the theme when drawn: redraw them when the theme changes.
    const charts = view.charts;
    this.themeObserver = new MutationObserver(() => {
      for (const c of charts) c.host.textContent = "";
      void embedCharts(charts);
    });
    this.themeObserver.observe(document.body, { attributes: true, attributeFilter: ["data-jp-theme-light", "data-jp-theme-name"] });
  }

  override dispose(): void {
    this.themeObserver?.disconnect();
    this.themeObserver = null;
    super.dispose();
  }
}

/** Renderer factory: preferred over the bundle's text/html and text/plain fallbacks. */
export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [CLEANROOM_MIME],
  defaultRank: 0,
  createRenderer: (options) => new CleanRoomRenderer(options),
};

const extension: IRenderMime.IExtension = {
  id: "@cleanroom-lab/jupyterlab:mime",
  description: "Renders cleanroom-lab outputs: budget, query/suppression, lift, PSI, attestation, audit, purpose, errors.",
  rendererFactory,
  rank: 0,
  dataType: "json",
};

export default extension;
