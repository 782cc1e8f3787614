/**
 * What the room server spends on a peer that has not proved it is a member: how large a frame
 * it reads, how many refusals it answers, and how many audit entries those refusals write.
 *
 * - Frames: until a connection has sent one request that passes the whole gate (signature of a
 *   member, fresh nonce, seq in order), the socket accepts frames of at most
 *   `preAuthFrameBytes`; a larger header closes the connection before its payload is read. After
 *   that, the transport's own bound applies (256 MiB: uploads).
 * - Refusals before the signature verifies ("unauthenticated"), on a connection that has not
 *   authenticated: at most `perConnection` per connection (the next request is answered
 *   `RATE_LIMITED` without being checked, and the connection is closed), and at most `perRemote`
 *   per window from one remote address (beyond that, each such refusal is answered `RATE_LIMITED`
 *   and ends its connection, until the window ends). Requests are still checked before that
 *   answer, so a member's valid request passes during a flood. Every peer of this server is on
 *   127.0.0.1, so "per remote" is one budget shared by all anonymous peers: a flood makes every
 *   anonymous mistake cost a reconnect (an invitation redeemer's typo, say), never a member's
 *   request.
 * - Audit: per room and window, the first `auditEach` unauthenticated refusals are audited one by
 *   one (what kind of attack it is); the rest are counted and written as ONE entry
 *   (`room.unauthenticated`, `count`) when the window ends or the server closes. The chain grows
 *   by at most `auditEach + 1` entries per room per window, however many frames arrive.
 *
 * Threat model: an anonymous local process that can connect to the port (anyone on the host).
 */
import { CleanRoomError, invalid } from "../errors.js";

export interface RefusalLimits {
  /** Largest frame read from a connection before it authenticated (bytes). */
  preAuthFrameBytes: number;
  /** Unauthenticated refusals a connection that never authenticated gets before it is closed. */
  perConnection: number;
  /** Unauthenticated refusals per remote address and window. */
  perRemote: number;
  /** Unauthenticated refusals audited one by one per room and window; the rest go in one summary entry. */
  auditEach: number;
  /** The window (ms). */
  windowMs: number;
}

/**
 * The largest request a member sends before its connection authenticated is a `collab.create`
 * of a full definition (256 members, long names, a 1000-character description): 57,281 bytes as a
 * channel frame (measured in test/server/room-limits.test.ts; a signed approval is ~2.4 KiB). Anything else a joined handle sends
 * first is smaller, or it authenticates with `room.info` first (server/client.ts).
 */
export const PRE_AUTH_FRAME_BYTES = 64 * 1024;

export const DEFAULT_REFUSAL_LIMITS: RefusalLimits = {
  preAuthFrameBytes: PRE_AUTH_FRAME_BYTES,
  perConnection: 16,
  perRemote: 128,
  auditEach: 16,
  windowMs: 60_000,
};

/** Check a partial override (from RoomServerOptions) and merge it with the defaults. */
export function refusalLimits(o: Partial<RefusalLimits> | undefined, maxFrame: number): RefusalLimits {
  if (o === undefined) return { ...DEFAULT_REFUSAL_LIMITS };
  if (o === null || typeof o !== "object") return invalid("limits", "an object of limits", o, "PARAM_INVALID");
  const out = { ...DEFAULT_REFUSAL_LIMITS, ...o };
  for (const k of Object.keys(o)) if (!(k in DEFAULT_REFUSAL_LIMITS)) invalid(`limits.${k}`, "a known limit", k, "PARAM_INVALID");
  const int = (k: keyof RefusalLimits, min: number, max: number) => {
    const v = out[k];
    if (!(v === Infinity && k !== "preAuthFrameBytes" && k !== "windowMs") && (!Number.isSafeInteger(v) || v < min || v > max))
      invalid(
        `limits.${k}`,
        `an integer in [${min}, ${max}]${k === "preAuthFrameBytes" || k === "windowMs" ? "" : " or Infinity (off)"}`,
        v,
        "PARAM_INVALID",
      );
  };
  int("preAuthFrameBytes", 256, maxFrame);
  int("perConnection", 1, 1e9);
  int("perRemote", 1, 1e9);
  int("auditEach", 0, 1e9);
  int("windowMs", 1, 86_400_000);
  return out;
}

export const rateLimited = (what: string) =>
  new CleanRoomError(
    "RATE_LIMITED",
    `"request" expected at most ${what} refused unauthenticated requests, got more: answered without being checked`,
    { field: "request", limit: what },
  );

/** One connection as the limiter sees it. */
export interface ConnectionState {
  readonly remote: string;
  /** A request of this connection passed the whole gate. */
  authenticated: boolean;
  /** Unauthenticated refusals answered on it. */
  refusals: number;
}

/** Per-remote windows of unauthenticated refusals (clock: `now`, ms). */
export class RemoteWindows {
  readonly #windows = new Map<string, { until: number; count: number }>();
  constructor(
    private readonly limits: RefusalLimits,
    private readonly now: () => number,
  ) {}

  /** Has `remote` had more than `perRemote` unauthenticated refusals in its current window? */
  exhausted(remote: string): boolean {
    const w = this.#windows.get(remote);
    return !!w && this.now() < w.until && w.count > this.limits.perRemote;
  }

  note(remote: string): void {
    const t = this.now();
    const w = this.#windows.get(remote);
    if (!w || t >= w.until) {
      // drop ended windows (bounded by the number of remotes seen in one window)
      for (const [k, v] of this.#windows) if (t >= v.until) this.#windows.delete(k);
      this.#windows.set(remote, { until: t + this.limits.windowMs, count: 1 });
    } else w.count++;
  }
}

/**
 * One room's audit of unauthenticated refusals: the first `auditEach` of a window one by one,
 * the rest as one counted entry when the window ends (a timer, unref'd) or at `flush()`.
 */
export class RefusalAudit {
  #until = 0;
  #each = 0;
  #count = 0;
  #timer: ReturnType<typeof setTimeout> | null = null;
  constructor(
    private readonly limits: RefusalLimits,
    private readonly now: () => number,
    /** Append one entry: `count` undefined for a single refusal (with its op and code), a number for the summary. */
    private readonly append: (e: { op: string; code: string } | { count: number }) => void,
  ) {}

  note(op: string, code: string): void {
    const t = this.now();
    if (t >= this.#until) {
      this.flush();
      this.#until = t + this.limits.windowMs;
      this.#each = 0;
    }
    if (this.#each < this.limits.auditEach) {
      this.#each++;
      this.append({ op, code });
      return;
    }
    this.#count++;
    if (!this.#timer) {
      this.#timer = setTimeout(() => this.flush(), Math.max(1, this.#until - t));
      this.#timer.unref?.();
    }
  }

  /** Write the pending summary entry (if any). */
  flush(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    if (this.#count === 0) return;
    const count = this.#count;
    this.#count = 0;
    this.append({ count });
  }
}
