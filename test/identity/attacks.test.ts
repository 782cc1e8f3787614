import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { makeBackend } from "../../kernel-lib/src/identity/psi-backend.js";
import { KeyRegistry, PsiClient } from "../../kernel-lib/src/identity/psi.js";
import { normalizeEmail } from "../../kernel-lib/src/identity/normalize.js";
import {
  cardinalityMembershipAttack,
  dictionaryAttack,
  emailDictionary,
  knownPairAttack,
  naivePsiBlind,
  randomScalar,
  realPsiBlind,
  sha256Email,
} from "../../kernel-lib/src/labs/identity-attacks.js";

const dict = emailDictionary({ limit: 600 });
// victims use the same naming patterns, messily typed
const victims = dict.filter((_, i) => i % 7 === 0).map((e) => " " + e.replace("@", "+shop@").toUpperCase());
const normalized = victims.map((v) => (normalizeEmail(v) as { value: string }).value);

describe("dictionary attack", () => {
  it("re-identifies every plainly SHA-256-hashed email (positive control)", () => {
    const r = dictionaryAttack(victims.map(sha256Email), dict);
    expect(r.rate).toBe(1);
  });

  it("finds nothing in a real PSI request built from the same emails", async () => {
    const backend = await makeBackend({ backend: "libsodium", threads: 1 });
    const client = new PsiClient({ backend, rng: seededRng("dict"), registry: new KeyRegistry() });
    const req = await client.createRequest(normalized);
    const r = dictionaryAttack(req.encryptedElements, dict);
    expect(r.reidentified).toBe(0);
  });
});

describe("known-pair attack on hashToScalar(x)·G", () => {
  it("one known pair breaks the naive construction (positive control)", async () => {
    const k = randomScalar(seededRng("naive"));
    const observed = await naivePsiBlind(normalized, k);
    const r = await knownPairAttack(observed, { element: normalized[0]!, blinded: observed[0]! }, dict);
    expect(r.reidentified).toBe(normalized.length - 1);
  });

  it("the same attack recovers nothing from RFC 9380 hash-to-group blinding", async () => {
    const k = randomScalar(seededRng("real"));
    const observed = await realPsiBlind(normalized, k);
    const r = await knownPairAttack(observed, { element: normalized[0]!, blinded: observed[0]! }, dict);
    expect(r.reidentified).toBe(0);
  });
});

describe("cardinality membership inference", () => {
  const victim = dict.slice(0, 40);
  const target = dict[5]!;
  const probe = dict.slice(200, 215);

  it("differencing S and S ∪ {target} over real cardinality-only PSI always succeeds (positive control)", async () => {
    const r = await cardinalityMembershipAttack({ victim, probe, target, trials: 6, oracle: "psi", rng: seededRng("card-psi") });
    expect(r.successRate).toBe(1);
  });

  it("a minimum set size does not stop it: the attacker pads with dummies", async () => {
    const r = await cardinalityMembershipAttack({
      victim,
      probe: [],
      target,
      defense: { kind: "minSetSize", min: 10 },
      trials: 50,
      rng: seededRng("card-min"),
    });
    expect(r.paddedWith).toBe(10);
    expect(r.successRate).toBe(1);
  });

  it("ε-DP noise on the released count bounds success by e^{2ε}/(1+e^{2ε})", async () => {
    const r = await cardinalityMembershipAttack({
      victim,
      probe,
      target,
      defense: { kind: "dp", epsilon: "0.25" },
      trials: 2000,
      rng: seededRng("card-dp"),
    });
    expect(r.bound).toBeCloseTo(Math.exp(0.5) / (1 + Math.exp(0.5)), 10);
    // 2000 trials: 3 standard errors ≈ 0.033
    expect(r.successRate).toBeLessThan(r.bound + 0.035);
    expect(r.successRate).toBeGreaterThan(0.45);
  });
});
