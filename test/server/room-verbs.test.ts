/**
 * The remaining verbs on a joined room (issue 13 leftovers), against scripts/room-server.mjs in
 * its own process: previewQuery (a read-only op on the server: nothing charged, nothing audited,
 * the same numbers a run then charges), approving by hash or name (the member's kernel fetches
 * the content and hashes it itself before it signs), and psiMatch (refused typed: a joined
 * kernel is one member; psiWithPeer is the verb). The dishonest operator who shows a member other
 * content for a hash runs in this process (RoomServer's operatorFilter), with its positive control.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { RoomServer } from "../../kernel-lib/src/server/server.js";
import type { RemoteRoom } from "../../kernel-lib/src/server/client.js";
import { approveTemplate } from "../../kernel-lib/src/verbs/room.js";
import { previewQuery } from "../../kernel-lib/src/verbs/preview.js";
import { psiMatch } from "../../kernel-lib/src/verbs/psi.js";
import { cleanRoomQuery } from "../../kernel-lib/src/verbs/query.js";
import { MIMEBUNDLE_SYMBOL } from "../../kernel-lib/src/display/bundle.js";
import { chargeCount, closeAll, killAll, ledgerSpent, startServer, studyRoom } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-verbs-"));
const store = path.join(dir, "room.db");
let rooms: Record<string, RemoteRoom>;
let template: ReturnType<typeof liftTemplate>;
const params = { startDay: 0, endDay: 27 };

function auditCount(file: string): number {
  const db = new Database(file, { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM purpose_audit_log").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

async function refusal(p: Promise<unknown>): Promise<{ code: string; message: string; details: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    expect(isCleanRoomError(e), String(e)).toBe(true);
    return e as never;
  }
  throw new Error("expected a refusal, got success");
}

beforeAll(async () => {
  const server = await startServer(store, ["--epsilon", "4", "--per-party", "4", "--seed", "room-verbs"]);
  ({ rooms, template } = await studyRoom(server.url, dir, { rows: 600, seed: "room-verbs" }));
}, 120_000);

afterAll(() => {
  closeAll(rooms ?? {});
  killAll();
  fs.rmSync(dir, { recursive: true, force: true });
});

describe("previewQuery on a joined room", () => {
  it("is answered by the server read-only (nothing charged or audited) and says what one run then costs", async () => {
    const spent = ledgerSpent(store);
    const charges = chargeCount(store);
    const audits = auditCount(store);
    const p = await previewQuery(rooms.advertiser!, { template, params, party: "advertiser" });
    expect(p.kind).toBe("queryPreview");
    expect(p.charged).toBe(false);
    expect(p.templateHash).toBe(parseTemplate(template).hash);
    expect(p.threshold.effective).toBe(20);
    expect(p.approval).toEqual({ owners: ["advertiser", "retailer"], approvedBy: ["advertiser", "retailer"], approved: true });
    expect(p.cost?.text).toBeTruthy();
    expect(typeof (p as unknown as Record<symbol, unknown>)[MIMEBUNDLE_SYMBOL]).toBe("function"); // renders in the notebook
    expect(ledgerSpent(store)).toEqual(spent);
    expect(chargeCount(store)).toBe(charges);
    expect(auditCount(store)).toBe(audits);
    // the runs it says are left go down by exactly one after one run
    const runs = p.runsLeft!.runs;
    expect(runs).toBeGreaterThan(1);
    await cleanRoomQuery(rooms.advertiser!, { template, params, party: "advertiser", analyst: "an", purpose: "measurement" });
    const after = await previewQuery(rooms.advertiser!, { template: p.templateHash, params, party: "advertiser" });
    expect(after.runsLeft!.runs).toBe(runs - 1);
  });

  it("validates like a run (a bad parameter is named), and a member previews only as itself", async () => {
    const bad = await refusal(previewQuery(rooms.advertiser!, { template, params: { startDay: 0, endDay: "x" } }));
    expect(bad.code).toBe("PARAM_INVALID");
    expect(bad.message).toContain("endDay");
    const other = await refusal(previewQuery(rooms.advertiser!, { template, params, party: "retailer" }));
    expect(other.code).toBe("ACCESS_DENIED");
    // a member that skips its door: the server checks the body itself
    const raw = await refusal(rooms.advertiser!.request("previewQuery", { input: { template, confidence: 7 } }));
    expect(raw.code).toBe("PARAM_INVALID");
  });
});

describe("approving by hash or name in a joined room", () => {
  it("the kernel fetches the content, hashes it itself, signs that hash and shows what it signed", async () => {
    const t2 = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.3", threshold: 20 });
    const hash = parseTemplate(t2).hash;
    await approveTemplate(rooms.advertiser!, { template: t2, party: "advertiser" }); // proposes it
    const st = await approveTemplate(rooms.retailer!, { template: hash, party: "retailer" });
    expect(st.approved).toBe(true);
    expect(st.signed.templateHash).toBe(hash);
    expect(parseTemplate(st.signed.content).hash).toBe(hash);
    expect(st.signatures.map((s) => s.member)).toEqual(["advertiser", "retailer"]);
    // by name: two proposed templates share the lift name, so the server asks for the hash
    const e = await refusal(approveTemplate(rooms.retailer!, { template: t2.name, party: "retailer" }));
    expect(e.code).toBe("INPUT_INVALID");
    // expectHash goes only with a name
    const e2 = await refusal(
      Promise.resolve().then(() => approveTemplate(rooms.retailer!, { template: hash, party: "retailer", expectHash: hash })),
    );
    expect(e2).toMatchObject({ code: "INPUT_INVALID", details: { field: "expectHash" } });
  });
});

describe("psiMatch on a joined room", () => {
  it("is refused typed before anything is sent, naming psiWithPeer", async () => {
    const audits = auditCount(store);
    const e = await refusal(
      psiMatch(rooms.advertiser! as never, { a: { party: "advertiser", rows: ["a@x.org"] }, b: { party: "retailer", rows: ["a@x.org"] } }),
    );
    expect(e.code).toBe("ACCESS_DENIED");
    expect(e.details.use).toBe("psiWithPeer");
    expect(e.message).toContain("psiWithPeer");
    expect(auditCount(store)).toBe(audits);
  });
});

describe("an operator that shows a member other content for a hash", () => {
  it("is caught by the member's kernel (nothing signed); without the re-hash (positive control) the member approves what it never saw", async () => {
    const bdir = fs.mkdtempSync(path.join(dir, "op-"));
    // what the operator shows: a harmless template; what the hash stands for: a looser one (ε 2 per aggregate, threshold 2)
    const shown = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.1", threshold: 50 });
    // later: an operator that answers a NAME with another template, hash and content consistent
    let swap: { templateHash: string; template: unknown } | null = null;
    const server = await RoomServer.start({
      store: path.join(bdir, "room.db"),
      budget: { epsilon: 4, perParty: 4 },
      rng: { seed: "dishonest" },
      operatorFilter: (op, result) =>
        op !== "template"
          ? result
          : swap
            ? { ...(result as object), ...swap }
            : { ...(result as object), template: JSON.parse(parseTemplate(shown).canonical) },
    });
    const s = await studyRoom(server.url, bdir, { rows: 300, seed: "dishonest" });
    try {
      const loose = liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "2", threshold: 2 });
      const hash = parseTemplate(loose).hash;
      await approveTemplate(s.rooms.advertiser!, { template: loose, party: "advertiser" });
      const approvedBy = () => server.lab.db.prepare("SELECT party FROM cleanroom_approvals WHERE template_hash = ?").all(hash);
      // defence on: the kernel re-hashes what the server showed: it is not the hash asked for
      const e = await refusal(approveTemplate(s.rooms.retailer!, { template: hash, party: "retailer" }));
      expect(e.code).toBe("TEMPLATE_INVALID");
      expect(e.details).toMatchObject({ field: "template", expected: hash, got: parseTemplate(shown).hash });
      expect(approvedBy()).toEqual([{ party: "advertiser" }]);
      // positive control: the old client — look at the server's content, sign the hash it was given
      const seen = await s.rooms.retailer!.request<{ template: unknown }>("template", { template: hash });
      expect(parseTemplate(seen.template).hash).not.toBe(hash); // the member reviewed the harmless one...
      const r = s.rooms.retailer!;
      const signature = r.signStatement({ statement: "approve", room: r.roomId, templateHash: hash, member: r.member });
      await r.request("approveTemplate", { input: { template: hash, party: "retailer" }, templateHash: hash, signature });
      expect(approvedBy()).toEqual([{ party: "advertiser" }, { party: "retailer" }]); // ...and approved the loose one

      // by NAME: the retailer reviewed "lift by channel" (strict); the operator answers the name with a loose one
      const reviewed = liftTemplate({
        advertiser: "advertiser",
        retailer: "retailer",
        breakdown: "channel",
        epsilonPerAggregate: "0.1",
        threshold: 50,
      });
      const looseBy = liftTemplate({
        advertiser: "advertiser",
        retailer: "retailer",
        breakdown: "channel",
        epsilonPerAggregate: "2",
        threshold: 2,
      });
      const reviewedHash = parseTemplate(reviewed).hash;
      const looseByHash = parseTemplate(looseBy).hash;
      await approveTemplate(s.rooms.advertiser!, { template: reviewed, party: "advertiser" });
      const pair = (t: unknown) => ({ templateHash: parseTemplate(t).hash, template: JSON.parse(parseTemplate(t).canonical) as unknown });
      // a template of ANOTHER name, consistent with its hash: the old check (content hashes to the hash the server named) passed it
      swap = pair(loose);
      const other = await r.request<{ templateHash: string; template: unknown }>("template", { template: reviewed.name });
      expect(parseTemplate(other.template).hash).toBe(other.templateHash); // positive control: self-consistent, so a re-hash alone cannot fail
      const e2 = await refusal(approveTemplate(r, { template: reviewed.name, party: "retailer" }));
      expect(e2.code).toBe("TEMPLATE_INVALID");
      expect(e2.message).toContain("another name");
      // same name, other content: refused when the member pins the hash it reviewed
      swap = pair(looseBy);
      const approvers = (h: string) => server.lab.db.prepare("SELECT party FROM cleanroom_approvals WHERE template_hash = ?").all(h);
      const e3 = await refusal(approveTemplate(r, { template: reviewed.name, party: "retailer", expectHash: reviewedHash }));
      expect(e3.code).toBe("TEMPLATE_INVALID");
      expect(e3.details).toMatchObject({ field: "template", expected: reviewedHash, got: looseByHash });
      expect(approvers(looseByHash)).toEqual([]);
      // the documented limit: a bare name trusts the server for which template it means; what was signed is returned
      const st = await approveTemplate(r, { template: reviewed.name, party: "retailer" });
      expect(st.signed.templateHash).toBe(looseByHash);
      expect(parseTemplate(st.signed.content).hash).toBe(looseByHash);
      expect(approvers(looseByHash)).toEqual([{ party: "retailer" }]);
    } finally {
      closeAll(s.rooms);
      await server.close();
    }
  });
});
