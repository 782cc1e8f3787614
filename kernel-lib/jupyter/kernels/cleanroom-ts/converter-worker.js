"use strict";
/**
 * The kernel's TypeScript compiler in a worker thread (issue 18: kernel start → first cell).
 *
 * Building tslab's compiler program (lib.es2022 + @types/node declarations) and parsing the
 * library's declarations (and zod's, arquero's … they import) is most of a kernel's start, and
 * it is CPU work the main thread cannot do while it answers the handshake. So the launcher
 * starts this worker first thing: the worker loads TypeScript, builds tslab's converter (the
 * same `createConverter` tslab uses, with the launcher's compiler options: `speedUpCompiler`)
 * and type-checks `import type {} from "@cleanroom-lab/kernel"`, on the second core, while the
 * main thread loads tslab and zeromq, binds its sockets and answers the handshake.
 *
 * The main thread gets a `Converter` (tslab's interface: convert, inspect, complete, addModule,
 * close) whose methods are synchronous calls into the worker: a request on a MessagePort, then
 * `Atomics.wait` until the worker has posted the reply and raised a flag, then
 * `receiveMessageOnPort`. tslab's executor calls the converter synchronously, as before; a
 * call made before the worker is ready waits for it (requests queue on the port). Every cell
 * is still type-checked exactly as before — only the thread doing it changed; an exception in
 * the worker's converter is re-thrown in the main thread as an Error with the same message.
 * The worker's event loop stays free between calls, so the watch program still sees files the
 * cells import from the working directory.
 *
 * Traces (CLEANROOM_KERNEL_TRACE) from the worker use the main thread's clock (ms since the
 * process started); their cpuMs is the whole process's CPU time, both threads.
 * CLEANROOM_KERNEL_WORKER=off builds the compiler in the main thread (the launcher's older path).
 * Limit: if the worker thread dies abruptly (out of memory), a call waiting on it waits forever.
 */

const fs = require("fs");
const path = require("path");
const { Worker, MessageChannel, receiveMessageOnPort, isMainThread, parentPort, workerData } = require("worker_threads");

const WORKER_KIND = "cleanroom-ts/converter-worker/v1";

/**
 * A type-only import of the library: parsing its declaration files (and those of zod,
 * arquero … they import) is most of the first clean-room cell's type-check. Done during the
 * warm-up the compiler keeps these parsed files, so the first real cell only checks itself.
 * It produces no code and no variables; a failure (library not built, not resolvable from the
 * notebook's folder) is ignored — the cell that imports the library reports it.
 */
const PRIME_CELL = 'import type {} from "@cleanroom-lab/kernel";';

/** CPU ms of the calling OS thread (Linux: utime + stime of /proc/thread-self/stat, 10 ms ticks), or undefined. */
function threadCpuMs() {
  try {
    const stat = fs.readFileSync("/proc/thread-self/stat", "latin1");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from the 3rd (state) on
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime: fields 14 and 15
  } catch {
    return undefined;
  }
}

/**
 * The start-up trace (CLEANROOM_KERNEL_TRACE=<file>): `trace(phase, extra)` appends one JSON line
 * `{ pid, phase, ms, cpuMs, threadCpuMs, ...fields, ...extra }` — ms from `now()`, the process's
 * and this thread's CPU time so far. No file: does nothing.
 */
function createTrace({ file, now, log, fields = {} }) {
  return (phase, extra) => {
    if (!file) return;
    const cpu = process.cpuUsage();
    const row = {
      pid: process.pid,
      phase,
      ms: Math.round(now()),
      cpuMs: Math.round((cpu.user + cpu.system) / 1000),
      threadCpuMs: threadCpuMs(),
    };
    try {
      fs.appendFileSync(file, JSON.stringify({ ...row, ...fields, ...extra }) + "\n");
    } catch (e) {
      log(`cannot write the start-up trace: ${e.message}`);
    }
  };
}

function libraryResolvable() {
  try {
    require.resolve("@cleanroom-lab/kernel", { paths: [process.cwd()] });
    return true;
  } catch {
    return false;
  }
}

