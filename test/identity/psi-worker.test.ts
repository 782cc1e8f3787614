/**
 * The worker-thread path of the libsodium backend runs only from the compiled library
 * (workers load dist/identity/psi-worker.js), so this test drives the BUILT dist. Build
 * first (`node node_modules/typescript/bin/tsc -b`); without dist the test is skipped.
 */
import { describe, expect, it } from "vitest";
import * as fs from "node:fs";
import * as path from "node:path";
import { createRequire } from "node:module";

const DIST = path.resolve(process.cwd(), "kernel-lib/dist/identity");
const built = fs.existsSync(path.join(DIST, "psi-worker.js")) && fs.existsSync(path.join(DIST, "run-psi.js"));
if (!built) console.warn(`[psi-worker] ${DIST} has no compiled worker: build kernel-lib to run the worker-thread tests`);
const req = createRequire(import.meta.url);

describe.skipIf(!built)("libsodium backend on worker threads (built dist)", () => {
  const { runPsi } = built ? req(path.join(DIST, "run-psi.js")) : ({} as never);
  const { KeyRegistry, deriveJoinKey } = built ? req(path.join(DIST, "psi.js")) : ({} as never);
  const { SodiumBackend, randomScalar, pack } = built ? req(path.join(DIST, "psi-backend.js")) : ({} as never);
  const { seededRng } = built ? req(path.resolve(DIST, "../rng.js")) : ({} as never);

  const A = Array.from({ length: 700 }, (_, i) => ({ email: `user${i}@example.com` }));
  const B = Array.from({ length: 600 }, (_, i) => ({ email: `USER${i + 300}@example.com` }));

  it("two workers give exactly the in-thread result (same seed, separate key registries)", async () => {
    const progress: number[] = [];
    const multi = await runPsi(A, B, {
      threads: 2,
      rng: { seed: "w" },
      registry: new KeyRegistry(),
      progress: (d: number) => progress.push(d),
    });
    const single = await runPsi(A, B, { threads: 1, rng: { seed: "w" }, registry: new KeyRegistry() });
    expect(multi.matchReport.threads).toBe(2);
    expect(single.matchReport.threads).toBe(1);
    expect(multi.joinKeysA).toEqual(single.joinKeysA);
    expect(multi.joinKeysB).toEqual(single.joinKeysB);
    expect(multi.transcript.map((t: { sha256: string }) => t.sha256)).toEqual(single.transcript.map((t: { sha256: string }) => t.sha256));
    expect(multi.matchReport.intersectionSize).toBe(400);
    expect(progress.length).toBeGreaterThan(4);
  });

  it("a worker refusing an invalid point surfaces as CRYPTO_INVALID_POINT", async () => {
    const be = await new SodiumBackend({ threads: 2 }).init();
    try {
      const k = randomScalar(seededRng("wk"));
      const good = (await be.hashAndBlind(["a@x.org"], k))[0];
      await expect(be.blind([good, new Uint8Array(32)], k)).rejects.toThrow(/CRYPTO_INVALID_POINT/);
    } finally {
      await be.close();
    }
  });

  it("validates large batches on the workers, finding the first invalid point", async () => {
    const be = await new SodiumBackend({ threads: 2 }).init();
    try {
      const k = randomScalar(seededRng("wv"));
      const pts = await be.hashAndBlind(
        Array.from({ length: 5000 }, (_, i) => `v${i}@x.org`),
        k,
      );
      expect(await be.firstInvalidPoint(pts)).toBe(-1);
      const bad = pts.slice();
      bad[4321] = Uint8Array.from(Buffer.from("ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", "hex"));
      bad[4500] = new Uint8Array(32);
      expect(await be.firstInvalidPoint(bad)).toBe(4321);
      bad[4321] = pts[4321];
      expect(await be.firstInvalidPoint(bad)).toBe(4500);
    } finally {
      await be.close();
    }
  });

  it("derives join keys on the workers, byte for byte the keys deriveJoinKey (noble HKDF) gives", async () => {
    const be = await new SodiumBackend({ threads: 2 }).init();
    try {
      const k = randomScalar(seededRng("wd"));
      const pts: Uint8Array[] = await be.hashAndBlind(
        Array.from({ length: 5000 }, (_, i) => `d${i}@x.org`),
        k,
      );
      const sid = "0123456789abcdef0123456789abcdef";
      const info = "cleanroom-lab/psi/v1/join-key/room-7";
      const keys: Uint8Array = await be.deriveJoinKeysPacked(pack(pts), Buffer.from(sid), Buffer.from(info));
      expect(keys.length).toBe(5000 * 16);
      for (const i of [0, 1, 2047, 2048, 4096, 4999])
        expect("jk_" + Buffer.from(keys.subarray(i * 16, (i + 1) * 16)).toString("hex")).toBe(deriveJoinKey(pts[i], sid, "room-7"));
      // a different label gives different keys (the info is bound)
      const other: Uint8Array = await be.deriveJoinKeysPacked(pack(pts), Buffer.from(sid), Buffer.from(info + "x"));
      expect(Buffer.from(other.subarray(0, 16)).equals(Buffer.from(keys.subarray(0, 16)))).toBe(false);
    } finally {
      await be.close();
    }
  });
});
