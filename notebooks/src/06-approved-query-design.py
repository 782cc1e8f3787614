#!/usr/bin/python3
"""Generate notebooks/06-approved-query-design.ipynb. Run from the repo root:

    /usr/bin/python3 notebooks/src/06-approved-query-design.py

Writes the notebook without outputs; CI executes it (scripts/run-notebooks.py).
"""
from nbgen import notebook

md, code, write = notebook("06-approved-query-design.ipynb")

md(r"""
# 06 · Designing an approved query for a new question

**What it teaches.** In a clean room nobody types SQL against the other party's data. A question
becomes a **template**: a plan written as data, with typed parameter slots and allowed ranges,
filters, group-by dimensions, aggregates with per-person bounds, a threshold and DP noise. Every
data owner approves its hash, and from then on *only that plan* runs. This notebook designs one for
a new question:

> *What is the average basket value, by region, of the people who actually saw the ad, during the
> campaign?*

You will check what the template costs in privacy budget and how accurate its answer will be
**before spending any budget**, redesign it when the answer would be noise, compare privacy
accountants, get it approved by both owners, see what approval does *not* allow (a changed filter,
an added column, the identifier, a parameter out of range), see that when both parties set rules
the most restrictive one wins, and finally run it.

**Who it is for.** Analysts who will write templates, and data owners who will review them.
Read notebook 02 first for the room itself. The template grammar, with an example per feature, is in
[docs/templates.md](../docs/templates.md).

**How long.** Under a minute to run, 20 minutes to read.

**Teaching mode — not private.** Seeded randomness throughout, so the numbers are reproducible;
every result is labelled `teaching mode — not private`.
""")

md(r"""
## 1 · The room

The same two parties as in notebook 02, on a fresh generated study. This time each owner sets its
**own** analysis rule: the advertiser requires at least 50 distinct people per output row (Google
Ads Data Hub's aggregation threshold), the retailer — more cautious — 120.
""")

code(r"""
import {
  openLab, upload, addParty, psiMatch, declarePurpose, approveTemplate, cleanRoomQuery, previewQuery, budget, attempt,
  generateStudy, liftSchemas, liftRules, templateHash, approxDp, type TemplateInput
} from "@cleanroom-lab/kernel";
import {
  templateCost, normalizeEmail, epsilonForAccuracy, whatRemainingBuys, compareAccountants, previewTemplate,
  budgetSpent, sameCost, type TemplatePreview
} from "@cleanroom-lab/kernel/labs";

const SEED = "design-2026";
const study = generateStudy({ seed: SEED, advertiserRows: 12000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const lab = openLab({ store: ":memory:", rng: { seed: SEED }, budget: { epsilon: 3 } });
const advertiser = addParty(lab, { party: "advertiser" });
const retailer = addParty(lab, { party: "retailer" });
const match = await psiMatch(lab, { a: { party: advertiser, rows: study.exposures }, b: { party: retailer, rows: study.purchases }, threads: 1 });
const advRule = liftRules(50).exposures;
const retRule = liftRules(120).purchases;
await upload(lab, { party: advertiser, name: "exposures", rows: match.joinedA!, schema: liftSchemas().exposures, purposes: ["measurement"], rule: advRule });
await upload(lab, { party: retailer, name: "purchases", rows: match.joinedB!, schema: liftSchemas().purchases, purposes: ["measurement"], rule: retRule });
declarePurpose(lab, { party: advertiser, analyst: "bo", purpose: "measurement", justification: "basket value of people who saw the campaign" });
console.log(`PSI matched ${match.matchReport.intersectionSize} people; advertiser's rule minimum ${advRule.outputConstraints[0]!.minimum}, retailer's ${retRule.outputConstraints[0]!.minimum}`);
console.log("advertiser's rule: dimensions", advRule.dimensionColumns.join(", "), "· aggregates", JSON.stringify(advRule.aggregateColumns));
console.log("retailer's rule:   dimensions", retRule.dimensionColumns.join(", "), "· aggregates", JSON.stringify(retRule.aggregateColumns));
""")

