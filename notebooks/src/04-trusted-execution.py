#!/usr/bin/python3
"""Generate notebooks/04-trusted-execution.ipynb. Run from the repo root:

    /usr/bin/python3 notebooks/src/04-trusted-execution.py

Writes the notebook without outputs; CI executes it (scripts/run-notebooks.py).
"""
from nbgen import notebook

md, code, write = notebook("04-trusted-execution.ipynb")

md(r"""
# 04 · Trusted execution: attestation, key release — and what an enclave does *not* do

**What it teaches.** The seed's "hardware vault": even the *operator* of the clean room should not
see the data; only attested code may. You will

1. upload two companies' tables in **enclave mode** — the operator stores only ciphertext;
2. launch an enclave whose **measurement** (SHA-384 over engine, config, workload code and the
   approved template hashes, laid out as Nitro-style PCRs) each data owner computes *on its own*;
3. watch each owner's **verifier** check the signed **attestation document** (pinned root,
   signature, fresh nonce, no replay, time window, debug off, measurement, channel key, purpose)
   and **release its data key** sealed to the enclave's attested X25519 key;
4. see the key **refused** when the code changes by one byte, when an unapproved template is
   measured in, for a debug enclave, a replayed document, a wrong nonce and a man in the middle;
5. put the **operator's view** beside the **enclave's view**;
6. run the clean-room query **inside** the enclave and get the same released rows as the plain path;
7. learn the seed's misconception: **a TEE that returns exact small counts is not private** —
   a differencing attack succeeds against an honest, attested enclave until thresholds and DP are on;
8. measure what the enclave path **costs** against the plain path.

**Who it is for.** Privacy engineers and researchers deciding whether (and how) confidential
computing belongs in a clean room; teachers who want every claim shown by a cell.

**How long.** Under a minute to run, 20 minutes to read.

**Teaching mode — not private.** Every random draw comes from a *seeded* generator, so the numbers
are reproducible and every result says `rngMode: "seeded"`. The enclave is **simulated**: the
cryptography (Ed25519 signatures, SHA-384 measurements, X25519 + HKDF + AES-GCM key sealing) is real;
hardware isolation is modelled by a class with private fields in the same process. Read the module
header of `kernel-lib/src/enclave-room.ts` for exactly what is and is not protected.
""")

md(r"""
## 1 · Two companies, matched by PSI, uploading in enclave mode

Same study as notebook 02: an advertiser (who saw the ad) and a retailer (who bought). PSI gives both
sides a common pseudonym (`join_key`) per matched customer. Then each owner calls `upload(lab, { …, sealing: "enclave" })`:
the table is validated and serialized **on the owner's side**, kept there, and the operator receives
an owner-sealed blob (AES-256-GCM under a key only the owner holds) plus metadata (schema, row count,
fingerprint). The room's purpose gate still labels the blob with its allowed purposes.
""")

code(r"""
import {
  openLab, approveTemplate, upload, addParty, psiMatch, declarePurpose, cleanRoomQuery, budget, audit, attempt,
  display, seededRng, generateStudy, liftTemplate, liftSchemas, liftRules, attestEnclave
} from "@cleanroom-lab/kernel";
import {
  enclaveRoomViews, operatorHoldings, attestationLab, demoAttestationRefusals, demoOperatorVsEnclaveView,
  demoDifferencingAttack, measureEnclaveCost, demoCohortWorkload, demoPeople, peopleCsv
} from "@cleanroom-lab/kernel/labs";

const study = generateStudy({ seed: "nb04", advertiserRows: 8000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const lab = openLab({ store: ":memory:", room: "tee-room", rng: { seed: "nb04" }, budget: { epsilon: 6 } });
const adv = addParty(lab, { party: "advertiser" }), ret = addParty(lab, { party: "retailer" });
const m = await psiMatch(lab, { a: { party: adv, rows: study.exposures }, b: { party: ret, rows: study.purchases }, threads: 1 });
console.log(`matched ${m.matchReport.intersectionSize} customers; advertiser rows with a join key: ${m.joinedA.length}`);
""")

