// @vitest-environment happy-dom
import { describe, expect, it, vi } from "vitest";

vi.mock("@cleanroom-lab/kernel/dist/display/schema.js", () => import("../../kernel-lib/src/display/schema.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/format.js", () => import("../../kernel-lib/src/display/format.js"));
vi.mock("@cleanroom-lab/kernel/dist/display/vegalite.js", () => import("../../kernel-lib/src/display/vegalite.js"));
// vega-embed needs a real layout engine; the glue's contract is only that a failing chart
// does not take the view down with it.
vi.mock("vega-embed", () => ({
  default: vi.fn(async () => {
    throw new Error("no layout engine in tests");
  }),
}));

import type { IRenderMime } from "@jupyterlab/rendermime-interfaces";
import { CLEANROOM_MIME } from "../../kernel-lib/src/display/schema.js";
import { EXAMPLE_PAYLOADS } from "../../kernel-lib/src/display/examples.js";
import extension, { CleanRoomRenderer, rendererFactory } from "../../extension/src/mime.js";

const model = (data: unknown) =>
  ({ data: { [CLEANROOM_MIME]: data }, metadata: {}, trusted: false, setData: () => {} }) as unknown as IRenderMime.IMimeModel;

describe("mime renderer glue", () => {
  it("registers a safe factory for the vendor MIME type, preferred over the html fallback", () => {
    expect(rendererFactory.mimeTypes).toEqual([CLEANROOM_MIME]);
    expect(rendererFactory.safe).toBe(true);
    expect(extension.rank).toBe(0);
    expect(extension.dataType).toBe("json");
  });

  it("renders a valid payload and replaces it on re-render", async () => {
    const r = new CleanRoomRenderer();
    await r.renderModel(model(EXAMPLE_PAYLOADS.budget));
    expect(r.node.querySelector('.crl-view[data-kind="budget"]')).not.toBeNull();
    await r.renderModel(model(EXAMPLE_PAYLOADS.error));
    expect(r.node.querySelectorAll(".crl-view")).toHaveLength(1);
    expect(r.node.querySelector('.crl-view[data-kind="error"]')).not.toBeNull();
    r.dispose();
  });

  it("shows an error box for invalid data, never an empty output", async () => {
    for (const bad of [undefined, null, "text", { kind: "lift", version: 1 }, { kind: "nope", version: 1 }]) {
      const r = new CleanRoomRenderer();
      await r.renderModel(model(bad));
      expect(r.node.querySelector(".crl-invalid")).not.toBeNull();
      expect((r.node.textContent ?? "").length).toBeGreaterThan(20);
    }
  });

  it("a chart that cannot be drawn leaves the rest of the view intact", async () => {
    const r = new CleanRoomRenderer();
    await r.renderModel(model(EXAMPLE_PAYLOADS.lift));
    expect(r.node.querySelector('[data-field="lift"]')?.textContent).toBe("15%");
    expect(r.node.querySelector(".crl-chart-error")?.textContent).toMatch(/chart could not be drawn/);
    r.dispose();
  });
});
