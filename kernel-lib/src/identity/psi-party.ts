/**
 * `psiParty`: ONE side of the PSI exchange, run in this process with this party's own rows,
 * its own key and its own end of a Transport (a socket to the other party's process,
 * transport/socket.ts). It returns only what this side learns: its own join keys (or matched
 * rows), the intersection size when its role learns it, and the peer's set size (public in
 * every ECDH PSI). `runPsi` (both sides in one kernel) is unchanged; with the same seed and
 * party names the two give the same join keys.
 *
 * Threat model: see psi.ts (semi-honest peer) and transport/secure.ts. Every message goes
 * under an X25519/HKDF/AES-256-GCM SecureChannel by default (`channel: false` only for
 * teaching demos over a trusted in-process link), so an observer of the wire sees the public
 * hellos, frame sizes and order only. This party's raw and normalised identifiers never leave
 * it; only blinded points do. Any failure — bad input (refused before anything is sent), a
 * tampered frame, a peer that disconnects or is killed — closes the link (so the peer's
 * pending receive is refused too) and throws a typed error; nothing partial is returned. The
 * run ends with a `psi.done` confirmation, so a refusal before the last message leaves both
 * sides without a result.
 */
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import { makeRng, rngStamp, type Rng, type RngStamp } from "../rng.js";
import type { Envelope, Tap, Transport } from "../transport/transport.js";
import { secureTransport } from "../transport/secure.js";
import { connect, listen } from "../transport/socket.js";
import type { RejectionCode } from "./normalize.js";
import { makeBackend, randomScalar, type BackendName, type PsiBackend } from "./psi-backend.js";
import { defaultKeyRegistry, PsiClient, PsiServer, PSI_MODES, type PsiMode, type TranscriptEntry } from "./psi.js";
import { asRows, perRow, prepare, PsiInitiator, PsiResponder, type PsiRunParams, type RowsLike } from "./run-psi.js";
import { prepareFile, type PreparedIds } from "./id-file.js";
import { authenticatePeer, type PsiPeerAuth } from "./psi-auth.js";

export { PSI_AUTH_PROTOCOL, type PsiPeerAuth } from "./psi-auth.js";

export type PsiRole = "initiator" | "responder";

export interface PsiPartyRunOptions extends PsiRunParams {
  /** "initiator" = party A (PSI client, speaks first); "responder" = party B (PSI server). */
  role: PsiRole;
  /** This party's own rows (objects with `column`, or identifier strings) … */
  rows?: RowsLike;
  /**
   * … or a CSV (with a header line) or Parquet file of them: `column` is streamed from it by
   * DuckDB (id-file.ts), no row objects are built …
   */
  path?: string;
  /** … or identifiers already read with `prepareRows`/`prepareFile` (exactly one of the three). */
  prepared?: PreparedIds;
  /** This party's end of the link to the other party (e.g. from socket `connect`/`accept`). */
  transport: Transport;
  /** Seal every message in a SecureChannel (default true). */
  channel?: boolean;
  /** Sees every protocol message this side sends or receives (kind only matters; for progress displays). */
  onMessage?: (direction: "sent" | "received", envelope: Envelope) => void;
  /** Authenticate the peer over the channel before any PSI message (needs the channel). */
  peerAuth?: PsiPeerAuth;
  /**
   * A backend already starting (`startBackend(options)`, e.g. while this side waits for its
   * peer: the worker threads load libsodium off the critical path); psiParty closes it.
   */
  startedBackend?: Promise<PsiBackend>;
}

/**
 * Start this party's PSI backend (worker threads loading libsodium) now, to hand to psiParty
 * as `startedBackend`; a start that fails is reported when psiParty awaits it.
 * @example const startedBackend = startBackend({ threads: 2 }); // … connect … psiParty({ …, startedBackend })
 */
export function startBackend(o: Pick<PsiRunParams, "backend" | "threads" | "workerScript">): Promise<PsiBackend> {
  const p = makeBackend({ backend: o.backend ?? "libsodium", threads: o.threads, workerScript: o.workerScript });
  p.catch(() => undefined);
  return p;
}

/** Close a backend started early and never handed on (bad input, no peer). */
async function dropStarted(p: Promise<PsiBackend> | undefined): Promise<void> {
  await p?.then(
    (b) => b.close(),
    () => undefined,
  );
}

