/**
 * PSI's packed wire (psi-wire.ts, issue 18): points cross as n × 32 bytes — a binary
 * attachment on every transport (in-process pair, socket "CRB1" frames, SecureChannel) —
 * with the same validation as the hex view, the same transcript digests on both sides, the
 * same join keys, and a typed refusal between v1 and v2 peers.
 */
import { createHash } from "node:crypto";
import net from "node:net";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { SodiumBackend, type PsiBackend } from "../../kernel-lib/src/identity/psi-backend.js";
import { counting } from "../helpers/psi-counting.js";
import { KeyRegistry, PsiClient, PsiServer, psiMessageView, type PsiEncoding } from "../../kernel-lib/src/identity/psi.js";
import { fromEnvelope } from "../../kernel-lib/src/identity/psi-wire.js";
import { linkedPair } from "../../kernel-lib/src/transport/transport.js";
import { secureTransport } from "../../kernel-lib/src/transport/secure.js";
import { connect, encodeFrame, listen, SOCKET_PROTOCOL } from "../../kernel-lib/src/transport/socket.js";

let sodium: SodiumBackend;
beforeAll(async () => {
  sodium = await new SodiumBackend({ threads: 1 }).init();
});
const cleanup: (() => unknown)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

const code = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e) => (isCleanRoomError(e) ? `${e.code} ${String(e.details.field)}` : `untyped ${String(e)}`),
  );

function pair(seed: string, enc: { a: PsiEncoding; b: PsiEncoding }, backend: PsiBackend = sodium) {
  const rng = seededRng(seed);
  const registry = new KeyRegistry();
  return {
    client: new PsiClient({ mode: "joinKeys", backend, rng: rng.fork("a"), registry, encoding: enc.a }),
    server: new PsiServer({ mode: "joinKeys", backend, rng: rng.fork("b"), registry, encoding: enc.b }),
  };
}

const emails = (p: string, n: number, off = 0) => Array.from({ length: n }, (_, i) => `${p}${i + off}@example.com`);

