/** Spawning helpers for the multi-process ledger tests (the child is bundled with esbuild). */
import { buildSync } from "esbuild";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import path from "node:path";

const root = path.resolve(__dirname, "../..");
// under node_modules so the bundle's `require("better-sqlite3")` resolves from the repo
const outDir = path.join(root, "node_modules/.cache/cleanroom-dp-tests");
let built: string | undefined;

export function childScript(): string {
  if (built) return built;
  mkdirSync(outDir, { recursive: true });
  const outfile = path.join(outDir, `ledger-child-${process.pid}.cjs`);
  buildSync({
    entryPoints: [path.join(__dirname, "fixtures/ledger-child.ts")],
    bundle: true,
    platform: "node",
    format: "cjs",
    target: "node20",
    outfile,
    external: ["better-sqlite3"],
    logLevel: "silent",
  });
  built = outfile;
  return outfile;
}

export interface Child {
  proc: ChildProcess;
  /** Resolves with the first stdout line equal to `line`. */
  waitFor(line: string): Promise<void>;
  /** Resolves with all stdout lines when the process exits. */
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }>;
}

export function spawnChild(args: string[]): Child {
  const proc = spawn(process.execPath, [childScript(), ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const lines: string[] = [];
  let buf = "";
  let stderr = "";
  const waiters: { line: string; resolve: () => void }[] = [];
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf("\n")) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      lines.push(l);
      for (const w of waiters.filter((w) => w.line === l)) w.resolve();
    }
  });
  proc.stderr!.on("data", (d: Buffer) => (stderr += d.toString()));
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; lines: string[]; stderr: string }>((resolve) =>
    proc.on("exit", (code, signal) => resolve({ code, signal, lines, stderr })),
  );
  return {
    proc,
    done,
    waitFor: (line) =>
      new Promise<void>((resolve, reject) => {
        if (lines.includes(line)) return resolve();
        waiters.push({ line, resolve });
        void done.then((r) => reject(new Error(`child exited (${r.code}/${r.signal}) before "${line}": ${r.stderr}`)));
      }),
  };
}
