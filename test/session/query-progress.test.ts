/**
 * Query progress (issue 19 leftovers): the one road reports its phases check → keys → charge →
 * execute → release and yields to the event loop between them; the verb shows an in-place bar
 * by default once the template's tables hold LARGE_QUERY_ROWS rows, on request (`progress:
 * true`) otherwise, and reports to a callback. A refused query's bar says "failed" and nothing
 * is charged. Kernel display is a recorder.
 */
import { afterEach, describe, expect, it } from "vitest";
import { installKernel, uninstallKernel, exposureRows } from "../helpers/kernel-recorder.js";
import {
  addParty,
  approveTemplate,
  budget,
  cleanRoomQuery,
  declarePurpose,
  liftRules,
  liftSchemas,
  openLab,
  upload,
  type Lab,
  type TemplateInput,
} from "../../kernel-lib/src/index.js";
import { LARGE_QUERY_ROWS } from "../../kernel-lib/src/verbs/query.js";
import { QUERY_PHASES, QUERY_PHASE_TEXT } from "../../kernel-lib/src/session/road.js";

afterEach(uninstallKernel);

const rows = exposureRows;
const template: TemplateInput = {
  version: 1,
  name: "reach by region",
  base: { owner: "advertiser", dataset: "exposures" },
  groupBy: ["exposures.region"],
  aggregates: [{ name: "people", fn: "countUnits" }],
  threshold: { minimum: 20, style: "drop" },
  contribution: { maxRowsPerUnit: 1, orderBy: [] },
  noise: { mechanism: "laplace", epsilonPerAggregate: "0.5" },
};
async function room(n: number): Promise<Lab> {
  const lab = openLab({ store: ":memory:", rng: { seed: "query-progress" }, budget: { epsilon: 5 } });
  addParty(lab, { party: "advertiser" });
  await upload(lab, {
    party: "advertiser",
    name: "exposures",
    rows: rows(n),
    schema: liftSchemas().exposures,
    purposes: ["measurement"],
    rule: { ...liftRules(20).exposures, joinRequired: false },
    progress: false,
  });
  declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "reach by region" });
  approveTemplate(lab, { template, party: "advertiser" });
  return lab;
}
const req = { template, party: "advertiser", analyst: "bo", purpose: "measurement" } as const;
const spent = (lab: Lab) => budget(lab).budgets.find((b) => b.scope === "collaboration")!.spent;

describe("query progress", () => {
  it("reports every phase of the road in order to a callback, yielding to the event loop in between", async () => {
    const lab = await room(400);
    const seen: [number, number, string][] = [];
    let ticks = 0;
    let running = true;
    const spin = () => void (running && (ticks++, setImmediate(spin)));
    setImmediate(spin);
    const r = await cleanRoomQuery(lab, { ...req, progress: (d, t, p) => void seen.push([d, t, p]) });
    running = false;
    expect(r.rows).toHaveLength(4);
    expect(seen).toEqual(QUERY_PHASES.map((p, i) => [i, 5, QUERY_PHASE_TEXT[p]]));
    expect(ticks).toBeGreaterThanOrEqual(QUERY_PHASES.length);
    lab.close();
  });

  it("a small query shows no bar unless asked; asked, it ends done with every phase", async () => {
    const events = installKernel();
    const lab = await room(400);
    await cleanRoomQuery(lab, req);
    expect(events).toHaveLength(0);
    await cleanRoomQuery(lab, { ...req, progress: true });
    expect(new Set(events.map((e) => e.id)).size).toBe(1);
    expect(events[0]!.op).toBe("show");
    const last = events.at(-1)!.payload as { state: string; done: number; total: number; phases: { name: string }[]; rngMode: string };
    expect(last).toMatchObject({ kind: "progress", state: "done", task: "query (engine)", rngMode: "seeded" });
    expect(last.done).toBe(last.total);
    expect(last.phases.map((p) => p.name)).toEqual(QUERY_PHASES.map((p) => QUERY_PHASE_TEXT[p]));
    lab.close();
  });

  it("a refused query's bar says failed where it stopped, and nothing is charged", async () => {
    const events = installKernel();
    const lab = await room(400);
    const before = spent(lab);
    await expect(cleanRoomQuery(lab, { ...req, purpose: "marketing", progress: true })).rejects.toMatchObject({
      code: "GRANT_INVALID",
    });
    const last = events.at(-1)!.payload;
    expect(last).toMatchObject({ state: "failed", phase: QUERY_PHASE_TEXT.check });
    expect(spent(lab)).toEqual(before);
    lab.close();
  });

  it(`shows the bar by default once the tables hold ${LARGE_QUERY_ROWS.toLocaleString("en-US")} rows`, async () => {
    const lab = await room(LARGE_QUERY_ROWS);
    const events = installKernel();
    await cleanRoomQuery(lab, req);
    expect(events.at(-1)!.payload).toMatchObject({ kind: "progress", state: "done" });
    lab.close();
  }, 60_000);
});
