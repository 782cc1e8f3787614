/**
 * The live budget: a kernel-process registry of the labs opened with `openLab`, read by the
 * cleanroom-ts kernel launcher after every execution so the JupyterLab "Privacy budget"
 * sidebar shows each room's actual ledger — also after cells that never call `budget()`.
 *
 * The registry holds weak references only (a lab nobody can reach any more is not kept alive)
 * and lives at `globalThis[Symbol.for("cleanroom-lab.live-budgets")]`, where the launcher
 * finds it without loading the library itself: `snapshots()` returns one
 * `{ displayId: "cleanroom-budget:<room>", bundle }` per open lab, which the launcher publishes
 * as an iopub `update_display_data` (no output shows that id, so notebooks ignore it; the
 * sidebar listens for it). A closed lab drops out.
 *
 * Threat model: the payload is the same released ledger view `budget()` shows (amounts,
 * charges, template hashes, purposes), with dataset budgets named by owner/name from the
 * room's catalog — names are schema, not personal data. Nothing here runs code sent by the
 * front end: the sidebar never executes anything in the user's kernel.
 */
import { rngStamp } from "../rng.js";
import { internals, type Lab } from "../session/lab.js";
import { toMimeBundle, type MimeBundle } from "../display/bundle.js";
import { budgetPayloadFromLedger } from "../display/from-ledger.js";
import type { PayloadOf } from "../display/schema.js";
import { namedDatasetBudgets, roomTemplateNames } from "./names.js";
import type { RemoteRoom } from "../server/client.js";
import type { BudgetReport } from "../dp/planner.js";
import type { RngStamp } from "../rng.js";
import { ROOM_PANEL_MIME, ROOM_PANEL_PREFIX, roomPanelText, type RoomPanelPayload } from "../display/room-panel.js";
import { roomPanelPayload, type RoomStatus } from "../server/panel.js";
import { isCleanRoomError } from "../errors.js";
import { remoteBudgets } from "./remote-budgets.js";

const LIVE = Symbol.for("cleanroom-lab.live-budgets");
/** The display id prefix of live budget updates. */
export const LIVE_BUDGET_PREFIX = "cleanroom-budget:";

interface LiveRegistry {
  labs: Set<WeakRef<Lab>>;
  /** Joined rooms with the last budget their server reported (refreshed after each change). */
  rooms?: Set<WeakRef<RemoteRoom>>;
  snapshots(): { displayId: string; bundle: MimeBundle }[];
  /** Read every joined room's server (`roomStatus`) for the Room panel and the live budget; the launcher awaits it (bounded) after each execution. */
  refresh?(timeoutMs?: number): Promise<void>;
}

/**
 * A lab's budget payload as the sidebar shows it: the ledger's status, dataset budgets named
 * `owner/name` (the ledger keys them by content fingerprint).
 *
 * @example
 * liveBudgetPayload(lab).budgets.map((b) => b.subject) // ["lab", "advertiser", "retailer", "retailer/purchases"]
 */
export function liveBudgetPayload(lab: Lab): PayloadOf<"budget"> {
  const room = internals(lab).room;
  const status = room.ledger.status(lab.roomId);
  const templateNames = roomTemplateNames(
    lab,
    status.budgets.flatMap((b) => b.history.map((c) => c.meta.templateHash)),
  );
  const p = budgetPayloadFromLedger(status, { title: `Privacy budget — ${lab.roomId}`, ...rngStamp(lab.rng), templateNames });
  return namedDatasetBudgets(lab, p);
}

