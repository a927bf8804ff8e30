/**
 * OTLP requests as ingest reads them, whatever their encoding (protobuf: decode-protobuf.ts, JSON: decode-json.ts):
 * attribute and body values already turned into the text the Collector's ClickHouse exporter stores (pdata's
 * AsString: numbers in decimal, bytes in base64, arrays and maps as JSON), ids as lowercase hex.
 */
import type { OtelAttributes } from "@flowmeter/shared";

export interface OtlpResource {
  attributes: OtelAttributes;
  schemaUrl: string;
}

export interface OtlpScope {
  name: string;
  version: string;
  attributes: OtelAttributes;
  schemaUrl: string;
}

/** The records of one (resource, scope) pair. */
export interface OtlpScopeBatch<Record> {
  resource: OtlpResource;
  scope: OtlpScope;
  records: Record[];
}

export interface OtlpLogRecord {
  timeUnixNano: bigint;
  observedTimeUnixNano: bigint;
  severityNumber: number;
  severityText: string;
  body: string;
  attributes: OtelAttributes;
  flags: number;
  /** Hex; "" when absent or all zero. `undefined` when the id has the wrong length (the record is refused). */
  traceId: string | undefined;
  spanId: string | undefined;
  eventName: string;
}

export interface OtlpSpanEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: OtelAttributes;
}

export interface OtlpSpanLink {
  traceId: string | undefined;
  spanId: string | undefined;
  traceState: string;
  attributes: OtelAttributes;
}

export interface OtlpSpan {
  traceId: string | undefined;
  spanId: string | undefined;
  traceState: string;
  parentSpanId: string | undefined;
  name: string;
  kind: number;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  attributes: OtelAttributes;
  events: OtlpSpanEvent[];
  links: OtlpSpanLink[];
  statusCode: number;
  statusMessage: string;
}

/** A decoded AnyValue before it becomes text. */
export type RawValue = string | boolean | bigint | number | Uint8Array | RawValue[] | { [key: string]: RawValue } | null;

/** pdata's AsString: what the exporter stores for an attribute or a body. */
export function valueText(value: RawValue): string {
  if (typeof value === "string") return value;
  if (value === null) return "";
  if (typeof value === "object" && !(value instanceof Uint8Array)) return JSON.stringify(value, jsonOfRaw);
  return scalarText(value);
}

function scalarText(value: boolean | bigint | number | Uint8Array): string {
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  return String(value);
}

function jsonOfRaw(_key: string, value: unknown): unknown {
  if (typeof value === "bigint") return Number(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString("base64");
  if (typeof value === "number" && !Number.isFinite(value)) return String(value);
  return value;
}

/** Lowercase hex of an id of `length` bytes; "" for none or all zeros; undefined for another length. */
export function idHex(bytes: Uint8Array, length: number): string | undefined {
  if (bytes.length === 0) return "";
  if (bytes.length !== length) return undefined;
  return bytes.every((byte) => byte === 0) ? "" : Buffer.from(bytes).toString("hex");
}

/** One data point of a gauge, a sum or a histogram (the fields of the other kinds stay at their zero values). */
export interface OtlpMetricPoint {
  attributes: OtelAttributes;
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  flags: number;
  /** A gauge's or a sum's value (as_double, or as_int as a number). */
  value: number;
  count: number;
  sum: number;
  bucketCounts: number[];
  explicitBounds: number[];
  min: number;
  max: number;
}

/** The metric kinds stored; "other" (exponential histogram, summary, none) is counted as refused. */
export type OtlpMetricKind = "gauge" | "sum" | "histogram" | "other";

export interface OtlpMetric {
  name: string;
  description: string;
  unit: string;
  kind: OtlpMetricKind;
  /** 0 unspecified, 1 delta, 2 cumulative. */
  aggregationTemporality: number;
  isMonotonic: boolean;
  points: OtlpMetricPoint[];
  /** Data points of a kind not stored. */
  otherPoints: number;
}

export function emptyMetricPoint(): OtlpMetricPoint {
  return {
    attributes: {},
    startTimeUnixNano: 0n,
    timeUnixNano: 0n,
    flags: 0,
    value: 0,
    count: 0,
    sum: 0,
    bucketCounts: [],
    explicitBounds: [],
    min: 0,
    max: 0,
  };
}