md(r"""
## 2 · A first draft, written as plan data

The template reads the advertiser's `exposures` (one row per person: the *privacy unit*) and joins
the retailer's `purchases` on the PSI join key. Its pieces:

* **params** — typed slots with allowed ranges: the attribution window (`startDay`, `endDay`, days
  0–27 of the campaign) and a minimum number of impressions (1–10). The analyst picks values at run
  time; anything outside the ranges is refused.
* **filters** — people the advertiser actually reached; purchases inside the window.
* **groupBy** — the advertiser's `region` (a dimension column both rules allow).
* **contribution** — at most a few purchases per person count (the earliest), so one person's effect
  on `baskets` is bounded.
* **aggregates** — `exposed` (people), `buyers` (people with a purchase), `baskets` (purchases) and
  `spend` — a sum whose **bounds** clamp each person's total. The bound is the sensitivity: the
  most one person can change the answer, which the noise must hide.
* **threshold** — a preset (`adh_diffcheck` = 50 people per row), style `drop`.
* **noise** — discrete Laplace, ε per noised quantity.

The first draft counts up to 4 purchases per person, takes a generous bound ($500 per person) and a
small ε (0.1):
""")

code(r"""
function basketTemplate(o: { epsilon: string; spendCap: number; basketsPerPerson: number }): TemplateInput {
  return {
    version: 1,
    name: "basket value by region (exposed)",
    base: { owner: "advertiser", dataset: "exposures" },
    events: { owner: "retailer", dataset: "purchases", joinOn: "join_key", join: "left" },
    params: {
      startDay: { type: "int", min: 0, max: 27 },
      endDay: { type: "int", min: 0, max: 27 },
      minImpressions: { type: "int", min: 1, max: 10 },
    },
    filters: [
      { column: "exposures.reached", op: "eq", value: { literal: 1 } },
      { column: "exposures.impressions", op: "ge", value: { param: "minImpressions" } },
      { column: "purchases.purchase_day", op: "ge", value: { param: "startDay" } },
      { column: "purchases.purchase_day", op: "le", value: { param: "endDay" } },
    ],
    groupBy: ["exposures.region"],
    contribution: { maxRowsPerUnit: o.basketsPerPerson, orderBy: ["purchases.purchase_day"] },
    aggregates: [
      { name: "exposed", fn: "countUnits" },
      { name: "buyers", fn: "countUnitsWithRows" },
      { name: "baskets", fn: "count" },
      { name: "spend", fn: "sum", column: "purchases.value_cents", bounds: [0, o.spendCap] },
    ],
    threshold: { minimum: "adh_diffcheck", style: "drop" },
    noise: { mechanism: "laplace", epsilonPerAggregate: o.epsilon },
  };
}
const params = { startDay: 0, endDay: 27, minImpressions: 1 };
const draft = basketTemplate({ epsilon: "0.1", spendCap: 50000, basketsPerPerson: 4 });
const draftPreview = previewTemplate(draft, params);
console.log(draftPreview.text);
""")

md(r"""
## 3 · Is the answer worth its budget? Check before running

The preview is computed from the plan alone — no data touched, nothing charged. The question is a
**ratio**, `spend ÷ baskets`, so its accuracy depends on the noise of *both* numbers. How big are
they? The analyst cannot look at the data but can reason from what she knows: about a thousand
reached people per region, perhaps 15 % of them buying during four weeks, one or two baskets each
at around $45. The helper below turns the preview's ± into the predicted error of the average
basket (a conservative sum of the two relative errors):
""")

code(r"""
const guess = { reachedPerRegion: 1000, buyShare: 0.15, basketsPerBuyer: 1.4, basketDollars: 45 };
const expectedBaskets = guess.reachedPerRegion * guess.buyShare * guess.basketsPerBuyer;
const expectedSpend = expectedBaskets * guess.basketDollars * 100; // cents
function predictAccuracy(p: TemplatePreview) {
  const pm = (n: string) => p.noise!.perQuantity.find((q) => q.name === n)!.plusMinus;
  const spendRel = pm("spend") / expectedSpend, basketsRel = pm("baskets") / expectedBaskets;
  return { "spend ±$": Math.round(pm("spend") / 100), "spend ±%": Math.round(100 * spendRel), "baskets ±": pm("baskets"), "baskets ±%": Math.round(100 * basketsRel),
    "avg basket ±% (predicted)": Math.round(100 * (spendRel + basketsRel)), cost: p.cost!.text };
}
console.log(`back-of-envelope per region: ~${expectedBaskets} baskets, ~$${(expectedSpend / 100).toLocaleString("en-US")} spend`);
console.table({ draft: predictAccuracy(draftPreview) });
const budget0 = budget(lab);
console.log("budget spent so far:", budget0.budgets.find((b) => b.scope === "collaboration")!.spent.text);
""")

