#!/usr/bin/env node
/**
 * `npm start`: bootstrap, then serve the notebooks with the project kernel on localhost.
 *
 *   npm start                        serve notebooks/ and print the URL (Ctrl-C stops)
 *   npm start -- --port=9999         another port (default 8888, or $PORT)
 *   npm start -- --headless          run the flagship notebook, write it + HTML to out/
 *   npm start -- --headless --notebook=PATH   run another notebook instead (any path)
 *   npm start -- --plain             Debian's plain Jupyter server instead of the lab app
 *   npm start -- --room              also run a clean-room server (scripts/room-server.mjs, store
 *                                    .scratch/room/room.db, --room-port=7700, ε 3, --enclave process) for notebooks 08;
 *                                    its URL is printed and written to .scratch/room/room.db.server.json
 *   npm start -- --room --class=30   the same server for a class: one room per pair, invitation codes
 *                                    in .scratch/room/room.db.invitations.json (README "A class in a room")
 *
 * Serving uses the extension's JupyterLab application (extension/app/serve.py) when it and
 * its build exist, and otherwise Debian's plain Jupyter server (REST API and kernels only,
 * no UI: `python3 -m jupyter_server`). Either way the kernel is
 * cleanroom-ts from kernel-lib/jupyter and all Jupyter state lives under .scratch/jupyter.
 *
 * Headless: the flagship notebook (notebooks/02-lift-study.ipynb if present, else
 * 00-quickstart) is executed by scripts/run-notebooks.py; the executed notebook, the run
 * report and an HTML rendering (jupyter nbconvert --to html) are written to out/.
 *
 * Ports and shutdown: the port is probed before the server starts; when it is taken (by
 * anything, another Jupyter included) the next free port is used and the message says so,
 * and the URL is printed only once the server says it is listening on it. The server runs in
 * its own process group: Ctrl-C (SIGINT), SIGTERM or SIGHUP here sends it one SIGTERM, on
 * which Jupyter shuts down every kernel it started before exiting; a second Ctrl-C kills the
 * server's group. Kernels also exit by themselves when their server is gone (the cleanroom-ts
 * launcher watches its parent), so no kernel outlives `npm start`.
 */
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import readline from "node:readline";
import { bootstrap } from "./bootstrap.mjs";
import { ROOT, PYTHON, JUPYTER, KERNEL_NAME, jupyterEnv, runTee, die } from "./common.mjs";

const args = process.argv.slice(2);
const flag = (name) => args.includes(`--${name}`);
const option = (name, fallback) => {
  const a = args.find((x) => x.startsWith(`--${name}=`));
  return a ? a.slice(name.length + 3) : fallback;
};

const FLAGSHIPS = ["notebooks/02-lift-study.ipynb", "notebooks/00-quickstart.ipynb"];

/** The notebook to run headless: --notebook=PATH (relative to where `npm start` was typed), else the flagship. */
function headlessNotebook() {
  const given = option("notebook", null);
  if (given === null) {
    const flagship = FLAGSHIPS.find((p) => fs.existsSync(path.join(ROOT, p)));
    if (!flagship) die(`no flagship notebook found (looked for ${FLAGSHIPS.join(", ")})`);
    return flagship;
  }
  // npm runs scripts from the package root; INIT_CWD is the directory the user typed the command in.
  const abs = path.resolve(process.env.INIT_CWD || process.cwd(), given);
  if (!given.endsWith(".ipynb")) die(`--notebook expected a path to an .ipynb file, got "${given}"`);
  if (!fs.existsSync(abs) || !fs.statSync(abs).isFile()) die(`--notebook: no such notebook: ${abs}`);
  return abs;
}

async function headless() {
  const flagship = headlessNotebook();
  const outDir = path.resolve(ROOT, option("out", "out"));
  fs.mkdirSync(outDir, { recursive: true });
  const env = jupyterEnv();
  console.log(`Executing ${flagship} …`);
  const run = await runTee(
    PYTHON,
    [path.join(ROOT, "scripts", "run-notebooks.py"), flagship, "--out", outDir, "--report", path.join(outDir, "run-report.json")],
    { env },
  );
  const executed = path.join(outDir, path.basename(flagship));
  if (!fs.existsSync(executed)) die("the runner produced no executed notebook", run.output);
  // Render even a failed run: the HTML shows the outputs up to the failing cell.
  const html = await runTee(JUPYTER, ["nbconvert", "--to", "html", "--output-dir", outDir, executed], { env, echo: false });
  if (html.status !== 0) die("jupyter nbconvert --to html failed", html.output);
  const rel = (p) => path.relative(ROOT, p);
  console.log(
    `\nexecuted notebook: ${rel(executed)}` +
      `\nHTML:              ${rel(executed.replace(/\.ipynb$/, ".html"))}` +
      `\nrun report:        ${rel(path.join(outDir, "run-report.json"))}`,
  );
  if (run.status !== 0) die(`${flagship} failed (see the run report)`);
}

/** True when nothing listens on 127.0.0.1:port (we could bind it). */
function portFree(port) {
  return new Promise((resolve) => {
    const srv = net.createServer();
    srv.once("error", () => resolve(false));
    srv.listen({ port, host: "127.0.0.1", exclusive: true }, () => srv.close(() => resolve(true)));
  });
}

/** The asked port if free, else the next free one (up to 50 above), with a message saying so. */
async function choosePort(asked) {
  if (await portFree(asked)) return asked;
  for (let p = asked + 1; p <= Math.min(asked + 50, 65535); p++) {
    if (await portFree(p)) {
      console.log(
        `• port ${asked} is already in use (another Jupyter or another program); using port ${p} instead.` +
          `\n  To choose one yourself: npm start -- --port=N`,
      );
      return p;
    }
  }
  die(`port ${asked} and the 50 ports above it are in use: free one or pass --port=N`);
}

