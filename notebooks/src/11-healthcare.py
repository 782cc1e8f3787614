#!/usr/bin/python3
"""Generate notebooks/11-healthcare.ipynb (outputs cleared; CI executes it).

    /usr/bin/python3 notebooks/src/11-healthcare.py
"""
from nbgen import notebook

md, code, write = notebook("11-healthcare.ipynb")

md(r"""
# 11 · Healthcare joint research: a clean room inside an enclave, under strict purpose controls

**What it teaches.** A hospital and a pathology lab want one table for an approved study: patients
and mean HbA1c by diagnosis × age band, over the patients both of them hold. Neither may give the
other its records. The seed names two technologies for this scenario, and this notebook combines
them:
- **the clean room runs inside an attested enclave** (notebook 04). The operator stores only
  ciphertext, and each party releases its key only to the approved code, for the approved purpose;
- **strict purpose controls** (notebook 03):
  - the study protocol id *is* the purpose;
  - the approval expires;
  - deny rules refuse re-identification and marketing uses of health data, whatever a dataset's
    tags allow.

The table is published the way health statistics are: exact counts, with cells of 1–10 patients
withheld. Withholding small cells is not enough when the totals are published too, because a
withheld cell can be computed back by subtraction. We run that attack, then the defence:
**complementary suppression**.

In order:
1. the data and its ground truth;
2. the study room: protocol, deny rules, PSI, sealed uploads, approvals, attestation;
3. the published table, checked against the ground truth;
4. the attack: recovering withheld cells from the totals, with primary suppression only;
5. the defence: complementary suppression, and the same attack against it;
6. purpose controls: re-identification refused, an approval that expires;
7. what this does not protect;
8. checks.

**Who it is for.** Health-data scientists, research-ethics and information-governance staff, and
engineers building research environments. **How long.** About 20 minutes to read; it runs in about
a minute.

**Teaching mode — not private.** The lab is seeded (`rng: { seed }`) and the patients are
synthetic, so every key can be recomputed from the seed. That makes the numbers repeatable, and it
also means nothing here is private. Real use takes the secure default.
""")

code(r"""
import {
  openLab, addParty, psiMatch, upload, declarePurpose, approveTemplate, attestEnclave, cleanRoomQuery, attempt, audit, budget
} from "@cleanroom-lab/kernel";
import {
  generateHospitals, cohortTemplates, cohortSchemas, cohortRules, studyProtocol, marginRecoveryAttack, REIDENTIFICATION_USE,
  DIAGNOSES, AGE_BANDS
} from "@cleanroom-lab/kernel/labs";

const t0 = Date.now();
const study = generateHospitals({ seed: "nb11", patients: 3000 });
const truth = study.groundTruth;
const truthAt = (d: string, a: string) => truth.cells.find((c) => c.diagnosis === d && c.age_band === a)!;
/** A diagnosis × age band grid of `cell(d, a)` for console.table. */
const grid = (cell: (d: string, a: string) => string | number) =>
  DIAGNOSES.map((d) => ({ diagnosis: `${d} ${truth.diagnoses[d]}`, ...Object.fromEntries(AGE_BANDS.map((a) => [a, cell(d, a)])) }));
console.log(`hospital admissions: ${truth.admissions}; lab results: ${truth.labResults}; patients in both (ground truth): ${truth.matched}`);
console.log("Ground truth, patients per cell (no party can compute this alone):");
console.table(grid((d, a) => truthAt(d, a).patients));
const smallCells = truth.cells.filter((c) => c.patients > 0 && c.patients < 11);
console.log(`${smallCells.length} cells have 1–10 patients: ${smallCells.map((c) => `${c.diagnosis}/${c.age_band}`).join(", ")}`);
""")

md(r"""
## 2 · The study room

**The protocol is the purpose.** `studyProtocol` adds `research.protocol_cr2026_017` to the room's
taxonomy, as a child of fideslang's `research`. The hospital tags its admissions for that protocol
and nothing else. The lab tags its results for `research` in general, because it serves many
studies. The room's deny rule refuses re-identification, marketing, personalisation and
third-party sharing on data categorised `user.health_and_medical`, even where a tag would allow the
use (deny wins over allow).
""")