md(r"""
The draft's spend noise (±$15,000) is larger than the spend itself: running it would buy an
answer that is mostly noise. Nothing was spent to find this out.

**Redesign.** Three levers, none of which costs privacy:

1. **Tighten the spend bound.** Two baskets at a typical $45 is under $100; clamping each person's
   window total at $150 biases the answer down only for rare heavy spenders, and cuts the
   sensitivity from 50,000 to 15,000 cents — the noise shrinks by the same factor.
2. **Count fewer baskets per person.** The average basket only needs *some* of each person's
   baskets: keeping the first 2 (instead of 4) halves the sensitivity of `baskets`, and `spend` is
   summed over the same kept baskets, so the ratio stays an average basket value.
3. **Choose ε from the accuracy you need**, not the other way round. Say each region's spend should
   be within ±$1,000 at 95 % confidence. `epsilonForAccuracy` answers with the ε for a discrete
   Laplace (exact discrete tail, rounded *up*) — and the ρ a discrete Gaussian would need.
""")

code(r"""
const target = { accuracy: 100000, confidence: 0.95, sensitivity: 15000n };
const plan = epsilonForAccuracy(target);
console.log(`±$1,000 at 95% on a sum with sensitivity $150 needs ε = ${plan.laplace.epsilon} (Laplace scale ${plan.laplace.scale}), or ρ = ${plan.gaussian.rho} (Gaussian σ² = ${plan.gaussian.sigma2})`);
const basket = basketTemplate({ epsilon: plan.laplace.epsilon, spendCap: 15000, basketsPerPerson: 2 });
const preview = previewTemplate(basket, params);
console.log(preview.text);
console.table({ draft: predictAccuracy(draftPreview), redesign: predictAccuracy(preview) });
""")

md(r"""
The whole run costs 4 noised quantities × ε (the threshold's people count is noised too; the
`exposed` aggregate reuses it). `templateCost` computes it exactly from the plan, and `budget(lab)`
says how many runs the remaining budget buys:
""")

code(r"""
const cost = templateCost(basket, params)!;
const before = budget(lab, { queries: [{ name: "basket v2", cost: cost }, { name: "draft", cost: templateCost(draft, params)! }] });
console.log(`one run costs ${preview.cost!.text}; the room's budget buys ${before.overall[0]!.count} run(s) of it (or ${before.overall[1]!.count} of the useless draft)`);
""")

md(r"""
**Which accountant?** If this report is going to run every week, composition matters. The same
accuracy target, k runs, expressed as a total (ε, δ): pure ε-DP with basic composition, (ε, δ) with
the advanced composition theorem, and zCDP with the discrete Gaussian. For a handful of runs pure
DP is cheapest; for many runs advanced composition and, by a wide margin, zCDP win.
""")

code(r"""
const table: Record<string, Record<string, string>> = {};
for (const k of [1, 12, 52, 520]) {
  for (const row of compareAccountants(target, k, "1e-6")) (table[row.accountant] ??= {})[`${k} run${k > 1 ? "s" : ""}`] = `ε ${Number(row.totalEpsilon).toFixed(2)}`;
}
console.table(table);
const hypothetical = whatRemainingBuys(approxDp("3", "1e-6"), target);
console.log("a room with an (ε = 3, δ = 1e-6) budget would buy, at this accuracy:");
console.table(hypothetical.rows.map((r) => ({ accountant: r.accountant, "per query": r.perQuery, queries: r.queries })));
""")

md(r"""
## 4 · Preview in this room, then approval by both owners

`previewTemplate` reads the plan alone. `previewQuery` also reads **the room**: each owner's
analysis rule. It says which threshold will actually apply (the strictest of the template's and
every owner's — and who set it), which dimensions, aggregates and filter columns the owners' rules
allow or refuse, the ± of every released number and the cost — still before anything is approved
or charged. Our template asks for 50 people per row (`adh_diffcheck`); the retailer's rule says 120:

Until both have approved, it does not run.
""")

code(r"""
const inRoom = previewQuery(lab, { template: basket, params: params, party: "advertiser" });
const afterPreview = budget(lab);
console.log(inRoom.threshold.text);
inRoom
""")

