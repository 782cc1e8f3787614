#!/usr/bin/python3
"""Generate notebooks/05-attack-lab.ipynb (attack lab: differencing, trackers, averaging).
Run from the repo root:

    /usr/bin/python3 notebooks/src/05-attack-lab.py

Writes the notebook without outputs; CI executes it (scripts/run-notebooks.py).
"""
from nbgen import notebook

md, code, write = notebook("05-attack-lab.ipynb")

md(r"""
# 05 · Attack lab: differencing, trackers and averaging

**What it teaches.** Aggregates are not automatically anonymous. An analyst who may only run an
*approved* query template, and only ever sees cohorts of at least 20 people, can still learn one
person's secret by combining answers. This notebook runs four classic attacks against a real clean
room, each first with the defence **off** (the attack works) and then **on** (it fails):

| attack | idea | defence that stops it |
|---|---|---|
| ADH's 400 → 401 users | the same query before and after one more person arrives | difference check |
| differencing pair / individual tracker | cohort *C*, then *C* minus the target | difference check — or DP noise |
| general tracker | four large, pairwise-different cohorts whose ± sum is the target | **only DP noise** (it slips past the difference check) |
| averaging | repeat a noisy query until the noise averages away | the **privacy budget** (and why a monthly refresh undoes it) |
| reconstruction (Dinur–Nissim) | many noisy subset sums, solved by least squares | DP with a bounded *total* ε per person |

and it measures **attacker accuracy against ε**, so "private" is a number with a bound, not a claim.

**Who it is for.** Privacy engineers, clean-room analysts and students who have seen notebook 02
(the lift study) and want to know what the thresholds, difference checks, noise and budget are *for*.

**How long.** Under a minute to run, about 20 minutes to read.

**Teaching mode — not private.** Every random draw comes from a seeded generator, so the numbers
below are reproducible — and therefore *not private*. Every result is labelled so.
""")

md(r"""
## 0 · The room and the target

A retailer holds 800 customers: region, age and whether they **converted** (bought after a
campaign). The analyst ("eve", working for the advertiser) may run one approved template —
*people and converters for a list of regions and an age range* — and sees only rows with at least
20 distinct people. Eve has background knowledge: her target is **the only customer in the north
who is over 60**. Her goal is the target's `converted` bit.

`room(name, defences)` opens a fresh clean room with the same data and one template whose
defences are template properties (so each variant has its own hash and must be approved by the
retailer).
""")

code(r"""
import {
  openLab, upload, addParty, declarePurpose, approveTemplate, cleanRoomQuery, attempt, budget, seededRng,
  type Lab, type CleanRoomResult, type Refusal
} from "@cleanroom-lab/kernel";
import {
  attackPopulation, cohortTemplate, trackers, exactCohort, trackerAccuracy, refreshAveraging,
  reconstructionAttack, adhImpressions, lineChart, type CohortParams
} from "@cleanroom-lab/kernel/labs";

const pop = attackPopulation({ rng: seededRng("attack-lab/population"), people: 800 });
const tr = trackers();
type Answer = CleanRoomResult | Refusal;
const refused = (r: Answer): r is Refusal => "ok" in r && r.ok === false;
/** The released converters of a one-row answer (null when refused or suppressed). */
const converters = (r: Answer): number | null => (refused(r) || r.rows.length === 0 ? null : Number(r.rows[0]!.converters));

interface Room { lab: Lab; ask: (p: CohortParams) => Promise<Answer> }
async function room(name: string, d: { differenceCheck?: number; epsilonPerAggregate?: string; budget?: number; refresh?: "none" | "monthly" }): Promise<Room> {
  const lab = openLab({ store: ":memory:", room: name, rng: { seed: "attack-lab/" + name },
    ...(d.budget ? { budget: { epsilon: d.budget, refresh: d.refresh ?? "none" } } : {}) });
  const retailer = addParty(lab, { party: "retailer" });
  addParty(lab, { party: "advertiser" });
  await upload(lab, { party: retailer, name: "customers", rows: pop.rows, idColumn: "join_key", schema: pop.schema, purposes: ["measurement"], rule: pop.rule });
  declarePurpose(lab, { party: "advertiser", analyst: "eve", purpose: "measurement", justification: "conversion rates by region and age" });
  const template = cohortTemplate({ owner: "retailer", differenceCheck: d.differenceCheck, epsilonPerAggregate: d.epsilonPerAggregate });
  approveTemplate(lab, { template: template, party: retailer });
  const ask = (params: CohortParams) =>
    attempt(() => cleanRoomQuery(lab, { template: template, params: { ...params }, party: "advertiser", analyst: "eve", purpose: "measurement" }));
  return { lab: lab, ask: ask };
}
const north = pop.rows.filter((r) => r.region === "north");
console.log(`${pop.rows.length} customers, ${north.length} in the north, ${north.filter((r) => r.age > 60).length} of them over 60 (the target, age ${pop.target.age}).`);
console.log(`ground truth, known only to the course: the target converted = ${pop.target.converted}`);
""")

