#!/usr/bin/python3
"""Generate notebooks/01-identity-mapping.ipynb (identity mapping: normalisation, crosswalk,
PSI, attacks on hashed identifiers, the encrypted channel). Run from the repo root:

    /usr/bin/python3 notebooks/src/01-identity-mapping.py

Writes the notebook without outputs; CI executes it (scripts/run-notebooks.py).
"""
from nbgen import notebook

md, code, write = notebook("01-identity-mapping.ipynb")

md(r"""
# 01 · Identity mapping: connecting "user A" to "user B" without handing over identifiers

**What it teaches.** Before two companies can measure anything together, they must agree which of
their records are the same person — without either one giving the other its customer list. This
notebook walks through the tools, each with what every party actually sees:

1. **normalisation** — one documented rule set, so `" Alice.Smith+ads@GoogleMail.com"` meets
   `alicesmith@gmail.com`; bad rows are rejected with a code that never echoes the value;
2. a **crosswalk through an identity provider** — each party gets pseudonyms for *its own*
   identifiers only, and a token only the clean room can join on; and how **graph decay** (expired
   cookies, new devices) erodes the match rate;
3. **private set intersection (PSI)** on ristretto255 in three modes — join keys, cardinality only,
   full intersection — and what each party learns in each;
4. three attacks, each succeeding against the naive construction and failing against the real one:
   the **dictionary attack** on hashed e-mails (*hashed is pseudonymous, not anonymous*), the
   **known-pair attack** on a naive `hashToScalar(x)·G` "PSI", and **membership inference** from
   cardinality answers, with the bound DP puts on it;
5. the **encrypted channel** the messages travel in, refusing tampered, replayed, reordered and
   pasted frames.

**Who it is for.** Data engineers and privacy engineers who will set up a match, and anyone who has
been told that "we only share hashed e-mails".

**How long.** Under a minute to run, about 25 minutes to read.

**Teaching mode — not private.** Every key and random draw comes from a seeded generator so the
numbers are reproducible — which means these runs are *not private*. Real runs use `"secure"`.
""")

code(r"""
import { openLab, generateStudy, psiMatch, attempt, seededRng, type Refusal } from "@cleanroom-lab/kernel";
import {
  normalizeEmail, normalizePhone, normalizeColumn, generateIdentityGraph, IdentityProvider, CrosswalkJoiner,
  crosswalk, runPsi, sha256Email, emailDictionary, dictionaryAttack, naivePsiBlind, realPsiBlind,
  knownPairAttack, cardinalityMembershipAttack, SecureChannel, randomScalar, x25519KeyPair, lineChart
} from "@cleanroom-lab/kernel/labs";
const refused = (r: unknown): r is Refusal => typeof r === "object" && r !== null && (r as Refusal).ok === false;
/** A normalisation result as table cells. */
const cells = (r: { ok: boolean; value?: string; code?: string }) => ({ normalised: r.value ?? "—", rejected: r.code ?? "" });
console.log("ready — seeded teaching mode (not private)");
""")

md(r"""
## 1 · Normalisation: the same rules on both sides

PSI matches exact byte strings, so both parties must turn every way of writing an address into one
canonical form *before* anything is hashed or blinded. The rules (documented in
`identity/normalize.ts`): trim and lowercase; exactly one `@` and a valid domain; drop `+tag`
sub-addresses; for Gmail, `googlemail.com` → `gmail.com` and dots in the local part are ignored.
Phones become E.164 (`+` country code and number).
""")

code(r"""
const emails = ["  Alice.Smith+ads@GoogleMail.com ", "ALICE.SMITH@gmail.com", "alicesmith@gmail.com", "bob+newsletter@Example.org",
  "b.o.b@example.org", "carol@example", "dave@@example.org", "not an email", ""];
console.table(emails.map((e) => ({ input: JSON.stringify(e), ...cells(normalizeEmail(e)) })));
const phones: [string, string][] = [["(415) 555-0134", "US"], ["+1 415 555 0134", "US"], ["1-415-555-0134", "US"], ["020 7946 0018", "GB"],
  ["0049 30 901820", "US"], ["555-0134", "US"], ["415-555-0134 ext 12", "US"]];
console.table(phones.map(([p, c]) => ({ input: p, country: c, ...cells(normalizePhone(p, { defaultCountry: c })) })));
""")

