#!/usr/bin/python3
"""Generate notebooks/12-internal-analytics.ipynb (outputs cleared; CI executes it).

    /usr/bin/python3 notebooks/src/12-internal-analytics.py
"""
from nbgen import notebook

md, code, write = notebook("12-internal-analytics.ipynb")

md(r"""
# 12 · Internal analytics on sensitive data: purpose, k-anonymity, then DP

**The scenario.** One organisation holds a sensitive table: people with ZIP code, age, sex and
a health condition. Several internal teams want to use it. The seed suggests three layers:
**purpose limitation** per team, **query anonymization**, and **differential privacy**. This
notebook builds each layer on top of the previous one and *measures* what it adds.

1. **Purpose per team.** The dataset's label decides which team may use which column, and for
   what. The condition column is for population-health reporting only; marketing is denied
   outright.
2. **k-anonymity by generalisation.** ZIP digits are cut, ages banded and sex dropped, until
   every released class has at least k people. We then test it with a **re-identification
   attack**: linking released rows to a public list of (ZIP, age, sex).
3. **DP on top.** Analysts get noisy counts per class and condition.

Each layer is attacked, with ground truth:
- **Identity disclosure:** a target linked to exactly one released row.
- **Homogeneity:** guessing a target's condition from the make-up of their class.
- **New-joiner differencing:** comparing last month's and this month's release around one
  person who joined.

**Who it is for.** Readers of notebooks 03 (purpose) and 05 (attacks). **How long.** About
15 minutes. It runs in about half a minute.

**Teaching mode — not private.** The data is synthetic and seeded, and results are labelled.
""")

code(r"""
import { seededRng } from "@cleanroom-lab/kernel";
import { internalAnalyticsLab, internalPopulation, kAnonymise, qiClass, lineChart } from "@cleanroom-lab/kernel/labs";

const t0 = Date.now();
const people = internalPopulation(5000, seededRng("nb12/population"));
console.table(people.slice(0, 5));
console.log(`${people.length} people; the first few rows are shown only because this is synthetic ground truth`);
""")

md(r"""
## 1 · Purpose per team

The dataset is tagged with a label like the ones in notebook 03:
- allowed purposes: `analytics` and `essential`;
- denied: `marketing`;
- the sensitive `condition` column may be used for `analytics.reporting` only.

Each team asks for one column for one purpose. The label, not the team, decides.
""")

code(r"""
const lab = internalAnalyticsLab(seededRng("nb12"), { people: 5000, k: 10, epsilon: 0.2 });
console.table(lab.teams.map((t) => ({ team: t.team, purpose: t.purpose, column: t.column, decision: t.permitted ? "permitted" : "refused", "denied by": t.deniedBy ?? "" })));
""")

md(r"""
## 2 · k-anonymity by generalisation, and a re-identification test

The search walks a lattice: ZIP digits kept (5 → 0), age band (1, 5, 10, 20 years, or none),
and sex kept or dropped. It keeps the least lossy point where every class has at least k = 10
people, suppressing at most 2% of rows.

The attacker holds a public list with the ZIP, age and sex of about 400 people who are in the
data. For each one, it looks up their class in the release.
""")

code(r"""
const ka = kAnonymise(people, 10);
console.log(`chosen generalisation: ZIP ${ka.generalisation.zipDigits} digits, age band ${ka.generalisation.ageBand} y, sex ${ka.generalisation.sex ? "kept" : "dropped"}; ` +
  `${ka.classes} classes, smallest ${ka.smallestClass}, suppressed ${ka.suppressed}`);
console.log(`one person as released raw: ${qiClass(people[0]!, { zipDigits: 5, ageBand: 1, sex: true })}; k-anonymous: ${qiClass(people[0]!, ka.generalisation)}`);
console.table(lab.layers.map((l) => ({
  layer: l.layer, "unique linkage (identity)": +l.uniqueLinkage.toFixed(3), "condition guessed (homogeneity)": +l.attributeGuess.toFixed(3),
  "new joiner's condition (differencing)": +l.newJoinerGuess.toFixed(3), "analyst error per count": +l.analystError.toFixed(1),
})));
console.log(`base rate (guessing the most common condition for everyone): ${lab.baseRate.toFixed(3)}; DP bound on the new-joiner guess: ${lab.newJoinerBound.toFixed(3)}`);
""")

md(r"""
**How to read the table.**
- **Raw release.** Many targets are unique in (ZIP, age, sex), so their rows, condition
  included, are identified.
- **k-anonymity.** Unique linkage drops to 0. The condition is still guessed above the base
  rate, because some classes are nearly homogeneous. This is a *population* fact (older people
  in region 4 often have diabetes). DP allows it by design, and the DP layer does not change it.
- **Differencing.** Between two monthly k-anonymous releases, the only change is one new joiner.
  The difference of the counts reveals that person's condition **every time**. Both releases
  are perfectly k-anonymous.
- **DP on top.** Each count gets discrete Laplace noise. The new-joiner guess falls below the
  bound that ε-DP guarantees. The price is a measured error in the analysts' counts.
""")

code(r"""
const sweep = [0.05, 0.1, 0.2, 0.5, 1, 2].map((eps) => {
  const r = internalAnalyticsLab(seededRng("nb12"), { people: 5000, k: 10, epsilon: eps, joiners: 60 });
  const dp = r.layers[2]!;
  return { eps, guess: dp.newJoinerGuess, bound: r.newJoinerBound, error: dp.analystError };
});
console.table(sweep.map((s) => ({ ε: s.eps, "new-joiner guess": +s.guess.toFixed(3), "DP bound": +s.bound.toFixed(3), "analyst error per count": +s.error.toFixed(1) })));
lineChart({ title: "New-joiner differencing vs ε (k = 10 plus DP)", x: { title: "ε per release", log: true }, y: { title: "share of joiners' conditions learned", min: 0, max: 1 },
  dashed: ["DP bound", "k-anonymity alone"],
  data: [
    ...sweep.map((s) => ({ x: s.eps, y: s.guess, series: "attack with DP" })),
    ...sweep.map((s) => ({ x: s.eps, y: s.bound, series: "DP bound" })),
    ...sweep.map((s) => ({ x: s.eps, y: 1, series: "k-anonymity alone" })),
  ] })
""")

md(r"""
## Checks
""")

code(r"""
const [raw, kAnon, dp] = lab.layers;
if (!(lab.teams.find((t) => t.team === "growth")!.permitted === false && lab.teams.find((t) => t.team === "population-health")!.permitted)) throw new Error("purpose per team: marketing refused, reporting permitted");
if (!(raw!.uniqueLinkage > 0.3 && kAnon!.uniqueLinkage === 0 && dp!.uniqueLinkage === 0)) throw new Error("k-anonymity should stop unique linkage that works on the raw release");
if (!(kAnon!.attributeGuess > lab.baseRate + 0.05)) throw new Error("homogeneity should still beat the base rate under k-anonymity");
if (kAnon!.newJoinerGuess !== 1) throw new Error("differencing two k-anonymous releases should reveal every joiner");
if (!(dp!.newJoinerGuess < lab.newJoinerBound && dp!.newJoinerGuess < 0.5)) throw new Error("DP should push differencing below its bound");
if (!sweep.every((s) => s.guess <= s.bound + 1e-9)) throw new Error("every ε: the attack must stay within the DP bound");
if (!(sweep[0]!.error > sweep[sweep.length - 1]!.error)) throw new Error("smaller ε should cost the analysts more error");
console.log(`all checks passed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
""")

write()
