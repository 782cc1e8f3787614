/**
 * The secret-shared lift between three OS processes (scripts/mpc-party.mjs: advertiser, retailer,
 * dealer) over the socket transport on 127.0.0.1. Needs the build (kernel-lib/dist). Every child
 * is killed by pid after the test, also on failure.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { oracleLiftAggregates } from "../../kernel-lib/src/studies/oracle.js";
import { exactTemplate, matchedStudy } from "./fixtures.js";

const ROOT = path.resolve(__dirname, "../..");
const SCRIPT = path.join(ROOT, "scripts/mpc-party.mjs");
const dir = fs.mkdtempSync(path.join(os.tmpdir(), "mpc-processes-"));
const children: ChildProcess[] = [];
const servers: net.Server[] = [];
afterAll(() => {
  for (const c of children)
    if (c.exitCode === null && c.signalCode === null && c.pid)
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        /* already gone */
      }
  for (const s of servers) s.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const fix = await matchedStudy("mpc-proc", 1500);
const write = (name: string, v: unknown) => (fs.writeFileSync(path.join(dir, name), JSON.stringify(v)), path.join(dir, name));
const advFile = write(
  "adv.json",
  fix.adv.map((r) => ({ join_key: r.join_key, group: r.group })),
);
const retFile = write(
  "ret.json",
  fix.ret.map((r) => ({ join_key: r.join_key, purchase_day: r.purchase_day, value_cents: r.value_cents })),
);
const tplFile = write("template.json", exactTemplate());

