/**
 * Healthcare joint research (issue 15): a hospital and a pathology lab in enclave mode, a
 * study protocol as the purpose, an approval that expires, deny rules for re-identification,
 * and a cohort table published with small-cell and complementary suppression — checked
 * against the generator's ground truth, with the margin-recovery attack as positive control.
 */
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import {
  addParty,
  approveTemplate,
  attempt,
  attestEnclave,
  budget,
  cleanRoomQuery,
  declarePurpose,
  openLab,
  previewQuery,
  psiMatch,
  upload,
  type Lab,
} from "../../kernel-lib/src/index.js";
import { generateHospitals, type HospitalStudy } from "../../kernel-lib/src/datasets/hospitals.js";
import { cohortRules, cohortSchemas, cohortTemplates } from "../../kernel-lib/src/cleanroom/templates/cohort.js";
import { marginRecoveryAttack, studyProtocol, REIDENTIFICATION_USE } from "../../kernel-lib/src/labs/healthcare.js";
import type { QueryResult } from "../../kernel-lib/src/cleanroom/release.js";

let study: HospitalStudy;
let lab: Lab;
let purpose: string;
let joined: { a: Record<string, unknown>[]; b: Record<string, unknown>[] };
const T = cohortTemplates({ hospital: "hospital", lab: "pathlab" });
const ASK = { params: {}, party: "hospital", analyst: "pi", executor: "enclave" as const };

beforeAll(async () => {
  study = generateHospitals({ seed: "hc-test", patients: 2500 });
  lab = openLab({ store: ":memory:", room: "hc-room", rng: { seed: "hc-test" } });
  addParty(lab, { party: "hospital" });
  addParty(lab, { party: "pathlab" });
  purpose = studyProtocol(lab, { protocol: "cr2026_017", title: "HbA1c by diagnosis and age band" }).purpose;
  const m = await psiMatch(lab, {
    a: { party: "hospital", rows: study.admissions },
    b: { party: "pathlab", rows: study.labResults },
    threads: 1,
  });
  expect(m.matchReport.intersectionSize).toBe(study.groundTruth.matched);
  joined = { a: m.joinedA as Record<string, unknown>[], b: m.joinedB as Record<string, unknown>[] };
  const s = cohortSchemas();
  const r = cohortRules(11);
  const cat = ["user.health_and_medical"];
  // the hospital allows this protocol only; the lab allows research in general (the deny rule still binds it)
  await upload(lab, {
    party: "hospital",
    name: "admissions",
    rows: m.joinedA,
    sealing: "enclave",
    schema: s.admissions,
    purposes: [purpose],
    rule: r.admissions,
    categories: cat,
  });
  await upload(lab, {
    party: "pathlab",
    name: "lab_results",
    rows: m.joinedB,
    sealing: "enclave",
    schema: s.labResults,
    purposes: ["research"],
    rule: r.labResults,
    categories: cat,
    // the lab's own tags refuse re-identification: its key release must not rest on the room's rules alone
    columns: { join_key: { deny: [REIDENTIFICATION_USE] } },
  });
  for (const t of Object.values(T))
    for (const p of ["hospital", "pathlab"]) approveTemplate(lab, { template: t, party: p, executor: "enclave" });
  declarePurpose(lab, {
    party: "hospital",
    analyst: "pi",
    purpose,
    justification: "approved study protocol, HbA1c cohort",
    ttlSeconds: 3600,
  });
  const att = await attestEnclave(lab, { purpose });
  expect(att.owners.map((o) => o.outcome)).toEqual(["released", "released"]);
}, 180_000);

afterEach(() => {
  vi.useRealTimers();
});

const keyOf = (row: Record<string, unknown>) => `${row.diagnosis}|${row.age_band}`;

