/**
 * PSI bound to member keys (issue 13): two members of a joined room (scripts/room-server.mjs in
 * its own process) run psiWithPeer over a real socket; with `room` each side proves, over the
 * SecureChannel transcript, the Ed25519 key the collaboration lists for it. An impostor that
 * names itself "advertiser" but holds another key is refused before any blinded point leaves
 * the honest member (positive control: without the binding the same impostor completes PSI).
 * The advertiser's and the impostor's sides run as their own OS processes (psi-member.mjs).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { createIdentity, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import { acceptCollaboration, createCollaboration, joinRoom, type RemoteRoom } from "../../kernel-lib/src/server/client.js";
import { statementBytes } from "../../kernel-lib/src/server/protocol.js";
import { psiParty } from "../../kernel-lib/src/identity/psi-party.js";
import { psiWithPeer } from "../../kernel-lib/src/verbs/psi.js";
import { connect } from "../../kernel-lib/src/transport/socket.js";
import type { Envelope } from "../../kernel-lib/src/transport/transport.js";
import { spawn, type ChildProcess } from "node:child_process";
import { killAll, startServer } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "psi-member-keys-"));
const ids: Record<string, MemberIdentity> = {};
const rooms: Record<string, RemoteRoom> = {};
let serverUrl: string;
const children: ChildProcess[] = [];
const impostorFile = path.join(dir, "impostor", "advertiser.key");

const emails = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ email: `user${from + i}@example.com` }));
const retailerRows = emails(0, 60); // users 0..59
const advertiserRows = emails(30, 60); // users 30..89: 30 in common

beforeAll(async () => {
  for (const n of ["advertiser", "retailer"])
    ids[n] = createIdentity({ name: n, file: path.join(dir, `${n}.key`), rng: { seed: `pmk-${n}` } });
  createIdentity({ name: "advertiser", file: impostorFile, rng: { seed: "pmk-impostor" } });
  const server = await startServer(path.join(dir, "room.db"), ["--seed", "psi-member-keys"]);
  serverUrl = server.url;
  for (const n of ["advertiser", "retailer"])
    rooms[n] = await joinRoom(server.url, { as: n, identity: ids[n]!, rng: { seed: `pmk-${n}-c` } });
  await createCollaboration(rooms.advertiser!, {
    members: [
      { name: "advertiser", publicKey: ids.advertiser!.publicKey, abilities: ["own", "query", "receive"] },
      { name: "retailer", publicKey: ids.retailer!.publicKey, abilities: ["own"] },
    ],
  });
  for (const n of ["advertiser", "retailer"]) await acceptCollaboration(rooms[n]!);
}, 60_000);

afterAll(() => {
  for (const r of Object.values(rooms)) r.close();
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The advertiser's (or the impostor's) side as its own OS process (test/server/psi-member.mjs), killed by pid after. */
function peerProcess(
  mode: "member" | "plain" | "impostor",
  port: number,
  keyFile: string,
): Promise<{ event: string; code?: string; intersectionSize?: number; matched?: string[]; received: string[] }> {
  const child = spawn(process.execPath, [path.join(__dirname, "psi-member.mjs"), mode, String(port), keyFile, serverUrl], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let out = "";
  let err = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (err += d));
  return new Promise((resolve, reject) =>
    child.once("exit", () => {
      const line = out.split("\n").find((l) => l.startsWith("{"));
      if (line) resolve(JSON.parse(line));
      else reject(new Error(`psi-member.mjs printed nothing: ${err}`));
    }),
  );
}

/** The honest retailer listens; returns its result (or error) and every PSI message it sent. */
async function retailerListens(bound: boolean, onPort: (p: number) => void) {
  const sent: Envelope[] = [];
  const run = psiWithPeer({
    as: "retailer",
    peer: "advertiser",
    listen: 0,
    onListening: onPort,
    rows: retailerRows,
    threads: 1,
    progress: false,
    rng: { seed: "pmk-retailer-psi" },
    onMessage: (d, e) => void (d === "sent" && sent.push(e)),
    ...(bound ? { room: rooms.retailer! } : {}),
  });
  return { run, sent };
}

