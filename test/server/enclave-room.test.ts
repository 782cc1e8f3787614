/**
 * Enclave mode of a joined room (issue 13): a room server process started with
 * `--enclave process` launches the enclave as its own OS process; the data owners (retailer,
 * advertiser) upload owner-sealed tables from their own handles and release their keys after
 * verifying the attestation themselves; an analyst (observer) queries with the enclave
 * executor. Real processes and sockets on 127.0.0.1. Needs the build (kernel-lib/dist).
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { liftRules, liftSchemas } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import Database from "better-sqlite3";
import { utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { enclaveRoomImage } from "../../kernel-lib/src/enclave-room-workload.js";
import { measureImage } from "../../kernel-lib/src/enclave/measurement.js";
import { builtPublishedCode } from "../../kernel-lib/src/session/enclave-process.js";
import { verifyApprovals } from "../../kernel-lib/src/server/client.js";
import { KeyReleaseService, type EncryptedDataset } from "../../kernel-lib/src/enclave/keyRelease.js";
import { allowImages } from "../../kernel-lib/src/enclave/verifier.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { openLab } from "../../kernel-lib/src/session.js";
import { approveEnclaveTemplate, attestEnclave as labAttest, enclaveQuery, enclaveUpload } from "../../kernel-lib/src/enclave-room.js";
import type { RemoteRoom } from "../../kernel-lib/src/server/client.js";
import type { EnclaveStatus } from "../../kernel-lib/src/server/enclave-ops.js";
import { attestEnclave } from "../../kernel-lib/src/verbs/enclave.js";
import { approveTemplate, upload } from "../../kernel-lib/src/verbs/room.js";
import { cleanRoomQuery } from "../../kernel-lib/src/verbs/query.js";
import { audit, budget } from "../../kernel-lib/src/verbs/ledger.js";
import { canariesIn, candidateKeys, opens } from "../helpers/enclave-scan.js";
import { refusal } from "../helpers/enclave-study.js";
import { chargeCount, closeAll, killAll, startServer, storeBytes, studyRoom, type ServerProc } from "./helpers.js";

const SEED = "enclave-room";
/** A noise-free template (threshold only): the same rows whichever enclave runs it. */
const T = liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: 20 });
const PARAMS = { startDay: 0, endDay: 27 };

let dir: string;
let store: string;
let server: ServerProc;
let rooms: Record<string, RemoteRoom>;
let uploaded: Awaited<ReturnType<typeof studyRoom>>["uploaded"];
let noisy: ReturnType<typeof liftTemplate>;
/** Ledger rows one noised query writes (set by the charge test). */
let perQuery = 0;
/** Every request the owners' handles sent (what the server receives, in plaintext inside the channel). */
const sent: string[] = [];

const status = (r: RemoteRoom) => r.request<EnclaveStatus>("enclave.status");
const query = (template = T) =>
  cleanRoomQuery(rooms.observer!, {
    template,
    params: PARAMS,
    party: "observer",
    analyst: "an",
    purpose: "measurement",
    executor: "enclave",
  });
const canaries = () => [...new Set([...uploaded.exposures, ...uploaded.purchases].map((r) => String(r.join_key)))];

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "enclave-room-"));
  store = path.join(dir, "room.db");
  server = await startServer(store, ["--enclave", "process", "--enclave-tamper", "--seed", SEED, "--epsilon", "5"]);
  // the owners' handles record what they send before the studyRoom uploads
  const made = await studyRoom(server.url, dir, {
    queriers: ["observer"],
    receivers: ["recipient"],
    seed: SEED,
    sealing: "enclave",
    rows: 800,
  });
  rooms = made.rooms;
  uploaded = made.uploaded;
  noisy = made.template;
  for (const n of ["advertiser", "retailer"]) await approveTemplate(rooms[n]!, { template: T, party: n, executor: "enclave" });
  for (const n of ["advertiser", "retailer"]) {
    const r = rooms[n]!;
    const send = r.sendRaw.bind(r);
    r.sendRaw = (req: unknown) => {
      sent.push(JSON.stringify(req));
      return send(req);
    };
  }
}, 120_000);

afterAll(() => {
  if (rooms) closeAll(rooms);
  killAll();
});