md(r"""
## 1 · Ads Data Hub's example: 400 users, then 401

Google's Ads Data Hub documents the simplest differencing attack: a query returns **400 users**
for campaign 123; the same query a day later returns **401**. Subtracting tells the analyst that
exactly one user joined — and, with the user's other attributes in a second query, *who*.
ADH's defence is the **difference check**: a new row whose set of users differs from an earlier
released row by fewer than *k* = 50 users is filtered.

Here the publisher uploads those impressions; the same template (users per campaign up to
`maxDay`) runs on day 1 and day 2, first without and then with the check.
""")

code(r"""
async function adhJobs(differenceCheck?: number) {
  const lab = openLab({ store: ":memory:", room: differenceCheck ? "adh-checked" : "adh-open", rng: { seed: "attack-lab/adh" } });
  const adh = adhImpressions(seededRng("attack-lab/adh-data"));
  const publisher = addParty(lab, { party: "publisher" });
  addParty(lab, { party: "advertiser" });
  await upload(lab, { party: publisher, name: "impressions", rows: adh.rows, idColumn: "join_key", schema: adh.schema, purposes: ["measurement"], rule: adh.rule });
  declarePurpose(lab, { party: "advertiser", analyst: "eve", purpose: "measurement", justification: "campaign reach per day" });
  const t = adh.template({ owner: "publisher", differenceCheck: differenceCheck });
  approveTemplate(lab, { template: t, party: publisher });
  const run = (maxDay: number) => cleanRoomQuery(lab, { template: t, params: { maxDay: maxDay }, party: "advertiser", analyst: "eve", purpose: "measurement" });
  const job1 = await run(1);
  const job2 = await run(2);
  return { job1: job1, job2: job2 };
}
const adhOpen = await adhJobs();
const users = (r: CleanRoomResult, c: string) => r.rows.find((x) => x.campaign === c)?.users ?? null;
console.log(`no check — job 1: campaign 123 has ${users(adhOpen.job1, "123")} users; job 2: ${users(adhOpen.job2, "123")} users`);
console.log(`the attacker learns: exactly ${Number(users(adhOpen.job2, "123")) - Number(users(adhOpen.job1, "123"))} user saw campaign 123 on day 2`);
adhOpen.job2
""")

md(r"""
With the difference check on (*k* = 50), job 2's row for campaign 123 is **filtered** — its user
set differs from job 1's by one user. The suppression report says which row and which rule, and
the number 401 appears nowhere in the result. Campaign 789 (100 new users) is released.
""")

code(r"""
const adhChecked = await adhJobs(50);
console.log(`difference check: ${JSON.stringify(adhChecked.job2.differenceCheck)}; "401" in the result: ${JSON.stringify(adhChecked.job2).includes("401")}`);
adhChecked.job2
""")

md(r"""
## 2 · The threshold stops the direct question…

Eve first simply asks for her target's cohort: north, aged 61–99. That cohort has **one** person,
far below the 20-person threshold, so the row is suppressed — without revealing its true size.
""")

code(r"""
const openRoom = await room("open", {});
const direct = await openRoom.ask(tr.direct);
direct
""")

md(r"""
## 3 · …but not the differencing pair (individual tracker)

Both of these cohorts are large — *north, 18–99* (190 people) and *north, 18–60* — so both pass
the threshold. Their difference is exactly one person: the target. With exact answers, the
difference of the `converters` counts **is** her secret.
""")

code(r"""
const pairOpen: Answer[] = [];
for (const s of tr.pair) pairOpen.push(await openRoom.ask(s.params));
const pairGuess = converters(pairOpen[0]!)! - converters(pairOpen[1]!)!;
console.log(`converters(north, 18–99) − converters(north, 18–60) = ${converters(pairOpen[0]!)} − ${converters(pairOpen[1]!)} = ${pairGuess}`);
console.log(`attack ${pairGuess === pop.target.converted ? "SUCCEEDS" : "fails"}: the target's converted bit is ${pop.target.converted}`);
pairOpen[1]
""")

