#!/usr/bin/python3
"""Generate notebooks/08-advertiser.ipynb (one of the two party notebooks of lesson 08). Run from the repo root:

    /usr/bin/python3 notebooks/src/08-advertiser.py

CI executes it concurrently with 08-retailer.ipynb against a room server the harness starts
(scripts/run-notebooks.py: notebooks with the same `cleanroom.room` metadata run as a group).
"""
from nbgen import notebook

md, code, write = notebook("08-advertiser.ipynb", room={"group": "08", "args": ["--epsilon", "3", "--per-party", "3", "--enclave", "process"]})

md(r"""
# 08 · Two real parties — the advertiser's notebook

**What it teaches.** Until now one notebook played every party. Here each party runs **its own
notebook, in its own kernel, with its own key**; the clean room is a **separate server process** that
the operator runs (`npm run room -- --store room.db --port 7700`). Nothing this notebook does can be
done in the retailer's name: every request is signed with the advertiser's Ed25519 key, the server
checks the signature, the membership, a fresh nonce and the order of requests, and the party of every
request is its signer.

Open **08-retailer.ipynb** beside this one and run both (CI runs them at the same time). The two
notebooks meet through a notice board in a shared folder (public keys, the PSI port, "uploaded").

**Steps.** Identity → join the room → create the collaboration (members, keys, abilities), everyone
accepts → PSI **kernel to kernel** (the server never sees an e-mail) → upload keyed rows → both owners
sign the template's hash → lift → budget → audit, and a forged approval refused.

**Teaching mode — not private.** The study and PSI are seeded, labelled on every result.
""")

code(r"""
import * as fs from "fs";
import * as path from "path";
import {
  createIdentity, loadIdentity, joinRoom, createCollaboration, acceptCollaboration, verifyApprovals,
  psiWithPeer, upload, declarePurpose, approveTemplate, liftStudy, budget, audit, attempt,
  generateStudy, liftSchemas, liftRules, liftTemplate, templateHash, cleanRoomQuery, attestEnclave,
} from "@cleanroom-lab/kernel";
import { bulletin, waitForRoom, attachJoinKeys } from "@cleanroom-lab/kernel/labs";

// the harness (or you) started the server: npm run room -- --store ../.scratch/room/room.db --port 7700
const DIR = process.env.CLEANROOM_ROOM_DIR ?? path.resolve("..", ".scratch", "room");
const URL = process.env.CLEANROOM_ROOM_URL ?? JSON.parse(fs.readFileSync(path.join(DIR, "room.db.server.json"), "utf8")).url;
const board = bulletin(path.join(DIR, "board"));
const keyFile = path.join(DIR, "advertiser.key");
const me = fs.existsSync(keyFile) ? loadIdentity(keyFile) : createIdentity({ name: "advertiser", file: keyFile });
board.post("advertiser.publicKey", me.publicKey);
me  // the public key and its fingerprint; the secret stays in the 0600 key file
""")

md(r"""
## 1 · Join the room and create the collaboration

The URL pins the server's public key (`#…`): a process that merely listens on the port cannot pose as
the room. The advertiser creates the collaboration, AWS Clean Rooms style: who the members are, their
public keys, and their **abilities** — the retailer owns data; the advertiser owns data, may query and
may receive results. Nothing runs until **every** member has signed its acceptance of this definition's hash.
""")

code(r"""
const room = await joinRoom(URL, { as: "advertiser", identity: me });
const retailerKey = await board.read<string>("retailer.publicKey");
const created = await createCollaboration(room, {
  description: "Q3 campaign lift: exposures × purchases",
  members: [
    { name: "advertiser", publicKey: me.publicKey, abilities: ["own", "query", "receive"] },
    { name: "retailer", publicKey: retailerKey, abilities: ["own"] },
  ],
});
board.post("collaboration", created.collaboration);
await acceptCollaboration(room, { expectHash: created.collaboration });
await waitForRoom(room, { until: "active" });
console.log(`collaboration ${created.collaboration.slice(0, 16)}… is active: both members signed it`);
""")

md(r"""
## 2 · PSI between the two kernels

The advertiser's e-mails never leave this kernel: PSI runs directly with the retailer's kernel over
127.0.0.1 under an X25519/HKDF/AES-GCM channel. The server is not involved at all. Each side gets
a join key per matched row and replaces its e-mails with it. Given the `room`, the two kernels first
prove to each other the member keys of the collaboration (signatures over this channel's
transcript), so nobody else can take the retailer's place in the exchange.
""")