/**
 * Start-up and per-cell cost (issue 18, measured with --cpu-prof): tslab's converter is a
 * TypeScript watch program that (1) loads EVERY package under node_modules/@types as global
 * types (47 in this repository: d3, react, lodash, chai …) and re-checks them with every cell,
 * and (2) puts a real file-system watcher on every directory and declaration file it touched,
 * walking node_modules (readdir + stat, ~40% of the converter's start-up). Two changes, made
 * before tslab's converter module loads (in each thread that creates converters):
 *  - global types are `node` only (the compiler option `types`): a cell still gets any
 *    package's types by importing it (resolution of imported modules is unchanged);
 *  - nothing under node_modules is watched. Files in the working directory (a cell's own .ts
 *    imports) still are; a package installed or rebuilt while the kernel runs needs a kernel
 *    restart to be seen by the type checker, as it does to be re-required by Node.
 * tslab reads `createWatchCompilerHost` from the typescript module's exports, which are
 * getters; tslab gets a copy of that export object with one function wrapped.
 */
function speedUpCompiler(ts) {
  const inNodeModules = (p) => /[\\/]node_modules([\\/]|$)/.test(p);
  const noWatch = { close() {} };
  const { watchDirectory, watchFile } = ts.sys;
  ts.sys.watchDirectory = function (p, ...rest) {
    return inNodeModules(p) ? noWatch : watchDirectory.call(this, p, ...rest);
  };
  ts.sys.watchFile = function (p, ...rest) {
    return inNodeModules(p) ? noWatch : watchFile.call(this, p, ...rest);
  };
  const tsPath = require.resolve("@tslab/typescript-for-tslab");
  const exportsCopy = {};
  for (const k of Object.keys(ts)) {
    if (k !== "createWatchCompilerHost") Object.defineProperty(exportsCopy, k, { enumerable: true, get: () => ts[k] });
  }
  Object.defineProperty(exportsCopy, "createWatchCompilerHost", {
    enumerable: true,
    value: (rootFiles, options, ...rest) => ts.createWatchCompilerHost(rootFiles, { ...options, types: ["node"] }, ...rest),
  });
  require.cache[tsPath].exports = exportsCopy;
}

// ---------------------------------------------------------------- main thread side

/**
 * Start the worker. `cacheDir`: the code cache directory (null: no cache); `traceFile`: the
 * start-up trace; `log`: the kernel's log. Returns `{ converter, isReady(), close() }`.
 */
/** How long one call may wait for the compiler worker (CLEANROOM_KERNEL_WORKER_DEADLINE_MS, default 300 s). */
const CALL_DEADLINE_MS = (() => {
  const v = Number(process.env.CLEANROOM_KERNEL_WORKER_DEADLINE_MS ?? 300_000);
  return Number.isFinite(v) && v > 0 ? v : 300_000;
})();