code(r"""
const lab = openLab({ store: ":memory:", room: "study-room", rng: { seed: "nb11" } });
const hospital = addParty(lab, { party: "hospital" });
const pathlab = addParty(lab, { party: "pathlab" });
const protocol = studyProtocol(lab, { protocol: "cr2026_017", title: "HbA1c by diagnosis and age band" });
const purpose = protocol.purpose;
console.log(`purpose: ${purpose}  (${lab.purpose.taxonomy.node("dataUse", purpose)!.name})`);
console.log("deny rules:", JSON.stringify(protocol.denyRules, null, 1));
""")

md(r"""
**Two layers, each on its own.** The room's deny rule binds every query of this room. Each owner's
key release, though, follows **its own** tags, not the operator's rules. So the lab, whose tag
allows `research` broadly, also denies `research.reidentification` on its own data. Without that
deny, the lab would release its key to an enclave that declares re-identification. Section 6
checks that it does not.

**Matching without sharing identifiers.** The parties run PSI (notebook 01). Each row gets a join
key, or none if the patient is unmatched, and the e-mail column is dropped before anything is
uploaded. Then each party uploads its rows **sealed for the enclave**: the operator stores
ciphertext and a catalog entry, never rows.
""")

code(r"""
const m = await psiMatch(lab, { a: { party: hospital, rows: study.admissions }, b: { party: pathlab, rows: study.labResults }, threads: 1 });
const schemas = cohortSchemas(), rules = cohortRules(11), health = ["user.health_and_medical"];
const upH = await upload(lab, { party: hospital, name: "admissions", rows: m.joinedA, sealing: "enclave", schema: schemas.admissions, purposes: [purpose], rule: rules.admissions, categories: health });
// the lab serves many studies ("research"), but its own tags refuse re-identification: its key release must not depend on the room's rules
const upL = await upload(lab, { party: pathlab, name: "lab_results", rows: m.joinedB, sealing: "enclave", schema: schemas.labResults, purposes: ["research"], rule: rules.labResults, categories: health,
  columns: { join_key: { deny: [REIDENTIFICATION_USE] } } });
console.log(`PSI matched ${m.matchReport.intersectionSize} patients (ground truth ${truth.matched})`);
for (const u of [upH, upL]) console.log(`${u.owner}/${u.name}: ${u.rows} rows sealed for the enclave; tags ${u.purposes.join(", ")}; the operator holds ${u.operatorHoldsBytes} bytes of ciphertext`);
""")

md(r"""
**Templates and approvals.** The study releases one table, cells plus their totals. Its threshold
style is `complementary` with a minimum of 11 patients, the CMS cell-size rule. For the attack in
section 4 the owners also approve what a naive publication releases: the same cells with primary
suppression only (`drop`), and the totals as three separate tables. Both owners approve every
template. The enclave's measurement includes all the approved template hashes.
""")

code(r"""
const T = cohortTemplates({ hospital: "hospital", lab: "pathlab", minimum: 11 });
for (const t of Object.values(T)) for (const p of [hospital, pathlab]) approveTemplate(lab, { template: t, party: p, executor: "enclave" });
const grant = declarePurpose(lab, { party: hospital, analyst: "pi", purpose, justification: "approved study protocol, HbA1c cohort", ttlSeconds: 30 * 86400 });
console.log(`grant ${grant.id.slice(0, 8)}… for ${grant.who.analyst}@${grant.who.party}: ${grant.purpose}, valid until ${grant.expiresAt}`);
const att = await attestEnclave(lab, { purpose });
att
""")

md(r"""
## 3 · The published table

One query runs inside the enclave. The released rows are:
- the cells with at least 11 patients;
- the row totals (age band `null`), the column totals (diagnosis `null`) and the grand total.

Every withheld cell is listed with the same reason. The result does not say which cells are small,
because that would tell an attacker the others hold at least 11 patients. No withheld value appears
anywhere in the result. The grid below marks primary and complementary cells using the ground
truth, which the analyst does not have.
""")