code(r"""
const schemas = liftSchemas(), rules = liftRules(100);
const upA = await upload(lab, { party: adv, name: "exposures", rows: m.joinedA, sealing: "enclave", schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures });
const upR = await upload(lab, { party: ret, name: "purchases", rows: m.joinedB, sealing: "enclave", schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases });
declarePurpose(lab, { party: adv, analyst: "bo", purpose: "measurement", justification: "campaign lift inside the enclave" });
for (const u of [upA, upR]) console.log(`${u.owner}/${u.name}: ${u.rows} rows, purposes ${u.purposes.join(", ")}; the operator stores ${u.operatorHoldsBytes} bytes of owner-sealed ciphertext`);
""")

md(r"""
Both owners approve one lift template (test vs control, threshold 100, no noise yet — we compare it
with the plain path below) and a noised variant (ε 0.5 per aggregate). Without noise, every released
row needs at least 100 people on each side: 100 exposed people, and 100 people with purchases in the
window (the retailer's rule counts its own people). A breakdown by region would leave fewer than 100
buyers in some control cells, and those cells would be suppressed. Approved template hashes are part
of the enclave's measurement: only code that can run *exactly these* queries will get a key.
""")

code(r"""
const tExact = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 100 });
const tNoised = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5", threshold: 100 });
const approvals = [tExact, tNoised].flatMap((t) => [adv, ret].map((p) => approveTemplate(lab, { template: t, party: p, executor: "enclave" })));
approvals.filter((s) => s.approved).map((s) => s.templateHash)
""")

md(r"""
## 2 · Attestation and key release

`attestEnclave` launches an enclave from the lab's simulated hardware root. For each dataset, the
owner (i) computes the image it expects — from the published workload code and the approved hashes,
**not** from what the operator launched — (ii) protects its table for exactly that image and the
declared purpose with its own key service, (iii) issues a fresh nonce, (iv) verifies the signed
document the hardware returns, and (v) seals its data key to the X25519 key *inside* the document.
The rich output shows the document's fields, every verifier check, and what happened to the key.
""")

code(r"""
const att = await attestEnclave(lab, { purpose: "measurement" });
att
""")

code(r"""
console.log("operator launched image  ", att.imageSha384.slice(0, 32) + "…");
console.log("owners expected image    ", att.ownersExpectImageSha384.slice(0, 32) + "…");
console.log(att.owners.map((o) => `${o.owner}: ${o.outcome}`).join("; "));
console.log(Object.entries(att.pcrs).map(([i, v]) => `PCR${i} ${v.slice(0, 16)}…`).join("\n"));
""")

md(r"""
## 3 · One byte of code, one unapproved template, one debugger: no key

The operator now launches variants. `tamper: "code"` runs a workload that differs from the approved
one by **one byte** (`runInsideEnclave(w, 0)` → `runInsideEnclave(w, 5)`: it now echoes raw rows).
The hardware measures what it launches, so PCR0 changes and each owner's policy — pinned to the
image the owner computed — refuses. The same happens when the operator measures in a template no
owner approved, and for a debug enclave (a debugger can read enclave memory), which every verifier
refuses even though its measurement is the approved one.
""")

code(r"""
const byCode = await attestEnclave(lab, { purpose: "measurement", tamper: "code" });
byCode
""")

code(r"""
const byTemplate = await attestEnclave(lab, { purpose: "measurement", tamper: "template" });
const byDebug = await attestEnclave(lab, { purpose: "measurement", debug: true });
for (const [name, a] of [["one-byte code change", byCode], ["unapproved template measured in", byTemplate], ["debug enclave", byDebug]] as const)
  console.log(`${name.padEnd(34)} ${a.ok ? "RELEASED" : "refused"}  ${a.owners.map((o) => `${o.owner}: ${o.code} (${o.check})`).join(", ")}`);
byDebug
""")

md(r"""
**Defence off.** Why must each owner compute the image itself? Suppose the owners trusted the image
the *operator* says it launched (`ownersPin: "operatorClaim"`). In a second room with the same data,
the one-byte-changed enclave then gets both keys — and its "query result" carries raw rows of the
advertiser's table. With the defence on (the default), the same enclave is refused, as above.
""")

