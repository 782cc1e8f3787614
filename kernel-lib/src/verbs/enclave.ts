/**
 * Enclave verbs at the door: `attestEnclave` (launch, verify, owners' key release) and the
 * two views of who holds what. Upload and query in enclave mode go through the same doors as
 * plain mode (`upload(lab, { …, sealing: "enclave" })`, `cleanRoomQuery(lab, { …, executor:
 * "enclave" })`); the enclave internals stay inside the package.
 *
 * Threat model: see enclave-room.ts (a simulation: real signatures and key release, memory
 * isolation by language scoping). The door validates the request before an enclave is
 * launched or a key is released.
 */
import { z } from "zod";
import type { Lab } from "../session.js";
import {
  attestEnclaveAsync,
  enclaveDatasetRows,
  enclaveRoomViews as roomViews,
  operatorHoldings as holdings,
  type EnclaveAttestation,
  type EnclaveRoomViews,
  type EnclaveTamper,
} from "../enclave-room.js";
import { parseAtDoor, purposeName, requireLab, requireRoom, splitProgress, type ProgressOption } from "./door.js";
import { RemoteRoom } from "../server/client.js";
import { remoteAttest, type RemoteEnclaveAttestation } from "../server/enclave-owner.js";
import { withMimeBundle } from "../display/bundle.js";
import { startProgress } from "../display/progress.js";
import { rngStamp } from "../rng.js";

const AttestInput = z.strictObject({
  /** The purpose the owners release their keys for (signed into the evidence). */
  purpose: purposeName,
  /** Teaching: launch a modified image ("code", "template") or a debug one — owners must refuse. */
  tamper: z.enum(["none", "code", "template", "debug"]).optional(),
  debug: z.boolean().optional(),
  /** Datasets ("owner/name") the enclave asks keys for (default: every enclave-sealed one). */
  datasets: z
    .array(
      z
        .string()
        .max(129)
        .regex(/^[a-z][a-z0-9_-]{0,31}\/[A-Za-z_][A-Za-z0-9_]{0,63}$/, '"owner/dataset"'),
    )
    .max(256)
    .optional(),
  /** "ownImage" (default): owners pin the image they compute. "operatorClaim": the defence off. */
  ownersPin: z.enum(["ownImage", "operatorClaim"]).optional(),
});

/**
 * Launch the room's enclave, verify its attestation and let each data owner decide on key
 * release (AWS Nitro Enclaves + KMS condition keys, simulated).
 *
 * @example
 * (await attestEnclave(lab, { purpose: "measurement" })).owners              // each owner: released
 * (await attestEnclave(lab, { purpose: "measurement", tamper: "code" })).ok  // false: ATTESTATION_MEASUREMENT
 *
 * Async: with `openLab({ enclave: "process" })` the enclave is a new OS process. A refusal at
 * the door is a rejected promise, with no side effect.
 */
export async function attestEnclave(lab: RemoteRoom, input: AttestArgs): Promise<RemoteEnclaveAttestation>;
export async function attestEnclave(lab: Lab, input: AttestArgs): Promise<EnclaveAttestation>;
export async function attestEnclave(lab: Lab | RemoteRoom, input: AttestArgs): Promise<EnclaveAttestation | RemoteEnclaveAttestation> {
  if (requireRoom(lab, "attestEnclave") instanceof RemoteRoom) {
    // a joined room: the server launches the enclave process; THIS kernel verifies and releases its own keys
    const { rest } = splitProgress(input);
    const o = parseAtDoor(AttestInput, rest, "input");
    const r = await remoteAttest(lab as RemoteRoom, o);
    return r.display
      ? withMimeBundle(r, (x) => ({
          ...x.display!,
          title: `${x.display!.title} (${x.ready ? "ready" : `still to release: ${x.mustRelease.join(", ")}`})`,
        }))
      : r;
  }
  return attestLab(lab as Lab, input);
}

type AttestArgs = {
  purpose: string;
  tamper?: EnclaveTamper;
  debug?: boolean;
  datasets?: readonly string[];
  ownersPin?: "ownImage" | "operatorClaim";
  /**
   * Default: when the datasets hold {@link LARGE_ATTEST_ROWS} rows or more, an in-place
   * progress bar in the cleanroom-ts kernel (launch and measure → verify and release keys,
   * per dataset). `true` always shows it, `false` never; a function receives `(done, total, phase)`.
   */
  progress?: ProgressOption;
};

async function attestLab(lab: Lab, input: AttestArgs): Promise<EnclaveAttestation> {
  const l = requireLab(lab, "attestEnclave");
  const { rest, progress } = splitProgress(input);
  const o = parseAtDoor(AttestInput, rest, "input");
  const large = () => {
    try {
      return enclaveDatasetRows(l, o.datasets) >= LARGE_ATTEST_ROWS;
    } catch {
      return false; // not an enclave room yet: the attestation itself says why
    }
  };
  const show = progress === true || (progress === undefined && large());
  const bar = show ? startProgress("enclave attestation", { ...rngStamp(l.rng) }) : null;
  const report = typeof progress === "function" ? progress : bar?.report;
  try {
    const out = await attestEnclaveAsync(l, o, (s) => report?.(s.done, s.total, s.phase));
    bar?.finish(out.ok ? "done" : "failed");
    return out;
  } catch (e) {
    bar?.finish("failed");
    throw e;
  }
}

/** From this many rows in the enclave-mode datasets on, `attestEnclave` shows a progress bar by default. */
export const LARGE_ATTEST_ROWS = 50_000;

/**
 * What the operator holds vs what the enclave saw, for the enclave-mode datasets.
 * @example enclaveRoomViews(lab).operatorView
 */
export function enclaveRoomViews(lab: Lab): EnclaveRoomViews {
  return roomViews(requireLab(lab, "enclaveRoomViews"));
}

/**
 * The operator's holdings (ciphertext sizes, metadata) — never plaintext.
 * @example operatorHoldings(lab)
 */
export function operatorHoldings(lab: Lab): ReturnType<typeof holdings> {
  return holdings(requireLab(lab, "operatorHoldings"));
}
