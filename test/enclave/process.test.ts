/**
 * The enclave in its own OS process (issue 13): `openLab({ enclave: "process" })` launches each
 * enclave as scripts/enclave-host.mjs; the operator only relays. Real processes, real sockets on
 * 127.0.0.1, a recording proxy on the wire, kill -9. Needs the build (kernel-lib/dist).
 */
import net from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { canariesIn as scan, candidateKeys, opens } from "../helpers/enclave-scan.js";
import { keyedStudy, refusal, REQ, uploadStudy } from "../helpers/enclave-study.js";
import { openLab, type Lab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";
import type { EnclaveOperator } from "../../kernel-lib/src/session/enclave-operator.js";
import { approveEnclaveTemplate, attestEnclave, enclaveQuery } from "../../kernel-lib/src/enclave-room.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { KeyReleaseService } from "../../kernel-lib/src/enclave/keyRelease.js";
import { allowImages } from "../../kernel-lib/src/enclave/verifier.js";

const study = keyedStudy("enclave-process");
const { canaries } = study;
const T = liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: 20 });
const TN = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5", threshold: 20 });

const labs: Lab[] = [];
const proxies: net.Server[] = [];
afterEach(() => {
  for (const l of labs.splice(0)) l.close(); // kills this lab's enclave processes by pid
  for (const p of proxies.splice(0)) p.close();
});

function setUp(host: "in-process" | "process", seed: string, templates = [T], epsilon = 5, engine: "arquero" | "duckdb" = "arquero"): Lab {
  const lab = openLab({ store: ":memory:", rng: { seed }, budget: { epsilon }, enclave: host, engine });
  labs.push(lab);
  uploadStudy(lab, study, "enclave");
  for (const t of templates) for (const p of ["advertiser", "retailer"]) approveEnclaveTemplate(lab, t, p);
  return lab;
}
/** True once `pid` no longer exists (polls up to 2 s: a killed child is reaped on the event loop). */
async function gone(pid: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    try {
      process.kill(pid, 0);
    } catch {
      return true;
    }
    await new Promise((r) => setTimeout(r, 20));
  }
  return false;
}
const op = (lab: Lab): EnclaveOperator => internals(lab).enclave().operator;
const spent = (lab: Lab) => lab.budget().budgets.map((b) => `${b.scope}:${b.spent.text}`);

