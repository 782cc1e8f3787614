import { describe, expect, it } from "vitest";
import * as aq from "arquero";
import { DatasetCatalog, loadDataset, fingerprintTable, parseDatasetSchema } from "../../kernel-lib/src/cleanroom/dataset.js";
import { serializeTable, deserializeTable } from "../../kernel-lib/src/cleanroom/serialize.js";
import { isCleanRoomError } from "../../kernel-lib/src/errors.js";

const schema = {
  privacyUnit: "join_key",
  columns: {
    join_key: { type: "string" },
    email: { type: "string", identifier: true },
    region: { type: "enum", values: ["north", "south"] },
    value_cents: { type: "int", min: 0, max: 100000 },
  },
};
const csv = "join_key,email,region,value_cents\nk1,a@x.org,north,100\nk2,b@x.org,south,250\n";

function catchErr(f: () => unknown) {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("expected a refusal");
}

describe("datasets", () => {
  it("loads CSV text into typed columns and describes it without values", () => {
    const cat = new DatasetCatalog();
    const d = cat.upload("purchases", "shop", csv, schema);
    expect(d.rows).toBe(2);
    expect(d.columns.find((c) => c.name === "email")!.identifier).toBe(true);
    expect(d.columns.find((c) => c.name === "join_key")!.identifier).toBe(true);
    expect(JSON.stringify(d)).not.toContain("a@x.org");
    expect(Array.from(cat.get("shop", "purchases").table.array("value_cents") as ArrayLike<number>)).toEqual([100, 250]);
  });

  it("refuses a malformed row naming column and row number but not the value, and stores nothing", () => {
    const cat = new DatasetCatalog();
    cat.upload("other", "shop", csv, schema);
    const before = cat.snapshot();
    const bad = "join_key,email,region,value_cents\nk1,a@x.org,north,100\nk2,secret@x.org,south,-7\n";
    const e = catchErr(() => cat.upload("purchases", "shop", bad, schema));
    expect(isCleanRoomError(e, "DATASET_INVALID")).toBe(true);
    expect((e as Error).message).toMatch(/column "value_cents" row 2/);
    expect((e as Error).message).not.toContain("-7");
    expect(cat.snapshot()).toEqual(before);
    const e2 = catchErr(() => cat.upload("purchases", "shop", "join_key,email,region,value_cents\nk1,secret@x.org,west,1\n", schema));
    expect((e2 as Error).message).toMatch(/column "region" row 1/);
    expect((e2 as Error).message).not.toContain("west");
    expect(cat.snapshot()).toEqual(before);
  });

  it("refuses undeclared columns, missing columns and non-integer ints", () => {
    expect(() =>
      loadDataset("p", "shop", aq.table({ join_key: ["a"], email: ["e"], region: ["north"], value_cents: [1], extra: [1] }), schema),
    ).toThrow(/DATASET_INVALID/);
    expect(() => loadDataset("p", "shop", aq.table({ join_key: ["a"], region: ["north"], value_cents: [1] }), schema)).toThrow(
      /"data.email"/,
    );
    expect(() =>
      loadDataset("p", "shop", aq.table({ join_key: ["a"], email: ["e"], region: ["north"], value_cents: [1.5] }), schema),
    ).toThrow(/row 1: expected safe integer/);
  });

  it("refuses a schema whose privacy unit is not a declared column", () => {
    const e = catchErr(() => parseDatasetSchema({ privacyUnit: "user", columns: { join_key: { type: "string" } } }));
    expect(isCleanRoomError(e, "SCHEMA_INVALID")).toBe(true);
    expect(() => parseDatasetSchema({ privacyUnit: "join_key", columns: { join_key: { type: "string", idColumn: true } } })).toThrow(
      /SCHEMA_INVALID/,
    );
  });

  it("accepts Arrow IPC bytes and round-trips tables deterministically", () => {
    const ds = loadDataset("p", "shop", csv, schema);
    const bytes = serializeTable(ds.table);
    expect(serializeTable(ds.table)).toEqual(bytes);
    const back = deserializeTable(bytes);
    expect(back.objects()).toEqual(ds.table.objects());
    const again = loadDataset("p2", "shop", bytes, schema);
    expect(again.fingerprint).toBe(ds.fingerprint);
    expect(() => deserializeTable(new Uint8Array([1, 2, 3]))).toThrow(/DATASET_INVALID/);
  });

  it("fingerprints content independently of row order and dataset name", () => {
    const a = loadDataset("one", "shop", csv, schema);
    const b = loadDataset("two", "shop", "join_key,email,region,value_cents\nk2,b@x.org,south,250\nk1,a@x.org,north,100\n", schema);
    const c = loadDataset("three", "shop", "join_key,email,region,value_cents\nk2,b@x.org,south,251\nk1,a@x.org,north,100\n", schema);
    expect(b.fingerprint).toBe(a.fingerprint);
    expect(c.fingerprint).not.toBe(a.fingerprint);
    expect(fingerprintTable(a.table, a.schema)).toBe(a.fingerprint);
  });

  it("lets a party list and describe only its own datasets", () => {
    const cat = new DatasetCatalog();
    cat.upload("purchases", "shop", csv, schema);
    cat.upload("exposures", "adv", csv, schema);
    expect(cat.list("shop").map((d) => d.name)).toEqual(["purchases"]);
    expect(cat.list("adv").map((d) => d.name)).toEqual(["exposures"]);
    expect(
      isCleanRoomError(
        catchErr(() => cat.describe("adv", "shop", "purchases")),
        "ACCESS_DENIED",
      ),
    ).toBe(true);
    expect(cat.describe("shop", "shop", "purchases").rows).toBe(2);
    expect(
      isCleanRoomError(
        catchErr(() => cat.upload("purchases", "shop", csv, schema)),
        "ALREADY_EXISTS",
      ),
    ).toBe(true);
  });
});
