/**
 * A seeded synthetic joint-research dataset: a hospital's admissions (diagnosis, age band)
 * and a pathology lab's HbA1c results, for overlapping patients, with the ground truth of
 * the cohort table no party can compute alone (patients and mean HbA1c per diagnosis × age
 * band over the patients both hold).
 *
 * Shape (chosen so a real publication rule has work to do): six diagnoses from common to
 * rare (hypertension, type 2 diabetes, asthma, breast cancer, type 1 diabetes, multiple
 * sclerosis) whose age profiles differ, so rare diagnoses in young or old bands give cells
 * of 1–10 patients. HbA1c (mmol/mol, integers in [20, 150]) depends on the diagnosis. E-mails
 * are written each party's own way (case, spaces) so PSI has to normalise them.
 *
 * Synthetic data only; the ICD-10 codes name the diagnoses, nothing is drawn from real patients.
 */
import { invalid } from "../errors.js";
import { seededRng, type Rng } from "../rng.js";

export const DIAGNOSES = ["I10", "E11", "J45", "C50", "E10", "G35"] as const;
export const AGE_BANDS = ["0-17", "18-39", "40-64", "65+"] as const;
export type Diagnosis = (typeof DIAGNOSES)[number];
export type AgeBand = (typeof AGE_BANDS)[number];

/** Prevalence among admissions and age profile (weights over AGE_BANDS) per diagnosis. */
const PROFILE: Record<Diagnosis, { share: number; ages: number[]; hba1c: [number, number]; name: string }> = {
  I10: { share: 0.34, ages: [0.5, 10, 40, 50], hba1c: [39, 5], name: "essential hypertension" },
  E11: { share: 0.28, ages: [0.5, 8, 45, 46], hba1c: [58, 12], name: "type 2 diabetes" },
  J45: { share: 0.17, ages: [30, 35, 25, 10], hba1c: [37, 4], name: "asthma" },
  C50: { share: 0.11, ages: [0, 12, 55, 33], hba1c: [39, 5], name: "breast cancer" },
  E10: { share: 0.07, ages: [25, 40, 25, 10], hba1c: [66, 14], name: "type 1 diabetes" },
  G35: { share: 0.03, ages: [3, 55, 37, 5], hba1c: [37, 4], name: "multiple sclerosis" },
};

export interface Admission {
  email: string;
  diagnosis: Diagnosis;
  age_band: AgeBand;
}
export interface LabResult {
  email: string;
  hba1c: number;
  test_day: number;
}
export interface CohortCell {
  diagnosis: Diagnosis;
  age_band: AgeBand;
  patients: number;
  /** Mean HbA1c of those patients (null for an empty cell). */
  meanHba1c: number | null;
  sumHba1c: number;
}
export interface HospitalStudy {
  admissions: Admission[];
  labResults: LabResult[];
  groundTruth: {
    seed: string;
    admissions: number;
    labResults: number;
    /** Patients both parties hold. */
    matched: number;
    /** Every cell of the diagnosis × age band grid over matched patients (empty cells included). */
    cells: CohortCell[];
    diagnoses: Record<Diagnosis, string>;
  };
}

export interface HospitalParams {
  seed: string;
  /** Hospital admissions (one per patient); default 3000. */
  patients?: number;
  /** Share of the hospital's patients the lab also tested; default 0.7. */
  overlap?: number;
  /** Lab patients the hospital never admitted; default 20 % of `patients`. */
  labOnly?: number;
}

function pick(weights: readonly number[], rng: Rng): number {
  const total = weights.reduce((a, b) => a + b, 0);
  let x = (rng.int(1 << 30) / (1 << 30)) * total;
  for (let i = 0; i < weights.length; i++) if ((x -= weights[i]!) < 0) return i;
  return weights.length - 1;
}
/** A rounded normal draw (Box–Muller on the seeded stream), clamped to [lo, hi]. */
function normalInt(mean: number, sd: number, lo: number, hi: number, rng: Rng): number {
  const u = (rng.int(1 << 30) + 1) / ((1 << 30) + 1);
  const v = rng.int(1 << 30) / (1 << 30);
  const z = Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
  return Math.min(hi, Math.max(lo, Math.round(mean + sd * z)));
}

