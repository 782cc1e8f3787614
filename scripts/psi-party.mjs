#!/usr/bin/env node
/**
 * One party of a PSI run, as its own OS process (issue 13): reads ITS OWN rows from a file,
 * listens or connects on 127.0.0.1 (nothing else is allowed), runs its side of PSI under
 * the X25519/HKDF/AES-256-GCM channel, and writes ITS result (join keys per own row, match
 * report) as JSON. Uses the built library (kernel-lib/dist: build first).
 *
 *   node scripts/psi-party.mjs --role responder --as retailer  --peer advertiser --listen 0 \
 *        --rows purchases.csv --column email --out retailer.json [--seed S]
 *   node scripts/psi-party.mjs --role initiator --as advertiser --peer retailer --connect PORT \
 *        --rows exposures.json --out advertiser.json [--seed S]
 *   node scripts/psi-party.mjs … --path ids.parquet --column email …   # CSV or Parquet, streamed
 *
 * --rows reads a JSON array of rows or a small CSV whole; --path (exactly one of the two) streams
 * one column of a .csv (header line) or .parquet file through DuckDB: no row objects are built.
 *
 * Options: --mode joinKeys|intersection|cardinality (default joinKeys), --backend libsodium|noble,
 * --threads N, --label SESSION_LABEL, --kind email|phone, --min-set-size N, --max-set-size N,
 * --retry-ms MS (connect: keep retrying while the listener is not up yet, default 10000),
 * --timeout-ms MS (abort the whole run after this long, default 600000).
 * Without --seed the keys come from the secure random generator; with it the run is
 * reproducible and labelled teaching mode.
 *
 * stdout: one JSON object per line — {"event":"listening","port":N}, {"event":"connected",
 * "peer":…}, {"event":"sent"|"received","kind":…}, {"event":"done","out":…} or
 * {"event":"error","code":…,"field":…,"message":…}. The result file is written atomically
 * (temp file + rename) and only on success: a refused or killed run leaves none.
 * Exit status: 0 done, 2 refused (typed error), 1 anything else.
 */
import fs from "node:fs";
import path from "node:path";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");
const dist = (p) => require(path.join(root, "kernel-lib/dist", p));
const { listen, connect } = dist("transport/socket.js");
const { psiParty, startBackend } = dist("identity/psi-party.js");
const { prepareFile } = dist("identity/id-file.js");
const { isCleanRoomError, CleanRoomError } = dist("errors.js");

const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

function parseArgs(argv) {
  const a = {};
  for (let i = 0; i < argv.length; i++) {
    const k = argv[i];
    if (!k.startsWith("--"))
      throw new CleanRoomError("INPUT_INVALID", `"argv" expected --option value pairs, got a stray argument`, { field: "argv" });
    const v = argv[i + 1];
    if (v === undefined || v.startsWith("--")) throw new CleanRoomError("INPUT_INVALID", `"${k}" expected a value, got none`, { field: k });
    a[k.slice(2)] = v;
    i++;
  }
  return a;
}

