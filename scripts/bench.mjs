#!/usr/bin/env node
/**
 * `npm run bench`: build, then run every test/bench/*.bench.mjs with Node, one after another,
 * passing their output through. Benchmarks import the built library (kernel-lib/dist) and
 * print ratios against an in-run baseline; nothing here asserts on timing.
 *
 *   npm run bench                 all benchmarks, then one summary table of every result row
 *   npm run bench -- psi dp       only files whose name contains one of the words
 *   npm run bench -- --readme     also rewrite the README's measured-numbers table from this run
 *
 * Each bench states its results through test/bench/targets.mjs `report()`, which appends one
 * JSON line per row to $BENCH_REPORT. After the run the rows become a Markdown table headed by
 * the date, commit, load average before and after, and how many targets were met; it is
 * printed and written to .scratch/bench/report.md (rows: .scratch/bench/report.jsonl). With
 * --readme (only on an unfiltered run) the table replaces what lies between the README's
 * `<!-- bench-table:start -->` and `<!-- bench-table:end -->` markers.
 *
 * Exit status: non-zero if any benchmark script exits non-zero. A missing test/bench/ is fine.
 */
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { bootstrap } from "./bootstrap.mjs";
import { ROOT, scratchDir } from "./common.mjs";
import { SYMBOL } from "../test/bench/targets.mjs";

const args = process.argv.slice(2);
const filters = args.filter((a) => !a.startsWith("-"));
const toReadme = args.includes("--readme");
if (toReadme && filters.length) {
  console.error("--readme needs the full run: the README table is regenerated from one run of every benchmark");
  process.exit(2);
}

bootstrap({ browser: false });

const dir = path.join(ROOT, "test", "bench");
const files = fs.existsSync(dir)
  ? fs
      .readdirSync(dir)
      .filter((f) => f.endsWith(".bench.mjs") && (!filters.length || filters.some((w) => f.includes(w))))
      .sort()
  : [];
if (files.length === 0) {
  console.log("no benchmarks found (test/bench/*.bench.mjs)");
  process.exit(0);
}

const out = scratchDir("bench");
const reportFile = path.join(out, "report.jsonl");
fs.writeFileSync(reportFile, "");
const loadavg = () =>
  os
    .loadavg()
    .map((l) => l.toFixed(2))
    .join(" ");
const started = new Date();
const loadBefore = loadavg();

const failed = [];
const durations = [];
for (const f of files) {
  console.log(`\n── bench ${f}`);
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [path.join(dir, f)], {
    cwd: ROOT,
    stdio: ["ignore", "inherit", "inherit"],
    env: { ...process.env, BENCH_REPORT: reportFile },
  });
  const status = r.error ? 127 : (r.status ?? 1);
  const s = (Date.now() - t0) / 1000;
  durations.push(`${f.replace(".bench.mjs", "")} ${s.toFixed(0)} s`);
  console.log(`── ${f}: ${status === 0 ? "done" : `FAILED (exit ${status})`} in ${s.toFixed(1)} s`);
  if (status !== 0) failed.push(f);
}

const rows = fs
  .readFileSync(reportFile, "utf8")
  .split("\n")
  .filter(Boolean)
  .map((l) => JSON.parse(l));
const md = summary(rows);
fs.writeFileSync(path.join(out, "report.md"), md);
console.log(`\n${md}`);
console.log(`(written to ${path.relative(ROOT, path.join(out, "report.md"))})`);
if (toReadme) {
  if (failed.length) console.error("README not rewritten: a benchmark failed");
  else rewriteReadme(md);
}
if (failed.length) {
  console.error(`\n${failed.length} benchmark(s) failed: ${failed.join(", ")}`);
  process.exit(1);
}

function cell(s) {
  return String(s ?? "")
    .replace(/\|/g, "\\|")
    .replace(/\n/g, " ");
}

function fmt(v) {
  return Math.abs(v) >= 100 ? v.toFixed(0) : Math.abs(v) >= 10 ? v.toFixed(1) : v.toFixed(2);
}

function summary(rows) {
  const targets = rows.filter((r) => r.target);
  const met = targets.filter((r) => r.verdict === "met").length;
  const commit = spawnSync("git", ["rev-parse", "--short", "HEAD"], { cwd: ROOT, encoding: "utf8" }).stdout?.trim() || "?";
  const dirty = spawnSync("git", ["status", "--porcelain", "--untracked-files=no"], { cwd: ROOT, encoding: "utf8" }).stdout?.trim();
  const minutes = ((Date.now() - started.getTime()) / 60000).toFixed(0);
  const head = [
    `One \`npm run bench\`${filters.length ? ` (only: ${filters.join(", ")})` : ""} on ${started.toISOString().slice(0, 16).replace("T", " ")} UTC, ` +
      `commit ${commit}${dirty ? " with local changes" : ""}, ${os.cpus().length} cores, Node ${process.version}, ${minutes} min in all ` +
      `(${durations.join(", ")}). Load average (1/5/15 min) before: ${loadBefore}; after: ${loadavg()}. ` +
      `**${met} of ${targets.length} targets met.**${failed.length ? ` Failed benchmarks: ${failed.join(", ")}.` : ""}`,
    "",
    "| what | measured | result | target | verdict | load |",
    "|---|---|---|---|---|---|",
  ];
  const body = rows.map((r) => {
    const unit = r.unit ?? "";
    const target = r.target ? `${SYMBOL[r.target.op]} ${fmt(r.target.value)}${unit}` : "";
    const verdict = r.verdict === "met" ? "met" : r.verdict ? `**${r.verdict}**` : "";
    const measured = [r.measured, r.note].filter(Boolean).map(cell).join("; ");
    return `| ${cell(r.what)} | ${measured} | ${fmt(r.value)}${cell(unit)} | ${cell(target)} | ${verdict} | ${r.load} |`;
  });
  return `${head.join("\n")}\n${body.join("\n")}\n`;
}

function rewriteReadme(md) {
  const file = path.join(ROOT, "README.md");
  const text = fs.readFileSync(file, "utf8");
  const start = "<!-- bench-table:start -->";
  const end = "<!-- bench-table:end -->";
  const i = text.indexOf(start);
  const j = text.indexOf(end);
  if (i < 0 || j < i) {
    console.error(`README not rewritten: markers ${start} … ${end} not found`);
    process.exitCode = 1;
    return;
  }
  fs.writeFileSync(file, `${text.slice(0, i + start.length)}\n${md}${text.slice(j)}`);
  console.log("README.md measured-numbers table rewritten from this run");
}
