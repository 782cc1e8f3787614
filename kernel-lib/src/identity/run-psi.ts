/**
 * `runPsi`: the whole PSI exchange between two parties simulated in one kernel, as a pure
 * function of (rows A, rows B, options) → join keys per row, a match report, and a
 * transcript of every message that crossed between the parties. This is what the
 * `psiMatch(...)` notebook cell calls.
 *
 * Each party normalises its own identifier column (normalize.ts), deduplicates it (repeat
 * purchases share one identifier and so one join key), and runs its half of the protocol
 * in psi.ts with its own fresh key. Rejected rows get no key and are reported by code only.
 *
 * Threat model: see psi.ts. The simulation keeps the parties' state in separate objects;
 * the only things passed between them are the plain-JSON messages recorded in `messages`.
 */
import { CleanRoomError, invalid } from "../errors.js";
import { makeRng, rngStamp, type Rng, type RngStamp } from "../rng.js";
import { SecureChannel } from "../crypto/channel.js";
import { utf8 } from "../crypto/primitives.js";
import { normalizeColumn, type EmailOptions, type IdentifierKind, type PhoneOptions, type RejectionCode } from "./normalize.js";
import { makeBackend, randomScalar, type BackendName, type ProgressFn } from "./psi-backend.js";
import { defaultKeyRegistry, KeyRegistry, PsiClient, PsiServer, type PsiMessage, type PsiMode, type TranscriptEntry } from "./psi.js";

export interface RunPsiOptions {
  /** Identifier column in object rows (default "email"); ignored for string rows. */
  column?: string;
  kind?: IdentifierKind;
  /** Default "joinKeys". */
  mode?: PsiMode;
  /** Default "libsodium". */
  backend?: BackendName;
  /** libsodium worker threads (default all cores). */
  threads?: number;
  workerScript?: string;
  rng?: Rng | "secure" | { seed: string };
  maxSetSize?: number;
  /** Minimum peer set size each party insists on (default 1). */
  minSetSize?: number;
  /** Mixed into join-key derivation (e.g. the room id). */
  sessionLabel?: string;
  progress?: ProgressFn;
  /** Keep the full messages in the result (default false: only summaries). */
  keepMessages?: boolean;
  /** Carry every message over an X25519/HKDF/AES-256-GCM SecureChannel (default false). */
  channel?: boolean;
  /** Party names for the transcript (default "A" and "B"). */
  names?: { a: string; b: string };
  normalize?: EmailOptions & PhoneOptions;
  registry?: KeyRegistry;
}

export interface PartyMatchStats {
  name: string;
  rows: number;
  rejectedRows: number;
  rejectionCounts: Partial<Record<RejectionCode, number>>;
  distinctIdentifiers: number;
  /** Only for a party that learns which of its records matched. */
  matchedIdentifiers: number | null;
  matchedRows: number | null;
  /** matchedIdentifiers / distinctIdentifiers. */
  matchRate: number | null;
}

export interface MatchReport {
  mode: PsiMode;
  backend: BackendName;
  threads: number;
  sessionId: string;
  /** Present when the messages went over a SecureChannel: both ends' handshake hash. */
  channelTranscriptHash?: string;
  /** Learned by A in every mode; by B in joinKeys mode. */
  intersectionSize: number;
  partyA: PartyMatchStats;
  partyB: PartyMatchStats;
  elapsedMs: number;
}

export interface TranscriptStep extends Omit<TranscriptEntry, "direction"> {
  step: number;
  from: string;
  to: string;
  /** Size of the encrypted frame when `channel: true`. */
  channelFrameBytes?: number;
}

export interface PsiRunResult {
  mode: PsiMode;
  /** Per row of A: its join key, or null (unmatched / rejected / not joinKeys mode). */
  joinKeysA: (string | null)[] | null;
  joinKeysB: (string | null)[] | null;
  /** intersection mode: rows of A whose identifier matched (A learns this, B does not). */
  matchedRowsA: number[] | null;
  matchReport: MatchReport;
  transcript: TranscriptStep[];
  messages?: { from: string; to: string; message: PsiMessage }[];
  rngStamp: RngStamp;
}

/** Rows as an array, or an arquero-style table (anything with `objects()`). */
export type RowsLike = readonly unknown[] | { objects(): unknown[] };

function asRows(rows: RowsLike, field: string): readonly unknown[] {
  if (Array.isArray(rows)) return rows;
  if (rows !== null && typeof rows === "object" && typeof (rows as { objects?: unknown }).objects === "function") return (rows as { objects(): unknown[] }).objects();
  return invalid(field, "array of rows (objects or identifier strings) or a table with objects()", rows);
}

