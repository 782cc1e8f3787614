/**
 * The room server under kill -9 and under load (issue 13), with real processes: the server is
 * scripts/room-server.mjs, killed inside the charge (CLEANROOM_FAULT kill points, SIGKILL) while
 * a member's query runs, then restarted on the same store; and many member clients querying one
 * server concurrently until the collaboration budget runs out.
 */
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { joinRoom } from "../../kernel-lib/src/server/client.js";
import { cleanRoomQuery } from "../../kernel-lib/src/verbs/query.js";
import { audit, budget } from "../../kernel-lib/src/verbs/ledger.js";
import { chargeCount, closeAll, killAll, ledgerSpent, startServer, studyRoom } from "./helpers.js";

const dirs: string[] = [];
const tmp = () => {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), "room-crash-"));
  dirs.push(d);
  return d;
};
afterAll(() => {
  killAll();
  for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
});

const params = { startDay: 0, endDay: 27 };

describe("kill -9 of the server during a query", () => {
  for (const point of ["room.charge.beforeCommit", "room.charge.afterCommit"] as const) {
    it(`at ${point}: the member sees a typed refusal, the restarted room's ledger is consistent, the audit chain verifies, no overspend`, async () => {
      const dir = tmp();
      const store = path.join(dir, "room.db");
      const args = ["--epsilon", "1", "--per-party", "1", "--seed", `crash-${point}`];
      // the kill point arms at the first charge: setup (uploads, approvals) charges nothing
      const s1 = await startServer(store, args, { CLEANROOM_FAULT: point });
      const { rooms, ids, template } = await studyRoom(s1.url, dir, { epsilonPerAggregate: "0.1", seed: `crash-${point}` });
      const spent0 = ledgerSpent(store);
      const q = { template, params, party: "advertiser", analyst: "an", purpose: "measurement" };
      let err: unknown = null;
      try {
        await cleanRoomQuery(rooms.advertiser!, q);
      } catch (e) {
        err = e;
      }
      expect(isCleanRoomError(err), String(err)).toBe(true); // the link went away: typed, no partial result
      expect(await s1.exited).toBe(null); // killed by the signal
      expect(s1.proc.signalCode).toBe("SIGKILL");
      closeAll(rooms);

      const s2 = await startServer(store, args);
      const adv = await joinRoom(s2.url, { as: "advertiser", identity: ids.advertiser!, rng: { seed: "again" } });
      const charges = chargeCount(store);
      const spent1 = ledgerSpent(store);
      if (point === "room.charge.beforeCommit") {
        expect(spent1).toEqual(spent0); // the charge rolled back with its audit entry
      } else {
        expect(spent1).not.toEqual(spent0); // committed before the kill: charged once, audited once
      }
      const au = await audit(adv);
      expect(au.verification.ok).toBe(true);
      // spend the rest: exactly the budget, never more (0.5 per query against ε = 1)
      let ok = 0;
      for (let i = 0; i < 4; i++) {
        try {
          await cleanRoomQuery(adv, q);
          ok++;
        } catch (e) {
          expect(isCleanRoomError(e, "BUDGET_EXCEEDED"), String(e)).toBe(true);
        }
      }
      expect(ok).toBe(point === "room.charge.beforeCommit" ? 2 : 1);
      const b = await budget(adv);
      const collab = b.budgets.find((x) => x.scope === "collaboration")!;
      expect(collab.spent.text).toBe(collab.total.text);
      expect(chargeCount(store)).toBeGreaterThan(charges);
      expect((await audit(adv)).verification.ok).toBe(true);
      adv.close();
      s2.proc.kill("SIGTERM");
      await s2.exited;
    });
  }
});

describe("kill -9 of a member's process while its upload crosses the wire", () => {
  it("leaves no half-written dataset, charges nothing, and the room keeps serving (the member can come back)", async () => {
    const dir = tmp();
    const store = path.join(dir, "room.db");
    const s = await startServer(store, ["--epsilon", "1", "--seed", "member-kill"]);
    const { rooms, ids } = await studyRoom(s.url, dir, { seed: "member-kill", queriers: ["owner2"] });
    // the retailer's kernel, as its own process, with the retailer's key file
    const spent = ledgerSpent(store);
    const charges = chargeCount(store);
    const child = spawn(process.execPath, [path.join(__dirname, "member-client.mjs"), s.url, path.join(dir, "retailer.key"), "400000"], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on("data", (d) => String(d).includes('"sending"') && resolve());
      child.once("exit", (c) => reject(new Error(`member exited ${c} before sending`)));
    });
    await new Promise((r) => setTimeout(r, 10)); // mid-send of a ~30 MB request
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const { datasets } = await import("../../kernel-lib/src/verbs/room.js");
    // the server never had the whole frame: nothing of the dataset exists (not even a catalog entry)
    expect((await datasets(rooms.retailer!, { party: "retailer" })).map((d) => d.name)).toEqual(["purchases"]);
    expect(ledgerSpent(store)).toEqual(spent);
    expect(chargeCount(store)).toBe(charges);
    expect((await audit(rooms.advertiser!)).verification.ok).toBe(true);
    // the room still serves, the member can come back
    const again = await joinRoom(s.url, { as: "retailer", identity: ids.retailer! });
    const b = await budget(again);
    expect(b.budgets.length).toBeGreaterThan(0);
    again.close();
    closeAll(rooms);
    s.proc.kill("SIGTERM");
    await s.exited;
  });
});

describe("load: concurrent members query one server until the budget runs out", () => {
  it("spends exactly the budget, zero overspend, every refusal typed BUDGET_EXCEEDED", async () => {
    const dir = tmp();
    const store = path.join(dir, "room.db");
    const N = 12;
    const queriers = Array.from({ length: N }, (_, i) => `q${i}`);
    // ε = 2 for the collaboration, 0.1 per query (5 aggregates × 0.02): exactly 20 queries fit
    const s = await startServer(store, ["--epsilon", "2", "--per-party", "100", "--seed", "load"]);
    const { rooms, template } = await studyRoom(s.url, dir, { queriers, epsilonPerAggregate: "0.02", seed: "load" });
    let ok = 0;
    let exceeded = 0;
    await Promise.all(
      queriers.map(async (n) => {
        for (;;) {
          try {
            await cleanRoomQuery(rooms[n]!, { template, params, party: n, analyst: "an", purpose: "measurement" });
            ok++;
          } catch (e) {
            expect(isCleanRoomError(e, "BUDGET_EXCEEDED"), String(e)).toBe(true);
            exceeded++;
            return;
          }
        }
      }),
    );
    expect(ok).toBe(20);
    expect(exceeded).toBe(N);
    const b = await budget(rooms.advertiser!);
    const collab = b.budgets.find((x) => x.scope === "collaboration")!;
    expect(collab.spent.text).toBe(collab.total.text);
    expect((await audit(rooms.advertiser!)).verification.ok).toBe(true);
    closeAll(rooms);
    s.proc.kill("SIGTERM");
    await s.exited;
  });
});
