/**
 * The registry: every table of the `flowmeter` database the worker writes or keeps, each defined once. Retention
 * (retention.ts), the cluster DDL's sharding keys (cluster-ddl.ts), the metrics' table labels (metrics.ts), the
 * start-up repair (main.ts) and the consumers look tables up here; raw-tables.integration.test.ts checks every
 * definition against ClickHouse after the migrations (columns and types, which tables views read, a retention entry
 * for every table). The tables themselves are created by the migrations (infra/clickhouse/migrations).
 */
import { CLI_INVOCATION_COLUMN_TYPES, toCliInvocationRow, toClickHouseTime, type RowOf, type RunEventPayloads } from "@flowmeter/shared";
import type { IngestionWarning, RunEvent, StageLogLine, TelemetrySample } from "@flowmeter/shared";
import { defineRawTable, type RawTableShape, type Retention } from "./raw-table.js";
import {
  OTEL_METRIC_TABLES,
  OTEL_VIEW_TARGETS,
  otelLogsTable,
  otelMetricGaugeTable,
  otelMetricHistogramTable,
  otelMetricSumTable,
  otelTracesTable,
} from "./tables/otel-tables.js";

/** flowmeter.cli_invocations: one row per accepted cli_invocation entry (migration 0001; columns and mapping in shared). */
export const cliInvocationsTable = defineRawTable({
  name: "flowmeter.cli_invocations",
  columns: CLI_INVOCATION_COLUMN_TYPES,
  // insert_id alone: a re-send with another startedAt (a client clock fixed, a timestamp ingest replaced by the receive
  // time) is the same entry. Its writer looks ids up in cli_invocation_ids (consumers/partition-writer.ts).
  identity: ["insert_id"],
  shardingKey: "cityHash64(insert_id)",
  retention: { keep: "rawDays", column: "started_at" },
  readByViews: true,
  writtenBy: "partition-writer",
  toRow: toCliInvocationRow,
});

const CLI_INVOCATION_ID_COLUMNS = {
  /** Lowercase hex of entryIdHash(insert_id) (shared/queues.ts). */
  id_hash: "FixedString(32)",
  /** When this id was stored (whole seconds). */
  received_at: "DateTime('UTC')",
} as const;

/** flowmeter.cli_invocation_ids: the ids of the entries stored within the dedup horizon (migration 0023). */
export const cliInvocationIdsTable = defineRawTable({
  name: "flowmeter.cli_invocation_ids",
  columns: CLI_INVOCATION_ID_COLUMNS,
  identity: ["id_hash"],
  shardingKey: "cityHash64(id_hash)",
  retention: { keep: "dedupHorizonDays", column: "received_at" },
  readByViews: false,
  writtenBy: "partition-writer",
  /** `receivedAt`: ClickHouse DateTime text, whole seconds. */
  toRow: (idHash: Buffer, receivedAt: string): RowOf<typeof CLI_INVOCATION_ID_COLUMNS> => ({ id_hash: idHash.toString("hex"), received_at: receivedAt }),
});

const INGESTION_WARNING_COLUMNS = {
  received_at: "DateTime64(3, 'UTC')",
  warning_id: "String",
  reason: "LowCardinality(String)",
  entry_id: "String",
  distinct_id: "String",
  source: "String",
  detail: "String",
  excerpt: "String",
} as const;

export type IngestionWarningRow = RowOf<typeof INGESTION_WARNING_COLUMNS>;

/** flowmeter.ingestion_warnings: one row per repaired or refused client entry (migration 0016). */
export const ingestionWarningsTable = defineRawTable({
  name: "flowmeter.ingestion_warnings",
  columns: INGESTION_WARNING_COLUMNS,
  identity: ["received_at", "warning_id"],
  shardingKey: "cityHash64(warning_id)",
  retention: { keep: "rawDays", column: "received_at" },
  readByViews: false,
  writtenBy: "insert-once",
  toRow: (warning: IngestionWarning): IngestionWarningRow => {
    const { received_at_ms: receivedAtMs, ...rest } = warning;
    return { received_at: toClickHouseTime(receivedAtMs), ...rest };
  },
});

