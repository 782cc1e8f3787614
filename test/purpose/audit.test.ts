import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { sha256Canonical, canonicalJson } from "../../kernel-lib/src/purpose/canonical.js";
import { AuditLog, auditCost, type AuditHead, type AuditInput } from "../../kernel-lib/src/purpose/audit.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { T0 } from "./helpers.js";

const TEMPLATE = "ab".repeat(32);

function makeLog(n: number, headEvery = 4) {
  const db = new Database(":memory:");
  let t = T0.getTime();
  const log = new AuditLog(db, {
    roomId: "room-1",
    signingKey: seededRng("audit").bytes(32),
    headEvery,
    clock: () => new Date((t += 1000)),
  });
  for (let i = 0; i < n; i++) {
    log.append({
      action: "query",
      who: { party: i % 2 ? "retailer" : "advertiser", analyst: i % 2 ? "ana" : "bo" },
      purpose: "marketing.advertising.measurement",
      templateHash: TEMPLATE,
      datasets: ["exposures", "purchases"],
      privacyCost: auditCost({ kind: "pureDp", epsilon: { num: 1n, den: 10n } }),
      outcome: i % 3 === 2 ? "refused" : "granted",
      errorCode: i % 3 === 2 ? "BUDGET_EXCEEDED" : null,
    });
  }
  return { db, log };
}

type R = { seq: number; entry: string; prev_hash: string; hash: string; mac: string };
const rows = (db: Database.Database) =>
  db.prepare(`SELECT seq, entry, prev_hash, hash, mac FROM purpose_audit_log ORDER BY seq`).all() as R[];

