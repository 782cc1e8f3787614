#!/usr/bin/env node
/**
 * Bootstrap: make a fresh Debian 12 + Node 20 machine ready to run, test and serve the lab.
 *
 *   node scripts/bootstrap.mjs [--no-browser] [--no-build]
 *
 * 1. Debian packages (Jupyter server/client, nbclient, nbconvert, jupyter_kernel_test,
 *    ipykernel; chromium for browser tests): checked with dpkg-query; when missing and we are
 *    root they are installed with apt-get non-interactively, otherwise the exact command is
 *    printed and we exit non-zero. The Python side cannot come from PyPI here (see
 *    ../shared/JUPYTER.md), so Debian is the only source.
 * 2. npm dependencies: `npm install` when node_modules is missing or package-lock.json is newer
 *    than npm's record of the last install (node_modules/.package-lock.json).
 * 3. Build: kernel-lib with the workspace's TypeScript (never `npx tsc`, which finds tslab's
 *    bundled TS 5.0), then the extension's own build script if it has one.
 *
 * Quiet on success; on failure prints the failing step's output. Logs go to .scratch/logs/.
 * Also importable: `import { bootstrap } from "./bootstrap.mjs"`.
 */
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { ROOT, runCapture, die, note, scratchDir } from "./common.mjs";

/** Debian packages the notebooks, the kernel tests and the runner need. */
export const JUPYTER_PACKAGES = [
  "jupyter-core",
  "jupyter-client",
  "python3-jupyter-server",
  "python3-jupyterlab-server",
  "python3-nbclient",
  "jupyter-nbconvert",
  "python3-jupyter-kernel-test",
  "python3-ipykernel",
];
/** Extra Debian packages for the browser end-to-end tests. */
export const BROWSER_PACKAGES = ["chromium", "chromium-driver"];

function checkNode() {
  const [major, minor] = process.versions.node.split(".").map(Number);
  // Node >= 20.19 can require() ES modules; tslab's CommonJS cells rely on it.
  if (major < 20 || (major === 20 && minor < 19)) {
    die(`Node ${process.versions.node} is too old: cleanroom-lab needs Node >= 20.19 (require(esm)).`);
  }
}

/** Packages from `wanted` that dpkg does not report as installed. */
export function missingDebianPackages(wanted) {
  const r = runCapture("dpkg-query", ["-W", "-f=${Package} ${db:Status-Abbrev}\n", ...wanted]);
  if (r.error) return null; // not a Debian system
  const installed = new Set(
    r.stdout
      .split("\n")
      .map((l) => l.trim().split(/\s+/))
      .filter(([, status]) => status && status.startsWith("ii"))
      .map(([pkg]) => pkg),
  );
  return wanted.filter((p) => !installed.has(p));
}

function ensureDebianPackages(wanted) {
  const missing = missingDebianPackages(wanted);
  if (missing === null) {
    // Not Debian: accept the machine if the Python modules we need import.
    const r = runCapture("/usr/bin/python3", ["-c", "import jupyter_client, nbclient, jupyter_server, jupyter_kernel_test"]);
    if (r.status !== 0)
      die("dpkg-query not found and /usr/bin/python3 lacks jupyter_client/nbclient/jupyter_server/jupyter_kernel_test.", r.stderr);
    return;
  }
  if (missing.length === 0) return;
  const cmd = `apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends ${missing.join(" ")}`;
  if (typeof process.getuid !== "function" || process.getuid() !== 0) {
    die(`Missing Debian packages: ${missing.join(" ")}\nInstall them as root, then re-run:\n\n  sudo sh -c '${cmd}'\n`);
  }
  note(`installing Debian packages: ${missing.join(" ")}`);
  const log = path.join(scratchDir("logs"), "apt.log");
  const env = { ...process.env, DEBIAN_FRONTEND: "noninteractive" };
  for (const args of [["update"], ["install", "-y", "--no-install-recommends", ...missing]]) {
    const r = runCapture("apt-get", args, { env });
    fs.appendFileSync(log, `$ apt-get ${args.join(" ")}\n${r.stdout}${r.stderr}\n`);
    if (r.status !== 0)
      die(`apt-get ${args[0]} failed (log: ${path.relative(ROOT, log)})`, (r.stdout + r.stderr).split("\n").slice(-30).join("\n"));
  }
  const still = missingDebianPackages(wanted);
  if (still && still.length) die(`apt-get finished but these are still missing: ${still.join(" ")}`);
}

function mtime(p) {
  try {
    return fs.statSync(p).mtimeMs;
  } catch {
    return -1;
  }
}

function ensureNpmDependencies() {
  const lock = path.join(ROOT, "package-lock.json");
  const installed = path.join(ROOT, "node_modules", ".package-lock.json");
  const stale = mtime(installed) < 0 || mtime(lock) > mtime(installed);
  if (!stale) return;
  note("installing npm dependencies (npm install)");
  // Several checkouts may share this machine: serialise installs with flock when available.
  const npmArgs = ["install", "--no-audit", "--no-fund"];
  const hasFlock = runCapture("flock", ["--version"]).status === 0;
  const r = hasFlock ? runCapture("flock", ["/tmp/npm.lock", "npm", ...npmArgs]) : runCapture("npm", npmArgs);
  fs.writeFileSync(path.join(scratchDir("logs"), "npm-install.log"), r.stdout + r.stderr);
  if (r.status !== 0) die("npm install failed", r.stdout + r.stderr);
}

function build() {
  const tsc = path.join(ROOT, "node_modules", "typescript", "bin", "tsc");
  const r = runCapture(process.execPath, [tsc, "-b"]);
  if (r.status !== 0) die("kernel-lib build failed (node node_modules/typescript/bin/tsc -b)", r.stdout + r.stderr);
  const extPkg = path.join(ROOT, "extension", "package.json");
  // CLEANROOM_SKIP_EXTENSION_BUILD=1: for kernel-only work while the extension is mid-change.
  if (fs.existsSync(extPkg) && !process.env.CLEANROOM_SKIP_EXTENSION_BUILD) {
    const pkg = JSON.parse(fs.readFileSync(extPkg, "utf8"));
    if (pkg.scripts && pkg.scripts.build) {
      if (!fs.existsSync(path.join(ROOT, "extension", "app", "build"))) {
        note("building the JupyterLab extension and app (npm run build -w extension; the first build takes minutes)");
      }
      const e = runCapture("npm", ["run", "build", "-w", "extension"]);
      fs.writeFileSync(path.join(scratchDir("logs"), "extension-build.log"), e.stdout + e.stderr);
      if (e.status !== 0) die("extension build failed (npm run build -w extension)", e.stdout + e.stderr);
    }
  }
}

/**
 * Make the machine ready. Exits the process with a clear message on failure.
 * @param {{browser?: boolean, build?: boolean}} opts browser: also require chromium (tests).
 */
export function bootstrap({ browser = true, build: doBuild = true } = {}) {
  checkNode();
  ensureDebianPackages(browser ? [...JUPYTER_PACKAGES, ...BROWSER_PACKAGES] : JUPYTER_PACKAGES);
  ensureNpmDependencies();
  if (doBuild) build();
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = process.argv.slice(2);
  bootstrap({ browser: !args.includes("--no-browser"), build: !args.includes("--no-build") });
}