code(r"""
const trustingLab = openLab({ store: ":memory:", room: "trusting-room", rng: { seed: "nb04-trusting" } });
for (const p of ["advertiser", "retailer"]) addParty(trustingLab, { party: p });
await upload(trustingLab, { party: "advertiser", name: "exposures", rows: m.joinedA, sealing: "enclave", schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures });
await upload(trustingLab, { party: "retailer", name: "purchases", rows: m.joinedB, sealing: "enclave", schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases });
declarePurpose(trustingLab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "campaign lift, trusting owners" });
for (const p of ["advertiser", "retailer"]) approveTemplate(trustingLab, { template: tExact, party: p, executor: "enclave" });
const trusting = await attestEnclave(trustingLab, { purpose: "measurement", tamper: "code", ownersPin: "operatorClaim" });
const leakyResult: any = await cleanRoomQuery(trustingLab, { template: tExact, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement", executor: "enclave" });
console.log(`defence off: keys ${trusting.ok ? "RELEASED" : "refused"}; raw rows in the output: ${leakyResult.rawRows?.length ?? 0}`);
console.log(leakyResult.rawRows?.slice(0, 2));
const defended = await attestEnclave(trustingLab, { purpose: "measurement", tamper: "code" });
console.log(`defence on, same room: ${defended.ok ? "RELEASED" : "refused"} — ${defended.owners.map((o) => o.code).join(", ")}`);
""")

md(r"""
## 4 · The attestation lab: replay, wrong nonce, stale documents, man in the middle

A self-contained lab per scenario (one owner, one enclave, exactly one thing wrong) runs the same
real verifier. A replayed document that already obtained a key, a document answering another
challenge, a 10-minute-old document, a relay that forwards a genuine document but asks the owner to
seal to **its own** key, a relay that edits the key inside the signed document, a relay that keeps the
genuine grant and tries to open it, an enclave chained to a root the owner never pinned.
""")

code(r"""
const refusals = demoAttestationRefusals(seededRng("nb04-tamper"));
for (const s of refusals.scenarios) console.log(`${s.tamper.padEnd(12)} ${s.outcome.padEnd(9)} ${(s.code ?? "").padEnd(26)} ${s.scenario}`);
""")

code(r"""
// the man in the middle who swaps the channel key: the signed document names another key
display(attestationLab("mitmKey", seededRng("nb04-mitm")).display)
""")

code(r"""
display(attestationLab("replay", seededRng("nb04-replay")).display)
""")

md(r"""
## 5 · The enclave-backed clean-room query

`cleanRoomQuery(lab, { …, executor: "enclave" })` takes the same request as the plain query and walks the same road: purpose decision →
approval, plan and privacy cost → **key release to the attested enclave** (before anything is
charged, so a refused enclave costs no budget) → atomic budget charge → execution **inside** the
enclave, which recompiles the plan itself, checks each decrypted table against the fingerprint the
budget was charged for, bounds, noises and thresholds → audit. Only the released rows leave.
""")

code(r"""
const REQ = { params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" };
const inside = await cleanRoomQuery(lab, { template: tExact, ...REQ, executor: "enclave" });
inside
""")

md(r"""
The same query on the **plain path** (a second room where the operator holds the tables) releases
exactly the same rows: the enclave changes who can see the data, not the answer.
""")

code(r"""
const plainLab = openLab({ store: ":memory:", room: "plain-room", rng: { seed: "nb04-plain" }, budget: { epsilon: 6 } });
const pAdv = addParty(plainLab, { party: "advertiser" }), pRet = addParty(plainLab, { party: "retailer" });
await upload(plainLab, { party: pAdv, name: "exposures", rows: m.joinedA, schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures });
await upload(plainLab, { party: pRet, name: "purchases", rows: m.joinedB, schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases });
declarePurpose(plainLab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "campaign lift, plain path" });
for (const p of [pAdv, pRet]) approveTemplate(plainLab, { template: tExact, party: p });
const outside = await cleanRoomQuery(plainLab, { template: tExact, ...REQ });
// compare values, not key order (what leaves the enclave is canonical JSON: sorted keys)
const canon = (v: unknown): unknown => Array.isArray(v) ? v.map(canon) : v && typeof v === "object" ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, x]) => [k, canon(x)])) : v;
const sameRows = JSON.stringify(canon(outside.rows)) === JSON.stringify(canon(inside.rows));
console.log(`plain path rows: ${outside.rows.length}, enclave rows: ${inside.rows.length}, identical: ${sameRows}`);
""")

