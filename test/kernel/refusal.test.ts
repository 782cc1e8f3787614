/**
 * display/refusal.ts: the "why blocked" view the cleanroom-ts kernel shows for an uncaught
 * CleanRoomError (end to end in test_cleanroom_ts.py) and `attempt()` returns.
 */
import { describe, expect, it } from "vitest";
import { CleanRoomError } from "../../kernel-lib/src/errors.js";
import { attempt } from "../../kernel-lib/src/index.js";
import { isRefusal, refusalBundle, refusalLine } from "../../kernel-lib/src/display/refusal.js";
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";

const bundleOf = (x: object) => (x as Record<symbol, () => Record<string, unknown>>)[Symbol.for("jupyter.mimebundle")]!();

describe("refusal view", () => {
  const err = new CleanRoomError("PARAM_INVALID", '"minAge" expected integer in [18, 99], got number 7', { field: "minAge" });

  it("is the bundle attempt() renders, with a one-line text form", async () => {
    const viaAttempt = await attempt(() => {
      throw err;
    });
    expect(refusalBundle(err)).toEqual(bundleOf(viaAttempt));
    expect(refusalBundle(err)![CLEANROOM_MIME]).toMatchObject({ kind: "error", code: "PARAM_INVALID", field: "minAge" });
    expect(refusalLine(err)).toBe('PARAM_INVALID: "minAge" expected integer in [18, 99], got number 7');
  });

  it("recognises a CleanRoomError by shape (another copy of the library) but not a pretender", () => {
    const copy = Object.assign(new Error("[NOT_FOUND] no such party"), { name: "CleanRoomError", code: "NOT_FOUND", details: {} });
    expect(isRefusal(copy)).toBe(true);
    expect(refusalBundle(copy)!["text/plain"]).toContain("NOT_FOUND");
    const pretender = Object.assign(new Error("x"), { name: "CleanRoomError", code: "MADE_UP" });
    expect(refusalBundle(pretender)).toBeNull();
    expect(refusalBundle(new TypeError("boom"))).toBeNull();
    expect(refusalBundle("CleanRoomError")).toBeNull();
  });
});