md(r"""
Only the Gmail rules remove dots (`b.o.b@example.org` stays as it is: other providers treat dots as
significant). A whole column is normalised row by row; rejected rows get `null` and a report of
**row number and code only** — the report is shown to the other party in the match summary, so it
must not leak the malformed value (which is often a real address with a typo).
""")

code(r"""
const messy = ["Eve.Adams@Example.com", "eve.adams@example.com ", "frank@@shop.net", "grace@localhost", "  ", "heidi(at)example.org", "ivan+promo@Example.com"];
const column = normalizeColumn(messy, "email");
console.log("values:", JSON.stringify(column.values));
console.log("rejections:", JSON.stringify(column.rejections));
const echoed = messy.filter((m) => m.trim() && JSON.stringify(column.rejections).includes(m.trim()));
console.log(`raw values echoed in the rejection report: ${echoed.length}`);
""")

md(r"""
## 2 · A crosswalk through an identity provider

The alternative to PSI is a trusted **identity provider** (LiveRamp- or InfoSum-style) holding an
*identity graph*: people → the e-mails, cookies and device ids each party has seen them by. Each
party sends the provider **its own** identifiers and gets back

* a **party pseudonym** `HMAC(K_party, person)` — stable for that party, different for every party,
  so two parties cannot join their pseudonyms with each other;
* a **collaboration token** — the collaboration id encrypted under a key only the clean room holds
  (sealed to the room's X25519 key), with a fresh nonce each time, so tokens cannot be joined either.

Only the clean room opens tokens and joins. Below: a graph of 1,000 people seen by an advertiser
and a publisher (60 % coverage each).
""")

code(r"""
const graph = generateIdentityGraph({ people: 1000, parties: ["advertiser", "publisher"], rng: seededRng("nb01/graph") });
const idp = new IdentityProvider(graph, { rng: seededRng("nb01/provider"), decay: 0 });
const advIds = graph.observations.advertiser!, pubIds = graph.observations.publisher!;
const advRes = idp.resolve("advertiser", advIds);
const pubRes = idp.resolve("publisher", pubIds);
const kinds = (ids: { type: string }[]) => ids.reduce((m, i) => ({ ...m, [i.type]: (m[i.type] ?? 0) + 1 }), {} as Record<string, number>);
console.log(`advertiser sends ${advIds.length} identifiers ${JSON.stringify(kinds(advIds))}; publisher sends ${pubIds.length} ${JSON.stringify(kinds(pubIds))}`);
console.table(advRes.pseudonyms.slice(0, 3).map((p, i) => ({ "advertiser's identifier (stays with it)": advIds[i]!.type, "pseudonym it gets back": p, "collaboration token": advRes.collaborationTokens[i]!.slice(0, 28) + "…" })));
""")

md(r"""
**Each party sees only its own pseudonyms.** As course authors we can look into the graph (nobody
in the room can) and check: for people both parties observed, the advertiser's pseudonym and the
publisher's pseudonym differ, no pseudonym value appears on both sides, and resolving the same
identifier twice gives two different tokens.
""")

