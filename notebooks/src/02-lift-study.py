#!/usr/bin/python3
"""Generate notebooks/02-lift-study.ipynb (the flagship lift study). Run from the repo root:

    /usr/bin/python3 notebooks/src/02-lift-study.py

Writes the notebook without outputs; CI executes it (scripts/run-notebooks.py).
"""
from nbgen import notebook

md, code, write = notebook("02-lift-study.ipynb")

md(r"""
# 02 · The clean-room lift study: did people who saw the ad buy more?

**What it teaches.** The whole road of a privacy-preserving measurement between two companies:
an *advertiser* who knows who was shown an ad, and a *retailer* who knows who bought what. Neither
may see the other's customers. In one room they

1. match customers with **private set intersection** (PSI) — no e-mail address crosses;
2. upload their tables with a **schema**, allowed **purposes** and an **analysis rule** (AWS Clean Rooms shape);
3. declare the **purpose** of the analysis (a signed grant);
4. agree on one **approved query template** — both owners approve its hash, nothing else runs;
5. get answers that are **thresholded** (small cohorts suppressed) and **noised** with differential
   privacy (DP), each query charged to a **privacy budget**;
6. estimate **lift with a confidence interval** that includes the DP noise, and compare it with the
   truth — which we know only because the data are generated;
7. read the tamper-evident **audit log**.

**Who it is for.** Measurement analysts, privacy engineers and students who want to see every step
with real cryptography and real DP mechanisms, not a diagram.

**How long.** About a minute to run, 20 minutes to read.

**Teaching mode — not private.** Every random draw comes from a *seeded* generator so the numbers
below are reproducible; every result says so (`rngMode: "seeded"`). A real room uses the secure
default (`openLab()` without `rng`).
""")

md(r"""
## 1 · A world where we know the answer

`generateStudy` builds both companies' files from a seed. The advertiser ran a campaign with a
**randomised holdout**: a `control` group was never shown the ad, the `test` group could be
(`reached` = 1 when it actually was). The retailer's file has every purchase. E-mail addresses are
*messy* (case, dots, `+tags`, whitespace), as in real files.
""")

code(r"""
import {
  openLab, datasets, upload, addParty, psiMatch, declarePurpose, approveTemplate, cleanRoomQuery, liftStudy,
  budget, audit, attempt, generateStudy, liftTemplate, liftSchemas, liftRules
} from "@cleanroom-lab/kernel";
import {
  templateCost, epsilonForAccuracy, whatRemainingBuys, oracleLiftAggregates, computeLift, previewTemplate,
  budgetSpent, sameCost
} from "@cleanroom-lab/kernel/labs";

const SEED = "flagship-2026";
const study = generateStudy({ seed: SEED, advertiserRows: 8000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
console.log(`advertiser file "exposures": ${study.exposures.length} rows (one per person)`);
console.table(study.exposures.slice(0, 4));
console.log(`retailer file "purchases": ${study.purchases.length} rows (one per purchase)`);
console.table(study.purchases.slice(0, 4));
""")

md(r"""
The generator also **states its ground truth**: the parameters it used and the true effect it
planted. This is a *god's-eye view*: it was computed by looking at both companies' raw files and at
what each person would have done with and without the ad. **No party in the room has it** — not the
advertiser, not the retailer, not the clean room. We print it here only so we can grade the clean
room's answer at the end.
""")

code(r"""
const gt = study.groundTruth;
const gp = gt.params;
console.log("Generator parameters:");
console.table({
  advertiserRows: gp.advertiserRows, overlap: gp.overlap, holdoutShare: gp.holdoutShare, reachRate: gp.reachRate,
  baseConversionRate: gp.baseConversionRate, "liftPct (for people actually reached)": gp.liftPct, campaignDays: gp.campaignDays,
});
console.log("Ground truth — GOD'S-EYE VIEW, known to no party:");
console.table({
  "people in both files (true overlap)": gt.counts.trueOverlap,
  "test people / control people (all)": `${gt.counts.testPeople} / ${gt.counts.controlPeople}`,
  "share of test people actually reached": gt.counts.reachShareOfTest.toFixed(3),
  "converter rate if everyone were test": gt.truth.converters.ifAllTest.toFixed(4),
  "converter rate if everyone were control": gt.truth.converters.ifAllControl.toFixed(4),
  "TRUE relative lift in converters (intent-to-treat)": gt.truth.converters.relativeLift.toFixed(4),
  "expected lift of the super-population (closed form)": gt.expected.relativeLift.toFixed(4),
});
""")

