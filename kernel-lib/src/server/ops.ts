/**
 * The room's operations, run for a member who passed the server's gate (server/server.ts):
 * collaboration management, and the verbs — each calling the Lab's own method with the signer
 * as the party, so the one query road, the one charge and the one upload road are unchanged.
 * Authority checks here: abilities (`own`, `query`, `receive`), "a member acts only as itself",
 * and signed approvals before a template runs. A refusal raised here with `details.audit` is
 * audited by the server; refusals inside the Lab's roads audit themselves.
 */
import { CleanRoomError, type ErrorCode } from "../errors.js";
import { internals, type Lab } from "../session/lab.js";
import type { QueryRequest } from "../session/types.js";
import { parseTemplate, templateMinimum } from "../cleanroom/template.js";
import { thresholdText } from "../cleanroom/review.js";
import { parseCost } from "../dp/accountant.js";
import type { Membership } from "./membership.js";
import { previewInRoom } from "../session/preview.js";
import { z } from "zod";

/** The previewQuery op's input, checked here too: a member may skip its own door. */
const PreviewBody = z.strictObject({
  template: z.union([z.string().max(128), z.record(z.string(), z.unknown())]),
  params: z.record(z.string().max(64), z.unknown()).optional(),
  party: z.string().max(64).optional(),
  executor: z.literal("engine").optional(),
  confidence: z.number().min(0.5).lt(1).optional(),
});
import { ROOM_PROTOCOL, verifyStatement, type MemberSpec, type Op } from "./protocol.js";
import type { EnclaveRelay } from "./enclave-ops.js";
export { EnclaveRelay, type EnclaveServing } from "./enclave-ops.js";
import { enclaveQuery } from "../enclave-room.js";

/** What an operation needs of the server. */
export interface OpContext {
  lab: Lab;
  membership: Membership;
  publicKey: string;
  fingerprint: string;
  /** Enclave mode's relay (the server's own room; a class's pair rooms have none). */
  enclave?: EnclaveRelay;
}

const fail = (code: ErrorCode, field: string, message: string): never => {
  throw new CleanRoomError(code, `"${field}" ${message}`, { field });
};

function deny(m: MemberSpec, ability: "own" | "query" | "receive", what: string): void {
  if (!m.abilities.includes(ability))
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `member "${m.name}" may not ${what} (ability "${ability}" not granted by the collaboration)`,
      {
        field: "member",
        audit: true,
      },
    );
}