md(r"""
## 4 · Defence on: the difference check refuses the pair

In a room whose template carries an ADH-style difference check (*k* = 50), the first cohort is
released and the second is **refused**: combined with the first, it would isolate fewer than 50
people. `attempt(...)` shows the refusal and the *why-blocked* trace — which step of the road
refused it (the threshold / suppression step, after execution, so nothing is released).
""")

code(r"""
const checked = await room("checked", { differenceCheck: 50 });
const pairChecked: Answer[] = [];
for (const s of tr.pair) pairChecked.push(await checked.ask(s.params));
console.log(`first cohort released: ${!refused(pairChecked[0]!)}; second refused: ${refused(pairChecked[1]!)}`);
pairChecked[1]
""")

md(r"""
## 5 · The general tracker slips past the difference check

Difference checks compare results **pairwise**. Eve can instead ask four cohorts that differ from
each other by dozens of people, yet whose signed sum is exactly her target (2-D inclusion–exclusion
over region × age, with *Others* = south, east, west):

> target = A − B − C + D, with A = all regions 41–99, B = Others 41–99, C = all regions 41–60, D = Others 41–60

(A − B is the north aged 41+, C − D the north aged 41–60; their difference is the north over 60 —
the target.) The table shows the smallest pairwise difference between the four unit sets, computed
from the ground truth: every pair differs by far more than *k* = 50 − 1, so no pair trips the check.
""")

code(r"""
const members = (p: CohortParams) => new Set(pop.rows.filter((r) => p.regions.includes(r.region) && r.age >= p.minAge && r.age <= p.maxAge).map((r) => r.join_key));
const sets = tr.general.map((s) => members(s.params));
const names = ["A", "B", "C", "D"];
const pairs: { pair: string; onlyInFirst: number; onlyInSecond: number }[] = [];
for (let i = 0; i < 4; i++) for (let j = i + 1; j < 4; j++)
  pairs.push({ pair: `${names[i]} vs ${names[j]}`, onlyInFirst: [...sets[i]!].filter((x) => !sets[j]!.has(x)).length, onlyInSecond: [...sets[j]!].filter((x) => !sets[i]!.has(x)).length });
console.table(pairs);
const general: Answer[] = [];
for (const s of tr.general) general.push(await checked.ask(s.params));
const generalGuess = tr.general.reduce((acc, s, i) => acc + s.sign * converters(general[i]!)!, 0);
console.log(`all four released through the difference check: ${general.every((r) => !refused(r))}`);
console.log(`A − B − C + D = ${general.map((r) => converters(r)).join(" − ").replace(/ − (\d+)$/, " + $1")} = ${generalGuess} → attack ${generalGuess === pop.target.converted ? "SUCCEEDS" : "fails"}`);
general[3]
""")

md(r"""
Difference checks are a useful heuristic against the obvious pair, but an analyst who can choose
parameters can route around any check that looks at results two at a time (Denning's *general
tracker*, 1979). The defence that holds against **every** combination of queries is noise with a
provable bound: **differential privacy**.

## 6 · Defence on: DP noise

A third room's template adds discrete Laplace noise with ε = 0.5 to each released quantity
(people and converters — so ε = 1 per run), charged to a budget of ε = 8. The same general
tracker now returns noisy counts: the estimate of a 0/1 bit has a standard deviation of about 6.
""")

code(r"""
const noisy = await room("noisy", { epsilonPerAggregate: "0.5", budget: 8, refresh: "monthly" });
const noisyGeneral: Answer[] = [];
for (const s of tr.general) noisyGeneral.push(await noisy.ask(s.params));
const noisyGuess = tr.general.reduce((acc, s, i) => acc + s.sign * converters(noisyGeneral[i]!)!, 0);
console.log(`noisy A − B − C + D = ${noisyGuess} (the truth is 0 or 1): guess ${noisyGuess >= 0.5 ? 1 : 0}`);
noisyGeneral[0]
""")

md(r"""
One run proves nothing — the guess may be right by luck. So we **measure**: for each ε, 400
simulated trials in which a fair coin sets the target's bit, the cohorts are answered with the
template's noise (the library's discrete Laplace sampler, scale 1/ε on converters), and the
attacker guesses. Any ε-DP release bounds the attacker's success at **e^ε / (1 + e^ε)** (dashed):
at ε = 0.25 that is 56 %, at ε = 0.5 62 % — barely better than a coin. Without noise (ε = ∞) both
trackers are right every time. The general tracker does worse than the pair: it pays the noise of
four answers for the information in one.
""")

