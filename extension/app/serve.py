#!/usr/bin/python3
"""Serve the cleanroom-lab JupyterLab application with Debian's jupyterlab_server.

The frontend is the webpack bundle in ./build (built by `npm run build -w extension`); the
kernels are the project's (JUPYTER_PATH=kernel-lib/jupyter, cleanroom-ts). Runtime, data
and config dirs are kept under .scratch/jupyter (or $CLEANROOM_LAB_STATE) so nothing touches
the user's ~/.jupyter.

Usage:
  /usr/bin/python3 extension/app/serve.py [--port 8888] [--root notebooks] [--token TOKEN]
                                          [--no-browser] [--open PATH]

Prints one line `CLEANROOM_LAB_URL <url>` on stdout once listening (used by test/e2e and
scripts/start.mjs), never for a port that is not ours.
"""
import argparse
import getpass
import json
import os
import shutil
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.abspath(os.path.join(HERE, "..", ".."))
BUILD = os.path.join(HERE, "build")
# Jupyter state (runtime files, user settings, workspaces). CLEANROOM_LAB_STATE overrides it,
# e.g. the browser test uses a throwaway one so theme changes do not leak into `npm start`.
STATE = os.environ.get("CLEANROOM_LAB_STATE") or os.path.join(REPO, ".scratch", "jupyter")

os.environ["JUPYTER_NO_CONFIG"] = "1"
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ["JUPYTER_PATH"] = os.pathsep.join(
    [os.path.join(REPO, "kernel-lib", "jupyter")] + [p for p in os.environ.get("JUPYTER_PATH", "").split(os.pathsep) if p])
for var, sub in (("JUPYTER_RUNTIME_DIR", "runtime"), ("JUPYTER_DATA_DIR", "data"), ("JUPYTER_CONFIG_DIR", "config")):
    os.environ[var] = os.path.join(STATE, sub)
    os.makedirs(os.environ[var], exist_ok=True)

from jupyterlab_server import LabServerApp  # noqa: E402  (after the env is set)
from jupyter_server.base.handlers import APIHandler, JupyterHandler  # noqa: E402
from jupyter_server.utils import ensure_async  # noqa: E402
from tornado import web  # noqa: E402
from tornado.ioloop import IOLoop  # noqa: E402
from tornado.websocket import WebSocketHandler  # noqa: E402

with open(os.path.join(HERE, "..", "package.json")) as f:
    VERSION = json.load(f)["version"]


class IdentityHandler(APIHandler):
    """/api/me of jupyter_server 2, which JupyterLab 4 asks for (1.23 answers 404: a console
    error on every page load). One local user, no extra permissions."""

    @web.authenticated
    def get(self):
        name = getpass.getuser()
        self.finish(json.dumps({
            "identity": {"username": name, "name": name, "display_name": name, "initials": name[:1].upper(),
                         "avatar_url": None, "color": None},
            "permissions": {},
        }))


class ResolvePathHandler(APIHandler):
    """/api/resolvePath of newer jupyter_server: JupyterLab 4 asks it whether a path-like word
    in an output (e.g. "advertiser/bo") is a file, to make it a link. On a 404 the lab falls
    back to probing /api/contents, whose 404 for a word that is no file is a console error.
    Answered from the server's contents manager (server scope only)."""

    @web.authenticated
    async def get(self):
        path = (self.get_query_argument("path", "") or "").strip("/")
        cm = self.contents_manager
        exists = False
        if path and ".." not in path.split("/"):
            try:
                exists = bool(await ensure_async(cm.file_exists(path)) or await ensure_async(cm.dir_exists(path)))
            except Exception:  # noqa: BLE001  (an unreadable path is simply not resolved)
                exists = False
        location = {"scope": "server", "path": path}
        self.finish(json.dumps({"resolved": [location], "unresolved": []} if exists
                               else {"resolved": [], "unresolved": [location]}))


class EventsSocket(WebSocketHandler, JupyterHandler):
    """/api/events/subscribe of jupyter_server 2 (JupyterLab 4's event stream). This server emits
    no events: the socket is accepted and stays silent, instead of a 404 handshake error."""

    async def get(self, *args, **kwargs):
        if self.current_user is None:
            raise web.HTTPError(403)
        return await super().get(*args, **kwargs)

    def on_message(self, message):
        pass


def _jupyter_server_extension_points():
    return [{"module": __name__, "app": CleanroomLabApp}]


class CleanroomLabApp(LabServerApp):
    name = __name__
    load_other_extensions = False
    extension_url = "/lab"
    default_url = "/lab"
    app_name = "cleanroom-lab"
    app_version = VERSION
    app_url = "/lab"
    app_settings_dir = os.path.join(BUILD, "application_settings")
    schemas_dir = os.path.join(BUILD, "schemas")
    static_dir = BUILD
    templates_dir = os.path.join(HERE, "templates")
    themes_dir = os.path.join(BUILD, "themes")
    user_settings_dir = os.path.join(STATE, "user_settings")
    workspaces_dir = os.path.join(STATE, "workspaces")

    def initialize_settings(self):
        super().initialize_settings()
        self.serverapp.log.info("cleanroom-lab frontend from %s", BUILD)

    def initialize_handlers(self):
        super().initialize_handlers()
        self.handlers.extend([(r"/api/me", IdentityHandler), (r"/api/resolvePath", ResolvePathHandler),
                              (r"/api/events/subscribe", EventsSocket)])

        # Handlers are set up before the server binds its port: print the URL only from the
        # running IO loop, i.e. once the port is ours (a busy port makes the server exit first).
        def announce():
            url = self.serverapp.connection_url.rstrip("/") + "/lab"
            token = self.serverapp.token
            print(f"CLEANROOM_LAB_URL {url}{'?token=' + token if token else ''}", flush=True)

        IOLoop.current().add_callback(announce)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=8888)
    ap.add_argument("--root", default=os.path.join(REPO, "notebooks"))
    ap.add_argument("--token", default=None, help="default: a random token; '' disables auth (localhost only)")
    ap.add_argument("--no-browser", action="store_true")
    args = ap.parse_args()
    if not os.path.exists(os.path.join(BUILD, "bundle.js")):
        sys.exit("extension/app/build/bundle.js is missing: run `npm run build -w extension` first")
    # Settings overrides (no news/update checks: they 404 and jupyterlab_server 2.16 shows a dialog).
    os.makedirs(CleanroomLabApp.app_settings_dir, exist_ok=True)
    shutil.copy(os.path.join(HERE, "overrides.json"), os.path.join(CleanroomLabApp.app_settings_dir, "overrides.json"))
    argv = [
        f"--ServerApp.port={args.port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.root_dir={os.path.abspath(args.root)}", "--allow-root",
        "--MappingKernelManager.default_kernel_name=cleanroom-ts",  # new notebooks get the project kernel
        f"--ServerApp.open_browser={'False' if args.no_browser else 'True'}",
    ]
    if args.token is not None:
        argv.append(f"--ServerApp.token={args.token}")
    CleanroomLabApp.launch_instance(argv=argv)


if __name__ == "__main__":
    main()
