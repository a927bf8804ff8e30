/**
 * OTLP/HTTP protobuf requests (opentelemetry-proto: collector/logs/v1 ExportLogsServiceRequest, collector/trace/v1
 * ExportTraceServiceRequest, collector/metrics/v1 ExportMetricsServiceRequest) read into otlp-model.ts, field numbers as in the .proto files; unknown fields skipped.
 */
import type { OtelAttributes } from "@flowmeter/shared";
import {
  emptyMetricPoint,
  idHex,
  valueText,
  type OtlpLogRecord,
  type OtlpMetric,
  type OtlpMetricKind,
  type OtlpMetricPoint,
  type OtlpResource,
  type OtlpScope,
  type OtlpScopeBatch,
  type OtlpSpan,
  type RawValue,
} from "./otlp-model.js";
import { OtlpDecodeError, ProtobufReader, WIRE_FIXED32, WIRE_FIXED64, WIRE_LENGTH_DELIMITED, WIRE_VARINT } from "./protobuf-reader.js";

export function decodeLogsRequest(body: Uint8Array): OtlpScopeBatch<OtlpLogRecord>[] {
  return decodeRequest(body, logRecord);
}

export function decodeTracesRequest(body: Uint8Array): OtlpScopeBatch<OtlpSpan>[] {
  return decodeRequest(body, span);
}

export function decodeMetricsRequest(body: Uint8Array): OtlpScopeBatch<OtlpMetric>[] {
  return decodeRequest(body, metric);
}

/**
 * Export*ServiceRequest { repeated Resource* resource_* = 1 }, Resource* { Resource resource = 1; repeated Scope*
 * scope_* = 2; string schema_url = 3 }, Scope* { InstrumentationScope scope = 1; repeated Record records = 2; string
 * schema_url = 3 }: the same shape for logs, spans and metrics.
 */
function decodeRequest<Record>(body: Uint8Array, readRecord: (reader: ProtobufReader) => Record): OtlpScopeBatch<Record>[] {
  const batches: OtlpScopeBatch<Record>[] = [];
  const request = new ProtobufReader(body);
  while (!request.atEnd()) {
    const { field, wire } = request.tag();
    if (field !== 1 || wire !== WIRE_LENGTH_DELIMITED) {
      request.skip(wire);
      continue;
    }
    const resourceMessage = request.message();
    const resource: OtlpResource = { attributes: {}, schemaUrl: "" };
    const scopes: { scope: OtlpScope; records: Record[] }[] = [];
    while (!resourceMessage.atEnd()) {
      const inner = resourceMessage.tag();
      if (inner.field === 1 && inner.wire === WIRE_LENGTH_DELIMITED) resource.attributes = attributesOf(resourceMessage.message(), 1);
      else if (inner.field === 2 && inner.wire === WIRE_LENGTH_DELIMITED) scopes.push(scopeBatch(resourceMessage.message(), readRecord));
      else if (inner.field === 3 && inner.wire === WIRE_LENGTH_DELIMITED) resource.schemaUrl = resourceMessage.string();
      else resourceMessage.skip(inner.wire);
    }
    for (const { scope, records } of scopes) batches.push({ resource, scope, records });
  }
  return batches;
}

function scopeBatch<Record>(reader: ProtobufReader, readRecord: (reader: ProtobufReader) => Record): { scope: OtlpScope; records: Record[] } {
  const scope: OtlpScope = { name: "", version: "", attributes: {}, schemaUrl: "" };
  const records: Record[] = [];
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) Object.assign(scope, instrumentationScope(reader.message()));
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) records.push(readRecord(reader.message()));
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) scope.schemaUrl = reader.string();
    else reader.skip(wire);
  }
  return { scope, records };
}

function instrumentationScope(reader: ProtobufReader): Omit<OtlpScope, "schemaUrl"> {
  const scope = { name: "", version: "", attributes: {} as OtelAttributes };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) scope.name = reader.string();
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) scope.version = reader.string();
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) addAttribute(scope.attributes, reader.message());
    else reader.skip(wire);
  }
  return scope;
}

