/**
 * `upload` is asynchronous and works in steps (issue 19 leftovers): the door checks the rows in
 * chunks and the room validates column by column, yielding to the event loop in between, so a
 * large upload shows an in-place progress bar (phases "check rows" → "validate columns" →
 * "seal and store"); every check still precedes the first write. Kernel display is a recorder.
 */
import { afterEach, describe, expect, it } from "vitest";
import { installKernel, uninstallKernel, exposureRows } from "../helpers/kernel-recorder.js";
import { addParty, datasets, liftSchemas, openLab, upload, type Lab } from "../../kernel-lib/src/index.js";
import { CHECK_ROWS_PHASE, LARGE_UPLOAD_ROWS } from "../../kernel-lib/src/verbs/room.js";

afterEach(uninstallKernel);

const rows = exposureRows;
function lab(): Lab {
  const l = openLab({ store: ":memory:", rng: { seed: "upload-progress" } });
  addParty(l, { party: "advertiser" });
  return l;
}
const put = (l: Lab, r: object[], extra: object = {}) =>
  upload(l, { party: "advertiser", name: "exposures", rows: r, schema: liftSchemas().exposures, purposes: ["measurement"], ...extra });

describe("upload in steps", () => {
  const big = rows(LARGE_UPLOAD_ROWS + 10_000);

  it("reports the three phases in order, row counts first, and yields to the event loop between steps", async () => {
    const l = lab();
    const seen: [string, number, number][] = [];
    let ticks = 0;
    let running = true;
    const spin = () => void (running && (ticks++, setImmediate(spin)));
    setImmediate(spin);
    const r = await put(l, big, { progress: (d: number, t: number, p: string) => void seen.push([p, d, t]) });
    running = false;
    expect(r.rows).toBe(big.length);
    const phases = [...new Set(seen.map(([p]) => p))];
    expect(phases).toEqual([CHECK_ROWS_PHASE, "validate columns", "seal and store"]);
    const checks = seen.filter(([p]) => p === CHECK_ROWS_PHASE).map(([, d]) => d);
    expect(checks.at(-1)).toBe(big.length);
    expect(checks).toEqual([...checks].sort((a, b) => a - b));
    const columns = Object.keys(liftSchemas().exposures.columns).length;
    expect(seen.filter(([p]) => p === "validate columns")).toHaveLength(columns + 1);
    // other code ran while the upload worked: at least once per reported step
    expect(ticks).toBeGreaterThanOrEqual(seen.length);
    l.close();
  });

  it("shows an in-place bar by default for a large upload, none for a small one unless asked", async () => {
    const events = installKernel();
    const l = lab();
    await put(l, big);
    const ids = [...new Set(events.map((e) => e.id))];
    expect(ids).toHaveLength(1);
    expect(events[0]!.op).toBe("show");
    expect(events.slice(1).every((e) => e.op === "update")).toBe(true);
    const last = events.at(-1)!.payload;
    expect(last).toMatchObject({
      kind: "progress",
      state: "done",
      task: `upload advertiser/exposures (${big.length.toLocaleString("en-US")} rows)`,
    });
    expect(last.done).toBe(last.total);
    expect(last.rngMode).toBe("seeded"); // a seeded lab labels its bar too
    expect(JSON.stringify(events)).not.toContain("k1"); // counts and phase names only, never a value
    events.length = 0;
    await upload(l, { party: "advertiser", name: "small", rows: rows(100), schema: liftSchemas().exposures, purposes: ["measurement"] });
    expect(events).toHaveLength(0);
    await upload(l, {
      party: "advertiser",
      name: "small2",
      rows: rows(100),
      schema: liftSchemas().exposures,
      purposes: ["measurement"],
      progress: true,
    });
    expect(events.at(-1)!.payload).toMatchObject({ state: "done" });
    events.length = 0;
    await upload(l, {
      party: "advertiser",
      name: "big2",
      rows: big,
      schema: liftSchemas().exposures,
      purposes: ["measurement"],
      progress: false,
    });
    expect(events).toHaveLength(0);
    l.close();
  });

  it("a bad row in a late chunk is refused by path, the bar says failed, and nothing is stored", async () => {
    const events = installKernel();
    const l = lab();
    const bad = rows(LARGE_UPLOAD_ROWS + 10_000);
    bad[45_000] = new Map() as never;
    await expect(put(l, bad)).rejects.toMatchObject({ code: "INPUT_INVALID", details: { field: "input.rows[45000]", door: true } });
    expect(events.at(-1)!.payload).toMatchObject({ state: "failed", phase: CHECK_ROWS_PHASE });
    const typed = rows(LARGE_UPLOAD_ROWS);
    typed[49_000] = { ...typed[49_000]!, impressions: "many" as never };
    await expect(put(l, typed)).rejects.toMatchObject({ code: "DATASET_INVALID" });
    expect(datasets(l, { party: "advertiser" })).toEqual([]);
    l.close();
  });

  it("two uploads of one name racing across the yields: one stored, the other refused", async () => {
    const l = lab();
    const results = await Promise.allSettled([put(l, rows(3000)), put(l, rows(3000))]);
    expect(results.map((r) => r.status).sort()).toEqual(["fulfilled", "rejected"]);
    expect((results.find((r) => r.status === "rejected") as PromiseRejectedResult).reason).toMatchObject({ code: "ALREADY_EXISTS" });
    expect(datasets(l, { party: "advertiser" }).map((d) => d.name)).toEqual(["exposures"]);
    l.close();
  });

  it("a getter on rows, a Proxy or a sparse subclass is refused before any row is read", async () => {
    const l = lab();
    let read = 0;
    const withGetter = { party: "advertiser", name: "x", schema: liftSchemas().exposures, purposes: ["measurement"] };
    Object.defineProperty(withGetter, "rows", { enumerable: true, get: () => (read++, rows(10)) });
    await expect(upload(l, withGetter as never)).rejects.toMatchObject({ details: { field: "input.rows", door: true } });
    await expect(put(l, new Proxy(rows(10), {}))).rejects.toMatchObject({ details: { field: "input.rows", door: true } });
    class Rows extends Array {}
    await expect(put(l, Rows.from(rows(3)))).rejects.toMatchObject({ details: { field: "input.rows", door: true } });
    expect(read).toBe(0);
    expect(datasets(l, { party: "advertiser" })).toEqual([]);
    l.close();
  });
});
