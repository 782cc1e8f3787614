#!/usr/bin/python3
"""Generate notebooks/13-crosswalks.ipynb (outputs cleared; CI executes it).

    /usr/bin/python3 notebooks/src/13-crosswalks.py
"""
from nbgen import notebook

md, code, write = notebook("13-crosswalks.ipynb")

md(r"""
# 13 · Cross-platform identity without a central graph: decentralized crosswalks

**What it teaches.** Three companies know some of the same people, each under its own record ids
and e-mails typed their own way. They want to match records pair by pair. There are two ways to
build that:
- a **central identity provider** (LiveRamp-, InfoSum-style; notebook 01's crosswalk) holds one
  identity graph: every party's identifiers, linked per person;
- **decentralized crosswalks**: every *pair* of parties runs its own PSI and keeps its own
  pairwise pseudonyms. No single place holds the graph.

Both match the same records. They differ in what a thief gets. We breach each design and run the
same linking attack against what was stolen, with a positive control (pairwise tables keyed on
hashed e-mails, where the attack works).

In order:
1. the world and its ground truth;
2. the central provider, working;
3. one PSI per pair; each party's store;
4. why a pairwise pseudonym means nothing outside its pair;
5. the breach: the central graph vs one party's tables;
6. the linking attack across pairs: central, pairwise, hashed e-mails;
7. what decentralized crosswalks do not solve;
8. checks.

**Who it is for.** Identity and privacy engineers choosing between an identity provider and
pairwise matching. **How long.** About 15 minutes to read; it runs in well under a minute.

**Teaching mode — not private.** Everything is seeded (`rng: { seed }`), so keys and pseudonyms can
be recomputed from the seed. That makes the numbers repeatable, and it also means nothing here is
private. Real use takes the secure default.
""")

code(r"""
import { seededRng } from "@cleanroom-lab/kernel";
import {
  pairwiseWorld, pairwiseCrosswalk, centralGraphOf, breachCentral, breachPairwise,
  crossPairLinkingAttack, centralLinkingAttack, IdentityProvider
} from "@cleanroom-lab/kernel/labs";

const t0 = Date.now();
const PARTIES = ["retailer", "publisher", "bank"];
const world = pairwiseWorld({ people: 1500, parties: PARTIES, coverage: 0.6, rng: seededRng("nb13-world") });
// ground truth (no party has it): who is held by whom
const personOf = (party: string, recordId: string) => world.truth.get(`${party}/${recordId}`)!;
const holders = new Map<number, string[]>();
for (const p of PARTIES) for (const r of world.records[p]!) holders.set(personOf(p, r.recordId), [...(holders.get(personOf(p, r.recordId)) ?? []), p]);
const trueOverlap = (a: string, b: string) => [...holders.values()].filter((h) => h.includes(a) && h.includes(b)).length;
console.table(PARTIES.map((p) => ({ party: p, records: world.records[p]!.length, "first record id": world.records[p]![0]!.recordId, "(e-mail)": "its own spelling, not shown" })));
console.log(`people held by ≥ 2 parties: ${[...holders.values()].filter((h) => h.length >= 2).length}; by all three: ${[...holders.values()].filter((h) => h.length === 3).length}`);
""")

md(r"""
## 2 · The central identity provider

The provider holds the graph: each party's identifiers, resolved to a person. Each party sends it
its own identifiers and gets back party-specific pseudonyms and sealed tokens only the clean room
can join (notebook 01). For this world the graph is built from the same records.
""")

code(r"""
const graph = centralGraphOf(world);
const idp = new IdentityProvider(graph, { rng: seededRng("nb13-idp") });
const resolved = PARTIES.map((p) => ({ party: p, sent: graph.observations[p]!.length, resolved: idp.resolve(p, graph.observations[p]!).resolved }));
console.table(resolved);
console.log(`the provider's graph: ${graph.index.size} identifiers of ${new Set([...graph.index.values()].map((e) => e.person)).size} people, all parties in one place`);
""")

