/**
 * Front-end plugins of @cleanroom-lab/jupyterlab: the "Privacy budget" sidebar, which follows
 * the active notebook and shows the latest budget output (re-computed whenever the notebook's
 * content changes, e.g. when a cell's outputs arrive). The MIME renderer lives in ./mime.ts
 * (the package's `jupyterlab.mimeExtension`).
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { INotebookTracker, type NotebookPanel } from "@jupyterlab/notebook";
import type { ICodeCellModel } from "@jupyterlab/cells";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";
import { latestBudget, type CellOutputs } from "./views/latest.js";
import { sidebarView } from "./views/sidebar.js";

export { latestBudget } from "./views/latest.js";
export { renderPayload, invalidPayloadView } from "./views/payload.js";

const budgetIcon = new LabIcon({
  name: "cleanroom-lab:budget",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M12 3a9 9 0 1 0 9 9h-2a7 7 0 1 1-7-7z"/><path d="M13 3.06V11h7.94A9 9 0 0 0 13 3.06z"/></g></svg>',
});

/** Snapshot a notebook's code cells for {@link latestBudget}. */
function cellsOf(panel: NotebookPanel): CellOutputs[] {
  const model = panel.content.model;
  if (!model) return [];
  const out: CellOutputs[] = [];
  for (let i = 0; i < model.cells.length; i++) {
    const cell = model.cells.get(i);
    if (cell.type !== "code") continue;
    const code = cell as ICodeCellModel;
    const outputs: Record<string, unknown>[] = [];
    for (let j = 0; j < code.outputs.length; j++) outputs.push(code.outputs.get(j).data as Record<string, unknown>);
    out.push({ executionCount: code.executionCount, outputs });
  }
  return out;
}

/** The sidebar widget: re-renders from the tracked notebook, debounced. */
export class BudgetSidebar extends Widget {
  private panel: NotebookPanel | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    this.id = "cleanroom-lab-budget";
    this.addClass("crl-sidebar");
    this.title.icon = budgetIcon;
    this.title.caption = "Privacy budget";
    this.render();
  }

  /** Follow another notebook (or none). */
  follow(panel: NotebookPanel | null): void {
    if (this.panel?.model) this.panel.model.contentChanged.disconnect(this.schedule, this);
    this.panel = panel;
    if (panel) {
      void panel.context.ready.then(() => {
        if (this.panel === panel && panel.model) {
          panel.model.contentChanged.connect(this.schedule, this);
          this.schedule();
        }
      });
    }
    this.schedule();
  }

  private schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.render(), 120);
  }

  private render(): void {
    const p = this.panel;
    const body = sidebarView(p ? p.context.path : null, p && !p.isDisposed ? latestBudget(cellsOf(p)) : null);
    this.node.replaceChildren(body);
  }

  override dispose(): void {
    this.follow(null);
    clearTimeout(this.timer);
    super.dispose();
  }
}

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: "@cleanroom-lab/jupyterlab:budget-sidebar",
  description: "A Privacy budget sidebar following the active notebook's latest budget output.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker) => {
    const sidebar = new BudgetSidebar();
    app.shell.add(sidebar, "right", { rank: 900 });
    sidebar.follow(tracker.currentWidget);
    tracker.currentChanged.connect((_, panel) => sidebar.follow(panel));
  },
};

export default [sidebarPlugin];
