/**
 * A sealed file: any file (here the DuckDB-written Parquet of a file-backed dataset) encrypted
 * for rest in AES-256-GCM chunks, streaming, with WebCrypto (Node's OpenSSL) — no primitive
 * is written here, only the framing.
 *
 * Format: a 12-byte header (`CRLSEAL1` + the plaintext chunk size, u32 big-endian), then the
 * chunks, each `ciphertext ‖ tag` of at most `chunk` plaintext bytes. Chunk i is sealed under
 * the file's own key with nonce `u64be(i) ‖ u32be(final ? 1 : 0)` and the header as associated
 * data. Every file has a fresh random key, so counter nonces never repeat under a key; the
 * final flag makes a file cut at a chunk boundary fail authentication; the index makes
 * reordered chunks fail.
 *
 * Why not DuckDB's own Parquet encryption: @duckdb/node-api 1.5.6 writes encrypted Parquet
 * only with the httpfs extension loaded (OpenSSL) — not shipped, and downloaded at run time —
 * or in an mbedtls mode its makers label "NOT securely encrypted" (`force_mbedtls_unsafe`).
 *
 * Threat model: the file sits next to the room's SQLite store; whoever reads the disk sees
 * only its length. The key lives in the purpose gate's sealed descriptor (file-dataset.ts),
 * released only for an approved, purpose-granted query, exactly like a table blob's key.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as nodePath from "node:path";
import { webcrypto } from "node:crypto";
import { CleanRoomError } from "../errors.js";

const MAGIC = Buffer.from("CRLSEAL1", "latin1");
const HEADER = 12;
const TAG = 16;
/** Plaintext bytes per chunk (4 MiB). */
export const SEAL_CHUNK = 4 * 1024 * 1024;

/** `(doneBytes, totalBytes)` while a file is sealed or opened. */
export type ByteProgress = (done: number, total: number) => void | Promise<void>;

function nonce(i: number, final: boolean): Uint8Array {
  const n = new Uint8Array(12);
  const v = new DataView(n.buffer);
  v.setUint32(0, Math.floor(i / 2 ** 32));
  v.setUint32(4, i >>> 0);
  v.setUint32(8, final ? 1 : 0);
  return n;
}

const importKey = (key: Uint8Array, use: "encrypt" | "decrypt") => {
  if (!(key instanceof Uint8Array) || key.length !== 32)
    throw new CleanRoomError("CRYPTO_INVALID_KEY", `"key" expected 32 bytes`, { field: "key", expected: "32 bytes" });
  return webcrypto.subtle.importKey("raw", key, "AES-GCM", false, [use]);
};