const RUN_EVENT_COLUMNS = {
  event_id: "String",
  run_id: "String",
  attempt_id: "String",
  seq: "UInt64",
  ts: "DateTime64(3, 'UTC')",
  received_at: "DateTime64(3, 'UTC')",
  level: "LowCardinality(String)",
  event_type: "LowCardinality(String)",
  event_type_v2: "LowCardinality(String)",
  message: "String",
  workflow: "String",
  stage_name: "String",
  group_id: "LowCardinality(String)",
  driver: "LowCardinality(String)",
  stage_attempt: "UInt32",
  /** succeeded | failed | cancelled | timed_out | skipped on the event that ends a stage, else '' (stageOutcome). */
  stage_outcome: "LowCardinality(String)",
  duration_ms: "Float64",
  exit_code: "Nullable(Int32)",
  error: "String",
  /** JSON payload as sent, unknown fields included. */
  payload: "String",
} as const;

export type RunEventRow = RowOf<typeof RUN_EVENT_COLUMNS>;

/**
 * The outcome when this event ends its stage, in the outcome vocabulary (docs/spec.md §6), the words of the runner's
 * stage_outcomes metric: a failed attempt that will be retried does not end it; a cancel wins over a timeout, as there.
 */
export function stageOutcome(event: RunEvent): "" | "succeeded" | "failed" | "cancelled" | "timed_out" | "skipped" {
  switch (event.event_type) {
    case "stage.completed":
      return "succeeded";
    case "stage.failed":
      if (event.payload.will_retry) return "";
      return event.payload.cancelled ? "cancelled" : event.payload.timed_out ? "timed_out" : "failed";
    case "stage.skipped":
      return "skipped";
    default:
      return "";
  }
}

/** A field name some event's payload has (shared's RunEventPayloads): renaming one there breaks the build here, not the column. */
type PayloadFieldName = { [T in keyof RunEventPayloads]: keyof RunEventPayloads[T] & string }[keyof RunEventPayloads];

function runEventRow(event: RunEvent, receivedAt: string): RunEventRow {
  const payload: Record<string, unknown> = event.payload;
  const numberField = (name: PayloadFieldName) => (typeof payload[name] === "number" ? payload[name] : undefined);
  const textField = (name: PayloadFieldName) => (typeof payload[name] === "string" ? payload[name] : "");
  return {
    event_id: event.event_id,
    run_id: event.run_id,
    attempt_id: event.attempt_id,
    seq: event.seq,
    ts: toClickHouseTime(event.ts_ms),
    received_at: receivedAt,
    level: event.level,
    event_type: event.event_type,
    event_type_v2: event.event_type_v2,
    message: event.message,
    workflow: textField("workflow"),
    stage_name: event.stage_name ?? "",
    group_id: event.group_id ?? "",
    driver: textField("driver"),
    stage_attempt: numberField("stage_attempt") ?? 0,
    stage_outcome: stageOutcome(event),
    duration_ms: numberField("duration_ms") ?? 0,
    exit_code: numberField("exit_code") ?? null,
    error: textField("error") || textField("reason"),
    payload: JSON.stringify(event.payload),
  };
}

/** flowmeter.run_events: one row per runner lifecycle event (migration 0011). */
export const runEventsTable = defineRawTable({
  name: "flowmeter.run_events",
  columns: RUN_EVENT_COLUMNS,
  identity: ["ts", "event_id"],
  shardingKey: "cityHash64(run_id)",
  retention: { keep: "rawDays", column: "ts" },
  readByViews: true,
  writtenBy: "insert-once",
  toRow: runEventRow,
});

const RUN_TELEMETRY_COLUMNS = {
  run_id: "String",
  attempt_id: "String",
  seq: "UInt64",
  /** host | heartbeat. */
  kind: "LowCardinality(String)",
  ts: "DateTime64(3, 'UTC')",
  received_at: "DateTime64(3, 'UTC')",
  stage_name: "String",
  group_id: "LowCardinality(String)",
  stage_attempt: "UInt32",
  rss_bytes: "UInt64",
  cpu_percent: "Float64",
  io_read_bytes: "UInt64",
  io_write_bytes: "UInt64",
  elapsed_secs: "Float64",
  stdout_bytes: "UInt64",
  stderr_bytes: "UInt64",
  stdout_delta_bytes: "UInt64",
  stderr_delta_bytes: "UInt64",
  stagnant_heartbeats: "UInt32",
  pid: "Nullable(Int64)",
  pid_alive: "Bool",
  output_state: "LowCardinality(String)",
} as const;

export type RunTelemetryRow = RowOf<typeof RUN_TELEMETRY_COLUMNS>;

const NO_HOST = { rss_bytes: 0, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 };
const NO_HEARTBEAT = {
  elapsed_secs: 0,
  stdout_bytes: 0,
  stderr_bytes: 0,
  stdout_delta_bytes: 0,
  stderr_delta_bytes: 0,
  stagnant_heartbeats: 0,
  pid: null,
  pid_alive: false,
  output_state: "",
};

