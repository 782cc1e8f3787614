/**
 * A small, self-contained cohort-count workload and dataset for the enclave demonstrations.
 *
 * The dataset is a CSV of people (`id,region,tier,converted`). The workload counts a cohort
 * and its converters, and releases them according to the *measured* config:
 *   `{ release: "exact" }`                      exact counts (the seed's "hardware vault")
 *   `{ release: "threshold", minCohort: k }`    suppress cohorts smaller than k
 *   `{ release: "dp", minCohort: k, scale: s }` discrete Laplace noise (dp/mechanisms.ts) on
 *                                               both counts, then threshold on the noisy size
 * The release mode is config, so each mode is a different measurement (PCR0/PCR1).
 * Not a clean-room engine: the real path runs approved templates (cleanroom/); this keeps the
 * demonstrations independent of it.
 */
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng } from "../rng.js";
import { utf8 } from "../crypto/primitives.js";
import { sampleDiscreteLaplace } from "../dp/mechanisms.js";
import type { EnclaveWorkload, WorkloadInput } from "../enclave/enclave.js";
import type { JsonValue } from "../enclave/measurement.js";
import { sha384Hex } from "../enclave/measurement.js";

export const DEMO_TEMPLATE = { name: "cohort_conversions", version: 1, params: ["region", "excludeTier?"] };
/** The demo template's hash (SHA-384 of its canonical JSON, truncated to 64 hex). */
export const DEMO_TEMPLATE_HASH = sha384Hex(JSON.stringify(DEMO_TEMPLATE)).slice(0, 64);
export const DEMO_PURPOSE = "marketing.advertising.measurement";
export const DEMO_ENGINE = { name: "cleanroom-lab/demo-cohort", version: "1.0.0" };

export interface DemoPerson {
  id: string;
  region: "north" | "south" | "east" | "west";
  tier: "basic" | "gold" | "platinum";
  converted: 0 | 1;
}

/**
 * People for the demos: `n` random people plus one target, the only "platinum" customer in
 * the north (what an attacker knows about her), whose `converted` is `targetConverted`.
 *
 * @example
 * demoPeople(400, 1, seededRng("demo")).length // 401
 */
export function demoPeople(n: number, targetConverted: 0 | 1, rng: Rng): DemoPerson[] {
  if (!Number.isSafeInteger(n) || n < 1 || n > 1_000_000) invalid("n", "integer in [1, 1000000]", n);
  if (targetConverted !== 0 && targetConverted !== 1) invalid("targetConverted", "0 | 1", targetConverted);
  const regions = ["north", "south", "east", "west"] as const;
  const people: DemoPerson[] = [];
  for (let i = 0; i < n; i++) {
    const region = regions[rng.int(4)]!;
    let tier: DemoPerson["tier"] = rng.int(10) < 7 ? "basic" : rng.int(2) === 0 ? "gold" : "platinum";
    if (region === "north" && tier === "platinum") tier = "gold";
    people.push({ id: `p${String(i).padStart(6, "0")}`, region, tier, converted: rng.int(10) < 3 ? 1 : 0 });
  }
  people.push({ id: "target", region: "north", tier: "platinum", converted: targetConverted });
  return people;
}

/** CSV bytes of people (what the data owner encrypts). */
export function peopleCsv(people: DemoPerson[]): Uint8Array {
  return utf8(["id,region,tier,converted", ...people.map((p) => `${p.id},${p.region},${p.tier},${p.converted}`)].join("\n"));
}

function parsePeople(bytes: Uint8Array): DemoPerson[] {
  const lines = new TextDecoder().decode(bytes).split("\n");
  if (lines[0] !== "id,region,tier,converted")
    throw new CleanRoomError("DATASET_INVALID", `"people" expected header id,region,tier,converted`, { field: "people" });
  return lines.slice(1).map((l) => {
    const [id, region, tier, converted] = l.split(",");
    return { id: id!, region: region as DemoPerson["region"], tier: tier as DemoPerson["tier"], converted: converted === "1" ? 1 : 0 };
  });
}

/**
 * Count a cohort and its converters, echoing `echoRows` raw rows (0 in the approved code; the
 * one-byte-tampered variant echoes rows — which is why a changed measurement must be refused).
 */
export function cohortRelease(w: WorkloadInput, echoRows: number): JsonValue {
  const people = parsePeople(w.inputs["people"] ?? invalid("inputs.people", "decrypted people dataset", undefined));
  const p = (w.params ?? {}) as { region?: string; excludeTier?: string };
  if (typeof p.region !== "string") invalid("params.region", "region string", p.region);
  const cohort = people.filter((x) => x.region === p.region && (p.excludeTier === undefined || x.tier !== p.excludeTier));
  let size = BigInt(cohort.length);
  let converters = BigInt(cohort.filter((x) => x.converted === 1).length);
  const cfg = w.config as { release?: string; minCohort?: number; scale?: string };
  if (cfg.release === "dp") {
    size += sampleDiscreteLaplace(cfg.scale ?? "1", w.rng);
    converters += sampleDiscreteLaplace(cfg.scale ?? "1", w.rng);
  }
  const out: { [k: string]: JsonValue } = { region: p.region, excludeTier: p.excludeTier ?? null, release: cfg.release ?? "exact" };
  if (cfg.release !== "exact" && size < BigInt(cfg.minCohort ?? 0)) {
    out.suppressed = true;
    out.cohortSize = null;
    out.converters = null;
  } else {
    out.suppressed = false;
    out.cohortSize = Number(size);
    out.converters = Number(converters);
  }
  if (echoRows > 0) out.rows = cohort.slice(0, echoRows).map((x) => ({ ...x }));
  return out;
}

/** The approved workload. */
export const approvedWorkload: EnclaveWorkload = (w) => cohortRelease(w, 0);
/** The same workload with ONE byte changed: it now echoes raw rows. */
export const tamperedWorkload: EnclaveWorkload = (w) => cohortRelease(w, 9);
