/**
 * The cleanroom-ts launcher's V8 code cache (kernel-lib/jupyter/kernels/cleanroom-ts/code-cache.js).
 * Each case runs real Node processes that load a module through the cache, as the kernel does
 * for typescript.js: a miss writes an entry, the next process hits it; a changed file gets a
 * new key; corrupt, truncated or foreign entries fall back to compiling from source and are
 * rewritten; two processes writing at once leave one valid entry and no temporary files; a
 * cache directory that cannot be created, is a symlink or is writable by group/others leaves the module
 * working without the cache. End-to-end with the kernel
 * (a type error still shown from a cached compiler): test_code_cache.py.
 */
import { spawn, spawnSync } from "node:child_process";
import { createHash } from "node:crypto";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";
import ts from "typescript";
import { afterEach, beforeEach, describe, expect, it } from "vitest";

const CODE_CACHE = path.resolve(__dirname, "../../kernel-lib/jupyter/kernels/cleanroom-ts/code-cache.js");
const MAGIC = Buffer.from("CRTSV8C1", "latin1");
const ROOT = path.resolve(__dirname, "../..");

let work: string;
let cacheDir: string;
let modFile: string;

// A module big enough to have functions worth caching; it requires and resolves.
function moduleSource(tag: string): string {
  const fns = Array.from({ length: 200 }, (_, i) => `function f${i}(x) { return x * ${i} + ${tag.length}; }`).join("\n");
  return `${fns}
const path = require("path");
exports.tag = ${JSON.stringify(tag)};
exports.sum = () => [${Array.from({ length: 200 }, (_, i) => `f${i}(1)`).join(", ")}].reduce((a, b) => a + b, 0);
exports.resolved = require.resolve("path");
exports.dirnameOk = __dirname === path.dirname(__filename);
exports.load = () => Promise.resolve(typeof require("os").cpus);
`;
}

// The driver: install the cache for modFile only, load it, use it, flush, print what happened.
function driverSource(dir: string, file: string): string {
  return `
const { createCodeCache } = require(${JSON.stringify(CODE_CACHE)});
const cc = createCodeCache({ dir: ${JSON.stringify(dir)}, include: (f) => f === ${JSON.stringify(file)}, log: (m) => console.error(m) });
const installed = cc.install();
const m = require(${JSON.stringify(file)});
m.load().then((dyn) => {
  const written = cc.flush();
  console.log(JSON.stringify({ installed, written, stat: cc.stats()[${JSON.stringify(file)}] ?? null,
    tag: m.tag, sum: m.sum(), resolved: m.resolved, dirnameOk: m.dirnameOk, dyn }));
});
`;
}

type Run = {
  installed: boolean;
  written: number;
  stat: string | null;
  tag: string;
  sum: number;
  resolved: string;
  dirnameOk: boolean;
  dyn: string;
};

function runOnce(dir = cacheDir): Run {
  const r = spawnSync(process.execPath, ["-e", driverSource(dir, modFile)], { encoding: "utf8" });
  expect(r.status, r.stderr).toBe(0);
  return JSON.parse(r.stdout.trim().split("\n").pop()!);
}

