/**
 * The room's simulated KMS and audit-head anchor (DESIGN.md § The house).
 *
 * The room's policy key, key-gate master secret, audit-signing key and the enclaves' hardware
 * root stand in for a KMS. They live in a sidecar file `<store>.keys` (mode 0600), never in the
 * database, so a database thief cannot forge grants, unseal datasets or re-sign a rewritten
 * audit chain. Threat model: a planted or world-readable sidecar is refused; a secure lab
 * refuses keys made in seeded teaching mode. The audit-head file keeps the chain's newest
 * signed head outside the database so deleting the newest rows is caught after a restart.
 */
import * as fs from "node:fs";
import { CleanRoomError } from "../errors.js";
import type { Rng } from "../rng.js";
import { fromHex, hex } from "../crypto/primitives.js";

export interface Secrets {
  policySecretKey: Uint8Array;
  gateMasterSecret: Uint8Array;
  auditSigningKey: Uint8Array;
  /** The simulated hardware root of this lab's enclaves (verifiers pin its public key). */
  enclaveRootKey: Uint8Array;
}

function isSymlink(file: string): boolean {
  try {
    return fs.lstatSync(file).isSymbolicLink();
  } catch {
    return false;
  }
}

/**
 * The sidecar stands in for a KMS: refuse one that anybody but this user could have planted
 * or can read — a symlink, a file owned by another user, or one with group/other permissions
 * (a planted file would hand its author the audit-signing and key-gate secrets).
 */
function checkKeysFile(file: string): void {
  const st = fs.lstatSync(file);
  const refuse = (why: string) => {
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"${file}" ${why}; refusing to use it as this room's key store (expected a regular file of this user with mode 0600)`,
      { field: "store" },
    );
  };
  if (st.isSymbolicLink()) refuse("is a symbolic link");
  if (!st.isFile()) refuse("is not a regular file");
  if (process.platform === "win32") return;
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) refuse("belongs to another user");
  if ((st.mode & 0o077) !== 0) refuse(`is readable or writable by group/others (mode ${(st.mode & 0o777).toString(8)})`);
}

export function loadSecrets(store: string, rng: Rng): Secrets {
  const fresh = (): Secrets => ({
    policySecretKey: rng.bytes(32),
    gateMasterSecret: rng.bytes(32),
    auditSigningKey: rng.bytes(32),
    enclaveRootKey: rng.bytes(32),
  });
  if (store === ":memory:") return fresh();
  const file = `${store}.keys`;
  if (fs.existsSync(file) || isSymlink(file)) {
    checkKeysFile(file);
    let j: Record<string, unknown>;
    try {
      j = JSON.parse(fs.readFileSync(file, "utf8")) as Record<string, unknown>;
    } catch {
      throw new CleanRoomError(
        "INPUT_INVALID",
        `"${file}" is not a cleanroom-lab keys file (unreadable JSON); refusing to open the room with it`,
        { field: "store" },
      );
    }
    // Keys made by a seeded (teaching) lab are a function of the seed: whoever knows it can
    // unseal the datasets and re-sign the audit chain. A secure lab must not inherit them
    // while stamping its results "secure".
    if (j.rngMode === "seeded" && rng.mode === "secure")
      throw new CleanRoomError(
        "STATE_INVALID",
        `"${file}" holds keys made in seeded teaching mode (predictable from the seed); a secure lab cannot use this room — ` +
          `open it with the same { seed } (results stay labelled "not private") or start a new store`,
        { field: "rng" },
      );
    const key = (name: string): Uint8Array => {
      const v = j[name];
      if (typeof v !== "string" || !/^[0-9a-f]{64}$/.test(v))
        throw new CleanRoomError("INPUT_INVALID", `"${file}" has no valid ${name} (64 hex characters); refusing to open the room with it`, {
          field: "store",
        });
      return fromHex(v);
    };
    return {
      policySecretKey: key("policySecretKey"),
      gateMasterSecret: key("gateMasterSecret"),
      auditSigningKey: key("auditSigningKey"),
      enclaveRootKey: key("enclaveRootKey"),
    };
  }
  const s = fresh();
  const body = JSON.stringify({
    note: "cleanroom-lab simulated KMS secrets for this room file; keep private",
    rngMode: rng.mode,
    policySecretKey: hex(s.policySecretKey),
    gateMasterSecret: hex(s.gateMasterSecret),
    auditSigningKey: hex(s.auditSigningKey),
    enclaveRootKey: hex(s.enclaveRootKey),
  });
  try {
    fs.writeFileSync(file, body, { mode: 0o600, flag: "wx" });
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw e;
    return loadSecrets(store, rng); // another kernel created it first: use theirs
  }
  return s;
}