md(r"""
The ad raises a *reached* person's chance of buying by 40 %, but only about 70 % of the test group
was reached, so the causal effect of **being assigned to the campaign** (intent-to-treat, what a
randomised test-vs-control study measures) is smaller. That true intent-to-treat lift among the
matched people is the number the clean room should recover.

## 2 · Two parties, one room

A `Lab` is one simulated clean room: a single embedded database holding the privacy ledger, the
audit chain, approvals and the sealed (encrypted) datasets. The room has a collaboration budget of
ε = 4, and each party gets its own budget of the same size.
""")

code(r"""
const lab = openLab({ store: ":memory:", rng: { seed: SEED }, budget: { epsilon: 4 } });
const advertiser = addParty(lab, { party: "advertiser" });
const retailer = addParty(lab, { party: "retailer" });
console.log(`room "${lab.roomId}" with parties ${advertiser.name} and ${retailer.name};`, lab.stamp);
""")

md(r"""
## 3 · Matching customers without sharing e-mails (PSI)

`psiMatch` runs an ECDH private set intersection on ristretto255 (hash-to-curve, RFC 9380). Each
side normalises its e-mails, blinds them with a secret key, and the two exchange only blinded
points. In `joinKeys` mode both sides learn a common *pseudonymous join key* for each matched
person — and get their own rows back keyed by it, with the e-mail column removed and unmatched rows
dropped. The match report says what each side learned: counts, never the other side's
identifiers.
""")

code(r"""
const match = await psiMatch(lab, { a: { party: advertiser, rows: study.exposures }, b: { party: retailer, rows: study.purchases }, threads: 1 });
match
""")

code(r"""
const advRows = match.joinedA!, retRows = match.joinedB!;
console.log("advertiser's matched rows now look like:", advRows[0]);
console.log("retailer's matched rows now look like:  ", retRows[0]);
console.log(`PSI matched ${match.matchReport.intersectionSize} people; the god's-eye true overlap is ${gt.counts.trueOverlap}`,
  "(normalisation recovered the messy addresses).");
console.log("any e-mail column left?", advRows.some((r) => "email" in r) || retRows.some((r) => "email" in r));
""")

md(r"""
## 4 · Uploads: schema, purposes and analysis rules

Each owner uploads its matched table with

* a **schema** — column types, value bounds, and which column identifies the *privacy unit* (a person:
  `join_key`). Every row is validated before anything is stored;
* the **purposes** the data may be used for (`measurement`), which the room enforces cryptographically:
  the table is sealed under a key released only against a matching purpose grant;
* an **analysis rule** in the AWS Clean Rooms aggregation-rule shape: which columns may be aggregated
  and how, which may be group-by dimensions, the join column, that a join is required, and the minimum
  number of distinct people per output row (fbpcs' k = 100).
""")

code(r"""
const schemas = liftSchemas();
const rules = liftRules(100);
console.log("the advertiser's analysis rule:");
console.dir(rules.exposures, { depth: 4 });
const receipts = [
  await upload(lab, { party: advertiser, name: "exposures", rows: advRows, schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures }),
  await upload(lab, { party: retailer, name: "purchases", rows: retRows, schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases }),
];
console.table(receipts.map((r) => ({ dataset: `${r.owner}/${r.name}`, rows: r.rows, "privacy unit": r.privacyUnit, purposes: r.purposes.join(", "), sealed: r.sealed })));
""")

md(r"""
The purpose `measurement` was resolved to its place in the data-use taxonomy,
`marketing.advertising.measurement`. A malformed table is refused whole, naming the column and the
row — here one purchase with a negative value among valid ones — and nothing is stored:
""")

code(r"""
const badRows = [...retRows.slice(0, 3), { ...retRows[3]!, value_cents: -5 }];
await attempt(() => upload(lab, { party: retailer, name: "purchases_v2", rows: badRows, schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases }))
""")

md(r"""
A party can list and describe only its own data — the retailer sees its purchases table (and no
half-stored `purchases_v2`), not the advertiser's exposures:
""")

code(r"""
datasets(lab, { party: retailer }).map((d) => `${d.owner}/${d.name}`)
""")

md(r"""
## 5 · Declaring the purpose

The advertiser's analyst Bo declares why she is asking. The grant is signed by the room and
audited; a query under any other purpose is refused by the encryption gate.
""")

code(r"""
declarePurpose(lab, { party: advertiser, analyst: "bo", purpose: "measurement", justification: "Q3 campaign lift: did exposed people buy more?" })
""")

