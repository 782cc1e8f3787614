#!/usr/bin/python3
"""Generate notebooks/03-purpose-limitation.ipynb (outputs cleared; CI executes it).

    /usr/bin/python3 notebooks/src/03-purpose-limitation.py
"""
from nbgen import notebook

md, code, write = notebook("03-purpose-limitation.ipynb")

md(r"""
# 03 · Purpose limitation: tags, grants, encryption gates and a tamper-evident audit log

**What it teaches.** Data in a clean room carries the purposes its owner allows ("this may be
used for measurement, not for targeting"). Every query declares a purpose. The room grants it
only when *every* input allows it, and it enforces this twice: once in policy code and once
with keys. A dataset's key is wrapped only for the purposes it allows, so a query under the
wrong purpose cannot decrypt the data, even if the policy check is skipped. Every call, granted
or refused, goes into a hash-chained, signed audit log. A misuse review reads that log, and any
edit to it is detected at the exact entry.

In order:
1. the seed's four-row purpose table, computed live;
2. the purpose taxonomy (the fideslang vocabulary), aliases, and a misspelt purpose failing loudly;
3. label propagation: a derived result is never looser than its inputs;
4. a query under the wrong purpose refused by the **encryption gate**, with the policy code bypassed;
5. the audit log and the misuse review (repeated denials, purpose switching);
6. tampering with the audit table in the room's SQLite file, detected at the first bad entry;
7. checks.

**Who it is for.** Privacy engineers, researchers and teachers who know what a data-use policy is
and want to see one enforced by cryptography.
**How long.** About 20 minutes to read; the notebook runs in well under a minute.

**Teaching mode — not private.** The lab is seeded (`rng: { seed }`), so every key, nonce and noise
draw can be reproduced. That is what makes the numbers repeatable, and it is also why nothing here
is private: anyone with the seed can recompute the keys. Real use takes the secure default.
""")

code(r"""
import {
  openLab, upload, addParty, psiMatch, declarePurpose, approveTemplate, cleanRoomQuery, attempt, audit, budget,
  display, generateStudy, liftTemplate, liftSchemas, liftRules, isCleanRoomError, seededRng
} from "@cleanroom-lab/kernel";
import {
  purposeTable, permitMatrix, defaultTaxonomy, makeLabel, combineLabels, permits, atLeastAsRestrictive,
  unwrapAndOpen, deriveKek, PurposeKeyService, PurposeAuthority, sha256Canonical, canonicalJson
} from "@cleanroom-lab/kernel/labs";

const t0 = Date.now();
const lab = openLab({ store: ":memory:", room: "purpose03", rng: { seed: "notebook-03" }, budget: { epsilon: 3 } });
const retailer = addParty(lab, { party: "retailer" });
const advertiser = addParty(lab, { party: "advertiser" });
console.log(`room ${lab.roomId}: parties ${retailer.name}, ${advertiser.name}; rng ${lab.stamp.rngMode} (${lab.stamp.label})`);
""")

md(r"""
## 1 · The seed's table, live

The seed states four cases. Data tagged `[ads, measurement]` may serve an `ads` query but not a
`research` one. Data tagged `[safety]` serves `safety` and nothing else:

| data tags | query purpose | outcome |
|---|---|---|
| ads, measurement | ads | granted |
| ads, measurement | research | denied |
| safety | ads | denied |
| safety | safety | granted |

`purposeTable(lab)` runs each row for real in this room. For each row:
- the retailer uploads a small dataset tagged with the row's purposes, sealed by the encryption gate;
- the advertiser's analyst declares the query purpose and gets a signed grant;
- the room authorizes the query: it checks the policy, then the gate releases the data key or refuses.

Below, the decision column comes from the library; the "seed says" suffix compares it with the table above.
""")

code(r"""
const seedTable = purposeTable(lab);
seedTable
""")

code(r"""
// The same rows as plain data: the two granted rows got the exact bytes the owner uploaded, the two denied rows got none.
console.table(seedTable.rows.map((r) => ({ data: r.data.join(", "), query: r.query, outcome: r.outcome, code: r.code ?? "", keyWrappedFor: r.wrappedFor.join(", "), plaintextBytes: r.plaintextBytes ?? "none" })));
""")

