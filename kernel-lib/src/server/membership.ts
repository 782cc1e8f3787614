/**
 * Fixed membership (AWS Clean Rooms collaborations): the creator names the members, their
 * Ed25519 public keys and abilities; each member signs its acceptance of the definition's hash;
 * nothing runs until all have. A change is a new version of the definition that every member
 * (of the current and the new version) signs; only then does it replace the current one. Also
 * kept here, in the same database as the ledger: the last request seq of each member's client
 * session and the member's nonces of the time window (replay/reorder refusal), and the members' approval signatures.
 *
 * Threat model: the server refuses what members did not sign; an operator who edits these
 * tables directly cannot make signatures, so every member can detect it (`verifyApprovals`).
 */
import type Database from "better-sqlite3";
import { CleanRoomError, invalid } from "../errors.js";
import { collaborationHash, verifyStatement, type CollaborationDef, type MemberSpec } from "./protocol.js";

export interface CollaborationView {
  active: { hash: string; definition: CollaborationDef; acceptances: Record<string, string> } | null;
  pending: { hash: string; definition: CollaborationDef; acceptances: Record<string, string>; missing: string[] } | null;
}

export class Membership {
  constructor(
    private readonly db: Database.Database,
    private readonly roomId: string,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS server_collab (room_id TEXT NOT NULL, hash TEXT NOT NULL, version INTEGER NOT NULL, def_json TEXT NOT NULL,
        state TEXT NOT NULL, PRIMARY KEY (room_id, hash));
      CREATE TABLE IF NOT EXISTS server_accepts (room_id TEXT NOT NULL, hash TEXT NOT NULL, member TEXT NOT NULL, signature TEXT NOT NULL,
        PRIMARY KEY (room_id, hash, member));
      CREATE TABLE IF NOT EXISTS server_session_seq (room_id TEXT NOT NULL, member TEXT NOT NULL, session TEXT NOT NULL,
        last_seq INTEGER NOT NULL, last_time INTEGER NOT NULL, PRIMARY KEY (room_id, member, session));
      CREATE TABLE IF NOT EXISTS server_nonces (room_id TEXT NOT NULL, member TEXT NOT NULL, nonce TEXT NOT NULL, time INTEGER NOT NULL,
        PRIMARY KEY (room_id, member, nonce));
      CREATE TABLE IF NOT EXISTS server_approval_sigs (room_id TEXT NOT NULL, template_hash TEXT NOT NULL, member TEXT NOT NULL,
        public_key TEXT NOT NULL, signature TEXT NOT NULL, PRIMARY KEY (room_id, template_hash, member));`);
  }

  #def(state: "active" | "pending"): { hash: string; definition: CollaborationDef } | null {
    const row = this.db
      .prepare("SELECT hash, def_json FROM server_collab WHERE room_id = ? AND state = ? ORDER BY version DESC LIMIT 1")
      .get(this.roomId, state) as { hash: string; def_json: string } | undefined;
    return row ? { hash: row.hash, definition: JSON.parse(row.def_json) } : null;
  }

  #acceptances(hash: string): Record<string, string> {
    const rows = this.db
      .prepare("SELECT member, signature FROM server_accepts WHERE room_id = ? AND hash = ? ORDER BY member")
      .all(this.roomId, hash) as {
      member: string;
      signature: string;
    }[];
    return Object.fromEntries(rows.map((r) => [r.member, r.signature]));
  }

  /** Members who must sign `pending` (those of the current definition and of the new one). */
  #required(pending: CollaborationDef): string[] {
    const active = this.#def("active");
    return [...new Set([...(active?.definition.members.map((m) => m.name) ?? []), ...pending.members.map((m) => m.name)])].sort();
  }

  view(): CollaborationView {
    const a = this.#def("active");
    const p = this.#def("pending");
    return {
      active: a ? { ...a, acceptances: this.#acceptances(a.hash) } : null,
      pending: p
        ? (() => {
            const acceptances = this.#acceptances(p.hash);
            return { ...p, acceptances, missing: this.#required(p.definition).filter((m) => !(m in acceptances)) };
          })()
        : null,
    };
  }

  /** The member of the active definition (null if none is active or the name is not in it). */
  activeMember(name: string): MemberSpec | null {
    return this.#def("active")?.definition.members.find((m) => m.name === name) ?? null;
  }

  /** The key a request from `name` is checked with: active membership, else a pending definition. */
  keyOf(name: string): { member: MemberSpec; active: boolean } | null {
    const a = this.activeMember(name);
    if (a) return { member: a, active: true };
    const p = this.#def("pending")?.definition.members.find((m) => m.name === name);
    return p ? { member: p, active: false } : null;
  }

  hasAny(): boolean {
    return this.db.prepare("SELECT 1 FROM server_collab WHERE room_id = ? LIMIT 1").get(this.roomId) !== undefined;
  }

  #checkDef(def: CollaborationDef): void {
    if (def.room !== this.roomId) invalid("definition.room", `this server's room "${this.roomId}"`, def.room, "PARAM_INVALID");
    const names = new Set<string>();
    const keys = new Set<string>();
    def.members.forEach((m, i) => {
      if (names.has(m.name)) invalid(`definition.members[${i}].name`, "a name used once", m.name, "PARAM_INVALID");
      if (keys.has(m.publicKey))
        invalid(`definition.members[${i}].publicKey`, "a key used by one member only", "a repeated key", "PARAM_INVALID");
      names.add(m.name);
      keys.add(m.publicKey);
    });
  }

