"use strict";
/**
 * V8 code cache for the kernel's big CommonJS modules (issue 18: kernel start-up).
 *
 * Compiling typescript.js (8 MB, bundled with tslab) and then lazily compiling the compiler
 * functions the first type-check runs is a large share of a kernel's start. V8 can serialize
 * the bytecode it compiled (`vm.Script#createCachedData`) and accept it back on the next
 * compile (`new vm.Script(src, { cachedData })`). This module wraps `Module.prototype._compile`
 * for the files `include(filename)` selects, and writes their caches when `flush()` is called —
 * after the first cell, so the functions the compiler needed are in the cache, not only the
 * top level.
 *
 * Correctness:
 *  - keyed by content: the entry's name is a SHA-256 of the file's path and text, Node's
 *    version, V8's version, the architecture and this format's version. V8 itself only checks
 *    the source length and its own version/flags, so a changed file gets a new key here;
 *    the old entry for the same path is removed when the new one is written;
 *  - written atomically: a temporary file in the cache directory, renamed over the entry;
 *    two kernels starting at once each write a whole file and the last rename wins;
 *  - integrity: each entry starts with a magic string and a SHA-256 of its payload; an entry
 *    that is short, has the wrong magic or checksum is ignored and deleted (the module is
 *    compiled from source, and the entry rewritten on flush). V8 rejecting an entry (another
 *    V8 or flags) is counted and handled the same way;
 *  - anything unexpected (unreadable directory, a file with a shebang, a module that is an
 *    ES module) falls back to Node's own compile: the cache is only ever an optimisation.
 *
 * Limit: a module compiled here cannot call dynamic `import()` (Node 20 has no stable way to
 * give a vm.Script Node's own import callback, and loses it when cached data is used). Select
 * only modules without it: typescript.js and tslab's dist files have none (test/kernel/
 * code-cache.test.ts checks the launcher's selection with the TypeScript scanner).
 *
 * Stats (`stats()`) say per file whether the cache was hit, missed, rejected or corrupt;
 * the launcher logs them with CLEANROOM_KERNEL_TRACE.
 */

const crypto = require("crypto");
const fs = require("fs");
const Module = require("module");
const path = require("path");
const vm = require("vm");

const FORMAT = "cleanroom-ts-code-cache/1";
const MAGIC = Buffer.from("CRTSV8C1", "latin1"); // 8 bytes
const HEADER = MAGIC.length + 32; // magic + SHA-256 of the payload

/**
 * What the launcher caches: the big CommonJS modules every kernel compiles, tslab's TypeScript
 * (typescript.js, 8 MB) and tslab's own dist files. None of them uses dynamic import().
 */
const KERNEL_CACHED_MODULES =
  /[\\/]node_modules[\\/](@tslab[\\/]typescript-for-tslab[\\/]lib[\\/]typescript\.js|tslab[\\/]dist[\\/][^\\/]+\.js)$/;

const checksum = (payload) => crypto.createHash("sha256").update(payload).digest();
/** SHA-256 over parts, each followed by a NUL (so that parts cannot run into each other). */
const sha256 = (...parts) => {
  const h = crypto.createHash("sha256");
  for (const p of parts) h.update(p).update("\0");
  return h.digest();
};

/** The cache file name for a module: path hash (for pruning old versions) + content key. */
function entryName(filename, content) {
  const pathKey = sha256(FORMAT, filename).toString("hex").slice(0, 16);
  const key = sha256(FORMAT, process.version, process.versions.v8, process.arch, filename, content).toString("hex").slice(0, 40);
  return { prefix: `${pathKey}-`, name: `${pathKey}-${key}.v8cache` };
}

/** Read and verify an entry: the payload, or a reason it cannot be used. */
function readEntry(file) {
  let buf;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    if (e.code === "ENOENT") return { miss: "absent" };
    return { miss: `unreadable (${e.code || e.message})` };
  }
  if (buf.length <= HEADER || !buf.subarray(0, MAGIC.length).equals(MAGIC)) return { corrupt: "bad header" };
  const payload = buf.subarray(HEADER);
  if (!checksum(payload).equals(buf.subarray(MAGIC.length, HEADER))) return { corrupt: "checksum mismatch" };
  return { payload };
}

/** Write `payload` as the entry `file`: temp file in the same directory, then rename. */
function writeEntryAtomically(file, payload) {
  const tmp = `${file}.${process.pid}.${crypto.randomBytes(6).toString("hex")}.tmp`;
  try {
    fs.writeFileSync(tmp, Buffer.concat([MAGIC, checksum(payload), payload]), { flag: "wx", mode: 0o600 });
    fs.renameSync(tmp, file);
  } catch (e) {
    try {
      fs.unlinkSync(tmp);
    } catch {
      /* the temp file was never created or is gone */
    }
    throw e;
  }
}