md(r"""
`[ads, measurement]` wraps only one key, for `marketing.advertising`. Measurement
(`marketing.advertising.measurement`) lies inside the advertising subtree, so the tag set is stored in
its simplest form. The same hierarchy is why an `ads` tag also permits a measurement query, and why
`research` (a different subtree) finds no key at all.

## 2 · The taxonomy: fideslang's vocabulary, aliases, and typos that fail loudly

Purposes are *data uses* from Fides' open taxonomy (fideslang), so privacy engineers recognise
them: `marketing.advertising.third_party.targeted`, `essential.fraud_detection`, … cleanroom-lab adds
three that a clean room needs and fideslang lacks: `marketing.advertising.measurement`, `research`
and `safety`. It also adds short aliases, so notebook cells read like the seed.
""")

code(r"""
const tx = defaultTaxonomy();
const uses = tx.list("dataUse");
console.log(`${uses.length} data uses (${uses.filter((n) => n.origin === "fideslang").length} from fideslang, ${uses.filter((n) => n.origin === "cleanroom-lab").length} added), ` +
  `${tx.list("dataCategory").length} data categories, ${tx.list("dataSubject").length} data subjects`);
console.table(uses.filter((n) => n.key.startsWith("marketing.advertising") || n.origin === "cleanroom-lab").map((n) => ({ key: n.key, name: n.name, origin: n.origin })));
""")

code(r"""
// Aliases resolve to canonical keys; a key covers its subtree.
console.table(Object.entries(tx.aliases).map(([alias, key]) => ({ alias, key })));
console.log(`"measurement" → ${tx.resolveUse("measurement")}`);
""")

md(r"""
A misspelt purpose must never quietly become "no restriction". It fails with `PURPOSE_UNKNOWN` and
lists the closest valid names. `attempt` shows the refusal instead of throwing:
""")

code(r"""
const typo = await attempt(() => declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "mesurement", justification: "Q3 campaign lift" }));
typo
""")

code(r"""
// The vocabulary is extensible: a room can add its own data uses (the parent must exist).
lab.purpose.extendTaxonomy({ kind: "dataUse", key: "research.epidemiology", name: "Epidemiology" });
const epi = lab.purpose.taxonomy.resolveUse("research.epidemiology");
const epiTypo = await attempt(() => declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "research.epidemology", justification: "flu study" }));
console.log(`added ${epi}; a typo of it: ${(epiTypo as { code: string }).code}: ${(epiTypo as { message: string }).message}`);
""")

md(r"""
## 3 · Label propagation: downstream is never looser than upstream

When a query joins the advertiser's exposures (tagged `[ads, measurement]`) with the retailer's
purchases (tagged `[measurement]`), the result carries `combineLabels` of both:
- the *intersection* of the allowed purposes;
- the *union* of the denials and of the data categories.

A purpose is permitted on the combined label exactly when every input permits it.
""")

code(r"""
const exposuresLabel = makeLabel(tx, { purposes: ["ads", "measurement"], categories: ["user.behavior.media_consumption"] });
const purchasesLabel = makeLabel(tx, { purposes: ["measurement"], categories: ["user.behavior.purchase_history", "user.financial"] });
const joined = combineLabels(exposuresLabel, purchasesLabel);
console.log("joined label:", JSON.stringify(joined));
console.table(permitMatrix({ exposures: exposuresLabel, purchases: purchasesLabel, joinedResult: joined }, ["ads", "measurement", "targeting", "reporting", "research", "safety"]));
""")

code(r"""
// Not just for these six purposes: check the rule over every data use in the taxonomy, and for a
// third label with an explicit deny. Deny wins, and combining is order-independent.
const profilingDenied = makeLabel(tx, { purposes: ["ads"], deny: ["marketing.advertising.profiling"] });
const allUses = tx.list("dataUse").map((n) => n.key);
let propagationViolations = 0;
for (const p of allUses) {
  const three = combineLabels(exposuresLabel, purchasesLabel, profilingDenied);
  if (permits(joined, p) !== (permits(exposuresLabel, p) && permits(purchasesLabel, p))) propagationViolations++;
  if (permits(three, p) !== (permits(exposuresLabel, p) && permits(purchasesLabel, p) && permits(profilingDenied, p))) propagationViolations++;
  if (canonicalJson(combineLabels(profilingDenied, exposuresLabel)) !== canonicalJson(combineLabels(exposuresLabel, profilingDenied))) propagationViolations++;
}
const neverLooser = atLeastAsRestrictive(joined, exposuresLabel, allUses) && atLeastAsRestrictive(joined, purchasesLabel, allUses);
console.log(`${allUses.length} data uses checked: ${propagationViolations} violations; joined result never looser than either input: ${neverLooser}`);
console.log(`ads permitted on [ads] alone: ${permits(profilingDenied, "marketing.advertising")}; profiling: ${permits(profilingDenied, "marketing.advertising.profiling")} (deny wins)`);
""")

