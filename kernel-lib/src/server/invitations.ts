/**
 * A class in a room: invitation codes. A teacher's server (`npm run room -- --class 30`) makes
 * one room per pair of students (`pair-01` … `pair-15`), each with two seats — `retailer` (owns
 * data) and `advertiser` (owns data, may query and receive) — and one single-use, expiring code
 * per seat, e.g. `pair-07-retailer-k3vq8xw2mz`. A student redeems its code with
 * `joinRoom(url, { as: "retailer", identity, invitation: code })`: the request is signed by the
 * student's Ed25519 key (proof it holds the key it registers), the code's seat must be the name
 * the student joins as, and the key becomes that seat's member key. When both seats of a pair
 * are taken, the server writes the pair's collaboration definition (the two keys, the seats'
 * abilities); each student checks it lists its own key and signs its acceptance as in any room,
 * and only then does the pair's collaboration run anything.
 *
 * Threat model: the codes are secrets handed out by the teacher. They come from the OS CSPRNG
 * (even on a seeded, teaching-mode server: a code is an access secret, not a lesson value), are
 * stored only as SHA-256 hashes (the database never holds one in plaintext; the teacher's copy
 * is the 0600 `<store>.invitations.json`), and a code that is unknown, used by another key,
 * expired, or for another seat is refused with one message (no oracle telling which), before any
 * side effect, and audited. A code works once: redeeming it again with the same key is a no-op
 * that returns the same seat (a re-run notebook), with any other key a refusal. A student of one
 * pair cannot act in another pair's room: that room's members are the two keys its codes
 * registered, and every request is checked against them.
 */
import crypto from "node:crypto";
import type Database from "better-sqlite3";
import { CleanRoomError } from "../errors.js";
import type { Ability, MemberSpec } from "./protocol.js";

/** The seats of a pair and their abilities (as lesson 08: the retailer owns data; the advertiser owns, queries, receives). */
export const PAIR_SEATS: readonly { seat: string; abilities: Ability[] }[] = [
  { seat: "retailer", abilities: ["own"] },
  { seat: "advertiser", abilities: ["own", "query", "receive"] },
];

/** Default lifetime of an invitation code: 7 days. */
export const DEFAULT_INVITATION_TTL_MS = 7 * 24 * 3600 * 1000;

/** One code as the teacher hands it out (plaintext exists only here and in the teacher's file). */
export interface Invitation {
  room: string;
  seat: string;
  code: string;
  expiresAt: string;
}

/** What a pair looks like to the teacher (no codes, no keys' secrets). */
export interface PairStatus {
  room: string;
  seats: { seat: string; joined: boolean; fingerprint: string | null }[];
}

const ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"; // no 0/o, 1/l/i: read aloud, typed by hand
const CODE = /^(pair-\d{2,3})-([a-z]+)-([a-z2-9]{10})$/;

const hashOf = (code: string): string => crypto.createHash("sha256").update(`cleanroom-lab/invitation/v1\n${code}`).digest("hex");

function secret(n: number): string {
  // rejection sampling over the OS CSPRNG: uniform over the alphabet
  let out = "";
  while (out.length < n) {
    for (const b of crypto.randomBytes(n * 2)) {
      if (b < 256 - (256 % ALPHABET.length) && out.length < n) out += ALPHABET[b % ALPHABET.length];
    }
  }
  return out;
}

/** The refusal for every bad code: one message whatever the reason (unknown, used, expired, other seat). */
export function refuseInvitation(): never {
  throw new CleanRoomError(
    "ACCESS_DENIED",
    `"invitation" expected a valid, unused, unexpired invitation code for the seat you join as, got one that is not`,
    { field: "invitation" },
  );
}

export class Invitations {
  constructor(
    private readonly db: Database.Database,
    private readonly classRoom: string,
  ) {
    db.exec(`
      CREATE TABLE IF NOT EXISTS server_rooms (class_room TEXT NOT NULL, room_id TEXT NOT NULL, PRIMARY KEY (class_room, room_id));
      CREATE TABLE IF NOT EXISTS server_invites (code_hash TEXT PRIMARY KEY, class_room TEXT NOT NULL, room_id TEXT NOT NULL,
        seat TEXT NOT NULL, expires_at INTEGER NOT NULL, used_at INTEGER, used_key TEXT);
      CREATE TABLE IF NOT EXISTS server_seats (room_id TEXT NOT NULL, member TEXT NOT NULL, public_key TEXT NOT NULL,
        abilities_json TEXT NOT NULL, PRIMARY KEY (room_id, member));`);
  }

