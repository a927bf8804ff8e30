/**
 * The `cli_invocation` telemetry entry as the swamp CLI sends it (docs/spec.md §2, docs/swamp-telemetry.md).
 * Optional fields may be absent (legacy clients); unknown extra fields are allowed and kept.
 *
 * The schema is the one definition: ingest validates every entry with it (ajv) and the TypeScript types below are
 * derived from it (json-schema-to-ts `FromSchema`), so a field added to the schema is a field of the type.
 */
import { Ajv, type ErrorObject } from "ajv";
import type { FromSchema } from "json-schema-to-ts";

const ISO_TIMESTAMP = "^\\d{4}-\\d{2}-\\d{2}T\\d{2}:\\d{2}:\\d{2}(\\.\\d{1,9})?(Z|[+-]\\d{2}:\\d{2})$";
const ID = { type: "string", minLength: 1, maxLength: 200 } as const;
const TEXT = { type: "string", maxLength: 4096 } as const;
const NAME = { type: "string", maxLength: 512 } as const;
const NAMES = { type: "array", maxItems: 256, items: NAME } as const;

export const CliInvocationEventSchema = {
  $id: "cli_invocation",
  type: "object",
  required: ["event", "distinct_id", "properties"],
  properties: {
    event: { const: "cli_invocation" },
    distinct_id: ID,
    insert_id: ID,
    properties: {
      type: "object",
      required: ["id", "invocation", "result", "startedAt", "completedAt", "durationMs"],
      properties: {
        id: ID,
        invocation: {
          type: "object",
          required: ["command"],
          properties: { command: NAME, subcommand: NAME, args: NAMES, optionKeys: NAMES, globalOptions: NAMES },
        },
        result: {
          type: "object",
          required: ["status", "exitCode"],
          properties: {
            status: { enum: ["success", "error", "user_error"] },
            exitCode: { type: "integer", minimum: -2147483648, maximum: 2147483647 },
            errorType: NAME,
            errorMessage: TEXT,
          },
        },
        startedAt: { type: "string", pattern: ISO_TIMESTAMP },
        completedAt: { type: "string", pattern: ISO_TIMESTAMP },
        durationMs: { type: "number", minimum: 0, maximum: 31_536_000_000 },
        swampVersion: NAME,
        denoVersion: NAME,
        platform: NAME,
        invocationContext: { type: "object" },
        parentInvocationId: ID,
        workflowContext: {
          type: "object",
          required: ["workflowName", "runId", "jobName", "stepName"],
          properties: {
            workflowName: NAME,
            runId: NAME,
            jobName: NAME,
            stepName: NAME,
            modelType: NAME,
            // Current clients send `executor` (swamp #1547 renamed it); clients of swamp PR #1349 send `driver`.
            executor: NAME,
            driver: NAME,
          },
        },
        triggerSource: NAME,
        initiatedBy: NAME,
        $repo_id: NAME,
      },
    },
  },
} as const;

/** An entry as the schema accepts it; every object also keeps the unknown fields the client sent. */
export type CliInvocationEvent = FromSchema<typeof CliInvocationEventSchema>;
export type CliInvocationProperties = CliInvocationEvent["properties"];
export type CommandInvocation = CliInvocationProperties["invocation"];
export type InvocationResult = CliInvocationProperties["result"];
export type InvocationStatus = InvocationResult["status"];
export type WorkflowContext = NonNullable<CliInvocationProperties["workflowContext"]>;

const ajv = new Ajv({ allErrors: false, strict: true, allowUnionTypes: false });
const validate = ajv.compile<CliInvocationEvent>(CliInvocationEventSchema);

function describe(error: ErrorObject): string {
  const path = error.instancePath === "" ? "entry" : error.instancePath.slice(1).replaceAll("/", ".");
  if (error.keyword === "required") return `${path}.${String(error.params["missingProperty"])} is required`;
  if (error.keyword === "enum") return `${path} must be one of ${(error.params["allowedValues"] as unknown[]).join(", ")}`;
  if (error.keyword === "const") return `${path} must be ${JSON.stringify(error.params["allowedValue"])}`;
  if (error.keyword === "pattern") return `${path} must be an ISO 8601 timestamp`;
  return `${path} ${error.message ?? "is invalid"}`;
}

export type ValidationResult = { ok: true; event: CliInvocationEvent } | { ok: false; message: string };

/**
 * How far from now an entry's timestamps may be. The CLI keeps unsent entries for 7 days; five years leaves room
 * for any client while bounding an insert to about 60 monthly partitions (ClickHouse refuses more than 100).
 */
export const TIMESTAMP_MAX_AGE_MS = 5 * 366 * 86_400_000;
export const TIMESTAMP_MAX_AHEAD_MS = 86_400_000;
const CANONICAL_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** A problem with an ISO 8601 timestamp the pattern let through: not a real date (2026-02-30), or out of range. */
function timestampProblem(name: string, value: string, nowMs: number): string | undefined {
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || (CANONICAL_UTC.test(value) && new Date(ms).toISOString() !== value)) return `properties.${name} is not a valid date`;
  if (ms < nowMs - TIMESTAMP_MAX_AGE_MS || ms > nowMs + TIMESTAMP_MAX_AHEAD_MS) return `properties.${name} is more than 5 years ago or more than a day ahead`;
  return undefined;
}

export function validateCliInvocation(value: unknown, nowMs: number = Date.now()): ValidationResult {
  if (!validate(value)) {
    const first = validate.errors?.[0];
    return { ok: false, message: first ? describe(first) : "entry is invalid" };
  }
  const problem = timestampProblem("startedAt", value.properties.startedAt, nowMs) ?? timestampProblem("completedAt", value.properties.completedAt, nowMs);
  return problem === undefined ? { ok: true, event: value } : { ok: false, message: problem };
}

/** The idempotency key of an entry: `insert_id`, else `properties.id` (docs/spec.md §2). */
export function entryId(event: CliInvocationEvent): string {
  return event.insert_id ?? event.properties.id;
}

/** The driver of a child entry: `workflowContext.driver` (PR #1349 clients) or `.executor` (current clients). */
export function entryDriver(event: CliInvocationEvent): string {
  const context = event.properties.workflowContext;
  return context?.driver ?? context?.executor ?? "";
}
