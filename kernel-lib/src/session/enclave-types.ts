/**
 * Plain data types of enclave mode's surface (receipts, attestation, query result). No logic.
 */
import type { RngStamp } from "../rng.js";
import type { AttestationDisplay } from "../enclave/report.js";
import type { CleanRoomResult } from "./types.js";

/** What `enclaveUpload` returns (metadata the operator may see). */
export interface EnclaveUploadReceipt {
  kind: "dataset";
  name: string;
  owner: string;
  rows: number;
  columns: string[];
  fingerprint: string;
  purposes: string[];
  sealed: true;
  mode: "enclave";
  /** Bytes of the owner-sealed blob the operator stores (ciphertext). */
  operatorHoldsBytes: number;
}

export type EnclaveTamper = "none" | "code" | "template" | "debug";

export interface EnclaveAttestOptions {
  purpose: string;
  tamper?: EnclaveTamper;
  debug?: boolean;
  datasets?: string[];
  ownersPin?: "ownImage" | "operatorClaim";
}

/** One owner's decision in an attestation. */
export interface OwnerDecision {
  owner: string;
  dataset: string;
  outcome: "released" | "refused";
  code: string | null;
  check: string | null;
  reason: string | null;
}

/** What `attestEnclave` returns (plain data; renders as the `attestation` payload). */
export interface EnclaveAttestation {
  kind: "enclaveAttestation";
  ok: boolean;
  moduleId: string;
  imageSha384: string;
  /** The image the owners computed on their own and pinned. */
  ownersExpectImageSha384: string;
  /** What the owners pinned: their own computation (default) or the operator's claim. */
  ownersPin: "ownImage" | "operatorClaim";
  /** The lab's hardware root public key (hex) every owner's verifier pins; survives restarts. */
  rootPublicKeyHex: string;
  pcrs: { [i: string]: string };
  debug: boolean;
  purpose: string;
  approvedTemplateHashes: string[];
  owners: OwnerDecision[];
  display: AttestationDisplay;
  rngStamp: RngStamp;
}

/** What an enclave query adds to the plain result. */
export interface EnclaveQueryExtra {
  mode: "enclave";
  attestation: { moduleId: string; imageSha384: string; owners: OwnerDecision[]; outputSha384: string };
}

/** What `enclaveQuery` returns: the plain path's result shape plus the attestation. */
export interface EnclaveQueryResult extends CleanRoomResult, EnclaveQueryExtra {}