md(r"""
Now the same thing in a real clean room. The two parties match their customers with PSI and upload
the matched rows with those tags. Both owners approve the lift template. A measurement query then
runs, while an `ads` query over the same join is refused. The exposures would allow `ads`, but the
purchases do not, and the join inherits the stricter label.
""")

code(r"""
const study = generateStudy({ seed: "notebook-03", advertiserRows: 2500, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const match = await psiMatch(lab, { a: { party: advertiser, rows: study.exposures }, b: { party: retailer, rows: study.purchases }, threads: 1 });
const schemas = liftSchemas(), rules = liftRules(50);
await upload(lab, { party: advertiser, name: "exposures", rows: match.joinedA, schema: schemas.exposures, purposes: ["ads", "measurement"], categories: ["user.behavior.media_consumption"], rule: rules.exposures });
await upload(lab, { party: retailer, name: "purchases", rows: match.joinedB, schema: schemas.purchases, purposes: ["measurement"], categories: ["user.behavior.purchase_history", "user.financial"], rule: rules.purchases });
const lift = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5", threshold: 50 });
approveTemplate(lab, { template: lift, party: advertiser }); approveTemplate(lab, { template: lift, party: retailer });
const boAds = declarePurpose(lab, { party: advertiser, analyst: "bo", purpose: "ads", justification: "retarget last quarter's buyers" });
const boMeasure = declarePurpose(lab, { party: advertiser, analyst: "bo", purpose: "measurement", justification: "Q3 campaign lift" });
boMeasure
""")

code(r"""
const bo = { party: "advertiser", analyst: "bo" };
const measured = await cleanRoomQuery(lab, { template: lift, params: { startDay: 0, endDay: 27 }, ...bo, purpose: "measurement" });
measured
""")

code(r"""
const adsOnJoin = await attempt(() => cleanRoomQuery(lab, { template: lift, params: { startDay: 0, endDay: 27 }, ...bo, purpose: "ads" }));
adsOnJoin
""")

md(r"""
**Deny wins over allow.** Besides the tags, a room can hold explicit deny rules in the Fides
shape (`matches: ANY | ALL | NONE | OTHER` over data uses, categories and subjects). Take a rule
that forbids every advertising use, measurement included, of data containing `user.financial`.
It refuses bo's measurement query even though both tag sets allow measurement, and that same
query ran a few cells above. The cell then removes the rule again, so the rest of the notebook
runs under the tags alone.
""")

code(r"""
lab.purpose.setRules([{ name: "no-ads-on-financial", dataUses: { matches: "ANY", values: ["ads"] }, dataCategories: { matches: "ANY", values: ["user.financial"] } }]);
const denyWins = await attempt(() => cleanRoomQuery(lab, { template: lift, params: { startDay: 0, endDay: 27 }, ...bo, purpose: "measurement" }));
lab.purpose.setRules([]);
denyWins
""")

code(r"""
// The label the result carries is the combination of the two stored labels.
const storedJoin = combineLabels(lab.purpose.store.labelFor("advertiser/exposures"), lab.purpose.store.labelFor("retailer/purchases"));
console.log(`stored exposures allow ${JSON.stringify(lab.purpose.store.labelFor("advertiser/exposures").allow)}, purchases allow ${JSON.stringify(lab.purpose.store.labelFor("retailer/purchases").allow)}`);
console.log(`→ the result may be used for ${JSON.stringify(storedJoin.allow)} only`);
""")

