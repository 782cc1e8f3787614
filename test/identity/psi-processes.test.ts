/**
 * PSI between two OS processes over the socket transport (issue 13): each party is
 * scripts/psi-party.mjs in its own process with its own rows and keys, talking through a
 * man-in-the-middle relay on 127.0.0.1 (this test process) that forwards — and records, and
 * on demand flips or holds — every byte. Needs the build (kernel-lib/dist).
 */
import { createHash } from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES, isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { KeyRegistry, type PsiMode } from "../../kernel-lib/src/identity/psi.js";
import { psiParty, psiWithPeer } from "../../kernel-lib/src/identity/psi-party.js";
import { linkedPair, type Tap } from "../../kernel-lib/src/transport/transport.js";
import { runPsi, type PsiRunResult } from "../../kernel-lib/src/identity/run-psi.js";
import { psiPartyHarness, type PartyProc } from "../helpers/psi-party-proc.js";

const SEED = "psi-processes";
const { dir, spawn } = psiPartyHarness("psi-processes-");

// Seeded identities: 260 advertiser rows, 240 retailer rows, 150 shared people; messy casing
// and spaces on one side, a repeat purchase and an invalid row on the other.
const rng = seededRng(SEED);
const person = (i: number) => `canary${Buffer.from(rng.fork(`p${i}`).bytes(5)).toString("hex")}@mail${i % 7}.example`;
const people = Array.from({ length: 350 }, (_, i) => person(i));
const exposures = people
  .slice(0, 260)
  .map((e, i) => ({ email: i % 3 === 0 ? ` ${e.toUpperCase()} ` : e, group: i % 2 ? "test" : "control" }));
const purchases = [...people.slice(110, 350), people[200]!, "not-an-email"].map((e, i) => ({ email: e, amount: String(i % 50) }));
fs.writeFileSync(path.join(dir, "exposures.json"), JSON.stringify(exposures));
fs.writeFileSync(path.join(dir, "purchases.csv"), "email,amount\n" + purchases.map((r) => `"${r.email}",${r.amount}`).join("\n") + "\n");

interface Party extends PartyProc {
  out: string;
}

function party(role: "initiator" | "responder", tag: string, net_: string[]): Party {
  const [self, peer, rows] =
    role === "initiator" ? ["advertiser", "retailer", "exposures.json"] : ["retailer", "advertiser", "purchases.csv"];
  const out = path.join(dir, `${tag}-${self}.json`);
  const args = ["--role", role, "--as", self, "--peer", peer, ...net_, "--rows", path.join(dir, rows), "--out", out];
  return { ...spawn([...args, "--seed", SEED, "--timeout-ms", "60000"]), out };
}

type Dir = "i2r" | "r2i";
/** A MITM relay: re-frames each direction (12-byte header + payload), records, flips, holds. */
async function relay(
  target: number,
  o: { flip?: { dir: Dir; frame: number; at: "middle" | number }; hold?: { dir: Dir; fromFrame: number } } = {},
) {
  const recorded: Record<Dir, Buffer[]> = { i2r: [], r2i: [] };
  const server = net.createServer((client) => {
    const up = net.connect({ host: "127.0.0.1", port: target });
    const pipe = (from: net.Socket, to: net.Socket, d: Dir) => {
      let pending = Buffer.alloc(0);
      let frame = 0;
      from.on("data", (chunk: Buffer) => {
        pending = Buffer.concat([pending, chunk]);
        while (pending.length >= 12 && pending.length >= 12 + pending.readUInt32BE(4)) {
          const f = Buffer.from(pending.subarray(0, 12 + pending.readUInt32BE(4)));
          pending = pending.subarray(f.length);
          if (o.flip && o.flip.dir === d && o.flip.frame === frame)
            f[o.flip.at === "middle" ? 12 + Math.floor((f.length - 12) / 2) : o.flip.at] ^= 0x01;
          recorded[d].push(f);
          if (!(o.hold && o.hold.dir === d && frame >= o.hold.fromFrame)) to.write(f);
          frame++;
        }
      });
      from.on("close", () => to.destroy());
      from.on("error", () => to.destroy());
    };
    pipe(client, up, "i2r");
    pipe(up, client, "r2i");
  });
  await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  return { port: (server.address() as net.AddressInfo).port, recorded, close: () => server.close() };
}