md(r"""
A rule can also refuse a *function*. The retailer's rule allows `SUM` on `value_cents`, not `AVG`:
asking the room for an average directly is refused, and the preview says what the rule does allow
(which is why this template releases `spend` and `baskets` and divides afterwards):
""")

code(r"""
const withAvg: TemplateInput = {
  ...basket,
  aggregates: [...basket.aggregates, { name: "avgBasket", fn: "avg", column: "purchases.value_cents", bounds: [0, 15000] }],
};
const avgPreview = previewQuery(lab, { template: withAvg, params: params });
console.log(avgPreview.refused.map((v) => `✗ ${v.fn}(${v.column}): the rule of ${v.rule} ${v.reason}`).join("\n"));
console.log(avgPreview.refusal?.message);
""")

md(r"""
Now the approvals. The template touches both parties' data, so both must approve **the same
canonical hash**; each approval checks the plan against that owner's rule, and its result shows the
same effective threshold as the preview.
""")

code(r"""
console.log("approvals needed:", preview.approvalsNeeded.join(", "), "· hash", preview.hash);
approveTemplate(lab, { template: basket, party: advertiser });
const pending = await attempt(() => cleanRoomQuery(lab, { template: basket, params: params, party: "advertiser", analyst: "bo", purpose: "measurement" }));
console.log("with one approval:", (pending as { code?: string }).code);
const approval = approveTemplate(lab, { template: basket, party: retailer });
console.log("threshold in force:", approval.threshold?.text);
approval
""")

md(r"""
## 5 · What approval does *not* allow

The approval is of one exact plan. Each variant below is what an analyst might try after approval;
each is refused before any budget is charged. A changed filter or an added column produces a
different hash — **not approved** (`QUERY_NOT_APPROVED`). A plan that names the identifier column
(as a dimension, or inside an aggregate) is refused outright, even for approval: identifiers are
never output, filtered or aggregated. Parameters are checked against their declared slots
(`PARAM_INVALID`, naming the parameter).
""")

code(r"""
const ask = (template: TemplateInput, p: Record<string, unknown>) =>
  attempt(() => cleanRoomQuery(lab, { template: template, params: p, party: "advertiser", analyst: "bo", purpose: "measurement" }));

const changedFilter: TemplateInput = { ...basket, filters: basket.filters!.map((f, i) => (i === 0 ? { ...f, value: { literal: 0 } } : f)) }; // reached = 0
const addedColumn: TemplateInput = { ...basket, groupBy: [...basket.groupBy!, "exposures.age_band"] };
const identifierDim: TemplateInput = { ...basket, groupBy: ["exposures.join_key"] };
const identifierAgg: TemplateInput = { ...basket, aggregates: [...basket.aggregates, { name: "ids", fn: "sum", column: "purchases.join_key", bounds: [0, 1] }] };

const attempts = {
  "changed filter (reached = 0)": await ask(changedFilter, params),
  "added column (group by age_band too)": await ask(addedColumn, params),
  "identifier as a dimension": await ask(identifierDim, params),
  "function of the identifier": await ask(identifierAgg, params),
  "minImpressions = 0 (allowed 1–10)": await ask(basket, { ...params, minImpressions: 0 }),
  "endDay = 60 (allowed 0–27)": await ask(basket, { ...params, endDay: 60 }),
  "an undeclared parameter": await ask(basket, { ...params, region: "north" }),
};
console.table(Object.fromEntries(Object.entries(attempts).map(([k, r]) => {
  const x = r as { ok?: boolean; code?: string; field?: string; message?: string };
  return [k, { code: x.code, field: x.field ?? "", why: (x.message ?? "").slice(0, 90) }];
})));
console.log("hash of the approved plan:  ", templateHash(basket));
console.log("hash with the filter changed:", templateHash(changedFilter));
""")

md(r"""
One of them with its full why-blocked trace — the identifier can't even be approved by its owner:
""")

code(r"""
await attempt(() => approveTemplate(lab, { template: identifierDim, party: advertiser }))
""")

md(r"""
The parameter refusal names the parameter and the allowed range:
""")

code(r"""
attempts["minImpressions = 0 (allowed 1–10)"]
""")

