/**
 * `psiMatch` at the door: Private Set Intersection between two parties of a lab.
 *
 * The whole request (both sides, every option) is validated before any key is drawn or any
 * message is computed. Per-run randomness is forked from the lab's own rng with a label drawn
 * from that rng (no process-wide counter): two labs never share a stream, and a seeded lab
 * reproduces its runs.
 *
 * Threat model: see identity/psi.ts (semi-honest parties, ECDH on ristretto255 with RFC 9380
 * hash-to-group). The door adds: malformed sides (a party that is not a name, rows that are
 * not plain data) are refused with a typed error instead of running.
 */
import { z } from "zod";
import { types } from "node:util";
import { hex } from "../crypto/primitives.js";
import { rngStamp, TEACHING_LABEL, type Rng } from "../rng.js";
import type { Lab, Party } from "../session.js";
import { attachJoinKeys, runPsi, type PsiRunResult } from "../identity/run-psi.js";
import type { ProgressFn } from "../identity/psi-backend.js";
import { withMimeBundle } from "../display/bundle.js";
import { lazyProgress, withProgress } from "../display/progress.js";
import { psiWithPeer as peerPsi, type PsiPartyResult, type PsiPeerAuth, type PsiWithPeerOptions } from "../identity/psi-party.js";
import { CleanRoomError, invalid } from "../errors.js";
import { collaborationHash, verifyStatement, type CollaborationDef } from "../server/protocol.js";
import type { CollaborationView } from "../server/membership.js";
import { RemoteRoom } from "../server/client.js";
import { psiPayloadFromRun } from "../display/from-results.js";
import { datasetName, parseAtDoor, partyArg, requireLab, splitProgress } from "./door.js";

const Side = z.strictObject({
  party: partyArg,
  /** Objects with an identifier column, or the identifiers themselves. */
  rows: z.union([z.array(z.record(z.string().max(64), z.unknown())), z.array(z.string())]).refine((r) => r.length > 0, "at least one row"),
  /** Identifier column of this side (default: the request's `column`, else "email"). */
  column: datasetName.optional(),
});

const PsiInput = z.strictObject({
  a: Side,
  b: Side,
  column: datasetName.optional(),
  kind: z.enum(["email", "phone"]).optional(),
  mode: z.enum(["joinKeys", "intersection", "cardinality"]).optional(),
  backend: z.enum(["libsodium", "noble"]).optional(),
  threads: z.number().int().min(1).max(64).optional(),
  minSetSize: z.number().int().min(1).max(100_000_000).optional(),
  maxSetSize: z.number().int().min(1).max(100_000_000).optional(),
  channel: z.boolean().optional(),
  keepMessages: z.boolean().optional(),
  normalize: z
    .strictObject({
      stripPlus: z.boolean().optional(),
      providerRules: z.boolean().optional(),
      defaultCountry: z
        .string()
        .regex(/^[A-Z]{2}$/)
        .optional(),
    })
    .optional(),
  /** Override the lab's randomness for this run (teaching: `{ seed }`, labelled "not private"). */
  rng: z.union([z.literal("secure"), z.strictObject({ seed: z.string().min(1).max(256) })]).optional(),
});
/** What {@link psiMatch} takes (checked by the strict schema above). */
export interface PsiInput {
  a: PsiSide;
  b: PsiSide;
  column?: string;
  kind?: "email" | "phone";
  mode?: "joinKeys" | "intersection" | "cardinality";
  backend?: "libsodium" | "noble";
  threads?: number;
  minSetSize?: number;
  maxSetSize?: number;
  channel?: boolean;
  keepMessages?: boolean;
  normalize?: { stripPlus?: boolean; providerRules?: boolean; defaultCountry?: string };
  rng?: "secure" | { seed: string };
  /**
   * Default: in the cleanroom-ts kernel, an in-place progress bar (phases, done/total, ETA).
   * A function receives `(done, total, phase)` reports instead; `false` shows nothing.
   */
  progress?: ProgressFn | boolean;
}

/** What `psiMatch` returns: the protocol run plus each side's rows keyed by join key. */
export interface PsiMatch extends Omit<PsiRunResult, "messages"> {
  /** A's rows with `join_key` added and the identifier column removed; unmatched rows dropped. */
  joinedA: Record<string, unknown>[] | null;
  joinedB: Record<string, unknown>[] | null;
}

/** One side of a PSI as `psiMatch` takes it. */
export interface PsiSide {
  party: Party | string;
  rows: readonly object[] | readonly string[];
  column?: string;
}

