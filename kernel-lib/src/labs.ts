/**
 * @cleanroom-lab/kernel/labs — the second entry point: teaching labs, attack simulations and
 * the lower-level pieces the course notebooks take apart (normalisation, crosswalks, the raw
 * PSI run, the encrypted channel, samplers, planners, the enclave demos). Re-exports only.
 *
 * Everything here is for learning how the layers work and how they break; a notebook that
 * only runs a study needs nothing beyond `@cleanroom-lab/kernel`. Attack simulations succeed
 * against the naive variants by design (each has a positive control in the tests).
 *
 * @example
 * import { dictionaryAttack, purposeTable, previewTemplate } from "@cleanroom-lab/kernel/labs";
 */

// ---------------------------------------------------------------- teaching labs
export * from "./labs/purpose-lab.js";
export { proveExport, type ExportProof, type ProofDataset } from "./labs/export-proof.js";
export { importAwsDesign } from "./verbs/export.js";
export type { ImportedDesign } from "./export/import-aws.js";
export { TARGET_NAMES } from "./export/payload.js";
export { SHIMS as EXPORT_SHIMS } from "./export/shims.js";
export { previewTemplate, noiseHalfWidth, budgetSpent, sameCost, type TemplatePreview, type PreviewNoise } from "./cleanroom/design.js";
export {
  attackPopulation,
  cohortTemplate,
  trackers,
  exactCohort,
  dpGuessBound,
  trackerAccuracy,
  refreshAveraging,
  reconstructionAttack,
  adhImpressions,
  LAB_REGIONS,
  type LabCustomer,
  type CohortParams,
  type AccuracyPoint,
  type RefreshMonth,
  type ReconstructionPoint,
} from "./labs/attacks-lab.js";
export { lineChart, type LineChart, type ChartPoint } from "./labs/lab-chart.js";
// "no one sees the rows" (issue 17): the lift by cryptography instead of a trusted operator
export { secretSharedLift, registerForMpc, type SecretSharedLiftInput, type MpcExtra } from "./session/mpc-mode.js";
export { runSharedLift, runPjc, type SharedLiftRun, type PjcRun } from "./mpc/run.js";
export { toLiftAggregates } from "./cleanroom/templates/lift.js";

// ---------------------------------------------------------------- ML training on user data (DP-SGD in the enclave)
// (here, not in the core: the core entry point is held to 32 names by test/session/surface.test.ts)
export { trainModel, trainingParts, epsilonCurve, type TrainModelInput, type TrainingResult } from "./verbs/ml.js";
export { dpSgdEpsilon, noiseForEpsilon, computeRdp, rdpToEpsilon, sgmCost, DEFAULT_ORDERS } from "./dp/rdp.js";
export { propensityStudy, PROPENSITY_FEATURES, PROPENSITY_TRUTH } from "./datasets/propensity.js";
export { membershipInferenceLab, dpAdvantageBound, MIA_DEFAULTS, type MiaReport } from "./labs/membership-inference.js";

// ---------------------------------------------------------------- internal analytics: purpose per team, k-anonymity, DP on top
export {
  internalAnalyticsLab,
  internalPopulation,
  kAnonymise,
  qiClass,
  classCounts,
  CONDITIONS,
  type InternalAnalyticsReport,
} from "./labs/internal-analytics.js";

// ---------------------------------------------------------------- attack simulations and enclave demos
export {
  sha256Email,
  emailDictionary,
  dictionaryAttack,
  naivePsiBlind,
  realPsiBlind,
  knownPairAttack,
  cardinalityMembershipAttack,
} from "./labs/identity-attacks.js";
export { attestationLab, demoAttestationRefusals, demoOperatorVsEnclaveView } from "./labs/enclave-demos.js";
export { demoDifferencingAttack } from "./labs/enclave-differencing.js";
export {
  approvedWorkload as demoCohortWorkload,
  demoPeople,
  peopleCsv,
  DEMO_PURPOSE,
  DEMO_TEMPLATE_HASH,
} from "./labs/enclave-demo-workload.js";
export { enclaveRoomViews, operatorHoldings } from "./verbs/enclave.js";
export { measureEnclaveCost, type EnclaveCostReport } from "./enclave/cost.js";
export type { EnclaveRoomViews, EnclaveTamper } from "./enclave-room.js";

// ---------------------------------------------------------------- healthcare joint research (notebook 11)
export { studyProtocol, marginRecoveryAttack, REIDENTIFICATION_USE, type StudyProtocol, type RecoveredCell } from "./labs/healthcare.js";
export { cohortTemplates, cohortSchemas, cohortRules } from "./cleanroom/templates/cohort.js";
export { generateHospitals, DIAGNOSES, AGE_BANDS, type HospitalStudy, type CohortCell } from "./datasets/hospitals.js";
export { complementarySuppression, recoverSuppressed, type PublishedTable } from "./cleanroom/suppression.js";

// ---------------------------------------------------------------- lower-level pieces
export { makeRng, rngStamp } from "./rng.js";
export { streamStudy } from "./datasets/study.js";
export type { StudyParams } from "./datasets/params.js";
export { writeStudyFiles, readStudyFiles } from "./datasets/files.js";
export { oracleLiftAggregates } from "./studies/oracle.js";
export { computeLift, computeGroupedLift, type LiftResult } from "./studies/lift.js";
export { templateCost } from "./cleanroom/template.js";
export { normalizeEmail, normalizePhone, normalizeColumn } from "./identity/normalize.js";
export { generateIdentityGraph, IdentityProvider, crosswalk, CrosswalkJoiner } from "./identity/crosswalk.js";
export {
  pairwiseWorld,
  pairwiseCrosswalk,
  centralGraphOf,
  breachCentral,
  breachPairwise,
  crossPairLinkingAttack,
  centralLinkingAttack,
  type PairwiseWorld,
  type PairwiseTable,
  type PairwiseCrosswalk,
  type BreachReport,
  type LinkingAttackResult,
} from "./identity/pairwise.js";
export { runPsi, attachJoinKeys, type RunPsiOptions, type PsiRunResult } from "./identity/run-psi.js";
export { randomScalar } from "./identity/psi-backend.js";
export { SecureChannel } from "./crypto/channel.js";
export { x25519KeyPair } from "./crypto/primitives.js";
export { costText } from "./dp/accountant.js";
export { epsilonForAccuracy, whatRemainingBuys, compareAccountants } from "./dp/planner.js";
export { sampleDiscreteLaplace, sampleDiscreteGaussian, laplaceScaleFor } from "./dp/mechanisms.js";
export { toMimeBundle } from "./display/bundle.js";
export { CLEANROOM_MIME } from "./display/schema.js";
export { psiParty, PSI_AUTH_PROTOCOL, type PsiPeerAuth } from "./identity/psi-party.js";
export { listen, connect } from "./transport/socket.js";
export { linkedPair, type Transport, type Envelope } from "./transport/transport.js";
// the clean-room server in this process (scripts/room-server.mjs runs it as its own)
export { RoomServer, type RoomServerOptions, type ServerInfo } from "./server/server.js";
export { ROOM_PROTOCOL, collaborationHash, type CollaborationDef } from "./server/protocol.js";
export { waitForRoom } from "./server/client.js";
export { PAIR_SEATS, DEFAULT_INVITATION_TTL_MS, type Invitation } from "./server/invitations.js";
export { bulletin, type Bulletin } from "./server/bulletin.js";
