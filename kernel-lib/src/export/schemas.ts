/**
 * zod schemas of what each target's API accepts, written from the public API references
 * (no SDK is used). Every export is validated against them before it is returned; a failure is
 * a bug of the exporter (`INTERNAL`), never a half-valid artefact.
 *
 * Confidence, field by field:
 *  - AWS Clean Rooms (API reference: CreateAnalysisTemplate, CreateConfiguredTableAnalysisRule,
 *    AnalysisRuleAggregation, AnalysisRuleCustom, DifferentialPrivacyConfiguration,
 *    CreatePrivacyBudgetTemplate): HIGH for field names, enums (format SQL; analysisRuleType
 *    AGGREGATION | LIST | CUSTOM; aggregate functions SUM | SUM_DISTINCT | COUNT | COUNT_DISTINCT |
 *    AVG; joinRequired QUERY_RUNNER; join operators AND | OR; additionalAnalyses; autoRefresh
 *    CALENDAR_MONTH | NONE), the COUNT_DISTINCT minimum 2–100 000 and the DP budget ranges (ε integer
 *    1–20, usersNoisePerQuery 10–100); MEDIUM for the name pattern of analysis templates, the
 *    parameter type list (a subset is allowed here: INTEGER, VARCHAR) and the ARN pattern of
 *    allowedAnalyses; the scalar function enum is the documented list.
 *  - BigQuery (privacy_policy JSON of analysis rules, query parameters): HIGH for
 *    aggregation_threshold_policy {threshold, privacy_unit_column}, differential_privacy_policy
 *    {privacy_unit_column, max_epsilon_per_query, epsilon_budget, delta_per_query, delta_budget,
 *    max_groups_contributed}, join_restriction_policy {join_condition JOIN_ALL | JOIN_ANY |
 *    JOIN_BLOCKED | JOIN_NOT_REQUIRED, join_allowed_columns} and QueryParameter {name,
 *    parameterType {type, arrayType}}; MEDIUM for the numeric ranges (ε > 0, 0 ≤ δ < 1).
 *  - Snowflake Data Clean Rooms (developer API `provider.add_custom_sql_template`,
 *    `set_join_policy`, `set_column_policy`; JinjaSQL templates): MEDIUM — the policy strings'
 *    `table:column` / `template:table:column` forms and the `identifier({{ source_table[0] }})`
 *    idiom are from the developer guide's examples; the threshold is not an API field at all but
 *    part of the template SQL.
 */
import { z } from "zod";
import { AWS_MAX_THRESHOLD, AWS_MIN_THRESHOLD } from "../cleanroom/rules.js";

const AwsColumn = z.string().regex(/^[a-z0-9_](([a-z0-9_ ]+-)*([a-z0-9_ ]+))?$/i, "an AWS column name");

export const AWS_SCALAR_FUNCTIONS = [
  "ABS",
  "CAST",
  "CEILING",
  "COALESCE",
  "CONVERT",
  "CURRENT_DATE",
  "DATEADD",
  "EXTRACT",
  "FLOOR",
  "GETDATE",
  "LN",
  "LOG",
  "LOWER",
  "ROUND",
  "RTRIM",
  "SQRT",
  "SUBSTRING",
  "TO_CHAR",
  "TO_DATE",
  "TO_NUMBER",
  "TO_TIMESTAMP",
  "TRIM",
  "TRUNC",
  "UPPER",
] as const;

/** AWS `AnalysisRuleAggregation` (API shape: no `type` field, `joinRequired` only "QUERY_RUNNER"). */
export const AwsAggregationRule = z.strictObject({
  aggregateColumns: z
    .array(
      z.strictObject({
        columnNames: z.array(AwsColumn).min(1),
        function: z.enum(["SUM", "SUM_DISTINCT", "COUNT", "COUNT_DISTINCT", "AVG"]),
      }),
    )
    .min(1),
  joinColumns: z.array(AwsColumn),
  joinRequired: z.literal("QUERY_RUNNER").optional(),
  allowedJoinOperators: z
    .array(z.enum(["AND", "OR"]))
    .max(2)
    .optional(),
  dimensionColumns: z.array(AwsColumn),
  scalarFunctions: z.array(z.enum(AWS_SCALAR_FUNCTIONS)),
  outputConstraints: z
    .array(
      z.strictObject({
        columnName: AwsColumn,
        minimum: z.number().int().min(AWS_MIN_THRESHOLD).max(AWS_MAX_THRESHOLD),
        type: z.literal("COUNT_DISTINCT"),
      }),
    )
    .min(1),
  additionalAnalyses: z.enum(["ALLOWED", "REQUIRED", "NOT_ALLOWED"]).optional(),
});
export type AwsAggregationRule = z.infer<typeof AwsAggregationRule>;

