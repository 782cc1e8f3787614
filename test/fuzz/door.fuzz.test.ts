/**
 * Fuzzing the door (issue 14 "A fuzz suite in npm test"): every public verb gets a valid
 * request with one part replaced by something hostile — wrong types, NaN, ±Infinity, -0,
 * integers past 2^53, huge strings, deep nesting, `__proto__` keys, throwing getters, Proxies
 * (revoked ones too), homoglyph names, class instances, functions — or a hostile first
 * argument. Each call must either succeed or throw a typed CleanRoomError (never a raw
 * TypeError/RangeError), and a refusal at the door (INPUT_INVALID) must leave the room as it
 * was: budget, audit chain, datasets — and for openLab, the directory. Seeded: CI is stable.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fc from "fast-check";
import {
  addParty,
  approveTemplate,
  attestEnclave,
  audit,
  budget,
  cleanRoomQuery,
  datasets,
  declarePurpose,
  generateStudy,
  isCleanRoomError,
  liftRules,
  liftSchemas,
  liftStudy,
  liftTemplate,
  openLab,
  psiMatch,
  pureDp,
  upload,
  type Lab,
} from "../../kernel-lib/src/index.js";

const deep = (n: number): unknown => (n === 0 ? 1 : { d: deep(n - 1) });
const getter = () =>
  Object.defineProperty({}, "x", {
    get: () => {
      throw new Error("getter ran");
    },
    enumerable: true,
  });
const revoked = () => {
  const r = Proxy.revocable({}, {});
  r.revoke();
  return r.proxy;
};
const trap = () =>
  new Proxy(
    { party: "advertiser" },
    {
      get: () => {
        throw new Error("trap ran");
      },
      ownKeys: () => {
        throw new Error("trap ran");
      },
    },
  );
class Thing {
  party = "advertiser";
}

/** Never valid anywhere: the door must refuse these (INPUT_INVALID) wherever they appear. */
const alwaysBad = fc.constantFrom<() => unknown>(
  () => Number.NaN,
  () => Infinity,
  () => -Infinity,
  () => "x".repeat(5000),
  () => deep(40),
  () => JSON.parse('{"__proto__": {"polluted": 1}}'),
  () => ({ constructor: 1 }),
  getter,
  () => new Proxy({}, {}),
  revoked,
  trap,
  () => () => 1,
  () => Symbol("s"),
  () => new Map(),
  () => new Date(0),
  () => new Thing(),
  () => Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`k${i}`, i])),
  () => new Array(20_000).fill(0),
);
/** Maybe valid somewhere: the outcome must still be a result or a typed refusal. */
const maybeBad = fc.oneof(
  fc.constantFrom<unknown>(
    -0,
    2 ** 53 + 2,
    -(2 ** 60),
    10n ** 30n,
    "",
    " ",
    "аdvertiser",
    "ｍeasurement",
    "bo\u200b",
    "measurement\u0000",
    null,
    undefined,
    true,
    [],
    {},
    [1, "a"],
    0.5,
    -1,
  ),
  fc.string({ maxLength: 8 }),
  fc.integer(),
  fc.double(),
);
const hostile = fc.oneof(
  alwaysBad.map((f) => ({ always: true, make: f })),
  maybeBad.map((v) => ({ always: false, make: () => v })),
);

/** Replace (or add) the value at a path of a fresh copy of `base`; "" replaces the whole input. */
function mutate(base: Record<string, unknown>, at: string, value: unknown): unknown {
  if (at === "") return value;
  const copy = structuredClone(base) as Record<string, unknown>;
  const keys = at.split(".");
  let o = copy;
  for (const k of keys.slice(0, -1)) o = (o[k] ??= {}) as Record<string, unknown>;
  o[keys.at(-1)!] = value;
  return copy;
}

