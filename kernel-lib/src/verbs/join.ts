/**
 * `joinRoom` at the notebook surface: join a room served by scripts/room-server.mjs (see
 * server/client.ts) and register it for the live budget, so the JupyterLab "Privacy budget"
 * sidebar shows the server's ledger after each cell that changed it (upload, approval, query)
 * or asked for it (`budget(room)`), as it does for a lab from `openLab`.
 *
 * Threat model: as server/client.ts; the live view is the same released budget the member's
 * `budget(room)` returns.
 */
import { joinRoom as joinServerRoom, type JoinOptions, type RemoteRoom } from "../server/client.js";
import { registerLiveRoom } from "./live.js";

/**
 * Join a room as one member (the URL pins the server's key; every request is signed by `identity`).
 * @example const room = await joinRoom("cleanroom://127.0.0.1:7700/lab#<key>", { as: "retailer", identity: loadIdentity("retailer.key") })
 */
export async function joinRoom(url: string, options: JoinOptions): Promise<RemoteRoom> {
  return registerLiveRoom(await joinServerRoom(url, options));
}