export interface PsiPartyStats {
  name: string;
  rows: number;
  rejectedRows: number;
  rejectionCounts: Partial<Record<RejectionCode, number>>;
  distinctIdentifiers: number;
  /** Only when this role learns which of its records matched. */
  matchedIdentifiers: number | null;
  matchedRows: number | null;
  matchRate: number | null;
}

export interface PsiPartyResult {
  role: PsiRole;
  self: string;
  peer: string;
  mode: PsiMode;
  /** joinKeys mode: per own row, its join key or null. */
  joinKeys: (string | null)[] | null;
  /** intersection mode, initiator: own rows whose identifier matched. */
  matchedRows: number[] | null;
  matchReport: {
    mode: PsiMode;
    backend: BackendName;
    threads: number;
    sessionId: string;
    channelTranscriptHash: string | null;
    /** What this role learns: always for the initiator, in joinKeys mode for the responder. */
    intersectionSize: number | null;
    self: PsiPartyStats;
    /** The peer's distinct set size (public in ECDH PSI: it is the length of its message). */
    peerDistinctIdentifiers: number;
    elapsedMs: number;
  };
  /** This side's summary of what it sent and received. */
  transcript: TranscriptEntry[];
  rngStamp: RngStamp;
}

function observed(t: Transport, on: NonNullable<PsiPartyRunOptions["onMessage"]>): Transport {
  return {
    self: t.self,
    peer: t.peer,
    async send(protocol, kind, body, bytes) {
      await t.send(protocol, kind, body, bytes);
      on("sent", { v: 1, protocol, kind, from: t.self, to: t.peer, body: null });
    },
    async receive(expect) {
      const env = await t.receive(expect);
      on("received", env);
      return env;
    },
    close: () => t.close(),
  };
}

/**
 * Run this party's side of PSI over `transport`, returning this side's result only.
 *
 * @example
 * // retailer's process                                   // advertiser's process
 * const l = await listen({ self: "retailer" });            const t = await connect({ self: "advertiser", peer: "retailer", port });
 * const t = await l.accept();                              const r = await psiParty({ role: "initiator", rows: exposures, transport: t });
 * const r = await psiParty({ role: "responder", rows: purchases, transport: t });   // r.joinKeys → ["jk_…", null, …]
 */
