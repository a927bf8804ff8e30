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
