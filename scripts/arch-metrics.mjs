#!/usr/bin/env node
/**
 * Architecture metrics of kernel-lib (issue 12): what each public entry point exports, files
 * over 400 lines, import cycles between source files, lines over 160 characters.
 *
 *   node scripts/arch-metrics.mjs            print the table
 *   node scripts/arch-metrics.mjs --json     the same as JSON
 *   node scripts/arch-metrics.mjs --check    exit 1 on any import cycle or line over 160 characters
 *
 * Exports are counted with the TypeScript compiler's own view of each entry point (values and
 * types, after `export *`), so the number is what a notebook's autocompletion offers.
 */
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const SRC = path.join(ROOT, "kernel-lib", "src");
const require = createRequire(import.meta.url);
const ts = require(path.join(ROOT, "node_modules", "typescript"));

const MAX_LINES = 400;
const MAX_WIDTH = 160;

function walk(dir, out = []) {
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (/\.(ts|tsx)$/.test(e.name) && !e.name.endsWith(".d.ts")) out.push(p);
  }
  return out;
}

const rel = (p) => path.relative(ROOT, p);

/** Relative imports of one file, resolved to source files (`./x.js` → `./x.ts`). */
function importsOf(file) {
  const text = fs.readFileSync(file, "utf8");
  const info = ts.preProcessFile(text, true, true);
  const out = [];
  for (const imp of info.importedFiles) {
    if (!imp.fileName.startsWith(".")) continue;
    const base = path.resolve(path.dirname(file), imp.fileName).replace(/\.js$/, "");
    for (const cand of [`${base}.ts`, `${base}.tsx`, path.join(base, "index.ts")]) {
      if (fs.existsSync(cand)) {
        out.push(cand);
        break;
      }
    }
  }
  return out;
}

/** Strongly connected components with more than one file (or a self-import): the cycles. */
function cycles(files) {
  const graph = new Map(files.map((f) => [f, importsOf(f)]));
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const found = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const comp = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        comp.push(w);
      } while (w !== v);
      if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) found.push(comp.map(rel).sort());
    }
  };
  for (const f of files) if (!idx.has(f)) visit(f);
  return found;
}

/** Names an entry point exports, as the type checker sees them. */
function exportsOf(entries) {
  const program = ts.createProgram(entries, {
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    strict: true,
    skipLibCheck: true,
    noEmit: true,
  });
  const checker = program.getTypeChecker();
  const out = {};
  for (const e of entries) {
    const sf = program.getSourceFile(e);
    const sym = sf && checker.getSymbolAtLocation(sf);
    out[rel(e)] = sym
      ? checker
          .getExportsOfModule(sym)
          .map((s) => s.getName())
          .sort()
      : [];
  }
  return out;
}

const files = walk(SRC);
const long = files
  .map((f) => ({ file: rel(f), lines: fs.readFileSync(f, "utf8").replace(/\n$/, "").split("\n").length }))
  .filter((x) => x.lines > MAX_LINES);
const scanned = [...files, ...walk(path.join(ROOT, "extension", "src")), ...walk(path.join(ROOT, "test"))];
for (const dir of ["scripts", path.join("test", "e2e"), path.join("kernel-lib", "jupyter", "kernels", "cleanroom-ts")])
  for (const f of fs.readdirSync(path.join(ROOT, dir))) if (/\.(mjs|js)$/.test(f)) scanned.push(path.join(ROOT, dir, f));
const wide = [];
for (const f of scanned)
  fs.readFileSync(f, "utf8")
    .split("\n")
    .forEach((l, i) => l.length > MAX_WIDTH && wide.push(`${rel(f)}:${i + 1}`));
const entries = ["index.ts", "labs.ts"].map((e) => path.join(SRC, e)).filter((e) => fs.existsSync(e));
const exported = exportsOf(entries);
const cyc = cycles(files);
const report = {
  sourceFiles: files.length,
  exports: Object.fromEntries(Object.entries(exported).map(([k, v]) => [k, v.length])),
  filesOver400: long,
  importCycles: cyc,
  linesOver160: wide.length,
};

if (process.argv.includes("--json")) console.log(JSON.stringify({ ...report, exportNames: exported, wideLines: wide }, null, 2));
else {
  console.log(`source files in kernel-lib/src: ${report.sourceFiles}`);
  for (const [k, n] of Object.entries(report.exports)) console.log(`exports of ${k}: ${n}`);
  console.log(
    `files over ${MAX_LINES} lines: ${long.length}${long.length ? ` (${long.map((x) => `${x.file} ${x.lines}`).join(", ")})` : ""}`,
  );
  console.log(`import cycles: ${cyc.length}${cyc.length ? ` (${cyc.map((c) => c.join(" ↔ ")).join("; ")})` : ""}`);
  console.log(`lines over ${MAX_WIDTH} characters: ${wide.length}`);
}
if (process.argv.includes("--check") && (cyc.length || wide.length)) process.exit(1);
