/**
 * The lab session's public entry (kept at this path for importers): the code lives in
 * session/ — lab.ts (the Lab), room.ts (its state, the upload road, the one ledger charge),
 * road.ts (the one query road), engine-executor.ts and enclave-mode.ts (the executors),
 * keys.ts (the simulated KMS). `internals(lab)` is deliberately NOT re-exported here.
 */
export { Lab, openLab } from "./session/lab.js";
export {
  OpenLabOptions,
  type Party,
  type Requester,
  type UploadOptions,
  type UploadReceipt,
  type QueryRequest,
  type CleanRoomResult,
} from "./session/types.js";
export type { RefreshPolicy } from "./dp/ledger.js";