md(r"""
## 4 · The encryption gate: skipping the policy code does not yield plaintext

A policy check is only an `if` statement, and code can skip it. So the room also stores every
dataset *sealed*. The bytes are encrypted with AES-256-GCM under a fresh data key, and that key is
wrapped once for each purpose the owner allows, under a key-encryption key
`KEK(p) = HKDF(master, "kek" ‖ room ‖ p)`. The dataset id, its label and the wrap's purpose are all
bound in as associated data.

Here is what the store holds for the retailer's purchases:
""")

code(r"""
const sealedPurchases = lab.purpose.store.sealed("retailer/purchases");
console.log({ datasetId: sealedPurchases.datasetId, label: sealedPurchases.label.allow, ciphertextBase64Chars: sealedPurchases.ciphertext.length,
  wraps: sealedPurchases.wraps.map((w) => ({ purpose: w.purpose, wrappedKeyBase64: w.wrappedKey.slice(0, 16) + "…" })) });
""")

md(r"""
Now bypass the policy code and call the gate directly in several ways. The first three go to the
raw unwrap path or to the key service, each with a forged or mismatched grant. None of them
returns plaintext. The last row is the control: the analyst's genuine measurement grant, through
the same key service.
""")

code(r"""
function gateAttempts() {
  const out: { attempt: string; result: string; plaintext: string }[] = [];
  const tryIt = (attempt: string, f: () => Uint8Array) => {
    try {
      const bytes = f();
      out.push({ attempt, result: "released", plaintext: `${bytes.length} bytes` });
    } catch (e) {
      if (!isCleanRoomError(e)) throw e;
      out.push({ attempt, result: `${e.code}${e.details.cause ? ` (cause ${e.details.cause})` : ""}`, plaintext: "none" });
    }
  };
  const sealed = lab.purpose.store.sealed("retailer/purchases");
  const eveRequester = { party: "advertiser", analyst: "eve" };
  // 1. no policy code at all: ask the raw unwrap path for a "research" key — no wrap exists
  tryIt("raw unwrap for research (no policy code)", () => unwrapAndOpen(sealed, "research", new Uint8Array(32)));
  // 2. forged grant: bo's ads grant with the purpose edited to measurement (signature kept)
  const forged = { ...boAds, purpose: "marketing.advertising.measurement" };
  tryIt("key service, forged grant (purpose edited)", () => lab.purpose.keys.open(sealed, forged, bo));
  // 3. mismatched grant: bo's valid measurement grant presented by another analyst
  tryIt("key service, someone else's grant", () => lab.purpose.keys.open(sealed, boMeasure, eveRequester));
  // 4. valid grant, wrong purpose: bo's genuine ads grant on measurement-only data
  tryIt("key service, genuine ads grant", () => lab.purpose.keys.open(sealed, boAds, bo));
  // control: the genuine measurement grant
  tryIt("key service, genuine measurement grant (control)", () => lab.purpose.keys.open(sealed, boMeasure, bo));
  return out;
}
const gate = gateAttempts();
console.table(gate);
""")

md(r"""
The key service still runs a policy evaluation before it unwraps. To show that the *cryptography*
holds as well, the next cell works without any service. We hold a master secret openly (teaching
only) and seal `[safety]` data, then try to open it. The `ads` key-encryption key fails AES-GCM
authentication. Relabelling the wrap to claim it is an `ads` wrap also fails, because the purpose is
bound into the ciphertext. Only the `safety` key opens it.
""")

code(r"""
function keySeparation() {
  const rng = seededRng("notebook-03/gate-math");
  const authority = PurposeAuthority.generate("gatelab", rng);
  const master = rng.bytes(32);
  const keys = new PurposeKeyService({ roomId: "gatelab", masterSecret: master, policyPublicKey: authority.publicKey, taxonomy: tx });
  const secret = new TextEncoder().encode("fraud-ring report: 17 accounts");
  const sealed = keys.seal("safety-report", secret, makeLabel(tx, { purposes: ["safety"] }), rng);
  const rows: { attempt: string; result: string }[] = [];
  const tryIt = (attempt: string, f: () => Uint8Array) => {
    try { rows.push({ attempt, result: `opened: "${new TextDecoder().decode(f())}"` }); }
    catch (e) { if (!isCleanRoomError(e)) throw e; rows.push({ attempt, result: e.code }); }
  };
  tryIt("ads KEK on the safety wrap", () => unwrapAndOpen(sealed, "safety", deriveKek(master, "gatelab", "marketing.advertising")));
  const relabelled = { ...sealed, wraps: sealed.wraps.map((w) => ({ ...w, purpose: "marketing.advertising" })) };
  tryIt("wrap relabelled as ads, ads KEK", () => unwrapAndOpen(relabelled, "marketing.advertising", deriveKek(master, "gatelab", "marketing.advertising")));
  tryIt("safety KEK of another room", () => unwrapAndOpen(sealed, "safety", deriveKek(master, "otherroom", "safety")));
  tryIt("safety KEK (control)", () => unwrapAndOpen(sealed, "safety", deriveKek(master, "gatelab", "safety")));
  return rows;
}
const separation = keySeparation();
console.table(separation);
""")

