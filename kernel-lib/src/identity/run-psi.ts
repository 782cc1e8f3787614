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
 * Threat model: see psi.ts. Each party is its own object (PsiInitiator, PsiResponder) holding
 * its set, its key and its end of a Transport (transport/transport.ts); the two talk ONLY
 * through that link, which carries plain JSON envelopes with the points packed as their
 * binary attachment (psi-wire.ts; an in-process linked pair that JSON round-trips every
 * envelope and copies its attachment here; identity/psi-party.ts runs ONE of them per process
 * over a socket). `messages` records what crossed, in the OpenMined-shaped JSON view.
 */
import { invalid } from "../errors.js";
import { makeRng, rngStamp, type Rng, type RngStamp } from "../rng.js";
import { linkedPair, type Tap, type Transport } from "../transport/transport.js";
import type { EmailOptions, IdentifierKind, PhoneOptions, RejectionCode } from "./normalize.js";
import { prepareRows, type PreparedIds, type PrepareOptions } from "./id-file.js";
import { makeBackend, randomScalar, type BackendName, type ProgressFn } from "./psi-backend.js";
import {
  defaultKeyRegistry,
  KeyRegistry,
  PsiClient,
  PsiServer,
  type PsiMessage,
  type PsiMode,
  type PsiPoints,
  type TranscriptEntry,
} from "./psi.js";
import { fromEnvelope, psiMessageView } from "./psi-wire.js";
import { PsiInitiator, PsiResponder } from "./psi-link.js";

export { closingOnError, PSI_DONE_PROTOCOL, PsiInitiator, PsiResponder } from "./psi-link.js";

/** Parameters of a PSI run that one party (psiParty) and both parties (runPsi) take alike. */
export interface PsiRunParams {
  /** Identifier column in object rows (default "email"); ignored for string rows. */
  column?: string;
  kind?: IdentifierKind;
  /** Default "joinKeys"; both sides must agree. */
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
  normalize?: EmailOptions & PhoneOptions;
  registry?: KeyRegistry;
}

