/**
 * The kill -9 harness both fault suites share: bundle a child "kernel" (fixtures/*.ts) once per
 * test file with esbuild, run it with or without CLEANROOM_FAULT, collect what it printed and how
 * it ended, and make sure no child outlives the suite.
 */
import { buildSync } from "esbuild";
import { spawn, type ChildProcess } from "node:child_process";
import * as fs from "node:fs";
import * as path from "node:path";

const root = path.resolve(__dirname, "../..");
// under node_modules so that the bundle's external packages resolve from the repository
const outDir = path.join(root, "node_modules/.cache/cleanroom-fault-tests");

export interface ChildRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface FaultChild {
  /** Run the child with `args`; `fault` sets CLEANROOM_FAULT (undefined: unset, "?": list the points it hits). */
  run(args: string[], fault?: string): Promise<ChildRun>;
  /** Kill any child still running and remove the bundle (afterAll). */
  dispose(): void;
}

/** Bundle `fixtures/<name>.ts` into one ES module and return its runner. */
export function faultChild(name: string): FaultChild {
  fs.mkdirSync(outDir, { recursive: true });
  const script = path.join(outDir, `${name}-${process.pid}.mjs`);
  buildSync({
    entryPoints: [path.join(__dirname, "fixtures", `${name}.ts`)],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    outfile: script,
    packages: "external",
    logLevel: "silent",
    // the library is CommonJS: its lazy require() (arquero, DuckDB) and __dirname need the CJS names in an ES module
    banner: {
      js: [
        'import { createRequire as __crlRequire } from "node:module";',
        'import { fileURLToPath as __crlPath } from "node:url";',
        "const require = __crlRequire(import.meta.url);",
        "const __filename = __crlPath(import.meta.url);",
        'const __dirname = __filename.slice(0, __filename.lastIndexOf("/"));',
      ].join("\n"),
    },
  });
  const children: ChildProcess[] = [];
  return {
    run: (args, fault) =>
      new Promise((resolve) => {
        const env = { ...process.env };
        if (fault === undefined) delete env.CLEANROOM_FAULT;
        else env.CLEANROOM_FAULT = fault;
        const p = spawn(process.execPath, [script, ...args], { env, stdio: ["ignore", "pipe", "pipe"] });
        children.push(p);
        let stdout = "";
        let stderr = "";
        p.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
        p.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
        p.on("exit", (code, signal) => resolve({ code, signal, stdout, stderr }));
      }),
    dispose: () => {
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL"); // none may outlive the suite
      fs.rmSync(script, { force: true });
    },
  };
}

/** The fault points a child run with CLEANROOM_FAULT=? reported on stderr, in order (prefix: e.g. "file."). */
export function tracedPoints(stderr: string, prefix = ""): string[] {
  return stderr
    .split("\n")
    .filter((l) => l.startsWith(`fault-point ${prefix}`))
    .map((l) => l.slice("fault-point ".length));
}

/** Run `f` over `items`, `width` at a time (2 cores: two children at once). */
export async function inBatches<T>(items: readonly T[], width: number, f: (item: T, index: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map((x, j) => f(x, i + j)));
}
