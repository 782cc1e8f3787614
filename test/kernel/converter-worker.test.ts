/**
 * The kernel's compiler worker (kernel-lib/jupyter/kernels/cleanroom-ts/converter-worker.js): the
 * main thread's converter is a synchronous proxy into a worker thread. What a cell's author sees
 * must be what tslab's in-thread converter gives: type errors are diagnostics (the cell does not
 * run), good cells convert, the library's types are checked, completions work. One worker for
 * the file (building the compiler takes seconds). End to end through the kernel (cells sent at
 * once, before the worker is ready): test_cleanroom_ts.py and test_code_cache.py.
 */
import path from "node:path";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const WORKER = path.resolve(__dirname, "../../kernel-lib/jupyter/kernels/cleanroom-ts/converter-worker.js");

type Diag = { messageText: string; start: { line: number } };
type Converter = {
  convert(prevDecl: string, src: string): { output?: string; declOutput?: string; diagnostics: Diag[]; lastExpressionVar?: string };
  complete(prevDecl: string, src: string, position: number): { candidates: string[] };
  close(): void;
};
let converter: Converter;
const logged: string[] = [];

beforeAll(() => {
  const { startConverterWorker } = createRequire(WORKER)(WORKER);
  ({ converter } = startConverterWorker({ cacheDir: null, traceFile: "", log: (...a: unknown[]) => logged.push(a.join(" ")) }));
});
afterAll(() => converter?.close());

describe("the compiler worker's converter", () => {
  it("reports a type error as a diagnostic and produces no code", () => {
    const r = converter.convert("", 'const n: number = "text";');
    expect(r.diagnostics.map((d) => d.messageText).join("\n")).toMatch(/not assignable to type 'number'/);
    expect(r.output).toBeUndefined();
  }, 60_000);

  it("converts a good cell, with the last expression's variable and the declarations for the next cell", () => {
    const r = converter.convert("", "const m: number = 41;\nm + 1");
    expect(r.diagnostics).toEqual([]);
    expect(r.output).toContain("41");
    expect(r.lastExpressionVar).toBeTruthy();
    const next = converter.convert(r.declOutput ?? "", "const s: string = m;");
    expect(next.diagnostics.map((d) => d.messageText).join("\n")).toMatch(/'number' is not assignable to type 'string'/);
  });

  it("type-checks calls into the library against its declarations", () => {
    const good = converter.convert(
      "",
      'import { openLab } from "@cleanroom-lab/kernel";\nconst lab = openLab({ store: ":memory:", budget: { epsilon: 1 } });',
    );
    expect(good.diagnostics).toEqual([]);
    const bad = converter.convert("", 'import { openLab } from "@cleanroom-lab/kernel";\nconst lab = openLab({ store: 42 });');
    expect(bad.diagnostics.map((d) => d.messageText).join("\n")).toMatch(/'number' is not assignable to type 'string'/);
    expect(bad.diagnostics[0].start.line).toBe(1);
  });

  it("answers completions", () => {
    const src = "Math.flo";
    expect(converter.complete("", src, src.length).candidates).toContain("floor");
    expect(logged.filter((l) => /cannot build|failed/.test(l))).toEqual([]);
  });
});

describe("a compiler worker that does not answer", () => {
  it("gives up after its deadline, stops the worker and says to restart the kernel (instead of a cell busy for good)", () => {
    const { startConverterWorker } = createRequire(WORKER)(WORKER);
    // 1 ms: no type-check answers that fast, so the first call reaches the deadline
    const w = startConverterWorker({ cacheDir: null, traceFile: "", log: () => {}, deadlineMs: 1 });
    expect(() => w.converter.convert("", "1 + 1")).toThrow(/did not answer convert within 0.001 s; restart the kernel/);
    expect(() => w.converter.convert("", "1 + 1")).toThrow(/no type checker/);
  });
});