describe("PSI bound to member keys", () => {
  it("two members with their collaboration keys complete PSI and get the same join keys", async () => {
    let port!: (p: number) => void;
    const ported = new Promise<number>((r) => (port = r));
    const { run } = await retailerListens(true, port);
    const adv = ported.then((p) => peerProcess("member", p, path.join(dir, "advertiser.key")));
    const [r, a] = await Promise.all([run, adv]);
    expect(a.event, JSON.stringify(a)).toBe("done");
    expect(r.matchReport.intersectionSize).toBe(30);
    const rk = new Set(r.joinKeys!.filter((k) => k !== null));
    expect(a.matched).toHaveLength(30);
    for (const k of a.matched!) expect(rk.has(k)).toBe(true);
  }, 30_000);

  it("positive control: without the binding an impostor with another key completes PSI and learns the overlap", async () => {
    let port!: (p: number) => void;
    const ported = new Promise<number>((r) => (port = r));
    const { run, sent } = await retailerListens(false, port);
    const [r, i] = await Promise.all([run, ported.then((p) => peerProcess("plain", p, impostorFile))]);
    expect(r.matchReport.intersectionSize).toBe(30);
    expect(i.event, JSON.stringify(i)).toBe("done");
    expect(i.intersectionSize).toBe(30);
    expect(i.received.length).toBeGreaterThan(0);
    expect(sent.some((e) => e.kind.startsWith("psi."))).toBe(true);
  }, 30_000);

  it("with the binding the impostor is refused (SIGNATURE_INVALID) before the retailer sends any blinded point", async () => {
    let port!: (p: number) => void;
    const ported = new Promise<number>((r) => (port = r));
    const { run, sent } = await retailerListens(true, port);
    const [r, i] = await Promise.allSettled([run, ported.then((p) => peerProcess("impostor", p, impostorFile))]);
    expect(r.status).toBe("rejected");
    const err = (r as PromiseRejectedResult).reason;
    expect(isCleanRoomError(err, "SIGNATURE_INVALID"), String(err)).toBe(true);
    expect(err.details.field).toBe("peer");
    expect(sent).toEqual([]); // no PSI message at all left the retailer
    const imp = (i as PromiseFulfilledResult<Awaited<ReturnType<typeof peerProcess>>>).value;
    expect(imp.event).toBe("error"); // the impostor's run aborts with no result
    expect(imp.code).toBe("PSI_SESSION_ABORTED");
    expect(imp.received).toEqual([]); // and it received no blinded point
  }, 30_000);

  it("the binding refuses a peer name that is not a member, before listening or sending anything", async () => {
    let listened = false;
    await expect(
      psiWithPeer({
        room: rooms.retailer!,
        as: "retailer",
        peer: "mallory",
        listen: 0,
        onListening: () => (listened = true),
        rows: retailerRows,
        progress: false,
      }),
    ).rejects.toMatchObject({ code: "NOT_A_MEMBER" });
    expect(listened).toBe(false);
  });

  it("a proof made for another session (replayed transcript) does not verify", async () => {
    // a real signature by the real advertiser, but over another transcript: the relay/replay case
    const stale = ids.advertiser!.sign(
      statementBytes({
        statement: "psi",
        room: rooms.retailer!.roomId,
        member: "advertiser",
        peer: "retailer",
        transcript: "00".repeat(32),
      }),
    );
    let port!: (p: number) => void;
    const ported = new Promise<number>((r) => (port = r));
    const { run, sent } = await retailerListens(true, port);
    const replay = ported.then(async (p) => {
      const transport = await connect({ self: "advertiser", peer: "retailer", port: p, retryMs: 10_000 });
      return psiParty({
        role: "initiator",
        rows: advertiserRows,
        transport,
        threads: 1,
        peerAuth: { prove: () => stale, verify: () => true },
      });
    });
    const [r] = await Promise.allSettled([run, replay]);
    expect(isCleanRoomError((r as PromiseRejectedResult).reason, "SIGNATURE_INVALID")).toBe(true);
    expect(sent).toEqual([]);
  }, 30_000);
});