async function run(tag: string, o: Parameters<typeof relay>[1] = {}) {
  const responder = party("responder", tag, ["--listen", "0"]);
  const { port } = (await responder.waitFor((e) => e.event === "listening")) as { port: number };
  const mitm = await relay(port, o);
  const initiator = party("initiator", tag, ["--connect", String(mitm.port)]);
  return { responder, initiator, mitm };
}

const readResult = (p: Party) => JSON.parse(fs.readFileSync(p.out, "utf8"));
const lastError = (p: Party) => p.events.find((e) => e.event === "error") as { code: string; field: string } | undefined;

describe("PSI between two processes over the socket transport", { timeout: 120_000 }, () => {
  let inproc: PsiRunResult;
  let ok: Awaited<ReturnType<typeof run>>;
  beforeAll(async () => {
    inproc = await runPsi(exposures, purchases, {
      mode: "joinKeys",
      rng: { seed: SEED },
      names: { a: "advertiser", b: "retailer" },
      registry: new KeyRegistry(),
      channel: true,
    });
    ok = await run("ok");
    expect(await ok.initiator.exited).toBe(0);
    expect(await ok.responder.exited).toBe(0);
    ok.mitm.close();
  }, 120_000);

  it("each side gets exactly its own join keys from the in-process runPsi on the same seeded inputs", () => {
    const a = readResult(ok.initiator);
    const b = readResult(ok.responder);
    expect(a.joinKeys).toEqual(inproc.joinKeysA);
    expect(b.joinKeys).toEqual(inproc.joinKeysB);
    expect(a.matchReport.intersectionSize).toBe(150);
    expect(b.matchReport.intersectionSize).toBe(150);
    expect(a.matchReport.sessionId).toBe(inproc.matchReport.sessionId);
    expect(a.matchReport.channelTranscriptHash).toBe(b.matchReport.channelTranscriptHash);
    expect(b.matchReport.self.rejectedRows).toBe(1);
    // each process's result holds only its own side
    expect(Object.keys(a)).not.toContain("joinKeysB");
    expect(a.joinKeys).toHaveLength(exposures.length);
    expect(b.joinKeys).toHaveLength(purchases.length);
  });

  it("a canary scan of every byte that crossed: no identifier of either party, normalised or raw, nor its SHA-256", () => {
    const wire = Buffer.concat([...ok.mitm.recorded.i2r, ...ok.mitm.recorded.r2i]);
    expect(wire.length).toBeGreaterThan(30_000); // the blinded sets did cross
    const ids = [...exposures.map((r) => r.email), ...purchases.map((r) => r.email)];
    const canaries = new Set<string>();
    for (const id of ids)
      for (const v of [id, id.trim(), id.trim().toLowerCase()]) {
        canaries.add(v);
        canaries.add(createHash("sha256").update(v).digest("hex"));
        canaries.add(createHash("sha256").update(v).digest("base64"));
        canaries.add(createHash("sha256").update(v).digest("latin1")); // the raw 32-byte digest (the scan is over latin1 text)
        canaries.add(Buffer.from(v).toString("base64").slice(0, 16));
      }
    canaries.add("canary"); // every local part starts with it
    const text = wire.toString("latin1");
    const scan = (hay: string) => [...canaries].filter((c) => c.trim().length > 0 && hay.includes(c));
    expect(scan(text)).toEqual([]);
    expect(scan(`x${ids[5]}y`).length).toBeGreaterThan(0); // the scanner does see a leak
    // only the two hellos per side are readable; everything else is sealed frames
    // a "CRB1" frame (binary attachment: the sealed points) starts its payload with the JSON's length
    const json = (f: Buffer) => (f.toString("latin1", 0, 4) === "CRB1" ? f.subarray(16, 16 + f.readUInt32BE(12)) : f.subarray(12));
    const frames = [...ok.mitm.recorded.i2r, ...ok.mitm.recorded.r2i];
    expect(frames.filter((f) => f.toString("latin1", 0, 4) === "CRB1").length).toBe(4); // request, setup, response, finish
    const kinds = frames.map((f) => JSON.parse(json(f).toString()).kind);
    expect(kinds.filter((k) => k !== "channel.frame").sort()).toEqual(["channel.hello", "channel.hello", "socket.hello", "socket.hello"]);
  });

  const flips: [string, { dir: Dir; frame: number; at: "middle" | number }, string | null][] = [
    ["the advertiser's blinded set (psi.request)", { dir: "i2r", frame: 2, at: "middle" }, "CHANNEL_TAMPERED"],
    ["the retailer's psi.response", { dir: "r2i", frame: 3, at: "middle" }, "CHANNEL_TAMPERED"],
    ["the last protocol message (psi.finish)", { dir: "i2r", frame: 3, at: "middle" }, "CHANNEL_TAMPERED"],
    ["the advertiser's channel hello", { dir: "i2r", frame: 1, at: "middle" }, null],
  ];
  for (const [what, flip, expected] of flips)
    it(`a relay that flips one byte of ${what}: a typed refusal on both sides, no result written`, async () => {
      const r = await run(`flip-${flip.dir}-${flip.frame}`, { flip });
      const [ci, cr] = await Promise.all([r.initiator.exited, r.responder.exited]);
      r.mitm.close();
      expect([ci, cr]).toEqual([2, 2]);
      const [receiver, sender] = flip.dir === "i2r" ? [r.responder, r.initiator] : [r.initiator, r.responder];
      const [er, es] = [lastError(receiver)!, lastError(sender)!];
      expect(ERROR_CODES).toContain(er.code);
      expect(ERROR_CODES).toContain(es.code);
      if (expected) {
        expect(er.code).toBe(expected);
        expect(es.code).toBe("PSI_SESSION_ABORTED");
      }
      expect(fs.existsSync(r.initiator.out) || fs.existsSync(r.responder.out)).toBe(false);
      expect([...r.initiator.events, ...r.responder.events].some((e) => e.event === "done")).toBe(false);
    });

  it("kill -9 of the retailer mid-protocol: the advertiser's run is aborted with a typed error, no result written", async () => {
    // hold the retailer's answers so the advertiser is provably waiting on it when it dies
    const r = await run("kill-responder", { hold: { dir: "r2i", fromFrame: 2 } });
    await r.responder.waitFor((e) => e.event === "sent" && e.kind === "psi.response");
    r.responder.proc.kill("SIGKILL");
    expect(await r.initiator.exited).toBe(2);
    expect(lastError(r.initiator)).toMatchObject({ code: "PSI_SESSION_ABORTED", field: "session" });
    expect(await r.responder.exited).toBe(null);
    expect(fs.existsSync(r.initiator.out) || fs.existsSync(r.responder.out)).toBe(false);
    r.mitm.close();
  });

  it("kill -9 of the advertiser mid-protocol (direct socket, no relay): the retailer's run is aborted, no result written", async () => {
    const responder = party("responder", "kill-initiator", ["--listen", "0"]);
    const { port } = (await responder.waitFor((e) => e.event === "listening")) as { port: number };
    const initiator = party("initiator", "kill-initiator", ["--connect", String(port)]);
    await responder.waitFor((e) => e.event === "connected");
    initiator.proc.kill("SIGKILL");
    expect(await responder.exited).toBe(2);
    expect(lastError(responder)).toMatchObject({ code: "PSI_SESSION_ABORTED", field: "session" });
    expect(fs.existsSync(initiator.out) || fs.existsSync(responder.out)).toBe(false);
  });
});