function attachKeys(rows: readonly unknown[], keys: (string | null)[] | null, column: string): Record<string, unknown>[] | null {
  if (!keys) return null;
  const objects = rows.filter((r): r is Record<string, unknown> => typeof r === "object" && r !== null);
  if (objects.length !== rows.length) return null; // string rows: nothing to attach to
  return attachJoinKeys(objects, keys, { column, keepUnmatched: false });
}

/**
 * Private Set Intersection (ECDH on ristretto255, RFC 9380 hash-to-curve) between two
 * parties. Default mode `joinKeys`: both sides learn a common pseudonym per matched record
 * and get their rows back keyed by it, ready to `upload`; no identifier crosses.
 *
 * @example
 * const m = await psiMatch(lab, { a: { party: "advertiser", rows: study.exposures }, b: { party: "retailer", rows: study.purchases } });
 * m.matchReport.partyA.matchRate
 */
export async function psiMatch(lab: Lab, input: PsiInput): Promise<PsiMatch> {
  // a joined room's kernel is ONE member: it may not hold the other side's identifiers, which psiMatch needs in this process
  if (typeof lab === "object" && lab !== null && !types.isProxy(lab) && (lab as unknown) instanceof RemoteRoom)
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"lab" expected a lab from openLab: psiMatch runs both sides in one kernel, and a joined room's kernel is one member — ` +
        `run your side with psiWithPeer({ room, as, peer, listen | connect, rows }) while the peer runs its own (nothing was sent)`,
      { field: "lab", expected: "a lab from openLab", use: "psiWithPeer" },
    );
  const l = requireLab(lab, "psiMatch");
  const { rest, progress: p } = splitProgress(input);
  const progress = p === true ? undefined : p; // true: the default bar
  const o = parseAtDoor(PsiInput, rest, "input", new Set(["input.a.rows", "input.b.rows"]));
  const colA = o.a.column ?? o.column ?? "email";
  const colB = o.b.column ?? o.column ?? "email";
  // each side may name its identifier column differently: hand runPsi the identifiers only
  const ids = (rows: readonly unknown[], col: string) =>
    rows.map((r) => (r !== null && typeof r === "object" ? (r as Record<string, unknown>)[col] : r));
  const { a, b, column: _c, rng, ...opts } = o;
  const runWith = (report: ProgressFn | undefined) =>
    runPsi(ids(a.rows, colA), ids(b.rows, colB), {
      ...opts,
      names: { a: a.party, b: b.party },
      rng: rng ?? l.rng.fork(`psi:${hex(l.rng.bytes(8))}`),
      sessionLabel: l.roomId,
      ...(report ? { progress: report } : {}),
    });
  // Each side's set is hashed and blinded by its owner, then blinded by the peer: 2 units per row.
  const run =
    progress === undefined
      ? await withProgress(`PSI (${o.mode ?? "joinKeys"})`, { total: 2 * (a.rows.length + b.rows.length), ...stampOf(rng, l.rng) }, runWith)
      : await runWith(progress || undefined);
  const { messages: _m, ...others } = run;
  const result: PsiMatch = {
    ...others,
    joinedA: attachKeys(a.rows, run.joinKeysA, colA),
    joinedB: attachKeys(b.rows, run.joinKeysB, colB),
  };
  return withMimeBundle(result, (r) => psiPayloadFromRun(r as PsiRunResult, { title: `PSI (${r.mode})` }));
}

/** The bar's randomness label: a seeded run is labelled "teaching mode — not private" like its result. */
function stampOf(rng: unknown, fallback?: Rng): { rngMode: "secure" | "seeded"; label?: string } {
  if (rng && typeof rng === "object" && "seed" in rng) return { rngMode: "seeded", label: TEACHING_LABEL };
  if (rng && typeof rng === "object" && "mode" in rng) return rngStamp(rng as Rng);
  if (rng === undefined && fallback) return rngStamp(fallback);
  return { rngMode: "secure" };
}