md(r"""
## 6 · Both parties set rules: the most restrictive wins

The template asks for 50 people per row (`adh_diffcheck`); the advertiser's rule says 50; the
retailer's says 120. As in AWS Clean Rooms ("if A sets 100 and B sets 150, each output row needs at
least 150"), thresholds combine by **maximum**: every released row of this query needs at least 120
distinct people, and the result says which rule set it. The template's own, lower number cannot
weaken an owner's rule. The preview said so before anything ran; the result says it again in its
`threshold` field (and in its title) whenever the template's own threshold did not apply.
""")

md(r"""
## 7 · Running it
""")

code(r"""
const result = await cleanRoomQuery(lab, { template: basket, params: params, party: "advertiser", analyst: "bo", purpose: "measurement" });
console.log(`threshold applied: ${result.suppressed.minimum} people per row, set by ${result.suppressed.minimumFrom} (template asked for ${preview.threshold.minimum}, advertiser's rule ${advRule.outputConstraints[0]!.minimum})`);
console.log("result.threshold:", result.threshold.text);
result
""")

md(r"""
**The answer.** Average basket value is post-processing of the released numbers (`spend ÷ baskets`):
free, no further budget. To grade it we compute the exact answer from the raw files — a god's-eye
view **no party has** — with the template's exact semantics (reached people, window days 0–27, the
2 earliest purchases, each person's total clamped at $150).
""")

code(r"""
const key = (email: string) => { const n = normalizeEmail(email); return n.ok ? n.value : null; };
const purchasesOf = new Map<string, { purchase_day: number; value_cents: number }[]>();
for (const p of study.purchases) { const k = key(p.email); if (k) purchasesOf.set(k, [...(purchasesOf.get(k) ?? []), p]); }
const exact: Record<string, { exposed: number; buyers: number; baskets: number; spend: number }> = {};
for (const x of study.exposures) {
  const mine = purchasesOf.get(key(x.email) ?? "");
  if (!mine || x.reached !== 1 || x.impressions < params.minImpressions) continue;
  const g = (exact[x.region] ??= { exposed: 0, buyers: 0, baskets: 0, spend: 0 });
  g.exposed++;
  const kept = mine.filter((p) => p.purchase_day >= params.startDay && p.purchase_day <= params.endDay)
    .sort((a, b) => a.purchase_day - b.purchase_day || a.value_cents - b.value_cents).slice(0, 2);
  if (kept.length) { g.buyers++; g.baskets += kept.length; g.spend += Math.min(15000, kept.reduce((s, p) => s + p.value_cents, 0)); }
}
const pm = (n: string) => preview.noise!.perQuantity.find((q) => q.name === n)!.plusMinus;
const rows = result.rows.map((r) => {
  const e = exact[r["region"] as string]!;
  return {
    region: r["region"], "buyers": `${r["buyers"]} (${e.buyers})`, "baskets": `${r["baskets"]} (${e.baskets})`,
    "spend $": `${Math.round((r["spend"] as number) / 100)} (${Math.round(e.spend / 100)})`,
    "avg basket $": `${((r["spend"] as number) / (r["baskets"] as number) / 100).toFixed(2)} (${(e.spend / e.baskets / 100).toFixed(2)})`,
    "avg basket error %": (100 * Math.abs((r["spend"] as number) / (r["baskets"] as number) / (e.spend / e.baskets) - 1)).toFixed(1),
  };
});
console.log("released (exact, god's-eye) per region:");
console.table(rows);
console.log(`predicted ± at 95%: spend ±$${Math.round(pm("spend") / 100)}, baskets ±${pm("baskets")}, buyers ±${pm("buyers")}`);
console.log(`predicted avg-basket error (95%, conservative): ±${predictAccuracy(preview)["avg basket ±% (predicted)"]}%`);
""")

md(r"""
## 8 · What it cost
""")

code(r"""
const after = budget(lab, { queries: [{ name: "basket v2", cost: cost }] });
const spent = budgetSpent(before, after);
console.log(`charged ${spent.text} — the template's cost ${preview.cost!.text}, exactly: ${sameCost(spent, cost)}; the refused variants charged nothing.`);
console.log(`remaining budget buys ${after.overall[0]!.count} more run(s).`);
after
""")

md(r"""
At this accuracy the room can answer the question **once**. A second run is refused before it
executes, and the error says Requested / Remaining / Difference:
""")

code(r"""
const again = await ask(basket, params);
again
""")

