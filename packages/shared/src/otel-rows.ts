/**
 * The rows of the OpenTelemetry tables (migrations 0025, 0026: the Collector ClickHouse exporter's otel_logs and
 * otel_traces), as ingest's OTLP receiver builds them and the worker inserts them: the columns in table order with
 * their ClickHouse types (as DESCRIBE TABLE prints them) and the row types derived from them, defined once here. Maps
 * are JSON objects, Nested columns one array per sub-column (`Events.Name`), times ClickHouse DateTime64(9) text in
 * UTC (`2026-12-07 12:00:00.123456789`).
 */
import { columnNames, type RowOf } from "./clickhouse-columns.js";

export type OtelAttributes = Record<string, string>;

const ATTRIBUTES = "Map(LowCardinality(String), String)";
const NANOS = "DateTime64(9, 'UTC')";

export const OTEL_LOG_COLUMN_TYPES = {
  Timestamp: NANOS,
  /** Timestamp to the second: the exporter's DEFAULT, written out so the worker's lookup can use it. */
  TimestampTime: "DateTime('UTC')",
  TraceId: "String",
  SpanId: "String",
  TraceFlags: "UInt8",
  SeverityText: "LowCardinality(String)",
  SeverityNumber: "UInt8",
  ServiceName: "LowCardinality(String)",
  Body: "String",
  ResourceSchemaUrl: "LowCardinality(String)",
  ResourceAttributes: ATTRIBUTES,
  ScopeSchemaUrl: "LowCardinality(String)",
  ScopeName: "String",
  ScopeVersion: "LowCardinality(String)",
  ScopeAttributes: ATTRIBUTES,
  LogAttributes: ATTRIBUTES,
  EventName: "String",
  /** The record's content hash (ingest's otlp/record-id.ts): the same record exported twice has the same id. */
  RecordId: "String",
} as const;

export type OtelLogRow = RowOf<typeof OTEL_LOG_COLUMN_TYPES>;
export const OTEL_LOG_COLUMNS = columnNames(OTEL_LOG_COLUMN_TYPES);

export const OTEL_SPAN_COLUMN_TYPES = {
  Timestamp: NANOS,
  TraceId: "String",
  SpanId: "String",
  ParentSpanId: "String",
  TraceState: "String",
  SpanName: "LowCardinality(String)",
  /** Unspecified | Internal | Server | Client | Producer | Consumer, as the exporter writes it. */
  SpanKind: "LowCardinality(String)",
  ServiceName: "LowCardinality(String)",
  ResourceAttributes: ATTRIBUTES,
  ScopeName: "String",
  ScopeVersion: "String",
  SpanAttributes: ATTRIBUTES,
  /** Nanoseconds. */
  Duration: "UInt64",
  /** Unset | Ok | Error. */
  StatusCode: "LowCardinality(String)",
  StatusMessage: "String",
  "Events.Timestamp": `Array(${NANOS})`,
  "Events.Name": "Array(LowCardinality(String))",
  "Events.Attributes": `Array(${ATTRIBUTES})`,
  "Links.TraceId": "Array(String)",
  "Links.SpanId": "Array(String)",
  "Links.TraceState": "Array(String)",
  "Links.Attributes": `Array(${ATTRIBUTES})`,
  RecordId: "String",
} as const;

export type OtelSpanRow = RowOf<typeof OTEL_SPAN_COLUMN_TYPES>;
export const OTEL_SPAN_COLUMNS = columnNames(OTEL_SPAN_COLUMN_TYPES);

/** The columns every metrics table starts with (migrations 0029-0031: the exporter's metrics_*_table.sql). */
const OTEL_METRIC_COMMON_COLUMN_TYPES = {
  ResourceAttributes: ATTRIBUTES,
  ResourceSchemaUrl: "String",
  ScopeName: "String",
  ScopeVersion: "String",
  ScopeAttributes: ATTRIBUTES,
  ScopeDroppedAttrCount: "UInt32",
  ScopeSchemaUrl: "String",
  ServiceName: "LowCardinality(String)",
  MetricName: "String",
  MetricDescription: "String",
  MetricUnit: "String",
  Attributes: ATTRIBUTES,
  StartTimeUnix: NANOS,
  TimeUnix: NANOS,
} as const;

const OTEL_EXEMPLAR_COLUMN_TYPES = {
  "Exemplars.FilteredAttributes": `Array(${ATTRIBUTES})`,
  "Exemplars.TimeUnix": `Array(${NANOS})`,
  "Exemplars.Value": "Array(Float64)",
  "Exemplars.SpanId": "Array(String)",
  "Exemplars.TraceId": "Array(String)",
} as const;

/** otel_metrics_gauge (migration 0030). */
export const OTEL_METRIC_GAUGE_COLUMN_TYPES = {
  ...OTEL_METRIC_COMMON_COLUMN_TYPES,
  Value: "Float64",
  Flags: "UInt32",
  ...OTEL_EXEMPLAR_COLUMN_TYPES,
  RecordId: "String",
} as const;

/** otel_metrics_sum (migration 0029). AggregationTemporality: 1 delta, 2 cumulative (OTLP's enum). */
export const OTEL_METRIC_SUM_COLUMN_TYPES = {
  ...OTEL_METRIC_COMMON_COLUMN_TYPES,
  Value: "Float64",
  Flags: "UInt32",
  ...OTEL_EXEMPLAR_COLUMN_TYPES,
  AggregationTemporality: "Int32",
  IsMonotonic: "Bool",
  RecordId: "String",
} as const;

/** otel_metrics_histogram (migration 0031). */
export const OTEL_METRIC_HISTOGRAM_COLUMN_TYPES = {
  ...OTEL_METRIC_COMMON_COLUMN_TYPES,
  Count: "UInt64",
  Sum: "Float64",
  BucketCounts: "Array(UInt64)",
  ExplicitBounds: "Array(Float64)",
  ...OTEL_EXEMPLAR_COLUMN_TYPES,
  Flags: "UInt32",
  Min: "Float64",
  Max: "Float64",
  AggregationTemporality: "Int32",
  RecordId: "String",
} as const;

export type OtelMetricGaugeRow = RowOf<typeof OTEL_METRIC_GAUGE_COLUMN_TYPES>;
export type OtelMetricSumRow = RowOf<typeof OTEL_METRIC_SUM_COLUMN_TYPES>;
export type OtelMetricHistogramRow = RowOf<typeof OTEL_METRIC_HISTOGRAM_COLUMN_TYPES>;
