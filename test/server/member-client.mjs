/**
 * A member's kernel as its own OS process (for the room-server fault tests): joins the room
 * with its key file, signs an upload of many keyed rows, prints {"event":"sending"} and sends it,
 * so the test can kill -9 it while the (~30 MB) request is being sealed and written to the socket.
 *
 *   node test/server/member-client.mjs URL KEYFILE ROWS
 */
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");
const dist = (p) => require(path.join(root, "kernel-lib/dist", p));
const { loadIdentity } = dist("server/identity.js");
const { joinRoom } = dist("server/client.js");
const { liftSchemas } = dist("cleanroom/templates/lift.js");

const [url, keyFile, n] = process.argv.slice(2);
const me = loadIdentity(keyFile);
const room = await joinRoom(url, { as: me.name, identity: me });
const rows = Array.from({ length: Number(n) }, (_, i) => ({
  join_key: `jk${i}`,
  purchase_day: i % 28,
  value_cents: i % 1000,
  store_region: "north",
  category: "food",
}));
// signed first (canonical JSON of every row), then announced, then sent: the kill lands in the send
const req = room.sign("upload", {
  input: { party: me.name, name: "big", rows, schema: liftSchemas().purchases, purposes: ["measurement"] },
});
process.stdout.write(JSON.stringify({ event: "sending" }) + "\n");
const r = await room.sendRaw(req);
process.stdout.write(JSON.stringify({ event: "done", ok: r.ok }) + "\n");
room.close();