code(r"""
const personOf = (party: string, id: { type: string; value: string }) => graph.index.get(`${party}|${id.type}:${id.value}`)!.person;
const advByPerson = new Map(advIds.map((id, i) => [personOf("advertiser", id), advRes.pseudonyms[i]!]));
const both = pubIds.map((id, i) => ({ person: personOf("publisher", id), pub: pubRes.pseudonyms[i]! })).filter((x) => advByPerson.has(x.person));
const samePseudonym = both.filter((x) => advByPerson.get(x.person) === x.pub).length;
const advSet = new Set(advRes.pseudonyms);
const sharedValues = pubRes.pseudonyms.filter((p) => advSet.has(p)).length;
const again = idp.resolve("advertiser", advIds.slice(0, 1)).collaborationTokens[0];
console.log(`people observed by both parties: ${both.length}`);
console.log(`…of which the two parties got the same pseudonym: ${samePseudonym}; pseudonym values shared across parties: ${sharedValues}`);
console.log(`same identifier resolved twice → same token? ${again === advRes.collaborationTokens[0]}`);
""")

md(r"""
The clean room receives the provider's token key sealed to its X25519 public key, opens every
token to a collaboration id (`cw_…`) and joins. A party holding the sealed key box but not the
room's secret key cannot open it; the provider refuses parties it does not know.
""")

code(r"""
const roomKeys = x25519KeyPair(seededRng("nb01/room-key"));
const keyBox = idp.sealRoomKey(roomKeys.publicKey);
const joiner = new CrosswalkJoiner(roomKeys.secretKey, roomKeys.publicKey, keyBox);
const advJoin = new Set(advRes.collaborationTokens.filter((t): t is string => t !== null).map((t) => joiner.joinId(t)));
const joinedInRoom = pubRes.collaborationTokens.filter((t): t is string => t !== null && advJoin.has(joiner.joinId(t))).length;
console.log(`the clean room joins ${joinedInRoom} people (ground truth: ${new Set(both.map((b) => b.person)).size} observed by both)`);
const partyKeys = x25519KeyPair(seededRng("nb01/nosy-party"));
const nosy = await attempt(() => new CrosswalkJoiner(partyKeys.secretKey, partyKeys.publicKey, keyBox));
const stranger = await attempt(() => idp.resolve("data-broker", advIds.slice(0, 5)));
console.log(`a party opening the room's key box: ${refused(nosy) ? nosy.code : "opened!"}; an unknown party asking the provider: ${refused(stranger) ? stranger.code : "answered!"}`);
const notInGraph = idp.resolve("advertiser", [{ type: "email", value: "nobody@nowhere.example" }]);
console.log(`an identifier the graph does not know: pseudonym ${notInGraph.pseudonyms[0]}, reason ${notInGraph.reasons[0]} (the value is not echoed)`);
stranger
""")

md(r"""
## 3 · Match rate vs graph decay

Identity graphs go stale: cookies expire, devices are replaced. `decay` is the share of cookies that
expired since the party observed them (and half that share of device ids); e-mails do not decay.
The same graph (same seed) at increasing decay:
""")

code(r"""
const decays = [0, 0.1, 0.2, 0.3, 0.5, 0.7, 0.9, 1];
const sweep = decays.map((d) => crosswalk({ people: 1000, decay: d, rng: { seed: "nb01/decay" } }));
console.table(sweep.map((r) => ({ decay: r.decay, "advertiser resolved": r.parties[0]!.resolved, expired: r.parties[0]!.expired, "matched people": r.matchedPeople, "match rate": Number(r.matchRate.toFixed(3)) })));
lineChart({
  title: "Crosswalk match rate vs identity-graph decay",
  x: { title: "decay (share of cookies expired)" }, y: { title: "share of jointly observed people matched", min: 0, max: 1 },
  data: sweep.map((r) => ({ x: r.decay, y: r.matchRate, series: "match rate" })),
})
""")

md(r"""
At full decay only people known to *both* parties by e-mail (or a surviving device id) still match.
PSI on e-mails has no graph to decay — but it only matches what both sides hold in the same form.

## 4 · PSI: what each party sees

The advertiser (2,000 exposure rows) and the retailer (its purchase rows) run ECDH PSI on
ristretto255: each party hashes its normalised e-mails to the group (RFC 9380) and raises them to
its own fresh secret key; only the doubly-blinded values `H(x)^ab` are compared. No e-mail, normalised
e-mail or hash crosses.

**Join-keys mode** (what the clean room needs): both parties learn a common pseudonym for each
matched record and attach it to their rows before upload; unmatched rows get no key.
""")

