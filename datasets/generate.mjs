#!/usr/bin/env node
// Generate the canonical lift study (advertiser exposures + retailer purchases) with its
// ground truth. Uses the BUILT library (kernel-lib/dist); run `npm run build` first.
//
//   node datasets/generate.mjs --seed S --rows N --out DIR [options]
//
// Options (defaults in brackets):
//   --rows N             advertiser rows = advertiser people [10000]
//   --retailer-rows N    target purchase rows (approximate) [= --rows]
//   --overlap X          share of advertiser people who are retailer customers [0.6]
//   --holdout X          P(control) [0.2]
//   --base-rate X        control conversion rate among matched people [0.08]
//   --lift PCT           relative lift for reached test people, percent [25]
//   --reach X            mean P(reached | test) [0.7]
//   --campaign-days N    conversion window length [28]
import { existsSync } from "node:fs";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const lib = resolve(here, "../kernel-lib/dist/datasets/files.js");

const FLAGS = {
  "--seed": ["seed", String],
  "--rows": ["advertiserRows", Number],
  "--retailer-rows": ["retailerRows", Number],
  "--overlap": ["overlap", Number],
  "--holdout": ["holdoutShare", Number],
  "--base-rate": ["baseConversionRate", Number],
  "--lift": ["liftPct", Number],
  "--reach": ["reachRate", Number],
  "--campaign-days": ["campaignDays", Number],
};

function usage(msg) {
  if (msg) console.error(`generate.mjs: ${msg}`);
  console.error(
    "usage: node datasets/generate.mjs --seed S --rows N --out DIR [--retailer-rows N] [--overlap X] [--holdout X] [--base-rate X] [--lift PCT] [--reach X] [--campaign-days N]",
  );
  process.exit(2);
}

const params = { seed: undefined, advertiserRows: 10_000, overlap: 0.6, holdoutShare: 0.2, baseConversionRate: 0.08, liftPct: 25 };
let out;
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === "--help" || a === "-h") usage();
  const v = argv[i + 1];
  if (v === undefined) usage(`${a} needs a value`);
  i++;
  if (a === "--out") out = v;
  else if (a in FLAGS) {
    const [key, conv] = FLAGS[a];
    params[key] = conv(v);
  } else usage(`unknown option ${a}`);
}
if (!params.seed) usage("--seed is required");
if (!out) usage("--out is required");
if (!existsSync(lib)) {
  console.error(`generate.mjs: ${lib} not found — build the library first: npm run build`);
  process.exit(1);
}

const { writeStudyFiles } = await import(lib);
const t0 = Date.now();
let truth;
try {
  truth = writeStudyFiles(params, resolve(out));
} catch (e) {
  console.error(`generate.mjs: ${e.message}`);
  process.exit(1);
}
const t = truth.truth;
const pct = (x) => `${(100 * x).toFixed(2)}%`;
console.log(`wrote ${resolve(out)} in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
console.log(`  exposures.csv  ${truth.files.exposures.rows} rows  sha256 ${truth.files.exposures.sha256}`);
console.log(`  purchases.csv  ${truth.files.purchases.rows} rows  sha256 ${truth.files.purchases.sha256}`);
console.log(
  `  true overlap ${truth.counts.trueOverlap} people; observed conversion rate test ${pct(t.observed.testConversionRate)} vs control ${pct(t.observed.controlConversionRate)}`,
);
console.log(
  `  true relative lift (ITT, matched) ${pct(t.converters.relativeLift)}; expected ${pct(truth.expected.relativeLift)}; incremental converters in test ${t.incrementalInTestGroup.converters}`,
);
