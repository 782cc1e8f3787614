/**
 * arquero, loaded on first use: importing it costs ~0.8 s of module loading (measured with a
 * require timer at kernel start), which a notebook that only runs PSI, or queries on the
 * DuckDB engine, should not pay when it imports `@cleanroom-lab/kernel`.
 */
import type * as Arquero from "arquero";

let mod: typeof Arquero | undefined;

/**
 * The arquero module (required once, then cached).
 * @example aq().table({ x: [1, 2] }).numRows() // 2
 */
export function aq(): typeof Arquero {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (mod ??= require("arquero") as typeof Arquero);
}