function pathsOf(o: Record<string, unknown>, prefix = ""): string[] {
  const out = [""];
  for (const [k, v] of Object.entries(o)) {
    out.push(prefix + k);
    if (v && typeof v === "object" && !Array.isArray(v) && !prefix)
      out.push(...pathsOf(v as Record<string, unknown>, `${k}.`).filter(Boolean));
  }
  out.push(prefix + "unexpected");
  return out;
}

let lab: Lab;
let dir: string;
/** Cheap fingerprint of what a refusal must not change: spent budgets, the audit tip, datasets. */
const state = (l: Lab) => {
  const log = (l as unknown as { purpose?: { audit?: { entries(o: { limit: number }): unknown[] } } }).purpose?.audit;
  const tip = log ? log.entries({ limit: 1 }) : l.audit({ limit: 1 }).verification.entries;
  return JSON.stringify({
    b: l.budget().budgets.map((b) => b.spent),
    a: tip,
    d: ["advertiser", "retailer"].map((p) => l.datasets(p).length),
  });
};
let known: string | null = null; // the room's fingerprint when nothing changed since it was taken
let cases = 0,
  typed = 0,
  doorRefusals = 0,
  sideEffects = 0;

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), "door-fuzz-"));
  lab = openLab({ store: ":memory:", rng: { seed: "fuzz" }, budget: { epsilon: 100 } });
  addParty(lab, { party: "advertiser" });
  addParty(lab, { party: "retailer" });
  const study = generateStudy({ seed: "fuzz", advertiserRows: 300, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 40 });
  const m = await psiMatch(lab, {
    a: { party: "advertiser", rows: study.exposures },
    b: { party: "retailer", rows: study.purchases },
    backend: "noble",
  });
  const s = liftSchemas(),
    r = liftRules(2);
  await upload(lab, {
    party: "advertiser",
    name: "exposures",
    rows: m.joinedA,
    schema: s.exposures,
    purposes: "measurement",
    rule: r.exposures,
  });
  await upload(lab, {
    party: "retailer",
    name: "purchases",
    rows: m.joinedB,
    schema: s.purchases,
    purposes: "measurement",
    rule: r.purchases,
  });
  declarePurpose(lab, { party: "advertiser", analyst: "bo", purpose: "measurement", justification: "fuzz" });
}, 60_000);
afterAll(() => {
  lab.close();
  fs.rmSync(dir, { recursive: true, force: true });
  console.log(
    `door fuzz: ${cases} cases, ${typed} typed refusals (${doorRefusals} at the door), side effects of door refusals: ${sideEffects}`,
  );
});

async function outcome(call: () => unknown): Promise<{ code: string; door: boolean } | "ok"> {
  try {
    await call();
    return "ok";
  } catch (e) {
    if (!isCleanRoomError(e)) throw new Error(`raw ${(e as Error)?.name}: ${(e as Error)?.message}`);
    return { code: e.code, door: e.details.door === true };
  }
}