md(r"""
A noised query is charged to the budget only after both owners released their keys; a query under a
purpose the data is not tagged for is refused — by the purpose gate here, and independently by every
owner's verifier, because the purpose is inside the signed evidence.
""")

code(r"""
const noised = await cleanRoomQuery(lab, { template: tNoised, ...REQ, executor: "enclave" });
console.log(`charged: ${noised.charged?.text}; noise: ${noised.noise ? "yes" : "no"}`);
const wrongPurpose = await attestEnclave(lab, { purpose: "research" });
console.log(`enclave declaring "research": ${wrongPurpose.owners.map((o) => `${o.owner} ${o.code} (${o.check})`).join(", ")}`);
budget(lab)
""")

md(r"""
## 6 · The operator's view beside the enclave's view

What the operator holds in enclave mode: owner-sealed blobs at rest (behind its own purpose gate),
the KMS-protected ciphertexts, attestation documents, sealed keys and released outputs. Its attempts
are real calls with its own powers. The enclave's view lists the keys it holds and what it decrypted
— by size and digest, never contents.
""")

code(r"""
const views = enclaveRoomViews(lab);
console.log("OPERATOR", JSON.stringify(views.operatorView, null, 1).slice(0, 2500));
""")

code(r"""
console.log("ENCLAVE", JSON.stringify(views.enclaveView, null, 1));
""")

md(r"""
The operator even uses the strongest power it has: it mints itself a purpose grant and opens its own
purpose gate. In plain mode that yields the table; in enclave mode it yields the owner's ciphertext.
""")

code(r"""
const g = declarePurpose(lab, { party: "advertiser", analyst: "op", purpose: "measurement", justification: "operator curiosity" });
const opened = lab.purpose.authorizeQuery({ grant: g, requester: { party: "advertiser", analyst: "op" }, purpose: "measurement", inputs: [{ datasetId: "advertiser/exposures" }] });
const gateBytes = opened.tables["advertiser/exposures"];
console.log(new TextDecoder().decode(gateBytes).slice(0, 160) + "…");
const probeKeys = m.joinedA.slice(0, 50).map((r) => String(r.join_key));
const heldText = JSON.stringify(operatorHoldings(lab)) + new TextDecoder().decode(gateBytes);
const leaked = probeKeys.filter((k) => heldText.includes(k)).length;
console.log(`join keys of 50 customers found in what the operator holds: ${leaked}`);
""")

md(r"""
A second, self-contained illustration from the enclave layer (one owner, a cohort-count workload)
shows the same split, including the operator's failed attempts to open the sealed key with its own
key, to decrypt with a guessed key, to reuse a document, and to run an unmeasured template.
""")

code(r"""
const demoViews = demoOperatorVsEnclaveView(seededRng("nb04-views"));
console.table(demoViews.operatorView.attempts);
""")

md(r"""
## 7 · The seed's misconception: "it runs in a TEE, so the results are private"

Attestation decides **which code** may see the data. It says nothing about **what the output
reveals**. The attacker knows one person is the only platinum customer in the north, and asks two
approved, attested queries: converters(north) and converters(north, excluding platinum). Three
genuinely attested enclaves differ only in their measured release config: exact counts; a
threshold of 20 (both cohorts are large, so nothing is suppressed); threshold + discrete-Laplace
noise. In each of 40 rounds a fair coin picks whether she converted.
""")

code(r"""
const diff = demoDifferencingAttack(seededRng("nb04-diff"), { people: 400, trials: 40 });
for (const md of diff.modes)
  console.log(`${md.mode.padEnd(10)} attacker success ${(md.attackSuccessRate * 100).toFixed(0).padStart(3)}%` +
    (md.dpBound ? `  (ε-DP bound on success: ${(md.dpBound.maxSuccess * 100).toFixed(0)}%)` : "") + `  — ${md.verdict}`);
console.log(diff.lesson);
""")

