/**
 * The seed's misconception: "the data is in a hardware vault, so the results are private."
 *
 * An attested enclave guarantees *which code* sees the data, not *what the output reveals*.
 * This demonstration runs the same differencing attack (ADH's 400 → 401 example, reference
 * §7.1) against three genuinely attested enclaves that differ only in their measured release
 * config:
 *   exact       the enclave faithfully returns exact counts: converters(north) −
 *               converters(north, excluding the one platinum customer) = her conversion;
 *   threshold   cohorts under k are suppressed — both cohorts are large, the attack still works;
 *   dp          discrete Laplace noise (dp/mechanisms.ts) + threshold — the difference is noise.
 * For each mode it measures the attacker's success rate over `trials` rounds; each round picks
 * one of two neighbouring worlds (identical but for the target's conversion) by a fair coin
 * and the attacker gets one query pair, so "private" is a number, not a claim. Repeated
 * rounds against the same data are what a privacy ledger caps (dp/ledger.ts); this demo
 * does not charge a budget.
 */
import { invalid } from "../errors.js";
import { rngStamp, type Rng, type RngStamp } from "../rng.js";
import { SimulatedHardwareRoot } from "../enclave/enclave.js";
import { KeyReleaseService } from "../enclave/keyRelease.js";
import { allowImages } from "../enclave/verifier.js";
import { attestAndRelease } from "../enclave/attestedRun.js";
import { DEMO_ENGINE, DEMO_PURPOSE, DEMO_TEMPLATE_HASH, approvedWorkload, demoPeople, peopleCsv } from "./enclave-demo-workload.js";
import type { JsonValue } from "../enclave/measurement.js";
import { ratFrom, ratToNumber } from "../dp/rational.js";

export interface DifferencingMode {
  mode: "exact" | "threshold" | "dp";
  config: { [k: string]: JsonValue };
  imageSha384: string;
  /** One worked example: the two released answers and the attacker's inference. */
  example: { cohort: JsonValue; cohortMinusTarget: JsonValue; inferredConverted: 0 | 1 | null; truth: 0 | 1 };
  /** Fraction of worlds in which the attacker guessed the target's conversion correctly. */
  attackSuccessRate: number;
  trials: number;
  /** DP only: ε of the converters pair (sensitivity 1 per count, scale s ⇒ 2/s) and the
   * best success any attacker can reach against ε-DP on a fair coin, e^ε / (1 + e^ε). */
  dpBound?: { epsilonPair: number; maxSuccess: number };
  verdict: string;
}

export interface DifferencingReport {
  kind: "enclaveDifferencing";
  question: string;
  attacker: string;
  modes: DifferencingMode[];
  lesson: string;
  rngStamp: RngStamp;
}

type Released = { suppressed: boolean; converters: number | null };

/**
 * Run the differencing attack against exact / threshold / DP enclaves.
 *
 * @example
 * const r = demoDifferencingAttack(seededRng("diff"), { people: 400, trials: 40 })
 * r.modes.map((m) => [m.mode, m.attackSuccessRate]) // exact 1, threshold 1, dp ≈ 0.6
 */