code(r"""
const ASK = { params: {}, party: "hospital", analyst: "pi", purpose, executor: "enclave" as const };
const table = await cleanRoomQuery(lab, { template: T.table, ...ASK });
const released = new Map(table.rows.map((r) => [`${r.diagnosis}|${r.age_band}`, r]));
const withheldWhy = new Map(table.suppressed.rows.map((s) => [`${s.key.diagnosis}|${s.key.age_band}`, s.reason]));
const isSmall = (d: string, a: string) => truthAt(d, a).patients > 0 && truthAt(d, a).patients < 11;
console.log("Published: patients per cell (withheld: '·' small cell, '∘' complementary — told apart with the ground truth)");
console.table(grid((d, a) => released.get(`${d}|${a}`)?.patients ?? (withheldWhy.has(`${d}|${a}`) ? (isSmall(d, a) ? "·" : "∘") : 0)));
console.log(`totals: ${table.rows.filter((r) => r.diagnosis === null || r.age_band === null).length} released; ${JSON.stringify(table.suppressed.complementary)}`);
// against the ground truth: every released number is exact, every small cell is withheld
const cellRows = table.rows.filter((r) => r.diagnosis !== null && r.age_band !== null);
const exact = cellRows.every((r) => r.patients === truthAt(r.diagnosis as string, r.age_band as string).patients && Math.abs((r.mean_hba1c as number) - truthAt(r.diagnosis as string, r.age_band as string).meanHba1c!) < 1e-9);
const smallWithheld = smallCells.every((c) => withheldWhy.has(`${c.diagnosis}|${c.age_band}`));
console.log(`released cells equal the ground truth: ${exact}; every 1–10 cell withheld: ${smallWithheld}; budget charged: ${table.cost === null ? "none (an exact release)" : table.cost.text}`);
table
""")

md(r"""
## 4 · The attack: totals give withheld cells back

Suppose the study had published the usual way: the cells with small ones withheld (`drop`), and
the totals by diagnosis, by age band and overall, each as its own table. Each table passes the
threshold on its own. Together they form a linear system. A row whose only withheld cell is X
gives X = row total − the row's other cells. The same holds for means: sum = mean × patients.
`marginRecoveryAttack` solves that system exactly (Gauss–Jordan over the integers) and returns
every withheld value that the system determines.
""")

code(r"""
const naive = [await cleanRoomQuery(lab, { template: T.cellsOnly, ...ASK }), await cleanRoomQuery(lab, { template: T.byDiagnosis, ...ASK }),
  await cleanRoomQuery(lab, { template: T.byAgeBand, ...ASK }), await cleanRoomQuery(lab, { template: T.overall, ...ASK })];
const attack = marginRecoveryAttack(naive, { count: "patients", avg: "mean_hba1c" });
console.log(`primary suppression only: ${attack.withheld} values withheld, ${attack.recovered.length} recovered exactly`);
console.table(attack.recovered.map((r) => {
  const t = truthAt(r.key.diagnosis as string, r.key.age_band as string);
  return { cell: `${r.key.diagnosis}/${r.key.age_band}`, "recovered patients": r.patients, "true patients": t.patients, "recovered mean HbA1c": r.mean?.toFixed(2), "true mean": t.meanHba1c?.toFixed(2) };
}));
""")

md(r"""
## 5 · The defence: complementary suppression

The complementary table withholds further cells, the cheapest ones first (fewest patients hidden),
until the attacker's solver finds nothing. For a withheld cell it withholds the other three corners
of a rectangle. Every withheld cell then lies on a cycle of unknowns, and a cycle can be shifted by
+d on two corners and −d on the other two without changing any total. So no withheld value is
determined. The check that matters is that the attacker cannot break it, whether it uses the
complementary table alone or combines it with every other table the owners approved.
""")

code(r"""
const defended = marginRecoveryAttack([table], { count: "patients", avg: "mean_hba1c" });
const combined = marginRecoveryAttack([table, naive[1]!, naive[2]!, naive[3]!], { count: "patients", avg: "mean_hba1c" });
console.table([
  { publication: "cells (drop) + 3 total tables", withheld: attack.withheld, recovered: attack.recovered.length },
  { publication: "complementary table", withheld: defended.withheld, recovered: defended.recovered.length },
  { publication: "complementary table + the 3 total tables", withheld: combined.withheld, recovered: combined.recovered.length },
]);
""")

md(r"""
## 6 · Purpose controls

**Re-identification.** A lab analyst declares `research.reidentification`. The declaration is
allowed and audited. The lab's tag `research` would even cover that use. The query is still refused
by the deny rule, before any key is asked for and with nothing charged. Both owners' key release
refuses an enclave that declares that purpose as well, because the purpose is inside the signed
evidence: the hospital because its tag names only the protocol, and the lab because of its own deny. A marketing use of the same data is refused by the same rule.
""")

