import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { auditCost } from "../../kernel-lib/src/purpose/audit.js";
import { PurposeRoom } from "../../kernel-lib/src/purpose/room.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { T0 } from "./helpers.js";

const bo = { party: "advertiser", analyst: "bo" };
const ana = { party: "retailer", analyst: "ana" };
const TEMPLATE = "cd".repeat(32);

function lab(seed = "room") {
  const db = new Database(":memory:");
  let now = T0.getTime();
  const pr = new PurposeRoom(db, { roomId: "room-1", rng: seededRng(seed), clock: () => new Date((now += 1000)), headEvery: 4 });
  return { db, pr };
}

function errorOf(f: () => unknown): { code: string; text: string } {
  try {
    f();
  } catch (e) {
    if (!isCleanRoomError(e)) throw e;
    return { code: e.code, text: `${e.message}\n${JSON.stringify(e.details)}` };
  }
  throw new Error("expected a CleanRoomError");
}

describe("PurposeRoom (what session.ts calls)", () => {
  it("walks upload → declarePurpose → authorizeQuery → recordQuery → audit, auditing every call", () => {
    const { pr } = lab();
    pr.upload({ ...bo, datasetId: "exposures", bytes: utf8("exposures-bytes"), tags: { purposes: ["ads", "measurement"] } });
    pr.upload({
      ...ana,
      datasetId: "purchases",
      bytes: utf8("purchases-bytes"),
      tags: { purposes: ["measurement", "safety"], columns: { value_cents: { purposes: ["measurement"] } } },
    });
    const grant = pr.declarePurpose({ ...bo, purpose: "measurement", justification: "Q3 campaign lift" });
    const ok = pr.authorizeQuery({
      grant,
      requester: bo,
      templateHash: TEMPLATE,
      inputs: [{ datasetId: "exposures" }, { datasetId: "purchases", columns: ["value_cents"] }],
    });
    expect(new TextDecoder().decode(ok.tables.purchases)).toBe("purchases-bytes");
    expect(ok.resultLabel.allow).toEqual(["marketing.advertising.measurement"]);
    pr.recordQuery({
      requester: bo,
      purpose: ok.purpose,
      grantId: ok.grantId,
      templateHash: TEMPLATE,
      datasets: ["exposures", "purchases"],
      privacyCost: auditCost({ kind: "pureDp", epsilon: { num: 1n, den: 2n } }),
      outcome: "granted",
    });

    const adsGrant = pr.declarePurpose({ ...bo, purpose: "ads", justification: "retarget buyers" });
    const refused = errorOf(() =>
      pr.authorizeQuery({
        grant: adsGrant,
        requester: bo,
        templateHash: TEMPLATE,
        inputs: [{ datasetId: "exposures" }, { datasetId: "purchases" }],
      }),
    );
    expect(refused.code).toBe("PURPOSE_DENIED");
    expect(errorOf(() => pr.declarePurpose({ ...bo, purpose: "reserch", justification: "x y z" })).code).toBe("PURPOSE_UNKNOWN");

    const report = pr.auditReport();
    expect(report.verification.ok).toBe(true);
    expect(report.entries.map((e) => [e.action, e.outcome, e.errorCode])).toEqual([
      ["upload", "granted", null],
      ["upload", "granted", null],
      ["declarePurpose", "granted", null],
      ["query", "granted", null],
      ["declarePurpose", "granted", null],
      ["query", "refused", "PURPOSE_DENIED"],
      ["declarePurpose", "refused", "PURPOSE_UNKNOWN"],
    ]);
    expect(report.entries[5]).toMatchObject({
      purpose: "marketing.advertising",
      templateHash: TEMPLATE,
      datasets: ["exposures", "purchases"],
    });
    expect(report.review.refused.map((r) => r.seq)).toEqual([5, 6]);
    expect(report.verification.lastSignedHead!.count).toBe(7);
  });

  it("column tags restrict a query that reads the column, not one that does not", () => {
    const { pr } = lab();
    pr.upload({
      ...ana,
      datasetId: "purchases",
      bytes: utf8("p"),
      tags: { purposes: ["marketing"], columns: { category: { deny: ["marketing.advertising.measurement"] } } },
    });
    const g = pr.declarePurpose({ ...bo, purpose: "measurement", justification: "lift by region" });
    expect(() =>
      pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: "purchases", columns: ["store_region"] }] }),
    ).not.toThrow();
    expect(
      errorOf(() => pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: "purchases", columns: ["category"] }] })).code,
    ).toBe("PURPOSE_DENIED");
    expect(errorOf(() => pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: "purchases" }] })).code).toBe("PURPOSE_DENIED");
  });

  it("deny rules set on the room refuse at policy and at the key gate", () => {
    const { pr } = lab();
    pr.upload({ ...ana, datasetId: "crm", bytes: utf8("c"), tags: { purposes: ["marketing"], categories: ["user.contact.email"] } });
    const g = pr.declarePurpose({ ...bo, purpose: "targeting", justification: "lookalikes" });
    pr.setRules([
      {
        name: "no-targeting-on-contact",
        dataUses: { matches: "ANY", values: ["targeting"] },
        dataCategories: { matches: "ANY", values: ["user.contact"] },
      },
    ]);
    expect(errorOf(() => pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: "crm" }] })).code).toBe("PURPOSE_DENIED");
    expect(errorOf(() => pr.store.get("crm", g, { requester: bo })).code).toBe("KEY_RELEASE_DENIED");
  });

  it("finds the analyst's grant by purpose when none is passed, and survives a restart with the same keys", () => {
    const db = new Database(":memory:");
    let now = T0.getTime();
    const secrets = {
      policySecretKey: new Uint8Array(32).fill(1),
      gateMasterSecret: new Uint8Array(32).fill(2),
      auditSigningKey: new Uint8Array(32).fill(3),
    };
    const open = () => new PurposeRoom(db, { roomId: "room-1", rng: seededRng("restart"), clock: () => new Date(now), ...secrets });
    const pr = open();
    pr.upload({ ...ana, datasetId: "purchases", bytes: utf8("p"), tags: ["measurement"] });
    pr.declarePurpose({ ...bo, purpose: "ads", justification: "campaign lift", ttlSeconds: 600 });
    expect(pr.authorizeQuery({ requester: bo, purpose: "measurement", inputs: [{ datasetId: "purchases" }] }).purpose).toBe(
      "marketing.advertising.measurement",
    );
    expect(errorOf(() => pr.authorizeQuery({ requester: bo, purpose: "research", inputs: [{ datasetId: "purchases" }] })).code).toBe(
      "GRANT_INVALID",
    );
    expect(errorOf(() => pr.authorizeQuery({ requester: ana, purpose: "measurement", inputs: [{ datasetId: "purchases" }] })).code).toBe(
      "GRANT_INVALID",
    );
    const restarted = open();
    expect(
      new TextDecoder().decode(
        restarted.authorizeQuery({ requester: bo, purpose: "measurement", inputs: [{ datasetId: "purchases" }] }).tables.purchases,
      ),
    ).toBe("p");
    expect(restarted.auditReport().verification.ok).toBe(true);
    now += 601_000;
    expect(restarted.findGrant(bo)).toBeNull();
    // the grant that lapsed is named: GRANT_EXPIRED, not "no grant"
    expect(
      errorOf(() => restarted.authorizeQuery({ requester: bo, purpose: "measurement", inputs: [{ datasetId: "purchases" }] })).code,
    ).toBe("GRANT_EXPIRED");
  });

  it("room taxonomy is extensible by the notebook user", () => {
    const { pr } = lab();
    pr.extendTaxonomy({ kind: "dataUse", key: "research.epidemiology", name: "Epidemiology" });
    pr.addAlias("epi", "research.epidemiology");
    pr.upload({ ...ana, datasetId: "d", bytes: utf8("d"), tags: ["research"] });
    const g = pr.declarePurpose({ ...ana, purpose: "epi", justification: "flu season study" });
    expect(pr.authorizeQuery({ grant: g, requester: ana, inputs: [{ datasetId: "d" }] }).purpose).toBe("research.epidemiology");
  });
});

