/**
 * A cli_invocation entry as a row of flowmeter.cli_invocations (migration 0001 and the ones after it): its columns,
 * its type, and the one mapping from an accepted entry, used by ingest (which serializes each entry's row once, as
 * the JSONCompactEachRow line the worker inserts: rowLine) and by the worker (jobs of older ingests).
 */
import { CliInvocationEventSchema, entryDriver, entryId, type CliInvocationEvent } from "./telemetry.js";
import { REPAIRS_KEY, type EntryRepairs } from "./entry-repairs.js";
import { columnNames, type ColumnTypes, type RowOf } from "./clickhouse-columns.js";

/** ClickHouse DateTime64 text ('2026-05-09 12:00:01.000'), always UTC. */
export function toClickHouseTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace("T", " ").replace("Z", "");
}

const UTC_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** ClickHouse DateTime64 text of an ISO 8601 timestamp; the common `toISOString()` shape is rewritten without a Date. */
export function isoToClickHouseTime(iso: string): string {
  if (UTC_MILLIS.test(iso)) return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  const epochMs = Date.parse(iso);
  return toClickHouseTime(Number.isFinite(epochMs) ? epochMs : 0);
}

/**
 * The table's columns, in its order, with their ClickHouse types (migration 0001 and the ones after it): the one list
 * of them. The row type follows from it, and the worker's registry (packages/worker/src/clickhouse/raw-tables.ts)
 * takes it as the table's columns.
 */
export const CLI_INVOCATION_COLUMN_TYPES = {
  insert_id: "String",
  entry_id: "String",
  distinct_id: "String",
  received_at: "DateTime64(3, 'UTC')",
  started_at: "DateTime64(3, 'UTC')",
  completed_at: "DateTime64(3, 'UTC')",
  duration_ms: "Float64",
  command: "LowCardinality(String)",
  subcommand: "LowCardinality(String)",
  args: "Array(String)",
  option_keys: "Array(String)",
  global_options: "Array(String)",
  status: "LowCardinality(String)",
  exit_code: "Int32",
  error_type: "LowCardinality(String)",
  error_message: "String",
  swamp_version: "LowCardinality(String)",
  deno_version: "LowCardinality(String)",
  platform: "LowCardinality(String)",
  repo_id: "String",
  is_child: "Bool",
  parent_invocation_id: "String",
  workflow_name: "String",
  run_id: "String",
  job_name: "String",
  step_name: "String",
  model_type: "LowCardinality(String)",
  driver: "LowCardinality(String)",
  trigger_source: "LowCardinality(String)",
  initiated_by: "String",
  invocation_context: "String",
  extra: "String",
  /** RepairReasons ingest applied (migration 0015). */
  repairs: "Array(LowCardinality(String))",
  /** The client's own timestamps when ingest replaced them. */
  client_started_at: "String",
  client_completed_at: "String",
  /**
   * The version of the sender that delivered the entry (its User-Agent, migration 0040): an entry queued by one swamp
   * version and sent after an upgrade has the old swamp_version and the new client_version; '' when not sent.
   */
  client_version: "LowCardinality(String)",
} as const satisfies ColumnTypes;

export const CLI_INVOCATION_COLUMNS = columnNames(CLI_INVOCATION_COLUMN_TYPES);

export type CliInvocationRow = RowOf<typeof CLI_INVOCATION_COLUMN_TYPES>;

interface SchemaNode {
  properties?: Record<string, object>;
}

/**
 * Every field the schema does not name, kept at its path: `{"properties": {"newField": 1, "result": {"extra": 2}}}`.
 * Objects the schema stores whole (invocationContext) are not walked.
 */
export function unknownFields(value: unknown, schema: object): Record<string, unknown> | undefined {
  if (typeof value !== "object" || value === null || Array.isArray(value) || (schema as SchemaNode).properties === undefined) return undefined;
  const known = (schema as SchemaNode).properties ?? {};
  const unknown: Record<string, unknown> = {};
  let found = false;
  for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
    const childSchema = Object.hasOwn(known, key) ? known[key] : undefined;
    const nested = childSchema === undefined ? child : unknownFields(child, childSchema);
    if (nested !== undefined) {
      Object.defineProperty(unknown, key, { value: nested, enumerable: true, writable: true, configurable: true });
      found = true;
    }
  }
  return found ? unknown : undefined;
}

/** `receivedAt` is ClickHouse time text (toClickHouseTime), computed once per job. */
export function toCliInvocationRow(event: CliInvocationEvent, receivedAt: string): CliInvocationRow {
  const p = event.properties;
  const repairs = event[REPAIRS_KEY] as EntryRepairs | undefined;
  const sent = repairs === undefined ? event : withoutRepairs(event);
  const context = p.workflowContext;
  return {
    insert_id: entryId(event),
    entry_id: p.id,
    distinct_id: event.distinct_id,
    received_at: receivedAt,
    started_at: isoToClickHouseTime(p.startedAt),
    completed_at: isoToClickHouseTime(p.completedAt),
    duration_ms: p.durationMs,
    command: p.invocation.command,
    subcommand: p.invocation.subcommand ?? "",
    args: p.invocation.args ?? [],
    option_keys: p.invocation.optionKeys ?? [],
    global_options: p.invocation.globalOptions ?? [],
    status: p.result.status,
    exit_code: p.result.exitCode,
    error_type: p.result.errorType ?? "",
    error_message: p.result.errorMessage ?? "",
    swamp_version: p.swampVersion ?? "",
    deno_version: p.denoVersion ?? "",
    platform: p.platform ?? "",
    repo_id: p.$repo_id ?? "",
    is_child: context !== undefined,
    parent_invocation_id: p.parentInvocationId ?? "",
    workflow_name: context?.workflowName ?? "",
    run_id: context?.runId ?? "",
    job_name: context?.jobName ?? "",
    step_name: context?.stepName ?? "",
    model_type: context?.modelType ?? "",
    driver: entryDriver(event),
    trigger_source: p.triggerSource ?? "",
    initiated_by: p.initiatedBy ?? "",
    invocation_context: p.invocationContext === undefined ? "" : JSON.stringify(p.invocationContext),
    extra: JSON.stringify(unknownFields(sent, CliInvocationEventSchema) ?? {}),
    repairs: repairs?.repairs ?? [],
    client_started_at: repairs?.clientStartedAt ?? "",
    client_completed_at: repairs?.clientCompletedAt ?? "",
    client_version: repairs?.clientVersion ?? "",
  };
}

/** The entry without ingest's own `$flowmeter` record, which has columns of its own. */
function withoutRepairs(event: CliInvocationEvent): CliInvocationEvent {
  const { [REPAIRS_KEY]: _repairs, ...rest } = event;
  return rest;
}

/**
 * The entry's row as one JSONCompactEachRow line: its values in CLI_INVOCATION_COLUMNS order. `receivedAt` is
 * ClickHouse time text (toClickHouseTime), computed once per request.
 */
export function rowLine(event: CliInvocationEvent, receivedAt: string): string {
  const row = toCliInvocationRow(event, receivedAt);
  return JSON.stringify(CLI_INVOCATION_COLUMNS.map((column) => row[column]));
}
