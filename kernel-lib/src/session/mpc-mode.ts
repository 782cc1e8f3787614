/**
 * "No one sees the rows": the lift template run as a secret-shared computation (mpc/) down the
 * SAME road as the clean room — purpose gate, approval by every owner, rules, plan, cost, the
 * one atomic ledger charge (`Room.charge`), audit — with a third executor beside the engine
 * and the enclave. The room holds the owners' catalog entries (schema, rule, purposes: an
 * owner may upload zero rows, since only the metadata is planned on); the gate releases no
 * table; the rows stay with their owners, who compute in shares (mpc/shared-lift.ts).
 *
 * This is the notebook's in-process quick path: each party is its own object with its own
 * rows, linked only by transports (JSON round-trip); scripts/mpc-party.mjs runs the same
 * parties as separate OS processes over sockets.
 *
 * Threshold: the fbpcs k (the effective minimum of the approved template) is applied to the
 * NOISY population of each arm, as the clean room decides with noise on; the clean room's
 * second rule (k units with event rows) is not applied here (stated in the result).
 */
import { CleanRoomError, invalid } from "../errors.js";
import { ratToDecimal, ratToString } from "../dp/rational.js";
import { hex } from "../crypto/primitives.js";
import { costText } from "../dp/accountant.js";
import { rngStamp } from "../rng.js";
import type { QueryResult } from "../cleanroom/release.js";
import type { Template } from "../cleanroom/template.js";
import { advertiserInput, fbpcsName, liftSpec, retailerInput, type AdvertiserRow, type RetailerRow } from "../mpc/shared-lift.js";
import { runSharedLift, type SharedLiftRun } from "../mpc/run.js";
import { runQuery, type QueryExecutor } from "./road.js";
import { internals, type Lab } from "./lab.js";
import type { CleanRoomResult, UploadOptions } from "./types.js";

/**
 * Catalog a dataset for a secret-shared run WITHOUT its rows: the owner's schema, analysis rule
 * and purposes go through the one upload road (validated, labelled, budgeted, audited) with zero
 * rows, so owners can approve templates over it and the planner can cost them; the rows stay
 * with the owner. Returns the catalog entry (no values).
 *
 * @example
 * registerForMpc(lab, { party: "retailer", name: "purchases", schema: s.purchases, purposes: ["measurement"], rule: r.purchases })
 */
export function registerForMpc(lab: Lab, input: { party: string; name: string } & UploadOptions) {
  if (!input || typeof input !== "object") invalid("input", "{ party, name, schema, purposes, rule }", input);
  const { party, name, ...opts } = input;
  const { room } = internals(lab);
  const meta = room.upload(party, name, [], opts, room.plainSealing());
  return {
    owner: meta.owner,
    name: meta.name,
    rows: meta.rows,
    columns: Object.keys(meta.schema.columns),
    purposes: meta.purposes,
    rule: meta.rule !== null,
  };
}

export interface SecretSharedLiftInput {
  /** The approved lift template (or its hash) and its parameters. */
  template: unknown;
  params: { startDay: number; endDay: number };
  /** Who asks (receives the opened aggregates): the advertiser or the retailer. */
  party: string;
  analyst: string;
  purpose: string;
  /** Each owner's own PSI-matched rows (kept by that party object; the room never holds them). */
  advertiserRows: readonly AdvertiserRow[];
  retailerRows: readonly RetailerRow[];
}

export interface MpcExtra {
  mpc: {
    protocol: SharedLiftRun["protocol"];
    matched: number;
    ms: number;
    bytes: { total: number; advertiserSent: number; retailerSent: number; dealerSent: number; messages: number };
    /** Each process's view: what it holds and what it learns. */
    learns: Record<"advertiser" | "retailer" | "dealer" | "room", string>;
    trust: string;
    notes: string[];
  };
}

/**
 * Run the lift template as a secret-shared two-party computation, charged to this room's
 * ledger exactly as the clean room's run of the same template would be.
 *
 * @example
 * const r = await secretSharedLift(lab, { template: liftT, params, party: "advertiser", analyst: "bo",
 *   purpose: "measurement", advertiserRows: advRows, retailerRows: retRows });
 * toLiftAggregates(r)[0].testConverters // noisy, opened to the advertiser only
 */
