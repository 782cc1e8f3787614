/**
 * The socket transport: the same {@link Transport} as the in-process pair, over a real TCP
 * connection between two OS processes on 127.0.0.1 (Node's built-in `net`).
 *
 * Wire format, per message: a 12-byte header — magic "CRL1", payload length (uint32 BE),
 * the length's bitwise complement (uint32 BE) — then the payload: one {@link Envelope} as
 * UTF-8 JSON; a message with a binary attachment is a "CRB1" frame: the JSON's length, the
 * JSON, then the attachment's raw bytes (frame.ts). The first message each way is a `socket.hello` (SOCKET_PROTOCOL) that names
 * the two ends; after that every frame must come from the named peer, to this end.
 *
 * Threat model: this layer gives NO confidentiality or integrity — party↔party traffic goes
 * under a SecureChannel (transport/secure.ts; psiParty does that by default), which refuses
 * any modified, replayed or reordered frame. What this layer guarantees is hygiene and
 * liveness: it only ever binds or connects to 127.0.0.1 (anything else is refused with a
 * typed ACCESS_DENIED, before any socket is opened: the project never sends traffic
 * elsewhere); a frame larger than `maxFrameBytes` is refused from its header, before it is
 * buffered; every frame is checked (header, strict UTF-8, JSON, envelope version,
 * protocol/kind strings, sender and recipient names) before it is delivered, and the first
 * bad frame fails the link; when the peer disconnects (or its process is killed) every
 * pending and later receive is refused with a typed error — never a hang — after the frames
 * that arrived intact before it were delivered. Receiving pauses the socket when more than
 * `highWaterBytes` are queued (back-pressure); sending waits for the socket to drain.
 * Party names in the hello are NOT authenticated (use a SecureChannel with static keys for
 * that). An active attacker on the loopback can still stall a link (denial of service).
 */
import net from "node:net";
import { CleanRoomError, invalid } from "../errors.js";
import { assertAttachment, assertPlainJson, tapMessage, ENVELOPE_VERSION, type Envelope, type Tap, type Transport } from "./transport.js";
import { decodeFrame, encodeBinaryFrame, encodeFrame, frameLength, frameRefusal as refusal, HEADER_BYTES, NAME, TOKEN } from "./frame.js";

export { encodeFrame } from "./frame.js";

/** v2: frames may carry a binary attachment ("CRB1"); a v1 peer is refused at the hello. */
export const SOCKET_PROTOCOL = "cleanroom-lab/socket/v2";
/** The only host this transport binds or connects to. */
export const LOOPBACK = "127.0.0.1";
/** Default frame bound: 256 MiB (a 1M-element PSI message under the channel fits). */
export const DEFAULT_MAX_FRAME_BYTES = 256 * 1024 * 1024;

export interface SocketOptions {
  /** This end's party name (sent in the hello; not secret, not authenticated). */
  self: string;
  /** Only "127.0.0.1" (the default); anything else is refused. */
  host?: string;
  /** Largest frame accepted or sent, in bytes (default 256 MiB). */
  maxFrameBytes?: number;
  /** Pause reading while this many bytes of delivered-but-unreceived frames are queued (default 64 MiB). */
  highWaterBytes?: number;
  /** Give up on a connection whose hello has not arrived within this time (default 30 s). */
  helloTimeoutMs?: number;
  /** Sees every envelope this end sends, with its wire JSON. */
  tap?: Tap;
}

export interface ListenOptions extends SocketOptions {
  /** 0 (the default) picks a free port; read it back from `listener.port`. */
  port?: number;
  /** Accept only a peer whose hello names it so (default: any name). */
  expectPeer?: string;
}

export interface ConnectOptions extends SocketOptions {
  port: number;
  /** The peer this end expects to reach (refused if the listener's hello names another). */
  peer: string;
  /** Keep retrying a refused connection for this long (default 0: fail at once). */
  retryMs?: number;
}

/** One end of a socket link. */
export interface SocketTransport extends Transport {
  /** Resolves when the underlying socket is fully closed (pending writes flushed). */
  whenClosed(): Promise<void>;
  /**
   * Change the largest frame this end accepts from now on (at most `maxFrameBytes`; what it sends
   * is unchanged): a server reads only small frames from a peer that has not authenticated yet,
   * and the next larger header fails the link before its payload is buffered.
   */
  limitIncoming(bytes: number): void;
}

export interface SocketListener {
  readonly host: typeof LOOPBACK;
  readonly port: number;
  /** The next connection whose hello was valid, as a Transport. */
  accept(): Promise<SocketTransport>;
  /** Stop listening (accepted transports stay open); a pending accept is refused. Resolves at once. */
  close(): Promise<void>;
}

