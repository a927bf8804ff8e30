/**
 * OTLP/HTTP JSON requests (the protobuf JSON mapping with OTLP's differences: trace and span ids in hex, enums as
 * integers, int64 values as numbers or decimal strings, lowerCamelCase keys) read into otlp-model.ts. Unknown fields
 * are ignored; a field of the wrong type reads as absent. A body that is not a JSON object throws OtlpDecodeError.
 */
import type { OtelAttributes } from "@flowmeter/shared";
import type { OtlpLogRecord, OtlpMetric, OtlpMetricPoint, OtlpResource, OtlpScope, OtlpScopeBatch, OtlpSpan, RawValue } from "./otlp-model.js";
import { emptyMetricPoint, valueText } from "./otlp-model.js";
import { OtlpDecodeError } from "./protobuf-reader.js";

type Json = Record<string, unknown>;

export function decodeLogsJson(body: Buffer): OtlpScopeBatch<OtlpLogRecord>[] {
  return decodeRequest(body, "resourceLogs", "scopeLogs", "logRecords", logRecord);
}

export function decodeTracesJson(body: Buffer): OtlpScopeBatch<OtlpSpan>[] {
  return decodeRequest(body, "resourceSpans", "scopeSpans", "spans", span);
}

export function decodeMetricsJson(body: Buffer): OtlpScopeBatch<OtlpMetric>[] {
  return decodeRequest(body, "resourceMetrics", "scopeMetrics", "metrics", metric);
}

function decodeRequest<Record>(
  body: Buffer,
  resourcesKey: string,
  scopesKey: string,
  recordsKey: string,
  readRecord: (json: Json) => Record,
): OtlpScopeBatch<Record>[] {
  let request: unknown;
  try {
    request = JSON.parse(body.toString("utf8"));
  } catch {
    throw new OtlpDecodeError("request body is not valid JSON");
  }
  if (!isObject(request)) throw new OtlpDecodeError("request body is not a JSON object");
  const batches: OtlpScopeBatch<Record>[] = [];
  for (const resourceJson of objects(request[resourcesKey])) {
    const resourceFields = isObject(resourceJson.resource) ? resourceJson.resource : {};
    const resource: OtlpResource = { attributes: attributes(resourceFields.attributes), schemaUrl: text(resourceJson.schemaUrl) };
    for (const scopeJson of objects(resourceJson[scopesKey])) {
      const scopeFields = isObject(scopeJson.scope) ? scopeJson.scope : {};
      const scope: OtlpScope = {
        name: text(scopeFields.name),
        version: text(scopeFields.version),
        attributes: attributes(scopeFields.attributes),
        schemaUrl: text(scopeJson.schemaUrl),
      };
      batches.push({ resource, scope, records: objects(scopeJson[recordsKey]).map(readRecord) });
    }
  }
  return batches;
}

function logRecord(json: Json): OtlpLogRecord {
  return {
    timeUnixNano: int64(json.timeUnixNano),
    observedTimeUnixNano: int64(json.observedTimeUnixNano),
    severityNumber: Number(int64(json.severityNumber)),
    severityText: text(json.severityText),
    body: valueText(anyValue(json.body)),
    attributes: attributes(json.attributes),
    flags: Number(BigInt.asUintN(32, int64(json.flags))),
    traceId: hexId(json.traceId, 16),
    spanId: hexId(json.spanId, 8),
    eventName: text(json.eventName),
  };
}

function span(json: Json): OtlpSpan {
  const status = isObject(json.status) ? json.status : {};
  return {
    traceId: hexId(json.traceId, 16),
    spanId: hexId(json.spanId, 8),
    traceState: text(json.traceState),
    parentSpanId: hexId(json.parentSpanId, 8),
    name: text(json.name),
    kind: Number(int64(json.kind)),
    startTimeUnixNano: int64(json.startTimeUnixNano),
    endTimeUnixNano: int64(json.endTimeUnixNano),
    attributes: attributes(json.attributes),
    events: objects(json.events).map((event) => ({
      timeUnixNano: int64(event.timeUnixNano),
      name: text(event.name),
      attributes: attributes(event.attributes),
    })),
    links: objects(json.links).map((link) => ({
      traceId: hexId(link.traceId, 16),
      spanId: hexId(link.spanId, 8),
      traceState: text(link.traceState),
      attributes: attributes(link.attributes),
    })),
    statusCode: Number(int64(status.code)),
    statusMessage: text(status.message),
  };
}

