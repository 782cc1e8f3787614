// Services that JupyterLab's own plugins in this app require but whose providers live in
// npm packages the app does not ship (@jupyterlab/toc-extension, @jupyterlab/metadataform-
// extension). Without them the notebook plugins `:toc` and `:update-raw-mimetype` (and the
// file editor's and markdown viewer's table-of-contents hooks) fail to activate with
// "No provider for …" errors in the browser console, and there is no table of contents.
// Built from the libraries that are installed (@jupyterlab/toc, @jupyterlab/metadataform).
import { ILabShell, ILayoutRestorer } from "@jupyterlab/application";
import { IMetadataFormProvider, MetadataFormProvider } from "@jupyterlab/metadataform";
import {
  ITableOfContentsRegistry,
  ITableOfContentsTracker,
  TableOfContents,
  TableOfContentsPanel,
  TableOfContentsRegistry,
  TableOfContentsTracker,
} from "@jupyterlab/toc";
import { ITranslator, nullTranslator } from "@jupyterlab/translation";
import { tocIcon } from "@jupyterlab/ui-components";

const tocRegistry = {
  id: "@cleanroom-lab/app:toc-registry",
  description: "Provides the table of contents registry (what @jupyterlab/toc-extension provides).",
  autoStart: true,
  provides: ITableOfContentsRegistry,
  activate: () => new TableOfContentsRegistry(),
};

const tocPanel = {
  id: "@cleanroom-lab/app:toc",
  description: "The Table of Contents side panel for the current notebook, markdown file or editor.",
  autoStart: true,
  provides: ITableOfContentsTracker,
  requires: [ITableOfContentsRegistry],
  optional: [ITranslator, ILayoutRestorer, ILabShell],
  activate: (app, registry, translator, restorer, labShell) => {
    const trans = (translator ?? nullTranslator).load("jupyterlab");
    const panel = new TableOfContentsPanel(translator ?? undefined);
    panel.id = "table-of-contents";
    panel.title.icon = tocIcon;
    panel.title.caption = trans.__("Table of Contents");
    panel.node.setAttribute("role", "region");
    panel.node.setAttribute("aria-label", trans.__("Table of Contents section"));
    app.shell.add(panel, "left", { rank: 400, type: "Table of Contents" });
    if (restorer) restorer.add(panel, "@jupyterlab/toc:plugin");
    app.commands.addCommand("toc:show-panel", {
      label: trans.__("Table of Contents"),
      execute: () => app.shell.activateById(panel.id),
    });

    const tracker = new TableOfContentsTracker();
    const follow = () => {
      const widget = app.shell.currentWidget;
      if (!widget) return;
      let model = tracker.get(widget);
      if (!model) {
        model = registry.getModel(widget, { ...TableOfContents.defaultConfig }) ?? null;
        if (model) {
          tracker.add(widget, model);
          widget.disposed.connect(() => model.dispose());
        }
      }
      panel.model = model;
    };
    if (labShell) labShell.currentChanged.connect(follow);
    void app.restored.then(follow);
    return tracker;
  },
};

const metadataForms = {
  id: "@cleanroom-lab/app:metadataforms",
  description: "An (empty) metadata form registry, required by the notebook plugins.",
  autoStart: true,
  provides: IMetadataFormProvider,
  activate: () => new MetadataFormProvider(),
};

export default [tocRegistry, tocPanel, metadataForms];