function checkCommon(o: SocketOptions, role: string): { maxFrame: number; highWater: number; helloMs: number } {
  if (o === null || typeof o !== "object") invalid("options", `${role} options object`, o);
  if (o.host !== undefined && o.host !== LOOPBACK)
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"host" expected ${LOOPBACK} (this project never sends traffic to another host), got another host`,
      { field: "host", expected: LOOPBACK },
    );
  if (typeof o.self !== "string" || !NAME.test(o.self)) invalid("self", "a party name (1–128 characters)", o.self);
  const maxFrame = o.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
  if (!Number.isSafeInteger(maxFrame) || maxFrame < 256 || maxFrame > 0xffffffff)
    invalid("maxFrameBytes", "integer in [256, 2^32-1]", maxFrame);
  const highWater = o.highWaterBytes ?? 64 * 1024 * 1024;
  if (!Number.isSafeInteger(highWater) || highWater < 1) invalid("highWaterBytes", "positive integer", highWater);
  const helloMs = o.helloTimeoutMs ?? 30_000;
  if (!Number.isSafeInteger(helloMs) || helloMs < 1) invalid("helloTimeoutMs", "positive integer (ms)", helloMs);
  if (o.tap !== undefined && typeof o.tap !== "function") invalid("tap", "a function", o.tap);
  return { maxFrame, highWater, helloMs };
}

function checkPort(port: unknown, min: number): number {
  if (!Number.isSafeInteger(port) || (port as number) < min || (port as number) > 65535)
    invalid("port", `integer in [${min}, 65535]`, port);
  return port as number;
}

class SocketEnd implements SocketTransport {
  private chunks: Buffer[] = [];
  private buffered = 0;
  private need = -1; // payload length of the frame being read, or -1 while reading a header
  private binary = false; // whether that frame is a "CRB1" frame (with an attachment)
  private readonly queue: { env: Envelope; bytes: number }[] = [];
  private queued = 0;
  private readonly waiting: { resolve: (e: Envelope) => void; reject: (e: Error) => void }[] = [];
  private failure: CleanRoomError | null = null;
  private closedLocally = false;
  private readonly closedP: Promise<void>;
  private readonly decoder = new TextDecoder("utf-8", { fatal: true });
  private maxIncoming: number;
  peer: string;

  constructor(
    private readonly socket: net.Socket,
    readonly self: string,
    peer: string | null,
    private readonly lim: { maxFrame: number; highWater: number },
    private readonly tap: Tap | undefined,
  ) {
    this.peer = peer ?? "";
    this.maxIncoming = lim.maxFrame;
    this.closedP = new Promise((r) => socket.once("close", () => r()));
    socket.setNoDelay(true);
    socket.on("data", (d: Buffer) => this.onData(d));
    socket.on("error", (e: NodeJS.ErrnoException) => this.fail(this.peerGone(e.code ?? "error")));
    socket.on("end", () => this.fail(this.peerGone("end")));
    socket.on("close", () => this.fail(this.peerGone("close")));
  }

  private peerGone(how: string): CleanRoomError {
    return new CleanRoomError(
      "STATE_INVALID",
      `"transport" expected an open link to ${this.peer || "the peer"}, got one the peer closed (disconnected or killed mid-protocol)`,
      { field: "transport", reason: "peer-closed", how },
    );
  }

  private closedError(): CleanRoomError {
    return new CleanRoomError("STATE_INVALID", `"transport" expected an open link, got a closed one`, {
      field: "transport",
      reason: "closed",
    });
  }

  /** Fail the link: refuse pending and later receives (after queued frames), close the socket. */
  private fail(e: CleanRoomError): void {
    if (this.failure || this.closedLocally) return;
    this.failure = e;
    this.socket.destroy();
    this.chunks = [];
    if (this.queue.length === 0) for (const w of this.waiting.splice(0)) w.reject(e);
  }

  private take(n: number): Buffer {
    let out: Buffer;
    if (this.chunks[0]!.length >= n) {
      out = this.chunks[0]!.subarray(0, n);
      this.chunks[0] = this.chunks[0]!.subarray(n);
      if (this.chunks[0].length === 0) this.chunks.shift();
    } else {
      const all = Buffer.concat(this.chunks);
      out = all.subarray(0, n);
      this.chunks = all.length > n ? [all.subarray(n)] : [];
    }
    this.buffered -= n;
    return out;
  }

  private onData(d: Buffer): void {
    if (this.failure || this.closedLocally) return;
    this.chunks.push(d);
    this.buffered += d.length;
    while (!this.failure) {
      if (this.need < 0) {
        if (this.buffered < HEADER_BYTES) return;
        let h: { length: number; binary: boolean };
        try {
          h = frameLength(this.take(HEADER_BYTES), this.maxIncoming);
        } catch (e) {
          return this.fail(e as CleanRoomError);
        }
        this.need = h.length;
        this.binary = h.binary;
      }
      if (this.buffered < this.need) return;
      const payload = this.take(this.need);
      this.need = -1;
      let env: Envelope;
      try {
        env = decodeFrame(payload, this.binary, this.decoder, this.self, this.peer);
      } catch (e) {
        return this.fail(e as CleanRoomError);
      }
      this.deliver(env, payload.length);
    }
  }

  private deliver(env: Envelope, bytes: number): void {
    const w = this.waiting.shift();
    if (w) return w.resolve(env);
    this.queue.push({ env, bytes });
    this.queued += bytes;
    if (this.queued > this.lim.highWater) this.socket.pause();
  }

  async send(protocol: string, kind: string, body: unknown, attachment?: Uint8Array): Promise<void> {
    if (this.closedLocally) throw this.closedError();
    if (this.failure) throw this.failure;
    if (typeof protocol !== "string" || !TOKEN.test(protocol))
      invalid("protocol", "a protocol token (1–256 characters)", protocol, "INPUT_INVALID");
    if (typeof kind !== "string" || !TOKEN.test(kind)) invalid("kind", "a kind token (1–256 characters)", kind, "INPUT_INVALID");
    assertPlainJson(body, "body");
    const bytes = assertAttachment(attachment);
    const env: Envelope = { v: ENVELOPE_VERSION, protocol, kind, from: this.self, to: this.peer, body };
    const wire = JSON.stringify(env);
    const payload = Buffer.from(wire, "utf8");
    const size = bytes ? 4 + payload.length + bytes.length : payload.length;
    if (size > this.lim.maxFrame)
      throw new CleanRoomError(
        "INPUT_INVALID",
        `"body" expected a message of at most ${this.lim.maxFrame} bytes (maxFrameBytes), got ${size} bytes`,
        { field: "body", limit: this.lim.maxFrame, size },
      );
    tapMessage(this.tap, wire, bytes);
    let ok = true;
    if (!bytes) ok = this.socket.write(encodeFrame(payload));
    else {
      // the attachment is written as it is (no copy): see Transport.send
      this.socket.cork();
      for (const part of encodeBinaryFrame(payload, bytes)) ok = this.socket.write(part);
      this.socket.uncork();
    }
    if (!ok) {
      await new Promise<void>((resolve, reject) => {
        const done = () => {
          this.socket.off("drain", done);
          this.socket.off("close", done);
          if (this.failure && !this.closedLocally) reject(this.failure);
          else resolve();
        };
        this.socket.on("drain", done);
        this.socket.on("close", done);
      });
    }
  }

  async receive(expect: { protocol?: string; kind?: string } = {}): Promise<Envelope> {
    if (this.closedLocally) throw this.closedError();
    let env: Envelope;
    const next = this.queue.shift();
    if (next) {
      env = next.env;
      this.queued -= next.bytes;
      if (this.queued <= this.lim.highWater && this.socket.isPaused()) this.socket.resume();
    } else {
      if (this.failure) throw this.failure;
      env = await new Promise<Envelope>((resolve, reject) => this.waiting.push({ resolve, reject }));
    }
    if (expect.protocol !== undefined && env.protocol !== expect.protocol)
      throw new CleanRoomError("STATE_INVALID", `"message.protocol" expected ${expect.protocol}, got ${env.protocol}`, {
        field: "message.protocol",
      });
    if (expect.kind !== undefined && env.kind !== expect.kind)
      throw new CleanRoomError("STATE_INVALID", `"message.kind" expected ${expect.kind}, got ${env.kind}`, { field: "message.kind" });
    return env;
  }

  close(): void {
    if (this.closedLocally) return;
    this.closedLocally = true;
    for (const w of this.waiting.splice(0)) w.reject(this.closedError());
    this.queue.length = 0;
    if (this.failure) this.socket.destroy();
    else this.socket.end(); // flush what was sent, then FIN
  }

  whenClosed(): Promise<void> {
    return this.closedP;
  }

  limitIncoming(bytes: number): void {
    if (!Number.isSafeInteger(bytes) || bytes < 256 || bytes > this.lim.maxFrame)
      invalid("limitIncoming", `integer in [256, ${this.lim.maxFrame}] (maxFrameBytes)`, bytes);
    this.maxIncoming = bytes;
  }

  /** The naming exchange: the connecting end speaks first. */
  async hello(role: "connect" | "accept", expectPeer: string | undefined, helloMs: number): Promise<void> {
    const timer = setTimeout(
      () =>
        this.fail(
          new CleanRoomError("STATE_INVALID", `"transport" expected the peer's hello within ${helloMs} ms, got none`, {
            field: "transport",
            reason: "hello-timeout",
          }),
        ),
      helloMs,
    );
    try {
      if (role === "connect") await this.send(SOCKET_PROTOCOL, "socket.hello", {});
      const h = await this.receive({ protocol: SOCKET_PROTOCOL, kind: "socket.hello" });
      if (expectPeer !== undefined && h.from !== expectPeer) throw refusal("hello.from", `the peer "${expectPeer}"`, "another party name");
      if (h.from === this.self) throw refusal("hello.from", "a name different from this end's", "the same name");
      this.peer = h.from;
      if (role === "accept") await this.send(SOCKET_PROTOCOL, "socket.hello", {});
    } catch (e) {
      this.close();
      this.socket.destroy();
      throw e;
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Listen on 127.0.0.1 for peers; each accepted connection becomes a Transport once its hello
 * names the peer. A connection whose hello is invalid is dropped (counted in `refused`).
 *
 * @example
 * const l = await listen({ self: "retailer", port: 0 });   // l.port → the chosen port
 * const t = await l.accept();                              // t.peer → "advertiser"
 */
export async function listen(o: ListenOptions): Promise<SocketListener & { readonly refused: number }> {
  const lim = checkCommon(o, "listen");
  const port = checkPort(o.port ?? 0, 0);
  if (o.expectPeer !== undefined && (typeof o.expectPeer !== "string" || !NAME.test(o.expectPeer)))
    invalid("expectPeer", "a party name", o.expectPeer);
  const ready: SocketTransport[] = [];
  const waiting: { resolve: (t: SocketTransport) => void; reject: (e: Error) => void }[] = [];
  let closed = false;
  let refused = 0;
  const server = net.createServer((socket) => {
    if (closed || socket.remoteAddress !== LOOPBACK) {
      refused++;
      return void socket.destroy();
    }
    const end = new SocketEnd(socket, o.self, null, lim, o.tap);
    end.hello("accept", o.expectPeer, lim.helloMs).then(
      () => {
        const w = waiting.shift();
        if (w) w.resolve(end);
        else ready.push(end);
      },
      () => void refused++,
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (e: NodeJS.ErrnoException) =>
      reject(
        new CleanRoomError("STATE_INVALID", `"port" expected a free port on ${LOOPBACK}, got ${e.code ?? "an error"}`, {
          field: "port",
          reason: e.code ?? "error",
        }),
      ),
    );
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => resolve());
  });
  const actual = (server.address() as net.AddressInfo).port;
  const closedErr = () =>
    new CleanRoomError("STATE_INVALID", `"listener" expected an open listener, got a closed one`, { field: "listener" });
  return {
    host: LOOPBACK,
    port: actual,
    get refused() {
      return refused;
    },
    accept() {
      if (closed) return Promise.reject(closedErr());
      const t = ready.shift();
      if (t) return Promise.resolve(t);
      return new Promise((resolve, reject) => waiting.push({ resolve, reject }));
    },
    close() {
      closed = true;
      for (const w of waiting.splice(0)) w.reject(closedErr());
      // Stop accepting; connections already accepted stay open (server.close's callback
      // would wait for them to end).
      server.close();
      return Promise.resolve();
    },
  };
}

