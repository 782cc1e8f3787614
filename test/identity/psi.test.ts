import { beforeAll, describe, expect, it } from "vitest";
import * as fc from "fast-check";
import { sha256 } from "@noble/hashes/sha2.js";
import { ristretto255_hasher } from "@noble/curves/ed25519.js";
import { hex, utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { seededRng } from "../../kernel-lib/src/rng.js";
import {
  NobleBackend,
  PSI_DST,
  SodiumBackend,
  makeBackend,
  randomScalar,
  type PsiBackend,
} from "../../kernel-lib/src/identity/psi-backend.js";
import { KeyRegistry, PsiClient, PsiServer, type PsiMode, type PsiRequest } from "../../kernel-lib/src/identity/psi.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";

/** Wraps a backend and counts scalar multiplications, to prove validation happens first. */
class CountingBackend implements PsiBackend {
  mults = 0;
  constructor(private readonly inner: PsiBackend) {}
  get name() {
    return this.inner.name;
  }
  get threads() {
    return this.inner.threads;
  }
  hashAndBlind(e: readonly string[], k: Uint8Array) {
    this.mults += e.length;
    return this.inner.hashAndBlind(e, k);
  }
  blind(p: readonly Uint8Array[], k: Uint8Array) {
    this.mults += p.length;
    return this.inner.blind(p, k);
  }
  isValidPoint(p: Uint8Array) {
    return this.inner.isValidPoint(p);
  }
  close() {
    return this.inner.close();
  }
}

let sodium: SodiumBackend;
beforeAll(async () => {
  sodium = await new SodiumBackend({ threads: 1 }).init();
});

const emails = (prefix: string, n: number, offset = 0) => Array.from({ length: n }, (_, i) => `${prefix}${i + offset}@example.com`);

async function session(
  mode: PsiMode,
  x: string[],
  y: string[],
  backend: PsiBackend = sodium,
  seed = "s",
  keys?: { a: Uint8Array; b: Uint8Array },
) {
  const rng = seededRng(seed);
  const registry = new KeyRegistry();
  const client = new PsiClient({ mode, backend, rng: rng.fork("a"), registry, secretKey: keys?.a });
  const server = new PsiServer({ mode, backend, rng: rng.fork("b"), registry, secretKey: keys?.b });
  const request = await client.createRequest(x);
  const { setup, response } = await server.processRequest(request, y);
  const out = await client.processResponse(setup, response);
  const sOut = out.mode === "joinKeys" ? await server.processFinish(out.finish) : null;
  return { request, setup, response, out, sOut, client, server };
}

describe("PSI modes", () => {
  it("joinKeys: both parties derive the same key for each matched record and none for the others", async () => {
    const x = emails("u", 6); // u0..u5
    const y = emails("u", 6, 3); // u3..u8
    const { out, sOut } = await session("joinKeys", x, y);
    if (out.mode !== "joinKeys") throw new Error("mode");
    expect(out.intersection).toEqual([3, 4, 5]);
    expect(sOut!.intersection).toEqual([0, 1, 2]);
    for (let i = 0; i < 3; i++) {
      expect(out.joinKeys[3 + i]).toMatch(/^jk_[0-9a-f]{32}$/);
      expect(out.joinKeys[3 + i]).toBe(sOut!.joinKeys[i]);
    }
    expect(out.joinKeys.slice(0, 3)).toEqual([null, null, null]);
    expect(sOut!.joinKeys.slice(3)).toEqual([null, null, null]);
  });

  it("intersection: the client learns which of its elements matched", async () => {
    const { out } = await session("intersection", ["a@x.org", "b@x.org", "c@x.org"], ["c@x.org", "a@x.org", "z@x.org"]);
    expect(out).toEqual({ mode: "intersection", intersectionSize: 2, intersection: [0, 2] });
  });

  it("cardinality: the client learns only the count, from a sorted response", async () => {
    const { out, response } = await session("cardinality", ["a@x.org", "b@x.org", "c@x.org"], ["c@x.org", "a@x.org", "z@x.org"]);
    expect(out).toEqual({ mode: "cardinality", intersectionSize: 2 });
    expect(response.order).toBe("sorted");
    expect([...response.encryptedElements].sort()).toEqual(response.encryptedElements);
  });

  it("the server's setup is sorted, so positions say nothing about its row order", async () => {
    const { setup } = await session("joinKeys", ["a@x.org"], ["q@x.org", "b@x.org", "a@x.org", "m@x.org"]);
    expect([...setup.encryptedElements].sort()).toEqual(setup.encryptedElements);
  });
});

describe("backends", () => {
  it("noble and libsodium produce byte-identical messages and join keys for the same inputs and keys", async () => {
    const rng = seededRng("keys");
    const keys = { a: randomScalar(rng), b: randomScalar(rng) };
    const x = ["alice@example.com", "bob@example.com", "carol@example.com"];
    const y = ["carol@example.com", "dave@example.com", "alice@example.com"];
    const n = await session("joinKeys", x, y, new NobleBackend(), "same", keys);
    const s = await session("joinKeys", x, y, sodium, "same", keys);
    expect(JSON.stringify([n.request, n.setup, n.response])).toBe(JSON.stringify([s.request, s.setup, s.response]));
    if (n.out.mode !== "joinKeys" || s.out.mode !== "joinKeys") throw new Error("mode");
    expect(n.out.finish).toEqual(s.out.finish);
    expect(n.out.joinKeys).toEqual(s.out.joinKeys);
    expect(n.sOut).toEqual(s.sOut);
  });

  it("makeBackend refuses unknown backends and thread counts", async () => {
    await expect(makeBackend({ backend: "openssl" as never })).rejects.toThrow(/"backend" expected/);
    expect(() => new SodiumBackend({ threads: 0 })).toThrow(/"threads" expected integer/);
  });
});

describe("validation before any scalar multiplication", () => {
  async function freshPair(mode: PsiMode = "joinKeys", opts: { maxSetSize?: number; minPeerSetSize?: number } = {}) {
    const backend = new CountingBackend(sodium);
    const rng = seededRng("v");
    const registry = new KeyRegistry();
    const client = new PsiClient({ mode, backend, rng: rng.fork("a"), registry });
    const server = new PsiServer({ mode, backend, rng: rng.fork("b"), registry, ...opts });
    const request = await client.createRequest(["a@x.org", "b@x.org", "c@x.org"]);
    backend.mults = 0;
    return { backend, client, server, request };
  }
  const G = "e2f2ae0a6abc4e71a884a961c500515f58e30b6aa582dd8db6a65945e08d2d76";
  const bad: [string, (r: PsiRequest) => PsiRequest, string][] = [
    [
      "a non-canonical encoding",
      (r) => ({
        ...r,
        encryptedElements: ["ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f", ...r.encryptedElements.slice(1)],
      }),
      "CRYPTO_INVALID_POINT",
    ],
    [
      "a negative field element encoding",
      (r) => ({
        ...r,
        encryptedElements: [...r.encryptedElements.slice(1), "0100000000000000000000000000000000000000000000000000000000000000"],
      }),
      "CRYPTO_INVALID_POINT",
    ],
    [
      "the identity point",
      (r) => ({ ...r, encryptedElements: ["00".repeat(32), ...r.encryptedElements.slice(1)] }),
      "CRYPTO_INVALID_POINT",
    ],
    ["a 31-byte element", (r) => ({ ...r, encryptedElements: [G.slice(2), ...r.encryptedElements.slice(1)] }), "PSI_INVALID_MESSAGE"],
    ["a 33-byte element", (r) => ({ ...r, encryptedElements: [G + "00", ...r.encryptedElements.slice(1)] }), "PSI_INVALID_MESSAGE"],
    [
      "a non-string element",
      (r) => ({ ...r, encryptedElements: [42 as unknown as string, ...r.encryptedElements.slice(1)] }),
      "PSI_INVALID_MESSAGE",
    ],
    [
      "duplicate elements",
      (r) => ({ ...r, encryptedElements: [r.encryptedElements[0]!, r.encryptedElements[0]!, r.encryptedElements[2]!] }),
      "PSI_DUPLICATE_ELEMENT",
    ],
    ["an empty set", (r) => ({ ...r, encryptedElements: [] }), "PSI_EMPTY_SET"],
    ["a wrong protocol", (r) => ({ ...r, protocol: "other/v9" as never }), "PSI_INVALID_MESSAGE"],
    ["a mode the server does not run", (r) => ({ ...r, mode: "intersection" }), "PSI_INVALID_MESSAGE"],
    ["a foreign DST", (r) => ({ ...r, dst: "QUUX" }), "PSI_INVALID_MESSAGE"],
    ["a malformed session id", (r) => ({ ...r, sessionId: "xyz" }), "PSI_INVALID_MESSAGE"],
  ];
  for (const [what, mutate, code] of bad) {
    it(`refuses a request with ${what} (${code}), aborts, multiplies nothing`, async () => {
      const { backend, server, request } = await freshPair();
      await expect(server.processRequest(mutate(request), ["a@x.org"])).rejects.toThrow(new RegExp(`\\[${code}\\]`));
      expect(backend.mults).toBe(0);
      await expect(server.processRequest(request, ["a@x.org"])).rejects.toThrow(/PSI_SESSION_ABORTED/);
    });
  }

  it("refuses a request above the declared size cap", async () => {
    const { backend, server, request } = await freshPair("joinKeys", { maxSetSize: 2 });
    await expect(server.processRequest(request, ["a@x.org"])).rejects.toThrow(/PSI_SET_TOO_LARGE.*at most 2/);
    expect(backend.mults).toBe(0);
  });

  it("refuses a peer set below the minimum size", async () => {
    const { backend, server, request } = await freshPair("joinKeys", { minPeerSetSize: 5 });
    await expect(server.processRequest(request, ["a@x.org"])).rejects.toThrow(/PSI_SET_TOO_SMALL/);
    expect(backend.mults).toBe(0);
  });

  it("the client refuses a tampered response and returns nothing partial", async () => {
    const { backend, client, server, request } = await freshPair();
    const { setup, response } = await server.processRequest(request, ["a@x.org", "z@x.org"]);
    backend.mults = 0;
    const bad = { ...response, encryptedElements: response.encryptedElements.slice(0, 2) };
    await expect(client.processResponse(setup, bad)).rejects.toThrow(/PSI_INVALID_MESSAGE.*exactly 3/);
    expect(backend.mults).toBe(0);
    await expect(client.processResponse(setup, response)).rejects.toThrow(/PSI_SESSION_ABORTED/);
  });

  it("the client refuses an identity, non-canonical or duplicate point in setup or response before any multiplication", async () => {
    const ID = "00".repeat(32),
      NONCANON = "ff".repeat(31) + "7f";
    for (const [where, bad] of [
      ["setup", ID],
      ["setup", NONCANON],
      ["response", ID],
      ["response", NONCANON],
      ["response", "dup"],
    ] as const) {
      const { backend, client, server, request } = await freshPair();
      const { setup, response } = await server.processRequest(request, ["a@x.org", "z@x.org"]);
      backend.mults = 0;
      const swap = (els: string[]) => [bad === "dup" ? els[1]! : bad, ...els.slice(1)];
      const s2 = where === "setup" ? { ...setup, encryptedElements: swap(setup.encryptedElements).sort() } : setup;
      const r2 = where === "response" ? { ...response, encryptedElements: swap(response.encryptedElements) } : response;
      await expect(client.processResponse(s2, r2), `${where} ${bad.slice(0, 4)}`).rejects.toThrow(
        bad === "dup" ? /PSI_DUPLICATE_ELEMENT/ : /CRYPTO_INVALID_POINT/,
      );
      expect(backend.mults).toBe(0);
      await expect(client.processResponse(setup, response)).rejects.toThrow(/PSI_SESSION_ABORTED/);
    }
  });

  it("the client refuses messages from another session", async () => {
    const { client, server, request } = await freshPair();
    const { setup, response } = await server.processRequest(request, ["a@x.org"]);
    await expect(client.processResponse({ ...setup, sessionId: "0".repeat(32) }, response)).rejects.toThrow(
      /PSI_INVALID_MESSAGE.*another session/,
    );
  });

  it("the client refuses an unsorted setup", async () => {
    const { client, server, request } = await freshPair();
    const { setup, response } = await server.processRequest(request, ["a@x.org", "b@x.org", "q@x.org"]);
    await expect(client.processResponse({ ...setup, encryptedElements: [...setup.encryptedElements].reverse() }, response)).rejects.toThrow(
      /sorted/,
    );
  });

  it("own input: duplicates, empty sets and non-strings are refused with field names", async () => {
    let n = 0;
    const mk = () => new PsiClient({ backend: sodium, rng: seededRng(`own-${n++}`), registry: new KeyRegistry() });
    await expect(mk().createRequest(["a@x.org", "a@x.org"])).rejects.toThrow(/PSI_DUPLICATE_ELEMENT.*"elements\[1\]"/);
    await expect(mk().createRequest([])).rejects.toThrow(/PSI_EMPTY_SET/);
    await expect(mk().createRequest(["a", 3 as unknown as string])).rejects.toThrow(/"elements\[1\]" expected non-empty string/);
    // a numeric identifier (phone number, customer id) is not echoed in the error text or details
    const e = await mk()
      .createRequest(["a", 15550134567 as unknown as string])
      .catch((x: unknown) => x as Error & { details: unknown });
    expect(`${e.message} ${JSON.stringify(e.details)}`).not.toContain("15550134567");
  });
});

describe("keys", () => {
  it("refuses to reuse a PSI key across sessions", () => {
    const registry = new KeyRegistry();
    const k = randomScalar(seededRng("k"));
    new PsiClient({ backend: sodium, rng: seededRng("a"), registry, secretKey: k });
    expect(() => new PsiServer({ backend: sodium, rng: seededRng("b"), registry, secretKey: k })).toThrow(/PSI_KEY_REUSE/);
    // the same seed gives the same key: also refused
    new PsiClient({ backend: sodium, rng: seededRng("same"), registry });
    expect(() => new PsiClient({ backend: sodium, rng: seededRng("same"), registry })).toThrow(/PSI_KEY_REUSE/);
  });

  it("runPsi run twice with the same seed still uses fresh keys", async () => {
    const r1 = await runPsi(["a@x.org", "b@x.org"], ["b@x.org"], { rng: { seed: "twice" }, threads: 1 });
    const r2 = await runPsi(["a@x.org", "b@x.org"], ["b@x.org"], { rng: { seed: "twice" }, threads: 1 });
    expect(r1.joinKeysA![1]).not.toBe(r2.joinKeysA![1]);
  });
});

describe("properties (fast-check)", () => {
  const setArb = fc.uniqueArray(fc.integer({ min: 0, max: 20 }), { minLength: 1, maxLength: 7 }).map((a) => a.map((i) => `p${i}@x.org`));

  it("intersection is symmetric, a subset of both inputs, and equals the true intersection", async () => {
    await fc.assert(
      fc.asyncProperty(setArb, setArb, async (x, y) => {
        const ab = await session("intersection", x, y, sodium, `ab${x}|${y}`);
        const ba = await session("intersection", y, x, sodium, `ba${x}|${y}`);
        if (ab.out.mode !== "intersection" || ba.out.mode !== "intersection") return false;
        const fromA = new Set(ab.out.intersection.map((i) => x[i]!));
        const fromB = new Set(ba.out.intersection.map((i) => y[i]!));
        const truth = new Set(x.filter((e) => y.includes(e)));
        expect([...fromA].sort()).toEqual([...fromB].sort());
        expect([...fromA].sort()).toEqual([...truth].sort());
        for (const e of fromA) expect(x.includes(e) && y.includes(e)).toBe(true);
        return true;
      }),
      { numRuns: 25, seed: 42 },
    );
  });

  it("cardinality mode reveals only the count: output has no indices and the response ignores the client's order", async () => {
    const k = { a: randomScalar(seededRng("ka")), b: randomScalar(seededRng("kb")) };
    await fc.assert(
      fc.asyncProperty(setArb, setArb, async (x, y) => {
        const one = await session("cardinality", x, y, sodium, "c1", k);
        const two = await session("cardinality", [...x].reverse(), y, sodium, "c2", k);
        expect(Object.keys(one.out).sort()).toEqual(["intersectionSize", "mode"]);
        expect(one.out.intersectionSize).toBe(x.filter((e) => y.includes(e)).length);
        expect(two.response.encryptedElements).toEqual(one.response.encryptedElements);
        return true;
      }),
      { numRuns: 20, seed: 7 },
    );
  });

  it("two sessions over the same input share no values", async () => {
    await fc.assert(
      fc.asyncProperty(setArb, setArb, async (x, y) => {
        const values = (s: Awaited<ReturnType<typeof session>>) => {
          const v = [s.request, s.setup, s.response].flatMap((m) => m.encryptedElements);
          if (s.out.mode === "joinKeys") v.push(...s.out.finish.encryptedElements, ...(s.out.joinKeys.filter(Boolean) as string[]));
          return v;
        };
        const s1 = new Set(values(await session("joinKeys", x, y, sodium, `one${x}${y}`)));
        for (const v of values(await session("joinKeys", x, y, sodium, `two${x}${y}`))) expect(s1.has(v)).toBe(false);
        return true;
      }),
      { numRuns: 15, seed: 3 },
    );
  });
});

describe("no identifier crosses between parties", () => {
  it("no message contains a raw, normalised, hashed or unkeyed-hash-to-group form of any identifier", async () => {
    const rawA = ["  Alice.Smith+promo@GoogleMail.com", "bob@example.com", "Carol@Example.org "];
    const rawB = ["alicesmith@gmail.com", "dave@example.net", "carol@example.org"];
    const r = await runPsi(rawA, rawB, { keepMessages: true, threads: 1, rng: { seed: "canary" } });
    const canaries = new Set<string>();
    for (const raw of [...rawA, ...rawB]) {
      const norm = raw.trim().toLowerCase();
      for (const form of [raw, raw.trim(), norm, "alicesmith@gmail.com", norm.split("@")[0]!]) {
        canaries.add(form.toLowerCase());
        canaries.add(hex(sha256(utf8(form))));
        canaries.add(Buffer.from(sha256(utf8(form))).toString("base64"));
        canaries.add(hex(ristretto255_hasher.hashToCurve(utf8(form), { DST: PSI_DST }).toBytes()));
      }
    }
    expect(r.messages!.length).toBe(4);
    const wire = JSON.stringify(r.messages).toLowerCase() + JSON.stringify(r.transcript).toLowerCase();
    for (const c of canaries) expect(wire.includes(c.toLowerCase()), `canary leaked`).toBe(false);
    // positive control: the scan does find a planted identifier
    expect((wire + hex(sha256(utf8("bob@example.com")))).includes(hex(sha256(utf8("bob@example.com"))))).toBe(true);
  });
});

describe("runPsi", () => {
  it("attaches join keys per row: repeat rows share a key, rejected and unmatched rows get none", async () => {
    const A = [{ email: "A@x.org" }, { email: "b@x.org" }, { email: "not an email" }, { email: "a@X.org " }];
    const B = [{ email: "a@x.org" }, { email: "c@x.org" }, { email: "a@x.org" }, { email: null }];
    const progress: [number, number, string][] = [];
    const r = await runPsi(A, B, { rng: { seed: "rows" }, threads: 1, progress: (d, t, p) => progress.push([d, t, p]) });
    expect(r.joinKeysA![0]).toMatch(/^jk_/);
    expect(r.joinKeysA![3]).toBe(r.joinKeysA![0]);
    expect(r.joinKeysA![1]).toBeNull();
    expect(r.joinKeysA![2]).toBeNull();
    expect(r.joinKeysB).toEqual([r.joinKeysA![0], null, r.joinKeysA![0], null]);
    expect(r.matchReport.partyA).toMatchObject({
      rows: 4,
      rejectedRows: 1,
      rejectionCounts: { INVALID_CHARACTER: 1 },
      distinctIdentifiers: 2,
      matchedIdentifiers: 1,
      matchedRows: 2,
      matchRate: 0.5,
    });
    expect(r.matchReport.partyB).toMatchObject({
      rows: 4,
      rejectedRows: 1,
      rejectionCounts: { NOT_A_STRING: 1 },
      distinctIdentifiers: 2,
      matchedRows: 2,
    });
    expect(r.rngStamp).toEqual({ rngMode: "seeded", label: "teaching mode — not private" });
    expect(r.transcript.map((t) => `${t.from}->${t.to}:${t.kind}`)).toEqual([
      "A->B:psi.request",
      "B->A:psi.setup",
      "B->A:psi.response",
      "A->B:psi.finish",
    ]);
    expect(JSON.parse(JSON.stringify(r))).toEqual(r); // plain JSON-able data
    const phases = new Set(progress.map((p) => p[2]));
    expect(phases.size).toBe(4);
    for (const ph of phases) {
      const last = progress.filter((p) => p[2] === ph).at(-1)!;
      expect(last[0]).toBe(last[1]);
    }
  });

  it("cardinality mode returns no keys and no matched rows", async () => {
    const r = await runPsi(["a@x.org", "b@x.org"], ["b@x.org"], { mode: "cardinality", threads: 1 });
    expect(r).toMatchObject({ joinKeysA: null, joinKeysB: null, matchedRowsA: null });
    expect(r.matchReport.intersectionSize).toBe(1);
    expect(r.matchReport.partyA.matchRate).toBeNull();
    expect(r.rngStamp).toEqual({ rngMode: "secure" });
  });

  it("refuses a side with no valid identifier", async () => {
    await expect(runPsi(["nope"], ["a@x.org"], { threads: 1 })).rejects.toThrow(/PSI_EMPTY_SET.*"rowsA"/);
  });
});

describe("injected keys", () => {
  it("refuses a zero or out-of-range secret key before anything runs", () => {
    expect(
      () => new PsiClient({ backend: sodium, rng: seededRng("z"), registry: new KeyRegistry(), secretKey: new Uint8Array(32) }),
    ).toThrow(/CRYPTO_INVALID_KEY.*"scalar"/);
    expect(
      () => new PsiClient({ backend: sodium, rng: seededRng("z"), registry: new KeyRegistry(), secretKey: new Uint8Array(32).fill(255) }),
    ).toThrow(/CRYPTO_INVALID_KEY/);
  });
});

describe("attachJoinKeys", () => {
  it("replaces the identifier column with the join key and never copies the identifier", async () => {
    const { attachJoinKeys } = await import("../../kernel-lib/src/identity/run-psi.js");
    const rows = [
      { email: "a@x.org", v: 1 },
      { email: "b@x.org", v: 2 },
    ];
    const up = attachJoinKeys(rows, ["jk_1", null]);
    expect(up).toEqual([
      { v: 1, join_key: "jk_1" },
      { v: 2, join_key: null },
    ]);
    expect(attachJoinKeys(rows, ["jk_1", null], { keepUnmatched: false })).toEqual([{ v: 1, join_key: "jk_1" }]);
    expect(() => attachJoinKeys(rows, ["jk_1"])).toThrow(/"joinKeys" expected array of 2 keys/);
  });

  it("runPsi accepts table-like inputs with objects()", async () => {
    const table = (rows: object[]) => ({ objects: () => rows });
    const r = await runPsi(table([{ email: "a@x.org" }]), table([{ email: "A@x.org" }]), { threads: 1 });
    expect(r.matchReport.intersectionSize).toBe(1);
  });
});

describe("request order", () => {
  it("the client sends its blinded set in a secret shuffle, not in its row order", async () => {
    const k = randomScalar(seededRng("order"));
    const x = emails("row", 12);
    const client = new PsiClient({ backend: sodium, rng: seededRng("order-rng"), registry: new KeyRegistry(), secretKey: k });
    const req = await client.createRequest(x);
    const inOrder = (await sodium.hashAndBlind(x, k)).map(hex);
    expect(req.encryptedElements).not.toEqual(inOrder);
    expect([...req.encryptedElements].sort()).toEqual([...inOrder].sort());
  });
});

describe("runPsi over the encrypted channel", () => {
  it("gives the same result with every message sealed and opened through SecureChannel", async () => {
    const rowsA = ["a@x.org", "b@x.org", "c@x.org"],
      rowsB = ["c@x.org", "a@x.org"];
    const plain = await runPsi(rowsA, rowsB, { threads: 1, rng: { seed: "chan" }, registry: new KeyRegistry() });
    const sealed = await runPsi(rowsA, rowsB, { threads: 1, rng: { seed: "chan" }, registry: new KeyRegistry(), channel: true });
    expect(sealed.joinKeysA).toEqual(plain.joinKeysA);
    expect(sealed.joinKeysB).toEqual(plain.joinKeysB);
    expect(sealed.matchReport.channelTranscriptHash).toMatch(/^[0-9a-f]{64}$/);
    expect(sealed.transcript.every((t) => (t.channelFrameBytes ?? 0) > t.bytes)).toBe(true);
  });
});
