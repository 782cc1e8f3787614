import { seededRng } from "../../kernel-lib/src/rng.js";
import { PurposeAuthority, compileRules, type DenyRule, type PurposeContext } from "../../kernel-lib/src/purpose/policy.js";
import { defaultTaxonomy } from "../../kernel-lib/src/purpose/taxonomy.js";

export const T0 = new Date("2026-11-25T03:00:00.000Z");

/** A room with a seeded policy key and a fixed clock (tests only). */
export function room(seed = "purpose-tests", rules: DenyRule[] = []) {
  const rng = seededRng(seed);
  const taxonomy = defaultTaxonomy();
  let now = T0;
  const clock = () => now;
  const authority = PurposeAuthority.generate("room-1", rng.fork("policy-key"), clock);
  const ctx = (): PurposeContext => ({
    taxonomy,
    roomId: "room-1",
    policyPublicKey: authority.publicKey,
    now,
    rules: compileRules(taxonomy, rules),
  });
  return {
    rng,
    taxonomy,
    authority,
    ctx,
    clock,
    advance(seconds: number) {
      now = new Date(now.getTime() + seconds * 1000);
    },
    grant(purpose: string, who = { party: "advertiser", analyst: "bo" }, ttlSeconds = 3600) {
      return authority.declare(taxonomy, { ...who, purpose, justification: "campaign lift study", ttlSeconds }, rng);
    },
  };
}
