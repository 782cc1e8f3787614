import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { secureTransport } from "../../kernel-lib/src/transport/secure.js";
import { connect, encodeFrame, listen, SOCKET_PROTOCOL, type SocketTransport } from "../../kernel-lib/src/transport/socket.js";

const code = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e) => (isCleanRoomError(e) ? `${e.code} ${String(e.details.field)}` : `untyped ${String(e)}`),
  );

const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

async function pair(o: { maxFrameBytes?: number } = {}): Promise<[SocketTransport, SocketTransport]> {
  const l = await listen({ self: "retailer", port: 0, ...o });
  cleanup.push(() => l.close());
  const [b, a] = await Promise.all([l.accept(), connect({ self: "advertiser", peer: "retailer", port: l.port, ...o })]);
  cleanup.push(
    () => a.close(),
    () => b.close(),
  );
  return [a, b];
}

/** A raw TCP peer that speaks the hello correctly, then whatever bytes the test wants. */
async function rawPeer(port: number, name = "advertiser", to = "retailer"): Promise<net.Socket> {
  const s = net.connect({ host: "127.0.0.1", port });
  await new Promise((r) => s.once("connect", r));
  s.write(encodeFrame(Buffer.from(JSON.stringify({ v: 1, protocol: SOCKET_PROTOCOL, kind: "socket.hello", from: name, to, body: {} }))));
  cleanup.push(() => s.destroy());
  return s;
}