code(r"""
const epsilons = [0.05, 0.1, 0.25, 0.5, 1, 2, 4, 8];
const accPair = trackerAccuracy({ rows: pop.rows, tracker: "pair", epsilons: [...epsilons, Infinity], trials: 400, rng: seededRng("attack-lab/acc-pair") }).points;
const accGeneral = trackerAccuracy({ rows: pop.rows, tracker: "general", epsilons: [...epsilons, Infinity], trials: 400, rng: seededRng("attack-lab/acc-general") }).points;
console.table(accPair.map((p, i) => ({ epsilon: p.epsilon, "pair tracker": p.accuracy, "general tracker": accGeneral[i]!.accuracy, "ε-DP bound": Number(p.bound.toFixed(3)) })));
const finite = (ps: typeof accPair) => ps.filter((p) => Number.isFinite(p.epsilon));
lineChart({
  title: "Attacker accuracy vs ε (400 trials per point)",
  x: { title: "ε per released quantity", log: true }, y: { title: "attacker accuracy", min: 0.4, max: 1 },
  data: [
    ...finite(accPair).map((p) => ({ x: p.epsilon, y: p.accuracy, series: "individual tracker (2 queries)" })),
    ...finite(accGeneral).map((p) => ({ x: p.epsilon, y: p.accuracy, series: "general tracker (4 queries)" })),
    ...finite(accPair).map((p) => ({ x: p.epsilon, y: p.bound, series: "ε-DP bound e^ε/(1+e^ε)" })),
  ],
  dashed: ["ε-DP bound e^ε/(1+e^ε)"],
})
""")

md(r"""
## 7 · Averaging: repeat the noisy query until the noise is gone

Noise is fresh on every run, so Eve repeats her tracker and averages: after *n* rounds the noise's
standard deviation shrinks by √n. The privacy loss *adds up* just as fast (n rounds cost n × ε),
which is exactly what the **privacy budget** caps. In the noisy room each run costs ε = 1
(2 quantities × 0.5); the budget is ε = 8 and the general tracker above already spent 4. Eve now
repeats the individual tracker (2 runs = ε 2 per round) until the ledger refuses with
`BUDGET_EXCEEDED` — at the **budget** step, before anything runs, with Requested / Remaining /
Difference.
""")

code(r"""
const rounds: number[] = [];
let stopped: Refusal | null = null;
for (let i = 0; i < 20 && !stopped; i++) {
  const a = await noisy.ask(tr.pair[0]!.params);
  const b = refused(a) ? a : await noisy.ask(tr.pair[1]!.params);
  if (refused(a)) stopped = a;
  else if (refused(b)) stopped = b;
  else rounds.push(converters(a)! - converters(b)!);
}
const avg = rounds.reduce((s, x) => s + x, 0) / rounds.length;
console.log(`rounds admitted: ${rounds.length} → estimates ${rounds.join(", ")}; average ${avg.toFixed(2)} (truth: 0 or 1)`);
stopped
""")

code(r"""
budget(noisy.lab)
""")

md(r"""
How much would unlimited repetition have bought? The simulation below repeats the individual
tracker at ε = 0.5 per quantity *n* times and averages. The budget admitted 2 rounds here (4 in a
fresh month); a few hundred rounds make the attacker nearly always right — and the DP bound for
*n* rounds, e^(nε) / (1 + e^(nε)), says that nothing prevents it except refusing to answer.
""")

code(r"""
const repeats = [1, 2, 4, 16, 64, 256, 1024];
const avgPoints = repeats.map((n, i) => trackerAccuracy({ rows: pop.rows, tracker: "pair", epsilons: [0.5], repeats: n, trials: 300, rng: seededRng(`attack-lab/avg-${i}`) }).points[0]!);
console.table(avgPoints.map((p) => ({ rounds: p.repeats, accuracy: Number(p.accuracy.toFixed(3)), "ε-DP bound": Number(p.bound.toFixed(3)), "estimate sd": Number(p.estimateSd.toFixed(2)) })));
lineChart({
  title: "Averaging attack: accuracy vs rounds (ε = 0.5 per quantity)",
  x: { title: "rounds of the individual tracker averaged", log: true }, y: { title: "attacker accuracy", min: 0.4, max: 1 },
  data: [
    ...avgPoints.map((p) => ({ x: p.repeats, y: p.accuracy, series: "averaging attacker" })),
    ...avgPoints.map((p) => ({ x: p.repeats, y: p.bound, series: "ε-DP bound" })),
    { x: 4, y: 0.4, series: "one month's budget (4 rounds)" }, { x: 4, y: 1, series: "one month's budget (4 rounds)" },
  ],
  dashed: ["ε-DP bound"],
})
""")