/** Minimal RFC 4180 CSV (quoted fields, "" escapes); every value stays a string. */
function parseCsv(text) {
  const rows = [];
  let row = [],
    field = "",
    q = false;
  const endField = () => {
    row.push(field);
    field = "";
  };
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (q) {
      if (c === '"' && text[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') q = false;
      else field += c;
    } else if (c === '"') q = true;
    else if (c === ",") endField();
    else if (c === "\n" || c === "\r") {
      if (c === "\r" && text[i + 1] === "\n") i++;
      endField();
      rows.push(row);
      row = [];
    } else field += c;
  }
  if (field !== "" || row.length) {
    endField();
    rows.push(row);
  }
  const [header, ...body] = rows.filter((r) => !(r.length === 1 && r[0] === ""));
  if (!header)
    throw new CleanRoomError("INPUT_INVALID", `"rows" expected a CSV file with a header line, got an empty file`, { field: "rows" });
  return body.map((r) => Object.fromEntries(header.map((h, j) => [h, r[j] ?? ""])));
}

function readRows(file) {
  let text;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch {
    throw new CleanRoomError("NOT_FOUND", `"rows" expected a readable file, got one that cannot be read`, { field: "rows" });
  }
  if (file.endsWith(".csv")) return parseCsv(text);
  try {
    const v = JSON.parse(text);
    if (!Array.isArray(v)) throw new Error();
    return v;
  } catch {
    throw new CleanRoomError("INPUT_INVALID", `"rows" expected a .csv file or a JSON array of rows, got another format`, { field: "rows" });
  }
}

const int = (a, k, dflt) => {
  if (a[k] === undefined) return dflt;
  const n = Number(a[k]);
  if (!Number.isSafeInteger(n))
    throw new CleanRoomError("INPUT_INVALID", `"--${k}" expected an integer, got another value`, { field: `--${k}` });
  return n;
};

async function main() {
  const a = parseArgs(process.argv.slice(2));
  for (const k of ["role", "as", "peer", "out"])
    if (!a[k]) throw new CleanRoomError("INPUT_INVALID", `"--${k}" expected a value, got none`, { field: `--${k}` });
  if ((a.rows === undefined) === (a.path === undefined))
    throw new CleanRoomError(
      "INPUT_INVALID",
      `"--rows/--path" expected exactly one of them, got ${a.rows === undefined ? "neither" : "both"}`,
      { field: "--rows" },
    );
  if ((a.listen === undefined) === (a.connect === undefined))
    throw new CleanRoomError(
      "INPUT_INVALID",
      `"--listen/--connect" expected exactly one of them, got ${a.listen === undefined ? "neither" : "both"}`,
      { field: "--listen" },
    );
  if (a.host !== undefined && a.host !== "127.0.0.1")
    throw new CleanRoomError(
      "ACCESS_DENIED",
      `"--host" expected 127.0.0.1 (this project never sends traffic to another host), got another host`,
      { field: "--host" },
    );
  // the backend's worker threads load libsodium while the rows are read and the peer connects
  const startedBackend = startBackend({ backend: a.backend, threads: int(a, "threads", undefined) });
  // --rows: read whole here (JSON array or small CSV); --path: one column streamed by DuckDB.
  // Either way the identifiers are read and checked before any socket is opened.
  const input =
    a.path !== undefined
      ? { prepared: await prepareFile(a.path, { column: a.column ?? "email", kind: a.kind }) }
      : { rows: readRows(a.rows) };
  const timeoutMs = int(a, "timeout-ms", 600_000);
  const timer = setTimeout(() => {
    emit({
      event: "error",
      code: "STATE_INVALID",
      field: "--timeout-ms",
      message: `"--timeout-ms" expected the run to finish within ${timeoutMs} ms, got no result`,
    });
    process.exit(2);
  }, timeoutMs);
  timer.unref();
  let transport;
  if (a.listen !== undefined) {
    const l = await listen({ self: a.as, port: int(a, "listen", 0), expectPeer: a.peer });
    emit({ event: "listening", host: l.host, port: l.port });
    transport = await l.accept();
    await l.close();
  } else {
    transport = await connect({ self: a.as, peer: a.peer, port: int(a, "connect", 0), retryMs: int(a, "retry-ms", 10_000) });
  }
  emit({ event: "connected", peer: transport.peer });
  const result = await psiParty({
    role: a.role,
    ...input,
    transport,
    column: a.column ?? "email",
    kind: a.kind,
    mode: a.mode ?? "joinKeys",
    backend: a.backend,
    threads: int(a, "threads", undefined),
    startedBackend,
    rng: a.seed !== undefined ? { seed: a.seed } : "secure",
    sessionLabel: a.label,
    minSetSize: int(a, "min-set-size", undefined),
    maxSetSize: int(a, "max-set-size", undefined),
    onMessage: (direction, env) => emit({ event: direction, kind: env.kind }),
  });
  await transport.whenClosed();
  const tmp = `${a.out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(result));
  fs.renameSync(tmp, a.out);
  emit({ event: "done", out: a.out, intersectionSize: result.matchReport.intersectionSize, elapsedMs: result.matchReport.elapsedMs });
}

main().then(
  () => process.exit(0),
  (e) => {
    if (isCleanRoomError(e)) {
      emit({ event: "error", code: e.code, field: e.details.field ?? null, message: e.message });
      process.exit(2);
    }
    emit({ event: "error", code: null, field: null, message: String(e?.message ?? e) });
    process.exit(1);
  },
);