describe("canary: seeded identifiers never reach the audit log or any error text", () => {
  it("through every purpose/audit entry point", () => {
    const rng = seededRng("canary");
    const emails = Array.from({ length: 4 }, (_, i) => `person${rng.int(1_000_000)}.${i}@example.org`);
    const phone = `+1 555 ${String(1000000 + rng.int(8_999_999)).slice(0, 3)} ${String(1000 + rng.int(8999))}`;
    const canaries = [...emails, phone];
    const { db, pr } = lab("canary-room");
    const texts: string[] = [];
    const attempt = (f: () => unknown) => {
      try {
        f();
      } catch (e) {
        if (!isCleanRoomError(e)) throw e;
        texts.push(`${e.message}\n${JSON.stringify(e.details)}`);
      }
    };
    const csv = utf8(`email,value_cents\n${emails.map((e, i) => `${e},${100 * i}`).join("\n")}\n`);
    pr.upload({ ...ana, datasetId: "purchases", bytes: csv, tags: { purposes: ["measurement"], categories: ["user.contact.email"] } });
    const [e0, e1, e2, e3] = emails as [string, string, string, string];
    attempt(() => pr.upload({ party: "retailer", analyst: e0, datasetId: "x", bytes: csv, tags: ["ads"] }));
    attempt(() => pr.upload({ ...ana, datasetId: e1, bytes: csv, tags: ["ads"] }));
    attempt(() => pr.upload({ ...ana, datasetId: "y", bytes: csv, tags: [e2] }));
    attempt(() => pr.upload({ ...ana, datasetId: "z", bytes: csv, tags: { purposes: ["ads"], categories: [phone] } }));
    attempt(() => pr.declarePurpose({ party: e3, analyst: "bo", purpose: "ads", justification: "lift study" }));
    attempt(() => pr.declarePurpose({ ...bo, purpose: e0, justification: "lift study" }));
    attempt(() => pr.declarePurpose({ ...bo, purpose: "ads", justification: `find ${e1} and ${phone}` }));
    const g = pr.declarePurpose({ ...bo, purpose: "ads", justification: "lift study" });
    attempt(() => pr.authorizeQuery({ grant: g, requester: { party: "advertiser", analyst: e2 }, inputs: [{ datasetId: "purchases" }] }));
    attempt(() => pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: e3 }] }));
    attempt(() => pr.authorizeQuery({ grant: g, requester: bo, purpose: phone, inputs: [{ datasetId: "purchases" }] }));
    attempt(() => pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: "purchases", columns: [e0] }] }));
    attempt(() => pr.authorizeQuery({ grant: g, requester: bo, inputs: [{ datasetId: "purchases" }] })); // ads on measurement-only data
    attempt(() => pr.store.get("purchases", { ...g, justification: e1 }, { requester: bo }));
    attempt(() => pr.setRules([{ name: e2, dataUses: { matches: "ANY", values: ["ads"] } }]));
    attempt(() => pr.audit.append({ action: "query", who: { party: "retailer", analyst: e3 }, outcome: "granted" }));
    attempt(() =>
      pr.recordQuery({
        requester: bo,
        purpose: null,
        grantId: null,
        templateHash: null,
        datasets: [e0],
        privacyCost: null,
        outcome: "refused",
        errorCode: "INPUT_INVALID",
      }),
    );
    expect(texts.length).toBe(15); // every bad call above was refused (recordQuery redacts instead)

    const report = pr.auditReport();
    expect(report.verification.ok).toBe(true);
    expect(report.entries.filter((e) => e.outcome === "refused").length).toBeGreaterThanOrEqual(10);
    const tables = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table'`).all() as Array<{ name: string }>).map((t) => t.name);
    const dump = tables.map((t) => JSON.stringify(db.prepare(`SELECT * FROM ${t}`).all())).join("\n") + JSON.stringify(report);
    for (const c of canaries) {
      for (const t of texts) expect(t).not.toContain(c);
      expect(dump).not.toContain(c);
      expect(dump).not.toContain(c.split("@")[0]);
    }
    // the data itself is intact for a valid grant (the canary checks above are not vacuous)
    const mg = pr.declarePurpose({ ...bo, purpose: "measurement", justification: "lift study" });
    expect(
      new TextDecoder().decode(pr.authorizeQuery({ grant: mg, requester: bo, inputs: [{ datasetId: "purchases" }] }).tables.purchases),
    ).toContain(e0);
  });
});
