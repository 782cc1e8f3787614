import { expect } from "vitest";
import { isCleanRoomError, type ErrorCode } from "../../kernel-lib/src/errors.js";
import { seededRng, type Rng } from "../../kernel-lib/src/rng.js";
import { SimulatedHardwareRoot, type EnclaveInstance, type EnclaveWorkload } from "../../kernel-lib/src/enclave/enclave.js";
import { AttestationVerifier, allowImages } from "../../kernel-lib/src/enclave/verifier.js";
import { DEMO_ENGINE, DEMO_PURPOSE, DEMO_TEMPLATE_HASH, approvedWorkload } from "../../kernel-lib/src/labs/enclave-demo-workload.js";
import type { JsonValue } from "../../kernel-lib/src/enclave/measurement.js";

export const T0 = 1_750_000_000_000;
export const PURPOSE = DEMO_PURPOSE;

/** A lab on a controllable clock: root, approved enclave, verifier pinned to the root. */
export function fixture(seed = "enclave-tests") {
  const rng: Rng = seededRng(seed);
  const clock = { now: T0 };
  const tick = () => clock.now;
  const root = SimulatedHardwareRoot.create("test-lab", rng, { clock: tick });
  const launch = (
    o: { workload?: EnclaveWorkload; debug?: boolean; config?: { [k: string]: JsonValue }; templates?: string[] } = {},
  ): EnclaveInstance =>
    root.launch(
      {
        engine: DEMO_ENGINE,
        approvedTemplateHashes: o.templates ?? [DEMO_TEMPLATE_HASH],
        config: o.config ?? { release: "exact" },
        workload: o.workload ?? approvedWorkload,
        debug: o.debug ?? false,
      },
      rng,
    );
  const enclave = launch();
  const verifier = new AttestationVerifier({ pinnedRootPublicKey: root.publicKeyHex, clock: tick });
  const policy = allowImages([enclave.measurement.imageSha384]);
  return { rng, clock, tick, root, launch, enclave, verifier, policy };
}

/** Run `f`, expect a CleanRoomError with `code` (and `details.check` when given); return it. */
export function expectRefusal(f: () => unknown, code: ErrorCode, check?: string) {
  let caught: unknown;
  try {
    f();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).toBeDefined();
  if (!isCleanRoomError(caught)) throw caught;
  expect(caught.code).toBe(code);
  if (check !== undefined) expect(caught.details.check).toBe(check);
  return caught;
}
