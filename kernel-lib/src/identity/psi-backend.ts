/**
 * The group arithmetic behind ECDH-PSI, behind one interface with two interchangeable
 * backends: @noble/curves (reference, pure JS, runs in a browser) and libsodium (WASM, from
 * `libsodium-wrappers-sumo`, optionally spread over worker threads).
 *
 * Group: ristretto255 (RFC 9496). Hash to group: RFC 9380 Appendix B,
 * `hash_to_ristretto255(msg) = ristretto255_map(expand_message_xmd(msg, DST, 64, SHA-512))`
 * with the project DST `PSI_DST` (RFC 9380 §3.1: a protocol-specific tag). libsodium's
 * `crypto_core_ristretto255_from_hash` IS the RFC 9496 §4.3.4 one-way map, so feeding it
 * noble's `expand_message_xmd` output gives the same point as noble's `hashToCurve` — the
 * backends produce byte-identical messages for the same inputs and scalar (tested).
 *
 * Threat model: scalars are the PSI secrets. They are 32-byte little-endian canonical
 * scalars in [1, ℓ), sampled by reducing 64 uniform bytes mod ℓ (no modulo bias, RFC 9496
 * §4.4 style). Points handed to `blind` must already be validated by the caller
 * (`isValidPoint`: canonical, not the identity); both backends still refuse to return the
 * identity.
 */
import { ristretto255, ristretto255_hasher } from "@noble/curves/ed25519.js";
import { expand_message_xmd } from "@noble/curves/abstract/hash-to-curve.js";
import { asciiToBytes } from "@noble/curves/utils.js";
import { sha512 } from "@noble/hashes/sha2.js";
import { hkdfSync } from "node:crypto";
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { CleanRoomError, bug, invalid } from "../errors.js";
import type { Rng } from "../rng.js";

/** The project's RFC 9380 domain separation tag for PSI hashing. */
export const PSI_DST = "cleanroom-lab-PSI-v1-ristretto255_XMD:SHA-512_R255MAP_RO_";
/** Group order ℓ of ristretto255 (RFC 9496 §4). */
export const GROUP_ORDER: bigint = ristretto255.Point.Fn.ORDER;
export const POINT_BYTES = 32;
/** Bytes of a PSI join key (HKDF-SHA256 output, see `deriveJoinKey` in psi.ts). */
export const JOIN_KEY_BYTES = 16;

/** `(done, total, phase)`: called as work completes so a notebook can draw a progress bar. */
export type ProgressFn = (done: number, total: number, phase: string) => void;

export type BackendName = "noble" | "libsodium";

export interface PsiBackend {
  readonly name: BackendName;
  /** Threads actually used for bulk work. */
  readonly threads: number;
  /** H(x)^k for each element (UTF-8 strings), in input order. */
  hashAndBlind(elements: readonly string[], scalar: Uint8Array, progress?: ProgressFn, phase?: string): Promise<Uint8Array[]>;
  /** P^k for each (already validated) point, in input order. */
  blind(points: readonly Uint8Array[], scalar: Uint8Array, progress?: ProgressFn, phase?: string): Promise<Uint8Array[]>;
  /** Canonical ristretto255 encoding of a non-identity element. */
  isValidPoint(p: Uint8Array): boolean;
  /** Index of the first point failing `isValidPoint`, or -1 (may run in parallel). */
  firstInvalidPoint?(points: readonly Uint8Array[]): Promise<number>;
  /** Release worker threads (no-op for in-thread backends). */
  close(): Promise<void>;
  // Packed forms (n × 32 bytes in one buffer): what the protocol uses at scale, so a 1M set is
  // one allocation instead of 1M. Optional: `packedOps` falls back to the per-point methods.
  hashAndBlindPacked?(elements: readonly string[], scalar: Uint8Array, progress?: ProgressFn, phase?: string): Promise<Uint8Array>;
  blindPacked?(packed: Uint8Array, scalar: Uint8Array, progress?: ProgressFn, phase?: string): Promise<Uint8Array>;
  firstInvalidPacked?(packed: Uint8Array): Promise<number>;
  /** `deriveJoinKeysPacked` for each packed point (may run on workers). */
  deriveJoinKeysPacked?(packed: Uint8Array, salt: Uint8Array, info: Uint8Array): Promise<Uint8Array>;
}

