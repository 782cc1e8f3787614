import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { linkedPair, type Envelope } from "../../kernel-lib/src/transport/transport.js";
import { secureTransport } from "../../kernel-lib/src/transport/secure.js";
import { seededRng } from "../../kernel-lib/src/rng.js";

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
});
