/**
 * A template literal kept in a variable WITHOUT a `TemplateInput` annotation type-checks in a
 * cell (issue 19 leftovers): `const t = { … }` widens its literals (`version: number`,
 * `fn: string`, `bounds: number[]`), and every verb that takes a template accepts that
 * (`TemplateLike`); the door checks the values at run time. Field names are still checked by the
 * compiler, and an annotated `TemplateInput` still checks values. Compiled with the TypeScript
 * compiler against the published declarations (kernel-lib/dist), as a notebook cell sees them.
 */
import fs from "node:fs";
import path from "node:path";
import ts from "typescript";
import { afterAll, describe, expect, it } from "vitest";
import { addParty, approveTemplate, isCleanRoomError, openLab, type TemplateLike } from "../../kernel-lib/src/index.js";

const ROOT = path.resolve(__dirname, "../..");
// inside the repository, so "@cleanroom-lab/kernel" resolves to the workspace package (dist/*.d.ts)
fs.mkdirSync(path.join(ROOT, ".scratch"), { recursive: true });
const dir = fs.mkdtempSync(path.join(ROOT, ".scratch", "types-"));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const HEADER = `import { openLab, approveTemplate, cleanRoomQuery, previewQuery, liftStudy, type TemplateInput } from "@cleanroom-lab/kernel";
import { previewTemplate } from "@cleanroom-lab/kernel/labs";
const lab = openLab();
`;
const LITERAL = `{
  version: 1,
  name: "spend by region",
  base: { owner: "retailer", dataset: "purchases" },
  groupBy: ["purchases.store_region"],
  aggregates: [{ name: "spend", fn: "sum", column: "purchases.value_cents", bounds: [0, 100000] }],
  threshold: { minimum: "adh_diffcheck", style: "drop" },
}`;

/** Type errors of one cell-like module (message texts). */
function errorsOf(code: string): string[] {
  const file = path.join(dir, `cell-${Math.random().toString(36).slice(2)}.ts`);
  fs.writeFileSync(file, HEADER + code);
  const program = ts.createProgram([file], {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    strict: true,
    noEmit: true,
    skipLibCheck: true,
  });
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file?.fileName === file)
    .map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
}

describe("template literals in cells", () => {
  it("an unannotated template literal is accepted by every verb that takes a template", () => {
    const errors = errorsOf(`const t = ${LITERAL};
approveTemplate(lab, { template: t, party: "retailer" });
approveTemplate(lab, { template: t, party: "retailer", executor: "enclave" });
previewQuery(lab, { template: t, params: {} });
previewTemplate(t);
void cleanRoomQuery(lab, { template: t, party: "advertiser", analyst: "bo", purpose: "measurement" });
void liftStudy(lab, { template: t, party: "advertiser", analyst: "bo", purpose: "measurement" });
const annotated: TemplateInput = ${LITERAL};
approveTemplate(lab, { template: annotated, party: "retailer" });
`);
    expect(errors).toEqual([]);
  }, 60_000);

  it("field names are still checked, and an annotated TemplateInput still checks values (positive controls)", () => {
    const misspeltKey = errorsOf(`approveTemplate(lab, { template: { ...${LITERAL}, treshold: 3 }, party: "retailer" });\n`);
    expect(misspeltKey.join("\n")).toMatch(/treshold/);
    const badFn = errorsOf(
      `const t: TemplateInput = { ...${LITERAL}, aggregates: [{ name: "n", fn: "avgg", column: "purchases.value_cents", bounds: [0, 1] }] };\n`,
    );
    expect(badFn.join("\n")).toMatch(/avgg/);
    // the widened literal is NOT a TemplateInput: what accepts it above is TemplateLike
    expect(errorsOf(`const t = ${LITERAL};\nconst x: TemplateInput = t;\nvoid x;\n`).length).toBeGreaterThan(0);
    const wrongType = errorsOf(`const t = { ...${LITERAL}, version: "1" };\napproveTemplate(lab, { template: t, party: "retailer" });\n`);
    expect(wrongType.length).toBeGreaterThan(0);
  }, 60_000);

  it("the door checks the widened values at run time, naming the field", () => {
    const lab = openLab({ store: ":memory:" });
    addParty(lab, { party: "retailer" });
    const t = {
      version: 1,
      name: "n",
      base: { owner: "retailer", dataset: "purchases" },
      groupBy: ["purchases.store_region"],
      aggregates: [{ name: "n", fn: "avgg", column: "purchases.value_cents", bounds: [0, 1] }],
      threshold: { minimum: 50, style: "drop" },
    };
    let err: unknown;
    try {
      approveTemplate(lab, { template: t satisfies TemplateLike, party: "retailer" });
    } catch (e) {
      err = e;
    }
    expect(isCleanRoomError(err)).toBe(true);
    expect(String((err as Error).message)).toMatch(/"template\.aggregates\.0\.fn".*'avg'/);
    lab.close();
  });
});