/** The packed operations of any backend: its own if it has them, else over its per-point methods. */
export function packedOps(
  be: PsiBackend,
): Required<Pick<PsiBackend, "hashAndBlindPacked" | "blindPacked" | "firstInvalidPacked" | "deriveJoinKeysPacked">> {
  return {
    hashAndBlindPacked: be.hashAndBlindPacked
      ? be.hashAndBlindPacked.bind(be)
      : async (e, k, p, ph) => pack(await be.hashAndBlind(e, k, p, ph)),
    blindPacked: be.blindPacked ? be.blindPacked.bind(be) : async (x, k, p, ph) => pack(await be.blind(unpack(x), k, p, ph)),
    firstInvalidPacked: be.firstInvalidPacked
      ? be.firstInvalidPacked.bind(be)
      : async (x) => {
          const pts = unpack(x);
          return be.firstInvalidPoint ? be.firstInvalidPoint(pts) : pts.findIndex((q) => !be.isValidPoint(q));
        },
    deriveJoinKeysPacked: be.deriveJoinKeysPacked
      ? be.deriveJoinKeysPacked.bind(be)
      : async (x, salt, info) => deriveJoinKeysPacked(x, salt, info),
  };
}

/**
 * HKDF-SHA256(ikm = point, salt, info, 16) for each packed 32-byte point, packed (n × 16
 * bytes). node:crypto's HKDF (RFC 5869); the same bytes as psi.ts `deriveJoinKey` (tested).
 * @example deriveJoinKeysPacked(points, utf8(sessionId), utf8(info)) // n × 16 bytes
 */
export function deriveJoinKeysPacked(packed: Uint8Array, salt: Uint8Array, info: Uint8Array): Uint8Array {
  const n = packed.length / POINT_BYTES;
  const out = new Uint8Array(n * JOIN_KEY_BYTES);
  for (let i = 0; i < n; i++)
    out.set(
      new Uint8Array(hkdfSync("sha256", packed.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES), salt, info, JOIN_KEY_BYTES)),
      i * JOIN_KEY_BYTES,
    );
  return out;
}

const enc = new TextEncoder();

/**
 * RFC 9380 expand_message_xmd(SHA-512, msg, DST, 64) — noble's implementation (reference).
 * `dst` may be given already as bytes (`asciiToBytes(dst)`) so bulk loops convert it once.
 * @example expandForPsiNoble("a@x.org") // 64 bytes
 */
export function expandForPsiNoble(element: string, dst: string | Uint8Array = PSI_DST): Uint8Array {
  return expand_message_xmd(enc.encode(element), dst, 64, sha512);
}

/**
 * The expand step both backends use. It is noble's RFC 9380 implementation: an earlier
 * re-implementation on node:crypto was ~10% faster on the hashing phase (~5% end to end),
 * but the project does not hand-roll primitives — speed comes from libsodium's group ops.
 */
export const expandForPsi = expandForPsiNoble;

/**
 * 32-byte little-endian encoding of a scalar in [1, ℓ).
 * @example scalarToBytes(2n) // Uint8Array [2, 0, 0, …]
 */
export function scalarToBytes(k: bigint): Uint8Array {
  if (k <= 0n || k >= GROUP_ORDER) bug("scalar out of range");
  const out = new Uint8Array(32);
  let x = k;
  for (let i = 0; i < 32; i++) {
    out[i] = Number(x & 0xffn);
    x >>= 8n;
  }
  return out;
}