md(r"""
## 6 · The approved lift template

A query is not SQL text: it is a **plan as data** with typed parameter slots. `liftTemplate` builds
the Meta Private Lift–style query: join purchases to exposures on the join key, count people,
conversions (purchases in the attribution window, at most 4 per person as fbpcs does), converters,
value and value² (each person's value clamped to $300), per arm. Each of the five released
quantities gets discrete-Laplace noise with ε = 0.2. The preview below is what each owner reviews
before approving: note the ± each released number will carry.
""")

code(r"""
const liftT = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.2", valueCap: 30000, dayRange: [0, 27] });
const params = { startDay: 0, endDay: 27 };
const preview = previewTemplate(liftT, params);
console.log(preview.text);
""")

md(r"""
The template is canonicalised and hashed; **every data owner must approve that hash**. With only the
advertiser's approval the query is refused — the why-blocked trace shows where, and that nothing
was charged:
""")

code(r"""
approveTemplate(lab, { template: liftT, party: advertiser });
await attempt(() => cleanRoomQuery(lab, { template: liftT, params: params, party: "advertiser", analyst: "bo", purpose: "measurement" }))
""")

code(r"""
const approval = approveTemplate(lab, { template: liftT, party: retailer });
console.log(`template hash ${approval.templateHash}`);
approval
""")

md(r"""
## 7 · The budget before, and what it buys

The cost of a run is computed from the plan **before** it runs: 5 noised quantities × ε 0.2 = ε 1.
`budget(lab)` shows every budget the run will be charged to (the collaboration's, the asking party's,
and each input dataset's, keyed by the content fingerprint of the table) and what the remaining
budget buys.
""")

code(r"""
const cost = templateCost(liftT, params)!;
const before = budget(lab, { queries: [{ name: "lift", cost: cost }], target: { accuracy: 25, confidence: 0.95 } });
before
""")

md(r"""
**Planning by accuracy.** Analysts think in error bars, not in ε. `epsilonForAccuracy` answers "I need
each count within ±25 with 95 % confidence" with the ε (discrete Laplace, pure DP) or ρ (discrete
Gaussian, zCDP) that achieves it, from the exact discrete tails; `whatRemainingBuys` turns the
remaining budget into a number of such queries.
""")

code(r"""
const plan = epsilonForAccuracy({ accuracy: 25, confidence: 0.95 });
console.log(`±25 at 95%: ε = ${plan.laplace.epsilon} per count (continuous formula: ${plan.laplace.continuousEpsilon.toFixed(6)}), or ρ = ${plan.gaussian.rho}`);
const collab = before.budgets.find((b) => b.scope === "collaboration")!;
const buys = whatRemainingBuys(collab.remaining, { accuracy: 25, confidence: 0.95 });
console.log(`remaining ${collab.remaining.text} buys:`, buys.rows.map((r) => `${r.queries} counts at ${r.perQuery} (${r.accountant})`).join("; "));
const conv = preview.noise!.perQuantity.find((q) => q.name === "converters")!;
console.log(`our template spends ε 0.2 per quantity: each converter count is within ±${conv.plusMinus} at 95% — and the whole run costs ${preview.cost!.text}, so the room can afford ${before.overall[0]!.count} runs.`);
""")

md(r"""
## 8 · The lift, with its confidence interval

`liftStudy` runs the approved template under the declared purpose — purpose gate → approval →
plan → cost → atomic budget charge → engine → contribution bounds → noise → threshold → audit — and
estimates lift from the noisy aggregates with a confidence interval whose variance **includes the
DP noise**. We pass the god's-eye truth only so the display can draw it beside the estimate.
""")

code(r"""
const result = await liftStudy(lab, { template: liftT, params: params, party: "advertiser", analyst: "bo", purpose: "measurement",
  groundTruth: { lift: gt.truth.converters.relativeLift } });
result
""")

md(r"""
**Three answers side by side.** The *oracle* joins the raw files in the clear and computes the same
aggregates exactly, with no PSI, no threshold and no noise — another god's-eye view, used only to
show what the noise and the sampling each contribute. The *ground truth* is the causal lift the
generator planted. The rich display above draws the log-scale interval (asymmetric, better when the
control arm is small); the table shows both.
""")

