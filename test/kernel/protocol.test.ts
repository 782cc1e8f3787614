/**
 * Pure helpers of the cleanroom-ts launcher (kernel-lib/jupyter/kernels/cleanroom-ts/protocol.js):
 * message signing, the mapping of executor reports to Jupyter error content, execute_result
 * bundles and history search globs. The wire behaviour itself is tested end to end by
 * test_cleanroom_ts.py.
 */
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import path from "node:path";
import { describe, expect, it } from "vitest";

const require = createRequire(import.meta.url);
const proto = require(path.resolve(__dirname, "../../kernel-lib/jupyter/kernels/cleanroom-ts/protocol.js"));
const { WireMessage, describeFailure, resultBundle, globToRegExp } = proto;

const DELIM = Buffer.from("<IDS|MSG>");

function frames(key: string, parts: object[], signature?: string) {
  const bodies = parts.map((p) => Buffer.from(JSON.stringify(p)));
  const h = createHmac("sha256", key);
  for (const b of bodies) h.update(b);
  return [Buffer.from("client-id"), DELIM, Buffer.from(signature ?? h.digest("hex")), ...bodies];
}

const header = { msg_id: "m1", session: "s", username: "u", msg_type: "execute_request", version: "5.3", date: "" };

describe("WireMessage", () => {
  it("parses a signed message and keeps the routing identity", () => {
    const m = WireMessage.fromRaw("k", frames("k", [header, {}, {}, { code: "1" }]));
    expect(m.content).toEqual({ code: "1" });
    expect(m.identity.map(String)).toEqual(["client-id"]);
  });

  it("rejects a message whose HMAC does not match the key", () => {
    expect(() => WireMessage.fromRaw("k", frames("other", [header, {}, {}, {}]))).toThrow(/invalid hmac/);
  });

  it("rejects frames without the <IDS|MSG> delimiter", () => {
    expect(() => WireMessage.fromRaw("k", [Buffer.from("x")])).toThrow(/delimiter/);
  });

  it("signs replies so that the same key verifies them", () => {
    const req = WireMessage.fromRaw("k", frames("k", [header, {}, {}, {}]));
    const reply = req.createReply();
    reply.header.msg_type = "execute_reply";
    reply.content = { status: "ok" };
    let sent: Buffer[] = [];
    reply.signAndSend("k", { send: (f: (Buffer | string)[]) => (sent = f.map((x) => Buffer.from(x))) });
    const back = WireMessage.fromRaw("k", sent);
    expect(back.parent.msg_id).toBe("m1");
    expect(back.header.version).toBe("5.3");
  });
});

describe("describeFailure", () => {
  it("uses the thrown error's name and message, traceback starting at 'Name: message'", () => {
    const e = new RangeError("too big");
    const err = describeFailure([{ kind: "thrown", value: e }]);
    expect(err.ename).toBe("RangeError");
    expect(err.evalue).toBe("too big");
    expect(err.traceback[0]).toBe("RangeError: too big");
  });

  it("describes a thrown non-Error value", () => {
    expect(describeFailure([{ kind: "thrown", value: "nope" }])).toMatchObject({ ename: "Error", evalue: "Uncaught 'nope'" });
  });

  it("turns TypeScript diagnostics into a CompileError listing each one", () => {
    const err = describeFailure([
      { kind: "diagnostic", text: "1:7 - Type 'string' is not assignable to type 'number'." },
      { kind: "diagnostic", text: "2:1 - Cannot find name 'y'." },
    ]);
    expect(err.ename).toBe("CompileError");
    expect(err.evalue.split("\n")).toHaveLength(2);
    expect(err.traceback).toHaveLength(2);
  });
});

describe("resultBundle", () => {
  it("renders a value as Node's REPL would", () => {
    expect(resultBundle({ a: 1, b: "x" })).toEqual({ "text/plain": "{ a: 1, b: 'x' }" });
  });

  it("merges the bundle of a value implementing Symbol.for('jupyter.mimebundle')", () => {
    const v = { [Symbol.for("jupyter.mimebundle")]: () => ({ "text/html": "<b>1</b>", "text/plain": "one" }) };
    expect(resultBundle(v)).toEqual({ "text/html": "<b>1</b>", "text/plain": "one" });
  });
});

describe("globToRegExp", () => {
  it("matches * and ? like IPython's history search and escapes the rest", () => {
    expect(globToRegExp("6 *").test("6 * 7")).toBe(true);
    expect(globToRegExp("a?c").test("abc")).toBe(true);
    expect(globToRegExp("a.c").test("abc")).toBe(false);
  });
});

describe("refusalView (uncaught CleanRoomError → why blocked; needs the built kernel-lib)", () => {
  const { refusalView } = proto;
  it("gives the library's bundle and a one-line CODE: message traceback", () => {
    const e = Object.assign(new Error('[PARAM_INVALID] "minAge" expected integer in [18, 99], got number 7'), {
      name: "CleanRoomError",
      code: "PARAM_INVALID",
      details: { field: "minAge" },
    });
    const v = refusalView(e);
    expect(v.error).toEqual({
      ename: "CleanRoomError",
      evalue: e.message,
      traceback: ['PARAM_INVALID: "minAge" expected integer in [18, 99], got number 7'],
    });
    expect(v.bundle["application/vnd.cleanroom-lab.v1+json"]).toMatchObject({ kind: "error", code: "PARAM_INVALID", field: "minAge" });
  });
  it("leaves other errors to the plain traceback", () => {
    expect(refusalView(new TypeError("boom"))).toBeNull();
    expect(refusalView(Object.assign(new Error("x"), { name: "CleanRoomError", code: "MADE_UP" }))).toBeNull();
  });
});