export async function psiParty(o: PsiPartyRunOptions): Promise<PsiPartyResult> {
  const t = o?.transport as Transport | undefined;
  const fail = async (e: unknown): Promise<never> => {
    t?.close?.();
    await dropStarted(o?.startedBackend);
    throw e;
  };
  let rng: Rng, prepared: PreparedIds, mode: PsiMode;
  try {
    if (o === null || typeof o !== "object") invalid("options", "PsiPartyRunOptions object", o);
    if (!t || typeof t.send !== "function" || typeof t.receive !== "function" || typeof t.close !== "function")
      invalid("transport", "a Transport (socket connect/accept or linkedPair)", t);
    if (o.role !== "initiator" && o.role !== "responder") invalid("role", `"initiator" | "responder"`, o.role);
    mode = o.mode ?? "joinKeys";
    if (!PSI_MODES.includes(mode)) invalid("mode", PSI_MODES.map((m) => `"${m}"`).join(" | "), mode);
    if (o.channel !== undefined && typeof o.channel !== "boolean") invalid("channel", "boolean", o.channel);
    if (o.onMessage !== undefined && typeof o.onMessage !== "function") invalid("onMessage", "a function", o.onMessage);
    if (o.peerAuth !== undefined) {
      if (typeof o.peerAuth?.prove !== "function" || typeof o.peerAuth?.verify !== "function")
        invalid("peerAuth", "{ prove, verify } functions", o.peerAuth);
      if (o.channel === false) invalid("channel", "the SecureChannel (peerAuth signs its transcript)", o.channel);
    }
    rng = makeRng(o.rng);
    prepared = await prepareInput(o);
  } catch (e) {
    return fail(e);
  }
  const started = performance.now();
  const self = t.self;
  const registry = o.registry ?? defaultKeyRegistry;
  // The same seeded derivation as runPsi (names.a = initiator, names.b = responder), so a
  // seeded two-process run reproduces runPsi's join keys; a re-run moves to the next key.
  let n = 0;
  let key: Uint8Array;
  for (; ; n++) {
    key = randomScalar(rng.fork(`psi/${n}/${self}/key`));
    if (!registry.has(key)) break;
  }
  let backend: Awaited<ReturnType<typeof makeBackend>> | null = null;
  try {
    backend = await (o.startedBackend ?? startBackend(o));
    const common = {
      mode,
      backend,
      maxSetSize: o.maxSetSize,
      minPeerSetSize: o.minSetSize,
      sessionLabel: o.sessionLabel,
      progress: o.progress,
      registry,
      secretKey: key,
      rng: rng.fork(`psi/${n}/${self}`),
      encoding: "packed" as const,
    };
    const party = o.role === "initiator" ? new PsiClient(common) : new PsiServer(common);
    let link: Transport = t;
    let channelTranscriptHash: string | null = null;
    if (o.channel !== false) {
      const noTap: Tap = () => undefined;
      const s = await secureTransport(t, o.role, { rng: rng.fork(`psi/${n}/channel/${self}`), tap: noTap });
      channelTranscriptHash = s.transcriptHash;
      link = s;
      if (o.peerAuth) await authenticatePeer(s, o.peerAuth);
    }
    if (o.onMessage) link = observed(link, o.onMessage);
    let joinKeys: (string | null)[] | null = null;
    let matchedRows: number[] | null = null;
    let intersectionSize: number | null = null;
    let sessionId: string;
    if (party instanceof PsiClient) {
      const run = await new PsiInitiator(party, prepared.distinct, link, null, true).run();
      const out = run.out;
      sessionId = run.sessionId;
      intersectionSize = out.intersectionSize;
      if (out.mode === "joinKeys") joinKeys = perRow(prepared.rowToElement, out.joinKeys);
      else if (out.mode === "intersection") {
        const hit = new Set(out.intersection);
        matchedRows = [];
        prepared.rowToElement.forEach((k, i) => void (k >= 0 && hit.has(k) && matchedRows!.push(i)));
      }
    } else {
      const out = await new PsiResponder(party, mode, prepared.distinct, link, null, true).run();
      sessionId = party.transcript.find((e) => e.direction === "received")!.sessionId;
      if (out) {
        intersectionSize = out.intersectionSize;
        joinKeys = perRow(prepared.rowToElement, out.joinKeys);
      }
    }
    t.close();
    const matchedIdentifiers = mode === "cardinality" || (o.role === "responder" && mode !== "joinKeys") ? null : intersectionSize;
    const matched = joinKeys ? joinKeys.filter((k) => k !== null).length : matchedRows ? matchedRows.length : null;
    const peerMsg = party.transcript.find((e) => e.direction === "received" && (e.kind === "psi.setup" || e.kind === "psi.request"))!;
    return {
      role: o.role,
      self,
      peer: t.peer,
      mode,
      joinKeys,
      matchedRows,
      matchReport: {
        mode,
        backend: backend.name,
        threads: backend.threads,
        sessionId,
        channelTranscriptHash,
        intersectionSize,
        self: {
          name: self,
          rows: prepared.rows,
          rejectedRows: prepared.rejectedRows,
          rejectionCounts: prepared.rejectionCounts,
          distinctIdentifiers: prepared.distinct.length,
          matchedIdentifiers,
          matchedRows: matched,
          matchRate: matchedIdentifiers === null ? null : matchedIdentifiers / prepared.distinct.length,
        },
        peerDistinctIdentifiers: peerMsg.count,
        elapsedMs: Math.round(performance.now() - started),
      },
      transcript: party.transcript.slice(),
      rngStamp: rngStamp(rng),
    };
  } catch (e) {
    t.close();
    // A link that failed or was closed under us (the peer closed it, disconnected or was
    // killed: this side closes it only after its own error) is, for PSI, an aborted session.
    if (isCleanRoomError(e) && e.details.field === "transport")
      throw new CleanRoomError(
        "PSI_SESSION_ABORTED",
        `"session" expected the peer to finish the PSI protocol, got a link it closed mid-protocol; no result`,
        { field: "session", cause: e.code },
      );
    throw e;
  } finally {
    key.fill(0);
    await backend?.close();
  }
}

