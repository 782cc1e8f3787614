import { describe, expect, it } from "vitest";
import { seededRng } from "../../kernel-lib/src/rng.js";
import { complementarySuppression, recoverSuppressed, type PublishedTable } from "../../kernel-lib/src/cleanroom/suppression.js";

/** A random table of counts, a share of them small (1…10), seeded. */
function table(seed: string, nr: number, nc: number): bigint[][] {
  const rng = seededRng(seed);
  return Array.from({ length: nr }, () =>
    Array.from({ length: nc }, () => BigInt(rng.int(10) < 3 ? 1 + rng.int(10) : rng.int(10) < 1 ? 0 : 11 + rng.int(200))),
  );
}
function publish(w: bigint[][], p: ReturnType<typeof complementarySuppression>): PublishedTable {
  const rowM = w.map((r) => r.reduce((a, b) => a + b, 0n));
  const colM = w[0]!.map((_, j) => w.reduce((a, r) => a + r[j]!, 0n));
  return {
    cells: w.map((r, i) => r.map((v, j) => (p.cells[i]![j] ? null : v))),
    rowMargins: rowM.map((v, i) => (p.rowMargins[i] ? null : v)),
    colMargins: colM.map((v, j) => (p.colMargins[j] ? null : v)),
    total: p.total ? null : rowM.reduce((a, b) => a + b, 0n),
  };
}

describe("small-cell suppression with margins", () => {
  it("known answer: the only small cell of a 2×2 table is recovered from its row total; the rectangle protects it", () => {
    const w = [
      [7n, 20n],
      [30n, 40n],
    ];
    const primary = complementarySuppression(w, 11n, { complementary: false });
    expect(recoverSuppressed(publish(w, primary))).toEqual([{ ref: { kind: "cell", row: 0, col: 0 }, value: 7n }]);
    const full = complementarySuppression(w, 11n);
    expect(full.complementary.length).toBe(3);
    expect(recoverSuppressed(publish(w, full))).toEqual([]);
  });

  it("property (60 seeded tables): the attacker's recovered values are always the true ones, and after complementary suppression it recovers none", () => {
    let recoveredWithoutDefence = 0;
    for (let s = 0; s < 60; s++) {
      const w = table(`t${s}`, 3 + (s % 6), 2 + (s % 5));
      const primary = complementarySuppression(w, 11n, { complementary: false });
      const rec = recoverSuppressed(publish(w, primary));
      for (const r of rec) if (r.ref.kind === "cell") expect(r.value).toBe(w[r.ref.row]![r.ref.col]);
      recoveredWithoutDefence += rec.length;
      const full = complementarySuppression(w, 11n);
      // primary cells stay withheld; nothing is recoverable
      w.forEach((row, i) => row.forEach((v, j) => v > 0n && v < 11n && expect(full.cells[i]![j]).toBe(true)));
      expect(recoverSuppressed(publish(w, full))).toEqual([]);
    }
    expect(recoveredWithoutDefence).toBeGreaterThan(30); // positive control: the attack works on primary-only tables
  });

  it("a small row total is withheld too, and protected", () => {
    const w = [
      [3n, 4n, 2n],
      [50n, 60n, 70n],
      [20n, 30n, 40n],
    ];
    const full = complementarySuppression(w, 11n);
    expect(full.rowMargins[0]).toBe(true);
    expect(recoverSuppressed(publish(w, full))).toEqual([]);
  });

  it("refuses a ragged table naming the field", () => {
    expect(() => recoverSuppressed({ cells: [[1n], [1n, 2n]], rowMargins: [1n, 3n], colMargins: [2n], total: 3n })).toThrow(/table\.cells/);
  });
});
