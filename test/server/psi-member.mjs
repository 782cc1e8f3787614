/**
 * One member's PSI side as its own OS process (test/server/psi-member-keys.test.ts): connects to
 * a peer listening on 127.0.0.1:PORT as "advertiser" with rows user30..user89@example.com and
 * prints one JSON line: {"event":"done","intersectionSize":…,"matched":…,"received":[kinds]} or
 * {"event":"error","code":…,"received":[kinds]}.
 *
 *   node test/server/psi-member.mjs MODE PORT KEYFILE [ROOM_URL]
 *   MODE member   — psiWithPeer({ room }) after joinRoom(ROOM_URL) with KEYFILE's identity
 *        plain    — psiWithPeer without room (no binding)
 *        impostor — KEYFILE is another key named "advertiser": it signs the psi statement with it
 *                   (room id from ROOM_URL) and accepts any peer
 */
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dist = (p) => require(path.join(root, "kernel-lib/dist", p));
const { loadIdentity } = dist("server/identity.js");
const { joinRoom } = dist("server/client.js");
const { statementBytes, parseRoomUrl } = dist("server/protocol.js");
const { psiWithPeer } = dist("verbs/psi.js");
const { psiParty } = dist("identity/psi-party.js");
const { connect } = dist("transport/socket.js");

const [mode, port, keyFile, url] = process.argv.slice(2);
const me = loadIdentity(keyFile);
const rows = Array.from({ length: 60 }, (_, i) => ({ email: `user${30 + i}@example.com` }));
const received = [];
const onMessage = (d, e) => void (d === "received" && received.push(e.kind));
const common = { rows, threads: 1, rng: { seed: `psi-member-${mode}` }, onMessage };
let room = null;
try {
  let r;
  if (mode === "member") {
    room = await joinRoom(url, { as: me.name, identity: me });
    r = await psiWithPeer({ ...common, room, as: me.name, peer: "retailer", connect: Number(port), progress: false });
  } else if (mode === "plain") {
    r = await psiWithPeer({ ...common, as: me.name, peer: "retailer", connect: Number(port), progress: false });
  } else {
    const roomId = parseRoomUrl(url).room;
    const transport = await connect({ self: "advertiser", peer: "retailer", port: Number(port), retryMs: 10_000 });
    r = await psiParty({
      ...common,
      role: "initiator",
      transport,
      peerAuth: {
        prove: (transcript) =>
          me.sign(statementBytes({ statement: "psi", room: roomId, member: "advertiser", peer: "retailer", transcript })),
        verify: () => true, // an impostor accepts anyone
      },
    });
  }
  const matched = r.joinKeys.filter((k) => k !== null);
  process.stdout.write(JSON.stringify({ event: "done", intersectionSize: r.matchReport.intersectionSize, matched, received }) + "\n");
} catch (e) {
  process.stdout.write(JSON.stringify({ event: "error", code: e?.code ?? "INTERNAL", message: String(e?.message ?? e), received }) + "\n");
} finally {
  room?.close();
}
