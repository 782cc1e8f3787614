import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { deserializeTable } from "../../kernel-lib/src/cleanroom/serialize.js";
import { openLab, type Lab } from "../../kernel-lib/src/session.js";
import {
  approveEnclaveTemplate,
  attestEnclave,
  enclaveQuery,
  enclaveRoomViews,
  enclaveUpload,
  operatorHoldings,
} from "../../kernel-lib/src/enclave-room.js";
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import { toMimeBundle } from "../../kernel-lib/src/display/bundle.js";
import { keyedStudy, refusal, REQ, rules, schemas, uploadStudy } from "../helpers/enclave-study.js";

const study = keyedStudy("enclave-room");
const { exposures, purchases } = study;

function setUp(mode: "plain" | "enclave", seed: string, budget = true): Lab {
  return uploadStudy(open({ store: ":memory:", rng: { seed }, ...(budget ? { budget: { epsilon: 5 } } : {}) }), study, mode);
}
function approve(lab: Lab, t: unknown, enclave: boolean) {
  for (const p of ["advertiser", "retailer"]) {
    if (enclave) approveEnclaveTemplate(lab, t, p);
    else lab.approveTemplate(t, p);
  }
}
/** Every test runs against both enclave hosts: in this process (default) and its own OS process. */
let HOST: "in-process" | "process" = "in-process";
const opened: Lab[] = [];
function open(o: Parameters<typeof openLab>[0]): Lab {
  const lab = openLab({ ...o, enclave: HOST });
  opened.push(lab);
  return lab;
}

