/**
 * Decoded OTLP records (otlp-model.ts) as rows of otel_logs and otel_traces, mapped as the Collector's ClickHouse
 * exporter maps them (ServiceName from the resource's service.name; a log's time, else its observed time; a span's
 * kind and status as words), each with its RecordId (record-id.ts). Records that cannot be stored are counted and
 * described instead: an id of the wrong length, a time past what the tables hold.
 */
import type { OtelLogRow, OtelMetricGaugeRow, OtelMetricHistogramRow, OtelMetricSumRow, OtelSpanRow } from "@flowmeter/shared";
import type { OtlpLogRecord, OtlpMetric, OtlpMetricPoint, OtlpScopeBatch, OtlpSpan } from "./otlp-model.js";
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

/** The rows of otel_metrics_sum, _gauge and _histogram of one metrics export. */
export interface MetricRows {
  sums: OtelMetricSumRow[];
  gauges: OtelMetricGaugeRow[];
  histograms: OtelMetricHistogramRow[];
}

const NO_EXEMPLARS = {
  "Exemplars.FilteredAttributes": [],
  "Exemplars.TimeUnix": [],
  "Exemplars.Value": [],
  "Exemplars.SpanId": [],
  "Exemplars.TraceId": [],
};

/**
 * Data points as rows of the metrics tables, the exporter's way (one row per data point, the metric's name, unit and
 * description on each). Refused: data points of exponential histograms and summaries (not stored yet), values that
 * are not finite (NaN, ±Infinity: JSON rows cannot carry them), times past 2106-02-07. Exemplars are not stored.
 */
export function metricRows(batches: readonly OtlpScopeBatch<OtlpMetric>[]): MappedRows<unknown> & MetricRows {
  const mapped: MappedRows<unknown> & MetricRows = { rows: [], rejected: 0, firstProblem: undefined, sums: [], gauges: [], histograms: [] };
  const reject = (problem: string, count = 1): void => {
    mapped.rejected += count;
    mapped.firstProblem ??= problem;
  };
  for (const { resource, scope, records } of batches) {
    const serviceName = resource.attributes["service.name"] ?? "";
    for (const metric of records) {
      if (metric.otherPoints > 0) reject("exponential histogram and summary data points are not stored", metric.otherPoints);
      for (const point of metric.points) {
        const start = nanosText(point.startTimeUnixNano);
        const time = nanosText(point.timeUnixNano);
        if (start === undefined || time === undefined) {
          reject("a data point's time is past 2106-02-07, the latest the tables hold");
          continue;
        }
        if (!finitePoint(point)) {
          reject("a data point's value, sum, minimum, maximum or bound is not a finite number");
          continue;
        }
        const common = {
          ResourceAttributes: resource.attributes,
          ResourceSchemaUrl: resource.schemaUrl,
          ScopeName: scope.name,
          ScopeVersion: scope.version,
          ScopeAttributes: scope.attributes,
          ScopeDroppedAttrCount: 0,
          ScopeSchemaUrl: scope.schemaUrl,
          ServiceName: serviceName,
          MetricName: metric.name,
          MetricDescription: metric.description,
          MetricUnit: metric.unit,
          Attributes: point.attributes,
          StartTimeUnix: start,
          TimeUnix: time,
        };
        if (metric.kind === "gauge") {
          const row: Omit<OtelMetricGaugeRow, "RecordId"> = { ...common, Value: point.value, Flags: point.flags, ...NO_EXEMPLARS };
          mapped.gauges.push({ ...row, RecordId: recordId(row) });
        } else if (metric.kind === "sum") {
          const row: Omit<OtelMetricSumRow, "RecordId"> = {
            ...common,
            Value: point.value,
            Flags: point.flags,
            ...NO_EXEMPLARS,
            AggregationTemporality: metric.aggregationTemporality,
            IsMonotonic: metric.isMonotonic,
          };
          mapped.sums.push({ ...row, RecordId: recordId(row) });
        } else if (metric.kind === "histogram") {
          const row: Omit<OtelMetricHistogramRow, "RecordId"> = {
            ...common,
            Count: point.count,
            Sum: point.sum,
            BucketCounts: point.bucketCounts,
            ExplicitBounds: point.explicitBounds,
            ...NO_EXEMPLARS,
            Flags: point.flags,
            Min: point.min,
            Max: point.max,
            AggregationTemporality: metric.aggregationTemporality,
          };
          mapped.histograms.push({ ...row, RecordId: recordId(row) });
        }
      }
    }
  }
  mapped.rows = [...mapped.sums, ...mapped.gauges, ...mapped.histograms];
  return mapped;
}

function finitePoint(point: OtlpMetricPoint): boolean {
  return [point.value, point.sum, point.min, point.max, ...point.explicitBounds].every(Number.isFinite);
}