code(r"""
const study = generateStudy({ seed: "nb01/study", advertiserRows: 2000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const psiLab = openLab({ store: ":memory:", rng: { seed: "nb01/psi" } });
const jk = await psiMatch(psiLab, { a: { party: "advertiser", rows: study.exposures }, b: { party: "retailer", rows: study.purchases },
  mode: "joinKeys", rng: { seed: "nb01/psi-joinkeys" }, threads: 1 });
console.log("an advertiser row after PSI:", JSON.stringify(jk.joinedA![0]));
jk
""")

md(r"""
**Cardinality** and **intersection** modes reveal less. In cardinality mode the advertiser learns
only *how many* records match (the retailer returns the doubly-blinded values sorted, so positions
say nothing) and the retailer learns nothing; in intersection mode the advertiser learns *which* of
its records match and the retailer still learns nothing beyond the set sizes. The table is built
from each run's match report; the ground truth is computed in the clear by the course.
""")

code(r"""
const names = { a: "advertiser", b: "retailer" };
const runs = {
  joinKeys: jk,
  cardinality: await runPsi(study.exposures, study.purchases,
    { mode: "cardinality", rng: { seed: "nb01/psi-card" }, threads: 1, keepMessages: true, names: names }),
  intersection: await runPsi(study.exposures, study.purchases,
    { mode: "intersection", rng: { seed: "nb01/psi-int" }, threads: 1, keepMessages: true, names: names }),
};
const norm = (rows: { email: string }[]) => new Set(rows.map((r) => normalizeEmail(r.email)).filter((r) => r.ok).map((r) => (r as { value: string }).value));
const advEmails = norm(study.exposures), retEmails = norm(study.purchases);
const trueOverlap = [...advEmails].filter((e) => retEmails.has(e)).length;
const seen = Object.entries(runs).map(([mode, r]) => ({
  mode,
  "advertiser learns": r.joinKeysA ? `matching rows + keys (${r.matchReport.partyA.matchedRows})`
    : r.matchedRowsA ? `matching rows (${r.matchedRowsA.length})` : `count only (${r.matchReport.intersectionSize})`,
  "retailer learns": r.joinKeysB ? `matching rows + keys (${r.matchReport.partyB.matchedRows})` : "the other set's size",
  "true overlap": trueOverlap,
}));
console.table(seen);
console.log(`ground truth (normalised e-mails in both sets): ${trueOverlap}`);
const keysA = new Set(jk.joinedA!.map((r) => r.join_key)), keysB = new Set(jk.joinedB!.map((r) => r.join_key));
console.log(`join keys: ${keysA.size} distinct on the advertiser's side, ${keysB.size} on the retailer's, identical sets: ${keysA.size === keysB.size && [...keysA].every((k) => keysB.has(k))}`);
console.log(`e-mail column left in uploaded rows: ${jk.joinedA!.some((r) => "email" in r) || jk.joinedB!.some((r) => "email" in r)}`);
""")

md(r"""
**What crossed the wire.** Every protocol message is plain JSON (hex points). We scan every message
of the cardinality and intersection runs for *canaries* — each party's raw, normalised and SHA-256
hashed e-mails (a sample of 300 per side): none appears.
""")

code(r"""
const wire = JSON.stringify([runs.cardinality.messages, runs.intersection.messages]);
const canaries: string[] = [];
for (const row of [...study.exposures.slice(0, 300), ...study.purchases.slice(0, 300)]) {
  const n = normalizeEmail(row.email);
  canaries.push(row.email.trim(), ...(n.ok ? [n.value, sha256Email(n.value)] : []));
}
const leaked = canaries.filter((c) => wire.includes(c)).length;
console.table(runs.intersection.transcript.map((t) =>
  ({ step: t.step, from: t.from, to: t.to, kind: t.kind, elements: t.count, bytes: t.bytes, first: t.preview[0]!.slice(0, 16) + "…" })));
console.log(`${canaries.length} canaries, ${(wire.length / 1e6).toFixed(1)} MB of messages scanned: ${leaked} found`);
""")

