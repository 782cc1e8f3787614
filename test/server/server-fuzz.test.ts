/**
 * A hostile member that skips its own door: signed, admitted requests (a real member's key,
 * fresh nonce and seq) whose bodies are made up — wrong types, near-valid verb inputs with one
 * part replaced, huge or deep values, `__proto__` keys, values past 2^53. Every answer must be a
 * result or a typed refusal from the closed list (never INTERNAL, never a dead server), and a
 * refusal must not charge the ledger. Seeded: CI is stable.
 */
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import * as fc from "fast-check";
import { ERROR_CODES } from "../../kernel-lib/src/errors.js";
import { RoomServer } from "../../kernel-lib/src/server/server.js";
import { createIdentity } from "../../kernel-lib/src/server/identity.js";
import { acceptCollaboration, createCollaboration, joinRoom, type RemoteRoom } from "../../kernel-lib/src/server/client.js";
import type { Op } from "../../kernel-lib/src/server/protocol.js";
import { liftRules, liftSchemas, liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { approveTemplate, declarePurpose, upload } from "../../kernel-lib/src/verbs/room.js";
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { chargeCount } from "./helpers.js";

const dir = fs.mkdtempSync(path.join(os.tmpdir(), "room-fuzz-"));
const store = path.join(dir, "room.db");
let server: RoomServer;
let room: RemoteRoom;
afterAll(async () => {
  room?.close();
  await server?.close();
  fs.rmSync(dir, { recursive: true, force: true });
});

const tmpl = liftTemplate({ advertiser: "a", retailer: "a", epsilonPerAggregate: "0.1", threshold: 2 });
// one member owns both sides (the fuzz is about request bodies, not PSI): join keys stand in for e-mails
const study = generateStudy({ seed: "fuzz", advertiserRows: 200, overlap: 0.7, holdoutShare: 0.3, baseConversionRate: 0.2, liftPct: 40 });
const keyOf = new Map<string, string>();
const keyed = <T extends { email: string }>(xs: T[]) =>
  xs.map(({ email, ...r }) => {
    const e = email.trim().toLowerCase();
    if (!keyOf.has(e)) keyOf.set(e, `k${keyOf.size}`);
    return { ...r, join_key: keyOf.get(e)! };
  });
const rows = keyed(study.exposures);
const purchases = keyed(study.purchases);

beforeAll(async () => {
  server = await RoomServer.start({ store, budget: { epsilon: 1 }, rng: { seed: "fuzz" } });
  const id = createIdentity({ name: "a", file: path.join(dir, "a.key"), rng: { seed: "fuzz-a" } });
  room = await joinRoom(server.url, { as: "a", identity: id, rng: { seed: "fuzz-join" } });
  await createCollaboration(room, { members: [{ name: "a", publicKey: id.publicKey, abilities: ["own", "query", "receive"] }] });
  await acceptCollaboration(room);
  await upload(room, {
    party: "a",
    name: "exposures",
    rows,
    schema: liftSchemas().exposures,
    purposes: ["measurement"],
    rule: liftRules(2).exposures,
  });
  await upload(room, {
    party: "a",
    name: "purchases",
    rows: purchases,
    schema: liftSchemas().purchases,
    purposes: ["measurement"],
    rule: liftRules(2).purchases,
  });
  await declarePurpose(room, { party: "a", analyst: "bo", purpose: "measurement", justification: "fuzzing" });
  expect((await approveTemplate(room, { template: tmpl, party: "a" })).approved).toBe(true);
});

const hostile = fc.oneof(
  fc.jsonValue({ maxDepth: 4 }),
  fc.constantFrom(null, -0, 2 ** 53 + 2, -1, 1e308, "", "x".repeat(5000), [], {}, { __proto__: 1 }, JSON.parse('{"__proto__":{"a":1}}')),
  fc.constant(
    (function deep(n: number): unknown {
      return n === 0 ? 1 : { d: deep(n - 1) };
    })(200),
  ),
);

const valid: Record<string, Record<string, unknown>> = {
  upload: { party: "a", name: "more", rows, schema: liftSchemas().exposures, purposes: ["measurement"] },
  datasets: { party: "a" },
  declarePurpose: { party: "a", analyst: "bo", purpose: "measurement", justification: "fuzzing" },
  cleanRoomQuery: { template: tmpl, params: { startDay: 0, endDay: 27 }, party: "a", analyst: "bo", purpose: "measurement" },
  budget: {},
  audit: { limit: 5 },
  previewQuery: { template: tmpl, params: { startDay: 0, endDay: 27 }, party: "a", confidence: 0.9 },
};

describe("server fuzz: a member that bypasses its door", () => {
  it("every signed request with a made-up body is answered with a result or a typed refusal; refusals charge nothing", async () => {
    const ops = Object.keys(valid) as Op[];
    const seen: Record<string, number> = {};
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...ops),
        fc.oneof(fc.nat({ max: 9 }), fc.string({ maxLength: 12 })),
        hostile,
        async (op, key, value) => {
          // mostly: one existing field replaced; sometimes: an unknown field added
          const input: Record<string, unknown> = { ...valid[op]! };
          const names = Object.keys(input);
          input[typeof key === "number" && names.length ? names[key % names.length]! : String(key)] = value;
          const before = chargeCount(store);
          const r = await room.sendRaw(room.sign(op, { input: JSON.parse(JSON.stringify(input)) }));
          const k = r.ok ? "ok" : r.error.code;
          seen[k] = (seen[k] ?? 0) + 1;
          if (!r.ok) {
            expect(ERROR_CODES as readonly string[], r.error.message).toContain(r.error.code);
            expect(r.error.code, r.error.message).not.toBe("INTERNAL");
            expect(chargeCount(store)).toBe(before);
          }
        },
      ),
      { seed: 1313, numRuns: 200 },
    );
    // both outcomes happened, and refusals came from more than the first check
    expect(seen.ok).toBeGreaterThan(0);
    expect(Object.keys(seen).length, JSON.stringify(seen)).toBeGreaterThanOrEqual(4);
    console.log("server fuzz outcomes", seen);
    // the room still answers
    const r = await room.sendRaw(room.sign("budget", { input: {} }));
    expect(r.ok).toBe(true);
  });
});
