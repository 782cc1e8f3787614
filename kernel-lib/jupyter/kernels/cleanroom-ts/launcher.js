#!/usr/bin/env node
/**
 * cleanroom-ts kernel launcher: tslab 1.0.22 with its Jupyter protocol defects fixed.
 *
 * tslab compiles and runs TypeScript cells well, but its wire-protocol layer (dist/jupyter.js)
 * does not meet the Jupyter messaging spec 5.3 (found with jupyter_kernel_test, see
 * ../shared/JUPYTER.md). Instead of forking tslab we reuse its pieces — the converter, the
 * executor, the ZMQ socket plumbing and message signing — and replace the request dispatch:
 *
 *  - errors: `execute_reply` carries ename/evalue/traceback and an iopub `error` is published
 *    (tslab printed to stderr and replied with a bare `status: error`);
 *  - the value of the cell's last expression becomes an `execute_result` with the execution
 *    count (tslab `console.log`ged it to stdout); values implementing
 *    `[Symbol.for("jupyter.mimebundle")]()` render as a rich multi-MIME result;
 *  - `execute_input` publishes the code and execution count; `silent` and `store_history`
 *    are honoured;
 *  - `stop_on_error`: after a failed cell requested with stop_on_error=true, the execute
 *    requests already queued (and those arriving within ABORT_WINDOW_MS) are answered
 *    `aborted`; with stop_on_error=false nothing is aborted (tslab aborted everything arriving
 *    within 200 ms of any error, regardless of the flag);
 *  - `kernel_info_reply` is complete (`status`, real versions, pygments lexer, help links);
 *  - `history_request` is answered from an in-memory history (tail, range, search);
 *  - `comm_info_request` gets a `comm_info_reply` (tslab replied `complete_reply`);
 *  - a cell that throws a CleanRoomError shows the "why blocked" view (`display_data`, the
 *    bundle `attempt()` builds) and an error whose traceback is the one line `CODE: message`;
 *  - the kernel exits when its parent (the Jupyter server) is gone, as ipykernel does;
 *  - after each execution, the live budget of every open lab is published as an
 *    `update_display_data` with display id `cleanroom-budget:<room>` (the sidebar's source), and
 *    each joined room's Room panel as `cleanroom-room:<room>@<member>` (the Room panel's source);
 *  - `shutdown_request` echoes `restart`; `interrupt_request` is answered;
 *  - status: an execute_request publishes `busy` when it starts (not when it is queued) and
 *    `idle` after its reply; other requests arriving during an execution are answered at once
 *    but their `idle` is held back until no execution is running or queued, so the published
 *    status stays busy for exactly as long as cells run (tslab published `idle` for every
 *    kernel_info/comm_info/complete request, and the lab showed Idle during a long cell).
 *
 * Start-up (issue 18): TypeScript's program is built (and the library's declarations parsed) in
 * a worker thread started first thing (converter-worker.js), while this thread answers the
 * handshake; with CLEANROOM_KERNEL_WORKER=off it is built here once the client has been quiet,
 * see warmUp. typescript.js and tslab are compiled through a V8 code cache (code-cache.js).
 * CLEANROOM_KERNEL_TRACE=<file> logs the start-up phases as JSON lines.
 *
 * The tslab version is pinned: the launcher refuses to start on any other version, because
 * it depends on tslab's internal modules (dist/jupyter.js, dist/executor.js, dist/converter.js).
 *
 * Cells (and libraries they load) can also reach a small kernel API at
 * `globalThis[Symbol.for("cleanroom-lab.kernel")]`: `display(bundle, metadata?, displayId?)`
 * publishes one multi-MIME `display_data` (with `transient.display_id` when given),
 * `updateDisplay(bundle, displayId, metadata?)` replaces it in place (`update_display_data`,
 * how progress bars advance), `clearOutput(wait?)` publishes `clear_output`.
 *
 * Usage (from kernel.json): node launcher.js --config-path <connection_file>
 */
"use strict";

