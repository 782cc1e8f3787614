/**
 * The shape of the session (issue 12, "one road"): Lab exposes what notebooks call and
 * nothing of its internals; the session's modules import without cycles.
 */
import * as fs from "node:fs";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import { internals } from "../../kernel-lib/src/session/lab.js";

const SRC = path.resolve(__dirname, "../../kernel-lib/src");

/** Relative imports (value and type) of every .ts file under kernel-lib/src. */
function importGraph(): Map<string, string[]> {
  const g = new Map<string, string[]>();
  const walk = (d: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith(".ts")) {
        const deps = [...fs.readFileSync(p, "utf8").matchAll(/(?:import|export)\s[^;]*?from\s+"(\.[^"]+)"/g)].map((m) =>
          path.resolve(path.dirname(p), m[1]!.replace(/\.js$/, ".ts")),
        );
        g.set(p, deps);
      }
    }
  };
  walk(SRC);
  return g;
}

function cyclesThrough(g: Map<string, string[]>, mine: (f: string) => boolean): string[][] {
  const out: string[][] = [];
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  const dfs = (n: string) => {
    state.set(n, 1);
    stack.push(n);
    for (const d of g.get(n) ?? []) {
      if (!g.has(d)) continue;
      if (state.get(d) === 1) out.push(stack.slice(stack.indexOf(d)).map((x) => path.relative(SRC, x)));
      else if (!state.get(d)) dfs(d);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const f of g.keys()) if (!state.get(f)) dfs(f);
  return out.filter((c) => c.some((f) => mine(path.join(SRC, f))));
}

describe("the session's shape", () => {
  it("Lab keeps its internals private: only the notebook verbs and the operator's own powers are public", () => {
    const lab = openLab({ store: ":memory:", rng: { seed: "shape" } });
    const pub = new Set<string>([...Object.keys(lab), ...Object.getOwnPropertyNames(Object.getPrototypeOf(lab))]);
    pub.delete("constructor");
    expect([...pub].sort()).toEqual([
      "approveTemplate",
      "audit",
      "budget",
      "cleanRoomQuery",
      "close",
      "datasets",
      "db",
      "declarePurpose",
      "party",
      "purpose",
      "rng",
      "roomId",
      "stamp",
      "store",
      "upload",
      "uploadSteps",
    ]);
    for (const gone of ["charge", "resolveTemplate", "planContext", "ledger", "templates", "history", "engine", "enclaveRootKey"])
      expect((lab as unknown as Record<string, unknown>)[gone], gone).toBeUndefined();
    // tests reach the room through the one documented accessor
    expect(internals(lab).room.ledger.status(lab.roomId).budgets).toEqual([]);
    expect(() => internals({} as never)).toThrow(/INPUT_INVALID.*"lab"/);
    lab.close();
  });

  it("no import cycle runs through the session, the enclave room, the transport or the PSI driver", () => {
    const g = importGraph();
    const mine = (f: string) => /[\\/](session|transport)[\\/]|session\.ts$|enclave-room[^\\/]*\.ts$|run-psi\.ts$/.test(f);
    expect(cyclesThrough(g, mine)).toEqual([]);
    // positive control: the checker does see a cycle when one exists
    const planted = new Map(g);
    const views = path.join(SRC, "enclave-room-views.ts");
    planted.set(views, [...(g.get(views) ?? []), path.join(SRC, "enclave-room.ts")]);
    expect(cyclesThrough(planted, mine).length).toBeGreaterThan(0);
  });
});