function registry(): LiveRegistry {
  const g = globalThis as Record<symbol, LiveRegistry | undefined>;
  const existing = g[LIVE];
  if (existing) return existing;
  const labs = new Set<WeakRef<Lab>>();
  const r: LiveRegistry = {
    labs,
    snapshots() {
      const out: { displayId: string; bundle: MimeBundle }[] = [];
      for (const ref of labs) {
        const lab = ref.deref();
        if (!lab) {
          labs.delete(ref);
          continue;
        }
        try {
          out.push({ displayId: `${LIVE_BUDGET_PREFIX}${lab.roomId}`, bundle: toMimeBundle(liveBudgetPayload(lab)) });
        } catch {
          labs.delete(ref); // closed (its database is gone) or not a lab of this library instance
        }
      }
      for (const ref of r.rooms ?? []) {
        const room = ref.deref();
        const report = room && !room.closed ? remoteBudgets.get(room) : undefined;
        if (!room || room.closed) r.rooms!.delete(ref);
        if (!room || room.closed) continue;
        const panel = roomPanels.get(room);
        if (panel)
          out.push({
            displayId: `${ROOM_PANEL_PREFIX}${room.roomId}@${room.member}`,
            bundle: { [ROOM_PANEL_MIME]: panel, "text/plain": roomPanelText(panel) } as unknown as MimeBundle,
          });
        if (!report) continue;
        try {
          const p = budgetPayloadFromLedger(report, {
            title: `Privacy budget — ${room.roomId} (server, as ${room.member})`,
            rngMode: report.rngMode,
            ...(report.label ? { label: report.label } : {}),
          });
          out.push({ displayId: `${LIVE_BUDGET_PREFIX}${room.roomId}@${room.member}`, bundle: toMimeBundle(p) });
        } catch {
          r.rooms!.delete(ref);
        }
      }
      return out;
    },
    async refresh(timeoutMs = 3000) {
      const rooms = [...(r.rooms ?? [])].map((x) => x.deref()).filter((x): x is RemoteRoom => !!x && !x.closed);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((res) => (timer = setTimeout(res, timeoutMs)));
      await Promise.race([Promise.all(rooms.map((x) => refreshRoomPanel(x))), late]);
      clearTimeout(timer);
    },
  };
  Object.defineProperty(g, LIVE, { value: r, configurable: true, enumerable: false });
  return r;
}

/** Register a lab for the live budget (openLab does this); returns the lab. */
export function registerLiveLab(lab: Lab): Lab {
  registry().labs.add(new WeakRef(lab));
  return lab;
}

const refreshing = new WeakMap<RemoteRoom, Promise<void>>();

/** Ask the room's server for its budget now (the live view shows it after the next cell). */
export function refreshLiveRoom(room: RemoteRoom): Promise<void> {
  const p = (refreshing.get(room) ?? Promise.resolve())
    .then(() => (room.closed ? undefined : room.request<BudgetReport & RngStamp>("budget", { input: {} })))
    .then(
      (report) => void (report && remoteBudgets.set(room, report)),
      () => undefined, // a refused or failed refresh keeps the last view
    );
  refreshing.set(room, p);
  return p;
}

/** Register a joined room for the live budget (joinRoom does this); returns the room. */
export function registerLiveRoom(room: RemoteRoom): RemoteRoom {
  const r = registry();
  (r.rooms ??= new Set()).add(new WeakRef(room));
  room.onChange(() => void refreshLiveRoom(room));
  return room;
}

const roomPanels = new WeakMap<RemoteRoom, RoomPanelPayload>();
const refusedAt = new WeakMap<RemoteRoom, number>();

/**
 * Read the room's server for the Room panel (signed, read-only `roomStatus`), verify its
 * signatures here and keep the payload; the budget it carries is the live budget too. A failed
 * read keeps the previous panel, marked stale with the error's `CODE: message`.
 */
export async function refreshRoomPanel(room: RemoteRoom): Promise<RoomPanelPayload | null> {
  // refused by the server (not yet a member, a key that is not the member's): every refusal is
  // audited, so do not ask again after every cell — only once this member's requests succeed again
  if (refusedAt.get(room) === room.answered) return roomPanels.get(room) ?? null;
  try {
    const status = await room.request<RoomStatus>("roomStatus");
    const panel = roomPanelPayload(room, status);
    roomPanels.set(room, panel);
    if (status.budget) remoteBudgets.set(room, status.budget);
    return panel;
  } catch (e) {
    const prev = roomPanels.get(room);
    const note = isCleanRoomError(e) ? `${e.code}: ${e.message}` : "the server did not answer";
    if (isCleanRoomError(e) && (e.details as { remote?: boolean } | undefined)?.remote === true) refusedAt.set(room, room.answered);
    if (prev) roomPanels.set(room, { ...prev, stale: note.slice(0, 500) });
    return prev ?? null;
  }
}

export { noteRemoteBudget } from "./remote-budgets.js";

/**
 * The live budget of every open lab, as the launcher publishes it.
 *
 * @example
 * liveBudgetSnapshots()[0].displayId // "cleanroom-budget:lab"
 */
export function liveBudgetSnapshots(): { displayId: string; bundle: MimeBundle }[] {
  return registry().snapshots();
}