describe("the socket transport (TCP on 127.0.0.1)", () => {
  it("carries envelopes both ways, in order, naming both ends; a large message arrives whole", async () => {
    const [a, b] = await pair();
    expect([a.self, a.peer, b.self, b.peer]).toEqual(["advertiser", "retailer", "retailer", "advertiser"]);
    const big = Array.from({ length: 20_000 }, (_, i) => `e${i}`.padEnd(64, "0"));
    await a.send("demo/v1", "one", { n: 1 });
    await a.send("demo/v1", "big", { big });
    const pending = a.receive({ kind: "back" });
    expect(await b.receive({ protocol: "demo/v1", kind: "one" })).toEqual({
      v: 1,
      protocol: "demo/v1",
      kind: "one",
      from: "advertiser",
      to: "retailer",
      body: { n: 1 },
    });
    expect((await b.receive()).body).toEqual({ big });
    await b.send("demo/v1", "back", { ok: true });
    expect((await pending).body).toEqual({ ok: true });
  });

  it("never binds or connects anywhere but 127.0.0.1: any other host is refused before a socket opens", async () => {
    for (const host of ["0.0.0.0", "localhost", "::1", "10.0.0.1", "example.org"]) {
      expect(await code(listen({ self: "r", host, port: 0 }))).toBe("ACCESS_DENIED host");
      expect(await code(connect({ self: "a", peer: "r", host, port: 9 }))).toBe("ACCESS_DENIED host");
    }
    expect(await code(connect({ self: "a", peer: "r", port: 70000 }))).toBe("PARAM_INVALID port");
  });

  it("refuses a message over the frame bound on send, before anything is written", async () => {
    const [a, b] = await pair({ maxFrameBytes: 4096 });
    expect(await code(a.send("demo/v1", "big", { s: "x".repeat(5000) }))).toBe("INPUT_INVALID body");
    await a.send("demo/v1", "small", { s: "ok" });
    expect((await b.receive()).kind).toBe("small"); // the refused one never crossed
  });

  it("refuses a frame whose header announces more than the bound, without buffering it, and fails the link", async () => {
    const l = await listen({ self: "retailer", port: 0, maxFrameBytes: 4096 });
    cleanup.push(() => l.close());
    const s = await rawPeer(l.port);
    const t = await l.accept();
    const pending = t.receive();
    const h = Buffer.alloc(12);
    h.writeUInt32BE(0x43524c31, 0);
    h.writeUInt32BE(1 << 30, 4);
    h.writeUInt32BE(~(1 << 30) >>> 0, 8);
    s.write(h);
    expect(await code(pending)).toBe("INPUT_INVALID frame.length");
    expect(await code(t.send("demo/v1", "x", {}))).toBe("INPUT_INVALID frame.length");
  });

  const badFrames: [string, Buffer, string][] = [
    ["not JSON", encodeFrame(Buffer.from("{nope")), "INPUT_INVALID frame"],
    ["invalid UTF-8", encodeFrame(Buffer.from([0x7b, 0xff, 0xfe, 0x7d])), "INPUT_INVALID frame"],
    ["a JSON array", encodeFrame(Buffer.from("[1,2]")), "INPUT_INVALID message"],
    [
      "another envelope version",
      encodeFrame(Buffer.from(JSON.stringify({ v: 2, protocol: "p/v1", kind: "k", from: "advertiser", to: "retailer", body: {} }))),
      "INPUT_INVALID message.v",
    ],
    [
      "an extra field",
      encodeFrame(Buffer.from(JSON.stringify({ v: 1, protocol: "p/v1", kind: "k", from: "advertiser", to: "retailer", body: {}, x: 1 }))),
      "INPUT_INVALID message",
    ],
    [
      "an empty kind",
      encodeFrame(Buffer.from(JSON.stringify({ v: 1, protocol: "p/v1", kind: "", from: "advertiser", to: "retailer", body: {} }))),
      "INPUT_INVALID message.kind",
    ],
    [
      "a forged sender",
      encodeFrame(Buffer.from(JSON.stringify({ v: 1, protocol: "p/v1", kind: "k", from: "mallory", to: "retailer", body: {} }))),
      "INPUT_INVALID message.from",
    ],
    [
      "another recipient",
      encodeFrame(Buffer.from(JSON.stringify({ v: 1, protocol: "p/v1", kind: "k", from: "advertiser", to: "bank", body: {} }))),
      "INPUT_INVALID message.to",
    ],
    [
      "a corrupted length",
      (() => {
        const f = encodeFrame(Buffer.from("{}"));
        f[7] ^= 1;
        return f;
      })(),
      "INPUT_INVALID frame.length",
    ],
    [
      "bad magic",
      (() => {
        const f = encodeFrame(Buffer.from("{}"));
        f[0] ^= 1;
        return f;
      })(),
      "INPUT_INVALID frame.header",
    ],
  ];
  for (const [what, bytes, expected] of badFrames)
    it(`validates every frame before delivery: ${what} is refused (${expected}) and fails the link`, async () => {
      const l = await listen({ self: "retailer", port: 0 });
      cleanup.push(() => l.close());
      const s = await rawPeer(l.port);
      const t = await l.accept();
      const good = encodeFrame(
        Buffer.from(JSON.stringify({ v: 1, protocol: "p/v1", kind: "ok", from: "advertiser", to: "retailer", body: { n: 1 } })),
      );
      s.write(Buffer.concat([good, bytes, good]));
      expect((await t.receive()).kind).toBe("ok"); // the intact frame before it is delivered
      expect(await code(t.receive())).toBe(expected); // nothing after the bad one
    });

  it("refuses a hello that names the wrong party, and a listener that expects another peer", async () => {
    const l = await listen({ self: "retailer", port: 0, expectPeer: "advertiser" });
    cleanup.push(() => l.close());
    expect(await code(connect({ self: "advertiser", peer: "bank", port: l.port }))).toMatch(/^(INPUT_INVALID|STATE_INVALID) /);
    expect(await code(connect({ self: "mallory", peer: "retailer", port: l.port }))).toMatch(/^(INPUT_INVALID|STATE_INVALID) /);
    const ok = await connect({ self: "advertiser", peer: "retailer", port: l.port });
    cleanup.push(() => ok.close());
    expect((await l.accept()).peer).toBe("advertiser");
    expect(l.refused).toBe(2);
  });

  it("a peer that disconnects mid-protocol: frames already received are delivered, then the pending receive is refused", async () => {
    const [a, b] = await pair();
    await a.send("demo/v1", "last", {});
    await new Promise((r) => setTimeout(r, 50));
    a.close();
    expect((await b.receive()).kind).toBe("last");
    expect(await code(b.receive())).toBe("STATE_INVALID transport");
    expect(await code(b.send("demo/v1", "x", {}))).toBe("STATE_INVALID transport");
  });

  it("a peer whose socket is destroyed (as by kill -9) refuses a receive already waiting, never hangs", async () => {
    const l = await listen({ self: "retailer", port: 0 });
    cleanup.push(() => l.close());
    const s = await rawPeer(l.port);
    const t = await l.accept();
    const pending = t.receive();
    s.resetAndDestroy();
    expect(await code(pending)).toBe("STATE_INVALID transport");
  });

  it("refuses a connection to a port where nobody listens with a typed error", async () => {
    const l = await listen({ self: "retailer", port: 0 });
    const port = l.port;
    await l.close();
    expect(await code(connect({ self: "advertiser", peer: "retailer", port }))).toBe("STATE_INVALID port");
  });

  it("back-pressure: a burst far beyond the high-water mark arrives complete and in order", async () => {
    const l = await listen({ self: "retailer", port: 0, highWaterBytes: 10_000 });
    cleanup.push(() => l.close());
    const [b, a] = await Promise.all([l.accept(), connect({ self: "advertiser", peer: "retailer", port: l.port })]);
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    const blob = "y".repeat(50_000);
    // 8 MB against a 10 kB high-water mark: the receiver pauses reading, the sender waits
    // for the socket to drain; nothing deadlocks, nothing is lost or reordered
    const sending = Promise.all(Array.from({ length: 160 }, (_, i) => a.send("demo/v1", "m", { i, blob })));
    await new Promise((r) => setTimeout(r, 50));
    for (let i = 0; i < 160; i++) expect((await b.receive()).body).toEqual({ i, blob });
    await sending;
  });

  it("under a SecureChannel the socket carries only sealed frames, and the far end reads the message", async () => {
    const [a, b] = await pair();
    const seen: string[] = [];
    // what crosses the socket, seen by a tap on the inner transport's sends
    const inner = {
      ...a,
      send: (p: string, k: string, body: unknown) => (seen.push(JSON.stringify(body)), a.send(p, k, body)),
      receive: a.receive.bind(a),
      close: a.close.bind(a),
    };
    const [sa, sb] = await Promise.all([
      secureTransport(inner, "initiator", { rng: seededRng("a") }),
      secureTransport(b, "responder", { rng: seededRng("b") }),
    ]);
    await sa.send("demo/v1", "secret", { email: "canary-7f3a@example.org" });
    expect((await sb.receive({ kind: "secret" })).body).toEqual({ email: "canary-7f3a@example.org" });
    expect(seen.join("\n")).not.toContain("canary-7f3a");
    expect(sa.transcriptHash).toBe(sb.transcriptHash);
  });
});
