import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { PurposeRoom } from "../../kernel-lib/src/purpose/room.js";
import { sha256Canonical } from "../../kernel-lib/src/purpose/canonical.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { T0 } from "./helpers.js";

type Row = { seq: number; entry: string; prev_hash: string; hash: string; mac: string };

describe("PurposeRoom.auditReport signing", () => {
  it("never signs a head over a rewritten chain: no signed head vouches for the forged tip", () => {
    const db = new Database(":memory:");
    let now = T0.getTime();
    const pr = new PurposeRoom(db, {
      roomId: "room-1",
      rng: seededRng("report-sign"),
      clock: () => new Date((now += 1000)),
      headEvery: 100,
    });
    for (const purpose of ["research", "safety", "ads"])
      pr.declarePurpose({ party: "advertiser", analyst: "bo", purpose, justification: "a study" });
    expect(pr.auditReport().verification.ok).toBe(true);
    const rows = db.prepare("SELECT seq, entry, prev_hash, hash, mac FROM purpose_audit_log ORDER BY seq").all() as Row[];
    // rewrite entry 1 and recompute every public hash from there to the tip
    const forged = rows.map((r) => ({ ...r }));
    forged[1]!.entry = forged[1]!.entry.replace('"outcome":"granted"', '"outcome":"refused"');
    for (let i = 1; i < forged.length; i++) {
      forged[i]!.prev_hash = forged[i - 1]!.hash;
      forged[i]!.hash = sha256Canonical({ prev: forged[i]!.prev_hash, entry: JSON.parse(forged[i]!.entry) });
    }
    const put = (rs: Row[]) => {
      db.prepare("DELETE FROM purpose_audit_log").run();
      for (const r of rs)
        db.prepare("INSERT INTO purpose_audit_log (room_id, seq, entry, prev_hash, hash, mac) VALUES ('room-1', ?, ?, ?, ?, ?)").run(
          r.seq,
          r.entry,
          r.prev_hash,
          r.hash,
          r.mac,
        );
    };
    put(forged);
    const tampered = pr.auditReport();
    expect(tampered.verification).toMatchObject({ ok: false, firstBadIndex: 1, problem: "forged" });
    // no signed head vouches for the rewritten tip, so the genuine rows verify on their own (no re-signing needed)
    const heads = db.prepare("SELECT hash FROM purpose_audit_heads").all() as { hash: string }[];
    expect(heads.map((h) => h.hash)).not.toContain(forged[forged.length - 1]!.hash);
    put(rows);
    expect(pr.audit.verify().ok).toBe(true);
  });
});
