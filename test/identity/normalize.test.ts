import { describe, expect, it } from "vitest";
import { normalizeColumn, normalizeEmail, normalizePhone } from "../../kernel-lib/src/identity/normalize.js";

describe("normalizeEmail", () => {
  const ok: [string, string][] = [
    ["  Alice.Smith+ads@GoogleMail.com ", "alicesmith@gmail.com"],
    ["a.l.i.c.e@gmail.com", "alice@gmail.com"],
    ["Bob+newsletter@Example.COM", "bob@example.com"],
    ["bob.jones@example.com", "bob.jones@example.com"], // dots kept outside gmail
    ["carol@mail.example.co.uk.", "carol@mail.example.co.uk"],
    ["\tdave@xn--bcher-kva.example\n", "dave@xn--bcher-kva.example"],
  ];
  for (const [raw, want] of ok)
    it(`normalises ${JSON.stringify(raw)} to ${want}`, () => expect(normalizeEmail(raw)).toEqual({ ok: true, value: want }));

  it("applies the documented options", () => {
    expect(normalizeEmail("a.b+x@gmail.com", { stripPlus: false })).toEqual({ ok: true, value: "ab+x@gmail.com" });
    expect(normalizeEmail("a.b+x@gmail.com", { providerRules: false })).toEqual({ ok: true, value: "a.b@gmail.com" });
  });

  const bad: [unknown, string][] = [
    [42, "NOT_A_STRING"],
    [null, "NOT_A_STRING"],
    ["   ", "EMPTY"],
    ["alice.example.com", "MISSING_AT"],
    ["a@b@c.com", "MULTIPLE_AT"],
    ["+tag@example.com", "LOCAL_PART_EMPTY"],
    ["a b@example.com", "INVALID_CHARACTER"],
    ["<a@example.com>", "INVALID_CHARACTER"],
    ["a@localhost", "DOMAIN_INVALID"],
    ["a@-bad.com", "DOMAIN_INVALID"],
    ["a@example.c", "DOMAIN_INVALID"],
    ["a@exa_mple.com", "DOMAIN_INVALID"],
    ["x".repeat(250) + "@example.com", "TOO_LONG"],
  ];
  for (const [raw, code] of bad)
    it(`rejects ${typeof raw === "string" ? `a ${raw.length}-char string` : String(raw)} with ${code}`, () =>
      expect(normalizeEmail(raw)).toEqual({ ok: false, code }));
});

describe("normalizePhone", () => {
  const ok: [string, string | undefined, string][] = [
    ["(415) 555-0134", undefined, "+14155550134"],
    ["1-415-555-0134", "US", "+14155550134"],
    ["+1 415 555 0134", "GB", "+14155550134"],
    ["020 7946 0018", "GB", "+442079460018"],
    ["0049 30 901820", "US", "+4930901820"],
    ["06 12 34 56 78", "FR", "+33612345678"],
  ];
  for (const [raw, country, want] of ok)
    it(`normalises ${raw} (${country ?? "US"}) to ${want}`, () =>
      expect(normalizePhone(raw, { defaultCountry: country })).toEqual({ ok: true, value: want }));

  const bad: [unknown, string][] = [
    [5551234, "NOT_A_STRING"],
    ["", "EMPTY"],
    ["555-0134", "NATIONAL_NUMBER_INVALID"],
    ["415-555-0134 ext 12", "HAS_EXTENSION"],
    ["415-CALL-NOW", "INVALID_CHARACTER"],
    ["+0 123 456 789", "UNKNOWN_COUNTRY"],
    ["+44 12", "TOO_SHORT"],
    ["+44 1234 5678 9012 345", "TOO_LONG"],
  ];
  for (const [raw, code] of bad) it(`rejects with ${code}`, () => expect(normalizePhone(raw)).toEqual({ ok: false, code }));

  it("refuses an unsupported default country with a typed error", () => {
    expect(() => normalizePhone("123", { defaultCountry: "ZZ" })).toThrow(/PARAM_INVALID.*"defaultCountry" expected one of/);
  });
});

describe("normalizeColumn", () => {
  it("reports rejections by row and code, never echoing the value", () => {
    const secret = "secret-person-name";
    const r = normalizeColumn(["A@x.org", secret, "b@y.org", undefined], "email");
    expect(r.values).toEqual(["a@x.org", null, "b@y.org", null]);
    expect(r.rejections).toEqual([
      { row: 1, code: "MISSING_AT" },
      { row: 3, code: "NOT_A_STRING" },
    ]);
    expect(r.rejectionCounts).toEqual({ MISSING_AT: 1, NOT_A_STRING: 1 });
    expect(JSON.stringify(r)).not.toContain(secret);
  });

  it("refuses a non-array or unknown kind", () => {
    expect(() => normalizeColumn("a@x.org" as never, "email")).toThrow(/"values" expected array/);
    expect(() => normalizeColumn([], "fax" as never)).toThrow(/"kind" expected/);
  });
});