describe("packed PSI messages", () => {
  it("packed and hex peers interoperate: same join keys, and both sides' transcript digests are those of the JSON view", async () => {
    const x = emails("m", 40);
    const y = emails("m", 30, 25);
    const runs = [];
    for (const enc of [
      { a: "hex", b: "hex" },
      { a: "packed", b: "packed" },
      { a: "packed", b: "hex" },
    ] as const) {
      const { client, server } = pair("interop", enc);
      const request = await client.createRequest(x);
      expect(request.encryptedElements instanceof Uint8Array).toBe(enc.a === "packed");
      const { setup, response } = await server.processRequest(request, y);
      const out = await client.processResponse(setup, response);
      if (out.mode !== "joinKeys") throw new Error("mode");
      const fin = await server.processFinish(out.finish);
      const sent = { "psi.request": request, "psi.setup": setup, "psi.response": response, "psi.finish": out.finish };
      for (const e of [...client.transcript, ...server.transcript]) {
        const json = JSON.stringify(psiMessageView(sent[e.kind]));
        expect(e.sha256, `${enc.a}/${enc.b} ${e.direction} ${e.kind}`).toBe(createHash("sha256").update(json).digest("hex"));
        expect(e.bytes).toBe(json.length);
      }
      runs.push({ a: out.joinKeys, b: fin.joinKeys });
    }
    expect(runs[0]!.a.filter(Boolean)).toHaveLength(15);
    expect(runs[1]).toEqual(runs[0]);
    expect(runs[2]).toEqual(runs[0]);
  });

  const cases: [string, (p: Uint8Array) => Uint8Array, string][] = [
    ["a length that is not a multiple of 32", (p) => p.subarray(0, p.length - 1), "PSI_INVALID_MESSAGE psi.request.encryptedElements"],
    ["no points", () => new Uint8Array(0), "PSI_EMPTY_SET psi.request.encryptedElements"],
    ["a duplicate", (p) => (p.set(p.subarray(0, 32), 64), p), "PSI_DUPLICATE_ELEMENT psi.request.encryptedElements[2]"],
    ["the identity point", (p) => (p.fill(0, 32, 64), p), "CRYPTO_INVALID_POINT psi.request.encryptedElements[1]"],
    ["a non-canonical encoding", (p) => (p.fill(0xff, 0, 31), (p[31] = 0x7f), p), "CRYPTO_INVALID_POINT psi.request.encryptedElements[0]"],
  ];
  for (const [what, mutate, expected] of cases)
    it(`refuses a packed request with ${what} before any multiplication, and aborts`, async () => {
      const { client } = pair(`bad-${what}`, { a: "packed", b: "packed" });
      const { be, c } = counting(sodium);
      const { server } = pair(`bad-s-${what}`, { a: "packed", b: "packed" }, be);
      const request = await client.createRequest(["a@x.org", "b@x.org", "c@x.org"]);
      const points = (request.encryptedElements as Uint8Array).slice();
      expect(await code(server.processRequest({ ...request, encryptedElements: mutate(points) }, ["a@x.org"]))).toBe(expected);
      expect(c.mults).toBe(0);
      expect(await code(server.processRequest(request, ["a@x.org"]))).toBe("PSI_SESSION_ABORTED session");
    });

  it("an envelope with points both in its body and as its attachment is refused", () => {
    const env = {
      v: 1 as const,
      protocol: "cleanroom-lab/psi/v2",
      kind: "psi.request",
      from: "A",
      to: "B",
      body: { encryptedElements: [] },
    };
    expect(() => fromEnvelope({ ...env, bytes: new Uint8Array(32) })).toThrow(/PSI_INVALID_MESSAGE.*psi\.request\.encryptedElements/);
  });

  it("a caller changing a packed response it was handed does not change the server's matching (joinKeys)", async () => {
    const { client, server } = pair("alias", { a: "packed", b: "packed" });
    const request = await client.createRequest(emails("m", 40));
    const { setup, response } = await server.processRequest(request, emails("m", 30, 25));
    const out = await client.processResponse(setup, response);
    if (out.mode !== "joinKeys") throw new Error("mode");
    (response.encryptedElements as Uint8Array).fill(7); // the server's own copy must not follow
    const fin = await server.processFinish(out.finish);
    expect(out.intersectionSize).toBe(15);
    expect(fin.intersectionSize).toBe(15);
  });

  it("a packed response or finish with the wrong number of points is refused, naming the field", async () => {
    const { client, server } = pair("count", { a: "packed", b: "packed" });
    const request = await client.createRequest(emails("m", 10));
    const { setup, response } = await server.processRequest(request, emails("m", 10, 5));
    const short = (request.encryptedElements as Uint8Array).length - 32;
    const cut = { ...response, encryptedElements: (response.encryptedElements as Uint8Array).subarray(0, short) };
    expect(await code(client.processResponse(setup, cut))).toBe("PSI_INVALID_MESSAGE psi.response.encryptedElements");

    const p2 = pair("count2", { a: "packed", b: "packed" });
    const r2 = await p2.server.processRequest(await p2.client.createRequest(emails("m", 10)), emails("m", 10, 5));
    const out = await p2.client.processResponse(r2.setup, r2.response);
    if (out.mode !== "joinKeys") throw new Error("mode");
    const fin = out.finish.encryptedElements as Uint8Array;
    const longer = new Uint8Array(fin.length + 32);
    longer.set(fin);
    longer.set(
      fin.subarray(0, 32).map((b, i) => (i === 0 ? b ^ 1 : b)),
      fin.length,
    );
    expect(await code(p2.server.processFinish({ ...out.finish, encryptedElements: longer }))).toBe(
      "PSI_INVALID_MESSAGE psi.finish.encryptedElements",
    );
  });

  it("an attachment under a kind that is no PSI kind is refused without echoing the kind", () => {
    const kind = "evil\n".repeat(200);
    let err: unknown;
    try {
      fromEnvelope({
        v: 1,
        protocol: "cleanroom-lab/psi/v2",
        kind,
        from: "A",
        to: "B",
        body: { encryptedElements: [] },
        bytes: new Uint8Array(32),
      });
    } catch (e) {
      err = e;
    }
    if (!isCleanRoomError(err)) throw new Error(`expected a typed refusal, got ${String(err)}`);
    expect([err.code, err.details.field]).toEqual(["PSI_INVALID_MESSAGE", "message.encryptedElements"]);
    expect(err.message).not.toContain("evil");
  });

  it("a v1 message is refused with a typed error naming the protocol", async () => {
    const { client, server } = pair("v1", { a: "hex", b: "packed" });
    const request = await client.createRequest(["a@x.org"]);
    expect(await code(server.processRequest({ ...request, protocol: "cleanroom-lab/psi/v1" as never }, ["a@x.org"]))).toBe(
      "PSI_INVALID_MESSAGE psi.request.protocol",
    );
  });
});

