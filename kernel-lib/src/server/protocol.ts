/**
 * The room protocol (`cleanroom-lab/room/v1`): versioned, schema-checked plain data between a
 * member's kernel and the clean-room server (scripts/room-server.mjs). Documented for humans in
 * docs/protocol.md; this module is the executable form both ends use.
 *
 * Every request is signed by the member's Ed25519 identity over the canonical JSON
 * (crypto/canonical.ts) of `{ protocol, room, member, session, seq, nonce, time, op, body }`; the
 * server refuses, before any side effect, a request whose signature does not verify under the
 * member's key in the collaboration (SIGNATURE_INVALID), from a name that is not a member
 * (NOT_A_MEMBER), with a nonce it has seen from that member in any session (REQUEST_REPLAY), a seq
 * not above the last of the member's session (REQUEST_REORDER) or a time outside the window
 * (REQUEST_STALE). Statements a member signs for others to check
 * (acceptance of a collaboration, approval of a template) are separate signatures over their own
 * canonical JSON, stored by the server and shown to every member.
 *
 * Threat model: a network attacker (the SecureChannel under this protocol stops them), a
 * non-member, a member acting beyond its abilities, and a curious or dishonest operator who can
 * write the database (forged approvals are detected by their missing signatures). Bodies carry
 * names (schema) and rows a data owner chose to upload (keyed join ids after PSI, never raw
 * identifiers); error texts echo names only.
 */
import { z } from "zod";
import { canonicalJson } from "../crypto/canonical.js";
import { ed25519Verify, fromHex, utf8 } from "../crypto/primitives.js";
import { sha256 } from "@noble/hashes/sha2.js";

export const ROOM_PROTOCOL = "cleanroom-lab/room/v1";
export const ROOM_PROTOCOL_VERSION = 1;
/** Requests older or newer than this (ms) against the server's clock are refused as stale. */
export const DEFAULT_TIME_WINDOW_MS = 120_000;

export const MEMBER_NAME = /^[a-z][a-z0-9_-]{0,31}$/;
const memberName = z.string().regex(MEMBER_NAME, "a member name [a-z][a-z0-9_-]{0,31}");
const hex = (bytes: number) => z.string().regex(new RegExp(`^[0-9a-f]{${bytes * 2}}$`), `${bytes * 2} hex characters`);

/** Abilities of a member (AWS Clean Rooms member abilities, plus data ownership). */
export const ABILITIES = ["own", "query", "receive"] as const;
export type Ability = (typeof ABILITIES)[number];

export const MemberSpec = z.strictObject({
  name: memberName,
  /** Ed25519 public key, hex. */
  publicKey: hex(32),
  abilities: z.array(z.enum(ABILITIES)).max(3),
});
export type MemberSpec = z.infer<typeof MemberSpec>;

/** A collaboration definition: version 1 is created, later versions are change requests. */
export const CollaborationDef = z.strictObject({
  room: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/),
  version: z.number().int().min(1).max(1_000_000),
  /** Hash of the definition this one replaces (null for version 1). */
  previous: hex(32).nullable(),
  members: z.array(MemberSpec).min(1).max(256),
  /** Free text shown to members (what the room is for). */
  description: z.string().max(1000).optional(),
});
export type CollaborationDef = z.infer<typeof CollaborationDef>;

/** SHA-256 (hex) of the canonical JSON of a definition: what members sign. */
export function collaborationHash(def: CollaborationDef): string {
  return Buffer.from(sha256(utf8(canonicalJson(def, "collaboration")))).toString("hex");
}

/** A statement a member signs for everyone to check later. */
export type Statement =
  | { statement: "accept"; room: string; collaboration: string; member: string }
  | { statement: "approve"; room: string; templateHash: string; member: string }
  /** PSI between two members: `member` proves its key to `peer` over one channel transcript. */
  | { statement: "psi"; room: string; member: string; peer: string; transcript: string };

