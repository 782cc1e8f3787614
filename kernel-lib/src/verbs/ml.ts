/**
 * `trainModel`: a propensity model (logistic regression) trained with DP-SGD inside the room's
 * simulated attested enclave on the inner join of the owners' tables; its privacy cost
 * computed by the RDP accountant of the subsampled Gaussian (dp/rdp.ts) and charged to the
 * room's ledger in the ledger's own units (`sgmCost`: (ε, δ) for an approximate-DP room, exact
 * ρ = Σ steps/(2σ²) for a zCDP room, refused for a pure-ε room).
 *
 * Order of events (each refusal leaves nothing behind — no charge, no model):
 *   door (shape) → owners validate their own rows (columns, types, labels; names only in errors)
 *   → purpose (each owner's allowed purposes) → cost from the spec in the room's units
 *   → enclave attestation + each owner's key release (audited, refusal = no charge)
 *   → atomic charge + audit entry → training inside → model + noisy metrics out.
 *
 * Threat model: see ml/train-enclave.ts. What leaves: the weights (on publicly scaled features),
 * the per-epoch histograms of held-out scores × label with Gaussian noise (the loss curve,
 * accuracy, AUC and calibration are post-processing of those), and public parameters. The
 * ε-over-steps curve is computed outside from public parameters only.
 */
import { z } from "zod";
import { CleanRoomError, invalid, isCleanRoomError } from "../errors.js";
import type { Lab } from "../session.js";
import { internals } from "../session/lab.js";
import { datasetFingerprint } from "../dp/budget.js";
import { costText } from "../dp/accountant.js";
import { ratFrom, ratToNumber } from "../dp/rational.js";
import { DEFAULT_ORDERS, composedRdp, rdpToEpsilon, sgmCost, type SgmPart } from "../dp/rdp.js";
import { SimulatedHardwareRoot } from "../enclave/enclave.js";
import { isWithin } from "../purpose/taxonomy.js";
import { hex } from "../crypto/primitives.js";
import { metricsOf, stepsPerEpoch, type DpSgdSpec, type FeatureSpec } from "../ml/dpsgd.js";
import { attestTraining, runTraining, type TrainingParams } from "../ml/train-enclave.js";
import { withTrainingView, type TrainingResult } from "../display/training-view.js";
import { datasetName, parseAtDoor, partyArg, purposeName, requireLab } from "./door.js";

export type { TrainingResult } from "../display/training-view.js";

const MAX_OWNERS = 4;
const finite = z.number().refine(Number.isFinite, "a finite number");

const TrainInput = z
  .strictObject({
    /** The data scientist's party (its budget is charged). */
    party: partyArg,
    purpose: purposeName,
    owners: z
      .array(
        z.strictObject({
          party: partyArg,
          rows: z.array(z.record(z.string(), z.unknown())).min(1),
          /** Columns this owner contributes besides the join key. */
          columns: z.array(datasetName).min(1).max(64),
          /** Purposes this owner allows its rows to be used for. */
          purposes: z.array(purposeName).min(1).max(16),
        }),
      )
      .min(1)
      .max(MAX_OWNERS),
    joinKey: datasetName,
    features: z
      .array(z.strictObject({ name: datasetName, lo: finite, hi: finite }))
      .min(1)
      .max(64),
    label: datasetName,
    epochs: z.number().int().min(1).max(200),
    sampleRate: z.number().gt(0).max(1),
    noiseMultiplier: z.number().min(0.3).max(1000),
    clipNorm: z.number().gt(0).max(1000),
    learningRate: z.number().gt(0).max(100),
    holdoutFraction: z.number().min(0.05).max(0.5).optional(),
    /** σ of the per-epoch metrics histogram (counts). Default 10. */
    metricsNoise: z.number().min(1).max(10_000).optional(),
    bins: z.number().int().min(4).max(50).optional(),
    /** The δ this run spends in an (ε, δ) room (default: a tenth of the room's δ, so one run cannot exhaust it). */
    delta: z.number().gt(0).max(0.5).optional(),
    /** Teaching: the operator launches a modified workload ("code") or a debug enclave — owners must refuse. */
    tamper: z.enum(["none", "code", "debug"]).optional(),
  })
  .superRefine((o, ctx) => {
    o.features.forEach((f, i) => {
      if (!(f.hi > f.lo)) ctx.addIssue({ code: "custom", path: ["features", i, "hi"], message: "hi > lo" });
    });
  });

export type TrainModelInput = z.input<typeof TrainInput>;

/** The privacy parts of a run: DP-SGD steps, then one Gaussian histogram per epoch. */
export function trainingParts(spec: Pick<DpSgdSpec, "epochs" | "sampleRate" | "noiseMultiplier" | "metricsNoise">): SgmPart[] {
  return [
    { sampleRate: spec.sampleRate, noiseMultiplier: spec.noiseMultiplier, steps: spec.epochs * stepsPerEpoch(spec.sampleRate) },
    { sampleRate: 1, noiseMultiplier: spec.metricsNoise, steps: spec.epochs },
  ];
}