const AwsArn = z
  .string()
  .regex(/^arn:aws[\w-]*:cleanrooms:[\w-]+:\d{12}:membership\/[\d\w-]+\/analysistemplate\/[\d\w-]+$/, "an analysis template ARN");

/** AWS `AnalysisRuleCustom`. */
export const AwsCustomRule = z.strictObject({
  allowedAnalyses: z.array(z.union([AwsArn, z.literal("ANY_QUERY")])).min(1),
  allowedAnalysisProviders: z.array(z.string().regex(/^\d{12}$/)).optional(),
  additionalAnalyses: z.enum(["ALLOWED", "REQUIRED", "NOT_ALLOWED"]).optional(),
  disallowedOutputColumns: z.array(AwsColumn).optional(),
  differentialPrivacy: z.strictObject({ columns: z.array(z.strictObject({ name: AwsColumn })).length(1) }).optional(),
});

/** AWS `CreateConfiguredTableAnalysisRule` request body (path parameter carried as `configuredTableIdentifier`). */
export const AwsConfiguredTableAnalysisRule = z.discriminatedUnion("analysisRuleType", [
  z.strictObject({
    configuredTableIdentifier: z.string().min(1).max(128),
    analysisRuleType: z.literal("CUSTOM"),
    analysisRulePolicy: z.strictObject({ v1: z.strictObject({ custom: AwsCustomRule }) }),
  }),
  z.strictObject({
    configuredTableIdentifier: z.string().min(1).max(128),
    analysisRuleType: z.literal("AGGREGATION"),
    analysisRulePolicy: z.strictObject({ v1: z.strictObject({ aggregation: AwsAggregationRule }) }),
  }),
]);
export type AwsConfiguredTableAnalysisRule = z.infer<typeof AwsConfiguredTableAnalysisRule>;

/** AWS `CreateAnalysisTemplate` request body (membershipIdentifier is a path parameter, filled in by the user). */
export const AwsAnalysisTemplate = z.strictObject({
  name: z
    .string()
    .max(128)
    .regex(/^[a-zA-Z0-9_](([a-zA-Z0-9_ ]+-)*([a-zA-Z0-9_ ]+))?$/, "an AWS analysis template name"),
  description: z.string().max(255).optional(),
  format: z.literal("SQL"),
  source: z.strictObject({ text: z.string().min(1).max(90_000) }),
  analysisParameters: z
    .array(
      z.strictObject({
        name: z
          .string()
          .min(1)
          .max(100)
          .regex(/^[0-9a-zA-Z_]+$/),
        type: z.enum(["INTEGER", "VARCHAR"]),
        defaultValue: z.string().max(250).optional(),
      }),
    )
    .max(50)
    .optional(),
});
export type AwsAnalysisTemplate = z.infer<typeof AwsAnalysisTemplate>;

/** AWS `CreatePrivacyBudgetTemplate` request body. */
export const AwsPrivacyBudgetTemplate = z.strictObject({
  autoRefresh: z.enum(["CALENDAR_MONTH", "NONE"]),
  privacyBudgetType: z.literal("DIFFERENTIAL_PRIVACY"),
  parameters: z.strictObject({
    differentialPrivacy: z.strictObject({
      epsilon: z.number().int().min(1).max(20),
      usersNoisePerQuery: z.number().int().min(10).max(100),
    }),
  }),
});
export type AwsPrivacyBudgetTemplate = z.infer<typeof AwsPrivacyBudgetTemplate>;