md(r"""
## 5 · The audit log and the misuse review

Every call above went into the room's audit chain: uploads, grants, granted and refused queries.
Each entry records who, which purpose, the grant id, the template hash, the privacy cost and the
outcome. It never records identifiers or values before noise.

Next comes a second analyst, `eve`. She *shops for a purpose*. Refused for research, she tries
targeting, and then measurement without a grant. Each refusal is audited, and the misuse review
flags her.
""")

code(r"""
const eve = { party: "advertiser", analyst: "eve" };
declarePurpose(lab, { party: advertiser, analyst: "eve", purpose: "research", justification: "academic study of ad fatigue" });
const eve1 = await attempt(() => cleanRoomQuery(lab, { template: lift, params: { startDay: 0, endDay: 27 }, ...eve, purpose: "research" }));
declarePurpose(lab, { party: advertiser, analyst: "eve", purpose: "targeting", justification: "build a lookalike audience" });
const eve2 = await attempt(() => cleanRoomQuery(lab, { template: lift, params: { startDay: 0, endDay: 27 }, ...eve, purpose: "targeting" }));
const eve3 = await attempt(() => cleanRoomQuery(lab, { template: lift, params: { startDay: 0, endDay: 27 }, ...eve, purpose: "measurement" }));
console.table([eve1, eve2, eve3].map((r, i) => ({ attempt: i + 1, code: (r as { code: string }).code, message: (r as { message: string }).message.slice(0, 110) })));
eve3
""")

code(r"""
const report = audit(lab);
report
""")

md(r"""
The review flags `eve` for repeated denials and for switching purpose after a refusal. It also flags
`bo`, for his two typos and the `ads` query, and the seed table's requester, whose purposes changed
from row to row. A flag is a lead for a human reviewer, not a verdict. Purpose limitation works by
*deterring* misuse as well as blocking it: every attempt is recorded, and a pattern of attempts is
visible.
""")

code(r"""
console.log(`chain: ${report.verification.detail}`);
console.table(report.review.flags.map((f) => ({ kind: f.kind, who: f.who, detail: f.detail, entries: f.seqs.join(" ") })));
console.table(report.review.refused.map((r) => ({ seq: r.seq, who: r.who, action: r.action, purpose: r.purpose ?? "", code: r.errorCode ?? "" })));
""")

md(r"""
## 6 · Tampering: edit the room's SQLite file, and `audit()` names the entry

The log lives in the room's database. `lab.db` is the better-sqlite3 handle, and the table is
`purpose_audit_log`. Each row stores:
- its entry as canonical JSON;
- the previous row's hash and its own hash, SHA-256 over `{prev, entry}`;
- an HMAC of that hash under a key derived from the room's audit signing key.

Heads `{count, hash}` are signed with Ed25519 every 16 entries and whenever `audit()` runs.

The first attempt is an insider covering up eve's first refusal: they rewrite it as *granted*.
""")