/** What {@link psiWithPeer} takes: identity/psi-party.ts's options, with `progress` as in {@link PsiInput}. */
export interface PsiWithPeerInput extends Omit<PsiWithPeerOptions, "progress" | "peerAuth"> {
  /**
   * A joined room whose active collaboration lists both members: the peer must then prove, over
   * this session's channel transcript, that it holds the Ed25519 key the collaboration lists for
   * `peer` (and this side proves its own) before any blinded point is sent. An impostor is
   * refused with SIGNATURE_INVALID. Without `room` the peer is only who its hello says it is.
   */
  room?: RemoteRoom;
  /**
   * Default: in the cleanroom-ts kernel, an in-place progress bar that appears once the peer is
   * connected and the work starts (phases, done/total, ETA). A function receives `(done, total,
   * phase)` reports instead; `false` shows nothing.
   */
  progress?: ProgressFn | boolean;
}

/**
 * Run this kernel's side of PSI with another party's kernel (or scripts/psi-party.mjs process)
 * over a socket on 127.0.0.1, under the SecureChannel; returns this side's result only. In the
 * kernel it shows a progress bar by default, like {@link psiMatch}. The peer's set size is not
 * known before its first message: the bar starts at twice this side's rows and grows.
 *
 * @example
 * // advertiser's notebook                                 // retailer's notebook
 * await psiWithPeer({ as: "advertiser", peer: "retailer",   await psiWithPeer({ as: "retailer", peer: "advertiser",
 *   listen: 7711, rows: exposures })                          connect: 7711, rows: purchases })
 */
export async function psiWithPeer(input: PsiWithPeerInput): Promise<PsiPartyResult> {
  const { rest, progress: p } = splitProgress(input);
  const progress = p === true ? undefined : p; // true: the default bar
  const { room, ...plain } = (rest ?? {}) as PsiWithPeerInput & { room?: RemoteRoom };
  const o = plain as PsiWithPeerOptions;
  if (room !== undefined) o.peerAuth = await memberPsiAuth(room, o.as, o.peer);
  if (progress !== undefined) return peerPsi({ ...o, ...(progress ? { progress } : {}) });
  const rows = o !== null && typeof o === "object" && Array.isArray(o.rows) ? o.rows.length : 0;
  const who = o !== null && typeof o === "object" && typeof o.peer === "string" && /^[a-z][a-z0-9_-]{0,31}$/.test(o.peer) ? o.peer : "peer";
  const bar = lazyProgress(`PSI with ${who} (${o?.mode ?? "joinKeys"})`, { total: 2 * rows, ...stampOf(o?.rng) });
  try {
    const r = await peerPsi({ ...o, ...(bar.report ? { progress: bar.report } : {}) });
    bar.finish("done");
    return r;
  } catch (e) {
    bar.finish("failed");
    throw e;
  }
}

/**
 * The peer's key from the room's active collaboration — checked here, in this kernel: the
 * definition hashes to what the server says, and this member's own acceptance signature over
 * that hash verifies under its own key (so it is the definition this member signed, not one the
 * operator made up) — and a {@link PsiPeerAuth} that signs/verifies "psi" statements with it.
 */
async function memberPsiAuth(room: RemoteRoom, as: unknown, peer: unknown): Promise<PsiPeerAuth> {
  if (typeof room !== "object" || room === null || typeof (room as RemoteRoom).signStatement !== "function")
    invalid("room", "a joined room from joinRoom", room);
  if (as !== room.member) invalid("as", `this room handle's member "${room.member}"`, as, "ACCESS_DENIED");
  if (typeof peer !== "string" || peer === as) invalid("peer", "another member's name", peer);
  const v = await room.request<CollaborationView>("collab.status");
  const a = v.active;
  const refuse = (why: string): never => {
    throw new CleanRoomError("NOT_A_MEMBER", `"peer" expected a member of the active collaboration you accepted, got ${why}`, {
      field: "peer",
    });
  };
  if (!a) return refuse("no active collaboration");
  const hash = collaborationHash(a.definition as CollaborationDef);
  const mine = a.definition.members.find((m) => m.name === room.member);
  const accepted =
    hash === a.hash &&
    mine?.publicKey === room.publicKey &&
    verifyStatement(
      { statement: "accept", room: room.roomId, collaboration: hash, member: room.member },
      mine.publicKey,
      a.acceptances[room.member] ?? "",
    );
  if (!accepted) return refuse("a definition this member did not sign");
  const theirs = a.definition.members.find((m) => m.name === peer);
  if (!theirs) return refuse(`a name that is not one ("${peer}")`);
  return {
    prove: (transcript) => room.signStatement({ statement: "psi", room: room.roomId, member: room.member, peer, transcript }),
    verify: (transcript, proof) =>
      verifyStatement({ statement: "psi", room: room.roomId, member: peer, peer: room.member, transcript }, theirs.publicKey, proof),
  };
}
