/**
 * Issue 14 #5 and #7 (audit side): truncation evidence cannot be erased by using the room, and
 * a crash between COMMIT and the head-file write is not mistaken for tampering.
 */
import Database from "better-sqlite3";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import { AuditLog } from "../../kernel-lib/src/purpose/audit.js";
import { memoryAnchor } from "../../kernel-lib/src/purpose/anchor.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const tmp = () => path.join(fs.mkdtempSync(path.join(os.tmpdir(), "crl-anchor5-")), "room.db");
const use = (lab: ReturnType<typeof openLab>, n: number, tag: string) => {
  for (let i = 0; i < n; i++)
    lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: `review ${tag} ${i}` });
};

describe("truncation evidence survives further use of the room (issue 14 #5)", () => {
  it("delete the audit tail and the heads after it, reopen, use the room 20 times: audit still reports truncation at the exact entry", () => {
    const store = tmp();
    const lab = openLab({ store, rng: { seed: "launder" } });
    lab.party("advertiser");
    use(lab, 20, "a"); // 20 entries; a head at 16
    expect(lab.audit().verification.ok).toBe(true); // signs and publishes a head over 20
    lab.close();

    const db = new Database(store);
    db.prepare("DELETE FROM purpose_audit_log WHERE seq >= 10").run();
    db.prepare("DELETE FROM purpose_audit_heads WHERE count > 10").run();
    db.close();

    const again = openLab({ store, rng: { seed: "launder" } });
    use(again, 20, "b"); // 30 entries now: new heads at 16 and 32 would cover the hole
    const v = again.audit().verification;
    expect(v).toMatchObject({ ok: false, problem: "truncated", firstBadIndex: 10 });
    expect(v.detail).toMatch(/entries 10\.\.19 were removed/);
    // refusing to sign over the tampered chain
    expect(() => again.purpose.audit.signHead()).toThrow(/AUDIT_TAMPERED/);
    again.close();

    // and a third kernel, after more use, still sees it
    const third = openLab({ store, rng: { seed: "launder" } });
    use(third, 5, "c");
    expect(third.audit().verification).toMatchObject({ ok: false, problem: "truncated", firstBadIndex: 10 });
    third.close();
  });

  it("an untouched room used across restarts keeps verifying (no false evidence)", () => {
    const store = tmp();
    for (let k = 0; k < 3; k++) {
      const lab = openLab({ store, rng: { seed: "clean" } });
      lab.party("advertiser");
      use(lab, 11, `k${k}`);
      expect(lab.audit().verification.ok).toBe(true);
      lab.close();
    }
  });

  it("a truncated tail refilled by later appends never replaces the anchored head, and the place stays on record", () => {
    const anchor = memoryAnchor();
    const db = new Database(":memory:");
    const key = seededRng("audit-5").bytes(32);
    const log = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor });
    for (let i = 0; i < 8; i++) log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    expect(anchor.head!.count).toBe(8);
    db.prepare("DELETE FROM purpose_audit_log WHERE seq >= 6").run();
    db.prepare("DELETE FROM purpose_audit_heads WHERE count > 4").run();
    const restarted = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor });
    for (let i = 0; i < 12; i++)
      restarted.append({ action: "query", who: { party: "advertiser" }, outcome: "refused", errorCode: "PURPOSE_DENIED" });
    expect(anchor.head!.count).toBe(8); // never replaced by a head over the rewritten chain
    expect(restarted.verify()).toMatchObject({ ok: false, problem: "truncated", firstBadIndex: 6 });
    expect(anchor.evidence).toMatchObject({ problem: "truncated", firstBadIndex: 6, entriesAtDetection: 6 });
  });
});

describe("putting the exact removed entries back", () => {
  it("makes the chain extend the anchored head again: nothing is lost, the evidence lapses", () => {
    const anchor = memoryAnchor();
    const db = new Database(":memory:");
    const key = seededRng("audit-5r").bytes(32);
    const log = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor });
    for (let i = 0; i < 8; i++) log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    const saved = db.prepare("SELECT * FROM purpose_audit_log WHERE seq >= 5").all() as Record<string, unknown>[];
    db.prepare("DELETE FROM purpose_audit_log WHERE seq >= 5").run();
    expect(log.verify()).toMatchObject({ ok: false, problem: "truncated", firstBadIndex: 5 });
    const ins = db.prepare(
      "INSERT INTO purpose_audit_log (room_id, seq, entry, prev_hash, hash, mac) VALUES (@room_id, @seq, @entry, @prev_hash, @hash, @mac)",
    );
    for (const r of saved) ins.run(r);
    expect(log.verify().ok).toBe(true);
    log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    expect(new AuditLog(db, { roomId: "room-1", signingKey: key, anchor }).verify().ok).toBe(true);
  });
});

describe("a head in the anchor that does not verify", () => {
  it("is reported as head_signature and never turned into truncation evidence", () => {
    const anchor = memoryAnchor();
    const db = new Database(":memory:");
    const key = seededRng("audit-forged").bytes(32);
    const log = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor });
    for (let i = 0; i < 4; i++) log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    anchor.head = { ...anchor.head!, count: 40 }; // signature no longer matches
    const other = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor });
    for (let i = 0; i < 4; i++) other.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    expect(anchor.evidence).toBeNull();
    expect(other.verify()).toMatchObject({ ok: false, problem: "head_signature" });
    expect(anchor.evidence).toBeNull();
  });
});

describe("a crash between COMMIT and the head-file write (issue 14 #7)", () => {
  it("a head file one step behind the database verifies and is brought up to date; one ahead is truncation", () => {
    const anchor = memoryAnchor();
    let publishing = true;
    const flaky = {
      ...anchor,
      save: (h: Parameters<typeof anchor.save>[0]) => {
        if (publishing) anchor.save(h);
      },
    };
    const db = new Database(":memory:");
    const key = seededRng("audit-7").bytes(32);
    const log = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor: flaky });
    for (let i = 0; i < 4; i++) log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    publishing = false; // the kernel "dies" after COMMIT, before the head file is written
    for (let i = 0; i < 4; i++) log.append({ action: "query", who: { party: "retailer" }, outcome: "granted" });
    expect(anchor.head!.count).toBe(4);
    publishing = true;
    const restarted = new AuditLog(db, { roomId: "room-1", signingKey: key, headEvery: 4, anchor: flaky });
    const v = restarted.verify();
    expect(v.ok).toBe(true);
    expect(v.detail).toMatch(/not tampering/);
    expect(anchor.head!.count).toBe(8);
    expect(anchor.evidence).toBeNull();
  });

  it("a budget charge and its audit entry commit together or not at all", () => {
    const db = new Database(":memory:");
    const log = new AuditLog(db, { roomId: "room-1", signingKey: seededRng("audit-7b").bytes(32), headEvery: 2, anchor: memoryAnchor() });
    db.exec("CREATE TABLE charges (n INTEGER)");
    try {
      log.atomic(() => {
        db.prepare("INSERT INTO charges VALUES (1)").run();
        log.append({ action: "charge", who: { party: "retailer" }, outcome: "granted", budgets: ["party/retailer"] });
        throw new Error("killed before COMMIT");
      });
    } catch (e) {
      expect(isCleanRoomError(e)).toBe(false);
    }
    expect(db.prepare("SELECT COUNT(*) AS n FROM charges").get()).toEqual({ n: 0 });
    expect(log.verify()).toMatchObject({ ok: true, entries: 0 });
  });
});