export async function secretSharedLift(lab: Lab, input: SecretSharedLiftInput): Promise<CleanRoomResult & MpcExtra> {
  if (!input || typeof input !== "object")
    invalid("input", "{ template, params, party, analyst, purpose, advertiserRows, retailerRows }", input);
  const { room } = internals(lab);
  let owners: { base: string; events: string } | null = null;
  let run: SharedLiftRun | null = null;
  const executor: QueryExecutor<null, MpcExtra> = {
    name: "secret-shared",
    admit: (t: Template) => {
      if (!t.events) invalid("template.events", "a lift template (events joined to the base table)", undefined, "TEMPLATE_INVALID");
      owners = { base: t.base.owner, events: t.events.owner };
      if (input.party !== owners.base && input.party !== owners.events)
        invalid("party", `one of the two computing parties (${owners.base}, ${owners.events})`, input.party, "ACCESS_DENIED");
    },
    purposeNote: (p) => `granted for ${p}; the gate released no table: the rows stay with their owners`,
    planContext: () => room.planContext(),
    checkPlan: (prep, t) => {
      if (t.differenceCheck)
        throw new CleanRoomError("STATE_INVALID", `"template.differenceCheck" is not supported in the secret-shared lift`, {
          field: "template.differenceCheck",
        });
      liftSpec(prep.template, prep.params);
    },
    planNote: "from catalog metadata; computed by the owners in shares",
    acquire: (q) => {
      // each party validates its own rows BEFORE the charge; only hashes of the key sets are compared
      const spec = liftSpec(q.prep.template, q.prep.params);
      const a = advertiserInput(input.advertiserRows);
      const r = retailerInput(input.retailerRows, spec);
      if (a.hash !== r.hash)
        invalid("retailerRows.join_key", "the same PSI-matched join keys as advertiserRows", "a different set", "INPUT_INVALID");
      return null;
    },
    chargeNote: () => " (the ledger keeper sees no row: the owners compute in shares)",
    execute: async (q) => {
      const o = owners!;
      run = await runSharedLift({
        advertiserRows: input.advertiserRows,
        retailerRows: input.retailerRows,
        template: q.prep.template,
        params: q.prep.params,
        // a fresh label per run: in seeded mode two runs of one template must not share their noise
        rng: room.rng.fork(`mpc:${q.templateHash}:${hex(room.rng.bytes(8))}`),
        outputTo: input.party === o.base ? "advertiser" : "retailer",
      });
      return { result: toQueryResult(q.prep, run, room.rng), where: "secret-shared between the owners (2PC + dealer)", extra: extra(run) };
    },
  };
  return runQuery(
    room,
    { template: input.template, params: input.params, as: { party: input.party, analyst: input.analyst }, purpose: input.purpose },
    executor,
  );
}

function extra(run: SharedLiftRun): MpcExtra {
  const p = run.parties;
  return {
    mpc: {
      protocol: run.protocol,
      matched: run.matched,
      ms: run.ms,
      bytes: {
        total: run.wire.bytes,
        advertiserSent: p.advertiser.bytesSent,
        retailerSent: p.retailer.bytesSent,
        dealerSent: p.dealer.bytesSent,
        messages: run.wire.messages.length,
      },
      learns: {
        advertiser: "its own rows; n (matched, from PSI); uniform shares; the opened noisy aggregates if it asked",
        retailer: "its own rows; n (matched, from PSI); uniform shares; the opened noisy aggregates if it asked",
        dealer: "n only (it makes random Beaver triples)",
        room: "schemas, rules, purposes, the template and its cost — no row, no share",
      },
      trust: "semi-honest owners; a dealer that colludes with neither (with one, it reveals the other's inputs)",
      notes: [
        "each party adds its own full noise sample: the release is ε-DP against either party; noise variance is twice the clean room's",
        "threshold on the noisy population only (the clean room's 'k units with event rows' rule is not applied)",
        "a malicious party can shift its shares (wrong output, undetected: no MACs) or skip its noise (removing only its own protection)",
      ],
    },
  };
}

function toQueryResult(
  prep: Parameters<QueryExecutor<null, MpcExtra>["execute"]>[0]["prep"],
  run: SharedLiftRun,
  rng: Lab["rng"],
): QueryResult {
  const t = prep.template;
  const minimum = prep.checked.minimum;
  const rows: Record<string, string | number | null>[] = [];
  const suppressed: QueryResult["suppressed"]["rows"] = [];
  const rule = `at least ${minimum} distinct privacy units per row (noisy population)`;
  for (const arm of ["test", "control"] as const) {
    if (run.aggregates[fbpcsName(arm, "population")]! < minimum) {
      suppressed.push({ key: { group: arm }, reason: "below_threshold", rule });
      continue;
    }
    const row: Record<string, string | number | null> = { group: arm };
    for (const a of t.aggregates) row[a.name] = run.aggregates[fbpcsName(arm, a.name)]!;
    rows.push(row);
  }
  const np = liftSpec(t, prep.params).noise;
  return {
    kind: "query",
    templateName: t.name,
    templateHash: prep.templateHash,
    engine: "secret-shared (2PC)",
    dimensions: ["group"],
    aggregates: t.aggregates.map((a) => a.name),
    rows,
    suppressed: {
      style: t.threshold.style,
      minimum,
      minimumFrom: prep.checked.minimumFrom,
      decidedOn: np ? "noisy" : "exact",
      rows: suppressed,
      remainder: null,
    },
    noise: np
      ? {
          mechanism: [...np.values()][0]!.mechanism.displayName + " (one sample from each computing party)",
          perAggregate: [...np.values()].map((p) => ({
            name: p.name,
            scale: ratToDecimal(p.scale, 6),
            scaleExact: ratToString(p.scale),
            l1Sensitivity: p.l1.toString(),
            variance: 2 * p.mechanism.variance(p.scale),
            fn: p.name === "units" ? "countUnits" : (t.aggregates.find((a) => a.name === p.name)?.fn ?? "count"),
          })),
        }
      : null,
    cost: prep.cost ? { kind: prep.cost.kind, text: costText(prep.cost) } : null,
    differenceCheck: null,
    rngStamp: rngStamp(rng),
  };
}