/**
 * Decode a canonical non-zero scalar; `CRYPTO_INVALID_KEY` otherwise.
 * @example scalarFromBytes(randomScalar(secureRng())) // 0 < k < GROUP_ORDER
 */
export function scalarFromBytes(b: Uint8Array): bigint {
  if (!(b instanceof Uint8Array) || b.length !== 32) invalid("scalar", "32-byte little-endian scalar", b, "CRYPTO_INVALID_KEY");
  let x = 0n;
  for (let i = 31; i >= 0; i--) x = (x << 8n) | BigInt(b[i]!);
  if (x === 0n || x >= GROUP_ORDER) invalid("scalar", "canonical non-zero scalar below the group order", b, "CRYPTO_INVALID_KEY");
  return x;
}

/**
 * A fresh secret scalar in [1, ℓ) from 64 uniform bytes (bias < 2^-250).
 * @example const key = randomScalar(secureRng())
 */
export function randomScalar(rng: Rng): Uint8Array {
  for (;;) {
    const wide = rng.bytes(64);
    let x = 0n;
    for (let i = 63; i >= 0; i--) x = (x << 8n) | BigInt(wide[i]!);
    x %= GROUP_ORDER;
    if (x !== 0n) return scalarToBytes(x);
  }
}

const isZero = (p: Uint8Array) => p.every((b) => b === 0);

/** Yield to the event loop so progress callbacks can repaint. */
const tick = () => new Promise<void>((r) => setImmediate(r));
const CHUNK = 1024;

/** The reference backend: @noble/curves, single thread. */
export class NobleBackend implements PsiBackend {
  readonly name = "noble" as const;
  readonly threads = 1;
  constructor(private readonly dst: string = PSI_DST) {}

  async hashAndBlind(
    elements: readonly string[],
    scalar: Uint8Array,
    progress?: ProgressFn,
    phase = "hash-and-blind",
  ): Promise<Uint8Array[]> {
    const k = scalarFromBytes(scalar);
    const out: Uint8Array[] = new Array(elements.length);
    for (let i = 0; i < elements.length; i++) {
      out[i] = ristretto255_hasher.hashToCurve(enc.encode(elements[i]!), { DST: this.dst }).multiply(k).toBytes();
      if ((i + 1) % CHUNK === 0 || i + 1 === elements.length) {
        progress?.(i + 1, elements.length, phase);
        await tick();
      }
    }
    return out;
  }

  async blind(points: readonly Uint8Array[], scalar: Uint8Array, progress?: ProgressFn, phase = "blind"): Promise<Uint8Array[]> {
    const k = scalarFromBytes(scalar);
    const out: Uint8Array[] = new Array(points.length);
    for (let i = 0; i < points.length; i++) {
      const q = ristretto255.Point.fromBytes(points[i]!);
      if (q.is0())
        throw new CleanRoomError("CRYPTO_INVALID_POINT", `"points[${i}]" expected a non-identity ristretto255 element, got the identity`, {
          field: `points[${i}]`,
        });
      out[i] = q.multiply(k).toBytes();
      if ((i + 1) % CHUNK === 0 || i + 1 === points.length) {
        progress?.(i + 1, points.length, phase);
        await tick();
      }
    }
    return out;
  }

  isValidPoint(p: Uint8Array): boolean {
    if (!(p instanceof Uint8Array) || p.length !== POINT_BYTES || isZero(p)) return false;
    try {
      ristretto255.Point.fromBytes(p);
      return true;
    } catch {
      return false;
    }
  }

  async firstInvalidPoint(points: readonly Uint8Array[]): Promise<number> {
    return points.findIndex((p) => !this.isValidPoint(p));
  }

  async close(): Promise<void> {}
}

// ---------------------------------------------------------------------------------------
// libsodium backend

type Sodium = typeof import("libsodium-wrappers-sumo");
let sodiumReady: Promise<Sodium> | undefined;

