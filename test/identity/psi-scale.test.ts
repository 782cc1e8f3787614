/**
 * What the issue-18 scaling changes must not change (psi.ts, psi-backend.ts): the transcript
 * digest (hashed in blocks) is the SHA-256 of the message's JSON; a duplicate is reported at the
 * same position the old Set check named; the server's own set hashed early (`precompute`) gives
 * the same messages and is refused before any multiplication when bad; and the worker job
 * queue shared by concurrent phases gives the results of sequential runs (built dist).
 */
import { createHash } from "node:crypto";
import * as fs from "node:fs";
import { createRequire } from "node:module";
import * as path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { SodiumBackend, type PsiBackend } from "../../kernel-lib/src/identity/psi-backend.js";
import { counting } from "../helpers/psi-counting.js";
import { KeyRegistry, PsiClient, PsiServer, type PsiMessage } from "../../kernel-lib/src/identity/psi.js";

let sodium: SodiumBackend;
beforeAll(async () => {
  sodium = await new SodiumBackend({ threads: 1 }).init();
});

const emails = (p: string, n: number, off = 0) => Array.from({ length: n }, (_, i) => `${p}${i + off}@example.com`);

function pair(seed: string, backend: PsiBackend = sodium) {
  const rng = seededRng(seed);
  const registry = new KeyRegistry();
  return {
    client: new PsiClient({ mode: "joinKeys", backend, rng: rng.fork("a"), registry }),
    server: new PsiServer({ mode: "joinKeys", backend, rng: rng.fork("b"), registry }),
  };
}

const sha = (m: PsiMessage) => createHash("sha256").update(JSON.stringify(m)).digest("hex");

describe("PSI at scale keeps its observable behaviour", () => {
  it("each transcript entry's sha256 and bytes are those of JSON.stringify(message), across several 8192-element blocks", async () => {
    const { client, server } = pair("digest");
    const x = emails("d", 9000); // two blocks of 8192
    const request = await client.createRequest(x);
    const { setup, response } = await server.processRequest(request, emails("d", 1000, 8500));
    const out = await client.processResponse(setup, response);
    if (out.mode !== "joinKeys") throw new Error("mode");
    const sent = { "psi.request": request, "psi.setup": setup, "psi.response": response, "psi.finish": out.finish };
    for (const e of [...client.transcript, ...server.transcript]) {
      const m = sent[e.kind];
      expect(e.sha256, `${e.direction} ${e.kind}`).toBe(sha(m));
      expect(e.bytes).toBe(JSON.stringify(m).length);
      expect(e.count).toBe(m.encryptedElements.length);
    }
    expect(out.intersectionSize).toBe(500);
  });

  it("a duplicate is named at the later of its two positions (the first repeat), however far apart", async () => {
    const request = await pair("dup").client.createRequest(emails("q", 9000));
    for (const [first, second] of [
      [3, 7],
      [0, 8999],
      [5000, 5001],
    ] as const) {
      const { server } = pair(`dup-${first}-${second}`);
      const els = request.encryptedElements.slice();
      els[second] = els[first]!;
      els[8500] = els[8400]!; // a second, later duplicate: not the one named unless it is first
      const bad = { ...request, encryptedElements: els };
      const want = Math.min(second, 8500);
      await expect(server.processRequest(bad, ["a@x.org"])).rejects.toThrow(
        new RegExp(`PSI_DUPLICATE_ELEMENT.*"psi\\.request\\.encryptedElements\\[${want}\\]"`),
      );
    }
  });

  it("precompute: the same setup and response as without it; a bad own set is refused before any multiplication", async () => {
    const x = emails("p", 300);
    const y = emails("p", 250, 100);
    const plain = pair("pre");
    const early = pair("pre");
    const r1 = await plain.client.createRequest(x);
    const r2 = await early.client.createRequest(x);
    early.server.precompute(y);
    const a = await plain.server.processRequest(r1, y);
    const b = await early.server.processRequest(r2, y);
    expect(b.setup).toEqual(a.setup);
    expect(b.response).toEqual(a.response);

    const { be, c } = counting(sodium);
    const bad = pair("pre-bad", be);
    expect(() => bad.server.precompute(["a@x.org", "a@x.org"])).toThrow(/PSI_DUPLICATE_ELEMENT.*"elements\[1\]"/);
    expect(c.mults).toBe(0);
    const req = await pair("pre-bad-2").client.createRequest(["z@x.org"]);
    await expect(bad.server.processRequest(req, ["b@x.org"])).rejects.toThrow(/PSI_SESSION_ABORTED/);
  });
});

const DIST = path.resolve(process.cwd(), "kernel-lib/dist/identity");
const built = fs.existsSync(path.join(DIST, "psi-worker.js"));
const req = createRequire(import.meta.url);

describe.skipIf(!built)("the worker job queue (built dist)", () => {
  it("two phases at once on two workers give exactly what each gives alone; a failing one fails only itself", async () => {
    const { SodiumBackend: Built, randomScalar } = req(path.join(DIST, "psi-backend.js"));
    const { seededRng: rng } = req(path.resolve(DIST, "../rng.js"));
    const be = await new Built({ threads: 2 }).init();
    const alone = await new Built({ threads: 1 }).init();
    try {
      const k1 = randomScalar(rng("q1"));
      const k2 = randomScalar(rng("q2"));
      const e1 = emails("w", 2500);
      const e2 = emails("v", 2000);
      const [p1, p2] = await Promise.all([be.hashAndBlindPacked(e1, k1), be.hashAndBlindPacked(e2, k2)]);
      expect(Buffer.from(p1).equals(Buffer.from(await alone.hashAndBlindPacked(e1, k1)))).toBe(true);
      expect(Buffer.from(p2).equals(Buffer.from(await alone.hashAndBlindPacked(e2, k2)))).toBe(true);
      // an identity point in one run's input: that run is refused, the concurrent one completes
      const bad = new Uint8Array(p1.length);
      bad.set(p1);
      bad.fill(0, 32 * 2100, 32 * 2101);
      const [r1, r2] = await Promise.allSettled([be.blindPacked(bad, k2), be.blindPacked(p2, k1)]);
      expect(r1.status).toBe("rejected");
      expect(r2.status).toBe("fulfilled");
      expect(Buffer.from((r2 as PromiseFulfilledResult<Uint8Array>).value).equals(Buffer.from(await alone.blindPacked(p2, k1)))).toBe(true);
    } finally {
      await be.close();
      await alone.close();
    }
  });
});
