import { beforeAll, describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { IdentityProvider } from "../../kernel-lib/src/identity/crosswalk.js";
import {
  breachCentral,
  breachPairwise,
  centralGraphOf,
  centralLinkingAttack,
  crossPairLinkingAttack,
  pairwiseCrosswalk,
  pairwiseWorld,
  type PairwiseCrosswalk,
  type PairwiseTable,
  type PairwiseWorld,
} from "../../kernel-lib/src/identity/pairwise.js";

const PARTIES = ["retailer", "publisher", "bank"];
let world: PairwiseWorld;
let psi: PairwiseCrosswalk;
let naive: PairwiseCrosswalk;

const table = (cw: PairwiseCrosswalk, owner: string, peer: string): PairwiseTable => cw.stores[owner]!.find((t) => t.peer === peer)!;
/** People held by both parties (ground truth). */
function overlap(w: PairwiseWorld, a: string, b: string): number {
  const inA = new Set(w.records[a]!.map((r) => w.truth.get(`${a}/${r.recordId}`)));
  return w.records[b]!.filter((r) => inA.has(w.truth.get(`${b}/${r.recordId}`))).length;
}

beforeAll(async () => {
  world = pairwiseWorld({ people: 400, parties: PARTIES, coverage: 0.6, rng: seededRng("pairwise-world") });
  psi = await pairwiseCrosswalk(world, { rng: { seed: "pairwise-psi" }, backend: "noble" });
  naive = await pairwiseCrosswalk(world, { pseudonyms: "hashedEmail" });
}, 120_000);

describe("pairwise crosswalk (decentralized)", () => {
  it("each pair's PSI finds exactly that pair's true overlap, and both sides hold the same pseudonyms", () => {
    for (const p of psi.pairs) {
      expect(p.matched).toBe(overlap(world, p.a, p.b));
      const ta = table(psi, p.a, p.b);
      const tb = table(psi, p.b, p.a);
      // same person ⇒ same pseudonym on both sides of the pair
      const byPerson = new Map(tb.rows.map((r) => [world.truth.get(`${p.b}/${r.recordId}`), r.pseudonym]));
      for (const r of ta.rows) expect(byPerson.get(world.truth.get(`${p.a}/${r.recordId}`))).toBe(r.pseudonym);
      expect(ta.rows.length).toBeGreaterThan(50);
    }
  });

  it("the same person's pseudonyms differ between pairs (none shared across pairs), but not with hashed e-mails", () => {
    const pseudonymsOf = (cw: PairwiseCrosswalk, pair: string) =>
      new Set(Object.values(cw.stores).flatMap((ts) => ts.filter((t) => t.pair === pair).flatMap((t) => t.rows.map((r) => r.pseudonym))));
    const pairs = psi.pairs.map((p) => p.pair);
    for (let i = 0; i < pairs.length; i++)
      for (let j = i + 1; j < pairs.length; j++) {
        const a = pseudonymsOf(psi, pairs[i]!);
        expect([...pseudonymsOf(psi, pairs[j]!)].filter((x) => a.has(x))).toHaveLength(0);
        // positive control: the naive scheme reuses the pseudonym in every pair
        const na = pseudonymsOf(naive, pairs[i]!);
        expect([...pseudonymsOf(naive, pairs[j]!)].filter((x) => na.has(x)).length).toBeGreaterThan(20);
      }
  });

  it("no store holds an identifier: tables carry record ids and pseudonyms only", () => {
    const text = JSON.stringify(psi.stores);
    for (const party of PARTIES)
      for (const r of world.records[party]!.slice(0, 50)) expect(text).not.toContain(r.email.trim().toLowerCase());
    expect(text).not.toContain("@");
  });

  it("linking attack across pairs: central thief ≈ 1, pairwise thief ≈ chance, hashed-email thief ≈ 1 (positive control)", () => {
    const graph = centralGraphOf(world);
    const central = centralLinkingAttack(world, graph, "publisher", "bank");
    expect(central.targets).toBe(overlap(world, "publisher", "bank"));
    expect(central.successRate).toBe(1);

    // the publisher's table for retailer|publisher and the bank's table for retailer|bank
    const src = table(psi, "publisher", "retailer");
    const dst = table(psi, "bank", "retailer");
    const pairwise = crossPairLinkingAttack(world, src, dst, seededRng("attack"));
    expect(pairwise.targets).toBeGreaterThan(40);
    expect(pairwise.linkedByPseudonym).toBe(0);
    // a binomial(targets, chance) count: mean < 1 here; 6 would be a > 1e-4 tail event
    expect(pairwise.targets * pairwise.chance).toBeLessThan(1);
    expect(pairwise.correct).toBeLessThanOrEqual(5);

    const control = crossPairLinkingAttack(
      world,
      table(naive, "publisher", "retailer"),
      table(naive, "bank", "retailer"),
      seededRng("attack"),
    );
    expect(control.linkedByPseudonym).toBe(control.targets);
    expect(control.successRate).toBe(1);
  });

  it("within its own pair a table does link (what PSI is for): both sides of publisher|bank link every shared person", () => {
    const r = crossPairLinkingAttack(world, table(psi, "publisher", "bank"), table(psi, "bank", "publisher"), seededRng("x"));
    expect(r.successRate).toBe(1);
    expect(r.targets).toBe(overlap(world, "publisher", "bank"));
  });

  it("breach report: the central graph links every pair and 3-party profiles; one party's store only its own pairs, no identifiers", () => {
    const central = breachCentral(centralGraphOf(world));
    const pub = breachPairwise(world, psi, "publisher");
    expect(central.pairsLinked).toEqual(["publisher|bank", "retailer|bank", "retailer|publisher"]);
    expect(central.pairsLinked).toHaveLength(3);
    expect(central.identifiersOf).toEqual(PARTIES);
    expect(pub.pairsLinked.every((p) => p.split("|").includes("publisher"))).toBe(true);
    expect(pub.pairsLinked).toHaveLength(2);
    expect(pub.identifiersOf).toEqual([]);
    expect(pub.identifiersExposed).toBe(0);
    expect(central.identifiersExposed).toBe(PARTIES.reduce((a, p) => a + world.records[p]!.length, 0));
    // people linked: the central graph's count is the true number held by ≥ 2 parties
    const held = new Map<number, number>();
    for (const party of PARTIES)
      for (const r of world.records[party]!)
        held.set(world.truth.get(`${party}/${r.recordId}`)!, (held.get(world.truth.get(`${party}/${r.recordId}`)!) ?? 0) + 1);
    expect(central.peopleLinked).toBe([...held.values()].filter((n) => n >= 2).length);
    expect(pub.peopleLinked).toBeLessThan(central.peopleLinked);
  });

  it("the central provider resolves the same world (the contrast still works)", () => {
    const graph = centralGraphOf(world);
    const idp = new IdentityProvider(graph, { rng: seededRng("idp") });
    const r = idp.resolve("bank", graph.observations.bank!);
    expect(r.resolved).toBe(world.records.bank!.length);
  });

  it("refuses bad input naming the field", () => {
    expect(() => pairwiseWorld({ people: 10, parties: ["a"], rng: seededRng("x") })).toThrow(/parties/);
    expect(() => pairwiseWorld({ people: 0, parties: ["a", "b"], rng: seededRng("x") })).toThrow(/people/);
  });
});
