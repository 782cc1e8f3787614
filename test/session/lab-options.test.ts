/**
 * Lab options and the keys sidecar: configurations that used to weaken the room silently.
 */
import * as fs from "node:fs";
import * as os from "node:os";
import * as path from "node:path";
import { describe, expect, it } from "vitest";
import { openLab } from "../../kernel-lib/src/session.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const code = (f: () => unknown): string | null => {
  try {
    f();
    return null;
  } catch (e) {
    return isCleanRoomError(e) ? e.code : `non-library: ${(e as Error).message}`;
  }
};

describe("budget options", () => {
  it("refuses { epsilon, rho } together (it used to build ρ = ε: 100× the ρ asked for) and delta without epsilon", () => {
    expect(code(() => openLab({ store: ":memory:", budget: { epsilon: 1, rho: "0.01" } }))).toBe("DP_PARAM_INVALID");
    expect(code(() => openLab({ store: ":memory:", budget: { rho: "0.01", delta: "1e-6" } }))).toBe("DP_PARAM_INVALID");
    expect(code(() => openLab({ store: ":memory:", budget: { delta: "1e-6" } }))).toBe("DP_PARAM_INVALID");
  });

  it("a ρ budget is the ρ given, an (ε, δ) budget the ε and δ given", () => {
    const z = openLab({ store: ":memory:", budget: { rho: "0.01" } });
    expect(z.budget().budgets.map((b) => b.total.text)).toEqual(["ρ = 0.01"]);
    const a = openLab({ store: ":memory:", budget: { epsilon: 1, delta: "1e-6" } });
    expect(a.budget().budgets.map((b) => b.total.text)).toEqual(["ε = 1, δ = 0.000001"]);
  });
});

describe("keys sidecar (<store>.keys)", () => {
  const fresh = () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-keys-"));
    return { dir, store: path.join(dir, "room.db") };
  };

  it("is created 0600 and re-read by the next open", () => {
    const { store } = fresh();
    openLab({ store }).close();
    expect(fs.statSync(`${store}.keys`).mode & 0o777).toBe(0o600);
    expect(code(() => openLab({ store }).close())).toBeNull();
  });

  it.skipIf(process.platform === "win32")("refuses a keys file readable by group/others (e.g. planted or copied with 0644)", () => {
    const { store } = fresh();
    openLab({ store }).close();
    fs.chmodSync(`${store}.keys`, 0o644);
    expect(code(() => openLab({ store }))).toBe("ACCESS_DENIED");
  });

  it.skipIf(process.platform === "win32")("refuses a symlinked keys file (a planted link to secrets somebody else knows)", () => {
    const { dir, store } = fresh();
    const planted = path.join(dir, "planted.json");
    const hex = "ab".repeat(32);
    fs.writeFileSync(planted, JSON.stringify({ policySecretKey: hex, gateMasterSecret: hex, auditSigningKey: hex, enclaveRootKey: hex }), {
      mode: 0o600,
    });
    fs.symlinkSync(planted, `${store}.keys`);
    expect(code(() => openLab({ store }))).toBe("ACCESS_DENIED");
    // a dangling link is refused too (it is not silently replaced or followed on create)
    const { dir: d2, store: s2 } = fresh();
    fs.symlinkSync(path.join(d2, "nowhere.json"), `${s2}.keys`);
    expect(code(() => openLab({ store: s2 }))).toBe("ACCESS_DENIED");
    expect(fs.existsSync(path.join(d2, "nowhere.json"))).toBe(false);
  });

  it("refuses a malformed keys file instead of opening with undefined keys", () => {
    const { store } = fresh();
    fs.writeFileSync(`${store}.keys`, JSON.stringify({ policySecretKey: "zz" }), { mode: 0o600 });
    expect(code(() => openLab({ store }))).toBe("INPUT_INVALID");
  });
});

describe("teaching-mode keys do not carry over into a secure lab", () => {
  it("a store whose keys a seeded lab made is refused by a secure lab (STATE_INVALID), re-opened by a seeded one", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "crl-seeded-"));
    const store = path.join(dir, "room.db");
    openLab({ store, rng: { seed: "course" } }).close();
    // before: accepted, and every result stamped rngMode "secure" while the key-gate and
    // audit-signing secrets were derivable from the seed "course"
    expect(code(() => openLab({ store }))).toBe("STATE_INVALID");
    expect(code(() => openLab({ store, rng: { seed: "course" } }).close())).toBeNull();
    // the other way round is fine: secure keys under a seeded lab
    const s2 = path.join(dir, "room2.db");
    openLab({ store: s2 }).close();
    expect(code(() => openLab({ store: s2, rng: { seed: "x" } }).close())).toBeNull();
  });
});