describe("binary attachments on every transport", () => {
  const bytes = Uint8Array.from({ length: 70_000 }, (_, i) => (i * 7) & 0xff);

  it("in-process pair and SecureChannel: the receiver gets a copy of the bytes; the sender's later change does not reach it", async () => {
    const [a, b] = linkedPair("A", "B");
    const mine = bytes.slice();
    await a.send("demo/v1", "blob", { n: 1 }, mine);
    mine.fill(0);
    const got = await b.receive();
    expect(got.body).toEqual({ n: 1 });
    expect(got.bytes).toEqual(bytes);
    const [sa, sb] = await Promise.all([
      secureTransport(a, "initiator", { rng: seededRng("ca") }),
      secureTransport(b, "responder", { rng: seededRng("cb") }),
    ]);
    await sa.send("demo/v1", "blob", { n: 2 }, bytes);
    await sa.send("demo/v1", "text", { n: 3 });
    const one = await sb.receive();
    expect([one.body, one.bytes]).toEqual([{ n: 2 }, bytes]);
    expect(await sb.receive()).toMatchObject({ body: { n: 3 } });
  }, 10_000);

  it("socket: a CRB1 frame carries JSON and bytes; a bad JSON length is refused (typed) and fails the link", async () => {
    const l = await listen({ self: "retailer", port: 0 });
    cleanup.push(() => l.close());
    const [b, a] = await Promise.all([l.accept(), connect({ self: "advertiser", peer: "retailer", port: l.port })]);
    cleanup.push(
      () => a.close(),
      () => b.close(),
    );
    await a.send("demo/v1", "blob", { n: 1 }, bytes);
    const got = await b.receive();
    expect([got.body, got.bytes]).toEqual([{ n: 1 }, bytes]);

    const l2 = await listen({ self: "retailer", port: 0 });
    cleanup.push(() => l2.close());
    const s = net.connect({ host: "127.0.0.1", port: l2.port });
    cleanup.push(() => s.destroy());
    await new Promise((r) => s.once("connect", r));
    s.write(
      encodeFrame(
        Buffer.from(
          JSON.stringify({ v: 1, protocol: SOCKET_PROTOCOL, kind: "socket.hello", from: "advertiser", to: "retailer", body: {} }),
        ),
      ),
    );
    const t = await l2.accept();
    cleanup.push(() => t.close());
    const frame = encodeFrame(Buffer.from([0, 0, 0, 99, 1, 2, 3]));
    frame.write("CRB1", 0, "latin1");
    s.write(frame);
    expect(await code(t.receive())).toBe("INPUT_INVALID frame.jsonLength");
  });

  const crb1 = (payload: Buffer) => {
    const f = encodeFrame(payload);
    f.write("CRB1", 0, "latin1");
    return f;
  };
  async function rawLink() {
    const l = await listen({ self: "retailer", port: 0 });
    cleanup.push(() => l.close());
    const s = net.connect({ host: "127.0.0.1", port: l.port });
    cleanup.push(() => s.destroy());
    await new Promise((r) => s.once("connect", r));
    const hello = { v: 1, protocol: SOCKET_PROTOCOL, kind: "socket.hello", from: "advertiser", to: "retailer", body: {} };
    s.write(encodeFrame(Buffer.from(JSON.stringify(hello))));
    const t = await l.accept();
    cleanup.push(() => t.close());
    return { s, t };
  }

  it("socket: a CRB1 frame too short for its JSON length is refused from its header", async () => {
    const { s, t } = await rawLink();
    s.write(crb1(Buffer.from([0, 0, 0])));
    expect(await code(t.receive())).toBe("INPUT_INVALID frame.length");
  });

  it("socket: the incoming bound the server sets before authentication (limitIncoming) refuses a CRB1 frame too", async () => {
    const { s, t } = await rawLink();
    t.limitIncoming(256);
    const json = Buffer.from(JSON.stringify({ v: 1, protocol: "demo/v1", kind: "blob", from: "advertiser", to: "retailer", body: {} }));
    const n = Buffer.alloc(4);
    n.writeUInt32BE(json.length);
    s.write(crb1(Buffer.concat([n, json, Buffer.alloc(1000)])));
    expect(await code(t.receive())).toBe("INPUT_INVALID frame.length");
  });

  it("socket: a v1 peer's hello is refused with a typed error (old and new peers do not talk)", async () => {
    const l = await listen({ self: "retailer", port: 0 });
    cleanup.push(() => l.close());
    const s = net.connect({ host: "127.0.0.1", port: l.port });
    cleanup.push(() => s.destroy());
    await new Promise((r) => s.once("connect", r));
    const hello = { v: 1, protocol: "cleanroom-lab/socket/v1", kind: "socket.hello", from: "advertiser", to: "retailer", body: {} };
    s.write(encodeFrame(Buffer.from(JSON.stringify(hello))));
    await new Promise((r) => s.once("close", r)); // the listener dropped it
    expect(l.refused).toBe(1);
    // and a v2 end connecting to a v1 listener gets a typed refusal, not a hang
    const old = net.createServer((c) =>
      c.once("data", () => c.write(encodeFrame(Buffer.from(JSON.stringify({ ...hello, from: "retailer", to: "advertiser" }))))),
    );
    await new Promise<void>((r) => old.listen({ host: "127.0.0.1", port: 0 }, () => r()));
    cleanup.push(() => old.close());
    const port = (old.address() as net.AddressInfo).port;
    expect(await code(connect({ self: "advertiser", peer: "retailer", port }))).toBe("STATE_INVALID message.protocol");
  });
});