function party(args: string[]) {
  const proc = spawn(process.execPath, [SCRIPT, ...args, "--seed", "mpc-proc", "--timeout-ms", "60000", "--ledger", "none"], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  children.push(proc);
  const events: Record<string, unknown>[] = [];
  let buf = "";
  let notify: () => void = () => {};
  proc.stdout!.on("data", (d: Buffer) => {
    buf += d.toString();
    let nl: number;
    while ((nl = buf.indexOf("\n")) >= 0) {
      events.push(JSON.parse(buf.slice(0, nl)) as Record<string, unknown>);
      buf = buf.slice(nl + 1);
      notify();
    }
  });
  const exited = new Promise<number | null>((r) => proc.on("exit", (c) => r(c)));
  const port = () =>
    new Promise<number>((resolve) => {
      const check = () => {
        const e = events.find((x) => x["event"] === "listening");
        if (e) resolve(e["port"] as number);
      };
      notify = check;
      check();
    });
  return { proc, events, exited, port };
}

/** A TCP relay on 127.0.0.1 that records every byte in both directions. */
async function relay(target: number) {
  const bytes: Buffer[] = [];
  const server = net.createServer((client) => {
    const up = net.connect({ host: "127.0.0.1", port: target });
    client.on("data", (d) => (bytes.push(d), up.write(d)));
    up.on("data", (d) => (bytes.push(d), client.write(d)));
    client.on("close", () => up.destroy());
    up.on("close", () => client.destroy());
    client.on("error", () => up.destroy());
    up.on("error", () => client.destroy());
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen({ host: "127.0.0.1", port: 0 }, () => r()));
  return { port: (server.address() as net.AddressInfo).port, bytes };
}

async function run(tag: string, o: { channel: "on" | "off"; retRows?: string; killDealer?: boolean }) {
  const out = (r: string) => path.join(dir, `${tag}-${r}.json`);
  const dealer = party(["--role", "dealer", "--listen", "0", "--out", out("dealer"), "--channel", o.channel]);
  const dPort = await dealer.port();
  if (o.killDealer)
    // kill -9 at the dealer's first accepted connection: it can never have sent a triple (it needs both parties' "need")
    dealer.proc.stdout!.on("data", () => dealer.events.some((e) => e["event"] === "connected") && dealer.proc.kill("SIGKILL"));
  const ret = party([
    "--role",
    "retailer",
    "--listen",
    "0",
    "--dealer",
    String(dPort),
    "--rows",
    o.retRows ?? retFile,
    "--template",
    tplFile,
    "--out",
    out("retailer"),
    "--channel",
    o.channel,
  ]);
  const rPort = await ret.port();
  const mitm = await relay(rPort);
  const adv = party([
    "--role",
    "advertiser",
    "--connect",
    String(mitm.port),
    "--dealer",
    String(dPort),
    "--rows",
    advFile,
    "--template",
    tplFile,
    "--out",
    out("advertiser"),
    "--channel",
    o.channel,
  ]);
  const codes = await Promise.all([adv.exited, ret.exited, dealer.exited]);
  const read = (r: string) => (fs.existsSync(out(r)) ? JSON.parse(fs.readFileSync(out(r), "utf8")) : null);
  return {
    codes,
    adv: read("advertiser"),
    ret: read("retailer"),
    dealer: read("dealer"),
    wire: Buffer.concat(mitm.bytes),
    events: { adv: adv.events, ret: ret.events },
  };
}

describe("secret-shared lift between three processes over sockets", { timeout: 120_000 }, () => {
  it("returns exactly the oracle's aggregates to the advertiser only, over the SecureChannel", async () => {
    const r = await run("ok", { channel: "on" });
    expect(r.codes).toEqual([0, 0, 0]);
    const o = oracleLiftAggregates(fix.study.exposures, fix.study.purchases, { maxConversionsPerPerson: 4 }).cohorts[0]!.aggregates;
    for (const [k, v] of Object.entries(r.adv.aggregates as Record<string, number>)) expect([k, v]).toEqual([k, o[k as keyof typeof o]]);
    expect(Object.keys(r.adv.aggregates)).toHaveLength(12);
    expect(r.ret.aggregates).toBeNull();
    expect(r.adv.rngMode).toBe("seeded"); // --seed: every result is labelled teaching mode
    expect(r.dealer.bytesSent).toBeGreaterThan(0);
  });

  it("a scan of the advertiser↔retailer bytes (channel off): no join key, no e-mail, no small 64-bit word", async () => {
    const r = await run("scan", { channel: "off" });
    expect(r.codes).toEqual([0, 0, 0]);
    const text = r.wire.toString("latin1");
    expect(text.length).toBeGreaterThan(20 * fix.adv.length);
    const ids = [...fix.adv.slice(0, 300).map((x) => x.join_key), ...fix.study.exposures.slice(0, 300).map((x) => x.email)];
    expect(ids.filter((id) => text.includes(id))).toEqual([]);
    let words = 0;
    let small = 0;
    for (const m of text.matchAll(/"([A-Za-z0-9+/]{16,}={0,2})"/g)) {
      const b = Buffer.from(m[1]!, "base64");
      if (b.length % 8) continue;
      for (let i = 0; i < b.length; i += 8) {
        words++;
        if (b.readBigUInt64LE(i) < 1n << 40n) small++;
      }
    }
    expect(words).toBeGreaterThan(6 * fix.adv.length);
    expect(small).toBe(0);
  });

  it("the standalone script keeps no ledger, so it refuses to run unless told so (--ledger none), before listening", () => {
    const out = path.join(dir, "unmetered.json");
    const r = spawnSync(process.execPath, [SCRIPT, "--role", "dealer", "--listen", "0", "--out", out], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.status).toBe(2);
    const events = r.stdout
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(events.some((e) => e["event"] === "listening")).toBe(false);
    expect(events.at(-1)).toMatchObject({ event: "error", code: "INPUT_INVALID", field: "--ledger" });
    expect(fs.existsSync(out)).toBe(false);
  });

  it("a retailer with a different matched set: every process refuses with a typed error and writes no result", async () => {
    const fewer = write(
      "ret-fewer.json",
      fix.ret.filter((x) => x.join_key !== fix.adv[0]!.join_key),
    );
    const r = await run("bad", { channel: "on", retRows: fewer });
    expect(r.codes[0]).toBe(2);
    expect(r.codes[1]).toBe(2);
    expect(r.codes[2]).not.toBe(0);
    expect([r.adv, r.ret]).toEqual([null, null]);
    expect(r.events.adv.find((e) => e["event"] === "error")).toMatchObject({ code: "INPUT_INVALID", field: "rows.join_key" });
  });

  it("kill -9 of the dealer mid-run: both parties refuse (typed error, non-zero exit) and write no result", async () => {
    const r = await run("kill", { channel: "on", killDealer: true });
    expect(r.codes[2]).toBeNull(); // killed by signal
    expect(r.codes[0]).not.toBe(0);
    expect(r.codes[1]).not.toBe(0);
    expect([r.adv, r.ret, r.dealer]).toEqual([null, null, null]);
    expect(r.events.adv.find((e) => e["event"] === "error")).toBeDefined();
  });

  it("intersection-sum with cardinality between two processes: the oracle's test-arm population, converters and value", async () => {
    const out = (r: string) => path.join(dir, `pjc-${r}.json`);
    const exp = write("exposures.json", fix.study.exposures);
    const pur = write("purchases.json", fix.study.purchases);
    const values = party([
      "--role",
      "pjc-values",
      "--listen",
      "0",
      "--rows",
      pur,
      "--template",
      tplFile,
      "--columns",
      "converters,value",
      "--out",
      out("values"),
    ]);
    const port = await values.port();
    const ids = party(["--role", "pjc-ids", "--connect", String(port), "--rows", exp, "--arm", "test", "--out", out("ids")]);
    expect(await Promise.all([ids.exited, values.exited])).toEqual([0, 0]);
    const o = oracleLiftAggregates(fix.study.exposures, fix.study.purchases, { maxConversionsPerPerson: 4 }).cohorts[0]!.aggregates;
    const v = JSON.parse(fs.readFileSync(out("values"), "utf8"));
    const i = JSON.parse(fs.readFileSync(out("ids"), "utf8"));
    expect(v.intersectionSize).toBe(o.testPopulation);
    expect(v.sums).toEqual([o.testConverters, o.testValue]);
    expect(i.intersectionSize).toBe(o.testPopulation);
    expect(Object.keys(i)).not.toContain("sums"); // the ids party learns the size only
  });
});
