/**
 * scripts/psi-party.mjs as its own OS process, for the multi-process PSI tests: one temp
 * directory per test file, every party started through `spawn` is killed (by its own handle)
 * and the directory removed after the file's tests, also when a test failed. Needs the build
 * (kernel-lib/dist).
 */
import { spawn as spawnChild, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll } from "vitest";

export const PSI_PARTY_SCRIPT = path.resolve(__dirname, "../../scripts/psi-party.mjs");

export type PartyEvent = Record<string, unknown>;

/** A running party: its JSON-line stdout events as they come, and its exit code. */
export interface PartyProc {
  proc: ChildProcess;
  events: PartyEvent[];
  /** Resolves with the first event (seen already or to come) that `pred` accepts. */
  waitFor(pred: (e: PartyEvent) => boolean): Promise<PartyEvent>;
  /** The port of its "listening" event; rejects if it exits before listening. */
  listening(): Promise<number>;
  /** Its exit code (null when killed by a signal), once its output is closed. */
  exited: Promise<number | null>;
}

/** A temp directory named `prefix…` and a spawner for parties, both cleaned up after the file. */
export function psiPartyHarness(prefix: string): { dir: string; spawn: (args: string[]) => PartyProc } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const children: ChildProcess[] = [];
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const spawn = (args: string[]): PartyProc => {
    const proc = spawnChild(process.execPath, [PSI_PARTY_SCRIPT, ...args], { stdio: ["ignore", "pipe", "inherit"] });
    children.push(proc);
    const events: PartyEvent[] = [];
    const watchers: { pred: (e: PartyEvent) => boolean; resolve: (e: PartyEvent) => void }[] = [];
    let buf = "";
    proc.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const e = JSON.parse(buf.slice(0, nl)) as PartyEvent;
        buf = buf.slice(nl + 1);
        events.push(e);
        for (const w of watchers.slice())
          if (w.pred(e)) {
            watchers.splice(watchers.indexOf(w), 1);
            w.resolve(e);
          }
      }
    });
    // "close", not "exit": every line it printed has been read by then
    const exited = new Promise<number | null>((r) => proc.on("close", (c) => r(c)));
    const waitFor = (pred: (e: PartyEvent) => boolean): Promise<PartyEvent> => {
      const hit = events.find(pred);
      return hit ? Promise.resolve(hit) : new Promise((resolve) => watchers.push({ pred, resolve }));
    };
    const listening = () =>
      Promise.race([
        waitFor((e) => e.event === "listening").then((e) => e.port as number),
        exited.then((): never => {
          throw new Error(`party exited before listening: ${JSON.stringify(events)}`);
        }),
      ]);
    return { proc, events, waitFor, listening, exited };
  };
  return { dir, spawn };
}