function runTelemetryRow(sample: TelemetrySample, receivedAt: string): RunTelemetryRow {
  const base = {
    run_id: sample.run_id,
    attempt_id: sample.attempt_id,
    seq: sample.seq,
    ts: toClickHouseTime(sample.timestamp_ms),
    received_at: receivedAt,
    stage_name: sample.stage_name,
  };
  if (sample.kind === "host") return { ...base, kind: "host", group_id: "", stage_attempt: 0, ...sample.host, ...NO_HEARTBEAT };
  return { ...base, kind: "heartbeat", group_id: sample.group_id, stage_attempt: sample.stage_attempt, ...NO_HOST, ...sample.heartbeat };
}

/** flowmeter.run_telemetry: host samples and step heartbeats (migration 0012). Cumulative counters stored as sent. */
export const runTelemetryTable = defineRawTable({
  name: "flowmeter.run_telemetry",
  columns: RUN_TELEMETRY_COLUMNS,
  identity: ["ts", "attempt_id", "seq"],
  shardingKey: "cityHash64(attempt_id)",
  retention: { keep: "telemetryDays", column: "ts" },
  readByViews: false,
  writtenBy: "insert-once",
  toRow: runTelemetryRow,
});

const RUN_LOG_COLUMNS = {
  run_id: "String",
  attempt_id: "String",
  seq: "UInt64",
  ts: "DateTime64(3, 'UTC')",
  received_at: "DateTime64(3, 'UTC')",
  stage_name: "LowCardinality(String)",
  stage_attempt: "UInt32",
  /** stdout | stderr. */
  stream: "LowCardinality(String)",
  line: "String",
  truncated: "Bool",
} as const;

export type RunLogRow = RowOf<typeof RUN_LOG_COLUMNS>;

/** flowmeter.run_logs: the lines stages wrote (migration 0022), one row per (attempt_id, seq). */
export const runLogsTable = defineRawTable({
  name: "flowmeter.run_logs",
  columns: RUN_LOG_COLUMNS,
  identity: ["run_id", "attempt_id", "seq"],
  shardingKey: "cityHash64(run_id, attempt_id, seq)",
  retention: { keep: "logsDays", column: "ts" },
  readByViews: false,
  writtenBy: "insert-once",
  toRow: (line: StageLogLine, receivedAt: string): RunLogRow => ({
    run_id: line.run_id,
    attempt_id: line.attempt_id,
    seq: line.seq,
    ts: toClickHouseTime(line.timestamp_ms),
    received_at: receivedAt,
    stage_name: line.stage_name,
    stage_attempt: line.stage_attempt,
    stream: line.stream,
    line: line.line,
    truncated: line.truncated,
  }),
});

/** Every raw table the worker writes. */
export const RAW_TABLES: readonly RawTableShape[] = [
  cliInvocationsTable,
  cliInvocationIdsTable,
  runEventsTable,
  runTelemetryTable,
  runLogsTable,
  ingestionWarningsTable,
  otelLogsTable,
  otelTracesTable,
  otelMetricSumTable,
  otelMetricGaugeTable,
  otelMetricHistogramTable,
];

/**
 * The rollups materialized views fill from the raw tables, with their retention. Sharded on a cluster by their
 * sorting key (cluster-ddl.ts); what they hold is defined by their migrations (target table and views).
 */
export const ROLLUP_TABLES: readonly { name: `flowmeter.${string}`; retention: Retention }[] = [
  { name: "flowmeter.driver_stats_1m", retention: { keep: "rollupDays", column: "minute" } },
  { name: "flowmeter.stage_stats_1m", retention: { keep: "rollupDays", column: "minute" } },
  { name: "flowmeter.command_stats_1m", retention: { keep: "rollupDays", column: "minute" } },
  ...OTEL_VIEW_TARGETS,
  { name: "flowmeter.command_errors_1m", retention: { keep: "rollupDays", column: "minute" } },
];

/** Tables kept forever whatever the settings: the migrations' ledger. */
export const RETENTION_EXEMPT: readonly string[] = ["flowmeter.schema_migrations"];

/** Every table with a retention setting: the raw tables, then the rollups. */
export const RETAINED_TABLES: readonly { name: string; retention: Retention }[] = [...RAW_TABLES, ...ROLLUP_TABLES, ...OTEL_METRIC_TABLES];

/** The raw table with this unqualified name (`run_events`), if it is one. */
export function rawTableNamed(name: string): RawTableShape | undefined {
  return RAW_TABLES.find((table) => table.label === name);
}