describe("enclave mode in a joined room (server process + enclave process + owners' handles)", () => {
  it("the server catalogs owner-sealed uploads: metadata only, no identifier in its store", async () => {
    const st = await status(rooms.observer!);
    expect(st.host).toBe("process");
    expect(st.ready).toBeNull();
    // the uploads (done in studyRoom) sent metadata + an owner-sealed blob: no join key in the server's files
    expect(canariesIn(storeBytes(store).toString("latin1"), canaries())).toEqual([]);
  });

  it("a query before every owner released is refused typed, nothing charged; after both released it runs in the enclave process", async () => {
    const before = chargeCount(store);
    const e0 = await refusal(query());
    expect(e0.code).toBe("STATE_INVALID");
    expect(e0.details.reason).toBe("enclave-not-ready");
    expect(e0.details.mustRelease).toEqual(["advertiser", "retailer"]);

    const a = await attestEnclave(rooms.advertiser!, { purpose: "measurement" });
    expect(a.owners.map((o) => [o.dataset, o.outcome])).toEqual([["advertiser/exposures", "released"]]);
    expect(a.ownersExpectImageSha384).toBe(a.imageSha384); // computed by the owner on its own
    expect(a.ready).toBe(false);
    expect(a.mustRelease).toEqual(["retailer"]);
    const e1 = await refusal(query());
    expect(e1.details.mustRelease).toEqual(["retailer"]);
    expect(chargeCount(store)).toBe(before);

    const b = await attestEnclave(rooms.retailer!, { purpose: "measurement" });
    expect(b.moduleId).toBe(a.moduleId);
    expect(b.ready).toBe(true);
    const st = await status(rooms.observer!);
    expect(st.ready!.pid).not.toBeNull();
    expect(st.ready!.pid).not.toBe(server.proc.pid); // the enclave is its own OS process

    const r = await query();
    expect(r.attestation.moduleId).toBe(a.moduleId);
    expect(chargeCount(store)).toBe(before); // threshold-only: nothing to charge, nothing charged twice

    // the same rows and seed in the lab's in-process enclave release the same rows
    const lab = openLab({ store: ":memory:", rng: { seed: SEED }, budget: { epsilon: 5 } });
    try {
      const s = liftSchemas();
      enclaveUpload(lab, lab.party("advertiser"), "exposures", uploaded.exposures, {
        schema: s.exposures,
        purposes: ["measurement"],
        rule: liftRules(20).exposures,
      });
      enclaveUpload(lab, lab.party("retailer"), "purchases", uploaded.purchases, {
        schema: s.purchases,
        purposes: ["measurement"],
        rule: liftRules(20).purchases,
      });
      lab.declarePurpose({ party: "advertiser", analyst: "an", purpose: "measurement", justification: "lift" });
      for (const p of ["advertiser", "retailer"]) approveEnclaveTemplate(lab, T, p);
      expect((await labAttest(lab, { purpose: "measurement" })).ok).toBe(true);
      const local = await enclaveQuery(lab, {
        template: T,
        params: PARAMS,
        as: { party: "advertiser", analyst: "an" },
        purpose: "measurement",
      });
      expect(r.rows).toEqual(JSON.parse(JSON.stringify(local.rows)));
    } finally {
      lab.close();
    }
  });

  it("a noised enclave query is charged once, exactly like the lab; the audit chain verifies with every key release", async () => {
    const spentBefore = (await budget(rooms.observer!)).budgets.find((x) => x.scope === "collaboration")!.spent.text;
    const before = chargeCount(store);
    // the noisy template was approved before the launch: the ready enclave measured it
    const r = await query(noisy);
    expect(r.charged).not.toBeNull();
    // one charge: the collaboration's spend is exactly this query's cost (the threshold-only ones cost nothing)
    expect(spentBefore).toBe("ε = 0");
    const after = (await budget(rooms.observer!)).budgets.find((x) => x.scope === "collaboration")!.spent.text;
    expect(after).toBe(r.charged!.text);
    perQuery = chargeCount(store) - before; // ledger rows of one query's charge (every budget it touches)
    expect(perQuery).toBeGreaterThan(0);
    const au = await audit(rooms.retailer!);
    expect(au.verification.ok).toBe(true);
    const releases = au.entries.filter((x: { action: string }) => x.action === "keyRelease") as {
      who: { party: string };
      outcome: string;
    }[];
    expect(releases.map((x) => [x.who.party, x.outcome])).toEqual([
      ["advertiser", "granted"],
      ["retailer", "granted"],
    ]);
  });

  it("canary scan + trial decryption: nothing sent to the server holds a row value or data key; positive controls: plain upload, planted key", async () => {
    const wire = sent.join("\n");
    expect(wire).toContain("enclave.release"); // the scan saw the releases
    expect(canariesIn(wire, canaries())).toEqual([]);
    expect(canariesIn(storeBytes(store).toString("latin1"), canaries())).toEqual([]);
    // what the server holds to decrypt with: every 32-byte value in what it received
    const received = sent.map((x) => JSON.parse(x));
    const targets = received
      .filter((x) => x.op === "enclave.release" && x.body.ciphertext)
      .map((x) => x.body.ciphertext as EncryptedDataset);
    expect(targets.length).toBe(2);
    const candidates = candidateKeys(received);
    expect(candidates.length).toBeGreaterThan(3);
    expect(candidates.filter((k) => targets.some((t) => opens(k, t)))).toEqual([]);

    // positive controls: a data key planted in a copy of what was sent is found by the same scan …
    const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: "00".repeat(32) });
    const enc = kms.protectDataset(
      "planted",
      utf8("secret rows"),
      { allowedMeasurements: allowImages(["a".repeat(96)]), requiredPurpose: "measurement" },
      seededRng("planted"),
    );
    const planted = [...received, { leaked: Buffer.from(seededRng("planted").bytes(32)).toString("base64") }];
    expect(candidateKeys(planted).filter((k) => opens(k, enc)).length).toBe(1);
    // … and a plain (purpose-gate) upload of the same rows carries them to the server
    const n = sent.length;
    await upload(rooms.retailer!, {
      party: "retailer",
      name: "purchases_plain",
      rows: uploaded.purchases.slice(0, 50),
      schema: liftSchemas().purchases,
      purposes: ["measurement"],
    });
    expect(canariesIn(sent.slice(n).join("\n"), canaries()).length).toBeGreaterThan(0);
  });

  it("an owner refuses a tampered image (code, template); positive control: pinning the operator's claim, the key is released", async () => {
    for (const tamper of ["code", "template"] as const) {
      const a = await attestEnclave(rooms.advertiser!, { purpose: "measurement", tamper });
      expect(a.owners.map((o) => [o.outcome, o.code])).toEqual([["refused", "ATTESTATION_MEASUREMENT"]]);
      expect(a.ownersExpectImageSha384).not.toBe(a.imageSha384);
      expect(a.ready).toBe(false);
    }
    // the earlier ready enclave still serves (a refused launch never replaces it)
    expect((await query()).attestation.moduleId).toBe((await status(rooms.observer!)).ready!.launch);
    const off = await attestEnclave(rooms.advertiser!, { purpose: "measurement", tamper: "code", ownersPin: "operatorClaim" });
    expect(off.owners.map((o) => o.outcome)).toEqual(["released"]);
    const au = await audit(rooms.observer!);
    const last = au.entries.filter((x: { action: string }) => x.action === "keyRelease").slice(-3) as {
      outcome: string;
      errorCode: string | null;
    }[];
    expect(last.map((x) => [x.outcome, x.errorCode])).toEqual([
      ["refused", "ATTESTATION_MEASUREMENT"],
      ["refused", "ATTESTATION_MEASUREMENT"],
      ["granted", null],
    ]);
  });

  it("stale state: a newly approved template needs a new launch and new releases (refused typed before, nothing charged)", async () => {
    const t2 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: 25 });
    for (const n of ["advertiser", "retailer"]) await approveTemplate(rooms[n]!, { template: t2, party: n, executor: "enclave" });
    const before = chargeCount(store);
    const e = await refusal(query(t2));
    expect(e.details.reason).toBe("enclave-not-ready");
    expect(chargeCount(store)).toBe(before);
    const a = await attestEnclave(rooms.advertiser!, { purpose: "measurement" });
    const b = await attestEnclave(rooms.retailer!, { purpose: "measurement" });
    expect(b.moduleId).toBe(a.moduleId);
    expect(b.ready).toBe(true);
    expect(b.approvedTemplateHashes.length).toBe(3);
    expect((await query(t2)).attestation.moduleId).toBe(b.moduleId);
  });

  it("kill -9 of the enclave process: the next query is refused typed, nothing charged or overspent; a new attestation and release work", async () => {
    const st = await status(rooms.observer!);
    const pid = st.ready!.pid!;
    const spent = async () => (await budget(rooms.observer!)).budgets.find((x) => x.scope === "collaboration")!.spent.text;
    const before = { charges: chargeCount(store), spent: await spent() };
    process.kill(pid, "SIGKILL");
    // wait (on state, not time) until the server saw its enclave exit
    for (let i = 0; i < 200 && (await status(rooms.observer!)).ready !== null; i++) await new Promise((r) => setTimeout(r, 25));
    const e = await refusal(query(noisy));
    expect(e.code).toBe("STATE_INVALID");
    expect(e.details.mustRelease).toEqual(["advertiser", "retailer"]);
    expect(chargeCount(store)).toBe(before.charges);
    expect(await spent()).toBe(before.spent);
    await attestEnclave(rooms.advertiser!, { purpose: "measurement" });
    const b = await attestEnclave(rooms.retailer!, { purpose: "measurement" });
    expect(b.ready).toBe(true);
    expect(b.pid).not.toBe(pid);
    const r = await query(noisy);
    expect(r.charged).not.toBeNull();
    expect(chargeCount(store)).toBe(before.charges + perQuery);
    expect((await audit(rooms.observer!)).verification.ok).toBe(true);
  });

  it("only an owner releases, only its own dataset; a member without own cannot upload or challenge", async () => {
    const st = await attestEnclave(rooms.observer!, { purpose: "measurement" }); // a non-owner only asks for the launch
    expect(st.owners).toEqual([]);
    const e1 = await refusal(
      rooms.observer!.request("enclave.challenge", { launch: st.moduleId, dataset: "retailer/purchases", nonce: "00".repeat(16) }),
    );
    expect(e1.code).toBe("ACCESS_DENIED");
    const e2 = await refusal(
      rooms.advertiser!.request("enclave.challenge", { launch: st.moduleId, dataset: "retailer/purchases", nonce: "00".repeat(16) }),
    );
    expect(e2.code).toBe("ACCESS_DENIED");
    // an enclave upload by a member without "own", and a blob that is not the signer's seal of this dataset: refused, nothing stored
    const s = liftSchemas();
    const e3 = await refusal(
      upload(rooms.observer!, {
        party: "observer",
        name: "x",
        rows: uploaded.purchases.slice(0, 5),
        schema: s.purchases,
        purposes: ["measurement"],
        sealing: "enclave",
      }),
    );
    expect(e3.code).toBe("ACCESS_DENIED");
    const meta = {
      name: "stolen",
      schema: { columns: { a: { type: "int" } } },
      rows: 1,
      fingerprint: "0".repeat(64),
      rule: null,
      tags: { purposes: ["measurement"] },
    };
    const blob = (owner: string, datasetId: string) =>
      Buffer.from(JSON.stringify({ format: "cleanroom-lab/owner-sealed/v1", owner, datasetId, nonce: "", ciphertext: "" })).toString(
        "base64",
      );
    for (const sealed of [
      blob("retailer", "retailer/stolen"),
      blob("advertiser", "advertiser/other"),
      Buffer.from("not json").toString("base64"),
    ]) {
      const e = await refusal(rooms.advertiser!.request("enclave.upload", { input: meta, sealed }));
      expect([e.code, e.details.field]).toEqual(["INPUT_INVALID", "sealed"]);
    }
    // nothing was catalogued: a launch asking for it finds no such enclave dataset
    const e4 = await refusal(rooms.observer!.request("enclave.launch", { purpose: "measurement", datasets: ["advertiser/stolen"] }));
    expect([e4.code, e4.details.field]).toEqual(["NOT_FOUND", "datasets"]);
  });

  it("enclave.launch needs query or own; a pending launch an owner released to is not replaced by another purpose or dataset list", async () => {
    const e0 = await refusal(rooms.recipient!.request("enclave.launch", { purpose: "measurement" }));
    expect([e0.code, e0.details.field]).toEqual(["ACCESS_DENIED", "member"]);
    const launchOf = async () => (await status(rooms.observer!)).pending?.launch ?? null;
    // positive control: a pending launch nobody released to is replaced by another dataset list
    const refused = await attestEnclave(rooms.advertiser!, { purpose: "measurement", tamper: "code" });
    expect(refused.owners.map((o) => o.outcome)).toEqual(["refused"]);
    await rooms.observer!.request("enclave.launch", { purpose: "measurement", datasets: ["advertiser/exposures"] });
    expect(await launchOf()).not.toBe(refused.moduleId);
    // one release to the pending launch: another member's other list no longer voids it
    const rel = await attestEnclave(rooms.advertiser!, { purpose: "measurement", tamper: "code", ownersPin: "operatorClaim" });
    expect(rel.owners.map((o) => o.outcome)).toEqual(["released"]);
    const e1 = await refusal(rooms.observer!.request("enclave.launch", { purpose: "measurement", datasets: ["advertiser/exposures"] }));
    expect([e1.code, e1.details.reason]).toEqual(["STATE_INVALID", "launch-in-progress"]);
    const st = await status(rooms.observer!);
    expect(st.pending!.launch).toBe(rel.moduleId);
    expect(st.pending!.datasets.map((d) => [d.dataset, d.released])).toEqual([
      ["advertiser/exposures", true],
      ["retailer/purchases", false],
    ]);
  });

  it("an owner cannot file its key under another owner's dataset id (refused typed, nothing changes); a held id is never replaced", async () => {
    const st = await status(rooms.advertiser!);
    const l = st.pending!;
    const rng = seededRng("file-under-other");
    // the advertiser's own KMS (a dishonest member's kernel), pinned to the room's root
    const kms = new KeyReleaseService({ owner: "advertiser", pinnedRootPublicKey: st.rootPublicKeyHex });
    const policy = { allowedMeasurements: allowImages([l.imageSha384]), requiredPurpose: l.purpose };
    const made = new Map<string, EncryptedDataset>();
    const grantFor = async (datasetId: string) => {
      const enc = made.get(datasetId) ?? kms.protectDataset(datasetId, utf8("the advertiser's bytes"), policy, rng);
      made.set(datasetId, enc);
      const nonce = kms.challenge(rng);
      const { document } = await rooms.advertiser!.request<{ document: never }>("enclave.challenge", {
        launch: l.launch,
        dataset: "advertiser/exposures",
        nonce,
      });
      const grant = kms.releaseKey({ datasetId, document, nonce, recipientPublicKey: l.channelPublicKey }, rng);
      return {
        launch: l.launch,
        dataset: "advertiser/exposures",
        ciphertext: JSON.parse(JSON.stringify(enc)),
        grant: JSON.parse(JSON.stringify(grant)),
      };
    };
    const audits = async () => (await audit(rooms.observer!)).entries.filter((x: { action: string }) => x.action === "keyRelease").length;
    const before = { status: await status(rooms.observer!), audits: await audits() };
    const e = await refusal(rooms.advertiser!.request("enclave.release", await grantFor("retailer:purchases.aaaaaaaaaaaaaaaa.0")));
    expect([e.code, e.details.field]).toEqual(["PARAM_INVALID", "grant.datasetId"]);
    expect(await status(rooms.observer!)).toEqual(before.status);
    expect(await audits()).toBe(before.audits);
    // the retailer's dataset still serves from the ready enclave
    expect((await query()).attestation.moduleId).toBe(before.status.ready!.launch);
    // positive control: the same forged grant under the advertiser's own prefix is a valid grant …
    await rooms.advertiser!.request("enclave.release", await grantFor("advertiser:exposures.forged"));
    // … and the enclave process refuses a second key for an id it holds (typed across the process)
    const e2 = await refusal(rooms.advertiser!.request("enclave.release", await grantFor("advertiser:exposures.forged")));
    expect([e2.code, e2.details.field]).toEqual(["ALREADY_EXISTS", "grant.datasetId"]);
  });

  it("an owner does not count a template the operator records with no owners (its key stays); positive control: the server's list would release", async () => {
    const r = rooms.advertiser!;
    // the dishonest operator writes a loose template nobody signed into its store, with owners: []
    const loose = parseTemplate(liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: 2 }));
    const db = new Database(store);
    try {
      db.prepare("INSERT INTO cleanroom_templates (room_id, template_hash, name, canonical, owners) VALUES (?, ?, ?, ?, '[]')").run(
        r.roomId,
        loose.hash,
        `${loose.name} (operator)`,
        loose.canonical,
      );
    } finally {
      db.close();
    }
    const v = await verifyApprovals(r);
    expect(v.templates.find((t) => t.templateHash === loose.hash)).toMatchObject({ approved: true, owners: [], verified: [] });
    // the room state changed: the pending launch with a release is replaced; the new image holds the template
    const a = await attestEnclave(r, { purpose: "measurement" });
    expect(a.approvedTemplateHashes).toContain(loose.hash);
    expect(a.owners.map((o) => [o.outcome, o.code])).toEqual([["refused", "ATTESTATION_MEASUREMENT"]]);
    expect(a.ownersExpectImageSha384).not.toBe(a.imageSha384);
    // positive control: the old rule (the server's approved flag and owner list) pins exactly the operator's image
    const l = (await status(r)).pending!;
    expect(l.launch).toBe(a.moduleId);
    const old = v.templates
      .filter((t) => t.approved && (!t.owners.includes(r.member) || t.verified.includes(r.member)))
      .map((t) => t.templateHash)
      .sort();
    expect(old).toContain(loose.hash);
    expect(measureImage(enclaveRoomImage(l.engine, old, l.rules, builtPublishedCode())).imageSha384).toBe(a.imageSha384);
    // the loose template never runs: the ready enclave (launched before) does not hold it
    const e = await refusal(query(loose as never));
    expect([e.code, e.details.reason]).toEqual(["STATE_INVALID", "enclave-not-ready"]);
  });
});
