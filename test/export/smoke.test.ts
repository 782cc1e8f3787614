import { afterAll, it, expect } from "vitest";
import { makeRoom } from "../cleanroom/fixtures.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import { parseTemplate } from "../../kernel-lib/src/cleanroom/template.js";
import { checkTemplate } from "../../kernel-lib/src/cleanroom/plan.js";
import { exportSql, TARGETS } from "../../kernel-lib/src/export/sql.js";
import { ExportRunner, proveEquivalent } from "../../kernel-lib/src/export/prove.js";

const runner = new ExportRunner();
afterAll(() => runner.close());
it("smoke", async () => {
  const room = makeRoom({ users: 800 });
  for (const opts of [{}, { breakdown: "region" as const }, { epsilonPerAggregate: "0.5" }]) {
    const t = parseTemplate(liftTemplate({ advertiser: "adv", retailer: "shop", threshold: 20, ...opts }));
    const checked = checkTemplate(t, room.ctx);
    const tables = {
      "adv/exposures": room.ctx.dataset("adv", "exposures").table,
      "shop/purchases": room.ctx.dataset("shop", "purchases").table,
    };
    for (const target of TARGETS) {
      const e = exportSql(t, target, { unit: "join_key", minimum: checked.minimum });
      if (opts.breakdown) console.log(e.sql);
      const eq = await proveEquivalent(runner, e, t, { startDay: 0, endDay: 27 }, room.ctx, checked, tables);
      expect(eq.difference).toBeNull();
      expect(eq.lab.rows.length).toBeGreaterThan(0);
    }
  }
});