function metric(json: Json): OtlpMetric {
  const result: OtlpMetric = {
    name: text(json.name),
    description: text(json.description),
    unit: text(json.unit),
    kind: "other",
    aggregationTemporality: 0,
    isMonotonic: false,
    points: [],
    otherPoints: 0,
  };
  const data = [json.gauge, json.sum, json.histogram].find(isObject);
  if (data === undefined) {
    for (const other of [json.exponentialHistogram, json.summary]) if (isObject(other)) result.otherPoints += objects(other.dataPoints).length;
    return result;
  }
  result.kind = data === json.gauge ? "gauge" : data === json.sum ? "sum" : "histogram";
  result.aggregationTemporality = Number(int64(data.aggregationTemporality));
  result.isMonotonic = data.isMonotonic === true;
  result.points = objects(data.dataPoints).map((point) => metricPoint(point));
  return result;
}

function metricPoint(json: Json): OtlpMetricPoint {
  const point = emptyMetricPoint();
  point.attributes = attributes(json.attributes);
  point.startTimeUnixNano = int64(json.startTimeUnixNano);
  point.timeUnixNano = int64(json.timeUnixNano);
  point.flags = Number(BigInt.asUintN(32, int64(json.flags)));
  point.value = json.asDouble !== undefined ? double(json.asDouble) : Number(int64(json.asInt));
  point.count = Number(int64(json.count));
  point.sum = double(json.sum);
  point.bucketCounts = Array.isArray(json.bucketCounts) ? json.bucketCounts.map((count) => Number(int64(count))) : [];
  point.explicitBounds = Array.isArray(json.explicitBounds) ? json.explicitBounds.map(double) : [];
  point.min = double(json.min);
  point.max = double(json.max);
  return point;
}

/** A double sent as a number or as "NaN", "Infinity", "-Infinity" or decimal text; 0 when absent. */
function double(value: unknown): number {
  if (typeof value === "number") return value;
  if (typeof value === "string" && value !== "") return Number(value);
  return 0;
}

function isObject(value: unknown): value is Json {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function objects(value: unknown): Json[] {
  return Array.isArray(value) ? value.filter(isObject) : [];
}

function text(value: unknown): string {
  return typeof value === "string" ? value : "";
}

const DECIMAL = /^-?\d{1,20}$/;

/** An int64 sent as a number or a decimal string; 0 when absent or unreadable. */
function int64(value: unknown): bigint {
  if (typeof value === "number" && Number.isFinite(value)) return BigInt(Math.trunc(value));
  if (typeof value === "string" && DECIMAL.test(value)) return BigInt(value);
  return 0n;
}

const HEX = /^[0-9a-fA-F]*$/;

/** Lowercase hex of an id of `length` bytes; "" for none or all zeros; undefined for another length or non-hex text. */
function hexId(value: unknown, length: number): string | undefined {
  if (value === undefined || value === null || value === "") return "";
  if (typeof value !== "string" || value.length !== length * 2 || !HEX.test(value)) return undefined;
  return /^0+$/.test(value) ? "" : value.toLowerCase();
}

function attributes(value: unknown): OtelAttributes {
  const result: OtelAttributes = {};
  for (const keyValue of objects(value)) result[text(keyValue.key)] = valueText(anyValue(keyValue.value));
  return result;
}

function anyValue(value: unknown): RawValue {
  if (!isObject(value)) return null;
  if (typeof value.stringValue === "string") return value.stringValue;
  if (typeof value.boolValue === "boolean") return value.boolValue;
  if (value.intValue !== undefined) return int64(value.intValue);
  if (typeof value.doubleValue === "number") return value.doubleValue;
  if (typeof value.doubleValue === "string" && value.doubleValue !== "") return Number(value.doubleValue);
  if (isObject(value.arrayValue)) return objects(value.arrayValue.values).map(anyValue);
  if (isObject(value.kvlistValue)) {
    const list: { [key: string]: RawValue } = {};
    for (const keyValue of objects(value.kvlistValue.values)) list[text(keyValue.key)] = anyValue(keyValue.value);
    return list;
  }
  if (typeof value.bytesValue === "string") return Buffer.from(value.bytesValue, "base64");
  return null;
}