md(r"""
## 9 · From the lab to production: export the approved design

The question will be asked again next quarter, on the full data, where the data lives: a warehouse's
clean room. `exportDesign` hands the **approved** template (an unapproved one is refused) to three of
them, side by side:

* **AWS Clean Rooms** — an analysis template (Spark SQL with `:startDay`-style parameters) and, per
  configured table, a *custom* analysis rule that allows exactly this template (the lab's approval,
  pinned), with the differential-privacy column; a privacy budget template.
* **BigQuery data clean rooms** — a view per input with its analysis rule (differential privacy here,
  aggregation threshold for a threshold-only template) and the query with
  `WITH DIFFERENTIAL_PRIVACY OPTIONS(…)`.
* **Snowflake data clean rooms** — a JinjaSQL template (`{{ startDay }}`) with its join and column
  policies and the provider API calls.

Each export is checked against a schema of the target's API, and lists what **the target enforces
differently from the lab** — read it before production: every target adds its *own* noise and keeps
its *own* budget; none of them knows the lab's row-level rules unless the SQL carries them, so the
exported SQL carries the threshold the owners' rules set (120) and guards every parameter's range.

Does the exported SQL mean the same thing? `proveExport` runs each target's SQL — parameters bound,
the target's noise clauses removed by a few listed *shims* — on DuckDB over the same rows we
uploaded, and compares with the lab's un-noised answer: the same rows, the same numbers, the same
suppressed groups. It reports equal/not equal and counts, never the exact numbers (those are what
the noise protects).
""")

code(r"""
import { exportDesign } from "@cleanroom-lab/kernel";
import { proveExport, importAwsDesign } from "@cleanroom-lab/kernel/labs";
const exported = exportDesign(lab, { template: basket, target: "all" });
const proof = await proveExport(exported, {
  template: basket, params: params,
  datasets: {
    "advertiser/exposures": { rows: match.joinedA!, schema: liftSchemas().exposures, rule: advRule },
    "retailer/purchases": { rows: match.joinedB!, schema: liftSchemas().purchases, rule: retRule },
  },
});
proof
""")

md(r"""
The AWS analysis template's SQL, as AWS would receive it (the first two comment lines carry the lab
design, so it can come back):
""")

code(r"""
const awsJson = JSON.parse(JSON.stringify(exported.targets[0]!.artefacts));
console.log(awsJson.analysisTemplate.source.text.split("\n").slice(2).join("\n"));
""")

md(r"""
**Back from AWS.** A policy written for production can be tried here against synthetic data before
real budget is spent. `importAwsDesign` reads the AWS JSON back into a lab design — the template
(only SQL the lab wrote and can verify: an analysis template edited after export is refused), the
owners' rules and the budget — and exporting that design again gives the same JSON, byte for byte:
""")

code(r"""
const back = importAwsDesign(lab, { aws: awsJson });
const reExported = exportDesign(lab, { template: back.template!, target: "aws" });
const stable = JSON.stringify(reExported.targets[0]!.artefacts) === JSON.stringify(awsJson);
const edited = { ...awsJson, analysisTemplate: { ...awsJson.analysisTemplate, source: { text: awsJson.analysisTemplate.source.text.replace("crl_units >= 120", "crl_units >= 2") } } };
const tampered = await attempt(() => importAwsDesign(lab, { aws: edited }));
console.log(`re-imported hash ${back.template!.hash.slice(0, 12)}… = approved hash: ${back.template!.hash === templateHash(basket)}; AWS → lab → AWS stable: ${stable}`);
console.log(`retailer's rule back from AWS: minimum ${back.rules["retailer/purchases"]!.outputConstraints[0]!.minimum}; room budget ε = ${back.budget?.epsilon}`);
tampered
""")

md(r"""
## Checks
""")