/** The KeyValues in field `field` of a message (Resource.attributes is field 1). */
function attributesOf(reader: ProtobufReader, field: number): OtelAttributes {
  const attributes: OtelAttributes = {};
  while (!reader.atEnd()) {
    const tag = reader.tag();
    if (tag.field === field && tag.wire === WIRE_LENGTH_DELIMITED) addAttribute(attributes, reader.message());
    else reader.skip(tag.wire);
  }
  return attributes;
}

function addAttribute(attributes: OtelAttributes, keyValue: ProtobufReader): void {
  const [key, value] = keyValueOf(keyValue);
  attributes[key] = valueText(value);
}

/** KeyValue { string key = 1; AnyValue value = 2 }. */
function keyValueOf(reader: ProtobufReader): [string, RawValue] {
  let key = "";
  let value: RawValue = null;
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) key = reader.string();
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) value = anyValue(reader.message());
    else reader.skip(wire);
  }
  return [key, value];
}

/** AnyValue { oneof: string 1, bool 2, int64 3, double 4, ArrayValue 5, KeyValueList 6, bytes 7 }. */
function anyValue(reader: ProtobufReader): RawValue {
  let value: RawValue = null;
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) value = reader.string();
    else if (field === 2 && wire === WIRE_VARINT) value = reader.varint() !== 0;
    else if (field === 3 && wire === WIRE_VARINT) value = reader.int64();
    else if (field === 4 && wire === WIRE_FIXED64) value = reader.double();
    else if (field === 5 && wire === WIRE_LENGTH_DELIMITED) value = arrayValue(reader.message());
    else if (field === 6 && wire === WIRE_LENGTH_DELIMITED) value = keyValueList(reader.message());
    else if (field === 7 && wire === WIRE_LENGTH_DELIMITED) value = reader.bytes();
    else reader.skip(wire);
  }
  return value;
}

function arrayValue(reader: ProtobufReader): RawValue[] {
  const values: RawValue[] = [];
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) values.push(anyValue(reader.message()));
    else reader.skip(wire);
  }
  return values;
}

function keyValueList(reader: ProtobufReader): { [key: string]: RawValue } {
  const values: { [key: string]: RawValue } = {};
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) {
      const [key, value] = keyValueOf(reader.message());
      values[key] = value;
    } else reader.skip(wire);
  }
  return values;
}

/**
 * LogRecord { fixed64 time_unix_nano = 1; fixed64 observed_time_unix_nano = 11; SeverityNumber severity_number = 2;
 * string severity_text = 3; AnyValue body = 5; repeated KeyValue attributes = 6; fixed32 flags = 8; bytes trace_id = 9;
 * bytes span_id = 10; string event_name = 12 }.
 */
function logRecord(reader: ProtobufReader): OtlpLogRecord {
  const record: OtlpLogRecord = {
    timeUnixNano: 0n,
    observedTimeUnixNano: 0n,
    severityNumber: 0,
    severityText: "",
    body: "",
    attributes: {},
    flags: 0,
    traceId: "",
    spanId: "",
    eventName: "",
  };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_FIXED64) record.timeUnixNano = reader.fixed64();
    else if (field === 11 && wire === WIRE_FIXED64) record.observedTimeUnixNano = reader.fixed64();
    else if (field === 2 && wire === WIRE_VARINT) record.severityNumber = reader.varint();
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) record.severityText = reader.string();
    else if (field === 5 && wire === WIRE_LENGTH_DELIMITED) record.body = valueText(anyValue(reader.message()));
    else if (field === 6 && wire === WIRE_LENGTH_DELIMITED) addAttribute(record.attributes, reader.message());
    else if (field === 8 && wire === WIRE_FIXED32) record.flags = reader.fixed32();
    else if (field === 9 && wire === WIRE_LENGTH_DELIMITED) record.traceId = idHex(reader.bytes(), 16);
    else if (field === 10 && wire === WIRE_LENGTH_DELIMITED) record.spanId = idHex(reader.bytes(), 8);
    else if (field === 12 && wire === WIRE_LENGTH_DELIMITED) record.eventName = reader.string();
    else reader.skip(wire);
  }
  return record;
}

/**
 * Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5;
 * SpanKind kind = 6; fixed64 start_time_unix_nano = 7; fixed64 end_time_unix_nano = 8; repeated KeyValue attributes
 * = 9; repeated Event events = 11; repeated Link links = 13; Status status = 15 }.
 */
