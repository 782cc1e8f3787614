/**
 * Intersection-sum with cardinality — the shape of Google's Private Join and Compute
 * (Ion et al., "On Deploying Secure Computing: Private Intersection-Sum-with-Cardinality",
 * EuroS&P 2020): ECDH blinding for the join, exponential ElGamal (mpc/elgamal.ts) for the sum.
 *
 *   P1 "ids" (advertiser: identifiers u, key a)        P2 "values" (retailer: pairs (w, t), key b, ElGamal keys)
 *   ids     { H(u)^a, shuffled }               ──▶
 *                                              ◀──    reply { H(u)^ab, shuffled again;
 *                                                             (H(w)^b, Enc(t₁) … Enc(t_k)) pairs, shuffled; pk }
 *   P1 raises H(w)^b to a, keeps the pairs whose H(w)^ab is in its set, adds their
 *   ciphertexts homomorphically, re-randomises the sums:
 *   sum     { |∩|, Enc(Σ t₁) … Enc(Σ t_k) }    ──▶     P2 decrypts.
 *
 * Output: P2 (the values' owner, who holds the decryption key) learns |∩| and the sums over
 * the intersection; P1 learns |∩| only (it sees which of P2's anonymous, shuffled pairs
 * matched, but cannot link a pair to a person or read its ciphertext). Set sizes are public.
 * Semi-honest security, as the paper's; a malicious P1 could sum any subset (e.g. one pair:
 * P2 would decrypt one person's value — the paper's protocol shares this limit), a malicious P2
 * could encrypt anything. No DP noise: the release is exact (the shape PJC ships).
 */
import { CleanRoomError, invalid } from "../errors.js";
import { shuffle, type Rng } from "../rng.js";
import type { Transport } from "../transport/transport.js";
import { loadSodium, PSI_DST, randomScalar, sodiumBlind, sodiumHashAndBlind, sodiumValidate } from "../identity/psi-backend.js";
import { CT_BYTES, ExpElGamal } from "./elgamal.js";

export const PJC_PROTOCOL = "cleanroom-lab/pjc/v1";
const P = 32;

const b64 = (b: Uint8Array) => Buffer.from(b).toString("base64");
function unb64(s: unknown, unit: number, count: number | null, field: string): Uint8Array {
  if (typeof s !== "string") invalid(field, "base64 bytes", typeof s, "INPUT_INVALID");
  const b = new Uint8Array(Buffer.from(s, "base64"));
  if (b.length % unit !== 0 || (count !== null && b.length !== unit * count))
    invalid(field, `${count ?? "n"} × ${unit} bytes`, `${b.length} bytes`, "INPUT_INVALID");
  return b;
}

function metered(t: Transport) {
  const m = { sent: 0, received: 0 };
  return {
    m,
    send: (kind: string, body: unknown) => {
      m.sent += JSON.stringify(body).length;
      return t.send(PJC_PROTOCOL, kind, body);
    },
    receive: async (kind: string) => {
      const env = await t.receive({ protocol: PJC_PROTOCOL, kind });
      m.received += JSON.stringify(env.body).length;
      if (typeof env.body !== "object" || env.body === null || Array.isArray(env.body))
        invalid(kind, "a message object", env.body, "INPUT_INVALID");
      return env.body as Record<string, unknown>;
    },
  };
}

/** Shuffle a packed array of fixed-size records with one permutation. */
function permute(packed: Uint8Array[], unit: number[], order: number[]): Uint8Array[] {
  return packed.map((p, k) => {
    const out = new Uint8Array(p.length);
    order.forEach((from, to) => out.set(p.subarray(from * unit[k]!, (from + 1) * unit[k]!), to * unit[k]!));
    return out;
  });
}

function distinct(ids: readonly string[], field: string): string[] {
  if (!Array.isArray(ids)) invalid(field, "array of identifier strings", ids);
  ids.forEach((x, i) => typeof x !== "string" && invalid(`${field}[${i}]`, "identifier string", x));
  return [...new Set(ids)];
}

export interface PjcIdsResult {
  role: "ids";
  intersectionSize: number;
  bytesSent: number;
  bytesReceived: number;
}