for (const host of ["in-process", "process"] as const)
  describe(`enclave mode of a lab (${host} enclave)`, () => {
    beforeAll(() => {
      HOST = host;
    });
    afterEach(() => {
      for (const l of opened.splice(0)) {
        try {
          l.close(); // stops its enclave processes
        } catch {
          /* closed by the test */
        }
      }
    });

    it("attest → verify → release → query inside the enclave gives the plain path's released rows; the attestation renders", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: 20 });
      const plain = setUp("plain", "p");
      approve(plain, t, false);
      const expected = await plain.cleanRoomQuery({ template: t, ...REQ });

      const lab = setUp("enclave", "e");
      approve(lab, t, true);
      const att = await attestEnclave(lab, { purpose: "measurement" });
      expect(att.ok).toBe(true);
      expect(att.imageSha384).toBe(att.ownersExpectImageSha384);
      expect(att.owners.map((o) => [o.owner, o.outcome])).toEqual([
        ["advertiser", "released"],
        ["retailer", "released"],
      ]);
      expect(att.display.checks.every((c) => c.status === "ok")).toBe(true);
      const bundle = toMimeBundle(att.display);
      expect((bundle[CLEANROOM_MIME] as { kind: string }).kind).toBe("attestation");

      const r = await enclaveQuery(lab, { template: t, ...REQ });
      expect(r.mode).toBe("enclave");
      expect(r.rows.length).toBeGreaterThan(0);
      expect(r.rows).toEqual(JSON.parse(JSON.stringify(expected.rows)));
      expect(r.attestation.imageSha384).toBe(att.imageSha384);
      expect(r.trace.map((s) => s.status)).not.toContain("refused");
      const last = lab.audit().entries.at(-1)!;
      expect(last.action).toBe("query");
      expect(last.outcome).toBe("granted");
    });

    it("a noised template is charged once, after the keys were released, and its rows differ only by noise", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5", threshold: 20 });
      const lab = setUp("enclave", "e2");
      approve(lab, t, true);
      const before = lab.budget().budgets.find((b) => b.scope === "collaboration")!.spent.text;
      const r = await enclaveQuery(lab, { template: t, ...REQ });
      expect(r.charged).not.toBeNull();
      expect(r.noise).not.toBeNull();
      expect(lab.budget().budgets.find((b) => b.scope === "collaboration")!.spent.text).not.toBe(before);
    });

    it("a one-byte workload change, an unapproved template measured in, and a debug enclave are each refused the key", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      const lab = setUp("enclave", "e3");
      approve(lab, t, true);
      for (const [tamper, code, check] of [
        ["code", "ATTESTATION_MEASUREMENT", "measurement"],
        ["template", "ATTESTATION_MEASUREMENT", "measurement"],
        ["debug", "ATTESTATION_DEBUG", "debug"],
      ] as const) {
        const a = await attestEnclave(lab, { purpose: "measurement", tamper });
        expect(a.ok, tamper).toBe(false);
        expect(
          a.owners.every((o) => o.outcome === "refused" && o.code === code && o.check === check),
          tamper,
        ).toBe(true);
        expect(a.display.keyRelease.outcome).toBe("denied");
        expect(a.display.checks.find((c) => c.status === "failed")!.name).toMatch(check === "debug" ? /debug/ : /measurement/);
      }
      expect((await attestEnclave(lab, { purpose: "measurement", debug: true })).owners[0]!.code).toBe("ATTESTATION_DEBUG");
      // none of them became the lab's enclave
      expect(enclaveRoomViews(lab).enclaveView).toBeNull();
    });

    it("a purpose outside the data's tags is refused by the owners' verifiers (purpose in the signed evidence)", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      const lab = setUp("enclave", "e4");
      approve(lab, t, true);
      const a = await attestEnclave(lab, { purpose: "research" });
      expect(a.ok).toBe(false);
      expect(a.owners[0]!.code).toBe("ATTESTATION_PURPOSE");
    });

    it("a template approved after attestation is not in the measurement: the query re-attests a new image and still runs", async () => {
      const t1 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      const t2 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "channel", threshold: 20 });
      const lab = setUp("enclave", "e5");
      approve(lab, t1, true);
      const a1 = await attestEnclave(lab, { purpose: "measurement" });
      approve(lab, t2, true);
      const r = await enclaveQuery(lab, { template: t2, ...REQ });
      expect(r.attestation.imageSha384).not.toBe(a1.imageSha384);
    });

    it("the operator never holds plaintext in enclave mode (its own gate yields ciphertext), unlike plain mode", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      const lab = setUp("enclave", "e6");
      approve(lab, t, true);
      await enclaveQuery(lab, { template: t, ...REQ });
      const probe = exposures.slice(0, 20).map((r) => r.join_key as string);
      // everything the operator side holds, and the whole database
      const held = JSON.stringify(operatorHoldings(lab));
      for (const k of probe) expect(held.includes(k)).toBe(false);
      const dbText = lab.db
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table'")
        .all()
        .map((r) => JSON.stringify(lab.db.prepare(`SELECT * FROM "${(r as { name: string }).name}"`).all()))
        .join("\n");
      for (const k of probe) expect(dbText.includes(k)).toBe(false);
      // the operator uses its own powers: a grant, its purpose gate → owner ciphertext, not a table
      const grant = lab.declarePurpose({ party: "advertiser", analyst: "op", purpose: "measurement", justification: "operator curiosity" });
      const opened = lab.purpose.authorizeQuery({
        grant,
        requester: { party: "advertiser", analyst: "op" },
        purpose: "measurement",
        inputs: [{ datasetId: "advertiser/exposures" }],
      });
      const bytes = opened.tables["advertiser/exposures"]!;
      expect(() => deserializeTable(bytes)).toThrow();
      expect(Buffer.from(bytes).toString("utf8")).toMatch(/owner-sealed/);
      for (const k of probe) expect(Buffer.from(bytes).toString("utf8").includes(k)).toBe(false);
      const views = enclaveRoomViews(lab);
      expect(views.operatorView.plaintextSeen).toBe(false);
      expect(views.enclaveView!.keysHeld.length).toBe(2);
      // defence off: the same operator move in plain mode yields the table
      const plain = setUp("plain", "p6");
      const g2 = plain.declarePurpose({ party: "advertiser", analyst: "op", purpose: "measurement", justification: "operator curiosity" });
      const o2 = plain.purpose.authorizeQuery({
        grant: g2,
        requester: { party: "advertiser", analyst: "op" },
        purpose: "measurement",
        inputs: [{ datasetId: "advertiser/exposures" }],
      });
      expect(deserializeTable(o2.tables["advertiser/exposures"]!).numRows()).toBe(exposures.length);
      // and the plain path over enclave-only data gets the owner's ciphertext from the gate: no table
      await expect(lab.cleanRoomQuery({ template: t, ...REQ })).rejects.toMatchObject({ code: "DATASET_INVALID" });
    });

    it("both modes walk the one road: the same steps in the trace, and approvals audited alike", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      const plain = setUp("plain", "road-p");
      approve(plain, t, false);
      const lab = setUp("enclave", "road-e");
      approve(lab, t, true);
      const p = await plain.cleanRoomQuery({ template: t, ...REQ });
      const e = await enclaveQuery(lab, { template: t, ...REQ });
      expect(e.trace.map((s) => [s.step, s.status])).toEqual(p.trace.map((s) => [s.step, s.status]));
      const approvals = (l: Lab) =>
        l
          .audit()
          .entries.filter((x) => x.action === "approveTemplate")
          .map((x) => [(x.who as { party: string }).party, x.outcome]);
      expect(approvals(lab)).toEqual([
        ["advertiser", "granted"],
        ["retailer", "granted"],
      ]);
      expect(approvals(lab)).toEqual(approvals(plain));
    });

    it("a refused enclave costs no budget and the refusal is audited", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.5", threshold: 20 });
      const lab = setUp("enclave", "e7");
      approve(lab, t, true);
      lab.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "research", justification: "a research question" });
      const before = lab.budget().budgets.find((b) => b.scope === "collaboration")!.spent.text;
      const e = await refusal(enclaveQuery(lab, { template: t, ...REQ, purpose: "research" }));
      expect(e.code).toMatch(/PURPOSE_DENIED|ATTESTATION_PURPOSE/);
      expect(lab.budget().budgets.find((b) => b.scope === "collaboration")!.spent.text).toBe(before);
      expect(lab.audit().entries.at(-1)!.outcome).toBe("refused");
    });

    it("refuses bad input with the field named and before any side effect", async () => {
      const lab = setUp("enclave", "e8");
      await expect(attestEnclave(lab, { purpose: "measurement", tamper: "nope" as never })).rejects.toThrow(/opts.tamper/);
      expect(() => enclaveUpload(lab, "stranger", "x", [], { schema: schemas.exposures, purposes: ["measurement"] })).toThrow(/party/);
      expect(() =>
        enclaveUpload(lab, "advertiser", "exposures", exposures, { schema: schemas.exposures, purposes: ["measurement"] }),
      ).toThrow(/ALREADY_EXISTS|name/);
      const plainT = liftTemplate({ advertiser: "advertiser", retailer: "retailer", exposures: "plainexp", threshold: 20 });
      lab.upload("advertiser", "plainexp", exposures, { schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures });
      const e = await refusal(enclaveQuery(lab, { template: plainT, ...REQ }));
      expect(e.code).toBe("STATE_INVALID");
    });

    it("defence off (owners pin the operator's claimed image): the one-byte-changed enclave gets the keys and leaks raw rows; on: refused", async () => {
      const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
      const lab = setUp("enclave", "e9");
      approve(lab, t, true);
      const off = await attestEnclave(lab, { purpose: "measurement", tamper: "code", ownersPin: "operatorClaim" });
      expect(off.ok).toBe(true);
      const leak = (await enclaveQuery(lab, { template: t, ...REQ })) as unknown as { rawRows?: { join_key: string }[] };
      expect(leak.rawRows?.length).toBe(5);
      expect(exposures.some((r) => r.join_key === leak.rawRows![0]!.join_key)).toBe(true);
      const on = await attestEnclave(lab, { purpose: "measurement", tamper: "code" });
      expect(on.ok).toBe(false);
      expect(on.owners[0]!.code).toBe("ATTESTATION_MEASUREMENT");
      // each owner's refusal is in the audit log, with its code, and the chain still verifies
      const rep = lab.audit();
      const refusedReleases = rep.entries.filter(
        (e: { action: string; outcome: string; errorCode?: string | null }) => e.action === "keyRelease" && e.outcome === "refused",
      );
      expect(refusedReleases.map((e: { errorCode?: string | null }) => e.errorCode)).toContain("ATTESTATION_MEASUREMENT");
      expect(rep.verification.ok).toBe(true);
      // re-attesting the genuine image replaces the tampered enclave: no raw rows any more
      expect((await attestEnclave(lab, { purpose: "measurement" })).ok).toBe(true);
      expect("rawRows" in (await enclaveQuery(lab, { template: t, ...REQ }))).toBe(false);
    });

    it(
      "an operator that weakens an owner's analysis rule in the catalog (lower threshold) gets no key: " +
        "rules are measured, each owner checks its own",
      async () => {
        const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", breakdown: "region", threshold: 2 });
        const lab = setUp("enclave", "e10");
        approve(lab, t, true);
        const honest = await enclaveQuery(lab, { template: t, ...REQ });
        expect(honest.suppressed.minimum).toBe(20); // the owners' rules (k = 20) beat the template's 2
        // the curious operator rewrites its catalog: every rule's minimum down to the AWS floor
        for (const r of lab.db.prepare("SELECT key, meta_json FROM enclave_datasets").all() as { key: string; meta_json: string }[]) {
          const m = JSON.parse(r.meta_json);
          m.rule.outputConstraints = m.rule.outputConstraints.map((c: { minimum: number }) => ({ ...c, minimum: 2 }));
          lab.db.prepare("UPDATE enclave_datasets SET meta_json = ? WHERE key = ?").run(JSON.stringify(m), r.key);
        }
        const e = await refusal(enclaveQuery(lab, { template: t, ...REQ }));
        expect(e.code).toBe("ATTESTATION_MEASUREMENT");
        const a = await attestEnclave(lab, { purpose: "measurement" });
        expect(a.ok).toBe(false);
        expect(a.imageSha384).not.toBe(a.ownersExpectImageSha384);
        expect(a.owners.every((o) => o.code === "ATTESTATION_MEASUREMENT")).toBe(true);
      },
    );

    it("owners release keys by their own tags, deny included: a column denying the purpose keeps that owner's key, whatever is asked", async () => {
      const lab = open({ store: ":memory:", rng: { seed: "e11" } });
      enclaveUpload(lab, lab.party("advertiser"), "exposures", exposures, {
        schema: schemas.exposures,
        purposes: ["measurement"],
        rule: rules.exposures,
      });
      enclaveUpload(lab, lab.party("retailer"), "purchases", purchases, {
        schema: schemas.purchases,
        purposes: ["ads"],
        columns: { value_cents: { deny: ["measurement"] } },
        rule: rules.purchases,
      } as never);
      const a = await attestEnclave(lab, { purpose: "measurement" });
      expect(a.ok).toBe(false);
      expect(a.owners.map((o) => [o.owner, o.outcome, o.code])).toEqual([
        ["advertiser", "released", null],
        ["retailer", "refused", "ATTESTATION_PURPOSE"],
      ]);
    });

    it("after a restart an owner re-attaches with its own tags: purposes widened in the operator's catalog release nothing", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-enclave-tags-"));
      const store = path.join(dir, "room.db");
      try {
        const lab = open({ store, rng: { seed: "tags" } });
        const up = (l: Lab) => {
          enclaveUpload(l, l.party("advertiser"), "exposures", exposures, {
            schema: schemas.exposures,
            purposes: ["measurement"],
            rule: rules.exposures,
          });
          enclaveUpload(l, l.party("retailer"), "purchases", purchases, {
            schema: schemas.purchases,
            purposes: ["measurement"],
            rule: rules.purchases,
          });
        };
        up(lab);
        expect((await attestEnclave(lab, { purpose: "research" })).ok).toBe(false);
        // the operator widens every catalog entry to "research" while the kernel is down
        for (const r of lab.db.prepare("SELECT key, meta_json FROM enclave_datasets").all() as { key: string; meta_json: string }[]) {
          const m = JSON.parse(r.meta_json);
          m.purposes = [...m.purposes, "research"];
          lab.db.prepare("UPDATE enclave_datasets SET meta_json = ? WHERE key = ?").run(JSON.stringify(m), r.key);
        }
        lab.close();
        const again = open({ store, rng: { seed: "tags" } });
        up(again); // the owners re-attach with their own purposes
        const a = await attestEnclave(again, { purpose: "research" });
        expect(a.ok).toBe(false);
        expect(a.owners.every((o) => o.code === "ATTESTATION_PURPOSE")).toBe(true);
        expect((await attestEnclave(again, { purpose: "measurement" })).ok).toBe(true);
        again.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });

    it("after a kernel restart the pinned root is unchanged; owners (in memory only) must re-attach before keys are released", async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-enclave-room-"));
      const store = path.join(dir, "room.db");
      try {
        const lab = open({ store, rng: { seed: "restart" } });
        const adv = lab.party("advertiser");
        const ret = lab.party("retailer");
        enclaveUpload(lab, adv, "exposures", exposures, { schema: schemas.exposures, purposes: ["measurement"], rule: rules.exposures });
        enclaveUpload(lab, ret, "purchases", purchases, { schema: schemas.purchases, purposes: ["measurement"], rule: rules.purchases });
        const t = liftTemplate({ advertiser: "advertiser", retailer: "retailer", threshold: 20 });
        approve(lab, t, true);
        const first = await attestEnclave(lab, { purpose: "measurement" });
        expect(first.ok).toBe(true);
        lab.close();
        const again = open({ store, rng: { seed: "restart" } });
        const second = await attestEnclave(again, { purpose: "measurement" });
        expect(second.rootPublicKeyHex).toBe(first.rootPublicKeyHex);
        expect(second.imageSha384).toBe(first.imageSha384);
        expect(second.ok).toBe(false);
        expect(second.display.keyRelease.outcome).toBe("not-requested");
        expect((toMimeBundle(second.display)[CLEANROOM_MIME] as { kind: string }).kind).toBe("attestation");
        expect(second.owners.every((o) => o.code === "NOT_FOUND" && /re-attaches/.test(o.reason!))).toBe(true);
        // a query now is refused at the key release, before the budget step, and audited
        again.declarePurpose({ party: "advertiser", analyst: "bo", purpose: "measurement", justification: "campaign lift" });
        const e = await refusal(enclaveQuery(again, { template: t, ...REQ }));
        expect(e.code).toBe("NOT_FOUND");
        const trace = e.details.trace as { step: string; status: string }[];
        expect(trace.find((x) => x.step === "budget")!.status).toBe("skipped");
        expect(trace.find((x) => x.step === "execute")!.status).toBe("refused");
        expect(again.audit().entries.at(-1)!.outcome).toBe("refused");
        // the owners re-attach their copies (different content is refused), then keys are released again
        expect(() =>
          enclaveUpload(again, "advertiser", "exposures", exposures.slice(1), {
            schema: schemas.exposures,
            purposes: ["measurement"],
            rule: rules.exposures,
          }),
        ).toThrow(/ALREADY_EXISTS/);
        enclaveUpload(again, "advertiser", "exposures", exposures, {
          schema: schemas.exposures,
          purposes: ["measurement"],
          rule: rules.exposures,
        });
        enclaveUpload(again, "retailer", "purchases", purchases, {
          schema: schemas.purchases,
          purposes: ["measurement"],
          rule: rules.purchases,
        });
        expect(() =>
          enclaveUpload(again, "retailer", "purchases", purchases, {
            schema: schemas.purchases,
            purposes: ["measurement"],
            rule: rules.purchases,
          }),
        ).toThrow(/ALREADY_EXISTS/);
        expect((await attestEnclave(again, { purpose: "measurement" })).ok).toBe(true);
        again.close();
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  });