code(r"""
const released = result.lift.cohorts[0]!.result!;
const oracle = oracleLiftAggregates(study.exposures, study.purchases, { maxConversionsPerPerson: 4 });
const exact = computeLift(oracle.cohorts[0]!.aggregates);
const row = (l: typeof exact) => ({
  "test rate": l.converters.test!.toFixed(4), "control rate": l.converters.control!.toFixed(4),
  "lift": l.converters.relativeLift!.toFixed(3),
  "95% CI (delta)": `[${l.converters.ci!.relativeLift![0].toFixed(3)}, ${l.converters.ci!.relativeLift![1].toFixed(3)}]`,
  "95% CI (log)": `[${l.converters.ci!.relativeLiftLog![0].toFixed(3)}, ${l.converters.ci!.relativeLiftLog![1].toFixed(3)}]`,
});
console.table({
  "clean room (DP)": row(released),
  "oracle (exact, NOT private)": row(exact),
  "ground truth": { "test rate": gt.truth.converters.ifAllTest.toFixed(4), "control rate": gt.truth.converters.ifAllControl.toFixed(4), "lift": gt.truth.converters.relativeLift.toFixed(3), "95% CI (delta)": "—", "95% CI (log)": "—" },
});
""")

md(r"""
The released aggregates next to the exact ones: the counts move by a few units, while the value sums
move by far more — a person can add up to 30 000 cents to `value` and 30 000² to `valueSquared`, and
the noise must hide any one person.
""")

code(r"""
const names = ["Population", "Conversions", "Converters", "Value", "ValueSquared"] as const;
const ex = oracle.cohorts[0]!.aggregates as unknown as Record<string, number>;
const noisy = result.query.rows;
const arm = (g: string) => noisy.find((r) => r["group"] === g)!;
const key = (n: string) => (n === "Population" ? "population" : n[0]!.toLowerCase() + n.slice(1));
console.table(Object.fromEntries(names.flatMap((n) => ["test", "control"].map((g) => [`${g}${n}`, {
  released: arm(g)[key(n)], exact: ex[`${g}${n}`], "noise sd": Math.round(Math.sqrt(result.query.noise!.perAggregate.find((p) => p.name === (n === "Population" ? "units" : key(n)))!.variance)),
}]))));
""")

md(r"""
**How much of the uncertainty is privacy?** The CI's variance splits into sampling variance (the
study is finite — present even with exact data) and noise variance (the price of DP). For the
converter lift the noise is a minority share; for the value lift, with its large per-person bound,
the noise dominates. That is the trade-off a template designer tunes (notebook 06).
""")

code(r"""
const vc = released.converters.variance!.relativeLift!, vv = released.value.variance!.relativeLift!;
console.log(`converter lift: sampling variance ${vc.sampling.toExponential(3)}, noise variance ${vc.noise.toExponential(3)} → noise share ${(100 * vc.noiseShare).toFixed(1)}%`);
console.log(`value lift:     sampling variance ${vv.sampling.toExponential(3)}, noise variance ${vv.noise.toExponential(3)} → noise share ${(100 * vv.noiseShare).toFixed(1)}%`);
""")

md(r"""
**Same template, another purpose.** Bo also works on a research project and holds a signed grant for
`research`. But the owners tagged their tables for measurement only, so the purpose gate refuses
to release the tables' keys: the query stops at the purpose step, before any cost is computed.
""")

code(r"""
declarePurpose(lab, { party: advertiser, analyst: "bo", purpose: "research", justification: "academic study of campaign effects" });
await attempt(() => cleanRoomQuery(lab, { template: liftT, params: params, party: "advertiser", analyst: "bo", purpose: "research" }))
""")

md(r"""
## 9 · The budget after

The run was charged **before** it executed, atomically, to every budget it touched. The collaboration
budget went down by exactly the template's cost — compared exactly, as rationals (the refused
`research` query charged nothing):
""")

code(r"""
const after = budget(lab, { queries: [{ name: "lift", cost: cost }] });
const spent = budgetSpent(before, after);
console.log(`spent on the collaboration budget: ${spent.text}; template cost: ε = 1; equal exactly: ${sameCost(spent, cost)}`);
console.log(`the retailer's own budget was not touched (the advertiser asked): ${budgetSpent(before, after, { scope: "party", subject: "retailer" }).text}`);
after
""")

md(r"""
## 10 · Breakdowns meet the threshold

The advertiser now wants the lift **by region × channel** — 16 cohorts per arm. The owners approve
this second template (a different hash). Some control cohorts are small, and a released row about
a handful of people is a privacy risk even with noise, so every row needs at least 100 distinct
people. Here the decision is taken on the *noisy* count (so the decision itself leaks nothing
beyond DP), and rows below it are dropped. The suppression report says **which** rows, **which
rule** — and never the true small count. (With ε = 0.1 per quantity and cohorts of a few hundred
people, the value sums of single cells are mostly noise — some are even negative. Fine breakdowns
are expensive; notebook 06 shows how to check that *before* spending budget.)
""")