export interface PsiWithPeerOptions extends Omit<PsiPartyRunOptions, "transport" | "role"> {
  /** This kernel's party name, e.g. "retailer". */
  as: string;
  /** The other party's name, e.g. "advertiser" (its hello must say so). */
  peer: string;
  /** Reach a peer listening on 127.0.0.1:`connect` … */
  connect?: number;
  /** … or listen on 127.0.0.1:`listen` (0 = any free port, told through `onListening`) for it. */
  listen?: number;
  /** Default: "initiator" when connecting, "responder" when listening. */
  role?: PsiRole;
  /** Connecting: keep retrying while the peer is not listening yet (default 30 s). */
  retryMs?: number;
  onListening?: (port: number) => void;
}

/**
 * The notebook-facing entry: run this kernel's side of PSI with another party's kernel
 * (or scripts/psi-party.mjs process) over a socket on 127.0.0.1, under the SecureChannel.
 * Returns this side's result only (see {@link psiParty}).
 *
 * @example
 * // advertiser's notebook                                 // retailer's notebook
 * await psiWithPeer({ as: "advertiser", peer: "retailer",   await psiWithPeer({ as: "retailer", peer: "advertiser",
 *   listen: 7711, rows: exposures })                          connect: 7711, rows: purchases })
 */
export async function psiWithPeer(o: PsiWithPeerOptions): Promise<PsiPartyResult> {
  if (o === null || typeof o !== "object") invalid("options", "PsiWithPeerOptions object", o);
  if ((o.connect === undefined) === (o.listen === undefined))
    invalid("connect", "exactly one of connect (a port) or listen (a port, 0 = any)", o.connect);
  if (o.role !== undefined && o.role !== "initiator" && o.role !== "responder") invalid("role", `"initiator" | "responder"`, o.role);
  if (o.onListening !== undefined && typeof o.onListening !== "function") invalid("onListening", "a function", o.onListening);
  const role: PsiRole = o.role ?? (o.connect !== undefined ? "initiator" : "responder");
  // the backend's workers load libsodium while the rows are read and the peer connects
  const startedBackend = o.startedBackend ?? startBackend(o);
  try {
    return await withPeer(o, role, startedBackend);
  } catch (e) {
    await dropStarted(startedBackend); // psiParty closes it itself once it has it
    throw e;
  }
}

async function withPeer(o: PsiWithPeerOptions, role: PsiRole, startedBackend: Promise<PsiBackend>): Promise<PsiPartyResult> {
  // read and check this side's rows BEFORE opening anything (nothing is sent for bad input)
  const prepared = await prepareInput(o);
  const {
    as,
    peer,
    connect: port,
    listen: listenPort,
    retryMs,
    onListening,
    role: _r,
    rows: _rows,
    path: _path,
    prepared: _p,
    ...rest
  } = o;
  let transport: Transport;
  if (port !== undefined) transport = await connect({ self: as, peer, port, retryMs: retryMs ?? 30_000 });
  else {
    const l = await listen({ self: as, port: listenPort, expectPeer: peer });
    try {
      onListening?.(l.port);
      transport = await l.accept();
    } finally {
      await l.close();
    }
  }
  return psiParty({ ...rest, role, transport, prepared, startedBackend });
}

/** This party's identifiers from `rows`, `path` or `prepared` (exactly one), normalised and deduplicated. */
async function prepareInput(o: Omit<PsiPartyRunOptions, "transport" | "role">): Promise<PreparedIds> {
  const given = [o.rows, o.path, o.prepared].filter((x) => x !== undefined).length;
  if (given !== 1)
    throw new CleanRoomError(
      "INPUT_INVALID",
      `"rows" expected exactly one of rows (an array or table), path (a .csv or .parquet file) or prepared, got ${given === 0 ? "none" : given}`,
      { field: "rows" },
    );
  if (o.prepared !== undefined) {
    const p = o.prepared;
    if (
      p === null ||
      typeof p !== "object" ||
      !Array.isArray(p.distinct) ||
      !(p.rowToElement instanceof Int32Array) ||
      p.distinct.length === 0
    )
      invalid("prepared", "the result of prepareRows or prepareFile", typeof p);
    return p;
  }
  if (o.path !== undefined) {
    if (typeof o.path !== "string") invalid("path", "a .csv or .parquet file path", typeof o.path);
    return prepareFile(o.path, o, o.progress);
  }
  return prepare(asRows(o.rows!, "rows"), o, "rows");
}