const PINNED_TSLAB = "1.0.22";
const ABORT_WINDOW_MS = 50;
const PARENT_POLL_MS = 1000;
// The server that started us: jupyter_client passes its pid (JPY_PARENT_PID); read before the
// slow start-up (the TypeScript warm-up), during which the server may already have died.
const parentPid = Number(process.env.JPY_PARENT_PID) || process.ppid;
const KERNEL_API = Symbol.for("cleanroom-lab.kernel");
const LIVE_BUDGETS = Symbol.for("cleanroom-lab.live-budgets"); // kernel-lib/src/verbs/live.ts
const WARM_UP_QUIET_MS = 300; // build the compiler once the handshake has been quiet this long
const LIVE_REFRESH_MS = 2000; // at most this long reading joined rooms' servers after a cell, before idle

const util = require("util");
const fs = require("fs");
const os = require("os");
const path = require("path");
const { startConverterWorker, speedUpCompiler, libraryResolvable, createTrace, PRIME_CELL } = require("./converter-worker.js");
const { WireMessage, describeFailure, resultBundle, globToRegExp, refusalView } = require("./protocol.js");
const { createCodeCache, KERNEL_CACHED_MODULES } = require("./code-cache.js");

// Kernel-internal diagnostics go to the real stderr (the Jupyter server's log), never into a
// cell's output: process.stderr.write is re-routed to iopub while cells run.
const realStderrWrite = process.stderr.write.bind(process.stderr);
function kernelLog(...args) {
  realStderrWrite(`[cleanroom-ts] ${util.format(...args)}\n`);
}

/**
 * Start-up trace (issue 18): with CLEANROOM_KERNEL_TRACE=<file> the launcher appends one JSON
 * line per phase — `{ pid, phase, ms, cpuMs, threadCpuMs }`, milliseconds since this process
 * started, the process's and this thread's CPU time so far — to that file (test/bench/kernel_bench.py prints the breakdown).
 */
const TRACE_FILE = process.env.CLEANROOM_KERNEL_TRACE || "";
const trace = createTrace({ file: TRACE_FILE, now: () => performance.now(), log: kernelLog });
trace("launcher started");

/**
 * The code cache directory (see code-cache.js): CLEANROOM_KERNEL_CACHE_DIR, or `.scratch/kernel-cache`
 * of the repository this launcher belongs to, or ~/.cache/cleanroom-lab/kernel-cache when the library
 * is installed elsewhere. CLEANROOM_KERNEL_CACHE=off compiles everything from source.
 */
function codeCacheDir() {
  if (process.env.CLEANROOM_KERNEL_CACHE_DIR) return path.resolve(process.env.CLEANROOM_KERNEL_CACHE_DIR);
  const root = path.resolve(__dirname, "..", "..", "..", "..");
  try {
    if (JSON.parse(fs.readFileSync(path.join(root, "package.json"), "utf8")).name === "cleanroom-lab") {
      return path.join(root, ".scratch", "kernel-cache");
    }
  } catch {
    /* not inside the cleanroom-lab repository */
  }
  return path.join(process.env.XDG_CACHE_HOME || path.join(os.homedir(), ".cache"), "cleanroom-lab", "kernel-cache");
}
// The compiler is built in a worker thread (converter-worker.js) unless CLEANROOM_KERNEL_WORKER=off.
const USE_WORKER = process.env.CLEANROOM_KERNEL_WORKER !== "off";
// With the worker, typescript.js's entry is the worker's to write (it has run the compiler; this
// thread only parses cells): here it is read, never rewritten or removed.
const TYPESCRIPT_JS = /[\\/]@tslab[\\/]typescript-for-tslab[\\/]lib[\\/]typescript\.js$/;
const cacheDir = process.env.CLEANROOM_KERNEL_CACHE === "off" ? null : codeCacheDir();
let codeCache = cacheDir
  ? createCodeCache({
      dir: cacheDir,
      include: (f) => KERNEL_CACHED_MODULES.test(f),
      readOnly: (f) => USE_WORKER && TYPESCRIPT_JS.test(f),
      log: kernelLog,
    })
  : null;
if (codeCache && !codeCache.install()) {
  kernelLog("code cache not in use");
  codeCache = null;
}
// started before this thread loads anything big: the two threads start up side by side
const compilerWorker = USE_WORKER
  ? startConverterWorker({ cacheDir: codeCache ? cacheDir : null, traceFile: TRACE_FILE, log: kernelLog })
  : null;
