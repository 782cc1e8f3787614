/**
 * The audit anchor: where a room keeps its latest signed audit head OUTSIDE the database (a
 * stand-in for a transparency log, or a head published to the other parties), and the sticky
 * evidence of a chain that stopped extending that head.
 *
 * Threat model: whoever can edit the room's SQLite file can delete the newest audit rows and
 * the heads table with them. The anchor survives that, so a restarted kernel still knows how
 * long the chain was. Two rules keep the evidence from being laundered or faked:
 *  - a new head replaces the anchored one only if the chain it signs EXTENDS the anchored
 *    head (AuditLog checks that against the database before calling `save`; `save` itself
 *    never moves the count backwards, which also covers a concurrent kernel that published a
 *    longer head first);
 *  - once the chain is found not to extend the anchored head, the finding (where, what) is
 *    written here and never cleared by further use of the room (entries appended over the
 *    hole never make the chain extend that head again; only putting back the exact removed
 *    entries does, and then nothing is lost).
 * Heads are published only AFTER the database COMMIT, so after a crash the anchor is at most
 * one step behind the database (fine), never ahead of it (that is a truncation).
 *
 * The anchor file itself is trusted (it plays the external log); writes are atomic
 * (temp file + rename) and mode 0600.
 */
import * as fs from "node:fs";
import { CleanRoomError } from "../errors.js";
import { faultPoint } from "../faults.js";

/** What the log found when its chain stopped extending the anchored head. Never cleared. */
/** A signed head of the audit chain: the chain's length and hash, signed with the room's Ed25519 key. */
export interface AuditHead {
  roomId: string;
  count: number;
  hash: string;
  signedAt: string;
  publicKey: string;
  signature: string;
}

export interface TamperEvidence {
  roomId: string;
  problem: "truncated" | "head_mismatch";
  /** Index of the first entry that is gone (truncated) or no longer matches the head. */
  firstBadIndex: number;
  detail: string;
  /** The anchored head the chain failed to extend. */
  head: { count: number; hash: string; signedAt: string };
  /** Entries in the chain when it was found. */
  entriesAtDetection: number;
  detectedAt: string;
}

/**
 * Where a log keeps its latest signed head outside the database, so a kernel restarted on a
 * truncated database still knows how long the chain was.
 */
export interface AuditAnchor {
  load(): AuditHead | null;
  save(head: AuditHead): void;
  /** Sticky tamper evidence (optional: anchors without it only keep the head); the log saves a new finding only when the last one lapsed. */
  loadEvidence?(): TamperEvidence | null;
  saveEvidence?(e: TamperEvidence): void;
}

interface AnchorFile {
  [roomId: string]: AuditHead | { evidence: TamperEvidence } | undefined;
}

/** In-memory anchor (tests, ":memory:" rooms that still want the extension rule). */
export function memoryAnchor(): AuditAnchor & { head: AuditHead | null; evidence: TamperEvidence | null } {
  const a = {
    head: null as AuditHead | null,
    evidence: null as TamperEvidence | null,
    load: () => a.head,
    save: (h: AuditHead) => {
      if ((a.head?.count ?? -1) <= h.count) a.head = h;
    },
    loadEvidence: () => a.evidence,
    saveEvidence: (e: TamperEvidence) => {
      a.evidence = e;
    },
  };
  return a;
}

/**
 * The room's head file `<store>.audit-heads.json`: `{ [roomId]: head, "<roomId>#evidence": { evidence } }`.
 * @example const anchor = fileAnchor("./room.db.audit-heads.json", "lab")
 */
export function fileAnchor(file: string, roomId: string): AuditAnchor {
  const read = (): AnchorFile => {
    try {
      return JSON.parse(fs.readFileSync(file, "utf8")) as AnchorFile;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === "ENOENT") return {};
      throw new CleanRoomError(
        "AUDIT_TAMPERED",
        `the audit head file ${file} is unreadable: the chain's latest signed head cannot be checked`,
        { field: "store" },
      );
    }
  };
  const write = (all: AnchorFile) => {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(all, null, 1), { mode: 0o600 });
    faultPoint("anchor.beforeRename");
    fs.renameSync(tmp, file);
    faultPoint("anchor.afterRename");
  };
  const evKey = `${roomId}#evidence`;
  return {
    load: () => (read()[roomId] as AuditHead | undefined) ?? null,
    save: (head) => {
      const all = read();
      if (((all[roomId] as AuditHead | undefined)?.count ?? -1) > head.count) return;
      all[roomId] = head;
      write(all);
    },
    loadEvidence: () => (read()[evKey] as { evidence: TamperEvidence } | undefined)?.evidence ?? null,
    saveEvidence: (e) => {
      const all = read();
      all[evKey] = { evidence: e };
      write(all);
    },
  };
}
