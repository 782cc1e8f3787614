/**
 * The in-process executor of the query road: the purpose gate released the tables to the
 * session, the room's engine (arquero or DuckDB) runs the plan, and `executeQuery` applies
 * contribution bounds → noise from a fork of the lab's Rng → thresholds → difference check.
 *
 * Threat model: the session (and so the operator of the room) sees the released tables in
 * plaintext — that is what plain mode means; enclave mode (session/enclave-mode.ts) is the
 * executor that does not.
 */
import { hex } from "../crypto/primitives.js";
import { deserializeTable } from "../cleanroom/serialize.js";
import { tableFromReleased } from "../cleanroom/file-dataset.js";
import { executeQuery } from "../cleanroom/query.js";
import type { Table } from "../cleanroom/dataset.js";
import type { QueryExecutor } from "./road.js";
import type { Room } from "./room.js";

/** The in-process engine executor of `room` (one per lab: it numbers the lab's queries). */
export function engineExecutor(room: Room): QueryExecutor<null, object> {
  let queries = 0;
  return {
    name: "engine",
    admit: () => {},
    purposeNote: (purpose) => `granted for ${purpose}`,
    planContext: (authorized) => {
      const released: Record<string, Table> = {};
      for (const [id, bytes] of Object.entries(authorized.tables))
        released[id] = tableFromReleased(bytes, () => room.filesDir(), deserializeTable);
      return room.planContext(released);
    },
    checkPlan: () => {},
    acquire: () => null, // the gate already released the tables to this process
    chargeNote: () => "",
    async execute(q, _keys, phase) {
      const n = ++queries;
      const result = await executeQuery(q.prep, {
        ...(phase ? { beforeRelease: () => phase("release") } : {}),
        engine: room.engine,
        rng: room.rng.fork(`query:${n}`),
        history: room.history,
        resultId: q.charged?.chargeId ?? `${q.templateHash}:${n}:${hex(room.rng.bytes(8))}`,
      });
      return { result, where: room.engine.name, extra: {} };
    },
  };
}