md(r"""
## 5 · "Hashed is pseudonymous, not anonymous": the dictionary attack

A common "privacy-safe" practice is to exchange SHA-256 hashes of normalised e-mails. But anyone can
hash candidate addresses: common first/last-name patterns at the big providers produce a dictionary
in milliseconds. Below, 150 customers with common-name addresses (written messily — normalisation
makes the hashes meet anyway) are hashed and attacked with a 1,500-entry dictionary; then the same
customers go through PSI, and the attacker runs the same dictionary (SHA-256 **and** unkeyed
hash-to-group) against every value she sees in the PSI messages.
""")

code(r"""
const dict = emailDictionary({ limit: 1500 });
const pick = seededRng("nb01/victims");
// 150 distinct customers (distinct after normalisation: "james.smith@gmail.com" and "jamessmith@gmail.com" are one person)
const byNorm = new Map<string, string>();
while (byNorm.size < 150) { const c = dict[pick.int(dict.length)]!; const n = normalizeEmail(c); if (n.ok && !byNorm.has(n.value)) byNorm.set(n.value, c); }
const victimsClean = [...byNorm.values()];
const victims = victimsClean.map((v, i) => (i % 3 === 0 ? " " + v.toUpperCase() : i % 3 === 1 ? v.replace("@", "+promo@") : v));
const hashedUpload = victims.map((v) => sha256Email(v));
const onHashes = dictionaryAttack(hashedUpload, dict);
const psiRun = await runPsi(victims, dict.slice(0, 400),
  { mode: "intersection", rng: { seed: "nb01/psi-dict" }, threads: 1, keepMessages: true });
const psiValues = psiRun.messages!.flatMap((m) => m.message.encryptedElements);
const onPsi = dictionaryAttack(psiValues, dict);
console.table([
  { "attacker sees": "SHA-256 of each e-mail", values: onHashes.observed, "re-identified": onHashes.reidentified, rate: onHashes.rate },
  { "attacker sees": "PSI values H(x)^a, H(y)^b, H(x)^ab", values: onPsi.observed, "re-identified": onPsi.reidentified, rate: onPsi.rate },
]);
""")

md(r"""
## 6 · A naive "PSI" broken with one known pair

Why hash *to the group* instead of computing `hashToScalar(x)·G`? Because with the naive
construction every blinded value is `k·h(x)·G` for a **public** scalar `h(x)`. One known pair —
e.g. the attacker's own address in the victim's list, `(x₀, k·h(x₀)·G)` — gives
`k·h(c)·G = (h(c)/h(x₀)) · (k·h(x₀)·G)` for every dictionary candidate *c*, without knowing *k*.
With RFC 9380 hash-to-group the discrete log of `H(x)` is unknown and the same algebra finds nothing.
""")

code(r"""
const victimKey = randomScalar(seededRng("nb01/victim-key"));
const naive = await naivePsiBlind(victimsClean, victimKey);
const real = await realPsiBlind(victimsClean, victimKey);
const onNaive = await knownPairAttack(naive, { element: victimsClean[0]!, blinded: naive[0]! }, dict);
const onReal = await knownPairAttack(real, { element: victimsClean[0]!, blinded: real[0]! }, dict);
console.table([
  { construction: "naive  (k·hashToScalar(x))·G", observed: onNaive.observed, "re-identified (besides the known pair)": onNaive.reidentified, rate: Number(onNaive.rate.toFixed(3)) },
  { construction: "real   k·H(x), RFC 9380 hash-to-group", observed: onReal.observed, "re-identified (besides the known pair)": onReal.reidentified, rate: onReal.rate },
]);
""")