function self(m: MemberSpec, party: unknown, field: string): string {
  const p = typeof party === "object" && party !== null ? (party as { name?: unknown }).name : party;
  if (p !== undefined && p !== m.name)
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"${field}" expected the signing member "${m.name}" (a member acts only as itself), got another party`,
      {
        field,
        audit: true,
      },
    );
  return m.name;
}

/** Every proposed template's approval status with the members' stored signatures. */
function approvalViews(ctx: OpContext) {
  const { lab, membership } = ctx;
  const room = internals(lab).room;
  const hashes = (
    lab.db.prepare("SELECT template_hash FROM cleanroom_templates WHERE room_id = ? ORDER BY template_hash").all(lab.roomId) as {
      template_hash: string;
    }[]
  ).map((x) => x.template_hash);
  return hashes.map((h) => ({ ...room.templates.status(h), signatures: membership.approvalSignatures(h) }));
}

/** `sha256:<fingerprint>` → `owner/name` (identical uploads share a budget: "a/x = b/y"). */
function datasetNames(ctx: OpContext): Record<string, string> {
  const names: Record<string, string> = {};
  for (const d of internals(ctx.lab).room.catalogNames()) {
    const k = `sha256:${d.fingerprint}`;
    names[k] = names[k] ? `${names[k]} = ${d.owner}/${d.name}` : `${d.owner}/${d.name}`;
  }
  return names;
}

function need(ctx: OpContext): EnclaveRelay {
  if (!ctx.enclave)
    throw new CleanRoomError("STATE_INVALID", `"room" expected the server's own room (a class's pair rooms serve no enclave mode)`, {
      field: "room",
    });
  return ctx.enclave;
}

export async function runOp(ctx: OpContext, op: Op, m: MemberSpec, body: Record<string, unknown>): Promise<unknown> {
  const { lab, membership } = ctx;
  const room = internals(lab).room;
  const input = (body.input ?? {}) as Record<string, unknown>;
  switch (op) {
    case "room.info":
      return {
        room: lab.roomId,
        protocol: ROOM_PROTOCOL,
        publicKey: ctx.publicKey,
        fingerprint: ctx.fingerprint,
        collaboration: membership.view(),
      };
    case "collab.status":
      return membership.view();
    case "collab.create": {
      const b = body as { definition: Parameters<Membership["create"]>[0] };
      return { collaboration: membership.create(b.definition, m.name), ...membership.view() };
    }
    case "collab.propose": {
      const b = body as { definition: Parameters<Membership["propose"]>[0] };
      return { collaboration: membership.propose(b.definition, m.name), ...membership.view() };
    }
    case "collab.accept": {
      const b = body as { collaboration: string; signature: string };
      const members = membership.accept(b.collaboration, m.name, b.signature);
      // now active: every member is a party of the room (with its own budget); nobody else is
      if (members) for (const x of members) lab.party(x.name);
      return membership.view();
    }
    case "upload": {
      deny(m, "own", "upload datasets");
      const { party, name, rows, sealing, ...opts } = input as Record<string, unknown>;
      const owner = self(m, party, "input.party");
      if (sealing !== undefined && sealing !== "gate")
        fail(
          "PARAM_INVALID",
          "input.sealing",
          'expected "gate" (an enclave upload is sealed in the owner\'s kernel and sent as enclave.upload)',
        );
      if (typeof name !== "string") fail("PARAM_INVALID", "input.name", "expected a dataset name");
      if (!Array.isArray(rows) || rows.length === 0) fail("PARAM_INVALID", "input.rows", "expected at least one row");
      return lab.upload(owner, name as string, rows, opts as never);
    }
    case "datasets":
      return lab.datasets(self(m, input.party, "input.party"));
    case "declarePurpose": {
      const party = self(m, input.party, "input.party");
      return lab.declarePurpose({ ...(input as { analyst: string; purpose: string; justification: string }), party });
    }
    case "approveTemplate": {
      deny(m, "own", "approve templates (only data owners approve)");
      const party = self(m, input.party, "input.party");
      const b = body as { templateHash: string; signature: string };
      if (input.executor !== undefined && input.executor !== "engine" && input.executor !== "enclave")
        fail("PARAM_INVALID", "input.executor", 'expected "engine" or "enclave"');
      const t = room.resolveTemplate(input.template);
      const hash = parseTemplate(t).hash;
      if (hash !== b.templateHash) fail("PARAM_INVALID", "templateHash", "expected the hash of the template being approved");
      if (!verifyStatement({ statement: "approve", room: lab.roomId, templateHash: hash, member: party }, m.publicKey, b.signature))
        throw new CleanRoomError(
          "SIGNATURE_INVALID",
          `"signature" expected ${party}'s signature over the template hash, got one that does not verify`,
          {
            field: "signature",
            audit: true,
          },
        );
      // enclave mode: the planner reads the enclave catalog (metadata), then the plain one
      const status = input.executor === "enclave" ? internals(lab).enclave().approve(t, party) : lab.approveTemplate(t, party);
      membership.storeApproval(hash, party, m.publicKey, b.signature);
      return { ...status, signatures: membership.approvalSignatures(hash) };
    }
    case "cleanRoomQuery": {
      deny(m, "query", "run queries");
      deny(m, "receive", "receive results (results go only to members who may receive them)");
      const party = self(m, input.party, "input.party");
      if (input.executor !== undefined && input.executor !== "engine" && input.executor !== "enclave")
        fail("PARAM_INVALID", "input.executor", 'expected "engine" or "enclave"');
      if (input.executor === "enclave") need(ctx);
      const t = room.resolveTemplate(input.template);
      const hash = parseTemplate(t).hash;
      let approvedBy: string[] = [];
      try {
        approvedBy = room.templates.status(hash).approvedBy;
      } catch {
        /* never proposed: the road refuses it (QUERY_NOT_APPROVED) */
      }
      const forged = membership.unsignedApprovals(hash, approvedBy);
      if (forged.length)
        throw new CleanRoomError(
          "QUERY_NOT_APPROVED",
          `template ${hash.slice(0, 12)}… has approvals without a valid signature by a current member (${forged.join(", ")}): refused, nothing charged`,
          { field: "templateHash", templateHash: hash, forged, audit: true },
        );
      const req = {
        template: input.template,
        as: { party, analyst: input.analyst },
        purpose: input.purpose,
        ...(input.params ? { params: input.params } : {}),
        ...(input.grant ? { grant: input.grant } : {}),
      } as QueryRequest;
      // the one query road either way; in enclave mode it runs inside the released enclave's process
      const r = input.executor === "enclave" ? await enclaveQuery(lab, req) : await lab.cleanRoomQuery(req);
      const own = templateMinimum(t);
      const { minimum, minimumFrom } = r.suppressed;
      return {
        ...r,
        threshold: {
          effective: minimum,
          from: minimumFrom,
          template: own,
          raised: own < minimum,
          text: thresholdText(minimum, minimumFrom, own),
        },
      };
    }
    case "budget": {
      const queries = Array.isArray(input.queries)
        ? (input.queries as { name: string; cost: unknown }[]).map((q, i) => ({
            name: String(q.name),
            cost: parseCost(q.cost, `input.queries[${i}].cost`),
          }))
        : undefined;
      // bigints cross the wire as decimal strings (the member's door validated them)
      const t = input.target as Record<string, unknown> | undefined;
      const big = (v: unknown, f: string) =>
        v === undefined
          ? undefined
          : typeof v === "string" && /^[1-9]\d{0,30}$/.test(v)
            ? BigInt(v)
            : fail("PARAM_INVALID", f, "expected a positive integer");
      const target = t
        ? {
            ...t,
            ...(t.sensitivity !== undefined ? { sensitivity: big(t.sensitivity, "input.target.sensitivity") } : {}),
            ...(t.l2Squared !== undefined ? { l2Squared: big(t.l2Squared, "input.target.l2Squared") } : {}),
          }
        : undefined;
      return lab.budget({ ...(queries ? { queries } : {}), ...(target ? { target: target as never } : {}) });
    }
    case "audit": {
      const limit = typeof input.limit === "number" ? input.limit : undefined;
      return lab.audit(limit ? { limit } : {});
    }
    case "approvals":
      return { collaboration: membership.view(), templates: approvalViews(ctx) };
    case "previewQuery": {
      // read-only: the same preview as a lab's (session/preview.ts); the party, if any, is the signer
      const q = PreviewBody.safeParse(input);
      if (!q.success) {
        const i = q.error.issues[0]!;
        return fail("PARAM_INVALID", `input.${i.path.join(".")}`, `expected ${i.message}`);
      }
      const party = q.data.party === undefined ? undefined : self(m, q.data.party, "input.party");
      return previewInRoom(lab, { ...q.data, ...(party !== undefined ? { party } : {}) });
    }
    case "template": {
      // the stored content; the member hashes it itself before it signs anything (verbs/room.ts approveTemplate)
      const key = (body as { template: string }).template;
      const rows = lab.db
        .prepare("SELECT template_hash, name, canonical FROM cleanroom_templates WHERE room_id = ? AND (template_hash = ? OR name = ?)")
        .all(lab.roomId, key, key) as { template_hash: string; name: string; canonical: string }[];
      const row = rows.find((r) => r.template_hash === key) ?? (rows.length === 1 ? rows[0] : undefined);
      if (!row)
        fail(
          rows.length ? "INPUT_INVALID" : "NOT_FOUND",
          "body.template",
          rows.length
            ? "expected a template hash (several proposed templates share this name)"
            : "expected the hash or name of a template proposed in this room",
        );
      return { templateHash: row!.template_hash, name: row!.name, template: JSON.parse(row!.canonical) as unknown };
    }
    case "enclave.upload":
      deny(m, "own", "upload datasets");
      return need(ctx).upload(m, body as never);
    case "enclave.launch":
      // launching spawns an enclave process: only a member that queries or owns data asks for one
      if (!m.abilities.includes("query")) deny(m, "own", 'launch an enclave without "query"');
      return need(ctx).launch(m, body as never);
    case "enclave.challenge":
      deny(m, "own", "release keys (only data owners do)");
      return need(ctx).challenge(m, body as never);
    case "enclave.release":
      deny(m, "own", "release keys (only data owners do)");
      return need(ctx).release(m, body as never);
    case "enclave.status":
      return need(ctx).status();
    case "roomStatus": {
      // read-only; allowed while the collaboration is pending (the panel shows who has not accepted yet)
      const collaboration = membership.view();
      return {
        room: lab.roomId,
        protocol: ROOM_PROTOCOL,
        publicKey: ctx.publicKey,
        fingerprint: ctx.fingerprint,
        member: m.name,
        collaboration,
        templates: approvalViews(ctx),
        budget: collaboration.active ? lab.budget({}) : null,
        // the ledger keys dataset budgets by content fingerprint: names (schema) so the panel shows owner/name
        datasetNames: collaboration.active ? datasetNames(ctx) : {},
      };
    }
  }
}
