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
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { liftRules, liftSchemas, liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { createIdentity, loadIdentity, type MemberIdentity } from "../../kernel-lib/src/server/identity.js";
import { acceptCollaboration, createCollaboration, joinRoom, type RemoteRoom } from "../../kernel-lib/src/server/client.js";
import { approveTemplate, declarePurpose, upload } from "../../kernel-lib/src/verbs/room.js";

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

/**
 * A small two-owner lift room behind `url`: collaboration accepted by all, keyed rows uploaded
 * (`sealing: "enclave"`: owner-sealed in each owner's handle, approvals for the enclave executor),
 * template approved by both. Returns the uploaded rows too (canaries, lab comparisons).
 */
export async function studyRoom(
  url: string,
  dir: string,
  o: {
    queriers?: string[];
    /** Members with only the "receive" ability (no query, no own). */
    receivers?: string[];
    rows?: number;
    epsilonPerAggregate?: string;
    seed?: string;
    sealing?: "gate" | "enclave";
  } = {},
): Promise<{
  rooms: Record<string, RemoteRoom>;
  ids: Record<string, MemberIdentity>;
  template: ReturnType<typeof liftTemplate>;
  uploaded: { exposures: Record<string, unknown>[]; purchases: Record<string, unknown>[] };
}> {
  const seed = o.seed ?? "study-room";
  const queriers = o.queriers ?? [];
  const study = generateStudy({
    seed,
    advertiserRows: o.rows ?? 1000,
    overlap: 0.7,
    holdoutShare: 0.3,
    baseConversionRate: 0.2,
    liftPct: 40,
  });
  const psi = await runPsi(study.exposures, study.purchases, {
    mode: "joinKeys",
    backend: "libsodium",
    threads: 1,
    rng: { seed: `${seed}-psi` },
    names: { a: "advertiser", b: "retailer" },
  });
  const receivers = o.receivers ?? [];
  const names = ["advertiser", "retailer", ...queriers, ...receivers];
  const ids: Record<string, MemberIdentity> = {};
  const rooms: Record<string, RemoteRoom> = {};
  for (const n of names) {
    const file = path.join(dir, `${n}.key`);
    ids[n] = fs.existsSync(file) ? loadIdentity(file) : createIdentity({ name: n, file, rng: { seed: `${seed}-${n}` } });
    rooms[n] = await joinRoom(url, { as: n, identity: ids[n]!, rng: { seed: `${seed}-${n}-client` } });
  }
  await createCollaboration(rooms.advertiser!, {
    members: names.map((n) => ({
      name: n,
      publicKey: ids[n]!.publicKey,
      abilities:
        n === "retailer"
          ? ["own"]
          : n === "advertiser"
            ? ["own", "query", "receive"]
            : receivers.includes(n)
              ? ["receive"]
              : ["query", "receive"],
    })),
  });
  for (const n of names) await acceptCollaboration(rooms[n]!);
  const s = liftSchemas();
  const template = liftTemplate({
    advertiser: "advertiser",
    retailer: "retailer",
    epsilonPerAggregate: o.epsilonPerAggregate ?? "0.1",
    threshold: 20,
  });
  const uploaded = { exposures: withJoinKeys(study.exposures, psi.joinKeysA!), purchases: withJoinKeys(study.purchases, psi.joinKeysB!) };
  const sealing = o.sealing ?? "gate";
  await upload(rooms.advertiser!, {
    party: "advertiser",
    name: "exposures",
    rows: uploaded.exposures,
    schema: s.exposures,
    purposes: ["measurement"],
    rule: liftRules(20).exposures,
    ...(sealing === "enclave" ? { sealing } : {}),
  });
  await upload(rooms.retailer!, {
    party: "retailer",
    name: "purchases",
    rows: uploaded.purchases,
    schema: s.purchases,
    purposes: ["measurement"],
    rule: liftRules(20).purchases,
    ...(sealing === "enclave" ? { sealing } : {}),
  });
  for (const n of ["advertiser", "retailer"])
    await approveTemplate(rooms[n]!, { template, party: n, ...(sealing === "enclave" ? { executor: "enclave" as const } : {}) });
  for (const n of ["advertiser", ...queriers])
    await declarePurpose(rooms[n]!, { party: n, analyst: "an", purpose: "measurement", justification: "lift" });
  return { rooms, ids, template, uploaded };
}

/** Close every room handle. */
export function closeAll(rooms: Record<string, RemoteRoom>): void {
  for (const r of Object.values(rooms)) r.close();
}