/** The bytes a statement's signature covers. */
export const statementBytes = (s: Statement): Uint8Array => utf8(canonicalJson({ protocol: ROOM_PROTOCOL, ...s }, "statement"));

/** Does `signatureHex` sign `s` under `publicKeyHex`? (false for anything malformed) */
export function verifyStatement(s: Statement, publicKeyHex: string, signatureHex: string): boolean {
  if (!/^[0-9a-f]{64}$/.test(publicKeyHex) || !/^[0-9a-f]{128}$/.test(signatureHex)) return false;
  return ed25519Verify(fromHex(publicKeyHex), statementBytes(s), fromHex(signatureHex));
}

const KEY = /^[a-z][a-z0-9_-]{0,31}\/[A-Za-z_][A-Za-z0-9_]{0,63}$/;
const b64 = z
  .string()
  .regex(/^[A-Za-z0-9+/]*={0,2}$/, "base64")
  .max(400_000_000);
const purposeName = z.string().min(1).max(128);
const nameRe = /^[A-Za-z_][A-Za-z0-9_]{0,63}$/;

/**
 * Bodies of the enclave-mode operations (server/enclave-ops.ts; docs/protocol.md "Enclave mode").
 * Only ciphertext, documents, nonces and metadata: never a row or a data key.
 */
export const ENCLAVE_OPS = {
  "enclave.upload": z.strictObject({
    input: z.strictObject({
      name: z.string().regex(nameRe, "a dataset name"),
      schema: z.record(z.string(), z.unknown()),
      rows: z.number().int().min(1).max(1e9),
      fingerprint: z.string().regex(/^[0-9a-f]{64}$/, "64 hex characters"),
      rule: z.record(z.string(), z.unknown()).nullable(),
      tags: z.strictObject({
        purposes: z.array(purposeName).min(1).max(32),
        categories: z.array(z.string().max(128)).max(32).optional(),
        columns: z.record(z.string().max(64), z.record(z.string(), z.unknown())).optional(),
      }),
      analyst: z
        .string()
        .regex(/^[a-z][a-z0-9_-]{0,31}$/)
        .optional(),
    }),
    /** The owner-sealed blob (cleanroom-lab/owner-sealed/v1 JSON), base64. */
    sealed: b64,
  }),
  "enclave.launch": z.strictObject({
    purpose: purposeName,
    datasets: z.array(z.string().regex(KEY, '"owner/dataset"')).min(1).max(256).optional(),
    /** Teaching only (server started with allowTamper): the operator launches a modified image. */
    tamper: z.enum(["none", "code", "template", "debug"]).optional(),
  }),
  "enclave.challenge": z.strictObject({
    launch: z.string().min(1).max(200),
    dataset: z.string().regex(KEY, '"owner/dataset"'),
    nonce: z.string().min(16).max(200),
  }),
  "enclave.release": z.strictObject({
    launch: z.string().min(1).max(200),
    dataset: z.string().regex(KEY, '"owner/dataset"'),
    ciphertext: z
      .strictObject({
        datasetId: z.string().max(300),
        owner: z.string().max(64),
        nonce: b64,
        ciphertext: b64,
        plaintextBytes: z.number().int().min(0),
      })
      .optional(),
    grant: z.record(z.string(), z.unknown()).optional(),
    /** The owner's refusal (its verifier or policy said no), recorded and audited. */
    refused: z.strictObject({ code: z.string().max(64), check: z.string().max(64).nullable(), reason: z.string().max(500) }).optional(),
  }),
  "enclave.status": z.strictObject({}),
} as const;

