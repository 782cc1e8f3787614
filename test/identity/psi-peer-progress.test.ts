/**
 * `psiWithPeer` (the verb in verbs/psi.ts) shows an in-place progress bar by default in the
 * cleanroom-ts kernel, like `psiMatch`: one display id shown once, updated in place, ending at
 * 100% "done" — and nothing at all for a call refused before any work. Both parties run in
 * this process over a real 127.0.0.1 socket; the kernel display API is a recorder.
 */
import { afterEach, describe, expect, it } from "vitest";
import { installKernel, uninstallKernel } from "../helpers/kernel-recorder.js";
import { psiMatch, psiWithPeer } from "../../kernel-lib/src/verbs/psi.js";
import { addParty, openLab } from "../../kernel-lib/src/verbs/room.js";
import { KeyRegistry } from "../../kernel-lib/src/identity/psi.js";
import { seededRng, TEACHING_LABEL } from "../../kernel-lib/src/rng.js";

afterEach(uninstallKernel);

const rng = seededRng("psi-peer-progress");
const people = Array.from({ length: 300 }, (_, i) => `p${Buffer.from(rng.fork(`p${i}`).bytes(5)).toString("hex")}@mail.example`);
const exposures = people.slice(0, 200).map((email) => ({ email }));
const purchases = people.slice(100).map((email) => ({ email }));

async function pair(extra: { progress?: false | ((d: number, t: number, p: string) => void) } = {}) {
  let advertiser!: ReturnType<typeof psiWithPeer>;
  const port = await new Promise<number>((onListening) => {
    advertiser = psiWithPeer({
      as: "advertiser",
      peer: "retailer",
      listen: 0,
      rows: exposures,
      registry: new KeyRegistry(),
      threads: 1,
      onListening,
      ...extra,
    });
  });
  const retailer = psiWithPeer({
    as: "retailer",
    peer: "advertiser",
    connect: port,
    rows: purchases,
    registry: new KeyRegistry(),
    threads: 1,
    ...extra,
  });
  return Promise.all([advertiser, retailer]);
}

describe("psiWithPeer progress", () => {
  it("shows one bar per side by default: shown once, updated in place, finished at 100%", async () => {
    const events = installKernel();
    const [a, b] = await pair();
    expect(a.joinKeys!.filter((k) => k !== null)).toHaveLength(100);
    expect(b.joinKeys!.filter((k) => k !== null)).toHaveLength(100);
    const ids = [...new Set(events.map((e) => e.id))];
    expect(ids).toHaveLength(2);
    for (const id of ids) {
      const mine = events.filter((e) => e.id === id);
      expect(mine[0]!.op).toBe("show");
      expect(mine.slice(1).every((e) => e.op === "update")).toBe(true);
      const last = mine.at(-1)!.payload;
      expect(last).toMatchObject({ kind: "progress", state: "done" });
      expect(last.done).toBe(last.total);
      // every row of both sides is hashed/blinded once on each side: 200 + 200 units per bar
      expect(last.total).toBe(400);
      expect(String(last.task)).toMatch(/^PSI with (retailer|advertiser) \(joinKeys\)$/);
      expect(last.rngMode).toBe("secure"); // secure randomness by default: no teaching label
    }
    // only counts and library phase names are published, never an identifier
    expect(JSON.stringify(events)).not.toContain("@mail.example");
  });

  it("a callback gets the reports instead, and false shows nothing", async () => {
    const events = installKernel();
    const phases = new Set<string>();
    await pair({ progress: (_d, _t, p) => void phases.add(p) });
    expect([...phases].some((p) => p.startsWith("client:"))).toBe(true);
    expect([...phases].some((p) => p.startsWith("server:"))).toBe(true);
    await pair({ progress: false });
    expect(events).toHaveLength(0);
  });

  it("a call refused before any work shows no bar", async () => {
    const events = installKernel();
    await expect(psiWithPeer({ as: "retailer", peer: "advertiser", connect: 1, rows: [{ email: "nope" }] })).rejects.toMatchObject({
      code: "PSI_EMPTY_SET",
    });
    expect(events).toHaveLength(0);
  });
});

describe("PSI bars carry the randomness label of their run", () => {
  it("psiMatch in a seeded lab: the bar says teaching mode, like the result", async () => {
    const events = installKernel();
    const lab = openLab({ store: ":memory:", rng: { seed: "psi-bar-label" } });
    addParty(lab, { party: "advertiser" });
    addParty(lab, { party: "retailer" });
    await psiMatch(lab, { a: { party: "advertiser", rows: exposures }, b: { party: "retailer", rows: purchases }, threads: 1 });
    expect(events.at(-1)!.payload).toMatchObject({ state: "done", rngMode: "seeded", label: TEACHING_LABEL });
    lab.close();
  });
});