function column(rows: readonly unknown[], col: string, field: string): unknown[] {
  return rows.map((r, i) => {
    if (typeof r === "string") return r;
    if (r !== null && typeof r === "object") return (r as Record<string, unknown>)[col];
    return invalid(`${field}[${i}]`, `object with "${col}" or a string`, r, "INPUT_INVALID");
  });
}

function prepare(rows: readonly unknown[], o: RunPsiOptions, field: string) {
  const norm = normalizeColumn(column(rows, o.column ?? "email", field), o.kind ?? "email", o.normalize ?? {});
  const index = new Map<string, number>();
  const distinct: string[] = [];
  const rowToElement = norm.values.map((v) => {
    if (v === null) return -1;
    let k = index.get(v);
    if (k === undefined) {
      k = distinct.length;
      distinct.push(v);
      index.set(v, k);
    }
    return k;
  });
  if (distinct.length === 0) throw new CleanRoomError("PSI_EMPTY_SET", `"${field}" expected at least one valid identifier, got none after normalisation`, { field, rejectionCounts: norm.rejectionCounts });
  return { norm, distinct, rowToElement };
}

/**
 * Run PSI between party A (client) and party B (server) over their rows.
 *
 * @example
 * const r = await runPsi(exposures, purchases, { column: "email", mode: "joinKeys", rng: { seed: "week-1" } });
 * r.matchReport.partyA.matchRate   // e.g. 0.62
 * exposures.map((row, i) => ({ ...row, email: undefined, join_key: r.joinKeysA![i] }))
 */