md(r"""
## 8 · What the enclave path costs

Two measurements. First, the cost model of the enclave layer on one 20 000-person table: owner-side
encryption, attestation, verification + sealing, key intake, and the in-enclave run, each against the
plain run (medians of 5). Second, the lift query above: plain path vs enclave path with the keys
already released (the per-query cost), and a fresh attestation of both owners (the one-time cost).
A real TEE adds memory-encryption and enclave-transition costs a simulation cannot measure.
""")

code(r"""
const cost = measureEnclaveCost({ workload: demoCohortWorkload, input: "people", bytes: peopleCsv(demoPeople(20000, 1, seededRng("nb04-cost-data"))), params: { region: "north" }, repeats: 5 }, seededRng("nb04-cost"));
console.log(`plain run ${cost.plainMs} ms; enclave total ${cost.enclaveTotalMs} ms (×${cost.overheadRatio}); one-time ${cost.oneTimeMs} ms; per-query extra ${cost.perQueryExtraMs} ms`);
console.log(JSON.stringify(cost.phasesMs));
""")

code(r"""
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
const time = async (f: () => Promise<unknown>) => { const t0 = performance.now(); await f(); return performance.now() - t0; };
const plainMs: number[] = [], enclaveMs: number[] = [];
for (let i = 0; i < 3; i++) {
  plainMs.push(await time(() => cleanRoomQuery(plainLab, { template: tExact, ...REQ })));
  enclaveMs.push(await time(() => cleanRoomQuery(lab, { template: tExact, ...REQ, executor: "enclave" })));
}
const attestMs = await time(() => attestEnclave(lab, { purpose: "measurement" }));
console.log(`lift — plain ${median(plainMs).toFixed(1)} ms, enclave ${median(enclaveMs).toFixed(1)} ms per query (×${(median(enclaveMs) / median(plainMs)).toFixed(2)}); attest + release both owners ${attestMs.toFixed(1)} ms once`);
""")

md(r"""
## 8b · The enclave in its own OS process

So far the "enclave" was an object in this kernel's process: isolation by private fields only. Open
the room with `enclave: "process"` and each enclave is a separate OS process
(`scripts/enclave-host.mjs`, its own memory) that the operator reaches over a socket on 127.0.0.1
under the SecureChannel. The operator only relays: the owners' challenges, the signed attestation
document, the key grants (sealed to the enclave's attested X25519 key, opened only inside that
process), the owner-protected ciphertexts and the released result. The process measures the code
it loaded itself; the owners compute the image from the same published build and pin it. What it
still is not: separate hardware — same machine, same OS user, and a simulated hardware root.
""")

code(r"""
const procLab = openLab({ store: ":memory:", room: "tee-process", rng: { seed: "nb04" }, budget: { epsilon: 6 }, enclave: "process" });
for (const p of ["advertiser", "retailer"]) addParty(procLab, { party: p });
await upload(procLab, { party: "advertiser", name: "exposures", rows: m.joinedA, sealing: "enclave", schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures });
await upload(procLab, { party: "retailer", name: "purchases", rows: m.joinedB, sealing: "enclave", schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases });
declarePurpose(procLab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "campaign lift inside the enclave process" });
for (const p of ["advertiser", "retailer"]) approveTemplate(procLab, { template: tExact, party: p, executor: "enclave" });
const procAtt = await attestEnclave(procLab, { purpose: "measurement" });
const inProcess = await cleanRoomQuery(procLab, { template: tExact, ...REQ, executor: "enclave" });
const sameAsInside = JSON.stringify(canon(inProcess.rows)) === JSON.stringify(canon(inside.rows));
console.log(`enclave ${procAtt.moduleId}: owners ${procAtt.owners.map((o) => `${o.owner} ${o.outcome}`).join(", ")}`);
console.log(`rows from the enclave process: ${inProcess.rows.length}, identical to the in-process enclave's: ${sameAsInside}`);
const procRefused = await attestEnclave(procLab, { purpose: "measurement", tamper: "code" });
console.log(`an enclave process started with the one-byte-changed workload: ${procRefused.owners.map((o) => o.code).join(", ")}`);
procLab.close(); // stops the enclave process
""")

