/**
 * Shared by the room-server tests: start scripts/room-server.mjs as a child process on an
 * ephemeral port (killed by pid after the test, also on failure), identities in a temp dir,
 * study rows with PSI join keys, and the ledger read straight from the room's SQLite file.
 * Needs the build (kernel-lib/dist).
 */
import { spawn, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import Database from "better-sqlite3";

export const ROOT = path.resolve(__dirname, "../..");
const SCRIPT = path.join(ROOT, "scripts/room-server.mjs");

export interface ServerProc {
  proc: ChildProcess;
  url: string;
  port: number;
  exited: Promise<number | null>;
  stderr: () => string;
}

const started: ChildProcess[] = [];

/** Kill every server this file started that still runs (by its pid). */
export function killAll(): void {
  for (const p of started) if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
}

/** Start a room server; resolves once it printed its "listening" line. */
export function startServer(store: string, args: string[] = [], env: Record<string, string> = {}): Promise<ServerProc> {
  const proc = spawn(process.execPath, [SCRIPT, "--store", store, "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  started.push(proc);
  let err = "";
  proc.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number | null>((res) => proc.once("exit", (code) => res(code)));
  return new Promise((resolve, reject) => {
    let buf = "";
    proc.stdout!.on("data", (d) => {
      buf += d;
      for (;;) {
        const i = buf.indexOf("\n");
        if (i < 0) break;
        const line = buf.slice(0, i);
        buf = buf.slice(i + 1);
        const e = JSON.parse(line);
        if (e.event === "listening") resolve({ proc, url: e.url, port: e.port, exited, stderr: () => err });
        else if (e.event === "error") reject(new Error(`room server refused to start: ${e.code} ${e.message}`));
      }
    });
    void exited.then((c) => reject(new Error(`room server exited (${c}) before listening: ${err}`)));
  });
}

/** Spent of every budget, straight from the ledger table (what the operator's file says). */
export function ledgerSpent(store: string): Record<string, string> {
  const db = new Database(store, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare("SELECT scope, subject, spent_json FROM dp_budgets ORDER BY scope, subject").all() as {
      scope: string;
      subject: string;
      spent_json: string;
    }[];
    return Object.fromEntries(rows.map((r) => [`${r.scope}/${r.subject}`, r.spent_json]));
  } finally {
    db.close();
  }
}

/** Number of charges in the ledger. */
export function chargeCount(store: string): number {
  const db = new Database(store, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM dp_charges").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Every byte of the room's files (database, WAL, sidecars). */
export function storeBytes(store: string): Buffer {
  const dir = path.dirname(store);
  const base = path.basename(store);
  return Buffer.concat(
    fs
      .readdirSync(dir)
      .filter((f) => f.startsWith(base))
      .map((f) => fs.readFileSync(path.join(dir, f))),
  );
}

/** Rows with PSI join keys in place of the email (what a party uploads after PSI). */
export function withJoinKeys<T extends { email: string }>(rows: T[], keys: (string | null)[]): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  rows.forEach((r, i) => {
    const k = keys[i];
    if (k === null || k === undefined) return;
    const { email: _drop, ...rest } = r;
    out.push({ ...rest, join_key: k });
  });
  return out;
}