/** ε after each epoch (public parameters only). */
export function epsilonCurve(spec: DpSgdSpec, delta: number): number[] {
  const out: number[] = [];
  for (let e = 1; e <= spec.epochs; e++)
    out.push(rdpToEpsilon(DEFAULT_ORDERS, composedRdp(trainingParts({ ...spec, epochs: e })), delta).epsilon);
  return out;
}

function ownerChecks(
  o: { party: string; rows: Record<string, unknown>[]; columns: string[] },
  joinKey: string,
  label: string,
  i: number,
): string {
  const at = `input.owners[${i}]`;
  const seen = new Set<string>();
  o.rows.forEach((r, j) => {
    const k = r[joinKey];
    if (typeof k !== "string" && typeof k !== "number")
      invalid(`${at}.rows[${j}].${joinKey}`, "a string or number join key", typeof k, "DATASET_INVALID");
    if (seen.has(String(k)))
      invalid(`${at}.rows[${j}].${joinKey}`, "a join key unique within this owner", "a repeated key", "DATASET_INVALID");
    seen.add(String(k));
    for (const c of o.columns) {
      const v = r[c];
      if (c === label) {
        if (v !== 0 && v !== 1 && v !== true && v !== false)
          invalid(`${at}.rows[${j}].${c}`, "a 0/1 or boolean label", typeof v, "DATASET_INVALID");
      } else if (typeof v !== "number" || !Number.isFinite(v))
        invalid(`${at}.rows[${j}].${c}`, "a finite number", typeof v, "DATASET_INVALID");
    }
  });
  // content fingerprint of what this owner contributes (its dataset budget)
  const cols = [joinKey, ...[...o.columns].sort()];
  return datasetFingerprint(o.rows.map((r) => JSON.stringify(cols.map((c) => r[c] ?? null))));
}

/**
 * Train a logistic-regression propensity model with DP-SGD inside the room's attested enclave.
 *
 * @example
 * const m = trainModel(lab, { party: "advertiser", purpose: "measurement", joinKey: "id", label: "converted",
 *   owners: [{ party: "advertiser", rows: ads, columns: ["impressions", "age"], purposes: ["measurement"] },
 *            { party: "retailer", rows: sales, columns: ["converted"], purposes: ["measurement"] }],
 *   features: [{ name: "impressions", lo: 0, hi: 20 }, { name: "age", lo: 18, hi: 90 }],
 *   epochs: 5, sampleRate: 0.01, noiseMultiplier: 1.1, clipNorm: 1, learningRate: 2 })
 * m.privacy.charged   // "ε = 1.23…, δ = 0.00001"
 */
