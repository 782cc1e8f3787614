#!/usr/bin/env node
// Build @cleanroom-lab/jupyterlab: (1) the kernel library's display module it imports,
// (2) lib/ with tsc, (3) the JupyterLab application bundle in app/build (webpack),
// (4) the prebuilt labextension in labextension/ (@jupyterlab/builder, core-meta 4.6.3).
// Steps 3 and 4 are skipped when their inputs have not changed since the last build
// (a content hash stored next to the output); `--force` rebuilds anyway.
//
// Usage: node extension/scripts/build.mjs [--app] [--labextension] [--force]
//   (no step flag = both)
import { spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, statSync, writeFileSync, mkdirSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const EXT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const REPO = resolve(EXT, "..");
const args = new Set(process.argv.slice(2));
const force = args.has("--force");
const wantApp = args.has("--app") || !args.has("--labextension");
const wantLabext = args.has("--labextension") || !args.has("--app");
const node = process.execPath;
const tsc = join(REPO, "node_modules/typescript/bin/tsc");

function run(label, cmd, argv, opts = {}) {
  const t0 = Date.now();
  const r = spawnSync(cmd, argv, { stdio: "inherit", cwd: opts.cwd ?? EXT, env: { ...process.env, ...opts.env } });
  const ok = r.status === 0;
  console.log(`[extension build] ${label}: ${ok ? "ok" : `failed (exit ${r.status})`} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  if (!ok && !opts.allowFail) process.exit(r.status ?? 1);
  return ok;
}

function files(dir, filter = () => true) {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { withFileTypes: true })
    .flatMap((e) => {
      const p = join(dir, e.name);
      return e.isDirectory() ? files(p, filter) : filter(p) ? [p] : [];
    })
    .sort();
}

function hashOf(paths) {
  const h = createHash("sha256");
  for (const p of paths) h.update(p.slice(REPO.length)).update("\0").update(readFileSync(p)).update("\0");
  return h.digest("hex");
}

function upToDate(stampFile, digest) {
  return !force && existsSync(stampFile) && readFileSync(stampFile, "utf8").trim() === digest;
}

// 1. kernel-lib display module (the schema is shared). Other layers may have type errors
// mid-session; what matters is that the display files are emitted.
const displaySrc = files(join(REPO, "kernel-lib/src/display"), (p) => p.endsWith(".ts"));
const outOf = (src) => join(REPO, "kernel-lib/dist/display", src.split(/[\\/]/).pop().replace(/\.ts$/, ".js"));
const stale = displaySrc.some((p) => !existsSync(outOf(p)) || statSync(p).mtimeMs > statSync(outOf(p)).mtimeMs);
if (stale) {
  run("kernel-lib (tsc -b)", node, [tsc, "-b", join(REPO, "kernel-lib")], { allowFail: true });
  for (const f of ["schema", "format", "vegalite"]) {
    if (!existsSync(join(REPO, `kernel-lib/dist/display/${f}.js`))) {
      console.error(`[extension build] kernel-lib/dist/display/${f}.js was not emitted`);
      process.exit(1);
    }
  }
}

// 2. lib/
run("lib (tsc)", node, [tsc, "-p", join(EXT, "tsconfig.json")]);

const shared = [
  ...files(join(EXT, "lib"), (p) => p.endsWith(".js")),
  ...files(join(EXT, "style")),
  ...files(join(REPO, "kernel-lib/dist/display"), (p) => p.endsWith(".js")),
  join(EXT, "package.json"),
  join(REPO, "package-lock.json"),
];

// 3. the application bundle
if (wantApp) {
  const inputs = [...shared, join(EXT, "app/index.js"), join(EXT, "app/webpack.config.js")];
  const digest = hashOf(inputs);
  const stamp = join(EXT, "app/build/.inputs-sha256");
  if (upToDate(stamp, digest) && existsSync(join(EXT, "app/build/bundle.js"))) {
    console.log("[extension build] app bundle: up to date");
  } else {
    run("app bundle (webpack)", node, [join(REPO, "node_modules/webpack/bin/webpack.js"), "--config", join(EXT, "app/webpack.config.js")], {
      cwd: join(EXT, "app"),
    });
    mkdirSync(dirname(stamp), { recursive: true });
    writeFileSync(stamp, digest + "\n");
  }
}

// 4. the prebuilt (federated) labextension
if (wantLabext) {
  const digest = hashOf(shared);
  const stamp = join(EXT, "labextension/.inputs-sha256");
  if (upToDate(stamp, digest) && existsSync(join(EXT, "labextension/package.json"))) {
    console.log("[extension build] labextension: up to date");
  } else {
    // build-labextension wants a directory whose package.json is JupyterLab's core package
    // (shared singletons and versions): core-meta ships it as core.package.json.
    const corePath = join(REPO, "node_modules/.cache/cleanroom-lab-core");
    mkdirSync(corePath, { recursive: true });
    writeFileSync(join(corePath, "package.json"), readFileSync(join(REPO, "node_modules/@jupyterlab/core-meta/core.package.json")));
    run("labextension (@jupyterlab/builder)", node, [
      join(REPO, "node_modules/@jupyterlab/builder/lib/build-labextension.js"),
      "--core-path",
      corePath,
      EXT,
    ]);
    writeFileSync(stamp, digest + "\n");
  }
  // What a pip JupyterLab reads: the federated entry point and both extension points.
  const built = JSON.parse(readFileSync(join(EXT, "labextension/package.json"), "utf8")).jupyterlab?._build ?? {};
  const entry = built.load ? join(EXT, "labextension", built.load) : null;
  if (!entry || !existsSync(entry) || built.extension !== "./extension" || built.mimeExtension !== "./mimeExtension") {
    console.error(`[extension build] labextension/package.json is incomplete: ${JSON.stringify(built)}`);
    process.exit(1);
  }
}