function span(reader: ProtobufReader): OtlpSpan {
  const result: OtlpSpan = {
    traceId: "",
    spanId: "",
    traceState: "",
    parentSpanId: "",
    name: "",
    kind: 0,
    startTimeUnixNano: 0n,
    endTimeUnixNano: 0n,
    attributes: {},
    events: [],
    links: [],
    statusCode: 0,
    statusMessage: "",
  };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) result.traceId = idHex(reader.bytes(), 16);
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) result.spanId = idHex(reader.bytes(), 8);
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) result.traceState = reader.string();
    else if (field === 4 && wire === WIRE_LENGTH_DELIMITED) result.parentSpanId = idHex(reader.bytes(), 8);
    else if (field === 5 && wire === WIRE_LENGTH_DELIMITED) result.name = reader.string();
    else if (field === 6 && wire === WIRE_VARINT) result.kind = reader.varint();
    else if (field === 7 && wire === WIRE_FIXED64) result.startTimeUnixNano = reader.fixed64();
    else if (field === 8 && wire === WIRE_FIXED64) result.endTimeUnixNano = reader.fixed64();
    else if (field === 9 && wire === WIRE_LENGTH_DELIMITED) addAttribute(result.attributes, reader.message());
    else if (field === 11 && wire === WIRE_LENGTH_DELIMITED) result.events.push(spanEvent(reader.message()));
    else if (field === 13 && wire === WIRE_LENGTH_DELIMITED) result.links.push(spanLink(reader.message()));
    else if (field === 15 && wire === WIRE_LENGTH_DELIMITED) Object.assign(result, status(reader.message()));
    else reader.skip(wire);
  }
  return result;
}

/** Span.Event { fixed64 time_unix_nano = 1; string name = 2; repeated KeyValue attributes = 3 }. */
function spanEvent(reader: ProtobufReader): OtlpSpan["events"][number] {
  const event = { timeUnixNano: 0n, name: "", attributes: {} as OtelAttributes };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_FIXED64) event.timeUnixNano = reader.fixed64();
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) event.name = reader.string();
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) addAttribute(event.attributes, reader.message());
    else reader.skip(wire);
  }
  return event;
}

/** Span.Link { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; repeated KeyValue attributes = 4 }. */
function spanLink(reader: ProtobufReader): OtlpSpan["links"][number] {
  const link: OtlpSpan["links"][number] = { traceId: "", spanId: "", traceState: "", attributes: {} };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) link.traceId = idHex(reader.bytes(), 16);
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) link.spanId = idHex(reader.bytes(), 8);
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) link.traceState = reader.string();
    else if (field === 4 && wire === WIRE_LENGTH_DELIMITED) addAttribute(link.attributes, reader.message());
    else reader.skip(wire);
  }
  return link;
}

/** Status { string message = 2; StatusCode code = 3 }. */
function status(reader: ProtobufReader): { statusCode: number; statusMessage: string } {
  const result = { statusCode: 0, statusMessage: "" };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 2 && wire === WIRE_LENGTH_DELIMITED) result.statusMessage = reader.string();
    else if (field === 3 && wire === WIRE_VARINT) result.statusCode = reader.varint();
    else reader.skip(wire);
  }
  return result;
}

/** Metric's data oneof: field number → kind (exponential_histogram 10 and summary 11 are not stored). */
const METRIC_DATA_FIELDS: Record<number, OtlpMetricKind> = { 5: "gauge", 7: "sum", 9: "histogram", 10: "other", 11: "other" };

/**
 * Metric { string name = 1; string description = 2; string unit = 3; oneof data { Gauge gauge = 5; Sum sum = 7;
 * Histogram histogram = 9; ExponentialHistogram exponential_histogram = 10; Summary summary = 11 } }; Gauge, Sum and
 * Histogram { repeated *DataPoint data_points = 1; AggregationTemporality aggregation_temporality = 2; bool
 * is_monotonic = 3 (Sum) }.
 */