/**
 * Connect to a listening peer on 127.0.0.1 and exchange hellos.
 *
 * @example
 * const t = await connect({ self: "advertiser", peer: "retailer", port: 7711 });
 * await t.send("demo/v1", "hello", { n: 1 });
 */
export async function connect(o: ConnectOptions): Promise<SocketTransport> {
  const lim = checkCommon(o, "connect");
  const port = checkPort(o.port, 1);
  if (typeof o.peer !== "string" || !NAME.test(o.peer)) invalid("peer", "a party name (1–128 characters)", o.peer);
  if (o.peer === o.self) invalid("peer", "a name different from self", o.peer);
  const retryMs = o.retryMs ?? 0;
  if (!Number.isSafeInteger(retryMs) || retryMs < 0) invalid("retryMs", "non-negative integer (ms)", retryMs);
  const deadline = Date.now() + retryMs;
  for (;;) {
    const r = await new Promise<net.Socket | NodeJS.ErrnoException>((resolve) => {
      const s = net.connect({ host: LOOPBACK, port });
      const onErr = (e: NodeJS.ErrnoException) => resolve(e);
      s.once("error", onErr);
      s.once("connect", () => {
        s.off("error", onErr);
        resolve(s);
      });
    });
    if (r instanceof net.Socket) {
      const end = new SocketEnd(r, o.self, o.peer, lim, o.tap);
      await end.hello("connect", o.peer, lim.helloMs);
      return end;
    }
    if (r.code !== "ECONNREFUSED" || Date.now() >= deadline)
      throw new CleanRoomError("STATE_INVALID", `"port" expected a party listening on ${LOOPBACK}:${port}, got ${r.code ?? "an error"}`, {
        field: "port",
        reason: r.code ?? "error",
      });
    await new Promise((res) => setTimeout(res, 50));
  }
}
