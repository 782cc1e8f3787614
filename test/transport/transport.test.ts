import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { linkedPair, type Envelope } from "../../kernel-lib/src/transport/transport.js";
import { secureTransport } from "../../kernel-lib/src/transport/secure.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { CHANNEL_PROTOCOL, SecureChannel, type ChannelHello } from "../../kernel-lib/src/crypto/channel.js";
import { utf8 } from "../../kernel-lib/src/crypto/primitives.js";

const code = async (p: Promise<unknown>) =>
  p.then(
    () => "resolved",
    (e) => (isCleanRoomError(e) ? `${e.code} ${String(e.details.field)}` : `untyped ${String(e)}`),
  );

describe("the in-process linked pair", () => {
  it("delivers in order, as a fresh copy: a sender's later mutation never reaches the receiver", async () => {
    const [a, b] = linkedPair("advertiser", "retailer");
    const body = { n: 1, list: ["x"] };
    await a.send("demo/v1", "one", body);
    await a.send("demo/v1", "two", { n: 2 });
    body.n = 99;
    body.list.push("leak");
    const first = await b.receive({ protocol: "demo/v1", kind: "one" });
    expect(first).toEqual({ v: 1, protocol: "demo/v1", kind: "one", from: "advertiser", to: "retailer", body: { n: 1, list: ["x"] } });
    expect((await b.receive()).body).toEqual({ n: 2 });
    // and the other direction, with a receive waiting before the send
    const pending = a.receive();
    await b.send("demo/v1", "back", { ok: true });
    expect((await pending).from).toBe("retailer");
  });

  it("refuses anything that is not plain JSON data, naming where, before anything is delivered", async () => {
    const [a, b] = linkedPair("A", "B");
    class Secret {
      key = "k";
    }
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const bad: [unknown, string][] = [
      [{ key: new Uint8Array(32) }, "body.key"],
      [{ f: () => 1 }, "body.f"],
      [{ s: new Secret() }, "body.s"],
      [{ x: Number.NaN }, "body.x"],
      [{ u: undefined }, "body.u"],
      [[1, 2n], "body[1]"],
      [cyclic, "body.self"],
    ];
    for (const [body, field] of bad) expect(await code(a.send("demo/v1", "bad", body))).toBe(`INPUT_INVALID ${field}`);
    // nothing of the refused sends arrived: the first message B sees is the next valid one
    await a.send("demo/v1", "good", { fine: [1, "two", null, true, { x: 1.5 }] });
    expect((await b.receive()).kind).toBe("good");
  });

  it("a receive expecting another kind or protocol is refused; a closed link refuses pending and later calls", async () => {
    const [a, b] = linkedPair("A", "B");
    await a.send("demo/v1", "hello", {});
    expect(await code(b.receive({ kind: "bye" }))).toBe("STATE_INVALID message.kind");
    await a.send("demo/v1", "hello", {});
    expect(await code(b.receive({ protocol: "other/v1" }))).toBe("STATE_INVALID message.protocol");
    const pending = b.receive();
    a.close();
    expect(await code(pending)).toBe("STATE_INVALID transport");
    expect(await code(b.send("demo/v1", "late", {}))).toBe("STATE_INVALID transport");
  });

  it("under a SecureChannel only hellos and sealed frames cross; the receiver gets the message back", async () => {
    const wires: string[] = [];
    const [a, b] = linkedPair("A", "B", { tap: (_e: Envelope, w: string) => void wires.push(w) });
    const [sa, sb] = await Promise.all([
      secureTransport(a, "initiator", { rng: seededRng("sa") }),
      secureTransport(b, "responder", { rng: seededRng("sb") }),
    ]);
    await sa.send("demo/v1", "secret", { canary: "alice@example.org" });
    expect((await sb.receive({ kind: "secret" })).body).toEqual({ canary: "alice@example.org" });
    expect(wires.map((w) => (JSON.parse(w) as Envelope).kind)).toEqual(["channel.hello", "channel.hello", "channel.frame"]);
    expect(wires.join("")).not.toContain("alice@example.org");
    expect(sa.transcriptHash).toBe(sb.transcriptHash);
  });

  it("under a SecureChannel, a peer holding the channel keys that seals a malformed message gets a typed refusal", async () => {
    const env = { v: 1, protocol: "demo/v1", kind: "k", from: "A", to: "B", body: {} };
    const packed = (json: string, bytes = new Uint8Array(3)) => {
      const j = Buffer.from(json);
      const out = Buffer.alloc(5 + j.length + bytes.length);
      out.writeUInt32BE(j.length, 1);
      j.copy(out, 5);
      out.set(bytes, 5 + j.length);
      return out;
    };
    const cases: [string, Uint8Array | "both", string][] = [
      ["not JSON", utf8("{nope"), "INPUT_INVALID frame"],
      ["invalid UTF-8", Uint8Array.from([0x7b, 0xff, 0x7d]), "INPUT_INVALID frame"],
      ["a JSON array", utf8("[1]"), "INPUT_INVALID message"],
      ["a bytes field in the JSON", utf8(JSON.stringify({ ...env, bytes: "AAAA" })), "INPUT_INVALID message"],
      ["a missing body", utf8(JSON.stringify({ ...env, body: undefined })), "INPUT_INVALID message"],
      ["a forged sender", utf8(JSON.stringify({ ...env, from: "M" })), "INPUT_INVALID message.from"],
      ["a packed message whose JSON is null", packed("null"), "INPUT_INVALID message"],
      ["a packed message whose JSON is not JSON", packed("{x"), "INPUT_INVALID frame"],
      ["a frame with a ciphertext in its header and raw bytes", "both", "CHANNEL_TAMPERED frame"],
    ];
    for (const [what, plaintext, expected] of cases) {
      const [a, b] = linkedPair("A", "B");
      const receiving = secureTransport(b, "responder", { rng: seededRng(`r-${what}`) });
      const { channel, hello } = SecureChannel.initiate({ party: "A", rng: seededRng(`i-${what}`) });
      await a.send(CHANNEL_PROTOCOL, "channel.hello", hello);
      channel.complete((await a.receive({ kind: "channel.hello" })).body as unknown as ChannelHello);
      const sb = await receiving;
      if (plaintext === "both") {
        const { header, ciphertext } = channel.sealRaw(packed(JSON.stringify(env)), "k");
        await a.send(CHANNEL_PROTOCOL, "channel.frame", { ...header, ciphertext: "AAAA" }, ciphertext);
      } else await a.send(CHANNEL_PROTOCOL, "channel.frame", channel.seal(plaintext, "k"));
      expect(await code(sb.receive()), what).toBe(expected);
    }
  });
});
