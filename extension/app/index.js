// The cleanroom-lab JupyterLab application: JupyterLab 4.6.3 core plugins from npm plus
// @cleanroom-lab/jupyterlab, in the shape of jupyterlab's examples/app. Served by
// Debian's jupyterlab_server through ./serve.py.
import { JupyterLab } from "@jupyterlab/application";
import { PageConfig } from "@jupyterlab/coreutils";

// The webpack public path must be set before any CSS/asset chunk loads.
// eslint-disable-next-line no-undef
__webpack_public_path__ = PageConfig.getOption("fullStaticUrl") + "/";

const styles = import("./build/style.js").then(() => import("./app.css"));

function pluginsOf(mod) {
  const exports = Object.prototype.hasOwnProperty.call(mod, "__esModule") || mod.default ? mod.default : mod;
  return Array.isArray(exports) ? exports : [exports];
}

const noLsp = (plugins) => pluginsOf(plugins).filter(({ id }) => !id.includes(":language-server"));

window.addEventListener("load", async () => {
  await styles;
  const extensions = [
    import("@jupyterlab/application-extension"),
    import("@jupyterlab/apputils-extension"),
    import("@jupyterlab/codemirror-extension"),
    import("@jupyterlab/completer-extension"),
    import("@jupyterlab/console-extension"),
    import("@jupyterlab/docmanager-extension"),
    import("@jupyterlab/documentsearch-extension"),
    import("@jupyterlab/filebrowser-extension"),
    import("@jupyterlab/fileeditor-extension").then(noLsp),
    import("@jupyterlab/launcher-extension"),
    import("@jupyterlab/mainmenu-extension"),
    import("@jupyterlab/markdownviewer-extension"),
    import("@jupyterlab/markedparser-extension"),
    import("@jupyterlab/notebook-extension").then(noLsp),
    import("@jupyterlab/rendermime-extension"),
    import("@jupyterlab/running-extension"),
    import("@jupyterlab/shortcuts-extension"),
    import("@jupyterlab/statusbar-extension"),
    import("@jupyterlab/theme-dark-extension"),
    import("@jupyterlab/theme-light-extension"),
    import("@jupyterlab/tooltip-extension"),
    import("@jupyterlab/translation-extension"),
    import("@jupyterlab/ui-components-extension"),
    import("@cleanroom-lab/jupyterlab"),
    import("./core-services.js"),
  ];
  const mimeExtensions = [
    import("@jupyterlab/javascript-extension"),
    import("@jupyterlab/json-extension"),
    import("@cleanroom-lab/jupyterlab/lib/mime.js"),
  ];
  const lab = new JupyterLab({
    mimeExtensions: (await Promise.all(mimeExtensions)).map((m) => m.default),
  });
  lab.registerPlugins((await Promise.all(extensions)).flatMap(pluginsOf));
  await lab.start();
  await lab.restored;
  document.body.setAttribute("data-cleanroom-lab-ready", "true");
  console.log("cleanroom-lab started");
});