if (TRACE_FILE) {
  // when a cell first loads the library (part of the first clean-room cell's run time)
  const Module = require("module");
  const load = Module._load;
  let seen = false;
  Module._load = function (request) {
    if (seen || request !== "@cleanroom-lab/kernel") return load.apply(this, arguments);
    seen = true;
    trace("first cell: library require start");
    try {
      return load.apply(this, arguments);
    } finally {
      trace("first cell: library loaded");
    }
  };
}

function fail(message) {
  process.stderr.write(`cleanroom-ts: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const i = argv.indexOf("--config-path");
  if (i < 0 || !argv[i + 1]) fail("usage: launcher.js --config-path <connection_file>");
  return { configPath: argv[i + 1] };
}

let tslabVersion;
try {
  tslabVersion = require("tslab/package.json").version;
} catch (e) {
  fail(`cannot load tslab (run npm install in the repository root): ${e.message}`);
}
if (tslabVersion !== PINNED_TSLAB) {
  fail(`tslab ${tslabVersion} found, but this launcher patches tslab ${PINNED_TSLAB} internals; pin tslab to ${PINNED_TSLAB}`);
}

const ts = require("@tslab/typescript-for-tslab");
const tsVersion = ts.version;
trace("typescript loaded");
speedUpCompiler(ts); // for the converters this thread builds (all of them with CLEANROOM_KERNEL_WORKER=off)
const tslabJupyter = require("tslab/dist/jupyter.js");
const { ZmqServer, JupyterHandlerImpl } = tslabJupyter;
const { createConverter } = require("tslab/dist/converter.js");
const { createExecutor } = require("tslab/dist/executor.js");
trace("tslab loaded");

class CleanroomServer extends ZmqServer {
  constructor(handler, configPath, executor, captured) {
    super(handler, configPath);
    this.executor = executor;
    this.captured = captured; // filled by the executor's console (see startKernel)
    this.execCount = 0;
    this.received = 0; // sequence number of execute requests received
    this.abortUpTo = 0; // execute requests with seq <= abortUpTo are aborted
    this.aborting = false; // also abort requests arriving in the short window after an error
    this.queue = Promise.resolve();
    this.inFlight = 0; // execute requests received and not yet answered (running or queued)
    this.deferredIdle = []; // requests answered during an execution; their idle follows it
    this.session = 1;
    this.history = []; // [session, line, input, outputText|null]
  }

  reply(sock, msg, type, content) {
    const r = msg.createReply();
    r.header.msg_type = type;
    r.content = content;
    r.signAndSend(this.connInfo.key, sock);
  }

  iopubSend(msg, type, content) {
    this.reply(this.iopub, msg, type, content);
  }

  async handleShellMessage(sock, ...args) {
    const msg = WireMessage.fromRaw(this.connInfo.key, args);
    const type = msg.header.msg_type;
    if (type === "execute_request") {
      // busy/idle are published when the request leaves the queue and when it is answered.
      await this.handleExecute(sock, msg);
      return;
    }
    // Answered at once, but while an execution is in flight (running or queued) the idle of
    // this request waits for the executions to drain: front ends track every `status`, so an
    // idle published now would show the kernel Idle in the middle of a long cell.
    clearTimeout(this.warmUpTimer); // a request: the client is not quiet yet (re-armed after the reply)
    if (!this.firstShellSeen) {
      this.firstShellSeen = true;
      trace(`first request: ${type}`);
    }
    const deferIdle = this.inFlight > 0 && type !== "shutdown_request";
    let terminated = false;
    this.publishStatus("busy", msg);
    try {
      switch (type) {
        case "kernel_info_request":
          this.reply(sock, msg, "kernel_info_reply", this.kernelInfo());
          break;
        case "is_complete_request":
          this.handleIsComplete(sock, msg);
          break;
        case "inspect_request":
          this.handleInspect(sock, msg);
          break;
        case "complete_request":
          this.handleComplete(sock, msg);
          break;
        case "history_request":
          this.reply(sock, msg, "history_reply", { status: "ok", history: this.historyQuery(msg.content) });
          break;
        case "comm_info_request":
          // No comm targets are registered by this kernel.
          this.reply(sock, msg, "comm_info_reply", { status: "ok", comms: {} });
          break;
        case "comm_open":
        case "comm_msg":
        case "comm_close":
          break; // no comm targets: ignore, as ipykernel does for unknown targets
        case "interrupt_request":
          this.executor.interrupt();
          this.reply(sock, msg, "interrupt_reply", { status: "ok" });
          break;
        case "shutdown_request":
          this.reply(sock, msg, "shutdown_reply", { status: "ok", restart: !!msg.content.restart });
          terminated = true;
          break;
        default:
          kernelLog(`ignoring unknown msg_type ${type}`);
      }
    } catch (e) {
      kernelLog(`failed to handle ${type}:`, e);
    } finally {
      if (deferIdle) this.deferredIdle.push(msg);
      else this.publishStatus("idle", msg);
    }
    if (type !== "shutdown_request") this.warmUpSoon();
    if (terminated) {
      this.close();
      setTimeout(() => process.exit(0), 200).unref();
    }
  }

  /**
   * Build the compiler (warmUp) once the client has been quiet for WARM_UP_QUIET_MS after a
   * reply: jupyter_client repeats kernel_info until it also sees our iopub status, so the
   * handshake is several requests; warming up after the first would hold the next ones (and
   * the "ready") behind seconds of compiler start-up. Runs once; a cell that arrives before
   * builds the compiler for itself.
   */
  warmUpSoon() {
    if (!this.afterFirstReply) return;
    clearTimeout(this.warmUpTimer);
    this.warmUpTimer = setTimeout(() => {
      if (this.inFlight > 0) return; // a cell is running: re-armed when it is answered
      const warm = this.afterFirstReply;
      this.afterFirstReply = null;
      if (warm) warm();
    }, WARM_UP_QUIET_MS);
  }

  kernelInfo() {
    return {
      status: "ok",
      protocol_version: "5.3",
      implementation: "cleanroom-ts",
      implementation_version: `tslab ${tslabVersion}`,
      language_info: {
        name: "typescript",
        version: tsVersion,
        mimetype: "text/typescript",
        file_extension: ".ts",
        pygments_lexer: "typescript",
        nbconvert_exporter: "script",
        // Same trick as tslab: enables TypeScript highlighting in notebook and JupyterLab.
        codemirror_mode: { mode: "typescript", name: "javascript", typescript: true },
      },
      banner: `cleanroom-ts — TypeScript ${tsVersion} on Node ${process.version} (tslab ${tslabVersion})`,
      help_links: [{ text: "tslab", url: "https://github.com/yunabe/tslab" }],
      debugger: false,
    };
  }

  async handleExecute(sock, msg) {
    const req = msg.content;
    clearTimeout(this.warmUpTimer);
    if (!this.firstExecuteSeen) {
      this.firstExecuteSeen = true;
      trace("first cell: received");
    }
    const seq = ++this.received;
    // A bug in this launcher must still answer the request, or the client waits forever.
    const run = () =>
      this.runExecute(sock, msg, req, seq).catch((e) => {
        kernelLog("execute_request failed inside the launcher:", e);
        const err = { ename: "KernelError", evalue: `cleanroom-ts launcher: ${e && e.message}`, traceback: [] };
        this.reply(sock, msg, "execute_reply", { status: "error", execution_count: this.execCount, ...err });
      });
    const runWithStatus = async () => {
      this.publishStatus("busy", msg);
      try {
        await run();
        if (req.silent !== true) await this.publishLiveBudgets(msg);
      } finally {
        this.publishStatus("idle", msg);
      }
    };
    this.inFlight += 1;
    const done = this.queue.then(runWithStatus, runWithStatus);
    this.queue = done.catch(() => {});
    try {
      await done;
    } finally {
      this.inFlight -= 1;
      if (this.inFlight === 0) for (const m of this.deferredIdle.splice(0)) this.publishStatus("idle", m);
      this.warmUpSoon();
    }
  }

  async runExecute(sock, msg, req, seq) {
    const silent = req.silent === true;
    const storeHistory = !silent && req.store_history !== false;
    const stopOnError = req.stop_on_error !== false;
    if (seq <= this.abortUpTo || this.aborting) {
      this.reply(sock, msg, "execute_reply", { status: "aborted", execution_count: this.execCount });
      return;
    }
    // Route stdout/stderr of this cell (and of callbacks it leaves behind) to its iopub.
    const writeStream = (name, text) => this.iopubSend(msg, "stream", { name, text });
    const writeTo = (name) => (chunk, encoding, cb) => {
      writeStream(name, typeof chunk === "string" ? chunk : Buffer.from(chunk).toString("utf8"));
      if (typeof encoding === "function") encoding();
      else if (typeof cb === "function") cb();
      return true;
    };
    process.stdout.write = writeTo("stdout");
    process.stderr.write = writeTo("stderr");
    const writeDisplayData = (content, update) => {
      if (!silent) this.iopubSend(msg, update ? "update_display_data" : "display_data", content);
    };
    tslabJupyter.lastWriteDisplayData = writeDisplayData; // used by tslab's `display` API
    this.currentMsg = msg;

    if (storeHistory) this.execCount += 1;
    const count = this.execCount;
    if (!silent) this.iopubSend(msg, "execute_input", { code: req.code, execution_count: count });

    this.captured.length = 0;
    let ok;
    try {
      if (compilerWorker && !compilerWorker.isReady()) preloadLibrary(req.code);
      ok = await this.executor.execute(expandShorthand(req.code));
    } catch (e) {
      this.captured.push({ kind: "thrown", value: e });
      ok = false;
    }
    const captured = this.captured.splice(0);
    const lastValue = captured.filter((c) => c.kind === "value").pop();
    let outputText = null;
    let data = null;
    if (ok && lastValue && !silent) {
      try {
        data = resultBundle(lastValue.value); // runs the value's mimebundle hook: may throw
      } catch (e) {
        captured.push({ kind: "thrown", value: e });
        ok = false;
      }
    }

    if (ok) {
      // Diagnostics of a `//@module` cell do not fail it; show them as stderr.
      for (const c of captured) if (c.kind === "diagnostic") writeStream("stderr", c.text + "\n");
      if (data) {
        outputText = data["text/plain"];
        this.iopubSend(msg, "execute_result", { execution_count: count, data, metadata: {} });
      }
      if (storeHistory) this.history.push([this.session, count, req.code, outputText]);
      this.reply(sock, msg, "execute_reply", { status: "ok", execution_count: count, payload: [], user_expressions: {} });
      if (count === 1) {
        trace("first cell: executed");
        if (codeCache) setImmediate(() => flushCodeCache("after the first cell")); // after the reply: off the cell's time
      }
      return;
    }

    const thrown = captured.filter((c) => c.kind === "thrown").pop();
    const refusal = thrown ? refusalView(thrown.value, kernelLog) : null;
    const err = refusal ? refusal.error : describeFailure(captured);
    if (storeHistory) this.history.push([this.session, count, req.code, null]);
    if (!silent && refusal) this.iopubSend(msg, "display_data", { data: refusal.bundle, metadata: {}, transient: {} });
    if (!silent) this.iopubSend(msg, "error", err);
    if (stopOnError) {
      this.abortUpTo = this.received;
      this.aborting = true;
    }
    this.reply(sock, msg, "execute_reply", { status: "error", execution_count: count, ...err, payload: [], user_expressions: {} });
    if (stopOnError) setTimeout(() => (this.aborting = false), ABORT_WINDOW_MS);
  }

  /**
   * The live budget: after every (non-silent) execution, each lab the library has open
   * publishes its ledger as an `update_display_data` with display id `cleanroom-budget:<room>`
   * (kernel-lib/src/verbs/live.ts). No output displays that id, so notebooks leave their
   * outputs alone; the Privacy budget sidebar listens for it on iopub. Each joined room's server
   * is read first (`refresh`, bounded) and its Room panel snapshot published the same way
   * (display id `cleanroom-room:<room>@<member>`, MIME application/vnd.cleanroom-lab.room+json). Nothing is published
   * until the library has opened a lab, and the front end never runs code for it.
   */
  async publishLiveBudgets(msg) {
    const live = globalThis[LIVE_BUDGETS];
    if (!live || typeof live.snapshots !== "function") return;
    try {
      // joined rooms: one signed read-only `roomStatus` each (bounded), for the Room panel
      if (typeof live.refresh === "function") await live.refresh(LIVE_REFRESH_MS);
    } catch (e) {
      kernelLog("cannot read the joined rooms:", e);
    }
    try {
      for (const { displayId, bundle } of live.snapshots())
        this.iopubSend(msg, "update_display_data", { data: bundle, metadata: {}, transient: { display_id: displayId } });
    } catch (e) {
      kernelLog("cannot publish the live budget:", e);
    }
  }

  historyQuery(q) {
    const fmt = (h) => [h[0], h[1], q.output ? [h[2], h[3]] : h[2]];
    let rows = this.history;
    if (q.hist_access_type === "tail") {
      const n = typeof q.n === "number" && q.n > 0 ? q.n : 10;
      rows = rows.slice(-n);
    } else if (q.hist_access_type === "range") {
      const session = q.session || this.session; // 0 = current session
      if (session !== this.session && session !== 0) return [];
      const start = typeof q.start === "number" ? q.start : 1;
      const stop = typeof q.stop === "number" && q.stop > 0 ? q.stop : Infinity;
      rows = rows.filter((h) => h[1] >= start && h[1] < stop);
    } else if (q.hist_access_type === "search") {
      const re = globToRegExp(q.pattern || "*");
      rows = rows.filter((h) => re.test(h[2]));
      if (q.unique) {
        const seen = new Set();
        rows = rows
          .slice()
          .reverse()
          .filter((h) => !seen.has(h[2]) && seen.add(h[2]))
          .reverse();
      }
      if (typeof q.n === "number" && q.n > 0) rows = rows.slice(-q.n);
    } else {
      return [];
    }
    return rows.map(fmt);
  }
}