code(r"""
const byCell = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.1", valueCap: 30000, dayRange: [0, 27], breakdown: "region" });
const breakdownT = { ...byCell, name: "lift by region × channel", groupBy: [...(byCell.groupBy ?? []), "exposures.channel"] };
approveTemplate(lab, { template: breakdownT, party: advertiser });
approveTemplate(lab, { template: breakdownT, party: retailer });
const cells = await cleanRoomQuery(lab, { template: breakdownT, params: params, party: "advertiser", analyst: "bo", purpose: "measurement" });
cells
""")

code(r"""
const report = cells.suppressed;
console.log(`style ${report.style}; minimum ${report.minimum} (set by ${report.minimumFrom}); decided on the ${report.decidedOn} count`);
console.log(`${cells.rows.length} rows released, ${report.rows.length} suppressed:`);
console.table(report.rows.map((r) => ({ ...r.key, reason: r.reason })));
console.log("rule:", [...new Set(report.rows.map((r) => r.rule))].join("; "));
console.log("fields of a suppression entry:", Object.keys(report.rows[0]!).join(", "), "— no count.");
""")

md(r"""
Only the course authors, holding the god's-eye oracle, can check that the suppressed cohorts really
were small. Nobody in the room can:
""")

code(r"""
const trueCells = oracleLiftAggregates(study.exposures, study.purchases, { by: ["region", "channel"] }).cohorts;
const trueControl = (region: unknown, channel: unknown) => trueCells.find((c) => c.cohort["region"] === region && c.cohort["channel"] === channel)!.aggregates.controlPopulation;
console.table(report.rows.map((r) => ({ cohort: `${r.key["group"]} ${r.key["region"]}/${r.key["channel"]}`, "true size (oracle only)": trueControl(r.key["region"], r.key["channel"]) })));
""")

md(r"""
## 11 · The audit log

Every grant, approval-gated refusal and query is an entry in a hash-chained log whose heads are
signed with Ed25519; `verify()` recomputes the chain and would name the first tampered entry
(notebook 03 tampers with it). The refused queries are in it too.
""")

code(r"""
const log = audit(lab);
log
""")

md(r"""
## Checks

Every claim above, asserted. If any fails, this cell throws and CI fails.
""")

code(r"""
const check = (cond: boolean, claim: string) => { if (!cond) throw new Error(`check failed: ${claim}`); console.log(`✓ ${claim}`); };
const truth = gt.truth.converters.relativeLift;
const ci = released.converters.ci!.relativeLift!;
check(ci[0] <= truth && truth <= ci[1], `the 95% CI [${ci[0].toFixed(3)}, ${ci[1].toFixed(3)}] covers the true lift ${truth.toFixed(3)}`);
check(released.converters.variance!.relativeLift!.noise > 0, "the CI includes DP noise variance");
check(sameCost(budgetSpent(before, after), cost), "the collaboration budget decreased by exactly the template cost (ε = 1)");
check(sameCost(budgetSpent(before, after, { scope: "party", subject: "advertiser" }), cost), "the asking party's budget decreased by exactly the template cost");
check(before.budgets.every((b) => b.spent.kind === "pureDp" && b.spent.epsilon.num === "0"), "the refused (half-approved) run charged nothing");
for (const q of [result.query, cells]) {
  check(q.rows.every((r) => (r["population"] as number) >= q.suppressed.minimum), `no released row of "${q.templateName}" is below its threshold of ${q.suppressed.minimum}`);
  check(q.rows.every((r) => !Object.keys(r).some((k) => k === "join_key" || k === "email")), `no released row of "${q.templateName}" carries an identifier`);
}
check(report.rows.length > 0, "the breakdown suppressed at least one small cohort");
check(report.rows.every((r) => Object.keys(r).sort().join(",") === "key,reason,rule"), "the suppression report names rows and rules, never a count");
check(report.rows.every((r) => trueControl(r.key["region"], r.key["channel"]) < report.minimum), "every suppressed cohort was truly below the minimum (oracle)");
check(match.matchReport.intersectionSize === gt.counts.trueOverlap, "PSI matched exactly the true overlap");
check(!advRows.some((r) => "email" in r) && !retRows.some((r) => "email" in r), "no e-mail crossed into the room");
check(log.verification.ok, "the audit chain verifies");
const refusedCodes = log.entries.filter((e) => e.outcome === "refused").map((e) => e.errorCode);
check(refusedCodes.includes("QUERY_NOT_APPROVED") && refusedCodes.includes("PURPOSE_DENIED"), `the refused queries are in the audit log (${refusedCodes.join(", ")})`);
check(datasets(lab, { party: retailer }).length === 1, "the malformed upload stored nothing");
check(result.rngStamp.rngMode === "seeded", "the results are labelled teaching mode (seeded, not private)");
""")

write()
