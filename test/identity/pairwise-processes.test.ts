/**
 * Decentralized crosswalks with real parties: every party of every pair is its own OS process
 * (scripts/psi-party.mjs) that reads only its own rows file, runs its side of PSI over a socket
 * on 127.0.0.1 under the SecureChannel, and writes only its own join keys. The test process
 * starts each pair's two processes, collects what each party would store, and checks the
 * pairwise properties on those stores. Needs the build (kernel-lib/dist).
 */
import fs from "node:fs";
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import {
  crossPairLinkingAttack,
  pairwiseCrosswalk,
  pairwiseWorld,
  type PairwiseCrosswalk,
  type PairwiseWorld,
} from "../../kernel-lib/src/identity/pairwise.js";
import { psiPartyHarness } from "../helpers/psi-party-proc.js";

const { dir, spawn } = psiPartyHarness("pairwise-processes-");
/** Start one party (its events as they come, its exit; killed after the file if still running). */
const start = (args: string[]) => spawn([...args, "--timeout-ms", "60000", "--threads", "1"]);

let world: PairwiseWorld;
let cw: PairwiseCrosswalk;
const pids = new Set<number>();

beforeAll(async () => {
  world = pairwiseWorld({ people: 240, parties: ["retailer", "publisher", "bank"], coverage: 0.6, rng: seededRng("pairwise-procs") });
  cw = await pairwiseCrosswalk(world, {
    runPair: async ({ a, b, label, rowsA, rowsB }) => {
      const file = (p: string, rows: unknown) => {
        const f = path.join(dir, `${label.replace(/[^a-z]/g, "_")}-${p}`);
        fs.writeFileSync(`${f}.rows.json`, JSON.stringify(rows));
        return f;
      };
      const fa = file(a, rowsA);
      const fb = file(b, rowsB);
      const common = (self: string, peer: string, f: string) => [
        "--as",
        self,
        "--peer",
        peer,
        "--rows",
        `${f}.rows.json`,
        "--out",
        `${f}.out.json`,
        "--label",
        label,
      ];
      const responder = start(["--role", "responder", ...common(b, a, fb), "--listen", "0"]);
      const port = await responder.listening();
      const initiator = start(["--role", "initiator", ...common(a, b, fa), "--connect", String(port)]);
      for (const p of [responder, initiator]) pids.add(p.proc.pid!);
      const [ca, cb] = await Promise.all([initiator.exited, responder.exited]);
      expect([ca, cb]).toEqual([0, 0]);
      const ra = JSON.parse(fs.readFileSync(`${fa}.out.json`, "utf8")) as {
        joinKeys: (string | null)[];
        matchReport: { sessionId: string };
      };
      const rb = JSON.parse(fs.readFileSync(`${fb}.out.json`, "utf8")) as {
        joinKeys: (string | null)[];
        matchReport: { sessionId: string };
      };
      expect(ra.matchReport.sessionId).toBe(rb.matchReport.sessionId);
      return { keysA: ra.joinKeys, keysB: rb.joinKeys, sessionId: ra.matchReport.sessionId };
    },
  });
}, 180_000);

describe("pairwise crosswalk with every party as its own OS process", () => {
  it("ran 3 pairs as 6 distinct processes; each pair found its true overlap and both sides agree on its pseudonyms", () => {
    expect(pids.size).toBe(6);
    expect(pids.has(process.pid)).toBe(false);
    for (const p of cw.pairs) {
      const inA = new Set(world.records[p.a]!.map((r) => world.truth.get(`${p.a}/${r.recordId}`)));
      expect(p.matched).toBe(world.records[p.b]!.filter((r) => inA.has(world.truth.get(`${p.b}/${r.recordId}`))).length);
      const ta = cw.stores[p.a]!.find((t) => t.peer === p.b)!;
      const tb = cw.stores[p.b]!.find((t) => t.peer === p.a)!;
      expect(new Set(ta.rows.map((r) => r.pseudonym))).toEqual(new Set(tb.rows.map((r) => r.pseudonym)));
    }
  });

  it("no pseudonym is shared across pairs, and the cross-pair linking attack is at chance", () => {
    const all = cw.pairs.map((p) => new Set(cw.stores[p.a]!.find((t) => t.peer === p.b)!.rows.map((r) => r.pseudonym)));
    for (let i = 0; i < all.length; i++)
      for (let j = i + 1; j < all.length; j++) expect([...all[i]!].filter((x) => all[j]!.has(x))).toEqual([]);
    const attack = crossPairLinkingAttack(
      world,
      cw.stores.publisher!.find((t) => t.peer === "retailer")!,
      cw.stores.bank!.find((t) => t.peer === "retailer")!,
      seededRng("attack"),
    );
    expect(attack.targets).toBeGreaterThan(20);
    expect(attack.linkedByPseudonym).toBe(0);
    expect(attack.correct).toBeLessThanOrEqual(4); // expected < 0.5 correct guesses at chance
  });
});