md(r"""
## 8 · What a monthly budget refresh allows

The noisy room's budget refreshes **monthly** (as AWS Clean Rooms allows). The ledger says plainly
what that means:
""")

code(r"""
const advBudget = budget(noisy.lab).budgets.find((b) => b.scope === "party" && b.subject === "advertiser")!;
console.log(`refresh: ${advBudget.refresh}; next refresh: ${advBudget.nextRefresh}`);
console.log(advBudget.refreshWarning);
""")

md(r"""
To see it happen, `refreshAveraging` drives a real `PrivacyLedger` with an injected clock through
24 months: each month Eve runs tracker rounds until `BUDGET_EXCEEDED`, then waits for the refresh.
The **lifetime** privacy loss grows by ε = 8 every month, and so does her accuracy — the budget
only slows the averaging attack down.
""")

code(r"""
const refresh = refreshAveraging({ rows: pop.rows, monthlyEpsilon: "8", epsilonPerAggregate: "0.5", months: 24, tracker: "pair", trials: 300, rng: seededRng("attack-lab/refresh") });
console.log(`cost per round: ${refresh.costPerRound}`);
console.log(`the ledger's refusal each month: ${refresh.refusal}`);
console.table(refresh.months.filter((m, i) => i % 3 === 0 || i === refresh.months.length - 1).map((m) => ({ month: m.month, rounds: m.rounds, "total rounds": m.totalRounds, "lifetime ε": m.lifetimeEpsilon, accuracy: Number(m.accuracy.toFixed(3)), bound: Number(m.bound.toFixed(3)) })));
lineChart({
  title: "Monthly refresh: attacker accuracy over time",
  x: { title: "months" }, y: { title: "attacker accuracy", min: 0.4, max: 1 },
  data: [
    ...refresh.months.map((m, i) => ({ x: i + 1, y: m.accuracy, series: "averaging attacker" })),
    ...refresh.months.map((m, i) => ({ x: i + 1, y: m.bound, series: "ε-DP bound (lifetime ε)" })),
  ],
  dashed: ["ε-DP bound (lifetime ε)"],
})
""")

md(r"""
## 9 · Reconstruction: the fundamental law of information recovery

Trackers and averaging are special cases of a general result (Dinur & Nissim, 2003): answer
*too many* questions *too accurately* and the whole database can be rebuilt. Here 60 customers each
have a secret bit; the analyst asks 240 random subset sums ("how many of these ~30 people
converted?") and solves the least-squares system. With exact answers every bit comes back. With
ε-DP answers, what matters is each person's **total** privacy loss — ε per query times the ~120
queries that include her — and the attacker's per-bit accuracy stays under the bound for that
total. A budget of a few ε per person keeps reconstruction near a coin flip; ε = 1 per query
(≈ 120 per person) gives the database away.
""")

code(r"""
const recon = reconstructionAttack({ people: 60, queries: 240, epsilons: [0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, Infinity], trials: 3, rng: seededRng("attack-lab/reconstruction") });
console.table(recon.points.map((p) => ({ "ε per query": p.epsilonPerQuery, "ε per person": Number(p.epsilonPerPerson.toFixed(1)), "bits recovered": Number(p.accuracy.toFixed(3)), "ε-DP bound": Number(p.bound.toFixed(3)) })));
const reconFinite = recon.points.filter((p) => Number.isFinite(p.epsilonPerQuery));
lineChart({
  title: "Reconstruction from 240 noisy subset sums (60 people)",
  x: { title: "total ε per person", log: true }, y: { title: "share of secret bits recovered", min: 0.4, max: 1 },
  data: [
    ...reconFinite.map((p) => ({ x: p.epsilonPerPerson, y: p.accuracy, series: "least-squares attacker" })),
    ...reconFinite.map((p) => ({ x: p.epsilonPerPerson, y: p.bound, series: "ε-DP bound" })),
  ],
  dashed: ["ε-DP bound"],
})
""")

