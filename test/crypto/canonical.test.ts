import { describe, expect, it } from "vitest";
import fc from "fast-check";
import { canonicalJson } from "../../kernel-lib/src/crypto/canonical.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { canonicalJson as fromPurpose } from "../../kernel-lib/src/purpose/canonical.js";
import { canonicalJson as fromEnclave } from "../../kernel-lib/src/enclave/measurement.js";

/** The JSON.stringify-based copy cleanroom/template.ts used before (the reference for valid input). */
function previousTemplateCopy(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(previousTemplateCopy).join(",")}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${previousTemplateCopy(o[k])}`)
    .join(",")}}`;
}

/** Same value with every object's keys in reverse insertion order. */
function reorder(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reorder);
  if (v && typeof v === "object")
    return Object.fromEntries(
      Object.entries(v)
        .reverse()
        .map(([k, x]) => [k, reorder(x)]),
    );
  return v;
}

function refusal(f: () => unknown): { message: string; field: unknown } {
  try {
    f();
  } catch (e) {
    expect(isCleanRoomError(e, "PARAM_INVALID")).toBe(true);
    return { message: (e as Error).message, field: (e as { details: { field?: unknown } }).details.field };
  }
  throw new Error("expected a CleanRoomError");
}

const json = fc.jsonValue({ maxDepth: 4 });

describe("canonicalJson (crypto/canonical.ts, the one copy)", () => {
  it("parses back to an equal value, is key-order independent, and matches the bytes of the copies it replaced", () => {
    fc.assert(
      fc.property(json, (v) => {
        const s = canonicalJson(v);
        // -0 has no JSON spelling of its own: it parses back as 0
        expect(JSON.parse(s)).toEqual(JSON.parse(JSON.stringify(v)));
        expect(canonicalJson(reorder(v))).toBe(s);
        expect(s).toBe(previousTemplateCopy(v));
        expect(canonicalJson(JSON.parse(s))).toBe(s);
      }),
      { numRuns: 300, seed: 12 },
    );
  });

  it("is the function the purpose and enclave layers use", () => {
    expect(fromPurpose).toBe(canonicalJson);
    expect(fromEnclave).toBe(canonicalJson);
  });

  it("keeps the golden bytes: sorted keys at every depth, no whitespace, undefined members dropped, -0 as 0", () => {
    const v = { b: 1, a: { d: [true, null, "é\u2028"], c: "x" }, z: undefined, m: -0, e: 1e21 };
    expect(canonicalJson(v)).toBe('{"a":{"c":"x","d":[true,null,"é\u2028"]},"b":1,"e":1e+21,"m":0}');
    expect(canonicalJson(Object.assign(Object.create(null), { y: 2, x: 1 }))).toBe('{"x":1,"y":2}');
  });

  it("refuses what JSON cannot say, naming the path and not the value", () => {
    const cases: [unknown, RegExp, string][] = [
      [{ a: Number.NaN }, /"value\.a" expected finite number, got NaN/, "value.a"],
      [{ a: [1, Infinity] }, /"value\.a\[1\]" expected finite number, got Infinity/, "value.a[1]"],
      [{ a: [-Infinity] }, /got -Infinity/, "value.a[0]"],
      [{ secret: 12345678901234567890n }, /"value\.secret" expected JSON value .*got bigint$/, "value.secret"],
      [{ f: () => 1 }, /"value\.f" .*got function/, "value.f"],
      [{ s: Symbol("x") }, /"value\.s" .*got symbol/, "value.s"],
      [[undefined], /"value\[0\]" .*got undefined/, "value[0]"],
      [undefined, /"value" .*got undefined/, "value"],
      [{ when: new Date(0) }, /"value\.when" expected plain object, array or primitive, got an instance of Date/, "value.when"],
      [{ m: new Map([["k", 1]]) }, /got an instance of Map/, "value.m"],
      [{ b: new Uint8Array(2) }, /got an instance of Uint8Array/, "value.b"],
      [{ n: new Number(3) }, /got an instance of Number/, "value.n"],
      [
        {
          c: new (class Point {
            x = 1;
          })(),
        },
        /got an instance of Point/,
        "value.c",
      ],
      // eslint-disable-next-line no-sparse-arrays -- the hole is the case under test
      [{ a: [1, , 3] }, /"value\.a\[1\]" expected a dense array, got a hole/, "value.a[1]"],
      [{ [Symbol("k")]: 1 }, /"value" expected string keys only/, "value"],
      [
        Object.defineProperty({}, "g", { get: () => 1, enumerable: true }),
        /"value\.g" expected a data property, got an accessor/,
        "value.g",
      ],
    ];
    for (const [v, msg, field] of cases) {
      const r = refusal(() => canonicalJson(v));
      expect(r.message).toMatch(msg);
      expect(r.field).toBe(field);
    }
    expect(refusal(() => canonicalJson({ x: 123456789.5 / 0 }, "template")).field).toBe("template.x");
    // the refused value's content is never in the message
    expect(refusal(() => canonicalJson({ secret: 12345678901234567890n })).message).not.toMatch(/1234/);
  });

  it("refuses cycles (and still accepts a shared, acyclic sub-object)", () => {
    const a: Record<string, unknown> = { x: 1 };
    a.self = { back: a };
    const r = refusal(() => canonicalJson(a));
    expect(r.message).toMatch(/"value\.self\.back" expected an acyclic value, got a cycle/);
    expect(r.field).toBe("value.self.back");
    const arr: unknown[] = [];
    arr.push(arr);
    expect(refusal(() => canonicalJson(arr)).field).toBe("value[0]");
    const shared = { k: 1 };
    expect(canonicalJson({ a: shared, b: [shared, shared] })).toBe('{"a":{"k":1},"b":[{"k":1},{"k":1}]}');
  });
});