export function demoDifferencingAttack(
  rng: Rng,
  opts: { people?: number; trials?: number; minCohort?: number; scale?: string } = {},
): DifferencingReport {
  const n = opts.people ?? 400;
  const trials = opts.trials ?? 40;
  const minCohort = opts.minCohort ?? 20;
  const scale = opts.scale ?? "2";
  if (!Number.isSafeInteger(n) || n < 40 || n > 100_000) invalid("opts.people", "integer in [40, 100000]", n);
  if (!Number.isSafeInteger(trials) || trials < 2 || trials > 10_000) invalid("opts.trials", "integer in [2, 10000]", trials);
  if (!Number.isSafeInteger(minCohort) || minCohort < 1) invalid("opts.minCohort", "positive integer", minCohort);
  const scaleNum = ratToNumber(ratFrom(scale, "opts.scale"));
  if (!(scaleNum > 0)) invalid("opts.scale", 'positive rational, e.g. "2"', scale);
  const configs: DifferencingMode["config"][] = [
    { release: "exact" },
    { release: "threshold", minCohort },
    { release: "dp", minCohort, scale },
  ];
  const root = SimulatedHardwareRoot.create("differencing-lab", rng);
  const modes: DifferencingMode[] = [];
  for (const config of configs) {
    const mode = config.release as DifferencingMode["mode"];
    // Two neighbouring worlds, identical except for the target's conversion (the DP setting).
    // Each owner protects its data, an attested enclave obtains both keys through the real
    // attest → verify → release path, then the analyst asks the two approved queries.
    const people0 = demoPeople(n, 0, rng.fork(`world/${mode}`));
    const people1 = people0.map((p) => (p.id === "target" ? { ...p, converted: 1 as const } : p));
    const enclave = root.launch(
      { engine: DEMO_ENGINE, approvedTemplateHashes: [DEMO_TEMPLATE_HASH], config, workload: approvedWorkload },
      rng,
    );
    const imageSha384 = enclave.measurement.imageSha384;
    const kms = new KeyReleaseService({ owner: "retailer", pinnedRootPublicKey: root.publicKeyHex });
    const policy = { allowedMeasurements: allowImages([imageSha384]), requiredPurpose: DEMO_PURPOSE };
    const worlds = [
      kms.protectDataset("world-0", peopleCsv(people0), policy, rng),
      kms.protectDataset("world-1", peopleCsv(people1), policy, rng),
    ] as const;
    attestAndRelease({ enclave, purpose: DEMO_PURPOSE, inputs: worlds.map((w, i) => ({ input: `w${i}`, owner: kms, encrypted: w })) }, rng);
    let correct = 0;
    let example: DifferencingMode["example"] | null = null;
    for (let t = 0; t < trials; t++) {
      const truth: 0 | 1 = rng.int(2) === 0 ? 0 : 1;
      const ask = (params: JsonValue) =>
        enclave.run({ datasets: { people: worlds[truth] }, templateHash: DEMO_TEMPLATE_HASH, params, purpose: DEMO_PURPOSE })
          .output as Released;
      const a = ask({ region: "north" });
      const b = ask({ region: "north", excludeTier: "platinum" });
      let guess: 0 | 1 | null = null;
      if (!a.suppressed && !b.suppressed && a.converters !== null && b.converters !== null)
        guess = a.converters - b.converters >= 1 ? 1 : 0;
      // A suppressed answer leaves the attacker with a coin flip.
      const finalGuess = guess ?? (rng.int(2) === 0 ? 0 : 1);
      if (finalGuess === truth) correct++;
      if (example === null)
        example = { cohort: a as unknown as JsonValue, cohortMinusTarget: b as unknown as JsonValue, inferredConverted: guess, truth };
    }
    enclave.terminate();
    const rate = correct / trials;
    const verdict =
      mode === "exact"
        ? "exact counts from an attested enclave reveal the target's attribute: attestation protects the data in use, not the output"
        : mode === "threshold"
          ? "both cohorts are above the threshold, so nothing is suppressed and the difference still reveals her"
          : `noise of scale ${scale} on each count hides one person's contribution; repeated queries are capped by the privacy budget`;
    const m: DifferencingMode = { mode, config, imageSha384, example: example!, attackSuccessRate: rate, trials, verdict };
    if (mode === "dp") {
      const eps = 2 / scaleNum;
      m.dpBound = { epsilonPair: eps, maxSuccess: Math.exp(eps) / (1 + Math.exp(eps)) };
    }
    modes.push(m);
  }
  return {
    kind: "enclaveDifferencing",
    question: "did the one platinum customer in the north convert?",
    attacker: "knows she is the only platinum customer in the north; asks converters(north) and converters(north, tier ≠ platinum)",
    modes,
    lesson:
      "a TEE decides who may compute on the data; thresholds and differential privacy decide what the result may reveal — both are needed",
    rngStamp: rngStamp(rng),
  };
}