md(r"""
## 7 · Cardinality is not nothing: membership inference

Cardinality mode reveals only a count — but a count is a query. An advertiser who runs it twice,
with a probe set *S* and with *S* ∪ {target}, learns whether the target is a customer of the
retailer from the difference. A minimum set size does not help (the attacker pads with dummies).
What bounds the attack is releasing the count with ε-DP noise (possible when a third party — the
clean room, over join keys — computes it): then no attacker can be right more often than
e^(2ε) / (1 + e^(2ε)) over the two queries. 400 worlds per defence, the target a customer in half of them;
the first row also runs the real PSI protocol (fresh keys every session) for a few worlds.
""")

code(r"""
const customers = dict.slice(400, 700);
const probe = dict.slice(700, 740);
const target = customers[17]!;
const attack = (defense: any, trials = 400, oracle: "exact" | "psi" = "exact", seed = JSON.stringify(defense)) =>
  cardinalityMembershipAttack({ victim: customers, probe: probe, target: target, defense: defense, trials: trials, oracle: oracle, rng: seededRng("nb01/mia/" + seed + oracle) });
const viaPsi = await attack({ kind: "none" }, 6, "psi");
const none = await attack({ kind: "none" });
const minSize = await attack({ kind: "minSetSize", min: 100 });
const eps = [0.1, 0.25, 0.5, 1, 2];
const dp = [] as Awaited<ReturnType<typeof attack>>[];
for (const e of eps) dp.push(await attack({ kind: "dp", epsilon: String(e) }));
console.table([
  { defence: "none (real PSI, 6 worlds)", success: viaPsi.successRate, bound: viaPsi.bound, padded: viaPsi.paddedWith },
  { defence: "none", success: none.successRate, bound: none.bound, padded: none.paddedWith },
  { defence: "minimum set size 100", success: minSize.successRate, bound: minSize.bound, padded: minSize.paddedWith },
  ...dp.map((r, i) => ({ defence: `DP count, ε = ${eps[i]}`, success: r.successRate, bound: Number(r.bound.toFixed(3)), padded: r.paddedWith })),
]);
lineChart({
  title: "Membership inference from two cardinality answers",
  x: { title: "ε of each DP count", log: true }, y: { title: "attacker success", min: 0.4, max: 1 },
  data: [...dp.map((r, i) => ({ x: eps[i]!, y: r.successRate, series: "attacker" })), ...dp.map((r, i) => ({ x: eps[i]!, y: r.bound, series: "bound e^2ε/(1+e^2ε)" }))],
  dashed: ["bound e^2ε/(1+e^2ε)"],
})
""")

md(r"""
## 8 · The encrypted channel

PSI messages (and everything else between participants) travel over an encrypted channel:
X25519 key agreement with a fresh ephemeral key per side, HKDF-SHA256 bound to the handshake
transcript with one key per direction, and AES-256-GCM frames whose nonce is the direction and a
sequence number and whose associated data binds session, direction, sequence and purpose. The
handshake messages are public; both ends compute the same transcript hash.
""")

code(r"""
const chRng = seededRng("nb01/channel");
const adv = SecureChannel.initiate({ party: "advertiser", rng: chRng.fork("advertiser") });
const ret = SecureChannel.accept(adv.hello, { party: "retailer", rng: chRng.fork("retailer") });
adv.channel.complete(ret.hello);
const enc = new TextEncoder(), dec = new TextDecoder();
const frame0 = adv.channel.seal(enc.encode(JSON.stringify({ kind: "psi.request", elements: 2000 })), "psi.request");
console.log("hello (public):", JSON.stringify(adv.hello));
console.log(`transcript hash — advertiser ${adv.channel.transcriptHash.slice(0, 16)}…, retailer ${ret.channel.transcriptHash.slice(0, 16)}…`);
console.log("retailer opens frame 0:", dec.decode(ret.channel.open(frame0)));
frame0
""")