  /** The pair rooms this server serves beside its own room. */
  rooms(): string[] {
    return (
      this.db.prepare("SELECT room_id FROM server_rooms WHERE class_room = ? ORDER BY room_id").all(this.classRoom) as { room_id: string }[]
    ).map((r) => r.room_id);
  }

  /**
   * Make rooms and codes for `students` students (one room per pair; an odd student gets a pair
   * of its own with an empty seat). Only once per store: a restart keeps the class it has.
   * Returns the plaintext codes (null if the class already exists).
   */
  createClass(students: number, ttlMs: number, now: number): Invitation[] | null {
    if (!Number.isInteger(students) || students < 2 || students > 200)
      throw new CleanRoomError("PARAM_INVALID", `"class" expected a number of students from 2 to 200`, { field: "class" });
    if (this.rooms().length > 0) return null;
    const pairs = Math.ceil(students / 2);
    const width = pairs > 99 ? 3 : 2;
    const out: Invitation[] = [];
    const expires = now + ttlMs;
    this.db
      .transaction(() => {
        for (let p = 1; p <= pairs; p++) {
          const room = `pair-${String(p).padStart(width, "0")}`;
          this.db.prepare("INSERT INTO server_rooms (class_room, room_id) VALUES (?, ?)").run(this.classRoom, room);
          for (const { seat } of PAIR_SEATS) {
            const code = `${room}-${seat}-${secret(10)}`;
            this.db
              .prepare("INSERT INTO server_invites (code_hash, class_room, room_id, seat, expires_at) VALUES (?, ?, ?, ?, ?)")
              .run(hashOf(code), this.classRoom, room, seat, expires);
            out.push({ room, seat, code, expiresAt: new Date(expires).toISOString() });
          }
        }
      })
      .immediate();
    return out;
  }

  /**
   * Redeem `code` for `member` with `publicKey` (the request's signature already proved the
   * key). Atomically: the code must exist, be for this seat, unexpired, and unused (or used by
   * this very key). Returns the pair room, and the seats' member specs once both are taken.
   */
  redeem(code: string, member: string, publicKey: string, now: number): { room: string; members: MemberSpec[] | null; fresh: boolean } {
    const m = CODE.exec(code);
    if (!m) return refuseInvitation();
    return this.db
      .transaction(() => {
        const row = this.db
          .prepare("SELECT * FROM server_invites WHERE code_hash = ? AND class_room = ?")
          .get(hashOf(code), this.classRoom) as
          { room_id: string; seat: string; expires_at: number; used_at: number | null; used_key: string | null } | undefined;
        if (!row || row.seat !== member || row.room_id !== m[1]) return refuseInvitation();
        if (row.used_at !== null) {
          if (row.used_key !== publicKey) return refuseInvitation();
          return { room: row.room_id, members: null, fresh: false };
        }
        if (now > row.expires_at) return refuseInvitation();
        const taken = this.db.prepare("SELECT 1 FROM server_seats WHERE room_id = ? AND public_key = ?").get(row.room_id, publicKey);
        if (taken) return refuseInvitation(); // one key, one seat
        const abilities = PAIR_SEATS.find((s) => s.seat === member)!.abilities;
        this.db.prepare("UPDATE server_invites SET used_at = ?, used_key = ? WHERE code_hash = ?").run(now, publicKey, hashOf(code));
        this.db
          .prepare("INSERT INTO server_seats (room_id, member, public_key, abilities_json) VALUES (?, ?, ?, ?)")
          .run(row.room_id, member, publicKey, JSON.stringify(abilities));
        const seats = this.seats(row.room_id);
        return { room: row.room_id, members: seats.length === PAIR_SEATS.length ? seats : null, fresh: true };
      })
      .immediate();
  }

  /** The member specs registered in a pair room so far (seat order). */
  seats(room: string): MemberSpec[] {
    const rows = this.db.prepare("SELECT member, public_key, abilities_json FROM server_seats WHERE room_id = ?").all(room) as {
      member: string;
      public_key: string;
      abilities_json: string;
    }[];
    return PAIR_SEATS.flatMap(({ seat }) => {
      const r = rows.find((x) => x.member === seat);
      return r ? [{ name: r.member, publicKey: r.public_key, abilities: JSON.parse(r.abilities_json) as Ability[] }] : [];
    });
  }

  /** The seat registered for `member` in `room` (before the pair's collaboration exists). */
  seat(room: string, member: string): MemberSpec | null {
    return this.seats(room).find((s) => s.name === member) ?? null;
  }
}
