/**
 * A member's identity: an Ed25519 signing key in its own key file (mode 0600), created once
 * and loaded by the member's kernel. The secret never leaves this module's closure: it is not a
 * property, not serialised, not sent — only signatures and the public key are.
 *
 * Threat model: another user of the machine (the file is created 0600 and a group- or
 * world-readable key file is refused on load), a notebook printing the identity (shows the
 * public key and fingerprint only), an accidental `JSON.stringify` (same). Not protected:
 * the member's own OS account, which can read its key file.
 */
import fs from "node:fs";
import path from "node:path";
import { sha256 } from "@noble/hashes/sha2.js";
import { ed25519 } from "@noble/curves/ed25519.js";
import { CleanRoomError, invalid } from "../errors.js";
import { makeRng, type Rng } from "../rng.js";
import { ed25519KeyPair, ed25519Sign, fromHex, hex } from "../crypto/primitives.js";
import { MEMBER_NAME } from "./protocol.js";

const KIND = "cleanroom-lab/identity/v1";

/** What a notebook holds of its identity: a name, the public key, and a signer. */
export interface MemberIdentity {
  readonly name: string;
  /** Ed25519 public key, hex. */
  readonly publicKey: string;
  /** First 16 hex characters of SHA-256(public key): what people compare by eye. */
  readonly fingerprint: string;
  /** Sign bytes (Ed25519). */
  sign(message: Uint8Array): string;
  /** A plain view (no secret). */
  toJSON(): { name: string; publicKey: string; fingerprint: string };
}

export const fingerprintOf = (publicKeyHex: string): string =>
  Buffer.from(sha256(fromHex(publicKeyHex)))
    .toString("hex")
    .slice(0, 16);

function identityOf(name: string, secretKey: Uint8Array, publicKey: Uint8Array): MemberIdentity {
  const pub = hex(publicKey);
  const view = { name, publicKey: pub, fingerprint: fingerprintOf(pub) };
  return Object.freeze({
    ...view,
    sign: (message: Uint8Array) => hex(ed25519Sign(secretKey, message)),
    toJSON: () => ({ ...view }),
    [Symbol.for("nodejs.util.inspect.custom")]: () => `MemberIdentity ${name} ${view.fingerprint}`,
  });
}

/**
 * Create a member identity and write its key file (0600; refused if the file exists).
 * @example const me = createIdentity({ name: "retailer", file: "./retailer.key" })
 */
export function createIdentity(o: { name: string; file: string; rng?: "secure" | { seed: string } | Rng }): MemberIdentity {
  if (!o || typeof o !== "object") invalid("options", "{ name, file }", o);
  if (typeof o.name !== "string" || !MEMBER_NAME.test(o.name)) invalid("name", "a member name [a-z][a-z0-9_-]{0,31}", o.name);
  if (typeof o.file !== "string" || !o.file) invalid("file", "a key file path", o.file);
  if (fs.existsSync(o.file))
    invalid("file", "a path where no key file exists yet (loadIdentity opens an existing one)", "an existing file", "ALREADY_EXISTS");
  const kp = ed25519KeyPair(makeRng(o.rng ?? "secure"));
  const text = JSON.stringify({ kind: KIND, name: o.name, secretKey: hex(kp.secretKey), publicKey: hex(kp.publicKey) }) + "\n";
  fs.mkdirSync(path.dirname(path.resolve(o.file)), { recursive: true });
  fs.writeFileSync(o.file, text, { mode: 0o600, flag: "wx" });
  return identityOf(o.name, kp.secretKey, kp.publicKey);
}

/**
 * Load a member identity from its key file (refused if others may read it).
 * @example const me = loadIdentity("./retailer.key")
 */
export function loadIdentity(file: string): MemberIdentity {
  if (typeof file !== "string" || !file) invalid("file", "a key file path", file);
  let st: fs.Stats;
  try {
    st = fs.statSync(file);
  } catch {
    return invalid("file", "an existing key file (createIdentity writes one)", "no such file", "NOT_FOUND");
  }
  if (process.platform !== "win32" && (st.mode & 0o077) !== 0)
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"file" expected a key file only its owner can read (mode 0600), got mode ${(st.mode & 0o777).toString(8)}`,
      {
        field: "file",
      },
    );
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(fs.readFileSync(file, "utf8"));
  } catch {
    return invalid("file", `a ${KIND} key file`, "unparseable content", "CRYPTO_INVALID_KEY");
  }
  if (o.kind !== KIND || typeof o.name !== "string" || !MEMBER_NAME.test(o.name))
    invalid("file", `a ${KIND} key file`, "another format", "CRYPTO_INVALID_KEY");
  if (typeof o.secretKey !== "string" || !/^[0-9a-f]{64}$/.test(o.secretKey))
    invalid("file.secretKey", "64 hex characters", "malformed", "CRYPTO_INVALID_KEY");
  const secretKey = fromHex(o.secretKey);
  const publicKey = ed25519.getPublicKey(secretKey);
  if (o.publicKey !== hex(publicKey))
    invalid("file.publicKey", "the public key of the stored secret key", "another key", "CRYPTO_INVALID_KEY");
  return identityOf(o.name, secretKey, publicKey);
}

/** Is this a MemberIdentity made by this module? */
export function isIdentity(x: unknown): x is MemberIdentity {
  return (
    typeof x === "object" &&
    x !== null &&
    typeof (x as MemberIdentity).sign === "function" &&
    typeof (x as MemberIdentity).publicKey === "string"
  );
}