md(r"""
## 9 · The audit trail

Every enclave query is recorded by the purpose layer like a plain one (requester, purpose, grant,
template hash, datasets, privacy cost, outcome), in the same hash-chained, signed log.
""")

code(r"""
audit(lab, { limit: 12 })
""")

md(r"""
## Checks

Every claim above, as an assertion.
""")

code(r"""
const check = (cond: boolean, what: string) => { if (!cond) throw new Error("check failed: " + what); console.log("✓ " + what); };
check(att.ok && att.imageSha384 === att.ownersExpectImageSha384, "the approved enclave is the image both owners computed, and both released their keys");
check(att.display.checks.every((c) => c.status === "ok"), "every verifier check passed for the approved enclave");
check(!byCode.ok && byCode.owners.every((o) => o.code === "ATTESTATION_MEASUREMENT"), "a one-byte code change is refused on measurement");
check(!byTemplate.ok && byTemplate.owners.every((o) => o.code === "ATTESTATION_MEASUREMENT"), "an unapproved template measured in is refused");
check(!byDebug.ok && byDebug.owners.every((o) => o.code === "ATTESTATION_DEBUG"), "a debug enclave is refused");
check(trusting.ok && leakyResult.rawRows?.length > 0, "defence off (owners trust the operator's image claim): the changed code gets the keys and leaks raw rows");
check(!defended.ok && defended.owners.every((o) => o.code === "ATTESTATION_MEASUREMENT") && !("rawRows" in inside), "defence on: the changed code is refused and no raw row leaves the genuine enclave");
const sc = Object.fromEntries(refusals.scenarios.map((s) => [s.tamper, s]));
check(sc.none.outcome === "released", "the untampered attestation lab releases the key");
check(["replay", "nonce", "stale", "debug", "mitmKey", "mitmEdit", "mitmGrant", "purpose", "foreignRoot", "code"].every((t) => sc[t].outcome === "refused"),
  "replay, wrong nonce, stale, debug, both MITM variants, a kept grant, wrong purpose, foreign root and changed code are all refused");
check(sc.replay.code === "ATTESTATION_REPLAY" && sc.nonce.code === "ATTESTATION_NONCE" && sc.mitmKey.code === "ATTESTATION_KEY_MISMATCH", "each refusal names its check");
check(sameRows && inside.rows.length > 0, "the enclave releases exactly the plain path's rows");
check(procAtt.ok && sameAsInside, "an enclave in its own OS process gets the keys after attestation and releases the same rows");
check(!procRefused.ok && procRefused.owners.every((o) => o.code === "ATTESTATION_MEASUREMENT"), "an enclave process running changed code is refused on measurement");
check(noised.charged !== null && noised.noise !== null, "a noised enclave query is charged to the budget");
check(!wrongPurpose.ok && wrongPurpose.owners.every((o) => o.code === "ATTESTATION_PURPOSE"), "a purpose outside the data's tags is refused by the owners' verifiers");
check(views.operatorView.plaintextSeen === false && leaked === 0, "the operator holds no plaintext (no join key in anything it holds)");
check(views.enclaveView !== null && views.enclaveView.keysHeld.length === 2, "the enclave holds both owners' keys");
check(demoViews.operatorView.attempts.every((a) => a.result.startsWith("refused")), "every operator attempt in the demo view is refused");
const byMode = Object.fromEntries(diff.modes.map((x) => [x.mode, x]));
check(byMode.exact.attackSuccessRate >= 0.95, "differencing succeeds against exact counts from an attested enclave");
check(byMode.threshold.attackSuccessRate >= 0.95, "a threshold alone does not stop it (both cohorts are large)");
check(byMode.dp.attackSuccessRate < 0.85 && byMode.dp.attackSuccessRate < byMode.exact.attackSuccessRate, "threshold + DP noise brings the attacker near a coin flip");
check(cost.enclaveTotalMs > 0 && cost.oneTimeMs > 0 && median(enclaveMs) > 0, "the enclave path's cost was measured");
check(audit(lab).verification.ok, "the audit chain verifies");
""")

write()
