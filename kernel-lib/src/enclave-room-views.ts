/**
 * The two views of a lab in enclave mode (issue 7: "the operator's view printed beside the
 * enclave's view"): everything the operator side holds — owner-sealed blobs at rest behind its
 * purpose gate, KMS-protected ciphertexts, attestation documents, sealed keys, outputs — with
 * real attempts to read them as tables using the operator's own powers; and the current
 * enclave's own description of what it holds (by size and digest, never contents).
 * See session/enclave-mode.ts for what the simulation does and does not protect.
 */
import { isCleanRoomError } from "./errors.js";
import { internals, type Lab } from "./session/lab.js";
import type { EnclaveView } from "./enclave/enclave.js";
import { decodeDocument } from "./enclave/document.js";
import type { JsonValue } from "./enclave/measurement.js";
import { ENCLAVE_DEPENDENCIES } from "./enclave-room-workload.js";
import type { EnclaveOperator } from "./session/enclave-operator.js";

/** What the operator holds in enclave mode, and what it fails to do with it. */
export interface EnclaveRoomViews {
  operatorView: {
    atRest: { dataset: string; operatorHoldsBytes: number; format: string }[];
    ciphertexts: { dataset: string; kmsDatasetId: string; ciphertextBytes: number; ciphertextHead: string }[];
    documents: { module_id: string; pcr0: string; debug: boolean; purpose: string }[];
    sealedKeys: EnclaveOperator["sealedKeys"];
    outputs: number;
    attempts: { attempt: string; result: string }[];
    plaintextSeen: boolean;
  };
  enclaveView: EnclaveView | null;
}

/**
 * The operator's view of the lab's enclave mode beside the current enclave's view. The
 * operator's attempts are real calls with its own powers (its gate, its catalog).
 *
 * @example
 * enclaveRoomViews(lab).operatorView.attempts
 */
export function enclaveRoomViews(lab: Lab): EnclaveRoomViews {
  const st = internals(lab).enclave().operator;
  const cat = st.catalog();
  const attempts: EnclaveRoomViews["operatorView"]["attempts"] = [];
  let plaintextSeen = false;
  const { deserializeTable } = ENCLAVE_DEPENDENCIES;
  /** Did these bytes parse as a table with rows? (Arrow may read random bytes as an empty table.) */
  const readsAsTable = (b64text: string): boolean => {
    try {
      return deserializeTable(Buffer.from(b64text, "base64")).numRows() > 0;
    } catch {
      return false;
    }
  };
  for (const k of cat.keys()) {
    const atRest = readsAsTable(st.atRest(k).ciphertext);
    attempts.push({
      attempt: `read ${k} from the operator's store as a table`,
      result: atRest ? "SUCCEEDED (this would be a bug)" : "failed: ciphertext (purpose-gate seal over the owner's sealed blob)",
    });
    const enc = st.ciphertexts.get(k);
    const kms = enc ? readsAsTable(enc.ciphertext) : false;
    if (enc)
      attempts.push({
        attempt: `read the KMS-protected copy of ${k} as a table`,
        result: kms ? "SUCCEEDED (this would be a bug)" : "failed: AES-256-GCM ciphertext; the key went only to the attested enclave",
      });
    plaintextSeen ||= atRest || kms;
  }
  try {
    st.plainPlanContext().dataset(...(([...cat.keys()][0] ?? "x/y").split("/") as [string, string]));
    attempts.push({ attempt: "plan a plain-path query over an enclave-mode dataset", result: "SUCCEEDED (this would be a bug)" });
  } catch (e) {
    attempts.push({
      attempt: "plan a plain-path query over an enclave-mode dataset",
      result: `refused: ${isCleanRoomError(e) ? e.code : "error"} (the session has no table for it)`,
    });
  }
  return {
    operatorView: {
      atRest: [...cat.keys()].map((k) => ({
        dataset: k,
        operatorHoldsBytes: Buffer.from(st.atRest(k).ciphertext, "base64").length,
        format: "purpose-gate seal over an owner-sealed blob",
      })),
      ciphertexts: [...st.ciphertexts.entries()].map(([k, e]) => ({
        dataset: k,
        kmsDatasetId: e.datasetId,
        ciphertextBytes: Buffer.from(e.ciphertext, "base64").length,
        ciphertextHead: Buffer.from(e.ciphertext, "base64").subarray(0, 12).toString("hex") + "…",
      })),
      documents: st.documents.slice(-4).map((d) => {
        const p = decodeDocument(d);
        return { module_id: p.module_id, pcr0: `${p.pcrs["0"]!.slice(0, 24)}…`, debug: p.debug, purpose: p.purpose };
      }),
      sealedKeys: st.sealedKeys.slice(-4),
      outputs: st.outputs.length,
      attempts,
      plaintextSeen,
    },
    enclaveView: st.enclave ? st.enclave.view() : null,
  };
}

/**
 * Everything the operator side of enclave mode holds, as JSON (for tests and audits: it must
 * contain no plaintext value of an enclave-mode dataset).
 *
 * @example
 * JSON.stringify(operatorHoldings(lab)).includes("k000001") // false
 */
export function operatorHoldings(lab: Lab): JsonValue {
  const st = internals(lab).enclave().operator;
  return JSON.parse(
    JSON.stringify({
      catalog: [...st.catalog().entries()],
      ciphertexts: [...st.ciphertexts.entries()],
      documents: st.documents,
      sealedKeys: st.sealedKeys,
      outputs: st.outputs,
      atRest: [...st.catalog().keys()].map((k) => st.atRest(k)),
    }),
  );
}