function metric(reader: ProtobufReader): OtlpMetric {
  const result: OtlpMetric = { name: "", description: "", unit: "", kind: "other", aggregationTemporality: 0, isMonotonic: false, points: [], otherPoints: 0 };
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 1 && wire === WIRE_LENGTH_DELIMITED) result.name = reader.string();
    else if (field === 2 && wire === WIRE_LENGTH_DELIMITED) result.description = reader.string();
    else if (field === 3 && wire === WIRE_LENGTH_DELIMITED) result.unit = reader.string();
    else if (METRIC_DATA_FIELDS[field] !== undefined && wire === WIRE_LENGTH_DELIMITED) {
      result.kind = METRIC_DATA_FIELDS[field];
      const data = reader.message();
      while (!data.atEnd()) {
        const inner = data.tag();
        if (inner.field === 1 && inner.wire === WIRE_LENGTH_DELIMITED) {
          if (result.kind === "other") {
            data.skip(inner.wire);
            result.otherPoints += 1;
          } else result.points.push(result.kind === "histogram" ? histogramPoint(data.message()) : numberPoint(data.message()));
        } else if (inner.field === 2 && inner.wire === WIRE_VARINT) result.aggregationTemporality = data.varint();
        else if (inner.field === 3 && inner.wire === WIRE_VARINT) result.isMonotonic = data.varint() !== 0;
        else data.skip(inner.wire);
      }
    } else reader.skip(wire);
  }
  return result;
}

/**
 * NumberDataPoint { fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3; double as_double = 4; sfixed64
 * as_int = 6; repeated KeyValue attributes = 7; uint32 flags = 8 }; exemplars (5) are not stored.
 */
function numberPoint(reader: ProtobufReader): OtlpMetricPoint {
  const point = emptyMetricPoint();
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 2 && wire === WIRE_FIXED64) point.startTimeUnixNano = reader.fixed64();
    else if (field === 3 && wire === WIRE_FIXED64) point.timeUnixNano = reader.fixed64();
    else if (field === 4 && wire === WIRE_FIXED64) point.value = reader.double();
    else if (field === 6 && wire === WIRE_FIXED64) point.value = Number(BigInt.asIntN(64, reader.fixed64()));
    else if (field === 7 && wire === WIRE_LENGTH_DELIMITED) addAttribute(point.attributes, reader.message());
    else if (field === 8 && wire === WIRE_VARINT) point.flags = reader.varint();
    else reader.skip(wire);
  }
  return point;
}

/**
 * HistogramDataPoint { fixed64 start_time_unix_nano = 2; fixed64 time_unix_nano = 3; fixed64 count = 4; double sum
 * = 5; repeated fixed64 bucket_counts = 6; repeated double explicit_bounds = 7; repeated KeyValue attributes = 9;
 * uint32 flags = 10; double min = 11; double max = 12 }; repeated fields packed or not; exemplars (8) not stored.
 */
function histogramPoint(reader: ProtobufReader): OtlpMetricPoint {
  const point = emptyMetricPoint();
  while (!reader.atEnd()) {
    const { field, wire } = reader.tag();
    if (field === 2 && wire === WIRE_FIXED64) point.startTimeUnixNano = reader.fixed64();
    else if (field === 3 && wire === WIRE_FIXED64) point.timeUnixNano = reader.fixed64();
    else if (field === 4 && wire === WIRE_FIXED64) point.count = Number(reader.fixed64());
    else if (field === 5 && wire === WIRE_FIXED64) point.sum = reader.double();
    else if (field === 6 && wire === WIRE_FIXED64) point.bucketCounts.push(Number(reader.fixed64()));
    else if (field === 6 && wire === WIRE_LENGTH_DELIMITED) {
      const packed = reader.message();
      while (!packed.atEnd()) point.bucketCounts.push(Number(packed.fixed64()));
    } else if (field === 7 && wire === WIRE_FIXED64) point.explicitBounds.push(reader.double());
    else if (field === 7 && wire === WIRE_LENGTH_DELIMITED) {
      const packed = reader.message();
      while (!packed.atEnd()) point.explicitBounds.push(packed.double());
    } else if (field === 9 && wire === WIRE_LENGTH_DELIMITED) addAttribute(point.attributes, reader.message());
    else if (field === 10 && wire === WIRE_VARINT) point.flags = reader.varint();
    else if (field === 11 && wire === WIRE_FIXED64) point.min = reader.double();
    else if (field === 12 && wire === WIRE_FIXED64) point.max = reader.double();
    else reader.skip(wire);
  }
  return point;
}

export { OtlpDecodeError };
