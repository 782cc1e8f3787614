/**
 * The live budget (kernel-lib/src/verbs/live.ts): what the launcher publishes after every
 * execution for the Privacy budget sidebar. It must equal the room's ledger after each
 * spending call — without anyone calling budget() — name dataset budgets by owner/name, and
 * drop a lab once it is closed.
 */
import { describe, expect, it } from "vitest";
import {
  openLab,
  addParty,
  upload,
  declarePurpose,
  approveTemplate,
  cleanRoomQuery,
  budget,
  generateStudy,
  liftSchemas,
  liftRules,
  liftTemplate,
} from "../../kernel-lib/src/index.js";
import { liveBudgetSnapshots, liveBudgetPayload, LIVE_BUDGET_PREFIX } from "../../kernel-lib/src/verbs/live.js";
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import { MIMEBUNDLE_SYMBOL, type MimeBundle } from "../../kernel-lib/src/display/bundle.js";

const keyed = (rows: readonly { email: string }[]) => rows.map(({ email, ...rest }) => ({ ...rest, join_key: email }));

function liveFor(room: string) {
  const s = liveBudgetSnapshots().filter((x) => x.displayId === `${LIVE_BUDGET_PREFIX}${room}`);
  expect(s).toHaveLength(1);
  const p = s[0]!.bundle[CLEANROOM_MIME];
  if (p.kind !== "budget") throw new Error("expected a budget payload");
  return p;
}
const spentOf = (p: ReturnType<typeof liveFor>, scope: string) =>
  p.budgets.filter((b) => b.scope === scope).map((b) => [b.subject, b.spent]);

describe("live budget", () => {
  it("follows the ledger after every spending query, names datasets owner/name, and forgets a closed lab", async () => {
    const study = generateStudy({
      seed: "live",
      advertiserRows: 600,
      overlap: 0.8,
      holdoutShare: 0.3,
      baseConversionRate: 0.2,
      liftPct: 30,
    });
    const lab = openLab({ store: ":memory:", room: "live-room", rng: { seed: "live" }, budget: { epsilon: 4 } });
    addParty(lab, { party: "advertiser" });
    addParty(lab, { party: "retailer" });
    const s = liftSchemas();
    await upload(lab, {
      party: "advertiser",
      name: "exposures",
      rows: keyed(study.exposures),
      schema: s.exposures,
      purposes: ["measurement"],
      rule: liftRules(5).exposures,
    });
    await upload(lab, {
      party: "retailer",
      name: "purchases",
      rows: keyed(study.purchases),
      schema: s.purchases,
      purposes: ["measurement"],
      rule: liftRules(5).purchases,
    });
    declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "live budget test" });

    const before = liveFor("live-room");
    expect(
      before.budgets
        .filter((b) => b.scope === "dataset")
        .map((b) => b.subject)
        .sort(),
    ).toEqual(["advertiser/exposures", "retailer/purchases"]);
    expect(JSON.stringify(before)).not.toMatch(/sha256:/);
    expect(before.budgets.every((b) => b.spent === 0)).toBe(true);

    let lastSpent = 0;
    for (const eps of ["0.5", "0.25"]) {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: eps, threshold: 5 });
      approveTemplate(lab, { party: "retailer", template: t });
      approveTemplate(lab, { party: "advertiser", template: t });
      await cleanRoomQuery(lab, {
        template: t,
        params: { startDay: 0, endDay: 27 },
        party: "advertiser",
        analyst: "bo",
        purpose: "measurement",
      });
      // what the sidebar gets equals what budget() reads from the ledger, field by field
      const live = liveFor("live-room");
      const shown = (budget(lab) as unknown as Record<symbol, () => MimeBundle>)[MIMEBUNDLE_SYMBOL]()[CLEANROOM_MIME];
      if (shown.kind !== "budget") throw new Error("expected a budget payload");
      const amounts = (p: typeof live) => p.budgets.map((b) => [b.scope, b.spent, b.exact?.spent, b.history.length]);
      expect(amounts(live)).toEqual(amounts(shown));
      const collabSpent = live.budgets.find((b) => b.scope === "collaboration")!.spent;
      expect(collabSpent).toBeGreaterThan(lastSpent);
      lastSpent = collabSpent;
    }
    const after = liveFor("live-room");
    const collab = after.budgets.find((b) => b.scope === "collaboration")!;
    expect(collab.spent).toBeGreaterThan(0);
    expect(collab.history).toHaveLength(2);
    expect(spentOf(after, "dataset").every(([, v]) => (v as number) > 0)).toBe(true);
    expect(liveBudgetPayload(lab)).toEqual(after);
    // the history names each charge's template (the approved name; the hash stays in templateHash)
    const name = (liftTemplate({ advertiser: "advertiser", retailer: "retailer" }) as { name: string }).name;
    expect(collab.history.map((h) => h.templateName)).toEqual([name, name]);
    expect(collab.history.every((h) => /^[0-9a-f]{64}$/.test(h.templateHash))).toBe(true);
    // budget() shows the same names: datasets by owner/name, charges by template name
    const bundle = (budget(lab) as unknown as Record<symbol, () => MimeBundle>)[MIMEBUNDLE_SYMBOL]();
    const shown = bundle[CLEANROOM_MIME];
    if (shown.kind !== "budget") throw new Error("expected a budget payload");
    expect(shown.budgets.map((b) => b.subject)).toEqual(after.budgets.map((b) => b.subject));
    expect(shown.budgets.flatMap((b) => b.history.map((h) => h.templateName))).toEqual(
      after.budgets.flatMap((b) => b.history.map((h) => h.templateName)),
    );
    expect(bundle["text/plain"]).toContain(name);
    expect(bundle["text/plain"]).not.toContain(collab.history[0]!.templateHash.slice(0, 8));
    expect(bundle["text/html"]).toContain(`title="template ${collab.history[0]!.templateHash}"`);

    lab.close();
    expect(liveBudgetSnapshots().filter((x) => x.displayId === `${LIVE_BUDGET_PREFIX}live-room`)).toEqual([]);
  });
});
