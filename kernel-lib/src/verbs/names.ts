/**
 * Names for what the ledger keys by hash: template hashes → the names they were proposed under,
 * dataset fingerprints → `owner/name`. Shared by the budget and audit views (ledger.ts) and the
 * live budget the sidebar reads (live.ts).
 */
import type { Lab } from "../session.js";
import type { PayloadOf } from "../display/schema.js";
import { internals } from "../session/lab.js";

/**
 * The approved names of template hashes, from the room's template registry (the views show the
 * name and keep the hash on hover). A hash the room never saw proposed (a refused query's) is
 * left out: the view shows the hash.
 *
 * @example
 * roomTemplateNames(lab, ["9f2c…"]) // { "9f2c…": "lift" }
 */
export function roomTemplateNames(lab: Lab, hashes: Iterable<string | null | undefined>): Record<string, string> {
  const { templates } = internals(lab).room;
  const names: Record<string, string> = {};
  for (const h of hashes) {
    if (!h || Object.hasOwn(names, h)) continue;
    try {
      names[h] = templates.status(h).name;
    } catch {
      // never proposed in this room
    }
  }
  return names;
}

/**
 * A budget payload whose dataset budgets are named `owner/name` from the room's catalog (the
 * ledger keys them by content fingerprint; identical uploads share one: "a/x = b/y").
 */
export function namedDatasetBudgets(lab: Lab, p: PayloadOf<"budget">): PayloadOf<"budget"> {
  const names = new Map<string, string[]>();
  for (const d of internals(lab).room.catalogNames())
    names.set(`sha256:${d.fingerprint}`, [...(names.get(`sha256:${d.fingerprint}`) ?? []), `${d.owner}/${d.name}`]);
  return {
    ...p,
    budgets: p.budgets.map((b) =>
      b.scope === "dataset" && names.has(b.subject) ? { ...b, subject: names.get(b.subject)!.join(" = ") } : b,
    ),
  };
}
