/**
 * Wire-level helpers of the cleanroom-ts launcher (see launcher.js): message parsing and
 * signing, and the mapping of tslab's executor reports to Jupyter content (error fields, the
 * "why blocked" view of a refusal, execute_result bundles, history search). No tslab imports;
 * the library's display code is loaded lazily, only for a refusal.
 */
"use strict";

const path = require("path");
const util = require("util");
const { createHmac, randomBytes } = require("crypto");

const MIMEBUNDLE = Symbol.for("jupyter.mimebundle");

/**
 * One wire-protocol message. tslab keeps its ZmqMessage class module-private, so this is the
 * same parse / HMAC-verify / sign logic, with one fix: an empty key (signing disabled, as
 * jupyter_client allows) is accepted instead of failing verification.
 */
const DELIM = Buffer.from("<IDS|MSG>");
class WireMessage {
  static fromRaw(key, raw) {
    const m = new WireMessage();
    const d = raw.findIndex((buf) => buf.equals(DELIM));
    if (d < 0) throw new Error("message missing delimiter");
    m.identity = raw.slice(0, d);
    const hmac = raw[d + 1].toString();
    const parts = raw.slice(d + 2);
    [m.header, m.parent, m.metadata, m.content] = parts.slice(0, 4).map((p) => JSON.parse(p.toString()));
    if (key) {
      const h = createHmac("sha256", key);
      for (const p of parts) h.update(p);
      if (h.digest("hex") !== hmac) throw new Error("invalid hmac");
    }
    return m;
  }
  createReply() {
    const r = new WireMessage();
    r.identity = this.identity;
    r.header = {
      version: "5.3",
      date: new Date().toISOString(),
      session: this.header.session,
      username: this.header.username,
      msg_type: this.header.msg_type,
      msg_id: randomBytes(16).toString("hex"),
    };
    r.parent = this.header;
    r.metadata = {};
    r.content = {};
    return r;
  }
  signAndSend(key, sock) {
    const bodies = [this.header, this.parent, this.metadata, this.content].map((x) => JSON.stringify(x));
    const h = createHmac("sha256", key || "");
    for (const b of bodies) h.update(b);
    sock.send([...this.identity, DELIM, key ? h.digest("hex") : "", ...bodies]);
  }
}

/** Turn whatever the executor reported into Jupyter's {ename, evalue, traceback}. */
function describeFailure(captured) {
  const thrown = captured.filter((c) => c.kind === "thrown");
  if (thrown.length > 0) {
    const e = thrown[thrown.length - 1].value;
    if (e instanceof Error) {
      const ename = e.name || (e.constructor && e.constructor.name) || "Error";
      const evalue = String(e.message);
      // Keep the "Name: message" line and the frames of the cell and the libraries it called;
      // drop vm's source-arrow decoration and frames of tslab, this launcher and Node itself.
      let lines = String(e.stack || `${ename}: ${evalue}`).split("\n");
      const head = lines.findIndex((l) => l.startsWith(`${ename}:`) || l === ename);
      if (head > 0) lines = lines.slice(head);
      lines = lines.filter((l) => !/node_modules[\\/]tslab[\\/]|\(node:|^\s+at node:|launcher\.js/.test(l));
      return { ename, evalue, traceback: lines };
    }
    const evalue = util.inspect(e);
    return { ename: "Error", evalue: `Uncaught ${evalue}`, traceback: [`Uncaught ${evalue}`] };
  }
  const diags = captured.filter((c) => c.kind === "diagnostic").map((c) => c.text);
  if (diags.length > 0) {
    return { ename: "CompileError", evalue: diags.join("\n"), traceback: diags.map((d) => `CompileError: ${d}`) };
  }
  return { ename: "Error", evalue: "cell failed without an error description", traceback: [] };
}

/**
 * A cell that throws a CleanRoomError (a refusal not wrapped in `attempt()`) shows the same
 * "why blocked" view as `attempt()` and a one-line `CODE: message` error, not a stack trace of
 * the library's dist/*.js. Recognised by shape (`isRefusal`: name "CleanRoomError" and a code
 * from the closed list); the library's display code is loaded only then (kernel-lib/dist,
 * beside this kernelspec, built by `tsc -b`). Returns null for any other error, or when the
 * library is not built (the plain traceback is kept).
 */
const REFUSAL_MODULE = path.join(__dirname, "..", "..", "..", "dist", "display", "refusal.js");
function refusalView(e, log = () => {}) {
  if (e === null || typeof e !== "object" || e.name !== "CleanRoomError" || typeof e.code !== "string") return null;
  let mod;
  try {
    mod = require(REFUSAL_MODULE);
  } catch (loadError) {
    log(`cannot load ${REFUSAL_MODULE} (is kernel-lib built?):`, loadError.message);
    return null;
  }
  if (!mod.isRefusal(e)) return null;
  let bundle;
  try {
    bundle = mod.refusalBundle(e);
  } catch (renderError) {
    log("cannot render a refusal:", renderError);
    return null;
  }
  const line = mod.refusalLine(e);
  return { bundle, error: { ename: "CleanRoomError", evalue: String(e.message), traceback: [line] } };
}

/** The execute_result bundle for a last-expression value. */
function resultBundle(value) {
  const plain = util.inspect(value, { colors: false, depth: 4, maxArrayLength: 50 });
  if (value != null && typeof value[MIMEBUNDLE] === "function") {
    const bundle = value[MIMEBUNDLE]();
    if (bundle && typeof bundle === "object") {
      return { "text/plain": plain, ...bundle };
    }
  }
  return { "text/plain": plain };
}

/** Glob (`*`, `?`) → RegExp, as IPython's history search does. */
function globToRegExp(pattern) {
  const esc = pattern
    .replace(/[.+^${}()|[\]\\]/g, "\\$&")
    .replace(/\*/g, ".*")
    .replace(/\?/g, ".");
  return new RegExp(`^${esc}$`, "s");
}

module.exports = { WireMessage, describeFailure, resultBundle, globToRegExp, refusalView, MIMEBUNDLE };
