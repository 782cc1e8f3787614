/**
 * @cleanroom-lab/kernel — the notebook surface (the core entry point; re-exports only).
 *
 * One door per verb: every verb is a free function `(lab, { … })` that validates its whole
 * input before touching the room (verbs/door.ts) and returns plain data that renders as a
 * rich output (MIME `application/vnd.cleanroom-lab.v1+json`, HTML and text fallbacks) when it
 * is the last expression of a cell. The party argument is called `party` everywhere. Seeded
 * labs label every result "teaching mode — not private".
 *
 * Teaching labs, attack simulations and lower-level pieces come from the second entry point
 * `@cleanroom-lab/kernel/labs`; enclave internals are not exported.
 *
 * @example
 * import { openLab, addParty, psiMatch, upload, declarePurpose, approveTemplate, cleanRoomQuery, budget } from "@cleanroom-lab/kernel";
 * const lab = openLab({ store: "./study.db", rng: { seed: "week-1" }, budget: { epsilon: 3 } });
 * addParty(lab, { party: "advertiser" });
 */

// ---------------------------------------------------------------- the verbs (one door each)

export { openLab, addParty, upload, datasets, declarePurpose, approveTemplate, type OpenLabInput, type UploadInput } from "./verbs/room.js";
export { cleanRoomQuery, liftStudy, attempt, type QueryInput, type LiftInput, type LiftStudy, type Refusal } from "./verbs/query.js";
export type { QueryOutcome, ThresholdInForce } from "./verbs/query.js";
export { previewQuery, type PreviewQueryInput, type QueryPreview } from "./verbs/preview.js";
// from the lab to production: an approved design for AWS Clean Rooms, BigQuery, Snowflake (importAwsDesign is in ./labs)
export { exportDesign, type ExportDesignInput, type DesignExport } from "./verbs/export.js";
export { budget, audit } from "./verbs/ledger.js";
export { psiMatch, type PsiInput, type PsiMatch, type PsiSide } from "./verbs/psi.js";
// one side of PSI in this kernel, the peer in its own process over 127.0.0.1 (SecureChannel on the socket)
export { psiWithPeer, type PsiWithPeerInput } from "./verbs/psi.js";
export type { PsiPartyResult } from "./identity/psi-party.js";
export { attestEnclave } from "./verbs/enclave.js";
// real parties: a member's identity (Ed25519 key file), joining a room served by scripts/room-server.mjs, signed membership and approvals
export { createIdentity, loadIdentity, type MemberIdentity } from "./server/identity.js";
export { joinRoom } from "./verbs/join.js";
export {
  verifyApprovals,
  createCollaboration,
  acceptCollaboration,
  proposeChange,
  type RemoteRoom,
  type JoinOptions,
  type ApprovalVerification,
} from "./server/client.js";

// ---------------------------------------------------------------- errors, randomness, display

export { CleanRoomError, isCleanRoomError, ERROR_CODES, type ErrorCode } from "./errors.js";
export { seededRng, secureRng, TEACHING_LABEL, type Rng, type RngStamp } from "./rng.js";
export { show, display } from "./display/bundle.js";

// ---------------------------------------------------------------- what a study needs

export { generateStudy, type GeneratedStudy } from "./datasets/study.js";
export { liftTemplate, liftSchemas, liftRules } from "./cleanroom/templates/lift.js";
export { templateHash, THRESHOLD_PRESETS, type TemplateInput, type TemplateLike } from "./cleanroom/template.js";
export { pureDp, approxDp, zCdp } from "./dp/accountant.js";

// ---------------------------------------------------------------- types of what the verbs return

export type { Lab, Party, CleanRoomResult, UploadReceipt } from "./session.js";
export type { EnclaveAttestation, EnclaveQueryResult, EnclaveUploadReceipt } from "./enclave-room.js";