export async function runPsi(rowsA: RowsLike, rowsB: RowsLike, options: RunPsiOptions = {}): Promise<PsiRunResult> {
  if (options === null || typeof options !== "object") invalid("options", "RunPsiOptions object", options);
  const mode = options.mode ?? "joinKeys";
  const names = options.names ?? { a: "A", b: "B" };
  if (!names || typeof names.a !== "string" || typeof names.b !== "string" || !names.a || !names.b || names.a === names.b) invalid("names", "two distinct non-empty party names { a, b }", names);
  const rng = makeRng(options.rng);
  const a = prepare(asRows(rowsA, "rowsA"), options, "rowsA");
  const b = prepare(asRows(rowsB, "rowsB"), options, "rowsB");
  const started = performance.now();
  const backend = await makeBackend({ backend: options.backend ?? "libsodium", threads: options.threads, workerScript: options.workerScript });
  // Seeded runs are reproducible for a given registry state, yet never reuse a key: the
  // first attempt whose keys are unclaimed wins (a re-run in the same kernel moves on).
  const registry = options.registry ?? defaultKeyRegistry;
  let n = 0;
  let keyA: Uint8Array, keyB: Uint8Array;
  for (;; n++) {
    keyA = randomScalar(rng.fork(`psi/${n}/${names.a}/key`));
    keyB = randomScalar(rng.fork(`psi/${n}/${names.b}/key`));
    if (!registry.has(keyA) && !registry.has(keyB)) break;
  }
  const common = {
    mode,
    backend,
    maxSetSize: options.maxSetSize,
    minPeerSetSize: options.minSetSize,
    sessionLabel: options.sessionLabel,
    progress: options.progress,
    registry,
  };
  const messages: { from: string; to: string; message: PsiMessage }[] = [];
  // Optionally carry every message over an encrypted channel (crypto/channel.ts): what the
  // receiver processes is what came out of the channel, and the transcript counts frame bytes.
  let chA: SecureChannel | undefined;
  let chB: SecureChannel | undefined;
  if (options.channel) {
    const hello = SecureChannel.initiate({ party: names.a, rng: rng.fork(`psi/${n}/channel/${names.a}`) });
    const reply = SecureChannel.accept(hello.hello, { party: names.b, rng: rng.fork(`psi/${n}/channel/${names.b}`) });
    hello.channel.complete(reply.hello);
    [chA, chB] = [hello.channel, reply.channel];
  }
  const frameBytes: number[] = [];
  const send = <M extends PsiMessage>(from: string, to: string, m: M): M => {
    messages.push({ from, to, message: m });
    if (!chA || !chB) return m;
    const [tx, rx] = from === names.a ? [chA, chB] : [chB, chA];
    const frame = tx.seal(utf8(JSON.stringify(m)), m.kind);
    frameBytes.push(JSON.stringify(frame).length);
    return JSON.parse(new TextDecoder().decode(rx.open(frame))) as M;
  };
  try {
    const client = new PsiClient({ ...common, secretKey: keyA, rng: rng.fork(`psi/${n}/${names.a}`) });
    const server = new PsiServer({ ...common, secretKey: keyB, rng: rng.fork(`psi/${n}/${names.b}`) });
    const request = send(names.a, names.b, await client.createRequest(a.distinct));
    const answer = await server.processRequest(request, b.distinct);
    const setup = send(names.b, names.a, answer.setup);
    const response = send(names.b, names.a, answer.response);
    const out = await client.processResponse(setup, response);
    let joinKeysA: (string | null)[] | null = null;
    let joinKeysB: (string | null)[] | null = null;
    let matchedRowsA: number[] | null = null;
    let matchedB: number | null = null;
    if (out.mode === "joinKeys") {
      const sOut = await server.processFinish(send(names.a, names.b, out.finish));
      joinKeysA = a.rowToElement.map((k) => (k < 0 ? null : out.joinKeys[k]!));
      joinKeysB = b.rowToElement.map((k) => (k < 0 ? null : sOut.joinKeys[k]!));
      matchedB = sOut.intersectionSize;
    } else if (out.mode === "intersection") {
      const hit = new Set(out.intersection);
      matchedRowsA = [];
      a.rowToElement.forEach((k, i) => {
        if (k >= 0 && hit.has(k)) matchedRowsA!.push(i);
      });
    }
    const matchedA = out.mode === "cardinality" ? null : out.intersectionSize;
    const rowsMatchedA = joinKeysA ? joinKeysA.filter((k) => k !== null).length : matchedRowsA ? matchedRowsA.length : null;
    const stats = (name: string, p: ReturnType<typeof prepare>, matched: number | null, matchedRows: number | null): PartyMatchStats => ({
      name,
      rows: p.norm.values.length,
      rejectedRows: p.norm.rejections.length,
      rejectionCounts: p.norm.rejectionCounts,
      distinctIdentifiers: p.distinct.length,
      matchedIdentifiers: matched,
      matchedRows,
      matchRate: matched === null ? null : matched / p.distinct.length,
    });
    const transcript: TranscriptStep[] = messages.map(({ from, to, message }, i) => {
      const t = (from === names.a ? client : server).transcript.find((e) => e.direction === "sent" && e.kind === message.kind)!;
      const { direction: _d, ...rest } = t;
      return { step: i + 1, from, to, ...rest, ...(frameBytes[i] !== undefined ? { channelFrameBytes: frameBytes[i] } : {}) };
    });
    const result: PsiRunResult = {
      mode,
      joinKeysA,
      joinKeysB,
      matchedRowsA,
      matchReport: {
        mode,
        backend: backend.name,
        threads: backend.threads,
        sessionId: request.sessionId,
        ...(chA ? { channelTranscriptHash: chA.transcriptHash } : {}),
        intersectionSize: out.intersectionSize,
        partyA: stats(names.a, a, matchedA, rowsMatchedA),
        partyB: stats(names.b, b, matchedB, joinKeysB ? joinKeysB.filter((k) => k !== null).length : null),
        elapsedMs: Math.round(performance.now() - started),
      },
      transcript,
      rngStamp: rngStamp(rng),
    };
    if (options.keepMessages) result.messages = messages;
    return result;
  } finally {
    keyA.fill(0);
    keyB.fill(0);
    await backend.close();
  }
}

export interface AttachOptions {
  /** Identifier column to drop (default "email"). */
  column?: string;
  /** Name of the new column (default "join_key"). */
  keyColumn?: string;
  /** Keep rows without a key, with `null` (default true: populations still count them). */
  keepUnmatched?: boolean;
}

/**
 * Replace each row's identifier with its PSI join key, as a party does before uploading to
 * the clean room (the identifier column is removed, never copied).
 *
 * @example
 * const r = await runPsi(exposures, purchases);
 * const upload = attachJoinKeys(exposures, r.joinKeysA!) // [{ group: "test", …, join_key: "jk_…" | null }]
 */
export function attachJoinKeys<T extends Record<string, unknown>>(rows: readonly T[], joinKeys: readonly (string | null)[], options: AttachOptions = {}): Record<string, unknown>[] {
  if (!Array.isArray(rows)) invalid("rows", "array of row objects", rows);
  if (!Array.isArray(joinKeys) || joinKeys.length !== rows.length) invalid("joinKeys", `array of ${rows.length} keys (one per row)`, joinKeys);
  const col = options.column ?? "email";
  const keyCol = options.keyColumn ?? "join_key";
  const out: Record<string, unknown>[] = [];
  rows.forEach((row, i) => {
    const k = joinKeys[i] ?? null;
    if (k === null && options.keepUnmatched === false) return;
    const { [col]: _dropped, ...rest } = row;
    out.push({ ...rest, [keyCol]: k });
  });
  return out;
}
