/**
 * Exponential ElGamal on ristretto255: an additively homomorphic encryption of small integers,
 * composed from a maintained library's group operations (libsodium's crypto_core_ristretto255_*
 * and crypto_scalarmult_ristretto255*, the same backend as PSI) — no group arithmetic here.
 *
 *   key:      sk ∈ [1, ℓ), pk = sk·G
 *   Enc(m):   (r·G, m·G + r·pk), r fresh          Enc(m₁) ⊕ Enc(m₂) = Enc(m₁ + m₂)
 *   re-rand:  c ⊕ Enc(0)  (same plaintext, unlinkable ciphertext)
 *   Dec(c):   M = C₂ − sk·C₁ = m·G, then m by baby-step giant-step (m must be small: ≤ MAX_PLAINTEXT)
 *
 * IND-CPA under DDH in ristretto255 (prime order ℓ, RFC 9496). Plaintexts are integers in
 * [0, MAX_PLAINTEXT]; a larger sum is refused as such, never mis-decoded. Ciphertexts are 64
 * bytes (C₁ ‖ C₂); every received one is checked to be two canonical ristretto255 encodings.
 */
import { CleanRoomError, invalid } from "../errors.js";
import type { Rng } from "../rng.js";
import { loadSodium, randomScalar } from "../identity/psi-backend.js";

type Sodium = Awaited<ReturnType<typeof loadSodium>>;

export const CT_BYTES = 64;
const BABY = 1 << 14;
const GIANT = 1 << 18;
/** Largest plaintext the decoder recovers (2^32 − 1). */
export const MAX_PLAINTEXT = BABY * GIANT - 1;

const key = (p: Uint8Array) => Buffer.from(p).toString("latin1");
const scalarOf = (m: number): Uint8Array => {
  const b = new Uint8Array(32);
  let x = m;
  for (let i = 0; i < 8 && x > 0; i++) {
    b[i] = x % 256;
    x = Math.floor(x / 256);
  }
  return b;
};

let tables: { baby: Uint8Array[]; lookup: Map<string, number>; giant: Uint8Array[]; step: Uint8Array } | undefined;

export interface ElGamalKeys {
  secretKey: Uint8Array;
  publicKey: Uint8Array;
}

/** Exponential ElGamal over libsodium's ristretto255. Build with `await ExpElGamal.load()`. */
export class ExpElGamal {
  private constructor(private readonly s: Sodium) {}

  static async load(): Promise<ExpElGamal> {
    return new ExpElGamal(await loadSodium());
  }

  /** j·G for j < 2^14 and i·(2^14·G) for the giant steps, built once per process. */
  private tables() {
    if (tables) return tables;
    const s = this.s;
    const G = s.crypto_scalarmult_ristretto255_base(scalarOf(1));
    const baby: Uint8Array[] = [new Uint8Array(32), G];
    for (let j = 2; j < BABY; j++) baby.push(s.crypto_core_ristretto255_add(baby[j - 1]!, G));
    const lookup = new Map(baby.map((p, j) => [key(p), j]));
    const step = s.crypto_core_ristretto255_add(baby[BABY - 1]!, G);
    const giant: Uint8Array[] = [new Uint8Array(32), step];
    return (tables = { baby, lookup, giant, step });
  }

  /** m·G from the tables (m = i·2^14 + j): one addition instead of a scalar multiplication. */
  private encode(m: number): Uint8Array {
    const t = this.tables();
    const i = Math.floor(m / BABY);
    const j = m % BABY;
    while (t.giant.length <= i) t.giant.push(this.s.crypto_core_ristretto255_add(t.giant[t.giant.length - 1]!, t.step));
    if (i === 0) return t.baby[j]!;
    if (j === 0) return t.giant[i]!;
    return this.s.crypto_core_ristretto255_add(t.giant[i]!, t.baby[j]!);
  }

  keygen(rng: Rng): ElGamalKeys {
    const secretKey = randomScalar(rng);
    return { secretKey, publicKey: this.s.crypto_scalarmult_ristretto255_base(secretKey) };
  }

  /** Enc(m) for an integer 0 ≤ m ≤ MAX_PLAINTEXT. */
  encrypt(publicKey: Uint8Array, m: number, rng: Rng): Uint8Array {
    if (!Number.isSafeInteger(m) || m < 0 || m > MAX_PLAINTEXT) invalid("plaintext", `integer in [0, ${MAX_PLAINTEXT}]`, typeof m);
    const s = this.s;
    const r = randomScalar(rng);
    const c = new Uint8Array(CT_BYTES);
    c.set(s.crypto_scalarmult_ristretto255_base(r), 0);
    const rpk = s.crypto_scalarmult_ristretto255(r, publicKey);
    c.set(m === 0 ? rpk : s.crypto_core_ristretto255_add(this.encode(m), rpk), 32);
    return c;
  }

  /** Enc(a + b) from Enc(a) and Enc(b). */
  add(a: Uint8Array, b: Uint8Array): Uint8Array {
    const s = this.s;
    const c = new Uint8Array(CT_BYTES);
    c.set(s.crypto_core_ristretto255_add(a.subarray(0, 32), b.subarray(0, 32)), 0);
    c.set(s.crypto_core_ristretto255_add(a.subarray(32), b.subarray(32)), 32);
    return c;
  }

  /** The same plaintext under fresh randomness (c ⊕ Enc(0)). */
  rerandomise(publicKey: Uint8Array, c: Uint8Array, rng: Rng): Uint8Array {
    return this.add(c, this.encrypt(publicKey, 0, rng));
  }

  /** Both halves canonical ristretto255 encodings (C₂ may be the identity). */
  isValid(c: Uint8Array): boolean {
    const ok = (p: Uint8Array) => p.every((b) => b === 0) || this.s.crypto_core_ristretto255_is_valid_point(p);
    return c.length === CT_BYTES && this.s.crypto_core_ristretto255_is_valid_point(c.subarray(0, 32)) && ok(c.subarray(32));
  }

  /** The plaintext, by baby-step giant-step; `CRYPTO_DECRYPT_FAILED` beyond `max` (default MAX_PLAINTEXT). */
  decrypt(secretKey: Uint8Array, c: Uint8Array, max = MAX_PLAINTEXT): number {
    const s = this.s;
    const t = this.tables();
    let M = s.crypto_core_ristretto255_sub(c.subarray(32), s.crypto_scalarmult_ristretto255(secretKey, c.subarray(0, 32)));
    const steps = Math.min(GIANT, Math.floor(max / BABY) + 1);
    for (let i = 0; i < steps; i++) {
      const j = t.lookup.get(key(M));
      if (j !== undefined) return i * BABY + j;
      M = s.crypto_core_ristretto255_sub(M, t.step);
    }
    throw new CleanRoomError("CRYPTO_DECRYPT_FAILED", `"ciphertext" expected a plaintext in [0, ${steps * BABY - 1}], got a larger one`, {
      field: "ciphertext",
    });
  }
}
