import Database from "better-sqlite3";
import { describe, expect, it } from "vitest";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";
import { b64, fromB64, utf8 } from "../../kernel-lib/src/crypto/primitives.js";
import { deriveKek, GatedTableStore, PurposeKeyService, unwrapAndOpen, type SealedDataset } from "../../kernel-lib/src/purpose/gate.js";
import { makeLabel } from "../../kernel-lib/src/purpose/labels.js";
import { room } from "./helpers.js";

const bo = { party: "advertiser", analyst: "bo" };
const TABLE = utf8("join_key,value_cents\nk1,1200\nk2,800\n"); // stands in for serializeTable(t)

function setup(seed = "gate") {
  const r = room(seed);
  const master = r.rng.fork("master").bytes(32);
  const keys = new PurposeKeyService({
    roomId: "room-1",
    masterSecret: master,
    policyPublicKey: r.authority.publicKey,
    taxonomy: r.taxonomy,
    clock: r.clock,
  });
  const store = new GatedTableStore(keys, r.taxonomy, r.rng.fork("store"));
  return { ...r, master, keys, store };
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (isCleanRoomError(e)) return `${e.code}${e.details.cause ? `/${String(e.details.cause)}` : ""}`;
    throw e;
  }
  return "no error";
}

describe("purpose gate (envelope encryption per purpose)", () => {
  it("wraps the data key once per allowed purpose tag and never stores plaintext", () => {
    const s = setup();
    const info = s.store.put("exposures", TABLE, ["ads", "safety"]);
    expect(info.wrappedFor).toEqual(["marketing.advertising", "safety"]);
    const sealed = JSON.stringify(s.store.sealed("exposures"));
    expect(sealed).not.toContain("value_cents");
    expect(sealed).not.toContain(b64(TABLE).slice(0, 12));
  });

  it("the seed table holds at the key gate too", () => {
    const s = setup();
    s.store.put("ads-data", TABLE, ["ads", "measurement"]);
    s.store.put("safety-data", TABLE, ["safety"]);
    const get = (id: string, p: string) => () => s.store.get(id, s.grant(p), { requester: bo });
    expect(get("ads-data", "ads")()).toEqual(TABLE);
    expect(code(get("ads-data", "research"))).toBe("KEY_RELEASE_DENIED/PURPOSE_DENIED");
    expect(code(get("safety-data", "ads"))).toBe("KEY_RELEASE_DENIED/PURPOSE_DENIED");
    expect(get("safety-data", "safety")()).toEqual(TABLE);
  });

  it("a measurement grant opens data tagged only marketing.advertising (hierarchy) via that tag's wrap", () => {
    const s = setup();
    const sealed = s.keys.seal("d", TABLE, makeLabel(s.taxonomy, { purposes: "ads" }), s.rng);
    const { wrapPurpose } = s.keys.releaseDataKey(sealed, s.grant("measurement"), bo);
    expect(wrapPurpose).toBe("marketing.advertising");
  });

  it("refuses forged, expired, other-analyst and missing grants at the gate", () => {
    const s = setup();
    s.store.put("d", TABLE, ["safety"]);
    const forged = { ...s.grant("ads"), purpose: "safety" };
    expect(code(() => s.store.get("d", forged, { requester: bo }))).toBe("KEY_RELEASE_DENIED/GRANT_INVALID");
    const short = s.grant("safety", bo, 10);
    s.advance(11);
    expect(code(() => s.store.get("d", short, { requester: bo }))).toBe("KEY_RELEASE_DENIED/GRANT_EXPIRED");
    expect(code(() => s.store.get("d", s.grant("safety"), { requester: { party: "advertiser", analyst: "eve" } }))).toBe(
      "KEY_RELEASE_DENIED/GRANT_INVALID",
    );
    expect(code(() => s.store.get("d", undefined as never, { requester: bo }))).toBe("KEY_RELEASE_DENIED/GRANT_INVALID");
  });

  it("calling the engine path directly with a wrong grant yields no plaintext, even bypassing policy code", () => {
    const s = setup();
    s.store.put("d", TABLE, ["safety"]);
    const sealed = s.store.sealed("d");
    // 1. the engine-facing store with an ads grant: refused.
    expect(code(() => s.store.get("d", s.grant("ads"), { requester: bo }))).toBe("KEY_RELEASE_DENIED/PURPOSE_DENIED");
    // 2. bypass every policy check and use the real KEK for "ads": there is no wrap for it.
    const adsKek = deriveKek(s.master, "room-1", "marketing.advertising");
    expect(code(() => unwrapAndOpen(sealed, "marketing.advertising", adsKek))).toBe("KEY_RELEASE_DENIED");
    // 3. force the ads KEK onto the safety wrap: AES-GCM authentication fails.
    const relabelled: SealedDataset = { ...sealed, wraps: sealed.wraps.map((w) => ({ ...w, purpose: "marketing.advertising" })) };
    expect(code(() => unwrapAndOpen(relabelled, "marketing.advertising", adsKek))).toBe("CRYPTO_DECRYPT_FAILED");
    // 4. relabel the dataset itself to allow ads (attacker edits the stored label): the gate's
    //    policy now says yes, but the label is bound into the wraps, so nothing opens.
    const forgedLabel: SealedDataset = { ...relabelled, label: makeLabel(s.taxonomy, { purposes: "ads" }) };
    expect(code(() => s.keys.open(forgedLabel, s.grant("ads"), bo))).toBe("KEY_RELEASE_DENIED/CRYPTO_DECRYPT_FAILED");
    // 5. the right purpose through the raw path does open (so the failures above are not vacuous).
    expect(unwrapAndOpen(sealed, "safety", deriveKek(s.master, "room-1", "safety"))).toEqual(TABLE);
    // 6. a gate with another master secret cannot open it even with a valid grant.
    const other = new PurposeKeyService({
      roomId: "room-1",
      masterSecret: new Uint8Array(32).fill(7),
      policyPublicKey: s.authority.publicKey,
      taxonomy: s.taxonomy,
      clock: s.clock,
    });
    expect(code(() => other.open(sealed, s.grant("safety"), bo))).toBe("KEY_RELEASE_DENIED/CRYPTO_DECRYPT_FAILED");
  });

  it("detects a tampered ciphertext or a wrap moved between datasets", () => {
    const s = setup();
    const a = s.keys.seal("a", TABLE, makeLabel(s.taxonomy, { purposes: "safety" }), s.rng);
    const b = s.keys.seal("b", TABLE, makeLabel(s.taxonomy, { purposes: "safety" }), s.rng);
    const ct = fromB64(a.ciphertext);
    ct[0]! ^= 1;
    expect(code(() => s.keys.open({ ...a, ciphertext: b64(ct) }, s.grant("safety"), bo))).toBe("KEY_RELEASE_DENIED/CRYPTO_DECRYPT_FAILED");
    expect(code(() => s.keys.open({ ...a, wraps: b.wraps }, s.grant("safety"), bo))).toBe("KEY_RELEASE_DENIED/CRYPTO_DECRYPT_FAILED");
  });

  it("deny rules configured on the key service refuse key release even when tags allow", () => {
    const r = room("gate-deny", [
      {
        name: "no-ads-on-email",
        dataUses: { matches: "ANY", values: ["ads"] },
        dataCategories: { matches: "ANY", values: ["user.contact.email"] },
      },
    ]);
    const keys = PurposeKeyService.generate(
      { roomId: "room-1", policyPublicKey: r.authority.publicKey, taxonomy: r.taxonomy, rules: () => r.ctx().rules!, clock: r.clock },
      r.rng,
    );
    const sealed = keys.seal("d", TABLE, makeLabel(r.taxonomy, { purposes: "ads", categories: "user.contact.email" }), r.rng);
    expect(code(() => keys.open(sealed, r.grant("ads"), bo))).toBe("KEY_RELEASE_DENIED/PURPOSE_DENIED");
  });

  it("persists sealed datasets in the room db and refuses duplicate ids", () => {
    const s = setup();
    const db = new Database(":memory:");
    const store = new GatedTableStore(s.keys, s.taxonomy, s.rng, db);
    store.put("d", TABLE, { purposes: "safety" });
    const reopened = new GatedTableStore(s.keys, s.taxonomy, s.rng, db);
    expect(reopened.list()).toEqual(["d"]);
    expect(reopened.get("d", s.grant("safety"), { requester: bo })).toEqual(TABLE);
    expect(code(() => reopened.put("d", TABLE, "safety"))).toBe("ALREADY_EXISTS");
    expect(code(() => reopened.get("nope", s.grant("safety"), { requester: bo }))).toBe("NOT_FOUND");
  });
});