/** A TCP relay on 127.0.0.1 between the operator and the enclave process that records every byte both ways. */
async function recordingProxy(bytes: Buffer[]): Promise<(port: number) => Promise<number>> {
  return async (target) => {
    const server = net.createServer((client) => {
      const upstream = net.connect({ host: "127.0.0.1", port: target });
      client.on("data", (d) => {
        bytes.push(Buffer.from(d));
        upstream.write(d);
      });
      upstream.on("data", (d) => {
        bytes.push(Buffer.from(d));
        client.write(d);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on("close", end).on("error", end);
      upstream.on("close", end).on("error", end);
    });
    proxies.push(server);
    await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
    return (server.address() as net.AddressInfo).port;
  };
}

/** Every canary of this file's study found in `text`. */
const canariesIn = (text: string): string[] => scan(text, canaries);

describe("the enclave in its own OS process", () => {
  it("query results equal the in-process enclave's (same seed), and the enclave ran in another process", async () => {
    const inproc = setUp("in-process", "same");
    const proc = setUp("process", "same");
    const a = await enclaveQuery(inproc, { template: T, ...REQ });
    const b = await enclaveQuery(proc, { template: T, ...REQ });
    expect(b.rows.length).toBeGreaterThan(0);
    expect(b.rows).toEqual(a.rows);
    expect(b.suppressed).toEqual(a.suppressed);
    const cur = op(proc).enclave!;
    expect(cur.host).toBe("process");
    expect(cur.pid).not.toBe(process.pid);
    expect(() => process.kill(cur.pid!, 0)).not.toThrow(); // alive, its own pid
    expect(op(inproc).enclave!.pid).toBeNull();
  });

  it("the DuckDB engine inside an enclave (process or in-process) releases the same rows as arquero", async () => {
    const a = await enclaveQuery(setUp("in-process", "duck"), { template: T, ...REQ });
    const lab = setUp("process", "duck", [T], 5, "duckdb");
    const b = await enclaveQuery(lab, { template: T, ...REQ });
    expect(b.trace.find((s) => s.step === "execute")?.reason).toMatch(/duckdb/);
    expect(b.rows.length).toBeGreaterThan(0);
    expect(b.rows).toEqual(a.rows);
    const c = await enclaveQuery(setUp("in-process", "duck", [T], 5, "duckdb"), { template: T, ...REQ });
    expect(c.rows).toEqual(a.rows);
  });

  it("a noised query charges the same in both hosts", async () => {
    const inproc = setUp("in-process", "noise", [TN]);
    const proc = setUp("process", "noise", [TN]);
    const a = await enclaveQuery(inproc, { template: TN, ...REQ });
    const b = await enclaveQuery(proc, { template: TN, ...REQ });
    expect(b.charged!.text).toBe(a.charged!.text);
    expect(spent(proc)).toEqual(spent(inproc));
    expect(b.rows.map((r) => Object.keys(r))).toEqual(a.rows.map((r) => Object.keys(r)));
  });

  it("canary scan: no identifier in any byte operator↔enclave nor in what the relay saw; positive control: the defence off leaks them", async () => {
    const lab = setUp("process", "wire");
    const wire: Buffer[] = [];
    op(lab).relay.via = await recordingProxy(wire);
    op(lab).relay.record = true;
    const r = await enclaveQuery(lab, { template: T, ...REQ });
    expect(r.rows.length).toBeGreaterThan(0);
    const raw = Buffer.concat(wire);
    expect(raw.length).toBeGreaterThan(10_000); // the ciphertexts crossed this relay
    expect(canariesIn(raw.toString("latin1"))).toEqual([]);
    const seen = op(lab)
      .relay.log.map((e) => e.json)
      .join("\n");
    expect(op(lab).relay.log.map((e) => e.kind)).toEqual(expect.arrayContaining(["launch", "attest", "acceptKey", "run", "run.ok"]));
    expect(canariesIn(seen)).toEqual([]);

    // positive control: owners pin the operator's claim, a one-byte-changed workload gets the keys and echoes rows
    const leaky = setUp("process", "wire-off");
    op(leaky).relay.record = true;
    const off = await attestEnclave(leaky, { purpose: "measurement", tamper: "code", ownersPin: "operatorClaim" });
    expect(off.ok).toBe(true);
    await enclaveQuery(leaky, { template: T, ...REQ });
    expect(
      canariesIn(
        op(leaky)
          .relay.log.map((e) => e.json)
          .join("\n"),
      ).length,
    ).toBeGreaterThan(0);
  });

  it("the operator holds no key that opens owner data (its reachable state and relay log); positive control: the scan finds a planted key", async () => {
    const lab = setUp("process", "keys");
    op(lab).relay.record = true;
    await enclaveQuery(lab, { template: T, ...REQ });
    const o = op(lab);
    const targets = [...o.ciphertexts.values()];
    expect(targets.length).toBe(2);
    expect(o.sealedKeys.length).toBe(2); // the grants crossed the relay, sealed
    const candidates = candidateKeys(o);
    expect(candidates.length).toBeGreaterThan(3); // documents' keys, channel keys, … were looked at
    expect(candidates.filter((k) => targets.some((t) => opens(k, t)))).toEqual([]);

    // positive control: a data key this test knows (its own KMS, seeded), planted in a copy of the relay log, is found
    const rng = seededRng("planted");
    const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: o.rootPublicKeyHex });
    const enc = kms.protectDataset(
      "planted",
      utf8("secret rows"),
      { allowedMeasurements: allowImages(["a".repeat(96)]), requiredPurpose: "measurement" },
      seededRng("planted"),
    );
    const key = rng.bytes(32);
    const planted = {
      log: [...o.relay.log, { dir: "to-enclave", kind: "run", json: JSON.stringify({ leaked: Buffer.from(key).toString("base64") }) }],
    };
    expect(candidateKeys(planted).filter((k) => opens(k, enc)).length).toBe(1);
  });

  it("a relay that tampers with the attestation document: owners refuse key release, nothing charged, audit verifies", async () => {
    const lab = setUp("process", "tamper", [TN]);
    const before = spent(lab);
    op(lab).relayFilter = {
      document: (doc) => {
        const p = JSON.parse(Buffer.from(doc.payload, "base64").toString("utf8"));
        p.debug = false;
        p.module_id = `${p.module_id}x`; // any change to the signed payload
        return { ...doc, payload: Buffer.from(JSON.stringify(p)).toString("base64") };
      },
    };
    const e = await refusal(enclaveQuery(lab, { template: TN, ...REQ }));
    expect(e.code).toBe("ATTESTATION_SIGNATURE");
    expect(spent(lab)).toEqual(before);
    const rep = lab.audit();
    expect(rep.verification.ok).toBe(true);
    expect(
      rep.entries.filter((x: { action: string; outcome: string }) => x.action === "keyRelease" && x.outcome === "refused").length,
    ).toBe(2);
    expect(op(lab).enclave).toBeNull(); // the refused enclave's process was stopped
    // a faithful relay again: released, charged once
    op(lab).relayFilter = null;
    const ok = await enclaveQuery(lab, { template: TN, ...REQ });
    expect(ok.charged).not.toBeNull();
  });

  it("a relay that swaps a byte of a sealed key grant: the enclave cannot open it, no key is held, nothing charged", async () => {
    const lab = setUp("process", "grant", [TN]);
    const before = spent(lab);
    op(lab).relayFilter = {
      grant: (g) => {
        const c = Buffer.from(g.sealedKey.ciphertext, "base64");
        c[0]! ^= 1;
        return { ...g, sealedKey: { ...g.sealedKey, ciphertext: c.toString("base64") } };
      },
    };
    const att = await attestEnclave(lab, { purpose: "measurement" });
    expect(att.ok).toBe(false);
    expect(att.owners.every((x) => x.outcome === "refused")).toBe(true);
    expect(op(lab).enclave).toBeNull();
    const e = await refusal(enclaveQuery(lab, { template: TN, ...REQ }));
    expect(e.details.field).toBe("enclave");
    expect(spent(lab)).toEqual(before);
    expect(lab.audit().verification.ok).toBe(true);
  });

  it("a modified workload (different measurement) is refused on measurement by both owners", async () => {
    const lab = setUp("process", "code");
    const on = await attestEnclave(lab, { purpose: "measurement", tamper: "code" });
    expect(on.ok).toBe(false);
    expect(on.owners.map((x) => x.code)).toEqual(["ATTESTATION_MEASUREMENT", "ATTESTATION_MEASUREMENT"]);
    expect(on.imageSha384).not.toBe(on.ownersExpectImageSha384);
    expect(op(lab).enclave).toBeNull();
  });

  it("kill -9 of the enclave mid-query: typed error, charge consistent, audit verifies; a new enclave needs a new attestation and release", async () => {
    const lab = setUp("process", "kill", [TN], 10);
    const o = op(lab);
    const first = await enclaveQuery(lab, { template: TN, ...REQ });
    const pid1 = o.enclave!.pid!;
    const releasesBefore = lab.audit().entries.filter((x: { action: string }) => x.action === "keyRelease").length;
    const afterFirst = spent(lab);
    o.relay.onSent = (kind, pid) => {
      if (kind === "run") process.kill(pid, "SIGKILL");
    };
    const e = await refusal(enclaveQuery(lab, { template: TN, ...REQ }));
    o.relay.onSent = undefined;
    expect(e.code).toBe("STATE_INVALID");
    expect(e.details.field).toBe("enclave");
    expect(e.details.trace).toBeDefined();
    // the charge of the killed query stands (committed before execution; no result left the enclave): exactly one more query's cost
    const collab = (l: Lab) => l.budget().budgets.find((b) => b.scope === "collaboration")!.spent.text;
    expect(afterFirst.find((x) => x.startsWith("collaboration"))).toBe(`collaboration:${first.charged!.text}`);
    expect(collab(lab)).toBe("ε = 5");
    const rep = lab.audit();
    expect(rep.verification.ok).toBe(true);
    const last = rep.entries.at(-1)! as { action: string; outcome: string; errorCode?: string | null };
    expect([last.action, last.outcome, last.errorCode]).toEqual(["query", "refused", "STATE_INVALID"]);
    expect(o.enclave).toBeNull();
    expect(await gone(pid1)).toBe(true);

    const again = await enclaveQuery(lab, { template: TN, ...REQ });
    expect(again.attestation.moduleId).not.toBe(first.attestation.moduleId);
    expect(again.attestation.owners.every((x) => x.outcome === "released" && x.reason === null)).toBe(true); // released anew
    expect(o.enclave!.pid).not.toBe(pid1);
    const releasesAfter = lab.audit().entries.filter((x: { action: string }) => x.action === "keyRelease").length;
    expect(releasesAfter - releasesBefore).toBe(2);
    expect(collab(lab)).toBe("ε = 7.5");
    expect(lab.audit().verification.ok).toBe(true); // chain verifies and the ledger reconciles with the audited charges
  });

  it("kill -9 of the enclave during key release: typed error before any charge, decisions so far audited, audit verifies", async () => {
    const lab = setUp("process", "kill-release", [TN]);
    const before = spent(lab);
    let killed = 0;
    op(lab).relay.onSent = (kind, pid) => {
      if (kind === "acceptKey" && killed++ === 0) process.kill(pid, "SIGKILL");
    };
    const e = await refusal(enclaveQuery(lab, { template: TN, ...REQ }));
    op(lab).relay.onSent = undefined;
    expect(e.details.field).toBe("enclave");
    expect(spent(lab)).toEqual(before);
    const rep = lab.audit();
    expect(rep.verification.ok).toBe(true);
    const releases = rep.entries.filter((x: { action: string }) => x.action === "keyRelease") as {
      outcome: string;
      errorCode?: string | null;
    }[];
    // exactly the first owner's decision was made before the process died; whether the SIGKILL landed
    // before or after the enclave acknowledged that grant is a race (refused, or released to an enclave
    // that then died) — either way it is audited as it happened, the attestation never completed
    // (the second owner was never asked), nothing was charged and the enclave is forgotten
    expect(releases).toHaveLength(1);
    expect(op(lab).enclave).toBeNull();
    const ok = await enclaveQuery(lab, { template: TN, ...REQ }); // a new process, new attestation
    expect(ok.charged).not.toBeNull();
  });

  it.each(["in-process", "process"] as const)(
    "an attestation replacing the enclave an in-flight query pinned (%s): the query finishes; positive control: unpinned, it fails after its charge",
    async (host) => {
      for (const keep of [true, false]) {
        const lab = setUp(host, `pin-${host}-${keep}`, [TN], 10);
        const mode = internals(lab).enclave();
        mode.keepPinned = keep;
        await enclaveQuery(lab, { template: TN, ...REQ }); // attested: the next query reuses this enclave
        const e = op(lab).enclave!;
        // hold the next query inside its run on `e` (after its charge) until the attestation below is done
        let entered!: () => void;
        const inRun = new Promise<void>((r) => (entered = r));
        let open!: () => void;
        const gate = new Promise<void>((r) => (open = r));
        const orig = e.runAsync;
        (e as { runAsync: typeof orig }).runAsync = async (r) => {
          entered();
          await gate;
          return orig(r);
        };
        const q = enclaveQuery(lab, { template: TN, ...REQ }).then(
          (r) => r,
          (err: unknown) => err,
        );
        await inRun;
        const charged = spent(lab);
        expect(mode.pinned(e)).toBe(1);
        const att = await attestEnclave(lab, { purpose: "measurement" });
        expect(att.ok).toBe(true);
        expect(op(lab).enclave).not.toBe(e); // replaced while the query runs on it
        expect(e.alive).toBe(keep); // kept alive only while pinned
        open();
        const out = await q;
        expect(spent(lab)).toEqual(charged); // the charge happened before the race, once
        if (keep) {
          expect(isCleanRoomError(out)).toBe(false);
          expect((out as { attestation: { moduleId: string } }).attestation.moduleId).toBe(e.moduleId);
          expect(mode.pinned(e)).toBe(0);
          expect(e.alive).toBe(false); // terminated once its last query settled
        } else {
          expect(isCleanRoomError(out) && out.code).toBe("STATE_INVALID"); // the defence off: failed after its charge
        }
        expect(lab.audit().verification.ok).toBe(true);
      }
    },
  );

  it("lab close stops the enclave process", async () => {
    const lab = setUp("process", "close");
    await enclaveQuery(lab, { template: T, ...REQ });
    const pid = op(lab).enclave!.pid!;
    labs.splice(labs.indexOf(lab), 1);
    lab.close();
    expect(await gone(pid)).toBe(true);
  });

  it("openLab refuses an unknown enclave host at the door, before any file exists", async () => {
    const { openLab: openAtDoor } = await import("../../kernel-lib/src/verbs/room.js");
    let caught: unknown;
    try {
      openAtDoor({ store: ":memory:", enclave: "vm" as never });
    } catch (e) {
      caught = e;
    }
    expect(isCleanRoomError(caught) && caught.details.field).toBe("options.enclave");
  });
});