describe("psiParty: one side of PSI, over any Transport", { timeout: 120_000 }, () => {
  const both = (o: { modeA?: PsiMode; modeB?: PsiMode; rowsA?: unknown; tap?: Tap } = {}) => {
    const [ta, tb] = linkedPair("advertiser", "retailer", { tap: o.tap });
    const common = { rng: { seed: SEED }, registry: new KeyRegistry(), threads: 1 };
    return Promise.allSettled([
      psiParty({ role: "initiator", rows: (o.rowsA ?? exposures) as never, transport: ta, mode: o.modeA ?? "joinKeys", ...common }),
      psiParty({ role: "responder", rows: purchases, transport: tb, mode: o.modeB ?? "joinKeys", ...common }),
    ]);
  };
  const codeOf = (r: PromiseSettledResult<unknown>) =>
    r.status === "rejected" && isCleanRoomError(r.reason) ? `${r.reason.code} ${String(r.reason.details.field)}` : r.status;

  it("intersection mode: the initiator learns its matched rows (as runPsi's A), the responder learns nothing but the peer's set size", async () => {
    const inproc = await runPsi(exposures, purchases, {
      mode: "intersection",
      rng: { seed: SEED },
      names: { a: "advertiser", b: "retailer" },
      registry: new KeyRegistry(),
      threads: 1,
    });
    const [a, b] = await both({ modeA: "intersection", modeB: "intersection" });
    if (a.status !== "fulfilled" || b.status !== "fulfilled") throw new Error("a side failed");
    expect(a.value.matchedRows).toEqual(inproc.matchedRowsA);
    expect(a.value.matchReport.intersectionSize).toBe(150);
    expect(b.value.matchReport.intersectionSize).toBeNull();
    expect(b.value.joinKeys).toBeNull();
    expect(b.value.matchReport.peerDistinctIdentifiers).toBe(260);
  });

  it("bad input is refused before anything is sent, and the peer's pending receive is refused too (no hang)", async () => {
    const sent: string[] = [];
    const [a, b] = await both({ rowsA: [{ email: "not-an-email" }], tap: (env) => void sent.push(env.kind) });
    expect(codeOf(a)).toBe("PSI_EMPTY_SET rows");
    expect(codeOf(b)).toBe("PSI_SESSION_ABORTED session");
    expect(sent).toEqual([]);
  });

  it("parties that disagree on the mode: typed refusals on both sides, no result", async () => {
    const [a, b] = await both({ modeA: "intersection", modeB: "joinKeys" });
    expect(codeOf(b)).toBe("PSI_INVALID_MESSAGE psi.request.mode");
    expect(codeOf(a)).toBe("PSI_SESSION_ABORTED session");
  });

  it("psiWithPeer (the notebook entry): one kernel listens, the other connects, over a real socket; same join keys as runPsi", async () => {
    const inproc = await runPsi(exposures, purchases, {
      mode: "joinKeys",
      rng: { seed: SEED },
      names: { a: "advertiser", b: "retailer" },
      registry: new KeyRegistry(),
      threads: 1,
    });
    let advertiser!: ReturnType<typeof psiWithPeer>;
    const port = await new Promise<number>((onListening) => {
      advertiser = psiWithPeer({
        as: "advertiser",
        peer: "retailer",
        listen: 0,
        role: "initiator",
        rows: exposures,
        rng: { seed: SEED },
        registry: new KeyRegistry(),
        threads: 1,
        onListening,
      });
    });
    const retailer = psiWithPeer({
      as: "retailer",
      peer: "advertiser",
      connect: port,
      role: "responder",
      rows: purchases,
      rng: { seed: SEED },
      registry: new KeyRegistry(),
      threads: 1,
    });
    const [a, b] = await Promise.all([advertiser, retailer]);
    expect(a.joinKeys).toEqual(inproc.joinKeysA);
    expect(b.joinKeys).toEqual(inproc.joinKeysB);
    expect(a.peer).toBe("retailer");
    expect(a.matchReport.channelTranscriptHash).toMatch(/^[0-9a-f]{64}$/);
  });

  it("psiWithPeer refuses bad rows before opening any socket", async () => {
    await expect(psiWithPeer({ as: "retailer", peer: "advertiser", connect: 1, rows: [{ email: "nope" }] })).rejects.toMatchObject({
      code: "PSI_EMPTY_SET",
    });
    await expect(psiWithPeer({ as: "retailer", peer: "advertiser", rows: purchases } as never)).rejects.toMatchObject({
      code: "PARAM_INVALID",
    });
  });
});