code(r"""
const check = (cond: boolean, claim: string) => { if (!cond) throw new Error(`check failed: ${claim}`); console.log(`✓ ${claim}`); };
const R = attempts as Record<string, { ok?: boolean; code?: string; field?: string }>;
check(draftPreview.noise!.perQuantity.find((q) => q.name === "spend")!.plusMinus > expectedSpend, "the draft's predicted spend noise exceeds the plausible answer (so it was not run)");
check(predictAccuracy(preview)["avg basket ±% (predicted)"] < predictAccuracy(draftPreview)["avg basket ±% (predicted)"] / 5, "the redesign predicts a >5× smaller error on the average basket");
check(budget0.budgets.every((b) => b.spent.kind === "pureDp" && b.spent.epsilon.num === "0"), "previewing and planning spent no budget");
check(preview.noise!.perQuantity.find((q) => q.name === "spend")!.plusMinus <= 100000, "the redesigned template meets the ±$1,000 target at 95%");
check(sameCost(cost, draftPreview.cost!) === false && preview.hash !== draftPreview.hash, "the redesign is a different plan (different hash and cost)");
check(R["changed filter (reached = 0)"]!.code === "QUERY_NOT_APPROVED", "a changed filter is refused (QUERY_NOT_APPROVED)");
check(R["added column (group by age_band too)"]!.code === "QUERY_NOT_APPROVED", "an added column is refused (QUERY_NOT_APPROVED)");
check(R["identifier as a dimension"]!.code === "QUERY_NOT_APPROVED" && R["function of the identifier"]!.code === "QUERY_NOT_APPROVED", "the identifier, or a function of it, is refused");
check(R["minImpressions = 0 (allowed 1–10)"]!.code === "PARAM_INVALID" && R["minImpressions = 0 (allowed 1–10)"]!.field === "params.minImpressions", "an out-of-range parameter is refused naming params.minImpressions");
check(R["endDay = 60 (allowed 0–27)"]!.field === "params.endDay" && R["an undeclared parameter"]!.field === "params.region", "every parameter refusal names its parameter");
check(((pending as { code?: string }).code) === "QUERY_NOT_APPROVED" && approval.approved, "it ran only after both owners approved");
check(inRoom.threshold.effective === 120 && inRoom.threshold.from === "retailer/purchases" && inRoom.thresholdRaised, "the room-aware preview said 120, from the retailer's rule, before anything ran");
check(sameCost(budgetSpent(budget0, afterPreview), { kind: "pureDp", epsilon: { num: 0n, den: 1n } }), "previewing in the room charged nothing");
check(avgPreview.refused.some((v) => v.fn === "AVG" && v.rule === "retailer/purchases" && v.reason.includes("SUM(value_cents)")), "the preview names the rule refusing AVG and what it allows");
check(approval.threshold?.effective === 120 && approval.threshold.text === inRoom.threshold.text, "approval shows the same effective threshold as the preview");
check(result.threshold.raised && result.threshold.effective === 120 && result.threshold.template === 50, "the result says the template's own threshold (50) was looser");
check(result.suppressed.minimum === 120 && result.suppressed.minimumFrom === "retailer/purchases", "the most restrictive rule (retailer's 120) set the threshold");
check(result.rows.every((r) => (r["exposed"] as number) >= 120), "no released row has fewer than 120 people");
check(result.rows.every((r) => !("join_key" in r)), "no identifier in the output");
check(sameCost(spent, cost), "the budget went down by exactly the template's cost");
check((again as { code?: string }).code === "BUDGET_EXCEEDED" && sameCost(budgetSpent(after, budget(lab)), { kind: "pureDp", epsilon: { num: 0n, den: 1n } }), "a second run is refused (BUDGET_EXCEEDED) and charges nothing");
const errs = result.rows.map((r) => Math.abs((r["spend"] as number) - exact[r["region"] as string]!.spend));
check(errs.filter((e) => e <= pm("spend")).length >= errs.length - 1, `released spends are within the predicted ± (errors $${errs.map((e) => Math.round(e / 100)).join(", $")})`);
check(rows.every((r) => Number(r["avg basket error %"]) <= predictAccuracy(preview)["avg basket ±% (predicted)"]), "every region's average basket is within the predicted error");
check(result.rngStamp.rngMode === "seeded", "results are labelled teaching mode (seeded, not private)");
check(proof.allEqual && Object.keys(proof.proofs).length === 3, "the exported SQL of all three targets gives the lab's un-noised rows and suppressed groups on DuckDB");
check(exported.minimum.value === 120 && awsJson.analysisTemplate.source.text.includes("crl_units >= 120"), "the export carries the retailer's 120, not the template's 50");
check(exported.targets.every((t) => t.differences.some((d) => d.startsWith("noise:"))), "every target says its noise is its own");
check(back.template!.hash === templateHash(basket) && stable, "AWS JSON → lab → AWS JSON is stable, and the re-imported design is the approved one");
check((tampered as { code?: string }).code === "TEMPLATE_INVALID", "an analysis template edited after export is refused on import");
""")

write()