/**
 * Generate the two parties' files and the ground truth; same seed → same files.
 *
 * @example
 * const { admissions, labResults, groundTruth } = generateHospitals({ seed: "study-1", patients: 3000 });
 * groundTruth.cells.filter((c) => c.patients > 0 && c.patients < 11).length  // small cells to suppress
 */
export function generateHospitals(p: HospitalParams): HospitalStudy {
  if (p === null || typeof p !== "object") invalid("params", "{ seed, patients?, overlap?, labOnly? }", p);
  if (typeof p.seed !== "string" || p.seed.length === 0) invalid("seed", "non-empty string", p.seed);
  const n = p.patients ?? 3000;
  if (!Number.isSafeInteger(n) || n < 10 || n > 1_000_000) invalid("patients", "integer in [10, 1000000]", n);
  const overlap = p.overlap ?? 0.7;
  if (!(typeof overlap === "number" && overlap >= 0 && overlap <= 1)) invalid("overlap", "number in [0, 1]", overlap);
  const labOnly = p.labOnly ?? Math.round(n * 0.2);
  if (!Number.isSafeInteger(labOnly) || labOnly < 0 || labOnly > 1_000_000) invalid("labOnly", "integer in [0, 1000000]", labOnly);
  const rng = seededRng(`hospitals/${p.seed}`);
  const styled = (email: string, r: Rng) => (r.int(3) === 0 ? email.toUpperCase() : r.int(2) === 0 ? ` ${email} ` : email);
  const admissions: Admission[] = [];
  const labResults: LabResult[] = [];
  const grid = new Map<string, { patients: number; sum: number }>();
  for (let i = 0; i < n + labOnly; i++) {
    const email = `patient${i}.${rng.int(1e6).toString(36)}@mail.example`;
    const d =
      DIAGNOSES[
        pick(
          DIAGNOSES.map((x) => PROFILE[x].share),
          rng,
        )
      ]!;
    const age = AGE_BANDS[pick(PROFILE[d].ages, rng)]!;
    const atHospital = i < n;
    const atLab = !atHospital || rng.int(1 << 30) / (1 << 30) < overlap;
    const [mean, sd] = PROFILE[d].hba1c;
    const hba1c = normalInt(mean, sd, 20, 150, rng);
    if (atHospital) admissions.push({ email: styled(email, rng), diagnosis: d, age_band: age });
    if (atLab) labResults.push({ email: styled(email, rng), hba1c, test_day: rng.int(365) });
    if (atHospital && atLab) {
      const k = `${d}|${age}`;
      const c = grid.get(k) ?? { patients: 0, sum: 0 };
      c.patients++;
      c.sum += hba1c;
      grid.set(k, c);
    }
  }
  // each file in its own order
  const order = <T>(rows: T[], r: Rng): T[] => {
    for (let i = rows.length - 1; i > 0; i--) {
      const j = r.int(i + 1);
      [rows[i], rows[j]] = [rows[j]!, rows[i]!];
    }
    return rows;
  };
  order(admissions, rng.fork("admissions-order"));
  order(labResults, rng.fork("lab-order"));
  const cells: CohortCell[] = DIAGNOSES.flatMap((diagnosis) =>
    AGE_BANDS.map((age_band) => {
      const c = grid.get(`${diagnosis}|${age_band}`) ?? { patients: 0, sum: 0 };
      return { diagnosis, age_band, patients: c.patients, sumHba1c: c.sum, meanHba1c: c.patients ? c.sum / c.patients : null };
    }),
  );
  return {
    admissions,
    labResults,
    groundTruth: {
      seed: p.seed,
      admissions: admissions.length,
      labResults: labResults.length,
      matched: cells.reduce((a, c) => a + c.patients, 0),
      cells,
      diagnoses: Object.fromEntries(DIAGNOSES.map((d) => [d, PROFILE[d].name])) as Record<Diagnosis, string>,
    },
  };
}
