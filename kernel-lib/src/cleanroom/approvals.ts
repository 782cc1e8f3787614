/**
 * Template approvals: every data owner signs off on a template hash; only an approved hash
 * runs (AWS analysis templates, Snowflake consumer templates in multi-provider rooms).
 *
 * State lives in the room's better-sqlite3 database (tables `cleanroom_templates` and
 * `cleanroom_approvals`), so a kernel restart keeps approvals and two kernels on one room
 * agree. An owner approves only after the template passes the schema/rule checks for the
 * room (`checkTemplate`); a party that owns none of the inputs cannot approve
 * (`ACCESS_DENIED`). Threat model: a curious analyst who may edit a template after
 * approval — the edit changes the hash and `requireApproved` refuses it.
 */
import type { Database } from "better-sqlite3";
import { CleanRoomError } from "../errors.js";
import { checkTemplate, type CheckedTemplate, type PlanContext } from "./plan.js";
import { thresholdText } from "./review.js";
import { parseTemplate, templateMinimum, type ParsedTemplate } from "./template.js";

/** Status of one template in the room. */
export interface ApprovalStatus {
  templateHash: string;
  name: string;
  owners: string[];
  approvedBy: string[];
  approved: boolean;
  /**
   * Set by `approve`: the threshold the template will actually run with in this room — the
   * maximum of its own minimum and every owner's COUNT_DISTINCT minimum (`from`: "template" or
   * the `owner/dataset` whose rule set it), and the same sentence a preview shows.
   */
  threshold?: { effective: number; from: string; template: number; text: string };
}

/**
 * Approval registry for one room.
 *
 * @example
 * const reg = new TemplateRegistry(db, "room-1");
 * reg.approve(template, "advertiser", ctx); reg.approve(template, "retailer", ctx);
 * reg.requireApproved(template, ctx) // → { template, hash, checked }
 */
export class TemplateRegistry {
  constructor(
    private readonly db: Database,
    private readonly roomId: string,
  ) {
    db.exec(
      `CREATE TABLE IF NOT EXISTS cleanroom_templates (room_id TEXT NOT NULL, template_hash TEXT NOT NULL, name TEXT NOT NULL, ` +
        `canonical TEXT NOT NULL, owners TEXT NOT NULL, PRIMARY KEY (room_id, template_hash));\n` +
        `      CREATE TABLE IF NOT EXISTS cleanroom_approvals (room_id TEXT NOT NULL, template_hash TEXT NOT NULL, party TEXT NOT NULL, ` +
        `approved_at TEXT NOT NULL, PRIMARY KEY (room_id, template_hash, party));`,
    );
  }

  /**
   * Record `party`'s approval of a template (idempotent). The template must pass the room's
   * checks first; `ACCESS_DENIED` if `party` owns none of its inputs. `input` is template JSON
   * or a `ParsedTemplate` (used as is: parsed and hashed once).
   * @example reg.approve(liftTemplate(), "retailer", ctx).approved // false until every owner approved
   */
  approve(input: ParsedTemplate | unknown, party: string, ctx: PlanContext): ApprovalStatus {
    const t = parseTemplate(input);
    const checked = checkTemplate(t, ctx);
    if (!checked.owners.includes(party))
      throw new CleanRoomError("ACCESS_DENIED", `party "${party}" owns no input of this template and cannot approve it`, {
        field: "party",
      });
    const hash = t.hash;
    this.db.transaction(() => {
      this.db
        .prepare("INSERT OR IGNORE INTO cleanroom_templates (room_id, template_hash, name, canonical, owners) VALUES (?, ?, ?, ?, ?)")
        .run(this.roomId, hash, t.name, t.canonical, JSON.stringify(checked.owners));
      this.db
        .prepare("INSERT OR IGNORE INTO cleanroom_approvals (room_id, template_hash, party, approved_at) VALUES (?, ?, ?, ?)")
        .run(this.roomId, hash, party, new Date().toISOString());
    })();
    const own = templateMinimum(t);
    return {
      ...this.status(hash),
      threshold: {
        effective: checked.minimum,
        from: checked.minimumFrom,
        template: own,
        text: thresholdText(checked.minimum, checked.minimumFrom, own),
      },
    };
  }

  /** Approval status of a hash (`NOT_FOUND` if never proposed). */
  status(hash: string): ApprovalStatus {
    const row = this.db
      .prepare("SELECT name, owners FROM cleanroom_templates WHERE room_id = ? AND template_hash = ?")
      .get(this.roomId, hash) as { name: string; owners: string } | undefined;
    if (!row)
      throw new CleanRoomError("NOT_FOUND", `"templateHash" expected a proposed template, got an unknown hash`, { field: "templateHash" });
    const owners = JSON.parse(row.owners) as string[];
    const approvedBy = (
      this.db
        .prepare("SELECT party FROM cleanroom_approvals WHERE room_id = ? AND template_hash = ? ORDER BY party")
        .all(this.roomId, hash) as { party: string }[]
    ).map((r) => r.party);
    return { templateHash: hash, name: row.name, owners, approvedBy, approved: owners.every((o) => approvedBy.includes(o)) };
  }

  /**
   * The gate before running: parse (unless `input` is already a `ParsedTemplate`), require
   * approval of its hash by every current owner, and re-check against the room (rules may
   * have tightened since approval).
   * `QUERY_NOT_APPROVED` otherwise.
   */
  requireApproved(input: ParsedTemplate | unknown, ctx: PlanContext): { template: ParsedTemplate; hash: string; checked: CheckedTemplate } {
    const template = parseTemplate(input);
    const hash = template.hash;
    const row = this.db.prepare("SELECT owners FROM cleanroom_templates WHERE room_id = ? AND template_hash = ?").get(this.roomId, hash);
    if (!row)
      throw new CleanRoomError(
        "QUERY_NOT_APPROVED",
        `template ${hash.slice(0, 12)}… is not approved in this room (any change to a template changes its hash)`,
        { field: "templateHash", templateHash: hash },
      );
    const st = this.status(hash);
    if (!st.approved) {
      const missing = st.owners.filter((o) => !st.approvedBy.includes(o));
      throw new CleanRoomError("QUERY_NOT_APPROVED", `template ${hash.slice(0, 12)}… still needs approval from ${missing.join(", ")}`, {
        field: "templateHash",
        templateHash: hash,
        missing,
      });
    }
    const checked = checkTemplate(template, ctx);
    return { template, hash, checked };
  }

  /** All approvals of the room, for "nothing changed" checks and the enclave measurement. */
  snapshot(): string[] {
    return (
      this.db
        .prepare("SELECT template_hash, party FROM cleanroom_approvals WHERE room_id = ? ORDER BY template_hash, party")
        .all(this.roomId) as { template_hash: string; party: string }[]
    ).map((r) => `${r.template_hash}:${r.party}`);
  }

  /** Hashes approved by every owner (sorted). */
  approvedHashes(): string[] {
    const hashes = (
      this.db.prepare("SELECT template_hash FROM cleanroom_templates WHERE room_id = ? ORDER BY template_hash").all(this.roomId) as {
        template_hash: string;
      }[]
    ).map((r) => r.template_hash);
    return hashes.filter((h) => this.status(h).approved);
  }
}