export interface RunPsiOptions extends PsiRunParams {
  /** Keep the full messages in the result, in their OpenMined-shaped JSON view (default false: only summaries). */
  keepMessages?: boolean;
  /** Carry every message over an X25519/HKDF/AES-256-GCM SecureChannel (default false). */
  channel?: boolean;
  /** Party names for the transcript (default "A" and "B"). */
  names?: { a: string; b: string };
  /**
   * How the two parties are linked (default: the in-process `linkedPair`). Every message
   * crosses as plain JSON through it; a test can pass a recording pair, the next issue a socket.
   */
  link?: (a: string, b: string, opts: { tap?: Tap }) => [Transport, Transport];
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

export function asRows(rows: RowsLike, field: string): readonly unknown[] {
  if (Array.isArray(rows)) return rows;
  if (rows !== null && typeof rows === "object" && typeof (rows as { objects?: unknown }).objects === "function")
    return (rows as { objects(): unknown[] }).objects();
  return invalid(field, "array of rows (objects or identifier strings) or a table with objects()", rows);
}

/** Normalise, validate and deduplicate one party's identifier column (its own rows only). */
export function prepare(rows: readonly unknown[], o: PrepareOptions, field: string): PreparedIds {
  return prepareRows(rows, o, field);
}

/** Per row: the value of its distinct identifier, or null for a rejected row. */
export function perRow<T>(rowToElement: Int32Array, perElement: readonly (T | null)[]): (T | null)[] {
  const out: (T | null)[] = new Array(rowToElement.length);
  for (let i = 0; i < out.length; i++) {
    const k = rowToElement[i]!;
    out[i] = k < 0 ? null : (perElement[k] ?? null);
  }
  return out;
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
  if (!names || typeof names.a !== "string" || typeof names.b !== "string" || !names.a || !names.b || names.a === names.b)
    invalid("names", "two distinct non-empty party names { a, b }", names);
  const rng = makeRng(options.rng);
  // Start the backend first: its workers load libsodium (WASM) while this thread normalises
  // both columns (fixed start-up work off the critical path). Bad rows still refuse before
  // any PSI message exists; the workers are then closed.
  const backendReady = makeBackend({
    backend: options.backend ?? "libsodium",
    threads: options.threads,
    workerScript: options.workerScript,
  });
  let a: PreparedIds, b: PreparedIds;
  try {
    a = prepare(asRows(rowsA, "rowsA"), options, "rowsA");
    b = prepare(asRows(rowsB, "rowsB"), options, "rowsB");
  } catch (e) {
    await backendReady.then(
      (be) => be.close(),
      () => undefined,
    );
    throw e;
  }
  const started = performance.now(); // elapsedMs: after normalisation, as before
  const backend = await backendReady;
  // Seeded runs are reproducible for a given registry state, yet never reuse a key: the
  // first attempt whose keys are unclaimed wins (a re-run in the same kernel moves on).
  const registry = options.registry ?? defaultKeyRegistry;
  let n = 0;
  let keyA: Uint8Array, keyB: Uint8Array;
  for (; ; n++) {
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
    encoding: "packed" as const,
  };
  const messages: { from: string; to: string; message: PsiMessage }[] = [];
  const frameBytes: number[] = [];
  // The two parties talk ONLY through a Transport (transport/): plain JSON messages, here an
  // in-process linked pair; optionally with every message sealed in a SecureChannel (the
  // handshake crosses the same link). `messages` records what each party sent, as data.
  // The messages' JSON views are built only when asked for: at 1M elements per side the four
  // views are ~300 MB of hex strings (the packed points that cross are 32 MB each). The
  // transcript needs none of it (the protocol fixes the order; each party summarised what it sent).
  const record: Tap | undefined = options.keepMessages
    ? (env) => void messages.push({ from: env.from, to: env.to, message: psiMessageView(fromEnvelope(env) as PsiMessage<PsiPoints>) })
    : undefined;
  const frames: Tap = (env, _wire, bytes) =>
    void (env.kind === "channel.frame" && frameBytes.push(JSON.stringify(env.body).length + (bytes?.length ?? 0)));
  const [linkA, linkB] = (options.link ?? linkedPair)(names.a, names.b, { tap: options.channel ? frames : record });
  try {
    const client = new PsiClient({ ...common, secretKey: keyA, rng: rng.fork(`psi/${n}/${names.a}`) });
    const server = new PsiServer({ ...common, secretKey: keyB, rng: rng.fork(`psi/${n}/${names.b}`) });
    const partyA = new PsiInitiator(
      client,
      a.distinct,
      linkA,
      options.channel ? { rng: rng.fork(`psi/${n}/channel/${names.a}`), ...(record ? { tap: record } : {}) } : null,
    );
    const partyB = new PsiResponder(
      server,
      mode,
      b.distinct,
      linkB,
      options.channel ? { rng: rng.fork(`psi/${n}/channel/${names.b}`), ...(record ? { tap: record } : {}) } : null,
    );
    const [outA, sOut] = await Promise.all([partyA.run(), partyB.run()]);
    const { out, sessionId } = outA;
    let joinKeysA: (string | null)[] | null = null;
    let joinKeysB: (string | null)[] | null = null;
    let matchedRowsA: number[] | null = null;
    let matchedB: number | null = null;
    if (out.mode === "joinKeys" && sOut) {
      joinKeysA = perRow(a.rowToElement, out.joinKeys);
      joinKeysB = perRow(b.rowToElement, sOut.joinKeys);
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
    const stats = (name: string, p: PreparedIds, matched: number | null, matchedRows: number | null): PartyMatchStats => ({
      name,
      rows: p.rows,
      rejectedRows: p.rejectedRows,
      rejectionCounts: p.rejectionCounts,
      distinctIdentifiers: p.distinct.length,
      matchedIdentifiers: matched,
      matchedRows,
      matchRate: matched === null ? null : matched / p.distinct.length,
    });
    const order: [string, string, PsiMessage["kind"]][] = [
      [names.a, names.b, "psi.request"],
      [names.b, names.a, "psi.setup"],
      [names.b, names.a, "psi.response"],
      ...(mode === "joinKeys" ? [[names.a, names.b, "psi.finish"] as [string, string, PsiMessage["kind"]]] : []),
    ];
    const transcript: TranscriptStep[] = order.map(([from, to, kind], i) => {
      const t = (from === names.a ? client : server).transcript.find((e) => e.direction === "sent" && e.kind === kind)!;
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
        sessionId,
        ...(outA.channelTranscriptHash ? { channelTranscriptHash: outA.channelTranscriptHash } : {}),
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
    linkA.close();
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
export function attachJoinKeys<T extends object>(
  rows: readonly T[],
  joinKeys: readonly (string | null)[],
  options: AttachOptions = {},
): Record<string, unknown>[] {
  if (!Array.isArray(rows)) invalid("rows", "array of row objects", rows);
  if (!Array.isArray(joinKeys) || joinKeys.length !== rows.length)
    invalid("joinKeys", `array of ${rows.length} keys (one per row)`, joinKeys);
  const col = options.column ?? "email";
  const keyCol = options.keyColumn ?? "join_key";
  const out: Record<string, unknown>[] = [];
  rows.forEach((row, i) => {
    const k = joinKeys[i] ?? null;
    if (k === null && options.keepUnmatched === false) return;
    const { [col]: _dropped, ...rest } = row as Record<string, unknown>;
    out.push({ ...rest, [keyCol]: k });
  });
  return out;
}