code(r"""
type AuditRow = { seq: number; entry: string; prev_hash: string; hash: string; mac: string };
const readRows = (): AuditRow[] => lab.db.prepare("SELECT seq, entry, prev_hash, hash, mac FROM purpose_audit_log WHERE room_id = ? ORDER BY seq").all(lab.roomId) as AuditRow[];
const restoreRows = (rows: AuditRow[]) => lab.db.transaction(() => {
  lab.db.prepare("DELETE FROM purpose_audit_log WHERE room_id = ?").run(lab.roomId);
  const ins = lab.db.prepare("INSERT INTO purpose_audit_log (room_id, seq, entry, prev_hash, hash, mac) VALUES (?, ?, ?, ?, ?, ?)");
  for (const r of rows) ins.run(lab.roomId, r.seq, r.entry, r.prev_hash, r.hash, r.mac);
})();
const pristine = readRows();
const coverUp = report.review.refused.find((r) => r.who === "advertiser/eve")!.seq;
const before = pristine[coverUp]!.entry;
const after = before.replace('"outcome":"refused"', '"outcome":"granted"').replace(/"errorCode":"[A-Z_]+"/, '"errorCode":null');
lab.db.prepare("UPDATE purpose_audit_log SET entry = ? WHERE room_id = ? AND seq = ?").run(after, lab.roomId, coverUp);
console.log(`edited entry ${coverUp}:\n  before ${before.slice(0, 160)}…\n  after  ${after.slice(0, 160)}…`);
const modified = audit(lab);
modified
""")

code(r"""
console.log(`verification: ok=${modified.verification.ok}, first bad index ${modified.verification.firstBadIndex} (${modified.verification.problem}) — ${modified.verification.detail}`);
restoreRows(pristine);
console.log(`restored: ${lab.purpose.audit.verify().detail}`);
""")

md(r"""
A smarter insider also recomputes the public hashes from that entry to the end of the chain, so
every `prev`/`hash` link is consistent again. What they cannot recompute is the HMAC, because its
key derives from the audit signing key, which is held outside the database. Verification still
stops at the same entry and calls it *forged*.

The next cell then runs every kind of tampering the issue lists: modify, recomputed (forged),
delete, reorder, insert and truncate. Each runs against a copy of the pristine rows and is
restored afterwards.
""")

code(r"""
function rechain(rows: AuditRow[], from: number): AuditRow[] {
  const out = rows.map((r) => ({ ...r }));
  for (let i = from; i < out.length; i++) {
    const prev = i === 0 ? out[0]!.prev_hash : out[i - 1]!.hash;
    out[i]!.prev_hash = prev;
    out[i]!.hash = sha256Canonical({ prev, entry: JSON.parse(out[i]!.entry) });
  }
  return out;
}
const tamperings: Record<string, (rows: AuditRow[]) => AuditRow[]> = {
  modify: (rows) => rows.map((r) => (r.seq === coverUp ? { ...r, entry: after } : r)),
  "modify + recompute hashes": (rows) => rechain(rows.map((r) => (r.seq === coverUp ? { ...r, entry: after } : r)), coverUp),
  delete: (rows) => rows.filter((r) => r.seq !== coverUp),
  reorder: (rows) => rows.map((r) => (r.seq === coverUp ? { ...r, entry: rows[coverUp + 1]!.entry } : r.seq === coverUp + 1 ? { ...r, entry: rows[coverUp]!.entry } : r)),
  insert: (rows) => {
    const last = rows[rows.length - 1]!;
    const entry = { ...JSON.parse(last.entry), seq: last.seq + 1, action: "query", outcome: "granted", errorCode: null };
    const hash = sha256Canonical({ prev: last.hash, entry });
    return [...rows, { seq: last.seq + 1, entry: canonicalJson(entry), prev_hash: last.hash, hash, mac: "00".repeat(32) }];
  },
  truncate: (rows) => rows.slice(0, rows.length - 3),
};
const tamperResults = Object.entries(tamperings).map(([kind, f]) => {
  restoreRows(f(pristine));
  const v = lab.purpose.audit.verify();
  restoreRows(pristine);
  return { kind, ok: v.ok, firstBadIndex: v.firstBadIndex, problem: v.problem, detail: v.detail.slice(0, 90) };
});
console.table(tamperResults);
console.log(`after restoring: ${lab.purpose.audit.verify().detail}`);
""")

md(r"""
Truncation is the hardest case, because the remaining chain is internally consistent. It is caught
by the signed heads: a head signed earlier covers more entries than remain. Each `audit()` call
signs the current head, but only after the chain verifies, so a rewritten chain never gets a
signed head. A party that keeps the latest head it saw can therefore detect a rollback.

## 7 · Checks
""")