/** The operations and their bodies. */
export const OPS = {
  "room.info": z.strictObject({}),
  "collab.create": z.strictObject({ definition: CollaborationDef }),
  "collab.propose": z.strictObject({ definition: CollaborationDef }),
  "collab.accept": z.strictObject({ collaboration: hex(32), signature: hex(64) }),
  "collab.status": z.strictObject({}),
  upload: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  datasets: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  declarePurpose: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  approveTemplate: z.strictObject({ input: z.record(z.string(), z.unknown()), templateHash: hex(32), signature: hex(64) }),
  cleanRoomQuery: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  budget: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  audit: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  approvals: z.strictObject({}),
  /** Redeem a class invitation code (server/invitations.ts): signed by the key it registers. */
  "invite.redeem": z.strictObject({ invitation: z.string().min(1).max(100), publicKey: hex(32) }),
  /** Read-only: everything the Room panel shows (collaboration, approvals with signatures, the budget once active). */
  roomStatus: z.strictObject({}),
  /** Read-only: what a query would cost and apply in this room (session/preview.ts); nothing charged or audited. */
  previewQuery: z.strictObject({ input: z.record(z.string(), z.unknown()) }),
  /** Read-only: a proposed template's content by hash or name (a member re-hashes it before signing an approval). */
  template: z.strictObject({ template: z.string().min(1).max(128) }),
  ...ENCLAVE_OPS,
} as const;
export type Op = keyof typeof OPS;
export const OP_NAMES = Object.keys(OPS) as Op[];

/** A signed request as it crosses the wire. */
export const SignedRequest = z.strictObject({
  v: z.literal(ROOM_PROTOCOL_VERSION),
  room: z.string().regex(/^[A-Za-z][A-Za-z0-9_-]{0,63}$/),
  member: z.string().min(1).max(64),
  /**
   * The member's client session (random, chosen by each joined handle and signed): seq is
   * monotonic per session, so two kernels of one member each keep their own order; nonces stay
   * unique per member across all its sessions.
   */
  session: hex(16),
  seq: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  nonce: hex(16),
  /** Client clock, ms since the epoch. */
  time: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  op: z.enum(OP_NAMES as [Op, ...Op[]]),
  body: z.record(z.string(), z.unknown()),
  /** Ed25519 signature (hex) over {@link requestBytes}. */
  sig: hex(64),
});
export type SignedRequest = z.infer<typeof SignedRequest>;

/** The bytes a request's signature covers (everything but `v` and `sig`; the protocol name is bound in). */
export function requestBytes(r: Omit<SignedRequest, "sig" | "v">): Uint8Array {
  const { room, member, session, seq, nonce, time, op, body } = r;
  return utf8(canonicalJson({ protocol: ROOM_PROTOCOL, room, member, session, seq, nonce, time, op, body }, "request"));
}

/** The server's answer to one request (same seq). */
export const RoomResponse = z.union([
  z.strictObject({ v: z.literal(ROOM_PROTOCOL_VERSION), seq: z.number().int(), ok: z.literal(true), result: z.unknown() }),
  z.strictObject({
    v: z.literal(ROOM_PROTOCOL_VERSION),
    seq: z.number().int(),
    ok: z.literal(false),
    error: z.strictObject({ code: z.string(), message: z.string(), details: z.record(z.string(), z.unknown()).optional() }),
  }),
]);
export type RoomResponse = z.infer<typeof RoomResponse>;

/** Where a member finds the server: `cleanroom://127.0.0.1:PORT/ROOM#SERVER_PUBLIC_KEY_HEX`. */
export interface RoomUrl {
  port: number;
  room: string;
  /** The server's static X25519 public key (hex) pinned by the URL, if it carries one. */
  serverKey: string | null;
}

/** Parse a room URL (host must be 127.0.0.1). */
export function parseRoomUrl(url: string): RoomUrl | null {
  const m = /^cleanroom:\/\/127\.0\.0\.1:(\d{1,5})\/([A-Za-z][A-Za-z0-9_-]{0,63})(?:#([0-9a-f]{64}))?$/.exec(url);
  if (!m) return null;
  const port = Number(m[1]);
  if (port < 1 || port > 65535) return null;
  return { port, room: m[2]!, serverKey: m[3] ?? null };
}