md(r"""
## 3 · One PSI per pair

Every pair of parties runs ECDH-PSI in joinKeys mode (notebook 01): each side blinds its own
e-mails with a fresh secret key, and both derive `jk = HKDF(H(email)^ab, session id, "pair/A|B")`
for the people they share. Each party stores, per peer, its own record ids with that pair's
pseudonym. Nothing else is kept anywhere: there is no graph to steal. Here the parties of each pair
run in this kernel over an in-process link. `test/identity/pairwise-processes.test.ts` runs the
same crosswalk with each party of each pair as its own OS process (`scripts/psi-party.mjs`; six processes for three pairs) over sockets
on 127.0.0.1, and checks the same properties.
""")

code(r"""
const cw = await pairwiseCrosswalk(world, { rng: { seed: "nb13-pairs" }, threads: 1 });
console.table(cw.pairs.map((p) => ({ pair: p.pair, matched: p.matched, truth: trueOverlap(p.a, p.b), session: p.sessionId!.slice(0, 12) + "…" })));
console.table(PARTIES.map((p) => ({ party: p, tables: cw.stores[p]!.map((t) => `${t.peer}: ${t.rows.length} rows`).join("; "), sampleRow: JSON.stringify(cw.stores[p]![0]!.rows[0]) })));
""")

md(r"""
## 4 · A pairwise pseudonym means nothing outside its pair

Take the people all three parties hold. Each has one pseudonym in each pair. `jk_AB` comes from
H(x)^ab and `jk_AC` from H(x)^ac, with different session salts. Telling that they belong to the same
person means solving a Decisional Diffie-Hellman problem on ristretto255. We count how many
pseudonyms two pairs share: zero. Hashed e-mails (SHA-256 of the normalised address, used as the
key in every pair) are the same in all pairs. That is the "decentralized" scheme done wrong.
""")

code(r"""
const naive = await pairwiseCrosswalk(world, { pseudonyms: "hashedEmail" });
const pseudonymsOf = (c: typeof cw, pair: string) => new Set(Object.values(c.stores).flatMap((ts) => ts.filter((t) => t.pair === pair).flatMap((t) => t.rows.map((r) => r.pseudonym))));
const pairNames = cw.pairs.map((p) => p.pair);
const shared = (c: typeof cw) => pairNames.flatMap((a, i) => pairNames.slice(i + 1).map((b) => ({ pairs: `${a} vs ${b}`, shared: [...pseudonymsOf(c, a)].filter((x) => pseudonymsOf(c, b).has(x)).length })));
const sharedPsi = shared(cw), sharedNaive = shared(naive);
console.table(sharedPsi.map((s, i) => ({ pairs: s.pairs, "PSI pseudonyms shared": s.shared, "hashed e-mails shared": sharedNaive[i]!.shared })));
""")

md(r"""
## 5 · The breach

A thief steals (a) the central provider's graph, or (b) everything one party stores (the publisher's
pairwise tables). What do they get?
""")

code(r"""
const central = breachCentral(graph);
const onePartyBreach = breachPairwise(world, cw, "publisher");
console.table([central, onePartyBreach].map((b) => ({ stolen: b.stolen, "pairs linked": b.pairsLinked.join(", "), "people linked across ≥2 parties": b.peopleLinked, "known to be at all 3 parties": b.peopleLinkedAcross3Plus, "identifiers stolen": b.identifiersExposed, "identifiers of": b.identifiersOf.join(", ") || "none" })));
""")

md(r"""
The graph links every person across every party. It holds the e-mails of all three parties, and
for the people all three hold it gives full three-party profiles. The publisher's tables contain
the publisher's own record ids (the publisher has those anyway). For each peer they say which of
those records the peer also holds, under a pseudonym that only that peer can use. "Known to be at all
3 parties" therefore means something weaker here: these are publisher customers that both peers also
have, which the publisher learned from its own two PSI runs. The thief gets neither peer's records.
The tables contain no identifier and no peer record id, and they say nothing about the retailer–bank
pair.

## 6 · The linking attack across pairs

The thief now wants to link the **publisher's** records to the **bank's**, a pair whose own tables
were not stolen. They hold the publisher's table for `retailer|publisher` and the bank's table for
`retailer|bank`. For each person in both, they look for an equal pseudonym. If none exists, they
guess a bank record at random. Against the central graph, the same question is answered by looking
the person up.
""")