/**
 * The initialised libsodium module (WASM), loaded once per thread.
 * @example const sodium = await loadSodium(); sodium.crypto_core_ristretto255_is_valid_point(p)
 */
export function loadSodium(): Promise<Sodium> {
  sodiumReady ??= (async () => {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const s = require("libsodium-wrappers-sumo") as Sodium;
    await s.ready;
    return s;
  })();
  return sodiumReady;
}

/**
 * The per-element kernels shared by the in-thread path and the worker (psi-worker.ts);
 * output is packed (n × 32 bytes).
 * @example sodiumHashAndBlind(await loadSodium(), ["a@x.org"], key, PSI_DST) // 32 bytes
 */
export function sodiumHashAndBlind(s: Sodium, elements: readonly string[], scalar: Uint8Array, dst: string | Uint8Array): Uint8Array {
  const out = new Uint8Array(elements.length * POINT_BYTES);
  // noble would re-encode a string DST for every element (~0.25 s per worker at N = 100k)
  const dstBytes = typeof dst === "string" ? asciiToBytes(dst) : dst;
  for (let i = 0; i < elements.length; i++) {
    const h = s.crypto_core_ristretto255_from_hash(expandForPsi(elements[i]!, dstBytes));
    out.set(s.crypto_scalarmult_ristretto255(scalar, h), i * POINT_BYTES);
  }
  return out;
}

export function sodiumBlind(s: Sodium, packed: Uint8Array, scalar: Uint8Array): Uint8Array {
  const n = packed.length / POINT_BYTES;
  const out = new Uint8Array(packed.length);
  for (let i = 0; i < n; i++) {
    // throws "result is identity element" for the identity / invalid input
    out.set(s.crypto_scalarmult_ristretto255(scalar, packed.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES)), i * POINT_BYTES);
  }
  return out;
}

/** 1 per valid (canonical, non-identity) packed point, 0 otherwise. */
export function sodiumValidate(s: Sodium, packed: Uint8Array): Uint8Array {
  const n = packed.length / POINT_BYTES;
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const p = packed.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES);
    out[i] = !isZero(p) && s.crypto_core_ristretto255_is_valid_point(p) ? 1 : 0;
  }
  return out;
}

/** One worker job (also run in-thread when there are no workers). */
export function runJob(s: Sodium, j: Job, scalar: Uint8Array, dst: string | Uint8Array): Uint8Array {
  switch (j.op) {
    case "hash":
      return sodiumHashAndBlind(s, j.elements, scalar, dst);
    case "blind":
      return sodiumBlind(s, j.packed, scalar);
    case "validate":
      return sodiumValidate(s, j.packed);
    case "derive":
      return deriveJoinKeysPacked(j.packed, j.salt, j.info);
  }
}

/** Concatenate 32-byte points (for transfer to workers). @example unpack(pack(points)) */
export const pack = (points: readonly Uint8Array[]): Uint8Array => {
  const out = new Uint8Array(points.length * POINT_BYTES);
  points.forEach((p, i) => out.set(p, i * POINT_BYTES));
  return out;
};
/** Split packed points back into 32-byte arrays. @example unpack(pack(points)) */
export const unpack = (packed: Uint8Array): Uint8Array[] => {
  const out: Uint8Array[] = new Array(packed.length / POINT_BYTES);
  for (let i = 0; i < out.length; i++) out[i] = packed.slice(i * POINT_BYTES, (i + 1) * POINT_BYTES);
  return out;
};

export interface SodiumBackendOptions {
  /** Worker threads; default all cores (`os.availableParallelism()`); 1 = in-thread. */
  threads?: number;
  /** Path of the compiled `psi-worker.js`; default: next to this file when running from dist. */
  workerScript?: string;
  dst?: string;
}

/**
 * Where the compiled worker lives. Running from `dist/` it sits next to this file; running
 * from TypeScript sources (vitest) there is no compiled worker beside us, and we do not
 * reach into a possibly stale `dist/`: the backend then works in-thread.
 */