/** P1: the identifiers-only party (learns the intersection size). */
export async function pjcIdsParty(o: {
  link: Transport;
  ids: readonly string[];
  rng: Rng;
  /** ATTACK DEMO ONLY: return the homomorphic sums without re-randomising them. */
  insecureNoRerandomise?: boolean;
}): Promise<PjcIdsResult> {
  const ids = distinct(o.ids, "ids");
  const s = await loadSodium();
  const eg = await ExpElGamal.load();
  const l = metered(o.link);
  try {
    const a = randomScalar(o.rng.fork("key"));
    const mine = sodiumHashAndBlind(s, shuffle(ids, o.rng.fork("shuffle")), a, PSI_DST);
    await l.send("ids", { points: b64(mine) });
    const r = await l.receive("reply");
    const cols = r["columns"];
    if (!Number.isSafeInteger(cols) || (cols as number) < 1 || (cols as number) > 16)
      invalid("reply.columns", "1 to 16 value columns", cols, "INPUT_INVALID");
    const k = cols as number;
    const doubled = unb64(r["doubled"], P, ids.length, "reply.doubled");
    const theirs = unb64(r["points"], P, null, "reply.points");
    const n2 = theirs.length / P;
    const cts = unb64(r["cts"], CT_BYTES * k, n2, "reply.cts");
    const pk = unb64(r["publicKey"], P, 1, "reply.publicKey");
    // validate everything before any scalar multiplication
    for (const [f, packed] of [
      ["reply.doubled", doubled],
      ["reply.points", theirs],
      ["reply.publicKey", pk],
    ] as const)
      if (sodiumValidate(s, packed).includes(0))
        invalid(f, "canonical non-identity ristretto255 points", "an invalid point", "CRYPTO_INVALID_POINT");
    for (let j = 0; j < n2 * k; j++)
      if (!eg.isValid(cts.subarray(j * CT_BYTES, (j + 1) * CT_BYTES)))
        invalid("reply.cts", "ElGamal ciphertexts (two canonical points)", "an invalid ciphertext", "CRYPTO_INVALID_POINT");
    const set = new Set<string>();
    for (let i = 0; i < ids.length; i++) set.add(Buffer.from(doubled.subarray(i * P, (i + 1) * P)).toString("latin1"));
    const again = sodiumBlind(s, theirs, a);
    let count = 0;
    const sums: (Uint8Array | null)[] = new Array(k).fill(null);
    for (let j = 0; j < n2; j++) {
      if (!set.has(Buffer.from(again.subarray(j * P, (j + 1) * P)).toString("latin1"))) continue;
      count++;
      for (let c = 0; c < k; c++) {
        const ct = cts.subarray((j * k + c) * CT_BYTES, (j * k + c + 1) * CT_BYTES);
        sums[c] = sums[c] ? eg.add(sums[c]!, ct) : ct;
      }
    }
    const rr = o.rng.fork("rerandomise");
    const out = new Uint8Array(k * CT_BYTES);
    // an empty intersection sends Enc(0): the same shape as any other answer
    sums.forEach((c, i) => {
      const sum = c ?? eg.encrypt(pk, 0, rr);
      out.set(o.insecureNoRerandomise ? sum : eg.rerandomise(pk, sum, rr), i * CT_BYTES);
    });
    await l.send("sum", { intersectionSize: count, sums: b64(out) });
    return { role: "ids", intersectionSize: count, bytesSent: l.m.sent, bytesReceived: l.m.received };
  } catch (e) {
    o.link.close();
    throw e;
  }
}

export interface PjcValuesResult {
  role: "values";
  intersectionSize: number;
  /** Σ of each value column over the intersection. */
  sums: number[];
  bytesSent: number;
  bytesReceived: number;
}

/**
 * P2: the party with (identifier, values) pairs; holds the ElGamal key and learns the sums.
 * `values[i]` are the integer columns of `ids[i]` (one row per distinct identifier).
 */
export async function pjcValuesParty(o: {
  link: Transport;
  ids: readonly string[];
  values: readonly (readonly number[])[];
  rng: Rng;
}): Promise<PjcValuesResult> {
  const ids = distinct(o.ids, "ids");
  if (ids.length !== o.ids.length) invalid("ids", "distinct identifiers (one row per person)", "repeated identifiers");
  if (!Array.isArray(o.values) || o.values.length !== ids.length) invalid("values", `${ids.length} rows of values`, o.values);
  const k = o.values[0]?.length ?? 1;
  o.values.forEach((v, i) => {
    if (!Array.isArray(v) || v.length !== k) invalid(`values[${i}]`, `${k} integers`, v);
    v.forEach((x, c) => (!Number.isSafeInteger(x) || x < 0) && invalid(`values[${i}][${c}]`, "integer ≥ 0", typeof x));
  });
  const s = await loadSodium();
  const eg = await ExpElGamal.load();
  const l = metered(o.link);
  try {
    const b = randomScalar(o.rng.fork("key"));
    const keys = eg.keygen(o.rng.fork("elgamal"));
    const q = await l.receive("ids");
    const theirs = unb64(q["points"], P, null, "ids.points");
    if (sodiumValidate(s, theirs).includes(0))
      invalid("ids.points", "canonical non-identity ristretto255 points", "an invalid point", "CRYPTO_INVALID_POINT");
    const n1 = theirs.length / P;
    const doubled = sodiumBlind(s, theirs, b);
    const points = sodiumHashAndBlind(s, ids, b, PSI_DST);
    const er = o.rng.fork("encrypt");
    const cts = new Uint8Array(ids.length * k * CT_BYTES);
    o.values.forEach((v, i) =>
      (v as readonly number[]).forEach((x: number, c: number) => cts.set(eg.encrypt(keys.publicKey, x, er), (i * k + c) * CT_BYTES)),
    );
    const [d] = permute([doubled], [P], shuffle([...Array(n1).keys()], o.rng.fork("shuffle1")));
    const order = shuffle([...Array(ids.length).keys()], o.rng.fork("shuffle2"));
    const [pp, cc] = permute([points, cts], [P, k * CT_BYTES], order);
    await l.send("reply", { doubled: b64(d!), points: b64(pp!), cts: b64(cc!), columns: k, publicKey: b64(keys.publicKey) });
    const r = await l.receive("sum");
    const count = r["intersectionSize"];
    if (!Number.isSafeInteger(count) || (count as number) < 0 || (count as number) > Math.min(n1, ids.length))
      invalid("sum.intersectionSize", "an integer up to the smaller set size", count, "INPUT_INVALID");
    const sums = unb64(r["sums"], CT_BYTES, k, "sum.sums");
    const out: number[] = [];
    for (let c = 0; c < k; c++) {
      const ct = sums.subarray(c * CT_BYTES, (c + 1) * CT_BYTES);
      if (!eg.isValid(ct))
        throw new CleanRoomError("CRYPTO_INVALID_POINT", `"sum.sums" expected ElGamal ciphertexts`, { field: "sum.sums" });
      out.push(eg.decrypt(keys.secretKey, ct));
    }
    return { role: "values", intersectionSize: count as number, sums: out, bytesSent: l.m.sent, bytesReceived: l.m.received };
  } catch (e) {
    o.link.close();
    throw e;
  }
}
