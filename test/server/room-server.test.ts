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
import { CleanRoomError, isCleanRoomError } from "../../kernel-lib/src/errors.js";
import type { RoomResponse } from "../../kernel-lib/src/server/protocol.js";
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

/** A raw response's refusal as the typed error the verbs throw. */
function thrown(r: RoomResponse): void {
  if (!r.ok) throw new CleanRoomError(r.error.code as never, r.error.message, r.error.details ?? {});
}

/** The audit entries the server recorded (read from its file as the operator would). */
function auditRows(): { action: string; party: string; outcome: string; errorCode: string | null }[] {
  const db = new Database(store, { readonly: true });
  try {
    return (db.prepare("SELECT entry FROM purpose_audit_log ORDER BY seq").all() as { entry: string }[]).map((r) => {
      const e = JSON.parse(r.entry);
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

/**
 * One attack: the call is refused with `code`, the refusal is the newest audit entry (with that
 * code, refused), and the ledger file is byte-for-byte what it was (nothing charged).
 */
async function attack(call: () => unknown, code: string, auditParty?: string): Promise<Error & { details: Record<string, unknown> }> {
  const spent = ledgerSpent(store);
  const charges = chargeCount(store);
  const n = auditRows().length;
  const e = await refused(call, code);
  expect(ledgerSpent(store)).toEqual(spent);
  expect(chargeCount(store)).toBe(charges);
  const after = auditRows();
  expect(after.length).toBeGreaterThan(n);
  const last = after[after.length - 1]!;
  expect(last.outcome).toBe("refused");
  expect(last.errorCode).toBe(code);
  if (auditParty) expect(last.party).toBe(auditParty);
  return e;
}

describe("attacks on the room: each refused typed, audited, nothing charged", () => {
  it("a non-member cannot do anything (its key is in no collaboration)", async () => {
    const outsider = await joinRoom(server.url, { as: "outsider", identity: ids.outsider!, rng: { seed: "outsider" } });
    // before a signature verifies, the claimed name is not believed: audited as "unauthenticated"
    await attack(() => budget(outsider), "NOT_A_MEMBER", "unauthenticated");
    await attack(() => cleanRoomQuery(outsider, { ...query, party: "outsider" }), "NOT_A_MEMBER", "unauthenticated");
    await attack(() => acceptCollaboration(outsider), "NOT_A_MEMBER");
    outsider.close();
  });

  it("a member signing with another member's key (or a key file claiming a member's name) is refused", async () => {
    // the retailer's own key, in a key file that claims to be the advertiser
    const own = JSON.parse(fs.readFileSync(path.join(dir, "retailer.key"), "utf8"));
    const forgedFile = path.join(dir, "forged-advertiser.key");
    fs.writeFileSync(forgedFile, JSON.stringify({ ...own, name: "advertiser" }), { mode: 0o600 });
    const posing = await joinRoom(server.url, { as: "advertiser", identity: loadIdentity(forgedFile), rng: { seed: "posing" } });
    await attack(() => cleanRoomQuery(posing, query), "SIGNATURE_INVALID", "unauthenticated"); // not "advertiser": it is not them
    await attack(() => approveTemplate(posing, { template: tmpl, party: "advertiser" }), "SIGNATURE_INVALID");
    posing.close();
    // a fresh key under the advertiser's name: same
    const fresh = createIdentity({ name: "advertiser", file: path.join(dir, "fresh-advertiser.key") });
    const other = await joinRoom(server.url, { as: "advertiser", identity: fresh });
    await attack(() => budget(other), "SIGNATURE_INVALID");
    other.close();
  });

  it("a replayed signed request is refused, on the same connection and on a new one", async () => {
    const room = rooms.advertiser!;
    const req = room.sign("budget", { input: {} });
    expect((await room.sendRaw(req)).ok).toBe(true);
    await attack(async () => thrown(await room.sendRaw(req)), "REQUEST_REPLAY", "advertiser");
    const again = await joinRoom(server.url, { as: "advertiser", identity: ids.advertiser! });
    const r = await again.sendRaw(req);
    expect(r.ok ? "ok" : r.error.code).toBe("REQUEST_REPLAY");
    again.close();
  });

  it("two kernels of one member (same key) both work: seq is ordered per signed session; nothing crosses sessions", async () => {
    const one = rooms.advertiser!;
    const two = await joinRoom(server.url, { as: "advertiser", identity: ids.advertiser!, rng: { seed: "advertiser-second-kernel" } });
    expect(two.session).not.toBe(one.session);
    // kernel one signs first but its request arrives after kernel two's (later seq): both run
    const early = one.sign("budget", { input: {} });
    const late = two.sign("budget", { input: {} });
    expect(late.seq).toBeGreaterThan(early.seq);
    expect((await two.sendRaw(late)).ok).toBe(true);
    expect((await one.sendRaw(early)).ok).toBe(true); // one member-wide seq refused this as REQUEST_REORDER
    await budget(one);
    await budget(two);
    // within a session the order still holds
    const a = two.sign("budget", { input: {} });
    const b = two.sign("budget", { input: {} });
    expect((await two.sendRaw(b)).ok).toBe(true);
    await attack(async () => thrown(await two.sendRaw(a)), "REQUEST_REORDER", "advertiser");
    // cross-session replay: kernel one's accepted request, sent again over kernel two's connection
    await attack(async () => thrown(await two.sendRaw(early)), "REQUEST_REPLAY", "advertiser");
    // ... or moved into kernel two's session (the session is signed)
    const moved = one.sign("budget", { input: {} });
    await attack(async () => thrown(await two.sendRaw({ ...moved, session: two.session })), "SIGNATURE_INVALID", "unauthenticated");
    // ... or re-signed by the member in another session with a nonce already used: nonces are unique per member, not per session
    await attack(
      async () => thrown(await two.sendRaw(two.sign("budget", { input: {} }, { nonce: late.nonce }))),
      "REQUEST_REPLAY",
      "advertiser",
    );
    two.close();
  });

  it("a reordered request (older seq after a newer one) and a stale one are refused", async () => {
    const room = rooms.advertiser!;
    const first = room.sign("budget", { input: {} });
    const second = room.sign("budget", { input: {} });
    expect((await room.sendRaw(second)).ok).toBe(true);
    const r = await room.sendRaw(first);
    expect(r.ok ? "ok" : r.error.code).toBe("REQUEST_REORDER");
    const stale = room.sign("budget", { input: {} }, { time: Date.now() - 10 * 60_000 });
    const s2 = await room.sendRaw(stale);
    expect(s2.ok ? "ok" : s2.error.code).toBe("REQUEST_STALE");
    // a tampered body under a valid signature
    const t = room.sign("budget", { input: {} });
    const s3 = await room.sendRaw({ ...t, body: { input: { limit: 1 } } });
    expect(s3.ok ? "ok" : s3.error.code).toBe("SIGNATURE_INVALID");
    const codes = auditRows()
      .slice(-3)
      .map((x) => x.errorCode);
    expect(codes).toEqual(["REQUEST_REORDER", "REQUEST_STALE", "SIGNATURE_INVALID"]);
  });

  it("a forged approval (the operator writes the row without the member's key) is detected by members and refused by the server", async () => {
    const t2 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.2", threshold: 50 });
    const hash = parseTemplate(t2).hash;
    await approveTemplate(rooms.advertiser!, { template: t2, party: "advertiser" });
    // the operator, holding the database file, inserts the retailer's approval
    const db = new Database(store);
    db.prepare("INSERT INTO cleanroom_approvals (room_id, template_hash, party, approved_at) VALUES ('lab', ?, 'retailer', ?)").run(
      hash,
      new Date().toISOString(),
    );
    db.close();
    // positive control: the registry alone (what a room without signatures would trust) now says "approved"
    const reg = new Database(store, { readonly: true });
    const parties = reg.prepare("SELECT party FROM cleanroom_approvals WHERE template_hash = ? ORDER BY party").all(hash);
    reg.close();
    expect(parties).toEqual([{ party: "advertiser" }, { party: "retailer" }]);
    const check = await verifyApprovals(rooms.retailer!);
    expect(check.ok).toBe(false);
    const row = check.templates.find((x) => x.templateHash === hash)!;
    expect(row.forged).toEqual(["retailer"]);
    expect(row.verified).toEqual(["advertiser"]);
    const e = await attack(() => cleanRoomQuery(rooms.advertiser!, { ...query, template: t2 }), "QUERY_NOT_APPROVED", "advertiser");
    expect(e.details.forged).toEqual(["retailer"]);
  });

  it("a member cannot upload as, or list the datasets of, another party; a non-owner cannot upload; no party can be minted", async () => {
    const rows = [{ join_key: "k1", day: 1, value_cents: 5 }];
    const s = liftSchemas();
    await attack(
      () => upload(rooms.retailer!, { party: "advertiser", name: "fake", rows, schema: s.purchases, purposes: ["measurement"] }),
      "ACCESS_DENIED",
      "retailer",
    );
    await attack(() => datasets(rooms.retailer!, { party: "advertiser" }), "ACCESS_DENIED", "retailer");
    await attack(
      () => upload(rooms.observer!, { party: "observer", name: "mine", rows, schema: s.purchases, purposes: ["measurement"] }),
      "ACCESS_DENIED",
      "observer",
    );
    await attack(() => cleanRoomQuery(rooms.advertiser!, { ...query, party: "sock" }), "ACCESS_DENIED", "advertiser");
    await refused(() => addParty(rooms.advertiser! as never, { party: "sock" }), "ACCESS_DENIED");
  });

  it("a member who may query but not receive results gets no result, and nothing is charged", async () => {
    await declarePurpose(rooms.observer!, { party: "observer", analyst: "oz", purpose: "measurement", justification: "look" });
    await attack(() => cleanRoomQuery(rooms.observer!, { ...query, party: "observer", analyst: "oz" }), "ACCESS_DENIED", "observer");
  });

  it("a client that pins another key cannot talk to the server (nor a server posing as the room)", async () => {
    const wrong = "11".repeat(32);
    const url = server.url.replace(/#.*$/, `#${wrong}`);
    await refused(() => joinRoom(url, { as: "advertiser", identity: ids.advertiser! }), "CRYPTO_INVALID_KEY");
  });

  it("the server's files hold no identifier of either party (PSI ran party to party; only keyed rows were uploaded)", () => {
    const bytes = storeBytes(store).toString("latin1").toLowerCase();
    const canaries = [...study.exposures.slice(0, 300), ...study.purchases.slice(0, 300)].map((r) => r.email.trim().toLowerCase());
    expect(canaries.length).toBe(600);
    // positive control: the scan reads the room's files (the catalog's schema names are plaintext there)
    expect(bytes.includes("value_cents")).toBe(true);
    for (const c of canaries) expect(bytes.includes(c), "an identifier in the server's files").toBe(false);
  });

  it("after all of that the audit chain verifies and the ledger reconciles", async () => {
    const au = await audit(rooms.observer!);
    expect(au.verification.ok).toBe(true);
  });
});