function runConcurrently(n: number): Promise<Run[]> {
  return Promise.all(
    Array.from(
      { length: n },
      () =>
        new Promise<Run>((resolve, reject) => {
          const child = spawn(process.execPath, ["-e", driverSource(cacheDir, modFile)], { stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          let err = "";
          child.stdout.on("data", (d) => (out += d));
          child.stderr.on("data", (d) => (err += d));
          child.on("close", (code) => (code === 0 ? resolve(JSON.parse(out.trim().split("\n").pop()!)) : reject(new Error(err))));
        }),
    ),
  );
}

const entries = () => fs.readdirSync(cacheDir).filter((f) => f.endsWith(".v8cache"));
const entryValid = (name: string) => {
  const buf = fs.readFileSync(path.join(cacheDir, name));
  const payload = buf.subarray(MAGIC.length + 32);
  return (
    buf.subarray(0, MAGIC.length).equals(MAGIC) &&
    createHash("sha256")
      .update(payload)
      .digest()
      .equals(buf.subarray(MAGIC.length, MAGIC.length + 32))
  );
};
const expected = (tag: string) => Array.from({ length: 200 }, (_, i) => i + tag.length).reduce((a, b) => a + b, 0);

beforeEach(() => {
  work = fs.mkdtempSync(path.join(os.tmpdir(), "crts-code-cache-"));
  cacheDir = path.join(work, "cache");
  modFile = path.join(work, "big-module.js");
  fs.writeFileSync(modFile, moduleSource("v1"));
});
afterEach(() => fs.rmSync(work, { recursive: true, force: true }));

describe("code cache", () => {
  it("misses and writes an entry, then the next process hits it; the module behaves the same", () => {
    const first = runOnce();
    expect(first).toMatchObject({ installed: true, written: 1, stat: "miss", tag: "v1", dirnameOk: true, dyn: "function" });
    expect(first.sum).toBe(expected("v1"));
    expect(first.resolved).toBe("path");
    expect(entries()).toHaveLength(1);
    expect(entryValid(entries()[0]!)).toBe(true);

    const second = runOnce();
    expect(second).toMatchObject({ stat: "hit", written: 0, tag: "v1", sum: expected("v1"), dyn: "function" });
  });

  it("keys entries by content: a changed file misses, runs the new code, and replaces the old entry", () => {
    runOnce();
    const before = entries();
    fs.writeFileSync(modFile, moduleSource("v2-longer"));
    const changed = runOnce();
    expect(changed).toMatchObject({ stat: "miss", written: 1, tag: "v2-longer", sum: expected("v2-longer") });
    const after = entries();
    expect(after).toHaveLength(1);
    expect(after[0]).not.toBe(before[0]);
    expect(runOnce().stat).toBe("hit");
  });

  it("a corrupt entry (one payload byte flipped) is detected, the module compiles from source and the entry is rewritten", () => {
    runOnce();
    const file = path.join(cacheDir, entries()[0]!);
    const buf = fs.readFileSync(file);
    buf[buf.length - 10]! ^= 0xff;
    fs.writeFileSync(file, buf);
    const run = runOnce();
    expect(run).toMatchObject({ stat: "corrupt: checksum mismatch", written: 1, tag: "v1", sum: expected("v1") });
    expect(entryValid(entries()[0]!)).toBe(true);
    expect(runOnce().stat).toBe("hit");
  });

  it("a truncated entry or one without the magic header falls back cleanly", () => {
    runOnce();
    const file = path.join(cacheDir, entries()[0]!);
    fs.writeFileSync(file, fs.readFileSync(file).subarray(0, 20));
    expect(runOnce()).toMatchObject({ stat: "corrupt: bad header", sum: expected("v1") });
    fs.writeFileSync(file, Buffer.concat([Buffer.from("NOTMAGIC"), Buffer.alloc(64, 1)]));
    expect(runOnce()).toMatchObject({ stat: "corrupt: bad header", sum: expected("v1") });
    expect(runOnce().stat).toBe("hit");
  });

  it("an intact entry V8 does not accept (not code cache data) is counted as rejected and rewritten", () => {
    runOnce();
    const file = path.join(cacheDir, entries()[0]!);
    const garbage = Buffer.alloc(4096, 7);
    fs.writeFileSync(file, Buffer.concat([MAGIC, createHash("sha256").update(garbage).digest(), garbage]));
    expect(runOnce()).toMatchObject({ stat: "rejected", written: 1, sum: expected("v1") });
    expect(runOnce().stat).toBe("hit");
  });

  it("processes writing at once leave exactly one valid entry and no temporary files", async () => {
    const runs = await runConcurrently(4);
    for (const r of runs) expect(r).toMatchObject({ tag: "v1", sum: expected("v1") });
    expect(runs.every((r) => r.stat === "miss" || r.stat === "hit")).toBe(true);
    expect(fs.readdirSync(cacheDir).filter((f) => f.endsWith(".tmp"))).toEqual([]);
    expect(entries()).toHaveLength(1);
    expect(entryValid(entries()[0]!)).toBe(true);
    expect(runOnce().stat).toBe("hit");
  });

  it("a cache directory that cannot be created disables the cache and the module still loads", () => {
    const blocker = path.join(work, "not-a-dir");
    fs.writeFileSync(blocker, "x");
    const run = runOnce(path.join(blocker, "cache"));
    expect(run).toMatchObject({ installed: false, written: 0, stat: null, tag: "v1", sum: expected("v1") });
  });

  it("a group/world-writable or symlinked cache directory disables the cache (a 0700 own directory is used)", () => {
    // positive control: the user's own 0700 directory that already exists is used
    fs.mkdirSync(cacheDir, { mode: 0o700 });
    fs.chmodSync(cacheDir, 0o700);
    expect(runOnce()).toMatchObject({ installed: true, written: 1, stat: "miss" });
    expect(runOnce()).toMatchObject({ installed: true, stat: "hit" });
    // the same directory made writable by others: another local user could plant entries; not used, not written
    for (const mode of [0o777, 0o770, 0o702]) {
      fs.chmodSync(cacheDir, mode);
      const before = entries();
      expect(runOnce(), mode.toString(8)).toMatchObject({ installed: false, written: 0, stat: null, tag: "v1", sum: expected("v1") });
      expect(entries()).toEqual(before);
    }
    fs.chmodSync(cacheDir, 0o700);
    // a symlink to a 0700 directory: not followed
    const target = path.join(work, "elsewhere");
    fs.mkdirSync(target, { mode: 0o700 });
    const link = path.join(work, "linked-cache");
    fs.symlinkSync(target, link);
    expect(runOnce(link)).toMatchObject({ installed: false, written: 0, stat: null, sum: expected("v1") });
    expect(fs.readdirSync(target)).toEqual([]);
  });
});

describe("the launcher's selection of cached modules", () => {
  const req = createRequire(path.join(ROOT, "kernel-lib/jupyter/kernels/cleanroom-ts/launcher.js"));
  const { KERNEL_CACHED_MODULES } = req(CODE_CACHE) as { KERNEL_CACHED_MODULES: RegExp };
  const tsFile = req.resolve("@tslab/typescript-for-tslab");
  const tslabDist = path.join(path.dirname(req.resolve("tslab/package.json")), "dist");
  const selected = [
    tsFile,
    ...fs
      .readdirSync(tslabDist)
      .filter((f) => f.endsWith(".js"))
      .map((f) => path.join(tslabDist, f)),
  ];

  it("selects typescript.js and tslab's dist files, not the library or other packages", () => {
    for (const f of selected) expect(KERNEL_CACHED_MODULES.test(f), f).toBe(true);
    expect(KERNEL_CACHED_MODULES.test(path.join(ROOT, "kernel-lib/dist/index.js"))).toBe(false);
    expect(KERNEL_CACHED_MODULES.test(req.resolve("zod"))).toBe(false);
  });

  it("none of them calls dynamic import() (which a cached module cannot do on Node 20)", () => {
    // positive control: the scan finds a dynamic import
    const hasDynamicImport = (text: string) => {
      const sf = ts.createSourceFile("m.js", text, ts.ScriptTarget.Latest, false, ts.ScriptKind.JS);
      let found = false;
      const visit = (node: ts.Node): void => {
        if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) found = true;
        else if (!found) ts.forEachChild(node, visit);
      };
      visit(sf);
      return found;
    };
    expect(hasDynamicImport('const m = await import("x");')).toBe(true);
    expect(hasDynamicImport("const s = \"typeof import('x')\";")).toBe(false);
    for (const f of selected) expect(hasDynamicImport(fs.readFileSync(f, "utf8")), f).toBe(false);
  }, 120_000); // parses typescript.js (8 MB)
});
