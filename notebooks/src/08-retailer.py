#!/usr/bin/python3
"""Generate notebooks/08-retailer.ipynb (one of the two party notebooks of lesson 08). Run from the repo root:

    /usr/bin/python3 notebooks/src/08-retailer.py

CI executes it concurrently with 08-advertiser.ipynb against a room server the harness starts.
"""
from nbgen import notebook

md, code, write = notebook("08-retailer.ipynb", room={"group": "08", "args": ["--epsilon", "3", "--per-party", "3", "--enclave", "process"]})

md(r"""
# 08 · Two real parties — the retailer's notebook

The other half of lesson 08 (read **08-advertiser.ipynb** first; run both at once). The retailer
holds its purchases and its own Ed25519 key. It reviews the collaboration the advertiser created —
members, keys, abilities — before signing it, runs PSI with the advertiser's kernel directly,
uploads keyed rows, signs the template's hash, and checks every approval and the audit chain itself.

**Teaching mode — not private.** The study and PSI are seeded, labelled on every result.
""")

code(r"""
import * as fs from "fs";
import * as path from "path";
import {
  createIdentity, loadIdentity, joinRoom, acceptCollaboration, verifyApprovals, psiWithPeer, upload, approveTemplate,
  budget, audit, generateStudy, liftSchemas, liftRules, liftTemplate, attestEnclave, templateHash,
} from "@cleanroom-lab/kernel";
import { bulletin, attachJoinKeys, waitForRoom } from "@cleanroom-lab/kernel/labs";

const DIR = process.env.CLEANROOM_ROOM_DIR ?? path.resolve("..", ".scratch", "room");
const URL = process.env.CLEANROOM_ROOM_URL ?? JSON.parse(fs.readFileSync(path.join(DIR, "room.db.server.json"), "utf8")).url;
const board = bulletin(path.join(DIR, "board"));
const keyFile = path.join(DIR, "retailer.key");
const me = fs.existsSync(keyFile) ? loadIdentity(keyFile) : createIdentity({ name: "retailer", file: keyFile });
board.post("retailer.publicKey", me.publicKey);
const room = await joinRoom(URL, { as: "retailer", identity: me });
me
""")

md(r"""
## 1 · Review, then sign, the collaboration

`acceptCollaboration` recomputes the definition's hash here and signs it only if it is the one the
advertiser announced. Read the members and abilities before you sign: the retailer may only own data
(no queries, no results).
""")

code(r"""
const announced = await board.read<string>("collaboration");
const accepted = await acceptCollaboration(room, { expectHash: announced });
(accepted.active ?? accepted.pending)!.definition.members.map((m) => ({ member: m.name, abilities: m.abilities.join(", "), key: m.publicKey.slice(0, 16) + "…" }))
""")

md(r"""
## 2 · PSI with the advertiser's kernel

The retailer listens on a free port of 127.0.0.1 and posts the port on the board; its e-mails never
leave this kernel, and the server sees nothing of this exchange. With `room`, each side first proves
the Ed25519 key the collaboration lists for it (a signature over this PSI channel's transcript): a
process that found the port but not the advertiser's key is refused before any blinded point leaves.
""")

code(r"""
const study = generateStudy({ seed: "lesson-08", advertiserRows: 4000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const purchases = study.purchases;   // the retailer's own rows
await waitForRoom(room, { until: "active" });   // the keys PSI checks come from the active collaboration
const psi = await psiWithPeer({ room, as: "retailer", peer: "advertiser", listen: 0, onListening: (p) => board.post("retailer.psiPort", p),
  rows: purchases, threads: 1, rng: { seed: "lesson-08-psi-retailer" } });
const keyed = attachJoinKeys(purchases, psi.joinKeys!, { keepUnmatched: false });
await upload(room, { party: "retailer", name: "purchases", rows: keyed, schema: liftSchemas().purchases,
  purposes: ["measurement"], rule: liftRules(50).purchases });
board.post("retailer.uploaded", true);
await board.read("advertiser.uploaded");
console.log(`uploaded ${keyed.length} keyed purchase rows (no e-mail)`);
""")

code(r"""
const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 50 });
await approveTemplate(room, { template: t, party: "retailer" })
""")

md(r"""
## 3 · Enclave mode: the operator never holds the key

The server was started with `--enclave process`. Now the retailer uploads its keyed rows with
`sealing: "enclave"`: they are validated **in this kernel**, kept here, and sealed under a key only
this kernel holds — the server catalogs the schema, row count, fingerprint and rule, and stores a
blob it cannot open. `attestEnclave` asks the server to launch the enclave as its own process; this
kernel then computes the image it expects on its own (the templates whose approvals it verified, its
own rule, the published code), sends a fresh challenge, verifies the signed document the server
relays, and only then releases its key — sealed to the enclave, so the server cannot open it either.
""")

code(r"""
await upload(room, { party: "retailer", name: "purchases_sealed", rows: keyed, schema: liftSchemas().purchases,
  purposes: ["measurement"], rule: liftRules(50).purchases, sealing: "enclave" });
board.post("retailer.sealedUploaded", true);
await board.read("advertiser.sealedUploaded");
const te = liftTemplate({ advertiser: "advertiser", retailer: "retailer", exposures: "exposures_sealed", purchases: "purchases_sealed", threshold: 50 });
await approveTemplate(room, { template: te, party: "retailer", executor: "enclave" });
await waitForRoom(room, { until: { approved: templateHash(te) } });
const released = await attestEnclave(room, { purpose: "measurement" });
if (released.owners.some((o) => o.outcome !== "released")) throw new Error("the retailer refused the enclave");
board.post("retailer.released", released.moduleId);
released
""")

md(r"""
## 4 · Check what was done in the room

When the advertiser has run its study, the retailer checks — in its own kernel — that every approval
is a valid member signature, what the budget says, and that the audit chain verifies (it also shows
the advertiser's refused forgery attempts).
""")

code(r"""
await board.read("advertiser.done", { timeoutMs: 180_000 });
const check = await verifyApprovals(room);
if (!check.ok) throw new Error("an approval does not verify");
check
""")

code(r"""
await budget(room)
""")

code(r"""
const log = await audit(room);
if (!log.verification.ok) throw new Error("audit chain does not verify");
room.close();
log
""")

write()