export function trainModel(lab: Lab, input: TrainModelInput): TrainingResult {
  const l = requireLab(lab, "trainModel");
  const paths = new Set(Array.from({ length: MAX_OWNERS }, (_, i) => `input.owners[${i}].rows`));
  const o = parseAtDoor(TrainInput, input, "input", paths);
  const { room } = internals(l);
  const party = room.requireParty(o.party, "input.party");
  const purpose = room.purpose.taxonomy.resolveUse(o.purpose, "input.purpose");
  // columns: every feature and the label from exactly one owner
  const where = new Map<string, number>();
  o.owners.forEach((w, i) => {
    room.requireParty(w.party, `input.owners[${i}].party`);
    if (o.owners.findIndex((x) => x.party === w.party) !== i) invalid(`input.owners[${i}].party`, "each owner once", w.party);
    for (const c of w.columns) {
      if (c === o.joinKey) invalid(`input.owners[${i}].columns`, `columns other than the join key ${o.joinKey}`, c);
      if (where.has(c)) invalid(`input.owners[${i}].columns`, "a column contributed by one owner only", c);
      where.set(c, i);
    }
  });
  for (const f of o.features)
    if (!where.has(f.name))
      invalid("input.features", `columns the owners contribute (${[...where.keys()].join(", ")})`, f.name, "NOT_FOUND");
  if (!where.has(o.label)) invalid("input.label", `a column the owners contribute (${[...where.keys()].join(", ")})`, o.label, "NOT_FOUND");
  if (o.features.some((f) => f.name === o.label)) invalid("input.features", "features other than the label", o.label);
  // each owner validates its own rows (before anything happens) and fingerprints them
  const fingerprints = o.owners.map((w, i) => ownerChecks(w, o.joinKey, o.label, i));
  // purpose: every owner must allow it
  o.owners.forEach((w, i) => {
    const allowed = w.purposes.map((p, j) => room.purpose.taxonomy.resolveUse(p, `input.owners[${i}].purposes[${j}]`));
    if (!allowed.some((a) => isWithin(purpose, a)))
      throw new CleanRoomError(
        "PURPOSE_DENIED",
        `"input.purpose" ${purpose} is not among the purposes ${w.party} allows (${allowed.join(", ")})`,
        {
          field: "input.purpose",
        },
      );
  });
  const spec: DpSgdSpec = {
    features: o.features as FeatureSpec[],
    label: o.label,
    epochs: o.epochs,
    sampleRate: o.sampleRate,
    noiseMultiplier: o.noiseMultiplier,
    clipNorm: o.clipNorm,
    learningRate: o.learningRate,
    holdoutFraction: o.holdoutFraction ?? 0.2,
    metricsNoise: o.metricsNoise ?? 10,
    bins: o.bins ?? 10,
  };
  // cost in the room's units, known before anything runs
  const units = room.budgetUnits();
  if (!units)
    throw new CleanRoomError(
      "BUDGET_NOT_FOUND",
      "DP-SGD needs a privacy budget: open the lab with { budget: { epsilon, delta } } or { rho }",
      {
        field: "budget",
      },
    );
  const parts = trainingParts(spec);
  if (o.delta !== undefined && units.accountant !== "approxDp")
    invalid(
      "input.delta",
      "no delta: this room accounts " + (units.accountant === "zCdp" ? "zCDP ρ" : "pure ε"),
      "a delta",
      "DP_PARAM_INVALID",
    );
  const delta = units.delta !== null ? (o.delta ?? ratToNumber(ratFrom(units.delta)) / 10) : 1e-6;
  const cost = sgmCost(units.accountant, parts, units.delta !== null ? String(delta) : undefined);
  const params: TrainingParams = {
    spec,
    joinKey: o.joinKey,
    owners: o.owners.map((w) => ({ party: w.party, columns: [...w.columns] })),
  };
  const rng = room.rng.fork(`train:${hex(room.rng.bytes(8))}`);
  const root = SimulatedHardwareRoot.fromSecretKey(room.roomId, room.enclaveRootKey);
  // attestation + key release BEFORE the charge: a refused enclave costs nothing
  let att: ReturnType<typeof attestTraining>;
  const auditRelease = (outcome: "granted" | "refused", code: string | null) =>
    o.owners.forEach((w) =>
      room.purpose.audit.append({
        action: "keyRelease",
        who: { party: w.party },
        purpose,
        datasets: [`${w.party}/training`],
        outcome,
        errorCode: code as never,
      }),
    );
  try {
    att = attestTraining(root, o.owners, params, purpose, rng, o.tamper ?? "none");
  } catch (e) {
    if (isCleanRoomError(e)) auditRelease("refused", e.code);
    throw e;
  }
  auditRelease("granted", null);
  let charged: { text: string; chargeId: string };
  try {
    charged = room.chargeRelease(cost, party, purpose, fingerprints, att.specHash);
  } catch (e) {
    att.enclave.terminate();
    throw e;
  }
  const out = runTraining(att, params, purpose, rng);
  const eps = epsilonCurve(spec, delta);
  const curve = out.epochs.map((e, i) => {
    const m = metricsOf(e.histogram);
    return { epoch: e.epoch, steps: e.steps, epsilon: eps[i]!, loss: m.logLoss, accuracy: m.accuracy, auc: m.auc };
  });
  const final = metricsOf(out.epochs[out.epochs.length - 1]!.histogram);
  const result: TrainingResult = {
    kind: "dpTraining",
    model: { kind: "logistic", features: spec.features.map((f) => ({ ...f })), weights: out.model.weights, bias: out.model.bias },
    privacy: {
      accountant: "RDP of the Poisson-subsampled Gaussian (Mironov–Talwar–Zhang 2019), improved conversion (Balle et al. 2020)",
      sampleRate: spec.sampleRate,
      noiseMultiplier: spec.noiseMultiplier,
      clipNorm: spec.clipNorm,
      steps: out.steps,
      epochs: spec.epochs,
      metricsNoise: spec.metricsNoise,
      delta,
      epsilon: eps[eps.length - 1]!,
      charged: costText(cost),
      chargeUnits:
        units.accountant === "zCdp"
          ? "ρ = Σ steps/(2σ²), exact (zCDP of the un-amplified Gaussian: conservative, no sampling amplification)"
          : "(ε, δ) from the RDP curve at this run's δ, ε rounded up",
      chargeId: charged.chargeId,
    },
    curve,
    metrics: { accuracy: final.accuracy, auc: final.auc, logLoss: final.logLoss, calibration: final.calibration },
    enclave: { moduleId: att.moduleId, imageSha384: att.imageSha384, owners: o.owners.map((w) => w.party), outputSha384: out.outputSha384 },
    ...out.rngStamp,
  };
  return withTrainingView(result);
}