describe("enclave process cleanup", () => {
  it("kill -9 of the lab's own process: its enclave process exits too (its stdin and its link close)", async () => {
    const { spawn } = await import("node:child_process");
    const path = await import("node:path");
    const root = path.resolve(__dirname, "../..");
    const script = `
      const d = (p) => require(${JSON.stringify(root)} + "/kernel-lib/dist/" + p);
      const { openLab } = d("session.js");
      const { enclaveUpload, approveEnclaveTemplate, attestEnclave } = d("enclave-room.js");
      const { liftRules, liftSchemas, liftTemplate } = d("cleanroom/templates/lift.js");
      const { generateStudy } = d("datasets/study.js");
      const { normalizeEmail } = d("identity/normalize.js");
      const keyed = (rows) => rows.flatMap(({ email, ...rest }) => {
        const n = normalizeEmail(email);
        return n.ok ? [{ ...rest, join_key: "jk:" + n.value }] : [];
      });
      const st = generateStudy({ seed: "orphan", advertiserRows: 300, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
      const lab = openLab({ store: ":memory:", rng: { seed: "orphan" }, enclave: "process" });
      const s = liftSchemas(), r = liftRules(20);
      enclaveUpload(lab, lab.party("advertiser"), "exposures", keyed(st.exposures), { schema: s.exposures, purposes: ["measurement"], rule: r.exposures });
      enclaveUpload(lab, lab.party("retailer"), "purchases", keyed(st.purchases), { schema: s.purchases, purposes: ["measurement"], rule: r.purchases });
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      for (const p of ["advertiser", "retailer"]) approveEnclaveTemplate(lab, t, p);
      attestEnclave(lab, { purpose: "measurement" }).then((a) => {
        const { internals } = d("session/lab.js");
        console.log(JSON.stringify({ ok: a.ok, enclavePid: internals(lab).enclave().operator.enclave.pid }));
      }, (e) => { console.log(JSON.stringify({ error: String(e && e.message) })); });
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ["-e", script], { stdio: ["ignore", "pipe", "pipe"] });
    try {
      const line = await new Promise<string>((resolve, reject) => {
        let buf = "";
        parent.stdout!.on("data", (d: Buffer) => {
          buf += d.toString();
          if (buf.includes("\n")) resolve(buf.split("\n")[0]!);
        });
        let err = "";
        parent.stderr!.on("data", (d: Buffer) => void (err += d.toString()));
        parent.once("exit", (c) => reject(new Error(`lab process exited ${c}: ${err.slice(-600)}`)));
      });
      const out = JSON.parse(line) as { ok?: boolean; enclavePid?: number; error?: string };
      expect(out.error).toBeUndefined();
      expect(out.ok).toBe(true);
      expect(typeof out.enclavePid).toBe("number");
      process.kill(parent.pid!, "SIGKILL");
      expect(await gone(out.enclavePid!)).toBe(true);
    } finally {
      if (parent.exitCode === null && parent.signalCode === null) parent.kill("SIGKILL");
    }
  });
});