describe("audit chain", () => {
  it("verifies an untouched log and signs heads every N entries", () => {
    const { log } = makeLog(10, 4);
    const v = log.verify();
    expect(v).toMatchObject({ ok: true, entries: 10, firstBadIndex: null, lastSignedHead: { count: 8 } });
    log.signHead();
    expect(log.verify().lastSignedHead!.count).toBe(10);
    const rs = log.rows();
    expect(rs[0]!.index).toBe(0);
    for (let i = 1; i < rs.length; i++) expect(rs[i]!.prevHash).toBe(rs[i - 1]!.hash);
  });

  it("detects modification at the exact entry", () => {
    const { db, log } = makeLog(10);
    const e = JSON.parse(rows(db)[5]!.entry);
    e.outcome = "granted";
    e.errorCode = null;
    db.prepare(`UPDATE purpose_audit_log SET entry = ? WHERE seq = 5`).run(canonicalJson(e));
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 5, problem: "modified" });
  });

  it("detects modification even when the attacker recomputes every public hash", () => {
    const { db, log } = makeLog(10);
    const rs = rows(db);
    let prev = rs[3]!.prev_hash;
    for (const r of rs.slice(3)) {
      const e = JSON.parse(r.entry);
      if (r.seq === 3) e.purpose = "safety";
      const h = sha256Canonical({ prev, entry: e });
      db.prepare(`UPDATE purpose_audit_log SET entry = ?, prev_hash = ?, hash = ? WHERE seq = ?`).run(canonicalJson(e), prev, h, r.seq);
      prev = h;
    }
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 3, problem: "forged" });
  });

  it("detects deletion at the exact entry", () => {
    const { db, log } = makeLog(10);
    db.prepare(`DELETE FROM purpose_audit_log WHERE seq = 6`).run();
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 6, problem: "missing" });
  });

  it("detects reordering at the exact entry", () => {
    const { db, log } = makeLog(10);
    const [a, b] = [rows(db)[2]!, rows(db)[3]!];
    const put = db.prepare(`UPDATE purpose_audit_log SET entry = ?, prev_hash = ?, hash = ?, mac = ? WHERE seq = ?`);
    put.run(b.entry, b.prev_hash, b.hash, b.mac, 2);
    put.run(a.entry, a.prev_hash, a.hash, a.mac, 3);
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 2, problem: "out_of_order" });
  });

  it("detects an insertion at the exact entry (rows shifted, forged entry hashed correctly)", () => {
    const { db, log } = makeLog(10);
    const rs = rows(db);
    db.prepare(`UPDATE purpose_audit_log SET seq = seq + 1000 WHERE seq >= 4`).run();
    db.prepare(`UPDATE purpose_audit_log SET seq = seq - 999 WHERE seq >= 1000`).run();
    const forged = { ...JSON.parse(rs[4]!.entry), seq: 4, outcome: "granted", errorCode: null, purpose: "research" };
    const prev = rs[3]!.hash;
    const hash = sha256Canonical({ prev, entry: forged });
    db.prepare(`INSERT INTO purpose_audit_log (room_id, seq, entry, prev_hash, hash, mac) VALUES ('room-1', 4, ?, ?, ?, ?)`).run(
      canonicalJson(forged),
      prev,
      hash,
      rs[4]!.mac,
    );
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 4, problem: "forged" });
  });

  it("detects truncation through the signed head count", () => {
    const { db, log } = makeLog(10, 4);
    log.signHead();
    db.prepare(`DELETE FROM purpose_audit_log WHERE seq >= 7`).run();
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 7, problem: "truncated" });
  });

  it("detects truncation even when the heads table is cleared too (instance memory, or a trusted head after restart)", () => {
    const { db, log } = makeLog(10, 4);
    const head = log.signHead();
    db.prepare(`DELETE FROM purpose_audit_log WHERE seq >= 9`).run();
    db.prepare(`DELETE FROM purpose_audit_heads`).run();
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 9, problem: "truncated" });
    const restarted = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit").bytes(32) });
    expect(restarted.verify().ok).toBe(true); // nothing left to compare against...
    expect(restarted.verify({ trustedHead: head })).toMatchObject({ ok: false, firstBadIndex: 9, problem: "truncated" });
  });

  it("detects truncation of unsigned tail entries in a running kernel (no head covers them yet)", () => {
    const { db, log } = makeLog(10, 100); // no head signed
    expect(log.verify().ok).toBe(true);
    db.prepare(`DELETE FROM purpose_audit_log WHERE seq >= 8`).run();
    expect(log.verify()).toMatchObject({ ok: false, firstBadIndex: 8, problem: "truncated" });
    // a second instance that appended nothing and never verified has no memory to compare against
    const other = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit").bytes(32) });
    expect(other.verify().ok).toBe(true);
  });

  it("with an anchor outside the db, truncating log and heads is caught after a restart", () => {
    let kept: AuditHead | null = null;
    const anchor = {
      load: () => kept,
      save: (h: AuditHead) => {
        kept = h;
      },
    };
    const db = new Database(":memory:");
    const log = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit").bytes(32), headEvery: 4, anchor });
    for (let i = 0; i < 9; i++) log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    log.signHead();
    expect(kept!.count).toBe(9);
    db.prepare(`DELETE FROM purpose_audit_log WHERE seq >= 5`).run();
    db.prepare(`DELETE FROM purpose_audit_heads`).run();
    const restarted = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit").bytes(32), anchor });
    expect(restarted.verify()).toMatchObject({ ok: false, firstBadIndex: 5, problem: "truncated" });
    // an anchor holding a head signed by another key is refused, not trusted
    kept = { ...kept!, count: 3 };
    expect(new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit").bytes(32), anchor }).verify()).toMatchObject({
      ok: false,
      problem: "head_signature",
    });
  });

  it("an entry rolled back with its caller's transaction is not remembered (no false truncation)", () => {
    const { db, log } = makeLog(3, 4);
    expect(() =>
      db.transaction(() => {
        log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" }); // entry 3 = head boundary
        throw new Error("caller fails later");
      })(),
    ).toThrow(/caller fails/);
    expect(log.verify()).toMatchObject({ ok: true, entries: 3 });
  });

  it("detects a head signed by another key", () => {
    const { db, log } = makeLog(8, 4);
    expect(log.heads().map((h) => [h.count, h.verified])).toEqual([
      [4, true],
      [8, true],
    ]);
    db.prepare(`UPDATE purpose_audit_heads SET signature = ? WHERE count = 4`).run("00".repeat(64));
    expect(log.verify()).toMatchObject({ ok: false, problem: "head_signature" });
    expect(log.heads().map((h) => h.verified)).toEqual([false, true]);
  });

  it("assertIntact throws AUDIT_TAMPERED naming the entry", () => {
    const { db, log } = makeLog(5);
    db.prepare(`DELETE FROM purpose_audit_log WHERE seq = 1`).run();
    expect(() => log.assertIntact()).toThrow(/AUDIT_TAMPERED.*entry 1 \(missing\)/);
  });

  it("two AuditLog instances on one db share one chain", () => {
    const { db, log } = makeLog(3);
    const other = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit").bytes(32) });
    other.append({ action: "audit", who: { party: "retailer" }, outcome: "granted" });
    expect(log.verify()).toMatchObject({ ok: true, entries: 4 });
  });
});

