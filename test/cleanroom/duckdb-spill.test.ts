import fs from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { DuckDbEngine, duck, privateDuck } from "../../kernel-lib/src/cleanroom/duckdb.js";

const setting = async (conn: { runAndReadAll(sql: string): Promise<{ getColumns(): unknown[][] }> }) =>
  String((await conn.runAndReadAll("SELECT current_setting('temp_directory')")).getColumns()[0]![0]);

describe("DuckDB spill directory: private, never ./.tmp in the working directory", () => {
  it("positive control: a plain in-memory instance would spill to .tmp under the working directory", async () => {
    const instance = await duck().DuckDBInstance.create(":memory:");
    const conn = await instance.connect();
    try {
      expect(await setting(conn)).toBe(".tmp");
    } finally {
      conn.closeSync();
      instance.closeSync();
    }
  });

  it("privateDuck spills to a 0700 directory outside cwd, removed at close", async () => {
    const db = await privateDuck();
    const conn = await db.instance.connect();
    const dir = db.spillDir;
    try {
      expect(await setting(conn)).toBe(dir);
      expect(path.isAbsolute(dir)).toBe(true);
      expect(path.relative(process.cwd(), dir).startsWith("..")).toBe(true);
      const st = fs.lstatSync(dir);
      expect(st.isDirectory()).toBe(true);
      expect(st.mode & 0o777).toBe(0o700);
      // a sort larger than the memory limit runs (spilling into the private directory)
      await conn.run("SET memory_limit = '64MB'; SET threads = 1");
      const r = await conn.runAndReadAll("SELECT count(*) FROM (SELECT md5(i::VARCHAR) AS h FROM range(3000000) t(i) ORDER BY h)");
      expect(Number(r.getColumns()[0]![0])).toBe(3_000_000);
      expect(fs.existsSync(path.join(process.cwd(), ".tmp"))).toBe(false);
    } finally {
      conn.closeSync();
      db.close();
    }
    expect(fs.existsSync(dir)).toBe(false);
    db.close(); // idempotent
  });

  it("the DuckDB engine's own instance uses a private spill directory", async () => {
    const engine = new DuckDbEngine();
    const conn = await (engine as unknown as { connection(): Promise<Parameters<typeof setting>[0]> }).connection();
    const dir = await setting(conn);
    expect(dir).not.toBe(".tmp");
    expect(fs.statSync(dir).mode & 0o777).toBe(0o700);
    engine.close();
    expect(fs.existsSync(dir)).toBe(false);
  });

  it("no library code creates a DuckDB instance except through privateDuck or with an explicit spill directory", () => {
    const root = path.resolve(__dirname, "../../kernel-lib/src");
    const offenders: string[] = [];
    const walk = (d: string) => {
      for (const e of fs.readdirSync(d, { withFileTypes: true })) {
        const p = path.join(d, e.name);
        if (e.isDirectory()) walk(p);
        else if (p.endsWith(".ts"))
          for (const line of fs.readFileSync(p, "utf8").split("\n"))
            if (/DuckDBInstance\.create\(/.test(line) && !/temp_directory/.test(line) && !line.trim().startsWith("*"))
              offenders.push(path.relative(root, p));
      }
    };
    walk(root);
    expect(offenders).toEqual([]);
  });
});
