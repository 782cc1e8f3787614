/**
 * A notice board in a shared folder: how two notebooks (or a teacher and a class) exchange what
 * is public — member public keys, a PSI listening port, "I have uploaded" — without a chat. Each
 * notice is one small JSON file written atomically (temp file + rename); `read` waits for it.
 *
 * Threat model: none beyond the folder's permissions; only public values belong here (never a
 * key file, never rows). A notice is refused if it is not plain JSON or larger than 64 KiB.
 */
import fs from "node:fs";
import path from "node:path";
import { CleanRoomError, invalid } from "../errors.js";

const KEY = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$/;

export interface Bulletin {
  readonly dir: string;
  /** Post (or replace) a public notice. */
  post(key: string, value: unknown): void;
  /** Wait until `key` is posted (default 120 s), then return its value. */
  read<T = unknown>(key: string, o?: { timeoutMs?: number }): Promise<T>;
}

/**
 * @example const board = bulletin("../.scratch/room"); board.post("retailer.publicKey", me.publicKey); await board.read("advertiser.publicKey")
 */
export function bulletin(dir: string): Bulletin {
  if (typeof dir !== "string" || !dir) invalid("dir", "a folder path", dir);
  fs.mkdirSync(dir, { recursive: true });
  const file = (key: string) => {
    if (typeof key !== "string" || !KEY.test(key)) invalid("key", "a notice name [A-Za-z0-9_.-]", key);
    return path.join(dir, `${key}.notice.json`);
  };
  return {
    dir,
    post(key, value) {
      const f = file(key);
      const text = JSON.stringify({ value });
      if (text === undefined || text.length > 65536) invalid("value", "plain JSON of at most 64 KiB", value);
      const tmp = `${f}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, text);
      fs.renameSync(tmp, f);
    },
    async read<T>(key: string, o: { timeoutMs?: number } = {}): Promise<T> {
      const f = file(key);
      const deadline = Date.now() + (o.timeoutMs ?? 120_000);
      for (;;) {
        if (fs.existsSync(f)) return (JSON.parse(fs.readFileSync(f, "utf8")) as { value: T }).value;
        if (Date.now() > deadline)
          throw new CleanRoomError("STATE_INVALID", `"key" expected the notice "${key}" to be posted, got none in time`, { field: "key" });
        await new Promise((r) => setTimeout(r, 100));
      }
    },
  };
}