code(r"""
const attackCentral = centralLinkingAttack(world, graph, "publisher", "bank");
const pubT = (c: typeof cw) => c.stores.publisher!.find((t) => t.peer === "retailer")!;
const bankT = (c: typeof cw) => c.stores.bank!.find((t) => t.peer === "retailer")!;
const attackPairwise = crossPairLinkingAttack(world, pubT(cw), bankT(cw), seededRng("nb13-attack"));
const attackNaive = crossPairLinkingAttack(world, pubT(naive), bankT(naive), seededRng("nb13-attack"));
console.table([["central graph (stolen)", attackCentral], ["pairwise PSI tables (stolen)", attackPairwise], ["hashed-email tables (defence off)", attackNaive]].map(([name, r]) => {
  const x = r as typeof attackCentral;
  return { design: name as string, targets: x.targets, correct: x.correct, "success rate": x.successRate.toFixed(3), "chance (1/rows)": x.chance.toFixed(4), "linked by equal pseudonym": x.linkedByPseudonym };
}));
""")

md(r"""
- The central thief links all of them.
- The pairwise thief does no better than chance. A correct guess here and there is the random
  guess landing by luck, about `targets / rows` of them.
- With hashed e-mails, the same attack links everyone. The pseudonyms are the same in every pair,
  so calling the design "decentralized" bought nothing. A dictionary of e-mails also reverses them
  (notebook 05).

## 7 · What decentralized crosswalks do not solve

- **Within its pair, a table links.** That is its purpose. Both sides of `publisher|bank` together
  link every person the two share. Stealing both of them is a breach of that pair.
- **A party links its own pairs.** The publisher sees which of its customers the retailer has and
  which the bank has. PSI reveals the intersection to the two parties by design.
- **Cost.** n parties run n(n−1)/2 PSI sessions, and each pair must repeat its PSI when its data
  changes. A central provider needs n resolutions. What you buy with that cost is that there is no
  graph anywhere, and so no graph to breach.
""")

code(r"""
const withinPair = crossPairLinkingAttack(world, cw.stores.publisher!.find((t) => t.peer === "bank")!, cw.stores.bank!.find((t) => t.peer === "publisher")!, seededRng("nb13-within"));
console.log(`both sides of publisher|bank stolen: ${withinPair.correct}/${withinPair.targets} linked (the pair's own overlap is ${trueOverlap("publisher", "bank")})`);
console.log(`PSI sessions: ${cw.pairs.length} for ${PARTIES.length} parties; with 10 parties it would be ${10 * 9 / 2}`);
""")

md(r"""
## Checks
""")

code(r"""
const seconds = (Date.now() - t0) / 1000;
for (const p of cw.pairs) if (p.matched !== trueOverlap(p.a, p.b)) throw new Error(`pair ${p.pair}: PSI should find the true overlap`);
if (resolved.some((r) => r.resolved !== r.sent)) throw new Error("the central provider should resolve every identifier of this world");
if (sharedPsi.some((s) => s.shared !== 0)) throw new Error("PSI pseudonyms must differ between pairs");
if (sharedNaive.some((s) => s.shared < 50)) throw new Error("positive control: hashed e-mails should repeat across pairs");
if (JSON.stringify(cw.stores).includes("@")) throw new Error("a pairwise store must hold no e-mail");
if (central.pairsLinked.length !== 3 || central.identifiersOf.length !== 3) throw new Error("the central graph should link every pair");
if (onePartyBreach.pairsLinked.length !== 2 || onePartyBreach.pairsLinked.some((p) => !p.includes("publisher")) || onePartyBreach.identifiersOf.length !== 0) throw new Error("one party's tables should cover only its own pairs and hold no identifiers");
if (onePartyBreach.identifiersExposed !== 0 || central.identifiersExposed !== graph.index.size) throw new Error("the graph holds every identifier; a party's pairwise tables none");
if (attackCentral.successRate !== 1) throw new Error("central graph: the linking attack should succeed for everyone");
if (attackPairwise.linkedByPseudonym !== 0 || attackPairwise.correct > Math.max(5, 5 * attackPairwise.targets * attackPairwise.chance)) throw new Error("pairwise: the attack should be at chance");
if (attackNaive.successRate !== 1) throw new Error("positive control: hashed e-mails should be linked across pairs");
if (withinPair.successRate !== 1) throw new Error("within its pair, a pairwise table links (by design)");
console.log(`all checks passed in ${seconds.toFixed(1)} s`);
""")

write()