md(r"""
An active attacker on the network tries every trick. Each is refused with a typed error — and a
refused frame does not advance the receiver, so the genuine frame still opens afterwards:
""")

code(r"""
const frame1 = adv.channel.seal(enc.encode("frame 1"), "psi.request");
const frame2 = adv.channel.seal(enc.encode("frame 2"), "psi.request");
const flip = (s: string) => (s[5] === "A" ? s.slice(0, 5) + "B" + s.slice(6) : s.slice(0, 5) + "A" + s.slice(6));
const other = SecureChannel.initiate({ party: "advertiser", rng: chRng.fork("other-a") });
const otherRet = SecureChannel.accept(other.hello, { party: "retailer", rng: chRng.fork("other-r") });
other.channel.complete(otherRet.hello);
const trials: [string, () => Uint8Array][] = [
  ["ciphertext modified", () => ret.channel.open({ ...frame1, ciphertext: flip(frame1.ciphertext) })],
  ["purpose relabelled", () => ret.channel.open({ ...frame1, purpose: "marketing.targeting" })],
  ["frame 2 delivered before frame 1", () => ret.channel.open(frame2)],
  ["frame reflected back to its sender", () => adv.channel.open(frame1)],
  ["frame pasted into another session", () => otherRet.channel.open(frame1)],
  ["genuine frame 1", () => ret.channel.open(frame1)],
  ["frame 1 replayed", () => ret.channel.open(frame1)],
  ["genuine frame 2", () => ret.channel.open(frame2)],
];
const outcomes: { attempt: string; outcome: string }[] = [];
let lastRefusal: Refusal | null = null;
for (const [name, call] of trials) {
  const r = await attempt(call);
  if (refused(r)) lastRefusal = r;
  outcomes.push({ attempt: name, outcome: refused(r) ? `refused: ${r.code}` : `opened: "${dec.decode(r as Uint8Array)}"` });
}
console.table(outcomes);
lastRefusal
""")

md(r"""
`runPsi(..., { channel: true })` carries every PSI message over such a channel: what the receiver
processes is what came out of the channel. The points travel packed (32 bytes each, no hex), so an
encrypted frame is about half the size of the message's JSON view (64 hex characters per point).
""")

code(r"""
const overChannel = await runPsi(study.exposures.slice(0, 300), study.purchases.slice(0, 300),
  { mode: "joinKeys", channel: true, rng: { seed: "nb01/psi-channel" }, threads: 1, names: names });
console.table(overChannel.transcript.map((t) => ({ step: t.step, from: t.from, to: t.to, kind: t.kind, points: t.count, "JSON view bytes": t.bytes, "encrypted frame bytes": t.channelFrameBytes })));
console.log(`channel transcript hash: ${overChannel.matchReport.channelTranscriptHash}; matched ${overChannel.matchReport.intersectionSize}`);
""")

md(r"""
## Checks

Every claim above, asserted:
""")

