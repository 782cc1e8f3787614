#!/usr/bin/python3
"""Generate notebooks/00-quickstart.ipynb (outputs cleared; CI executes it).

    /usr/bin/python3 notebooks/src/00-quickstart.py
"""
from nbgen import notebook

md, code, write = notebook("00-quickstart.ipynb")

md(r"""
# 00 · Quickstart

This notebook runs on the project's TypeScript kernel (`cleanroom-ts`) and imports the library
exactly as your own notebooks will: `import … from "@cleanroom-lab/kernel"`.

It looks at the shipped synthetic lift study in `datasets/sample/`: an advertiser's ad
exposures and a retailer's purchases, generated from a seed with the ground truth written beside
the data. Later notebooks match the two parties privately (PSI), run approved queries in a clean
room with differential privacy, and measure lift.
""")

md(r"""
## Randomness is explicit

Every random draw in the library goes through an `Rng`. The default is the platform CSPRNG;
a seeded stream is for teaching and reproducible examples, and every result it touches says
*teaching mode — not private*.
""")

code(r"""
import { seededRng, secureRng } from "@cleanroom-lab/kernel";
import { rngStamp } from "@cleanroom-lab/kernel/labs";

const teaching = seededRng("quickstart");
const dice = Array.from({ length: 10 }, () => teaching.int(6) + 1);
console.log("ten seeded dice:", dice.join(" "));
console.log("secure mode stamp:", rngStamp(secureRng()));
rngStamp(teaching)
""")

md(r"""
## Refusals are typed

Bad input raises a `CleanRoomError` naming the field and what was expected, before any side
effect happens.
""")

code(r"""
import { CleanRoomError } from "@cleanroom-lab/kernel";

let refusal: { code: string; message: string } | undefined;
try {
  seededRng("");
} catch (e) {
  if (!(e instanceof CleanRoomError)) throw e;
  refusal = { code: e.code, message: e.message };
}
refusal
""")

md(r"""
## The sample study

The ground truth says how many people the two files share and what the true lift of the
campaign is; the data only show messy e-mails, group assignments, exposures and purchases.
""")

code(r"""
import * as fs from "fs";
import * as path from "path";

const sampleDir = path.resolve("..", "datasets", "sample");
const truth = JSON.parse(fs.readFileSync(path.join(sampleDir, "ground_truth.json"), "utf8"));
const c = truth.counts;
({
  seed: truth.seed,
  advertiserPeople: c.advertiserPeople,
  retailerCustomers: c.retailerCustomers,
  trueOverlap: c.trueOverlap,
  testPeople: c.testPeople,
  controlPeople: c.controlPeople,
  reachShareOfTest: Number(c.reachShareOfTest.toFixed(3)),
})
""")

code(r"""
function readCsv(file: string): Record<string, string>[] {
  const [header, ...lines] = fs.readFileSync(path.join(sampleDir, file), "utf8").trim().split("\n");
  const cols = header.split(",");
  return lines.map((line) => Object.fromEntries(line.split(",").map((v, i) => [cols[i], v])));
}

const exposures = readCsv("exposures.csv");
const purchases = readCsv("purchases.csv");

const byGroup = new Map<string, { people: number; reached: number }>();
for (const r of exposures) {
  const g = byGroup.get(r.group) ?? { people: 0, reached: 0 };
  g.people += 1;
  g.reached += Number(r.reached);
  byGroup.set(r.group, g);
}
const campaign = purchases.filter((p) => Number(p.purchase_day) >= 0 && Number(p.purchase_day) < truth.params.campaignDays);
const messy = exposures.filter((r) => r.email !== r.email.trim().toLowerCase()).length;

console.log(`exposure rows: ${exposures.length}, purchase rows: ${purchases.length}`);
console.log(`purchases in the ${truth.params.campaignDays}-day campaign window: ${campaign.length}`);
console.log(`exposure e-mails that are not already trimmed lower-case: ${messy}`);
Object.fromEntries(byGroup)
""")