const t = () => liftTemplate({ advertiser: "advertiser", retailer: "retailer", epsilonPerAggregate: "0.25", threshold: 2 });
type Verb = [string, () => Record<string, unknown>, (l: unknown, input: unknown) => unknown];
const verbs: Verb[] = [
  ["addParty", () => ({ party: "publisher" }), (l, i) => addParty(l as Lab, i as never)],
  [
    "upload",
    () => ({
      party: "advertiser",
      name: "extra",
      rows: [
        {
          join_key: "k-extra",
          group: "test",
          reached: 1,
          impressions: 1,
          first_exposure_day: 0,
          region: "north",
          age_band: "18-24",
          channel: "search",
        },
      ],
      schema: liftSchemas().exposures as never,
      purposes: ["measurement"],
    }),
    (l, i) => upload(l as Lab, i as never),
  ],
  ["datasets", () => ({ party: "advertiser" }), (l, i) => datasets(l as Lab, i as never)],
  [
    "declarePurpose",
    () => ({ party: "advertiser", analyst: "cy", purpose: "measurement", justification: "fuzz" }),
    (l, i) => declarePurpose(l as Lab, i as never),
  ],
  ["approveTemplate", () => ({ template: t() as never, party: "advertiser" }), (l, i) => approveTemplate(l as Lab, i as never)],
  [
    "cleanRoomQuery",
    () => ({ template: t() as never, params: { startDay: 0, endDay: 27 }, party: "advertiser", analyst: "bo", purpose: "measurement" }),
    (l, i) => cleanRoomQuery(l as Lab, i as never),
  ],
  [
    "liftStudy",
    () => ({
      template: t() as never,
      params: { startDay: 0, endDay: 27 },
      party: "advertiser",
      analyst: "bo",
      purpose: "measurement",
      threshold: 1,
      groundTruth: { lift: 0.1 },
    }),
    (l, i) => liftStudy(l as Lab, i as never),
  ],
  [
    "budget",
    () => ({ queries: [{ name: "q", cost: pureDp("0.5") as never }], target: { accuracy: 10, confidence: 0.95 } }),
    (l, i) => budget(l as Lab, i as never),
  ],
  ["audit", () => ({ limit: 5 }), (l, i) => audit(l as Lab, i as never)],
  [
    "attestEnclave",
    () => ({ purpose: "measurement", tamper: "none", datasets: ["advertiser/exposures"] }),
    (l, i) => attestEnclave(l as Lab, i as never),
  ],
  [
    "psiMatch",
    () => ({
      a: { party: "advertiser", rows: ["a@example.com", "b@example.com"] },
      b: { party: "retailer", rows: ["a@example.com"] },
      backend: "noble",
      mode: "cardinality",
    }),
    (l, i) => psiMatch(l as Lab, i as never),
  ],
];

describe("door fuzz: every verb, hostile input → a result or a typed refusal; door refusals change nothing", () => {
  for (const [name, base, call] of verbs)
    it(
      name,
      async () => {
        const paths = pathsOf(base());
        await fc.assert(
          fc.asyncProperty(fc.nat(paths.length - 1), hostile, fc.boolean(), async (p, h, hitLab) => {
            cases++;
            const before = known ?? state(lab);
            known = null;
            const input = hitLab ? base() : mutate(base(), paths[p]!, h.make());
            const target = hitLab ? h.make() : lab;
            const r = await outcome(() => call(target, input));
            if (r === "ok") {
              expect(hitLab || !h.always, `${name}: accepted a value the door must refuse at "${paths[p]}"`).toBe(true);
              return;
            }
            typed++;
            if (h.always || hitLab) expect(r, `${name} at "${paths[p]}"`).toEqual({ code: "INPUT_INVALID", door: true });
            if (r.door) {
              doorRefusals++;
              known = state(lab);
              if (known !== before) sideEffects++;
              expect(known, `${name}: a door refusal changed the room`).toBe(before);
            }
          }),
          { seed: 1414, numRuns: 250 },
        );
      },
      120_000,
    );

  it("openLab: a refused open leaves nothing on disk", async () => {
    const base = { store: path.join(dir, "room.db"), rng: { seed: "f" }, budget: { epsilon: 1, refresh: "none" }, engine: "arquero" };
    const paths = pathsOf(base).filter((p) => p !== "store");
    await fc.assert(
      fc.asyncProperty(fc.nat(paths.length - 1), hostile, async (p, h) => {
        cases++;
        const r = await outcome(() => {
          const l = openLab(mutate(base, paths[p]!, h.make()) as never);
          l.close();
        });
        if (r !== "ok") {
          typed++;
          if (h.always) expect(r).toEqual({ code: "INPUT_INVALID", door: true });
          expect(fs.readdirSync(dir), `openLab left files after ${r.code}`).toEqual([]);
        }
        for (const f of fs.readdirSync(dir)) fs.rmSync(path.join(dir, f), { force: true });
      }),
      { seed: 1415, numRuns: 300 },
    );
  }, 120_000);
});