code(r"""
declarePurpose(lab, { party: pathlab, analyst: "ra", purpose: REIDENTIFICATION_USE, justification: "link results back to patients" });
const reid = await attempt(() => cleanRoomQuery(lab, { template: T.table, params: {}, party: "pathlab", analyst: "ra", purpose: REIDENTIFICATION_USE, executor: "enclave" }));
const reidEnclave = await attestEnclave(lab, { purpose: REIDENTIFICATION_USE });
declarePurpose(lab, { party: hospital, analyst: "mk", purpose: "marketing", justification: "find patients to advertise to" });
const mkt = await attempt(() => cleanRoomQuery(lab, { template: T.table, params: {}, party: "hospital", analyst: "mk", purpose: "marketing", executor: "enclave" }));
console.log(`enclave declaring ${REIDENTIFICATION_USE}: ${reidEnclave.owners.map((o) => `${o.owner} ${o.outcome} (${o.code ?? "—"})`).join(", ")}`);
console.log(`marketing query: ${(mkt as { code: string }).code}`);
reid
""")

md(r"""
**The approval expires.** Ethics approvals are time-bound, and so are grants. A research fellow gets
a grant for five seconds. The first query runs. Once the grant has expired, the same query is
refused with `GRANT_EXPIRED`. It is not charged, nothing runs, and the refusal is audited.
""")

code(r"""
await attestEnclave(lab, { purpose });
const short = declarePurpose(lab, { party: hospital, analyst: "fellow", purpose, justification: "approved study protocol, short extension", ttlSeconds: 5 });
const FELLOW = { ...ASK, analyst: "fellow" };
const beforeExpiry = await cleanRoomQuery(lab, { template: T.overall, ...FELLOW });
await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(short.expiresAt) - Date.now() + 250)));
const afterExpiry = await attempt(() => cleanRoomQuery(lab, { template: T.overall, ...FELLOW }));
console.log(`before ${short.expiresAt}: ${beforeExpiry.rows[0]!.patients} patients; after: ${(afterExpiry as { code: string }).code}`);
afterExpiry
""")

code(r"""
const trail = audit(lab);
console.log(`audit chain verifies: ${trail.verification.ok}; refusals recorded: ${trail.entries.filter((e) => e.errorCode).map((e) => e.errorCode).join(", ")}`);
""")

md(r"""
## 7 · What this does not protect

- **Intervals.** Complementary suppression stops *exact* recovery. An attacker still knows that
  counts are non-negative and that a primary cell held 1–10 patients, and from the totals can bound
  each withheld value to an interval. Statistical agencies also check these intervals (protection
  ranges). Here they are not checked.
- **Exact releases of repeated questions.** Every number here is exact, and nothing is charged to a
  privacy budget. New tables over the same patients (another cut, a later extract) can be
  differenced against this one. For repeated releases, use DP templates (notebook 06). The
  complementary style is refused on noised templates, because noise already covers that case.
- **The enclave's code is trusted.** Attestation proves *which* code ran. Whether that code is
  right is checked by reading it (notebook 04).

## Checks
""")

code(r"""
const seconds = (Date.now() - t0) / 1000;
if (m.matchReport.intersectionSize !== truth.matched) throw new Error("PSI should match exactly the patients both parties hold");
if (!att.ok || !att.owners.every((o) => o.outcome === "released")) throw new Error("both owners should release their keys to the attested enclave for the protocol");
if (!exact || cellRows.length < 8) throw new Error("released cells should equal the ground truth");
if (!smallWithheld || smallCells.length < 3) throw new Error("every cell of 1–10 patients must be withheld");
const grand = table.rows.find((r) => r.diagnosis === null && r.age_band === null);
if (grand?.patients !== truth.matched) throw new Error("the grand total should be released and true");
if (attack.recovered.length === 0 || attack.recovered.some((r) => r.patients !== truthAt(r.key.diagnosis as string, r.key.age_band as string).patients)) throw new Error("positive control: primary suppression + totals should give small cells back exactly");
if (defended.recovered.length !== 0 || combined.recovered.length !== 0) throw new Error("complementary suppression: nothing should be recoverable");
if (reidEnclave.owners.some((o) => o.outcome === "released")) throw new Error("no owner may release its key to an enclave declaring re-identification");
if ((reid as { code?: string }).code !== "PURPOSE_DENIED" || reidEnclave.ok || (mkt as { code?: string }).code !== "PURPOSE_DENIED") throw new Error("re-identification and marketing must be refused");
if (beforeExpiry.rows[0]!.patients !== truth.matched || (afterExpiry as { code?: string }).code !== "GRANT_EXPIRED") throw new Error("the approval should work until it expires, then be refused");
if (!trail.verification.ok) throw new Error("the audit chain should verify");
console.log(`all checks passed in ${seconds.toFixed(1)} s`);
""")

write()