code(r"""
const study = generateStudy({ seed: "lesson-08", advertiserRows: 4000, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
const exposures = study.exposures;   // the advertiser's own rows (the retailer's are in its kernel)
const psiPort = await board.read<number>("retailer.psiPort");
const psi = await psiWithPeer({ room, as: "advertiser", peer: "retailer", connect: psiPort, rows: exposures, threads: 1, rng: { seed: "lesson-08-psi" } });
const keyed = attachJoinKeys(exposures, psi.joinKeys!, { keepUnmatched: false });
console.log(`matched ${psi.matchReport.intersectionSize} people; ${keyed.length} keyed rows to upload, no e-mail among them`);
""")

code(r"""
await upload(room, { party: "advertiser", name: "exposures", rows: keyed, schema: liftSchemas().exposures,
  purposes: ["measurement"], rule: liftRules(50).exposures });
board.post("advertiser.uploaded", true);
await board.read("retailer.uploaded");
""")

md(r"""
## 3 · Both owners sign the template

An approval is the owner's **signature over the template's hash**, made in its own kernel. The server
stores it and shows it to every member; `verifyApprovals` checks each one here, against the keys in the
collaboration this member signed — an approval the operator wrote into the database without the
member's key would show as `forged`, and the server would refuse to run the template.
""")

code(r"""
const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 50 });
await approveTemplate(room, { template: t, party: "advertiser" });
await waitForRoom(room, { until: { approved: templateHash(t) } });
const check = await verifyApprovals(room);
if (!check.ok) throw new Error("an approval does not verify");
check
""")

code(r"""
await declarePurpose(room, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "Q3 campaign lift" });
const lift = await liftStudy(room, { template: t, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo",
  purpose: "measurement", groundTruth: { lift: study.groundTruth.truth.converters.relativeLift } });
lift
""")

code(r"""
await budget(room)
""")

md(r"""
## 4 · A forged approval

The advertiser would like the retailer's approval of a cheaper-to-get template. Asking the verb to
approve *as the retailer* is refused (a member acts only as itself); so is a hand-made request that
claims to come from the retailer but is signed with the advertiser's key. Both refusals are audited and
charge nothing.
""")

code(r"""
const t2 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "1", threshold: 50 });
const asRetailer = await attempt(() => approveTemplate(room, { template: t2, party: "retailer" }));
const h2 = templateHash(t2);
const forged = room.sign("approveTemplate", { input: { template: t2, party: "retailer" }, templateHash: h2,
  signature: room.signStatement({ statement: "approve", room: room.roomId, templateHash: h2, member: "retailer" }) });
const reply = await room.sendRaw({ ...forged, member: "retailer" });
const forgedCode = "error" in reply ? reply.error.code : "accepted!";
if ((asRetailer as { code?: string }).code !== "ACCESS_DENIED" || forgedCode !== "SIGNATURE_INVALID")
  throw new Error("a forged approval was not refused");
({ approveAsRetailer: (asRetailer as { code: string }).code, forgedSignature: forgedCode })
""")

md(r"""
## 5 · Enclave mode: nobody but the enclave opens the rows

The same study again, with both tables sealed by their owners (`sealing: "enclave"`) and the query
run inside an enclave process the server launched (`executor: "enclave"`). Before both owners have
verified the enclave and released their keys, the query is refused — and says who still must
release; nothing is charged. Each owner checks the attestation in its **own** kernel.
""")

code(r"""
await upload(room, { party: "advertiser", name: "exposures_sealed", rows: keyed, schema: liftSchemas().exposures,
  purposes: ["measurement"], rule: liftRules(50).exposures, sealing: "enclave" });
board.post("advertiser.sealedUploaded", true);
await board.read("retailer.sealedUploaded");
const te = liftTemplate({ advertiser: "advertiser", retailer: "retailer", exposures: "exposures_sealed", purchases: "purchases_sealed", threshold: 50 });
await approveTemplate(room, { template: te, party: "advertiser", executor: "enclave" });
await waitForRoom(room, { until: { approved: templateHash(te) } });
const enclaveQuery = () => cleanRoomQuery(room, { template: te, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo",
  purpose: "measurement", executor: "enclave" });
const early = await attempt(enclaveQuery);   // refused: this owner has not released its key yet
const mine = await attestEnclave(room, { purpose: "measurement" });
if (mine.owners.some((o) => o.outcome !== "released")) throw new Error("the advertiser refused the enclave");
await board.read("retailer.released");
if ((early as { code?: string }).code !== "STATE_INVALID") throw new Error("a query ran before the owners released");
({ beforeRelease: early, attestation: mine })
""")

code(r"""
const inEnclave = await enclaveQuery();
inEnclave
""")

code(r"""
const log = await audit(room);
if (!log.verification.ok) throw new Error("audit chain does not verify");
board.post("advertiser.done", true);
room.close();
log
""")

write()