describe("audit schema and canary", () => {
  const CANARIES = ["jane.doe@example.com", "+1 (555) 013-4567", "5550134567"];

  it.each(CANARIES)("refuses identifier %s in any field and never echoes it", (canary) => {
    const { db, log } = makeLog(2);
    const attempts: unknown[] = [
      { action: "query", who: { party: "retailer", analyst: canary }, outcome: "granted" },
      { action: "query", who: { party: canary }, outcome: "granted" },
      { action: "query", who: { party: "retailer" }, datasets: [canary], outcome: "granted" },
      { action: "query", who: { party: "retailer" }, purpose: canary, outcome: "granted" },
      { action: "query", who: { party: "retailer" }, outcome: "granted", note: canary },
      { action: "query", who: { party: "retailer" }, outcome: "granted", [canary]: 1 },
      { action: "query", who: { party: "retailer" }, outcome: "granted", privacyCost: { kind: "pureDp", epsilon: canary } },
    ];
    for (const a of attempts) {
      try {
        log.append(a as AuditInput);
        expect.unreachable();
      } catch (e) {
        expect(isCleanRoomError(e, "INPUT_INVALID")).toBe(true);
        const text = `${(e as Error).message} ${JSON.stringify((e as { details: unknown }).details)}`;
        expect(text).not.toContain(canary);
      }
    }
    const dump =
      JSON.stringify(db.prepare(`SELECT * FROM purpose_audit_log`).all()) +
      JSON.stringify(db.prepare(`SELECT * FROM purpose_audit_heads`).all());
    expect(dump).not.toContain(canary);
    expect(log.verify().entries).toBe(2);
  });

  it("records who, purpose, template hash, cost and outcome — and nothing else", () => {
    const { log } = makeLog(1);
    expect(Object.keys(log.entries()[0]!).sort()).toEqual([
      "action",
      "datasets",
      "errorCode",
      "grantId",
      "outcome",
      "privacyCost",
      "purpose",
      "roomId",
      "seq",
      "templateHash",
      "ts",
      "v",
      "who",
    ]);
    expect(log.entries()[0]!.privacyCost).toEqual({ kind: "pureDp", epsilon: "1/10" });
  });
});

describe("misuse review", () => {
  it("lists refusals and flags repeated denials, purpose switching after refusal, and bursts", () => {
    const db = new Database(":memory:");
    let t = T0.getTime();
    const log = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("rv").bytes(32), clock: () => new Date((t += 500)) });
    const eve = { party: "advertiser", analyst: "eve" };
    for (const p of ["research", "research", "safety"])
      log.append({ action: "query", who: eve, purpose: p, outcome: "refused", errorCode: "PURPOSE_DENIED" });
    log.append({ action: "query", who: eve, purpose: "marketing.advertising", outcome: "granted" });
    for (let i = 0; i < 5; i++)
      log.append({
        action: "query",
        who: { party: "retailer", analyst: "ana" },
        purpose: "marketing.advertising.measurement",
        outcome: "granted",
      });
    const r = log.review({ repeatedDenials: 3, burstCount: 5, burstWindowSeconds: 10 });
    expect(r.refused.map((x) => x.seq)).toEqual([0, 1, 2]);
    expect(r.flags.map((f) => [f.kind, f.who])).toEqual([
      ["repeated_denials", "advertiser/eve"],
      ["purpose_switching", "advertiser/eve"],
      ["burst", "retailer/ana"],
    ]);
    const quiet = log.review({ repeatedDenials: 10, burstCount: 50 });
    expect(quiet.flags.map((f) => f.kind)).toEqual(["purpose_switching"]);
  });
});
