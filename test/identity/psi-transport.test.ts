import { describe, expect, it } from "vitest";
import { sha256 } from "@noble/hashes/sha2.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { hexPoints, KeyRegistry } from "../../kernel-lib/src/identity/psi.js";
import { hex, utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { linkedPair, type Envelope, type Tap, type Transport } from "../../kernel-lib/src/transport/transport.js";

const A = ["alice@example.org", "bob@example.org", "carol@example.org", "dave@example.org"];
const B = ["carol@example.org", "alice@example.org", "erin@example.org"];

/** A link that records every wire string and binary attachment that crossed, as a socket would see them. */
function recording() {
  const wires: { from: string; to: string; wire: string; bytes?: Uint8Array }[] = [];
  const link = (a: string, b: string, o: { tap?: Tap }) =>
    linkedPair(a, b, {
      tap: (env, wire, bytes) => (wires.push({ from: env.from, to: env.to, wire, bytes: bytes?.slice() }), o.tap?.(env, wire, bytes)),
    });
  return { wires, link };
}

function forms(ids: string[]): string[] {
  return ids.flatMap((x) => [x, x.split("@")[0]!, hex(sha256(utf8(x)))]);
}

describe("PSI parties talk only through the transport", () => {
  for (const mode of ["joinKeys", "intersection", "cardinality"] as const)
    it(`${mode}: every message crosses as plain JSON with its points packed, and carries no identifier of either party`, async () => {
      const { wires, link } = recording();
      const r = await runPsi(A, B, {
        mode,
        link,
        names: { a: "advertiser", b: "retailer" },
        threads: 1,
        rng: { seed: `transport-${mode}` },
        registry: new KeyRegistry(),
        keepMessages: true,
      });
      // the protocol ran over the link: one wire message per transcript step, in order
      expect(wires.map((w) => `${w.from}->${w.to}`)).toEqual(r.transcript.map((t) => `${t.from}->${t.to}`));
      expect(wires.length).toBe(mode === "joinKeys" ? 4 : 3);
      for (const { wire, bytes } of wires) {
        const env = JSON.parse(wire) as Envelope;
        expect(JSON.stringify(env)).toBe(wire); // plain data: a JSON round trip is lossless
        expect(env.v).toBe(1);
        expect(env.protocol).toBe("cleanroom-lab/psi/v2");
        expect(env.body).not.toHaveProperty("encryptedElements"); // the points cross once, packed
        expect(bytes!.length % 32).toBe(0);
        const seen = wire + Buffer.from(bytes!).toString("latin1") + Buffer.from(bytes!).toString("hex");
        for (const f of forms([...A, ...B])) expect(seen.includes(f), `identifier form leaked`).toBe(false);
      }
      // what the parties processed is what crossed: the JSON view is the body plus the packed points in hex
      expect(r.messages!.map((m) => m.message)).toEqual(
        wires.map((w) => ({ ...(JSON.parse(w.wire) as Envelope).body, encryptedElements: hexPoints(w.bytes!) })),
      );
      expect(r.transcript.map((t) => t.count)).toEqual(wires.map((w) => w.bytes!.length / 32));
      if (mode !== "cardinality") expect(r.matchReport.intersectionSize).toBe(2);
    });

  it("with channel: true only the handshake and sealed frames cross; the elements never appear in clear", async () => {
    const { wires, link } = recording();
    const r = await runPsi(A, B, {
      link,
      channel: true,
      threads: 1,
      rng: { seed: "transport-chan" },
      registry: new KeyRegistry(),
      keepMessages: true,
    });
    expect(wires.map((w) => (JSON.parse(w.wire) as Envelope).kind)).toEqual([
      "channel.hello",
      "channel.hello",
      ...r.transcript.map(() => "channel.frame"),
    ]);
    const all = wires
      .map((w) => w.wire + (w.bytes ? Buffer.from(w.bytes).toString("latin1") + Buffer.from(w.bytes).toString("hex") : ""))
      .join("");
    expect(wires.filter((w) => w.bytes).length).toBe(r.transcript.length); // the sealed points crossed as attachments
    for (const m of r.messages!)
      for (const e of m.message.encryptedElements) {
        expect(all.includes(e)).toBe(false);
        expect(all.includes(Buffer.from(e, "hex").toString("latin1"))).toBe(false);
      }
    expect(r.joinKeysA!.filter((k) => k !== null).length).toBe(2);
  });

  it("a party that refuses a tampered message fails the run with its typed error instead of hanging", async () => {
    // the responder's end duplicates one element of the request it receives
    const link = (a: string, b: string, o: { tap?: Tap }): [Transport, Transport] => {
      const [ta, tb] = linkedPair(a, b, o);
      const evil: Transport = {
        ...tb,
        self: tb.self,
        peer: tb.peer,
        send: (p, k, body, bytes) => tb.send(p, k, body, bytes),
        close: () => tb.close(),
        async receive(expect) {
          const env = await tb.receive(expect);
          if (env.kind === "psi.request") env.bytes!.copyWithin(32, 0, 32); // point 1 := point 0
          return env;
        },
      };
      return [ta, evil];
    };
    const err = await runPsi(A, B, { link, threads: 1, rng: { seed: "transport-tamper" }, registry: new KeyRegistry() }).catch((e) => e);
    expect(isCleanRoomError(err)).toBe(true);
    expect(err.code).toBe("PSI_DUPLICATE_ELEMENT");
  });
});