md(r"""
**Lessons.** Thresholds stop the direct question and nothing else. Difference checks stop the
obvious pair, not a tracker. DP noise makes each answer provably uninformative about one person —
but only per query: the budget is what turns "each answer" into "all answers" (reconstruction shows
what happens without it), and a refreshing budget is a rate limit, not a privacy guarantee.

## Checks

Every claim above, asserted:
""")

code(r"""
const check = (cond: boolean, claim: string) => { if (!cond) throw new Error("claim failed: " + claim); console.log("✓ " + claim); };
const se = (n: number) => 3 * Math.sqrt(0.25 / n);
check(users(adhOpen.job1, "123") === 400 && users(adhOpen.job2, "123") === 401, "ADH without a check: 400 then 401 users");
check(adhChecked.job2.rows.every((r) => r.campaign !== "123") && adhChecked.job2.suppressed.rows.some((r) => r.reason === "difference_check") && !JSON.stringify(adhChecked.job2).includes("401"), "ADH with k = 50: the 401 row is filtered and 401 appears nowhere");
check(!refused(direct) && direct.rows.length === 0 && direct.suppressed.rows[0]!.reason === "below_threshold", "the direct question is suppressed by the threshold");
check(exactCohort(pop.rows, tr.direct).people === 1, "the target's cohort really has one person");
check(pairGuess === pop.target.converted, "differencing pair without defences recovers the target's bit exactly");
check(!refused(pairChecked[0]!) && refused(pairChecked[1]!) && (pairChecked[1] as Refusal).code === "DIFFERENCE_CHECK_FAILED", "the difference check refuses the pair");
check((pairChecked[1] as Refusal).trace!.find((s) => s.status === "refused")!.step === "threshold", "why-blocked trace names the threshold step");
check(pairs.every((p) => (p.onlyInFirst === 0 || p.onlyInFirst >= 50) && (p.onlyInSecond === 0 || p.onlyInSecond >= 50)), "the general tracker's cohorts differ pairwise by ≥ 50 people");
check(general.every((r) => !refused(r)) && generalGuess === pop.target.converted, "the general tracker passes the difference check and recovers the bit");
check(accPair.every((p) => p.accuracy <= p.bound + se(p.trials)) && accGeneral.every((p) => p.accuracy <= p.bound + se(p.trials)), "attacker accuracy never exceeds the ε-DP bound (within 3 standard errors)");
check(accPair[accPair.length - 1]!.accuracy === 1 && accGeneral[accGeneral.length - 1]!.accuracy === 1, "without noise both trackers are always right");
check(accPair[2]!.accuracy < 0.65 && accGeneral[2]!.accuracy < 0.65 && accPair[3]!.accuracy < 0.7 && accGeneral[3]!.accuracy < 0.7, "at ε = 0.25 and 0.5 both trackers are close to a coin flip");
check(rounds.length === 2 && stopped !== null && stopped.code === "BUDGET_EXCEEDED" && stopped.trace!.find((s) => s.status === "refused")!.step === "budget", "the budget stops the averaging attack after 2 rounds with BUDGET_EXCEEDED at the budget step");
check(avgPoints[avgPoints.length - 1]!.accuracy >= 0.9 && avgPoints[2]!.accuracy < 0.7, "unlimited averaging wins (≥ 90 % at 1024 rounds); one month's budget does not (< 70 % at 4 rounds)");
check(advBudget.refreshWarning !== null && refresh.refreshWarning === advBudget.refreshWarning, "the ledger warns about monthly refresh");
check(refresh.months.every((m, i) => m.rounds === 4 && m.lifetimeEpsilon === 8 * (i + 1)), "each refresh admits 4 more rounds; lifetime ε grows by 8 a month");
check(refresh.months[23]!.accuracy > refresh.months[0]!.accuracy + 0.1, "after 24 refreshes the averaging attacker is clearly better than after one month");
check(recon.points[recon.points.length - 1]!.accuracy === 1 && recon.points[6]!.accuracy >= 0.95, "exact (or ε = 1 per query) answers to 240 subset sums reconstruct the database");
check(recon.points[0]!.accuracy < 0.6 && recon.points.every((p) => p.accuracy <= p.bound + 3 * Math.sqrt(0.25 / (60 * 3))), "at ≈ 1 ε per person reconstruction is a coin flip, and never beats the ε-DP bound");
""")

write()