  /** Version 1, by its creator (who must be a member of it). Pending until every member accepted. */
  create(def: CollaborationDef, creator: string): string {
    if (this.hasAny()) invalid("definition", "a room without a collaboration (propose a change instead)", "one exists", "ALREADY_EXISTS");
    if (def.version !== 1 || def.previous !== null) invalid("definition.version", "1 with previous null", def.version);
    this.#checkDef(def);
    if (!def.members.some((m) => m.name === creator))
      invalid("definition.members", `the creator "${creator}" among the members`, "without it");
    const hash = collaborationHash(def);
    this.db
      .prepare("INSERT INTO server_collab (room_id, hash, version, def_json, state) VALUES (?, ?, 1, ?, 'pending')")
      .run(this.roomId, hash, JSON.stringify(def));
    return hash;
  }

  /** A change request by an active member: the next version, pending until every member signed. */
  propose(def: CollaborationDef, proposer: string): string {
    const a = this.#def("active");
    if (!a)
      throw new CleanRoomError("STATE_INVALID", `"collaboration" expected an active collaboration, got none yet`, {
        field: "collaboration",
      });
    if (this.#def("pending")) invalid("definition", "no other pending change", "one pending", "STATE_INVALID");
    if (def.version !== a.definition.version + 1 || def.previous !== a.hash)
      invalid(
        "definition.previous",
        `version ${a.definition.version + 1} replacing the active definition's hash`,
        "another",
        "STATE_INVALID",
      );
    this.#checkDef(def);
    if (!this.activeMember(proposer)) invalid("member", "an active member", proposer, "NOT_A_MEMBER");
    const hash = collaborationHash(def);
    this.db
      .prepare("INSERT INTO server_collab (room_id, hash, version, def_json, state) VALUES (?, ?, ?, ?, 'pending')")
      .run(this.roomId, hash, def.version, JSON.stringify(def));
    return hash;
  }

  /**
   * Record `member`'s signed acceptance of the pending definition `hash`; when every required
   * member has signed, it becomes the active one (the previous is superseded). Returns the
   * members of the newly active definition, or null if still pending.
   */
  accept(hash: string, member: string, signature: string): MemberSpec[] | null {
    const p = this.#def("pending");
    if (!p || p.hash !== hash) invalid("collaboration", "the hash of the pending definition", "another hash", "STATE_INVALID");
    const required = this.#required(p.definition);
    if (!required.includes(member)) invalid("member", "a member who must sign this definition", member, "NOT_A_MEMBER");
    const spec = p.definition.members.find((m) => m.name === member) ?? this.activeMember(member)!;
    if (!verifyStatement({ statement: "accept", room: this.roomId, collaboration: hash, member }, spec.publicKey, signature))
      throw new CleanRoomError(
        "SIGNATURE_INVALID",
        `"signature" expected ${member}'s signature over the collaboration hash, got one that does not verify`,
        {
          field: "signature",
        },
      );
    return this.db
      .transaction(() => {
        this.db
          .prepare("INSERT OR REPLACE INTO server_accepts (room_id, hash, member, signature) VALUES (?, ?, ?, ?)")
          .run(this.roomId, hash, member, signature);
        const acc = this.#acceptances(hash);
        if (!required.every((m) => m in acc)) return null;
        this.db.prepare("UPDATE server_collab SET state = 'superseded' WHERE room_id = ? AND state = 'active'").run(this.roomId);
        this.db.prepare("UPDATE server_collab SET state = 'active' WHERE room_id = ? AND hash = ?").run(this.roomId, hash);
        return p.definition.members;
      })
      .immediate();
  }

  /**
   * Freshness of a signed request: refuse a nonce this member used in any of its sessions within
   * the window (REQUEST_REPLAY) or a seq not above the last one of this member's `session`
   * (REQUEST_REORDER); otherwise record both, atomically. Each joined handle picks its own
   * session, so two kernels of one member keep separate orders; the session is signed, so a
   * request cannot be moved into another session. A session idle for twice the window is
   * forgotten: every request it ever carried is stale by then.
   */
  admit(member: string, session: string, seq: number, nonce: string, time: number, windowMs: number): void {
    this.db
      .transaction(() => {
        const seen = this.db
          .prepare("SELECT 1 FROM server_nonces WHERE room_id = ? AND member = ? AND nonce = ?")
          .get(this.roomId, member, nonce);
        if (seen)
          throw new CleanRoomError(
            "REQUEST_REPLAY",
            `"nonce" expected a fresh nonce, got one this server already accepted from ${member}`,
            {
              field: "nonce",
            },
          );
        const last = (
          this.db
            .prepare("SELECT last_seq FROM server_session_seq WHERE room_id = ? AND member = ? AND session = ?")
            .get(this.roomId, member, session) as { last_seq: number } | undefined
        )?.last_seq;
        if (last !== undefined && seq <= last)
          throw new CleanRoomError(
            "REQUEST_REORDER",
            `"seq" expected a number above the last accepted request of ${member}'s session, got an older one`,
            { field: "seq" },
          );
        this.db
          .prepare(
            `INSERT INTO server_session_seq (room_id, member, session, last_seq, last_time) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(room_id, member, session) DO UPDATE SET last_seq = excluded.last_seq, last_time = max(last_time, excluded.last_time)`,
          )
          .run(this.roomId, member, session, seq, time);
        this.db
          .prepare("INSERT INTO server_nonces (room_id, member, nonce, time) VALUES (?, ?, ?, ?)")
          .run(this.roomId, member, nonce, time);
        this.db.prepare("DELETE FROM server_nonces WHERE room_id = ? AND time < ?").run(this.roomId, time - 2 * windowMs);
        this.db.prepare("DELETE FROM server_session_seq WHERE room_id = ? AND last_time < ?").run(this.roomId, time - 2 * windowMs);
      })
      .immediate();
  }

  /** How many sessions of `member` the server tracks (tests; sessions idle for twice the window are dropped). */
  sessions(member: string): number {
    return (
      this.db.prepare("SELECT count(*) AS n FROM server_session_seq WHERE room_id = ? AND member = ?").get(this.roomId, member) as {
        n: number;
      }
    ).n;
  }

  storeApproval(templateHash: string, member: string, publicKey: string, signature: string): void {
    this.db
      .prepare("INSERT OR REPLACE INTO server_approval_sigs (room_id, template_hash, member, public_key, signature) VALUES (?, ?, ?, ?, ?)")
      .run(this.roomId, templateHash, member, publicKey, signature);
  }

  approvalSignatures(templateHash?: string): { templateHash: string; member: string; publicKey: string; signature: string }[] {
    const rows = (
      templateHash === undefined
        ? this.db.prepare("SELECT * FROM server_approval_sigs WHERE room_id = ? ORDER BY template_hash, member").all(this.roomId)
        : this.db
            .prepare("SELECT * FROM server_approval_sigs WHERE room_id = ? AND template_hash = ? ORDER BY member")
            .all(this.roomId, templateHash)
    ) as { template_hash: string; member: string; public_key: string; signature: string }[];
    return rows.map((r) => ({ templateHash: r.template_hash, member: r.member, publicKey: r.public_key, signature: r.signature }));
  }

  /**
   * Members whose recorded approval of `templateHash` carries no valid signature under their
   * active key (a forged or stale approval): `approvedBy` comes from the template registry.
   */
  unsignedApprovals(templateHash: string, approvedBy: string[]): string[] {
    const sigs = new Map(this.approvalSignatures(templateHash).map((s) => [s.member, s]));
    return approvedBy.filter((m) => {
      const spec = this.activeMember(m);
      const s = sigs.get(m);
      return (
        !spec || !s || !verifyStatement({ statement: "approve", room: this.roomId, templateHash, member: m }, spec.publicKey, s.signature)
      );
    });
  }
}
