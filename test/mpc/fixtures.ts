/** Shared fixture: a generated study matched by real ECDH-PSI (join keys), as both parties hold it. */
import { generateStudy } from "../../kernel-lib/src/datasets/study.js";
import { attachJoinKeys, runPsi } from "../../kernel-lib/src/identity/run-psi.js";
import { liftTemplate } from "../../kernel-lib/src/cleanroom/templates/lift.js";
import type { AdvertiserRow, RetailerRow } from "../../kernel-lib/src/mpc/shared-lift.js";

export async function matchedStudy(seed: string, advertiserRows: number) {
  const study = generateStudy({ seed, advertiserRows, overlap: 0.6, holdoutShare: 0.3, baseConversionRate: 0.1, liftPct: 30 });
  const psi = await runPsi(study.exposures, study.purchases, { rng: { seed: `${seed}/psi` }, threads: 1 });
  const adv = attachJoinKeys(study.exposures, psi.joinKeysA!, { keepUnmatched: false }) as unknown as (AdvertiserRow &
    Record<string, unknown>)[];
  const ret = attachJoinKeys(study.purchases, psi.joinKeysB!, { keepUnmatched: false }) as unknown as (RetailerRow &
    Record<string, unknown>)[];
  return { study, adv, ret };
}

/** The lift template at the oracle's definitions: window [0, 27], 4 conversions, no effective value clamp. */
export const exactTemplate = () => liftTemplate({ advertiser: "advertiser", retailer: "retailer", numConvSquared: true, valueCap: 1e9 });
export const noisyTemplate = (eps = "0.5") =>
  liftTemplate({ advertiser: "advertiser", retailer: "retailer", numConvSquared: true, valueCap: 30000, epsilonPerAggregate: eps });
export const PARAMS = { startDay: 0, endDay: 27 };