/** `require` for a module compiled here, as Node builds it for its own modules. */
function makeRequire(mod) {
  const require = function require(id) {
    return mod.require(id);
  };
  require.resolve = function resolve(request, options) {
    return Module._resolveFilename(request, mod, false, options);
  };
  require.resolve.paths = function paths(request) {
    return Module._resolveLookupPaths(request, mod);
  };
  require.main = process.mainModule;
  require.extensions = Module._extensions;
  require.cache = Module._cache;
  return require;
}

/**
 * @param {{ dir: string, include: (filename: string) => boolean, log?: (...a: unknown[]) => void }} opts
 */
/** Why `dir` cannot be trusted for cache entries, or null when it is this user's own, not group/world-writable, directory. */
function untrustedDir(dir) {
  let st;
  try {
    st = fs.lstatSync(dir);
  } catch (e) {
    return `cannot be inspected: ${e.message}`;
  }
  if (st.isSymbolicLink()) return "is a symbolic link";
  if (!st.isDirectory()) return "is not a directory";
  if (typeof process.getuid === "function" && st.uid !== process.getuid()) return "is owned by another user";
  if ((st.mode & 0o022) !== 0) return "is writable by group or others";
  return null;
}

/**
 * `readOnly(filename)`: entries of these files are used when valid but never written or removed
 * (the launcher's main thread, for a module whose entry another thread writes).
 */
function createCodeCache({ dir, include, readOnly = () => false, log = () => {} }) {
  const pending = new Map(); // filename -> { script, file, prefix } to write on flush
  const results = new Map(); // filename -> "hit" | "miss" | "rejected" | "corrupt: …"
  let original = null;

  function compileCached(mod, content, filename) {
    const { prefix, name } = entryName(filename, content);
    const file = path.join(dir, name);
    const got = readEntry(file);
    const mine = !readOnly(filename);
    if (got.corrupt && mine) {
      results.set(filename, `corrupt: ${got.corrupt}`);
      try {
        fs.unlinkSync(file);
      } catch {
        /* another kernel may have replaced or removed it */
      }
    }
    const script = new vm.Script(Module.wrap(content), { filename, cachedData: got.payload });
    if (got.payload) {
      if (script.cachedDataRejected) results.set(filename, "rejected");
      else results.set(filename, "hit");
    } else if (!got.corrupt) results.set(filename, "miss");
    else if (!mine) results.set(filename, `corrupt: ${got.corrupt}`);
    if (mine && (!got.payload || script.cachedDataRejected)) pending.set(filename, { script, file, prefix });
    const fn = script.runInThisContext({ displayErrors: true });
    return fn.call(mod.exports, mod.exports, makeRequire(mod), mod, filename, path.dirname(filename));
  }

  return {
    /** Start compiling the selected modules through the cache. */
    install() {
      if (original) return false;
      try {
        fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
      } catch (e) {
        log(`code cache disabled: cannot create ${dir}: ${e.message}`);
        return false;
      }
      // entries are checked for integrity, not for who wrote them, and mkdirSync's mode does nothing
      // to a directory that already exists: use only a real directory (not a symlink) that this user
      // owns and that no one else can write to
      const why = untrustedDir(dir);
      if (why) {
        log(`code cache disabled: ${dir} ${why}`);
        return false;
      }
      original = Module.prototype._compile;
      const orig = original;
      Module.prototype._compile = function (content, filename, format) {
        if (format === "module" || typeof content !== "string" || content.startsWith("#!") || !include(filename)) {
          return orig.call(this, content, filename, format);
        }
        return compileCached(this, content, filename);
      };
      return true;
    },
    /** Stop compiling through the cache (modules already loaded stay as they are). */
    uninstall() {
      if (original) Module.prototype._compile = original;
      original = null;
    },
    /**
     * Write the entries that were missing, corrupt or rejected, with everything V8 has compiled
     * for them so far. Returns the number written; failures are logged, never thrown.
     */
    flush() {
      let written = 0;
      for (const [filename, { script, file, prefix }] of pending) {
        pending.delete(filename);
        try {
          writeEntryAtomically(file, script.createCachedData());
          written += 1;
          for (const other of fs.readdirSync(dir)) {
            // older versions of the same module (its content changed): no longer reachable
            if (other.startsWith(prefix) && other.endsWith(".v8cache") && path.join(dir, other) !== file) {
              try {
                fs.unlinkSync(path.join(dir, other));
              } catch {
                /* removed by another kernel */
              }
            }
          }
        } catch (e) {
          log(`code cache: cannot write ${file}: ${e.message}`);
        }
      }
      return written;
    },
    /** filename → hit | miss | rejected | corrupt: reason */
    stats() {
      return Object.fromEntries(results);
    },
  };
}

module.exports = { createCodeCache, entryName, readEntry, MAGIC, KERNEL_CACHED_MODULES };
