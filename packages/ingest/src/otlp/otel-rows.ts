/**
 * Decoded OTLP records (otlp-model.ts) as rows of otel_logs and otel_traces, mapped as the Collector's ClickHouse
 * exporter maps them (ServiceName from the resource's service.name; a log's time, else its observed time; a span's
 * kind and status as words), each with its RecordId (record-id.ts). Records that cannot be stored are counted and
 * described instead: an id of the wrong length, a time past what the tables hold.
 */
import type { OtelLogRow, OtelSpanRow } from "@flowmeter/shared";
import type { OtlpLogRecord, OtlpScopeBatch, OtlpSpan } from "./otlp-model.js";
import { recordId } from "./record-id.js";

export interface MappedRows<Row> {
  rows: Row[];
  rejected: number;
  /** Why the first refused record was refused, for partial_success.error_message. */
  firstProblem: string | undefined;
}

/** The latest second a DateTime('UTC') column holds (2106-02-07 06:28:15). */
const MAX_SECONDS = 4_294_967_295n;
const NANOS_PER_SECOND = 1_000_000_000n;

/** ClickHouse DateTime64(9) text of a time in nanoseconds since the epoch; undefined past MAX_SECONDS. */
export function nanosText(nanos: bigint): string | undefined {
  const seconds = nanos / NANOS_PER_SECOND;
  if (nanos < 0n || seconds > MAX_SECONDS) return undefined;
  return `${secondsText(seconds)}.${(nanos % NANOS_PER_SECOND).toString().padStart(9, "0")}`;
}

function secondsText(seconds: bigint): string {
  const iso = new Date(Number(seconds) * 1000).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}`;
}

const SPAN_KINDS = ["Unspecified", "Internal", "Server", "Client", "Producer", "Consumer"];
const STATUS_CODES = ["Unset", "Ok", "Error"];

export function logRows(batches: readonly OtlpScopeBatch<OtlpLogRecord>[], receivedAtMs: number): MappedRows<OtelLogRow> {
  const mapped: MappedRows<OtelLogRow> = { rows: [], rejected: 0, firstProblem: undefined };
  const reject = (problem: string): void => {
    mapped.rejected += 1;
    mapped.firstProblem ??= problem;
  };
  for (const { resource, scope, records } of batches) {
    const serviceName = resource.attributes["service.name"] ?? "";
    for (const record of records) {
      if (record.traceId === undefined || record.spanId === undefined) {
        reject("a log record's trace_id is not 16 bytes or its span_id not 8 bytes");
        continue;
      }
      const nanos = record.timeUnixNano || record.observedTimeUnixNano || BigInt(receivedAtMs) * 1_000_000n;
      const timestamp = nanosText(nanos);
      if (timestamp === undefined) {
        reject("a log record's time is past 2106-02-07, the latest the table holds");
        continue;
      }
      const row: Omit<OtelLogRow, "RecordId"> = {
        Timestamp: timestamp,
        TimestampTime: timestamp.slice(0, 19),
        TraceId: record.traceId,
        SpanId: record.spanId,
        TraceFlags: record.flags & 0xff,
        SeverityText: record.severityText,
        SeverityNumber: Math.min(255, Math.max(0, record.severityNumber)),
        ServiceName: serviceName,
        Body: record.body,
        ResourceSchemaUrl: resource.schemaUrl,
        ResourceAttributes: resource.attributes,
        ScopeSchemaUrl: scope.schemaUrl,
        ScopeName: scope.name,
        ScopeVersion: scope.version,
        ScopeAttributes: scope.attributes,
        LogAttributes: record.attributes,
        EventName: record.eventName,
      };
      mapped.rows.push({ ...row, RecordId: recordId(row) });
    }
  }
  return mapped;
}

export function spanRows(batches: readonly OtlpScopeBatch<OtlpSpan>[]): MappedRows<OtelSpanRow> {
  const mapped: MappedRows<OtelSpanRow> = { rows: [], rejected: 0, firstProblem: undefined };
  const reject = (problem: string): void => {
    mapped.rejected += 1;
    mapped.firstProblem ??= problem;
  };
  for (const { resource, scope, records } of batches) {
    const serviceName = resource.attributes["service.name"] ?? "";
    for (const span of records) {
      const linkIdsValid = span.links.every((link) => link.traceId !== undefined && link.spanId !== undefined);
      if (span.traceId === undefined || span.spanId === undefined || span.parentSpanId === undefined || !linkIdsValid) {
        reject("a span's trace_id is not 16 bytes or a span id not 8 bytes");
        continue;
      }
      const start = nanosText(span.startTimeUnixNano);
      const eventTimes = span.events.map((event) => nanosText(event.timeUnixNano));
      if (start === undefined || nanosText(span.endTimeUnixNano) === undefined || eventTimes.includes(undefined)) {
        reject("a span's time is past 2106-02-07, the latest the table holds");
        continue;
      }
      const duration = span.endTimeUnixNano > span.startTimeUnixNano ? span.endTimeUnixNano - span.startTimeUnixNano : 0n;
      const row: Omit<OtelSpanRow, "RecordId"> = {
        Timestamp: start,
        TraceId: span.traceId,
        SpanId: span.spanId,
        ParentSpanId: span.parentSpanId,
        TraceState: span.traceState,
        SpanName: span.name,
        SpanKind: SPAN_KINDS[span.kind] ?? "Unspecified",
        ServiceName: serviceName,
        ResourceAttributes: resource.attributes,
        ScopeName: scope.name,
        ScopeVersion: scope.version,
        SpanAttributes: span.attributes,
        Duration: Number(duration),
        StatusCode: STATUS_CODES[span.statusCode] ?? "Unset",
        StatusMessage: span.statusMessage,
        "Events.Timestamp": eventTimes as string[],
        "Events.Name": span.events.map((event) => event.name),
        "Events.Attributes": span.events.map((event) => event.attributes),
        "Links.TraceId": span.links.map((link) => link.traceId ?? ""),
        "Links.SpanId": span.links.map((link) => link.spanId ?? ""),
        "Links.TraceState": span.links.map((link) => link.traceState),
        "Links.Attributes": span.links.map((link) => link.attributes),
      };
      mapped.rows.push({ ...row, RecordId: recordId(row) });
    }
  }
  return mapped;
}