export function defaultWorkerScript(): string | undefined {
  if (!__filename.endsWith(".js")) return undefined;
  const p = path.join(__dirname, "psi-worker.js");
  return fs.existsSync(p) ? p : undefined;
}

export type Job =
  | { op: "hash"; elements: string[] }
  | { op: "blind"; packed: Uint8Array }
  | { op: "validate"; packed: Uint8Array }
  | { op: "derive"; packed: Uint8Array; salt: Uint8Array; info: Uint8Array };

interface QueuedJob {
  job: Job;
  scalar: Uint8Array;
  /** False once another job of the same run failed: skip it. */
  alive(): boolean;
  done(r: Uint8Array): void;
  fail(e: unknown): void;
}

/** libsodium (WASM) backend; bulk work is split into chunks over worker threads. */
export class SodiumBackend implements PsiBackend {
  readonly name = "libsodium" as const;
  readonly threads: number;
  private readonly script: string | undefined;
  private readonly dst: string;
  private workers: import("node:worker_threads").Worker[] = [];
  /** An error a worker raised while no job was waiting on it (e.g. while loading). */
  private workerError: Error | undefined;
  private sodium: Sodium | undefined;

  constructor(options: SodiumBackendOptions = {}) {
    const t = options.threads ?? os.availableParallelism();
    if (!Number.isInteger(t) || t < 1 || t > 256) invalid("threads", "integer in [1, 256]", t);
    this.dst = options.dst ?? PSI_DST;
    this.script = t > 1 ? (options.workerScript ?? defaultWorkerScript()) : undefined;
    if (options.workerScript !== undefined && !fs.existsSync(options.workerScript))
      invalid("workerScript", "path of an existing psi-worker.js", options.workerScript);
    this.threads = this.script ? t : 1;
  }

  /**
   * Load libsodium for validation and in-thread work, and start the workers (each loads its
   * own libsodium meanwhile, off the critical path). Call once before `isValidPoint`.
   */
  async init(): Promise<this> {
    if (this.script) await this.ensureWorkers();
    this.sodium = await loadSodium();
    return this;
  }

  isValidPoint(p: Uint8Array): boolean {
    const s = this.sodium ?? bug("SodiumBackend.init() was not awaited");
    return p instanceof Uint8Array && p.length === POINT_BYTES && !isZero(p) && s.crypto_core_ristretto255_is_valid_point(p);
  }

  async hashAndBlind(
    elements: readonly string[],
    scalar: Uint8Array,
    progress?: ProgressFn,
    phase = "hash-and-blind",
  ): Promise<Uint8Array[]> {
    return unpack(await this.hashAndBlindPacked(elements, scalar, progress, phase));
  }

  async hashAndBlindPacked(
    elements: readonly string[],
    scalar: Uint8Array,
    progress?: ProgressFn,
    phase = "hash-and-blind",
  ): Promise<Uint8Array> {
    scalarFromBytes(scalar);
    const jobs: Job[] = [];
    const size = this.chunkSize(elements.length);
    for (let i = 0; i < elements.length; i += size) jobs.push({ op: "hash", elements: elements.slice(i, i + size) });
    return this.run(jobs, scalar, elements.length, progress, phase);
  }

  async blind(points: readonly Uint8Array[], scalar: Uint8Array, progress?: ProgressFn, phase = "blind"): Promise<Uint8Array[]> {
    if (points.some((p) => !(p instanceof Uint8Array) || p.length !== POINT_BYTES))
      throw new CleanRoomError("CRYPTO_INVALID_POINT", `"points" expected 32-byte ristretto255 encodings, got another length`, {
        field: "points",
      });
    return unpack(await this.blindPacked(pack(points), scalar, progress, phase));
  }

