/**
 * Shared helpers for the project scripts (bootstrap, test, start, bench).
 *
 * Dependency-free on purpose: these run before `npm install` on a fresh machine.
 * Everything the scripts write at run time lives under `.scratch/` (gitignored), never in $HOME.
 */
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
export const SCRATCH = path.join(ROOT, ".scratch");
export const PYTHON = "/usr/bin/python3";
export const JUPYTER = "/usr/bin/jupyter";
export const KERNEL_NAME = "cleanroom-ts";
export const KERNELS_DIR = path.join(ROOT, "kernel-lib", "jupyter");

/** A directory under .scratch, created on demand. */
export function scratchDir(...parts) {
  const dir = path.join(SCRATCH, ...parts);
  fs.mkdirSync(dir, { recursive: true });
  return dir;
}

/**
 * Environment for anything Jupyter: the project kernelspec on JUPYTER_PATH and all of
 * Jupyter's runtime/data/config state inside .scratch/jupyter (nothing in $HOME).
 */
export function jupyterEnv(extra = {}) {
  return {
    ...process.env,
    JUPYTER_PATH: KERNELS_DIR,
    JUPYTER_RUNTIME_DIR: scratchDir("jupyter", "runtime"),
    JUPYTER_DATA_DIR: scratchDir("jupyter", "data"),
    JUPYTER_CONFIG_DIR: scratchDir("jupyter", "config"),
    IPYTHONDIR: scratchDir("jupyter", "ipython"),
    JUPYTER_PLATFORM_DIRS: "1",
    PYDEVD_DISABLE_FILE_VALIDATION: "1",
    PYTHONDONTWRITEBYTECODE: "1",
    ...extra,
  };
}

/** Run a command to completion, capturing output. Never reads stdin. */
export function runCapture(cmd, args, opts = {}) {
  const r = spawnSync(cmd, args, {
    cwd: ROOT,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "pipe"],
    maxBuffer: 256 * 1024 * 1024,
    ...opts,
  });
  return { status: r.error ? 127 : r.status, stdout: r.stdout || "", stderr: r.stderr || "", error: r.error };
}

/**
 * Run a command, streaming its output to ours while also keeping it (for parsing).
 * Resolves with { status, output }. stdin is closed.
 */
export function runTee(cmd, args, { echo = true, ...opts } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"], ...opts });
    let output = "";
    const onData = (stream) => (chunk) => {
      output += chunk;
      if (echo) stream.write(chunk);
    };
    child.stdout.on("data", onData(process.stdout));
    child.stderr.on("data", onData(process.stderr));
    child.on("error", (e) => resolve({ status: 127, output: output + String(e) }));
    child.on("close", (code, signal) => resolve({ status: code ?? (signal ? 128 : 1), output }));
  });
}

/** Print a failure with the captured output of the step that failed, then exit non-zero. */
export function die(message, captured = "") {
  if (captured.trim()) process.stderr.write(captured.trimEnd() + "\n");
  process.stderr.write(`\n✗ ${message}\n`);
  process.exit(1);
}

export function note(message) {
  process.stdout.write(`• ${message}\n`);
}