code(r"""
const check = (cond: boolean, claim: string) => { if (!cond) throw new Error("claim failed: " + claim); console.log("✓ " + claim); };
const ok = (r: { ok: boolean; value?: string }) => r.value ?? null;
check(ok(normalizeEmail(emails[0]!)) === "alicesmith@gmail.com" && ok(normalizeEmail(emails[1]!)) === "alicesmith@gmail.com" && ok(normalizeEmail(emails[3]!)) === "bob@example.org", "case, whitespace, plus-addressing and Gmail dots normalise to one form");
check(ok(normalizeEmail("b.o.b@example.org")) === "b.o.b@example.org", "dots are kept outside Gmail");
check(normalizePhone("(415) 555-0134").ok && ok(normalizePhone("(415) 555-0134")) === "+14155550134" && ok(normalizePhone("020 7946 0018", { defaultCountry: "GB" })) === "+442079460018", "phones normalise to E.164");
check(column.rejections.length === 4 && column.rejections.every((r) => Object.keys(r).join() === "row,code") && echoed.length === 0, "rejections carry row and code only, never the value");
check(both.length > 100 && samePseudonym === 0 && sharedValues === 0, "each party sees only its own pseudonyms: none shared across parties");
check(again !== advRes.collaborationTokens[0], "collaboration tokens differ on every resolution");
check(joinedInRoom === new Set(both.map((b) => b.person)).size, "the clean room joins exactly the people both parties observed (no decay)");
check(refused(nosy) && nosy.code === "CRYPTO_DECRYPT_FAILED" && refused(stranger) && stranger.code === "CROSSWALK_DENIED", "only the clean room opens the key box; unknown parties are refused");
check(sweep[0]!.matchRate === 1 && sweep.every((r, i) => i === 0 || r.matchRate <= sweep[i - 1]!.matchRate) && sweep[sweep.length - 1]!.matchRate < 0.6, "match rate falls as the graph decays");
check(Object.values(runs).every((r) => r.matchReport.intersectionSize === trueOverlap), "all three PSI modes find the true overlap");
check(runs.cardinality.joinKeysA === null && runs.cardinality.matchedRowsA === null && runs.cardinality.matchReport.partyA.matchedIdentifiers === null && runs.cardinality.matchReport.partyB.matchedIdentifiers === null, "cardinality mode reveals only the count");
check(runs.intersection.matchedRowsA !== null && runs.intersection.joinKeysB === null && runs.intersection.matchReport.partyB.matchedIdentifiers === null, "intersection mode: the advertiser learns which rows, the retailer nothing");
check(keysA.size === trueOverlap && keysA.size === keysB.size && [...keysA].every((k) => keysB.has(k)), "join-keys mode gives both parties the same keys for exactly the matches");
check(!jk.joinedA!.some((r) => "email" in r) && !jk.joinedB!.some((r) => "email" in r), "uploaded rows carry join keys, not e-mails");
check(leaked === 0 && canaries.length > 1000, "no raw, normalised or hashed e-mail appears in any PSI message");
check(onHashes.rate === 1, "the dictionary re-identifies every plainly hashed e-mail");
check(onPsi.reidentified === 0 && onPsi.observed > 500, "the same dictionary finds nothing in PSI messages");
check(onNaive.rate > 0.95 && onReal.reidentified === 0, "one known pair breaks naive hashToScalar(x)·G; the real construction resists");
check(viaPsi.successRate === 1 && none.successRate === 1 && minSize.successRate === 1 && minSize.paddedWith > 0, "cardinality membership inference works without DP, also through the real protocol and despite a minimum set size");
check(dp.every((r) => r.successRate <= r.bound + 3 * Math.sqrt(0.25 / r.trials)) && dp[0]!.successRate < 0.65, "with DP counts the attacker stays under e^2ε/(1+e^2ε)");
check(adv.channel.transcriptHash === ret.channel.transcriptHash, "both channel ends derive the same transcript hash");
check(outcomes.map((o) => o.outcome.split(":")[0]).join() === "refused,refused,refused,refused,refused,opened,refused,opened", "tampering, relabelling, reordering, reflection, cross-session paste and replay are refused; genuine frames open");
check(outcomes[0]!.outcome.endsWith("CHANNEL_TAMPERED") && outcomes[2]!.outcome.endsWith("CHANNEL_REORDER") && outcomes[4]!.outcome.endsWith("CHANNEL_WRONG_SESSION") && outcomes[6]!.outcome.endsWith("CHANNEL_REPLAY"), "each refusal has its typed error code");
check(typeof overChannel.matchReport.channelTranscriptHash === "string" && overChannel.transcript.every((t) => (t.channelFrameBytes ?? 0) > 32 * t.count && (t.channelFrameBytes ?? Infinity) < t.bytes), "PSI runs over the encrypted channel, its points packed");
""")

write()