  /** Chunks of a packed buffer as their own (transferable) copies: a view would clone the whole buffer. */
  private packedJobs(packed: Uint8Array, unit: number, make: (chunk: Uint8Array) => Job): Job[] {
    const n = packed.length / unit;
    const size = this.chunkSize(n);
    const jobs: Job[] = [];
    for (let i = 0; i < n; i += size) jobs.push(make(packed.slice(i * unit, Math.min(n, i + size) * unit)));
    return jobs;
  }

  async blindPacked(packed: Uint8Array, scalar: Uint8Array, progress?: ProgressFn, phase = "blind"): Promise<Uint8Array> {
    scalarFromBytes(scalar);
    if (!(packed instanceof Uint8Array) || packed.length % POINT_BYTES !== 0) bug("packed points expected");
    const jobs = this.packedJobs(packed, POINT_BYTES, (c) => ({ op: "blind", packed: c }));
    try {
      return await this.run(jobs, scalar, packed.length / POINT_BYTES, progress, phase);
    } catch (e) {
      if (e instanceof CleanRoomError) throw e;
      throw new CleanRoomError(
        "CRYPTO_INVALID_POINT",
        `"points" expected non-identity ristretto255 elements, got an element libsodium refused`,
        { field: "points" },
      );
    }
  }

  async firstInvalidPoint(points: readonly Uint8Array[]): Promise<number> {
    if (points.some((p) => !(p instanceof Uint8Array) || p.length !== POINT_BYTES))
      return points.findIndex((p) => !(p instanceof Uint8Array) || p.length !== POINT_BYTES);
    return this.firstInvalidPacked(pack(points));
  }

  async firstInvalidPacked(packed: Uint8Array): Promise<number> {
    const n = packed.length / POINT_BYTES;
    if (!this.script || n < 4096) {
      for (let i = 0; i < n; i++) if (!this.isValidPoint(packed.subarray(i * POINT_BYTES, (i + 1) * POINT_BYTES))) return i;
      return -1;
    }
    const jobs = this.packedJobs(packed, POINT_BYTES, (c) => ({ op: "validate", packed: c }));
    const flags = await this.run(jobs, new Uint8Array(32), n, undefined, "validate", 1);
    return flags.indexOf(0);
  }

  async deriveJoinKeysPacked(packed: Uint8Array, salt: Uint8Array, info: Uint8Array): Promise<Uint8Array> {
    const n = packed.length / POINT_BYTES;
    if (!this.script || n < 4096) return deriveJoinKeysPacked(packed, salt, info);
    const jobs = this.packedJobs(packed, POINT_BYTES, (c) => ({ op: "derive", packed: c, salt, info }));
    return this.run(jobs, new Uint8Array(32), n, undefined, "derive", JOIN_KEY_BYTES);
  }

  /**
   * Even chunks of at most ~1024 elements, as many as a multiple of the thread count, so all
   * workers finish a phase together (the old 4096-element chunks left one worker idle for up
   * to a chunk, ~0.45 s of hashing, at the end of every phase).
   */
  private chunkSize(n: number): number {
    const chunks = Math.max(1, Math.ceil(Math.ceil(n / 1024) / this.threads)) * this.threads;
    return Math.max(1, Math.ceil(n / chunks));
  }