code(r"""
import * as tslab from "tslab";

const t = truth.truth;
const pct = (x: number) => (100 * x).toFixed(2) + "%";
tslab.display.html(`<table>
  <tr><th></th><th>matched test</th><th>matched control</th></tr>
  <tr><td>observed conversion rate</td><td>${pct(t.observed.testConversionRate)}</td><td>${pct(t.observed.controlConversionRate)}</td></tr>
</table>
<p>Generator parameters: base conversion rate ${pct(truth.params.baseConversionRate)}, lift ${truth.params.liftPct}% for reached people.</p>`);
""")
md(r"""
## The whole road in five cells

The advertiser and the retailer match their customers with private set intersection (no e-mail
crosses), upload their rows keyed by the resulting join keys with the purposes they allow,
approve one lift template, and ask the question. The answer comes back noised, thresholded,
charged to a privacy budget and written to a tamper-evident audit log. Each step is a later
notebook of its own.
""")

code(r"""
import {
  openLab, addParty, upload, generateStudy, psiMatch, liftSchemas, liftRules, liftTemplate, declarePurpose,
  approveTemplate, liftStudy, cleanRoomQuery, attempt, budget, audit
} from "@cleanroom-lab/kernel";

const study = generateStudy({ seed: "quickstart", advertiserRows: 4000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const lab = openLab({ store: ":memory:", rng: { seed: "quickstart" }, budget: { epsilon: 3 } });
const advertiser = addParty(lab, { party: "advertiser" }), retailer = addParty(lab, { party: "retailer" });
const m = await psiMatch(lab, { a: { party: advertiser, rows: study.exposures }, b: { party: retailer, rows: study.purchases } });
m
""")

code(r"""
const s = liftSchemas(), rules = liftRules(100);
await upload(lab, { party: advertiser, name: "exposures", rows: m.joinedA, schema: s.exposures, purposes: ["measurement"], rule: rules.exposures });
await upload(lab, { party: retailer, name: "purchases", rows: m.joinedB, schema: s.purchases, purposes: ["measurement"], rule: rules.purchases });
declarePurpose(lab, { party: advertiser, analyst: "bo", purpose: "measurement", justification: "campaign lift" })
""")

code(r"""
const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5" });
approveTemplate(lab, { template: t, party: advertiser });
approveTemplate(lab, { template: t, party: retailer });
const ask = { template: t, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" };
const lift = await liftStudy(lab, { ...ask, groundTruth: { lift: study.groundTruth.truth.converters.relativeLift } });
lift
""")

md(r"""
The same question under a purpose the data were not tagged for is refused before anything runs
or is charged — and the refusal says where:
""")

code(r"""
const refused = await attempt(() => cleanRoomQuery(lab, { ...ask, purpose: "research" }));
refused
""")

code(r"""
budget(lab)
""")

code(r"""
audit(lab)
""")

md(r"""
## Checks
""")

code(r"""
const check = (ok: boolean, what: string) => { if (!ok) throw new Error("check failed: " + what); console.log("✓ " + what); };
const est = lift.lift.cohorts[0]!.result!.converters;
const truthLift = study.groundTruth.truth.converters.relativeLift;
check(m.matchReport.intersectionSize === study.groundTruth.counts.trueOverlap, "PSI matched exactly the true overlap");
check(m.joinedA!.every((r) => !("email" in r)), "no e-mail is left in what the advertiser uploads");
check(est.ci!.relativeLift![0] < truthLift && truthLift < est.ci!.relativeLift![1], "the lift's 95% CI covers the true lift");
check(!("rows" in (refused as object)) && (refused as { ok: boolean }).ok === false, "the research query was refused");
check(budget(lab).budgets.find((b) => b.scope === "collaboration")!.spent.text === "ε = 2.5", "exactly one query's cost (5 × ε 0.5) was charged");
check(audit(lab).verification.ok, "the audit chain verifies");
check(lift.rngStamp.rngMode === "seeded", "results are labelled teaching mode (seeded, not private)");
""")

write()