function readFully(fd: number, buf: Buffer, pos: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = fs.readSync(fd, buf, got, buf.length - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

function writeFully(fd: number, b: Uint8Array): void {
  let off = 0;
  while (off < b.length) off += fs.writeSync(fd, b, off, b.length - off);
}

/**
 * Encrypt `plainPath` into `sealedPath` (created, mode 0600, fsynced before returning).
 * @example await sealFile("/tmp/w/plain.parquet", "/room.files/.tmp-1-ab.sealed", key)
 */
export async function sealFile(
  plainPath: string,
  sealedPath: string,
  key: Uint8Array,
  progress?: ByteProgress,
  chunk = SEAL_CHUNK,
): Promise<number> {
  const k = await importKey(key, "encrypt");
  const total = fs.statSync(plainPath).size;
  const header = Buffer.alloc(HEADER);
  MAGIC.copy(header, 0);
  header.writeUInt32BE(chunk, 8);
  const src = fs.openSync(plainPath, "r");
  const dst = fs.openSync(sealedPath, "wx", 0o600);
  let written = 0;
  try {
    writeFully(dst, header);
    written += HEADER;
    const buf = Buffer.alloc(chunk);
    let pos = 0;
    for (let i = 0; ; i++) {
      const n = readFully(src, buf, pos);
      pos += n;
      const final = pos >= total;
      const ct = new Uint8Array(
        await webcrypto.subtle.encrypt({ name: "AES-GCM", iv: nonce(i, final), additionalData: header }, k, buf.subarray(0, n)),
      );
      writeFully(dst, ct);
      written += ct.length;
      await progress?.(pos, total);
      if (final) break;
    }
    fs.fsyncSync(dst);
  } finally {
    fs.closeSync(src);
    fs.closeSync(dst);
  }
  return written;
}

const tampered = () =>
  new CleanRoomError("CRYPTO_DECRYPT_FAILED", "a sealed dataset file failed authentication: wrong key, or the file was changed", {
    field: "file",
  });

/**
 * Decrypt `sealedPath` into `plainPath` (created, mode 0600). `CRYPTO_DECRYPT_FAILED` for a
 * wrong key or any change to the file (bit flip, cut, reorder, appended bytes); the partial
 * output is removed then.
 * @example await openSealedFile("/room.files/1-ab.sealed", "/dev/shm/crl-x/ab.parquet", key)
 */
export async function openSealedFile(sealedPath: string, plainPath: string, key: Uint8Array, progress?: ByteProgress): Promise<void> {
  const dst = fs.openSync(plainPath, "wx", 0o600);
  let ok = false;
  try {
    await decryptInto(sealedPath, dst, key, progress);
    ok = true;
  } finally {
    fs.closeSync(dst);
    if (!ok) fs.rmSync(plainPath, { force: true });
  }
}

/** A decrypted copy that has no name: {@link openSealedAnonymous}. */
export interface AnonymousCopy {
  /** A path that opens the copy (`/proc/self/fd/N` on Linux) while it is open. */
  readonly path: string;
  close(): void;
}

/**
 * Decrypt `sealedPath` into a file that is unlinked before the first plaintext byte is written
 * (Linux: a private RAM-backed directory, then `/proc/self/fd/N` opens it): no name ever points
 * at the plaintext, and a crash — even kill -9 — frees it with the process. Elsewhere a named
 * file in a private directory, removed by `close()` or at exit.
 * @example const copy = await openSealedAnonymous(ref.file, ref.key); read_parquet(copy.path); copy.close()
 */
export async function openSealedAnonymous(sealedPath: string, key: Uint8Array): Promise<AnonymousCopy> {
  const dir = privateDir("crl-plain-");
  const file = nodePath.join(dir, "plain");
  const fd = fs.openSync(file, "wx+", 0o600);
  const anonymous = fs.existsSync(`/proc/self/fd/${fd}`);
  if (anonymous) removePrivateDir(dir); // the open descriptor keeps the (nameless) file
  let ok = false;
  try {
    await decryptInto(sealedPath, fd, key);
    ok = true;
  } finally {
    if (!ok) {
      fs.closeSync(fd);
      removePrivateDir(dir);
    }
  }
  let open = true;
  return {
    path: anonymous ? `/proc/self/fd/${fd}` : file,
    close() {
      if (!open) return;
      open = false;
      fs.closeSync(fd);
      removePrivateDir(dir);
    },
  };
}

async function decryptInto(sealedPath: string, dst: number, key: Uint8Array, progress?: ByteProgress): Promise<void> {
  const k = await importKey(key, "decrypt");
  const size = fs.statSync(sealedPath).size;
  const src = fs.openSync(sealedPath, "r");
  try {
    const header = Buffer.alloc(HEADER);
    if (readFully(src, header, 0) !== HEADER || !header.subarray(0, 8).equals(MAGIC)) throw tampered();
    const chunk = header.readUInt32BE(8);
    if (chunk === 0 || chunk > 64 * 1024 * 1024) throw tampered();
    const buf = Buffer.alloc(chunk + TAG);
    let pos = HEADER;
    for (let i = 0; ; i++) {
      const n = readFully(src, buf, pos);
      if (n < TAG) throw tampered();
      pos += n;
      const final = pos >= size;
      let pt: ArrayBuffer;
      try {
        pt = await webcrypto.subtle.decrypt({ name: "AES-GCM", iv: nonce(i, final), additionalData: header }, k, buf.subarray(0, n));
      } catch {
        throw tampered();
      }
      writeFully(dst, new Uint8Array(pt));
      await progress?.(pos, size);
      if (final) break;
    }
  } finally {
    fs.closeSync(src);
  }
}

const privateDirs = new Set<string>();
let exitHook = false;

/** A private (0700) directory removed at process exit; in RAM (`/dev/shm`) when the system has it. */
export function privateDir(prefix: string, ram = true): string {
  const base = ram && fs.existsSync("/dev/shm") ? "/dev/shm" : os.tmpdir();
  const d = fs.mkdtempSync(nodePath.join(base, prefix));
  fs.chmodSync(d, 0o700);
  privateDirs.add(d);
  if (!exitHook) {
    exitHook = true;
    process.once("exit", () => {
      for (const p of privateDirs) fs.rmSync(p, { recursive: true, force: true });
    });
  }
  return d;
}

/** Remove a directory made by {@link privateDir}. */
export function removePrivateDir(d: string): void {
  fs.rmSync(d, { recursive: true, force: true });
  privateDirs.delete(d);
}