function startConverterWorker({ cacheDir, traceFile, log, deadlineMs = CALL_DEADLINE_MS }) {
  const { port1, port2 } = new MessageChannel();
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const worker = new Worker(__filename, {
    workerData: { kind: WORKER_KIND, port: port2, flag, cacheDir, traceFile, timeOrigin: performance.timeOrigin },
    transferList: [port2],
    stdout: true, // the worker's console is not the user's: nothing it prints reaches a cell
    stderr: true,
  });
  worker.stdout.on("data", (d) => log(`compiler worker: ${String(d).trimEnd()}`));
  worker.stderr.on("data", (d) => log(`compiler worker: ${String(d).trimEnd()}`));
  let ready = false;
  let gone = null;
  worker.on("message", (m) => {
    if (m && m.ready) ready = true;
    if (m && typeof m.log === "string") log(m.log);
  });
  worker.on("error", (e) => {
    gone = e;
    log("compiler worker failed:", e);
  });
  worker.on("exit", (code) => {
    gone = gone || new Error(`the compiler worker exited (code ${code})`);
  });
  worker.unref();
  port1.unref();

  let seq = 0;
  function call(method, args) {
    if (gone) throw new Error(`cleanroom-ts: no type checker: ${gone.message}; restart the kernel`);
    const id = ++seq;
    Atomics.store(flag, 0, 0);
    port1.postMessage({ id, method, args });
    const started = Date.now();
    for (;;) {
      // The worker's "exit" event cannot arrive while this thread waits, so a worker that died
      // (out of memory, say) would leave the cell busy for good: after the deadline, give up.
      if (Date.now() - started > deadlineMs) {
        gone = new Error(`the compiler worker did not answer ${method} within ${deadlineMs / 1000} s`);
        void worker.terminate();
        throw new Error(`cleanroom-ts: no type checker: ${gone.message}; restart the kernel`);
      }
      const got = receiveMessageOnPort(port1);
      if (got) {
        const r = got.message;
        if (r.id !== id) continue; // a reply to a call that threw before it was read: cannot happen, but never mix them up
        if (r.error) {
          const e = new Error(r.error.message);
          e.name = r.error.name || "Error";
          if (r.error.stack) e.stack = r.error.stack;
          throw e;
        }
        return r.value;
      }
      Atomics.wait(flag, 0, 0, 1000);
      Atomics.store(flag, 0, 0);
    }
  }
  const converter = {
    convert: (prevDecl, src) => call("convert", [prevDecl, src]),
    inspect: (prevDecl, src, position) => call("inspect", [prevDecl, src, position]),
    complete: (prevDecl, src, position) => call("complete", [prevDecl, src, position]),
    addModule: (name, content, meta) => call("addModule", [name, content, meta]),
    close() {
      if (!gone) worker.terminate();
    },
  };
  return { converter, isReady: () => ready };
}

// ---------------------------------------------------------------- worker side

function runWorker() {
  const { port, flag, cacheDir, traceFile, timeOrigin } = workerData;
  const log = (text) => parentPort.postMessage({ log: `compiler worker: ${text}` });
  const trace = createTrace({
    file: traceFile,
    now: () => performance.timeOrigin + performance.now() - timeOrigin, // the main thread's clock
    log,
    fields: { thread: "worker" },
  });
  trace("worker: started");
  let codeCache = null;
  if (cacheDir) {
    const { createCodeCache, KERNEL_CACHED_MODULES } = require(path.join(__dirname, "code-cache.js"));
    codeCache = createCodeCache({ dir: cacheDir, include: (f) => KERNEL_CACHED_MODULES.test(f), log });
    if (!codeCache.install()) codeCache = null;
  }
  let conv = null;
  let broken = null;
  try {
    const ts = require("@tslab/typescript-for-tslab");
    trace("worker: typescript loaded");
    speedUpCompiler(ts);
    const { createConverter } = require("tslab/dist/converter.js");
    conv = createConverter({ isJS: false, isBrowser: false });
    trace("converter created");
  } catch (e) {
    broken = e;
    log(`cannot build the compiler: ${e && e.stack}`);
  }
  if (conv && process.env.CLEANROOM_KERNEL_PRIME !== "off" && libraryResolvable()) {
    try {
      conv.convert("", PRIME_CELL);
      trace("library types parsed");
    } catch (e) {
      log(`priming the library's types failed: ${e && e.message}`);
    }
  }
  if (codeCache) {
    const written = codeCache.flush();
    trace("code cache flushed after the warm-up", { written, cache: codeCache.stats() });
  }
  trace("warm-up done");
  parentPort.postMessage({ ready: true });

  port.on("message", ({ id, method, args }) => {
    let reply;
    try {
      if (broken) throw broken;
      if (!["convert", "inspect", "complete", "addModule"].includes(method)) throw new Error(`unknown converter call ${method}`);
      reply = { id, value: conv[method](...args) };
    } catch (e) {
      reply = { id, error: { name: e && e.name, message: String(e && e.message !== undefined ? e.message : e), stack: e && e.stack } };
    }
    try {
      port.postMessage(reply);
    } catch (e) {
      port.postMessage({ id, error: { name: "Error", message: `cleanroom-ts: the ${method} result cannot be sent: ${e.message}` } });
    }
    Atomics.store(flag, 0, 1);
    Atomics.notify(flag, 0);
  });
}

if (!isMainThread && workerData && workerData.kind === WORKER_KIND) runWorker();

module.exports = { startConverterWorker, speedUpCompiler, libraryResolvable, createTrace, PRIME_CELL };
