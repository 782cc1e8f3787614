import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { x25519KeyPair } from "../../kernel-lib/src/crypto/primitives.js";
import { CrosswalkJoiner, IdentityProvider, crosswalk, generateIdentityGraph } from "../../kernel-lib/src/identity/crosswalk.js";

function world(decay = 0, seed = "cw-test") {
  const rng = seededRng(seed);
  const graph = generateIdentityGraph({ people: 300, parties: ["advertiser", "publisher"], rng: rng.fork("g") });
  const idp = new IdentityProvider(graph, { rng: rng.fork("p"), decay });
  const room = x25519KeyPair(rng.fork("room"));
  return { graph, idp, room, rng };
}

describe("IdentityProvider", () => {
  it("gives each party its own pseudonyms: the same person gets different pseudonyms at different parties", () => {
    const { graph, idp } = world();
    const adv = idp.resolve("advertiser", graph.observations.advertiser!);
    const pub = idp.resolve("publisher", graph.observations.publisher!);
    const a = new Set(adv.pseudonyms.filter(Boolean));
    const overlap = pub.pseudonyms.filter((p) => p && a.has(p)).length;
    expect(adv.resolved).toBeGreaterThan(100);
    expect(overlap).toBe(0);
  });

  it("only the clean room can join: tokens differ every time, and open to the same id only with the room key", () => {
    const { graph, idp, room, rng } = world();
    const email = graph.observations.advertiser!.find((i) => i.type === "email")!;
    const t1 = idp.resolve("advertiser", [email]).collaborationTokens[0]!;
    const t2 = idp.resolve("advertiser", [email]).collaborationTokens[0]!;
    expect(t1).not.toBe(t2);
    const joiner = new CrosswalkJoiner(room.secretKey, room.publicKey, idp.sealRoomKey(room.publicKey));
    expect(joiner.joinId(t1)).toBe(joiner.joinId(t2));
    // another room (wrong key) cannot open the sealed key
    const other = x25519KeyPair(rng.fork("other"));
    expect(() => new CrosswalkJoiner(other.secretKey, other.publicKey, idp.sealRoomKey(room.publicKey))).toThrow();
    // tokens from another provider's room key do not open
    const { idp: idp2 } = world(0, "another-provider");
    const foreign = new CrosswalkJoiner(room.secretKey, room.publicKey, idp2.sealRoomKey(room.publicKey));
    expect(() => foreign.joinId(t1)).toThrow(/CROSSWALK_DENIED/);
  });

  it("a party cannot resolve another party's identifiers, nor an unknown party anything", () => {
    const { graph, idp } = world();
    const cookie = graph.observations.publisher!.find((i) => i.type === "cookie")!;
    const r = idp.resolve("advertiser", [cookie]);
    expect(r).toMatchObject({ pseudonyms: [null], collaborationTokens: [null], reasons: ["UNKNOWN"], resolved: 0 });
    expect(() => idp.resolve("mallory", [cookie])).toThrow(/CROSSWALK_DENIED/);
  });

  it("unresolved identifiers carry a reason and no graph data", () => {
    const { graph, idp } = world(1);
    const r = idp.resolve("advertiser", graph.observations.advertiser!);
    const cookies = graph.observations.advertiser!.map((id, i) => [id.type, r.reasons[i]] as const).filter(([t]) => t === "cookie");
    expect(cookies.every(([, reason]) => reason === "EXPIRED")).toBe(true);
    expect(JSON.stringify(r)).not.toMatch(/person|@example/);
  });

  it("validates its parameters", () => {
    const rng = seededRng("p");
    expect(() => generateIdentityGraph({ people: 0, parties: ["a", "b"], rng })).toThrow(/"people" expected/);
    expect(() => generateIdentityGraph({ people: 5, parties: ["a", "a"], rng })).toThrow(/"parties" expected/);
    const { graph } = world();
    expect(() => new IdentityProvider(graph, { rng, decay: 1.5 })).toThrow(/"decay" expected number in \[0, 1\]/);
  });
});

describe("crosswalk()", () => {
  it("match rate falls as the graph decays, and is complete without decay", () => {
    const rates = [0, 0.25, 0.5, 0.9].map((decay) => crosswalk({ people: 800, decay, rng: { seed: "decay" } }).matchRate);
    expect(rates[0]).toBe(1);
    for (let i = 1; i < rates.length; i++) expect(rates[i]!).toBeLessThan(rates[i - 1]!);
    expect(rates[3]!).toBeLessThan(0.5);
  });

  it("returns plain data with pseudonyms and tokens only, stamped with its rng mode", () => {
    const r = crosswalk({ people: 100, rng: { seed: "plain" } });
    expect(JSON.parse(JSON.stringify(r))).toEqual(r);
    expect(r.sampleUpload[0]!.pseudonym).toMatch(/^pp_[0-9a-f]{32}$/);
    expect(JSON.stringify(r)).not.toMatch(/@example|person\d/);
    expect(r.rngStamp.rngMode).toBe("seeded");
  });
});