/**
 * tslab 1.0.22 rewrites references to earlier cells' variables as `exports.name`, but an
 * object shorthand `{ lab }` resolves to the property symbol and is left as `lab`, which is
 * undefined at run time (ReferenceError). Spelling shorthands out as `{ lab: lab }` before
 * tslab converts the cell gives its rewrite an identifier to see. Same semantics, also in
 * destructuring assignments; `{ a = 1 } = o` (with an initializer) is left alone.
 */
function expandShorthand(code) {
  if (!code.includes("{")) return code;
  const sf = ts.createSourceFile("cell.ts", code, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const ends = [];
  const visit = (node) => {
    if (ts.isShorthandPropertyAssignment(node) && !node.objectAssignmentInitializer) ends.push([node.name.end, node.name.text]);
    ts.forEachChild(node, visit);
  };
  visit(sf);
  let out = code;
  for (const [end, name] of ends.sort((a, b) => b[0] - a[0])) out = `${out.slice(0, end)}: ${name}${out.slice(end)}`;
  return out;
}

function startKernel({ configPath }) {
  // One converter for Node cells; browser-mode cells (`//%browser`) get their own lazily.
  const convs = {
    _node: null,
    _browser: null,
    get node() {
      if (!this._node)
        this._node = traceFirstConvert(compilerWorker ? compilerWorker.converter : createConverter({ isJS: false, isBrowser: false }));
      return this._node;
    },
    get browser() {
      return this._browser || (this._browser = createConverter({ isJS: false, isBrowser: true }));
    },
    close() {
      if (this._node) this._node.close();
      if (this._browser) this._browser.close();
    },
  };
  // tslab's executor reports through the console object it is given: `log(value)` for the
  // last expression, `error(fmt, ...)` for compile diagnostics, `error(e)` for exceptions.
  // Capture these instead of printing them, so they become execute_result / error messages.
  const captured = [];
  const executorConsole = {
    log: (value) => captured.push({ kind: "value", value }),
    error: (...args) => {
      if (args.length === 1) captured.push({ kind: "thrown", value: args[0] });
      else captured.push({ kind: "diagnostic", text: util.format(...args) });
    },
  };
  const executor = createExecutor(process.cwd(), convs, executorConsole);
  const server = new CleanroomServer(new JupyterHandlerImpl(executor, false), configPath, executor, captured);

  globalThis[KERNEL_API] = Object.freeze({
    name: "cleanroom-ts",
    /**
     * Publish one display_data with several MIME types at once (tslab's display has one); with
     * a `displayId` the output can later be replaced in place by `updateDisplay`.
     */
    display(bundle, metadata = {}, displayId) {
      if (!server.currentMsg) throw new Error("no cell is executing");
      const transient = typeof displayId === "string" ? { display_id: displayId } : {};
      server.iopubSend(server.currentMsg, "display_data", { data: bundle, metadata, transient });
    },
    /** Replace the output published with `displayId` (iopub `update_display_data`). */
    updateDisplay(bundle, displayId, metadata = {}) {
      if (!server.currentMsg) throw new Error("no cell is executing");
      if (typeof displayId !== "string" || !displayId) throw new Error("updateDisplay needs a display id");
      server.iopubSend(server.currentMsg, "update_display_data", { data: bundle, metadata, transient: { display_id: displayId } });
    },
    clearOutput(wait = false) {
      if (!server.currentMsg) throw new Error("no cell is executing");
      server.iopubSend(server.currentMsg, "clear_output", { wait: !!wait });
    },
  });

  process.on("SIGINT", () => executor.interrupt());
  // Never outlive the Jupyter server that started us: jupyter_client starts kernels in their
  // own session, so when the server dies without shutting us down (killed, crashed) nothing
  // else would stop this process. Reparenting means the parent is gone.
  setInterval(() => {
    if (process.ppid !== parentPid) process.exit(0); // no logging: stderr was the parent's pipe
  }, PARENT_POLL_MS).unref();
  // When the server is gone its end of our stdout/stderr pipes is closed: a write fails with
  // EPIPE. Exit then — reporting the error would write to the same pipe, fail again and spin
  // (orphaned kernels at 100% CPU were the result).
  const serverGone = (err) => err && (err.code === "EPIPE" || err.code === "ERR_STREAM_DESTROYED");
  for (const stream of [process.stdout, process.stderr]) stream.on("error", (err) => serverGone(err) && process.exit(0));
  process.on("uncaughtException", (err) => {
    if (serverGone(err)) process.exit(0);
    console.error("UncaughtException:", err);
  });
  process.on("unhandledRejection", (reason) => console.error("UnhandledPromiseRejection:", reason));
  server.init();
  trace("sockets bound");
  // Answer the handshake first, then warm the compiler up: the front end shows the kernel
  // ready while the converter is built, and a cell sent meanwhile waits in the queue.
  // (A client that sends a cell first builds the compiler for that cell; the rest follows it.)
  // (With the compiler worker there is nothing to warm up here: the worker started with the process.)
  if (!compilerWorker) server.afterFirstReply = () => warmUp(convs);
}

function warmUp(convs) {
  const t = performance.now();
  const conv = convs.node; // builds the compiler program (lib.*.d.ts, @types/node) unless a cell did
  if (process.env.CLEANROOM_KERNEL_PRIME !== "off" && libraryResolvable()) {
    try {
      conv.convertUntraced("", PRIME_CELL);
      trace("library types parsed");
    } catch (e) {
      kernelLog("priming the library's types failed:", e);
    }
  }
  if (codeCache) flushCodeCache("after the warm-up"); // with the compiler functions the warm-up compiled
  trace("warm-up done", { warmUpMs: Math.round(performance.now() - t) });
}

function flushCodeCache(when) {
  const written = codeCache.flush();
  trace(`code cache flushed ${when}`, { written, cache: codeCache.stats() });
}

/**
 * A cell that arrives while the worker is still building the compiler waits for it; when that
 * cell imports the library, this thread loads the library meanwhile (its require cache then
 * serves the cell's import). Only a load: a failure is left for the cell's own import to report.
 */
function preloadLibrary(code) {
  if (!code.includes("@cleanroom-lab/kernel")) return;
  try {
    require("module").createRequire(path.join(process.cwd(), "[cell]"))("@cleanroom-lab/kernel");
  } catch {
    /* reported by the cell */
  }
}

/** The first real conversion and its execution, for the start-up trace. */
function traceFirstConvert(conv) {
  if (!compilerWorker) trace("converter created"); // the worker traces its own
  let first = true;
  const convert = conv.convert;
  conv.convertUntraced = convert;
  conv.convert = function (...args) {
    if (!first) return convert.apply(this, args);
    first = false;
    trace("first cell: type-check start");
    try {
      return convert.apply(this, args);
    } finally {
      trace("first cell: type-checked");
    }
  };
  return conv;
}

startKernel(parseArgs(process.argv.slice(2)));
