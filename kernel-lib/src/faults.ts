/**
 * Fault injection for the crash tests (test/faults/): named points inside the library's own
 * write paths (ledger charge, audit append, head signing, head publication, budget creation)
 * where a test process can be killed with SIGKILL — the same thing as `kill -9` or a kernel
 * that dies — to prove that every kill leaves a consistent, verifiable room.
 *
 * Set `CLEANROOM_FAULT=<point>` (kill at the first hit) or `<point>@<n>` (kill at the n-th hit)
 * in the environment of a child process; `CLEANROOM_FAULT=?` lists every point hit, in order,
 * on stderr (`fault-point <name>`), so the suite can kill at each. Unset (always, outside those
 * tests) a point costs one comparison against `undefined`. Threat model: none — the hook can only kill its own process,
 * which anybody who can set its environment can do anyway.
 */
const SPEC = typeof process !== "undefined" ? process.env?.CLEANROOM_FAULT : undefined;
const [POINT, NTH] = SPEC ? [SPEC.split("@")[0]!, Math.max(1, Number(SPEC.split("@")[1] ?? 1) || 1)] : [undefined, 0];
let hits = 0;

/** Every fault point of the library (the fault suite kills at each). */
export const FAULT_POINTS = [
  "ledger.createBudget.beforeCommit",
  "ledger.charge.beforeCommit",
  "audit.append.beforeCommit",
  "audit.head.beforeCommit",
  "audit.publish.beforeSave",
  "room.charge.beforeCommit",
  "room.charge.afterCommit",
  "anchor.beforeRename",
  "anchor.afterRename",
] as const;
/** The write points of a file-backed upload (DuckDB labs, cleanroom/file-dataset.ts); test/faults/file-upload-kill.test.ts kills at each. */
export const FILE_FAULT_POINTS = ["file.sealChunk", "file.beforeRename", "file.afterRename", "file.beforeCatalogCommit"] as const;
export type FaultPoint = (typeof FAULT_POINTS)[number] | (typeof FILE_FAULT_POINTS)[number];

/** Kill this process here if `CLEANROOM_FAULT` names this point (and this is its n-th hit). */
export function faultPoint(point: FaultPoint): void {
  if (POINT === undefined) return;
  if (POINT === "?") return void process.stderr.write(`fault-point ${point}\n`);
  if (POINT !== point) return;
  if (++hits < NTH) return;
  process.kill(process.pid, "SIGKILL");
}