  private async run(
    jobs: Job[],
    scalar: Uint8Array,
    total: number,
    progress: ProgressFn | undefined,
    phase: string,
    unit = POINT_BYTES,
  ): Promise<Uint8Array> {
    const results: Uint8Array[] = new Array(jobs.length);
    let done = 0;
    const finish = (i: number, r: Uint8Array) => {
      results[i] = r;
      done += r.length / unit;
      progress?.(done, total, phase);
    };
    if (!this.script) {
      const s = this.sodium ?? (await this.init()).sodium!;
      for (let i = 0; i < jobs.length; i++) {
        const j = jobs[i]!;
        finish(i, runJob(s, j, scalar, this.dst));
        await tick();
      }
    } else {
      await this.ensureWorkers();
      // Jobs join one queue that every idle worker takes from, so phases that run at the same
      // time (a PSI server hashing its own set while the client's request is being blinded)
      // share the workers instead of waiting for each other. A failed job fails its run; the
      // run's other queued jobs are dropped.
      await new Promise<void>((resolve, reject) => {
        let left = jobs.length;
        let failed = false;
        const entries = jobs.map((job, i) => ({
          job,
          scalar,
          alive: () => !failed,
          done: (r: Uint8Array) => {
            if (failed) return;
            finish(i, r);
            if (--left === 0) resolve();
          },
          fail: (e: unknown) => {
            if (failed) return;
            failed = true;
            reject(e);
          },
        }));
        if (entries.length === 0) resolve();
        this.queue.push(...entries);
        this.pump();
      });
    }
    const out = new Uint8Array(total * unit);
    let off = 0;
    for (const r of results) {
      out.set(r, off);
      off += r.length;
    }
    return out;
  }

  private readonly queue: QueuedJob[] = [];
  private readonly idle: import("node:worker_threads").Worker[] = [];

  /** Hand queued jobs to idle workers; a worker holds the process alive only while busy. */
  private pump(): void {
    while (this.idle.length > 0 && this.queue.length > 0) {
      const q = this.queue.shift()!;
      if (!q.alive()) continue;
      const w = this.idle.pop()!;
      w.ref();
      this.post(w, q.job, q.scalar).then(
        (r) => {
          w.unref();
          if (this.workers.includes(w)) this.idle.push(w);
          q.done(r);
          this.pump();
        },
        (e: unknown) => {
          w.unref();
          if (this.workers.includes(w)) this.idle.push(w);
          q.fail(e);
          this.pump();
        },
      );
    }
  }

  private async ensureWorkers(): Promise<void> {
    if (this.workers.length > 0) return;
    const { Worker } = await import("node:worker_threads");
    this.workers = Array.from({ length: this.threads }, () => {
      const w = new Worker(this.script!, { workerData: { dst: this.dst } });
      w.on("error", (e) => (this.workerError ??= e));
      w.unref();
      return w;
    });
    this.idle.push(...this.workers);
  }

  private post(w: import("node:worker_threads").Worker, job: Job, scalar: Uint8Array): Promise<Uint8Array> {
    return new Promise((resolve, reject) => {
      if (this.workerError) return reject(this.workerError);
      const onMsg = (m: { ok: true; packed: Uint8Array } | { ok: false; error: string }) => {
        w.off("error", onErr);
        if (m.ok) resolve(m.packed);
        else reject(new Error(m.error));
      };
      const onErr = (e: Error) => {
        w.off("message", onMsg);
        reject(e);
      };
      w.once("message", onMsg);
      w.once("error", onErr);
      w.postMessage({ ...job, scalar }, "packed" in job ? [job.packed.buffer as ArrayBuffer] : []);
    });
  }

  async close(): Promise<void> {
    const ws = this.workers;
    this.workers = [];
    this.idle.length = 0;
    for (const q of this.queue.splice(0))
      q.fail(new CleanRoomError("STATE_INVALID", `"backend" expected an open backend, got one closed`, { field: "backend" }));
    await Promise.all(ws.map((w) => w.terminate()));
  }
}

export interface BackendOptions extends SodiumBackendOptions {
  backend?: BackendName;
}

/**
 * Build and initialise a backend.
 *
 * @example
 * const be = await makeBackend({ backend: "libsodium", threads: 2 });
 * try { await be.hashAndBlind(["a@x.org"], randomScalar(secureRng())) } finally { await be.close() }
 */
export async function makeBackend(options: BackendOptions = {}): Promise<PsiBackend> {
  const name = options.backend ?? "libsodium";
  if (name === "noble") return new NobleBackend(options.dst);
  if (name === "libsodium") return new SodiumBackend(options).init();
  return invalid("backend", `"noble" or "libsodium"`, name);
}