code(r"""
const seconds = (Date.now() - t0) / 1000;
const expectSeed = ["granted", "denied", "denied", "granted"];
if (JSON.stringify(seedTable.rows.map((r) => r.outcome)) !== JSON.stringify(expectSeed)) throw new Error("the seed's four-row table did not hold");
if (!seedTable.allMatch) throw new Error("a purpose-table row disagreed with the seed");
if (!seedTable.rows.every((r) => (r.outcome === "granted") === (r.plaintextIntact === true))) throw new Error("granted rows must release intact plaintext, denied rows none");
if ((typo as { code: string }).code !== "PURPOSE_UNKNOWN" || !/closest valid names: measurement/.test((typo as { message: string }).message)) throw new Error("a misspelt purpose must fail with the closest valid names");
if ((epiTypo as { code: string }).code !== "PURPOSE_UNKNOWN") throw new Error("a typo of an added data use must fail");
if (propagationViolations !== 0 || !neverLooser) throw new Error("label propagation: the derived label must be exactly as strict as its inputs combined");
if (JSON.stringify(joined.allow) !== JSON.stringify(["marketing.advertising.measurement"])) throw new Error("joined label must allow measurement only");
if (measured.purpose !== "marketing.advertising.measurement" || measured.rows.length === 0) throw new Error("the measurement query should run");
if ((denyWins as { code?: string }).code !== "PURPOSE_DENIED" || !/deny rule/.test((denyWins as { message: string }).message)) throw new Error("an explicit deny rule must win over allow tags");
if ((adsOnJoin as { code: string }).code !== "PURPOSE_DENIED") throw new Error("ads over the join must be refused (purchases allow measurement only)");
if (gate.slice(0, 4).some((g) => g.plaintext !== "none")) throw new Error("a forged or mismatched grant released plaintext");
if (gate[0]!.result !== "KEY_RELEASE_DENIED" || !gate.slice(1, 4).every((g) => g.result.startsWith("KEY_RELEASE_DENIED"))) throw new Error("the gate must refuse with KEY_RELEASE_DENIED");
if (gate[4]!.result !== "released") throw new Error("the genuine measurement grant should open the data");
if (separation.slice(0, 3).some((r) => r.result !== "CRYPTO_DECRYPT_FAILED")) throw new Error("a KEK for another purpose or room must fail AES-GCM authentication");
if (!separation[3]!.result.startsWith("opened")) throw new Error("the right KEK should open the data");
if (![eve1, eve2, eve3].every((r) => (r as { ok?: boolean }).ok === false)) throw new Error("eve's requests should all be refused");
const flagKinds = report.review.flags.filter((f) => f.who === "advertiser/eve").map((f) => f.kind);
if (!flagKinds.includes("repeated_denials") || !flagKinds.includes("purpose_switching")) throw new Error("the misuse review should flag eve for repeated denials and purpose switching");
if (!report.verification.ok) throw new Error("the untouched chain must verify");
if (modified.verification.ok || modified.verification.firstBadIndex !== coverUp || modified.verification.problem !== "modified") throw new Error("modification must be detected at the edited entry");
const byKind = Object.fromEntries(tamperResults.map((r) => [r.kind, r]));
if (byKind["modify + recompute hashes"].firstBadIndex !== coverUp || byKind["modify + recompute hashes"].problem !== "forged") throw new Error("recomputed hashes must be caught by the MAC at the same entry");
if (byKind.delete.firstBadIndex !== coverUp || byKind.delete.problem !== "missing") throw new Error("deletion must be detected at the deleted entry");
if (byKind.reorder.firstBadIndex !== coverUp || byKind.reorder.problem !== "out_of_order") throw new Error("reordering must be detected at the first moved entry");
if (byKind.insert.firstBadIndex !== pristine.length || byKind.insert.problem !== "forged") throw new Error("insertion must be detected at the inserted entry");
if (byKind.truncate.ok || byKind.truncate.problem !== "truncated" || byKind.truncate.firstBadIndex !== pristine.length - 3) throw new Error("truncation must be detected by the signed head");
if (!lab.purpose.audit.verify().ok) throw new Error("restored chain must verify again");
console.log(`ran in ${seconds.toFixed(1)} s (timings are measured by npm run bench, not asserted here)`);
console.log(`all checks passed in ${seconds.toFixed(1)} s`);
""")

write()
