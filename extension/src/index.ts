/**
 * Front-end plugins of @cleanroom-lab/jupyterlab: the "Privacy budget" sidebar, which follows
 * the active notebook and shows each open lab's actual ledger — the kernel publishes it after
 * every execution as an iopub `update_display_data` (display id `cleanroom-budget:<room>`),
 * which the sidebar only listens to: it never executes code in the user's kernel. Until a
 * live update arrives it shows the latest budget output (re-computed whenever the notebook's
 * content changes). Beside it, the "Room" panel shows every room the kernel joined (members,
 * pending approvals and change requests, the server's budget), published the same way
 * (display id `cleanroom-room:<room>@<member>`). The MIME renderer lives in ./mime.ts (the package's `jupyterlab.mimeExtension`).
 */
import type { JupyterFrontEnd, JupyterFrontEndPlugin } from "@jupyterlab/application";
import { INotebookTracker, type NotebookPanel } from "@jupyterlab/notebook";
import type { ICodeCellModel } from "@jupyterlab/cells";
import { LabIcon } from "@jupyterlab/ui-components";
import { Widget } from "@lumino/widgets";
import { latestBudget, type CellOutputs } from "./views/latest.js";
import { liveBudgetFrom, sidebarView } from "./views/sidebar.js";
import type { PayloadOf } from "@cleanroom-lab/kernel/dist/display/schema.js";
import type { RoomPanelPayload } from "@cleanroom-lab/kernel/dist/display/room-panel.js";
import { roomPanelFrom, roomPanelView } from "./views/room.js";

export { latestBudget } from "./views/latest.js";
export { renderPayload, invalidPayloadView } from "./views/payload.js";

const budgetIcon = new LabIcon({
  name: "cleanroom-lab:budget",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M12 3a9 9 0 1 0 9 9h-2a7 7 0 1 1-7-7z"/><path d="M13 3.06V11h7.94A9 9 0 0 0 13 3.06z"/></g></svg>',
});

const roomIcon = new LabIcon({
  name: "cleanroom-lab:room",
  svgstr:
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><g class="jp-icon3" fill="#616161">' +
    '<path d="M12 3 3 8v13h7v-6h4v6h7V8z"/></g></svg>',
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

/** What a panel picks out of one iopub message: a keyed payload, or null for every other message. */
type Pick<T> = (msg: Parameters<Parameters<NotebookPanel["sessionContext"]["iopubMessage"]["connect"]>[0]>[1]) => {
  key: string;
  payload: T;
} | null;

/**
 * A right-hand panel fed by the active notebook's kernel: it keeps, per notebook, the latest
 * payload under each key that {@link Pick} finds on iopub (cleared when the kernel changes,
 * restarts or dies), follows the active notebook and re-renders debounced. It only listens; it
 * never executes code in the user's kernel.
 */
abstract class KernelFeedPanel<T> extends Widget {
  protected panel: NotebookPanel | null = null;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private readonly live = new WeakMap<NotebookPanel, Map<string, T>>();

  constructor(
    id: string,
    caption: string,
    icon: LabIcon,
    private readonly pick: Pick<T>,
  ) {
    super();
    this.id = id;
    this.addClass("crl-sidebar");
    this.title.icon = icon;
    this.title.caption = caption;
    // subclasses declare no fields of their own: render() may run from here
    this.render();
  }

  /** Listen to a notebook's kernel (every notebook, followed or not yet). */
  watch(panel: NotebookPanel): void {
    const items = new Map<string, T>();
    this.live.set(panel, items);
    const changed = () => {
      if (this.panel === panel) this.schedule();
    };
    panel.sessionContext.iopubMessage.connect((_, msg) => {
      const x = this.pick(msg);
      if (!x) return;
      items.set(x.key, x.payload);
      changed();
    }, this);
    const clear = () => {
      items.clear();
      changed();
    };
    panel.sessionContext.kernelChanged.connect(clear, this);
    panel.sessionContext.statusChanged.connect((_, s) => {
      if (s === "restarting" || s === "dead") clear();
    }, this);
  }

  /** Follow another notebook (or none). */
  follow(panel: NotebookPanel | null): void {
    this.panel = panel;
    this.schedule();
  }

  protected schedule(): void {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.render(), 120);
  }

  /** The followed notebook's live payloads (none when it is closed). */
  protected current(): T[] {
    const p = this.panel;
    return p && !p.isDisposed ? [...(this.live.get(p)?.values() ?? [])] : [];
  }

  protected abstract render(): void;

  override dispose(): void {
    this.follow(null);
    clearTimeout(this.timer);
    super.dispose();
  }
}

/**
 * The Privacy budget sidebar: the followed notebook's live ledgers by room; until one arrives,
 * its latest budget output (re-computed whenever the notebook's content changes).
 */
export class BudgetSidebar extends KernelFeedPanel<PayloadOf<"budget">> {
  constructor() {
    super("cleanroom-lab-budget", "Privacy budget", budgetIcon, (msg) => {
      const b = liveBudgetFrom(msg);
      return b ? { key: b.payload.roomId, payload: b.payload } : null;
    });
  }

  override follow(panel: NotebookPanel | null): void {
    if (this.panel?.model) this.panel.model.contentChanged.disconnect(this.schedule, this);
    super.follow(panel);
    if (panel)
      void panel.context.ready.then(() => {
        if (this.panel === panel && panel.model) {
          panel.model.contentChanged.connect(this.schedule, this);
          this.schedule();
        }
      });
  }

  protected render(): void {
    const p = this.panel;
    const open = p && !p.isDisposed;
    this.node.replaceChildren(sidebarView(p ? p.context.path : null, open ? latestBudget(cellsOf(p)) : null, this.current()));
  }
}

/**
 * The Room panel: every room the active notebook's kernel joined (joinRoom), as the kernel
 * publishes it after each execution (display id `cleanroom-room:<room>@<member>`).
 */
export class RoomPanel extends KernelFeedPanel<RoomPanelPayload> {
  constructor() {
    super("cleanroom-lab-room", "Room", roomIcon, (msg) => {
      const r = roomPanelFrom(msg);
      return r ? { key: r.displayId, payload: r.payload } : null;
    });
  }

  protected render(): void {
    const p = this.panel;
    this.node.replaceChildren(roomPanelView(p ? p.context.path : null, this.current()));
  }
}

const sidebarPlugin: JupyterFrontEndPlugin<void> = {
  id: "@cleanroom-lab/jupyterlab:budget-sidebar",
  description:
    "A Privacy budget sidebar showing the active notebook's live ledger (or its latest budget output), and a Room panel for joined rooms.",
  autoStart: true,
  requires: [INotebookTracker],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker) => {
    const sidebar = new BudgetSidebar();
    app.shell.add(sidebar, "right", { rank: 900 });
    tracker.forEach((panel) => sidebar.watch(panel));
    tracker.widgetAdded.connect((_, panel) => sidebar.watch(panel));
    sidebar.follow(tracker.currentWidget);
    tracker.currentChanged.connect((_, panel) => sidebar.follow(panel));
    // the Room panel, beside the Privacy budget sidebar
    const roomPanel = new RoomPanel();
    app.shell.add(roomPanel, "right", { rank: 901 });
    tracker.forEach((panel) => roomPanel.watch(panel));
    tracker.widgetAdded.connect((_, panel) => roomPanel.watch(panel));
    roomPanel.follow(tracker.currentWidget);
    tracker.currentChanged.connect((_, panel) => roomPanel.follow(panel));
  },
};

export default [sidebarPlugin];