async function serve() {
  const asked = Number(option("port", process.env.PORT || 8888));
  if (!Number.isInteger(asked) || asked <= 0 || asked > 65535) die(`--port expected an integer in [1, 65535], got ${option("port")}`);
  const port = await choosePort(asked);
  const token = randomBytes(24).toString("hex");
  const env = jupyterEnv();
  const labServe = path.join(ROOT, "extension", "app", "serve.py");
  const labBuilt = fs.existsSync(path.join(ROOT, "extension", "app", "build", "bundle.js"));
  let cmd, cmdArgs, url, ui;
  if (fs.existsSync(labServe) && labBuilt && !flag("plain")) {
    ui = "JupyterLab (cleanroom-lab app)";
    cmd = PYTHON;
    cmdArgs = [labServe, `--port=${port}`, `--root=${path.join(ROOT, "notebooks")}`, `--token=${token}`, "--no-browser"];
    url = `http://127.0.0.1:${port}/lab?token=${token}`;
  } else {
    ui = "plain Jupyter server: REST API and kernels, no UI (the JupyterLab app is not built or --plain)";
    // Debian's python3-jupyter-server ships no `jupyter-server` command: run the module.
    cmd = PYTHON;
    cmdArgs = [
      "-m",
      "jupyter_server",
      `--ServerApp.port=${port}`,
      "--ServerApp.port_retries=0",
      "--ServerApp.ip=127.0.0.1",
      `--ServerApp.root_dir=${path.join(ROOT, "notebooks")}`,
      `--ServerApp.token=${token}`,
      "--ServerApp.open_browser=False",
      "--allow-root",
      // Only the project kernel, and it is the default for new notebooks.
      `--KernelSpecManager.allowed_kernelspecs=${KERNEL_NAME}`,
      `--MappingKernelManager.default_kernel_name=${KERNEL_NAME}`,
    ];
    url = `http://127.0.0.1:${port}/?token=${token}`;
  }
  // detached: the server gets its own process group, so a terminal's Ctrl-C reaches only this
  // script, which then stops the server exactly once (a second signal during Jupyter's kernel
  // shutdown would cut that shutdown short and leave kernels behind).
  const child = spawn(cmd, cmdArgs, { cwd: ROOT, env, stdio: ["ignore", "pipe", "pipe"], detached: true });
  let announced = false;
  const announce = () => {
    if (announced) return;
    announced = true;
    console.log(
      `\n  cleanroom-lab is running — ${ui}\n\n    ${url}\n\n  kernel: cleanroom-ts · notebooks: notebooks/ · stop with Ctrl-C\n`,
    );
  };
  // Server logs go to stderr. Announce the URL only once the server is listening (serve.py's
  // CLEANROOM_LAB_URL line comes when its IO loop runs; Jupyter's "is running at" after binding).
  readline.createInterface({ input: child.stdout }).on("line", (l) => {
    if (l.startsWith("CLEANROOM_LAB_URL ")) announce();
    else console.log(l);
  });
  readline.createInterface({ input: child.stderr }).on("line", (l) => {
    console.error(l);
    if (/is running at|Use Control-C to stop/.test(l)) announce();
  });
  let stopping = false;
  const stop = () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    if (!stopping) {
      stopping = true;
      console.log("\n  stopping the server and its kernels … (Ctrl-C again to kill at once)");
      child.kill("SIGTERM"); // Jupyter: stop the loop, shut down every kernel, exit
    } else {
      try {
        process.kill(-child.pid, "SIGKILL"); // the server's whole process group
      } catch {
        child.kill("SIGKILL");
      }
    }
  };
  const room = flag("room") ? startRoom() : null;
  for (const sig of ["SIGINT", "SIGTERM", "SIGHUP"]) process.on(sig, stop);
  if (room) process.on("exit", () => room.exitCode === null && room.kill("SIGTERM"));
  process.on("exit", () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  });
  child.on("exit", (code, signal) => process.exit(stopping ? 0 : (code ?? (signal === "SIGINT" || signal === "SIGTERM" ? 0 : 1))));
}

/** The room server of `--room` (its own process; stopped with this script). */
function startRoom() {
  const dir = path.join(ROOT, ".scratch", "room");
  fs.mkdirSync(dir, { recursive: true });
  const port = option("room-port", "7700");
  const child = spawn(
    process.execPath,
    [
      path.join(ROOT, "scripts", "room-server.mjs"),
      "--store",
      path.join(dir, "room.db"),
      "--port",
      port,
      "--epsilon",
      "3",
      "--per-party",
      "3",
      "--enclave",
      "process",
      ...(option("class", null) ? ["--room", "class", "--class", option("class", null)] : []),
    ],
    { cwd: ROOT, stdio: ["ignore", "pipe", "inherit"] },
  );
  readline.createInterface({ input: child.stdout }).on("line", (l) => {
    try {
      const e = JSON.parse(l);
      if (e.event === "listening")
        console.log(
          `\n  clean-room server: ${e.url}\n  (fingerprint ${e.fingerprint}; ${path.relative(ROOT, dir)}/room.db.server.json)\n` +
            (e.pairs ? `  class: ${e.pairs} pair rooms; invitation codes in ${path.relative(ROOT, dir)}/room.db.invitations.json\n` : ""),
        );
      else console.error(`  clean-room server: ${e.code ?? ""} ${e.message ?? l}`);
    } catch {
      console.log(l);
    }
  });
  return child;
}

// CLEANROOM_NO_BOOTSTRAP=1: the caller has bootstrapped already (test/kernel/test_start.py).
if (!process.env.CLEANROOM_NO_BOOTSTRAP) bootstrap({ browser: false });
if (flag("headless")) await headless();
else await serve();