describe("healthcare joint research in the enclave", () => {
  let table: QueryResult;
  it("the published table: released cells and totals equal the ground truth; every small cell is withheld", async () => {
    table = (await cleanRoomQuery(lab, { template: T.table, purpose, ...ASK })) as unknown as QueryResult;
    const truth = new Map(study.groundTruth.cells.map((c) => [`${c.diagnosis}|${c.age_band}`, c]));
    const cells = table.rows.filter((r) => r.diagnosis !== null && r.age_band !== null);
    expect(cells.length).toBeGreaterThan(8);
    for (const row of cells) {
      const c = truth.get(keyOf(row))!;
      expect(row.patients).toBe(c.patients);
      expect(row.patients).toBeGreaterThanOrEqual(11);
      expect(row.mean_hba1c as number).toBeCloseTo(c.meanHba1c!, 9);
    }
    const small = study.groundTruth.cells.filter((c) => c.patients > 0 && c.patients < 11);
    expect(small.length).toBeGreaterThanOrEqual(3); // the generator makes the rule work
    const withheld = new Set(table.suppressed.rows.map((s) => keyOf(s.key)));
    for (const c of small) expect(withheld.has(`${c.diagnosis}|${c.age_band}`)).toBe(true);
    expect(table.suppressed.complementary!.complementaryCells).toBeGreaterThan(0);
    // one reason for all withheld cells (which are small is not told); no empty cell used as a complement here
    expect(new Set(table.suppressed.rows.map((x) => x.reason))).toEqual(new Set(["complementary"]));
    for (const x of table.suppressed.rows) expect(truth.get(keyOf(x.key))!.patients).toBeGreaterThan(0);
    // totals are released and true
    const total = table.rows.find((r) => r.diagnosis === null && r.age_band === null)!;
    expect(total.patients).toBe(study.groundTruth.matched);
    const e11 = table.rows.find((r) => r.diagnosis === "E11" && r.age_band === null)!;
    expect(e11.patients).toBe(study.groundTruth.cells.filter((c) => c.diagnosis === "E11").reduce((a, c) => a + c.patients, 0));
    // no withheld value appears anywhere in the result text (only counts of withheld cells)
    expect(JSON.stringify(table.suppressed)).not.toMatch(/"patients"/);
    expect(table.cost).toBeNull();
  });

  it("margin recovery attack: primary suppression + released totals gives small cells back exactly; complementary suppression gives none", async () => {
    const run = async (t: keyof typeof T) => (await cleanRoomQuery(lab, { template: T[t], purpose, ...ASK })) as unknown as QueryResult;
    const naive = [await run("cellsOnly"), await run("byDiagnosis"), await run("byAgeBand"), await run("overall")];
    const attack = marginRecoveryAttack(naive, { count: "patients", avg: "mean_hba1c" });
    const truth = new Map(study.groundTruth.cells.map((c) => [`${c.diagnosis}|${c.age_band}`, c]));
    expect(attack.recovered.length).toBeGreaterThan(0);
    for (const r of attack.recovered) {
      const c = truth.get(keyOf(r.key))!;
      expect(r.patients).toBe(c.patients);
      expect(r.patients).toBeLessThan(11);
      expect(r.mean!).toBeCloseTo(c.meanHba1c!, 9);
    }
    // defence: the complementary table alone, and together with every other approved release
    expect(marginRecoveryAttack([table], { count: "patients", avg: "mean_hba1c" }).recovered).toEqual([]);
    const combined = marginRecoveryAttack([table, naive[1]!, naive[2]!, naive[3]!], { count: "patients", avg: "mean_hba1c" });
    expect(combined.recovered).toEqual([]);
  });

  it("deny rules: re-identification on health data is refused before any key is released, whatever the lab's tags allow", async () => {
    declarePurpose(lab, { party: "pathlab", analyst: "ra", purpose: REIDENTIFICATION_USE, justification: "link results back to patients" });
    const before = JSON.stringify(budget(lab));
    const refused = (await attempt(() =>
      cleanRoomQuery(lab, {
        template: T.table,
        params: {},
        party: "pathlab",
        analyst: "ra",
        purpose: REIDENTIFICATION_USE,
        executor: "enclave",
      }),
    )) as { code: string; message: string };
    expect(refused.code).toBe("PURPOSE_DENIED");
    expect(refused.message).toMatch(/no_reidentification_of_health_data/);
    expect(JSON.stringify(budget(lab))).toBe(before);
    // the owners' own key release refuses an enclave declaring that purpose too
    const att = await attestEnclave(lab, { purpose: REIDENTIFICATION_USE });
    expect(att.ok).toBe(false);
    expect(att.owners.map((o) => o.outcome)).toEqual(["refused", "refused"]);
    // and a purpose outside the protocol (marketing) is refused by the same rule
    const mkt = (await attempt(() =>
      declarePurpose(lab, { party: "hospital", analyst: "mk", purpose: "marketing", justification: "find patients to advertise to" }),
    )) as { code?: string };
    const q = (await attempt(() =>
      cleanRoomQuery(lab, { template: T.table, params: {}, party: "hospital", analyst: "mk", purpose: "marketing", executor: "enclave" }),
    )) as { code: string };
    expect(mkt.code).toBeUndefined(); // a grant can be declared…
    expect(q.code).toBe("PURPOSE_DENIED"); // …but the deny rule refuses its use on health data
  });

  it("the approval expires: after its time bound the same query is refused (GRANT_EXPIRED) and nothing runs", async () => {
    await attestEnclave(lab, { purpose });
    const ok = (await cleanRoomQuery(lab, { template: T.overall, purpose, ...ASK })) as unknown as QueryResult;
    expect(ok.rows[0]!.patients).toBe(study.groundTruth.matched);
    vi.useFakeTimers({ toFake: ["Date"] });
    vi.setSystemTime(Date.now() + 3601 * 1000);
    const late = (await attempt(() => cleanRoomQuery(lab, { template: T.overall, purpose, ...ASK }))) as { code: string };
    expect(late.code).toBe("GRANT_EXPIRED");
  });

  it("positive control: without its own deny tag the lab releases its key to a re-identification enclave", async () => {
    const lab2 = openLab({ store: ":memory:", room: "hc-room-2", rng: { seed: "hc-test-2" } });
    addParty(lab2, { party: "hospital" });
    addParty(lab2, { party: "pathlab" });
    studyProtocol(lab2, { protocol: "cr2026_017", title: "HbA1c by diagnosis and age band" });
    const s = cohortSchemas();
    const r = cohortRules(11);
    const cat = ["user.health_and_medical"];
    await upload(lab2, {
      party: "hospital",
      name: "admissions",
      rows: joined.a,
      sealing: "enclave",
      schema: s.admissions,
      purposes: [purpose],
      rule: r.admissions,
      categories: cat,
    });
    await upload(lab2, {
      party: "pathlab",
      name: "lab_results",
      rows: joined.b,
      sealing: "enclave",
      schema: s.labResults,
      purposes: ["research"],
      rule: r.labResults,
      categories: cat,
    });
    for (const p of ["hospital", "pathlab"]) approveTemplate(lab2, { template: T.table, party: p, executor: "enclave" });
    const att = await attestEnclave(lab2, { purpose: REIDENTIFICATION_USE });
    // the room's deny rule binds queries, not an owner's key release: the lab's broad tag lets its key go
    expect(att.owners.map((o) => `${o.owner}:${o.outcome}`)).toEqual(["hospital:refused", "pathlab:released"]);
  });

  it("the same table on the plain path with DuckDB is identical (suppression is in the release, not the engine)", async () => {
    const plain = openLab({ store: ":memory:", room: "hc-plain", rng: { seed: "hc-plain" }, engine: "duckdb" });
    addParty(plain, { party: "hospital" });
    addParty(plain, { party: "pathlab" });
    studyProtocol(plain, { protocol: "cr2026_017", title: "HbA1c by diagnosis and age band" });
    const s = cohortSchemas();
    const r = cohortRules(11);
    await upload(plain, {
      party: "hospital",
      name: "admissions",
      rows: joined.a,
      schema: s.admissions,
      purposes: [purpose],
      rule: r.admissions,
    });
    await upload(plain, {
      party: "pathlab",
      name: "lab_results",
      rows: joined.b,
      schema: s.labResults,
      purposes: ["research"],
      rule: r.labResults,
    });
    for (const p of ["hospital", "pathlab"]) approveTemplate(plain, { template: T.table, party: p });
    declarePurpose(plain, { party: "hospital", analyst: "pi", purpose, justification: "approved study protocol, HbA1c cohort" });
    const out = (await cleanRoomQuery(plain, {
      template: T.table,
      params: {},
      party: "hospital",
      analyst: "pi",
      purpose,
    })) as unknown as QueryResult;
    const canon = (rows: readonly Record<string, unknown>[]) =>
      rows
        .map((x) =>
          JSON.stringify(
            Object.keys(x)
              .sort()
              .map((k) => [k, typeof x[k] === "number" ? Number((x[k] as number).toFixed(9)) : x[k]]),
          ),
        )
        .sort();
    expect(canon(out.rows)).toEqual(canon(table.rows));
    expect(out.suppressed.rows.map((x) => `${x.key.diagnosis}|${x.key.age_band}|${x.reason}`).sort()).toEqual(
      table.suppressed.rows.map((x) => `${x.key.diagnosis}|${x.key.age_band}|${x.reason}`).sort(),
    );
  });

  it("previewQuery describes the complementary table before it runs (threshold in force, no cost, approved, no refusal)", () => {
    const p = previewQuery(lab, { template: T.table, params: {}, party: "hospital", executor: "enclave" });
    expect(p.threshold.effective).toBe(11);
    expect(p.cost).toBeNull();
    expect(p.refusal).toBeNull();
    expect(p.approval?.approved).toBe(true);
  });

  it("refuses a complementary template that is not a two-way exact table, naming the field", async () => {
    const bad = { ...T.table, name: "one dimension", groupBy: ["admissions.diagnosis"] };
    const r = (await attempt(() => approveTemplate(lab, { template: bad, party: "hospital", executor: "enclave" }))) as {
      code: string;
      message: string;
    };
    expect(r.code).toBe("TEMPLATE_INVALID");
    expect(r.message).toMatch(/template\.groupBy/);
  });
});
