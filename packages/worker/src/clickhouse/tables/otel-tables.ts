/**
 * The OpenTelemetry tables (migrations 0025-0039) in the registry's terms (raw-tables.ts lists them): otel_logs and
 * otel_traces, written once by RecordId through insert-once.ts (consumers/otel.consumer.ts), their columns and row
 * types defined in shared's otel-rows.ts, where ingest builds the rows; the trace-id lookup and the rollups their
 * views fill; otel_metrics_sum, _gauge and _histogram, written the same way from /v1/metrics; and the exponential
 * histogram and summary tables, created for the Collector's schema and kept by FLOWMETER_OTEL_TTL_DAYS.
 */
import {
  OTEL_LOG_COLUMN_TYPES,
  OTEL_METRIC_GAUGE_COLUMN_TYPES,
  OTEL_METRIC_HISTOGRAM_COLUMN_TYPES,
  OTEL_METRIC_SUM_COLUMN_TYPES,
  OTEL_SPAN_COLUMN_TYPES,
  type OtelLogRow,
  type OtelMetricGaugeRow,
  type OtelMetricHistogramRow,
  type OtelMetricSumRow,
  type OtelSpanRow,
} from "@flowmeter/shared";
import { defineRawTable, type Retention } from "../raw-table.js";

/**
 * flowmeter.otel_logs (migration 0025). A record is looked up by (ServiceName, TimestampTime), the table's primary
 * key, and its RecordId, so the lookup reads the granules of that service and second only, however large the table.
 */
export const otelLogsTable = defineRawTable({
  name: "flowmeter.otel_logs",
  columns: OTEL_LOG_COLUMN_TYPES,
  identity: ["ServiceName", "TimestampTime", "RecordId"],
  shardingKey: "cityHash64(RecordId)",
  retention: { keep: "otelDays", column: "TimestampTime" },
  readByViews: true,
  writtenBy: "insert-once",
  toRow: (row: OtelLogRow): OtelLogRow => row,
});

/** flowmeter.otel_traces (migration 0026); looked up by (ServiceName, SpanName, Timestamp), its sort key, and RecordId. */
export const otelTracesTable = defineRawTable({
  name: "flowmeter.otel_traces",
  columns: OTEL_SPAN_COLUMN_TYPES,
  identity: ["ServiceName", "SpanName", "Timestamp", "RecordId"],
  shardingKey: "cityHash64(RecordId)",
  retention: { keep: "otelDays", column: "Timestamp" },
  readByViews: true,
  writtenBy: "insert-once",
  toRow: (row: OtelSpanRow): OtelSpanRow => row,
});

/** The tables materialized views fill from otel_logs and otel_traces. */
export const OTEL_VIEW_TARGETS: readonly { name: `flowmeter.${string}`; retention: Retention }[] = [
  { name: "flowmeter.otel_traces_trace_id_ts", retention: { keep: "otelDays", column: "Start" } },
  { name: "flowmeter.otel_log_stats_1m", retention: { keep: "rollupDays", column: "minute" } },
  { name: "flowmeter.otel_span_stats_1m", retention: { keep: "rollupDays", column: "minute" } },
];

/**
 * The metrics tables written (migrations 0029-0031), each data point looked up by (ServiceName, MetricName), its sort
 * key's prefix, TimeUnix and RecordId; no view reads them.
 */
const OTEL_METRIC_WRITES = {
  identity: ["ServiceName", "MetricName", "TimeUnix", "RecordId"],
  shardingKey: "cityHash64(RecordId)",
  retention: { keep: "otelDays", column: "TimeUnix" },
  readByViews: false,
  writtenBy: "insert-once",
} as const;

export const otelMetricSumTable = defineRawTable({
  name: "flowmeter.otel_metrics_sum",
  columns: OTEL_METRIC_SUM_COLUMN_TYPES,
  ...OTEL_METRIC_WRITES,
  toRow: (row: OtelMetricSumRow): OtelMetricSumRow => row,
});

export const otelMetricGaugeTable = defineRawTable({
  name: "flowmeter.otel_metrics_gauge",
  columns: OTEL_METRIC_GAUGE_COLUMN_TYPES,
  ...OTEL_METRIC_WRITES,
  toRow: (row: OtelMetricGaugeRow): OtelMetricGaugeRow => row,
});

export const otelMetricHistogramTable = defineRawTable({
  name: "flowmeter.otel_metrics_histogram",
  columns: OTEL_METRIC_HISTOGRAM_COLUMN_TYPES,
  ...OTEL_METRIC_WRITES,
  toRow: (row: OtelMetricHistogramRow): OtelMetricHistogramRow => row,
});

/** The Collector's other metrics tables: created (migrations 0032, 0033) and kept, not yet written. */
export const OTEL_METRIC_TABLES: readonly { name: `flowmeter.${string}`; retention: Retention }[] = [
  "otel_metrics_exponential_histogram",
  "otel_metrics_summary",
].map((table) => ({ name: `flowmeter.${table}` as const, retention: { keep: "otelDays", column: "TimeUnix" } }));