export const AwsExport = z.strictObject({
  analysisTemplate: AwsAnalysisTemplate,
  configuredTableAnalysisRules: z.array(AwsConfiguredTableAnalysisRule).min(1),
  privacyBudgetTemplate: AwsPrivacyBudgetTemplate.optional(),
});
export type AwsExport = z.infer<typeof AwsExport>;

// ---------------------------------------------------------------- BigQuery

const BqColumn = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,299}$/);
export const BigQueryPrivacyPolicy = z.union([
  z.strictObject({
    aggregation_threshold_policy: z.strictObject({ threshold: z.number().int().min(1), privacy_unit_column: BqColumn }),
    join_restriction_policy: z
      .strictObject({
        join_condition: z.enum(["JOIN_ALL", "JOIN_ANY", "JOIN_BLOCKED", "JOIN_NOT_REQUIRED"]),
        join_allowed_columns: z.array(BqColumn),
      })
      .optional(),
  }),
  z.strictObject({
    differential_privacy_policy: z.strictObject({
      privacy_unit_column: BqColumn,
      max_epsilon_per_query: z.number().positive(),
      epsilon_budget: z.number().positive(),
      delta_per_query: z.number().min(0).lt(1),
      delta_budget: z.number().min(0).lt(1),
      max_groups_contributed: z.number().int().min(1),
    }),
    join_restriction_policy: z
      .strictObject({
        join_condition: z.enum(["JOIN_ALL", "JOIN_ANY", "JOIN_BLOCKED", "JOIN_NOT_REQUIRED"]),
        join_allowed_columns: z.array(BqColumn),
      })
      .optional(),
  }),
]);
export type BigQueryPrivacyPolicy = z.infer<typeof BigQueryPrivacyPolicy>;

export const BigQueryExport = z.strictObject({
  views: z
    .array(
      z.strictObject({
        view: z.string().regex(/^clean_room\.[A-Za-z_][A-Za-z0-9_]*$/),
        privacyPolicy: BigQueryPrivacyPolicy,
        ddl: z.string().startsWith("CREATE OR REPLACE VIEW"),
      }),
    )
    .min(1),
  query: z.string().min(1),
  queryParameters: z.array(
    z.strictObject({
      name: z.string().regex(/^[A-Za-z_][A-Za-z0-9_]{0,127}$/),
      parameterType: z.union([
        z.strictObject({ type: z.enum(["INT64", "STRING"]) }),
        z.strictObject({ type: z.literal("ARRAY"), arrayType: z.strictObject({ type: z.literal("STRING") }) }),
      ]),
    }),
  ),
});
export type BigQueryExport = z.infer<typeof BigQueryExport>;

// ---------------------------------------------------------------- Snowflake

const SfTable = z.string().regex(/^[A-Z_][A-Z0-9_$]*\.[A-Z_][A-Z0-9_$]*\.[A-Z_][A-Z0-9_$]*$/, "DB.SCHEMA.TABLE");
export const SnowflakeExport = z.strictObject({
  templateName: z.string().regex(/^[a-z_][a-z0-9_]{0,254}$/, "a lower-case template name"),
  templateSql: z.string().min(1),
  joinPolicy: z.array(z.string().regex(/^[A-Z_][A-Z0-9_$.]*:[A-Za-z_][A-Za-z0-9_]*$/, "DB.SCHEMA.TABLE:COLUMN")),
  columnPolicy: z.array(
    z.string().regex(/^[a-z_][a-z0-9_]*:[A-Z_][A-Z0-9_$.]*:[A-Za-z_][A-Za-z0-9_]*$/, "template:DB.SCHEMA.TABLE:COLUMN"),
  ),
  /** The minimum distinct privacy units per row, enforced by the template SQL's final WHERE. */
  threshold: z.number().int().min(AWS_MIN_THRESHOLD).max(AWS_MAX_THRESHOLD),
  tables: z.strictObject({ source_table: z.array(SfTable).min(1), my_table: z.array(SfTable) }),
  calls: z.array(z.string().startsWith("CALL samooha_by_snowflake_local_db.provider.")).min(3),
  /** Noised templates: the Snowflake privacy policy (differential privacy) to attach, as SQL. */
  privacyPolicy: z.string().startsWith("CREATE PRIVACY POLICY").optional(),
});
export type SnowflakeExport = z.infer<typeof SnowflakeExport>;
