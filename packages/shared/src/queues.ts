/**
 * The job catalog shared by producers (ingest, runner) and consumers (worker, runner): each job kind with its queue,
 * job options, payload schema and payload type in one entry, so a producer and its consumer cannot drift apart: the
 * worker has a handler typed by each kind it consumes (a kind without one does not compile), and a job is checked
 * against its kind's schema before it is read.
 */
import { hash } from "node:crypto";
import { Ajv } from "ajv";
import type { JobsOptions } from "bullmq";
import type { JSONSchema } from "json-schema-to-ts";
import {
  HOST_SAMPLE_SCHEMA,
  RUN_EVENT_SCHEMA,
  RUN_POLICY_SCHEMA,
  STAGE_LOG_LINE_SCHEMA,
  STEP_HEARTBEAT_SCHEMA,
  type RunEventsJob,
  type RunJob,
} from "./run-schemas.js";
import type { OtelLogRow, OtelMetricGaugeRow, OtelMetricHistogramRow, OtelMetricSumRow, OtelSpanRow } from "./otel-rows.js";
import type { SchemaType } from "./schema-type.js";
import type { CliInvocationEvent } from "./telemetry.js";

/** One repaired or refused entry, a row of flowmeter.ingestion_warnings (written by the worker with the entries). */
export interface IngestionWarning {
  /** Unique per warning (UUID v7): the row's identity, so a redelivered job writes it once. */
  warning_id: string;
  received_at_ms: number;
  /** A RepairReason, or `rejected` for an entry that could not be read as a cli_invocation. */
  reason: string;
  /** insert_id, else properties.id, when the entry had one. */
  entry_id: string;
  distinct_id: string;
  /** The client's address. */
  source: string;
  /** What was changed or why the entry was refused. */
  detail: string;
  /** The start of the entry as sent: warningExcerpt(). */
  excerpt: string;
}

/** How much of an entry an ingestion warning keeps. */
export const WARNING_EXCERPT_CHARS = 1024;

/**
 * The start of an entry (or row) as JSON, at most WARNING_EXCERPT_CHARS characters (then `…`), written as
 * JSON.stringify would write it. It writes only what it keeps, iteratively: a megabyte entry costs no more than a small
 * one, and an entry nested 100,000 deep reads `[[[[…` instead of overflowing the stack. A cut never splits a surrogate
 * pair, so the excerpt is always text ClickHouse accepts.
 */
export function warningExcerpt(value: unknown): string {
  const limit = WARNING_EXCERPT_CHARS;
  let text = "";
  const stack: ExcerptFrame[] = [];
  const writeValue = (inner: unknown, inArray: boolean): void => {
    const json = scalarJson(inner);
    if (json !== undefined) text += json;
    else if (isUnwritable(inner)) text += inArray ? "null" : String(inner);
    else if (Array.isArray(inner)) {
      text += "[";
      stack.push({ close: "]", first: true, items: arrayItems(inner) });
    } else {
      text += "{";
      stack.push({ close: "}", first: true, items: objectItems(inner as object) });
    }
  };
  writeValue(jsonValueOf(value, ""), false);
  while (stack.length > 0 && text.length <= limit) {
    const frame = stack[stack.length - 1] as ExcerptFrame;
    const next = frame.items.next();
    if (next.done === true) {
      text += frame.close;
      stack.pop();
      continue;
    }
    if (!frame.first) text += ",";
    frame.first = false;
    const [key, inner] = next.value;
    if (key !== undefined) text += `${JSON.stringify(cutText(key))}:`;
    writeValue(inner, key === undefined);
  }
  return text.length > limit ? `${cutText(text)}…` : text;
}

interface ExcerptFrame {
  close: "]" | "}";
  first: boolean;
  /** The elements (key undefined) or the properties JSON.stringify would write, each already through toJSON. */
  items: Iterator<[string | undefined, unknown]>;
}

/** The first WARNING_EXCERPT_CHARS characters of `text`, one fewer when the cut would split a surrogate pair. */
function cutText(text: string): string {
  if (text.length <= WARNING_EXCERPT_CHARS) return text;
  const end = /[\uD800-\uDBFF]/.test(text.charAt(WARNING_EXCERPT_CHARS - 1)) ? WARNING_EXCERPT_CHARS - 1 : WARNING_EXCERPT_CHARS;
  return text.slice(0, end);
}

/** What JSON.stringify serializes in place of `value`: its toJSON(key) when it has one (a Date). */
function jsonValueOf(value: unknown, key: string): unknown {
  const toJSON = typeof value === "object" && value !== null ? (value as { toJSON?: unknown }).toJSON : undefined;
  return typeof toJSON === "function" ? (toJSON as (key: string) => unknown).call(value, key) : value;
}

/** undefined, a function or a symbol: JSON.stringify skips such a property and writes null for such an element. */
function isUnwritable(value: unknown): boolean {
  return value === undefined || typeof value === "function" || typeof value === "symbol";
}

/** The JSON of a string (cut to the excerpt's size, then `…`), number, boolean, bigint or null; undefined for the rest. */
function scalarJson(value: unknown): string | undefined {
  if (typeof value === "string") return JSON.stringify(value.length > WARNING_EXCERPT_CHARS ? `${cutText(value)}…` : value);
  if (typeof value === "number") return Number.isFinite(value) ? String(value) : "null";
  if (typeof value === "boolean" || typeof value === "bigint") return String(value);
  return value === null ? "null" : undefined;
}

function* arrayItems(array: readonly unknown[]): Iterator<[undefined, unknown]> {
  for (let index = 0; index < array.length; index += 1) yield [undefined, jsonValueOf(array[index], String(index))];
}

function* objectItems(object: object): Iterator<[string, unknown]> {
  for (const key in object) {
    if (!Object.hasOwn(object, key)) continue;
    const inner = jsonValueOf((object as Record<string, unknown>)[key], key);
    if (!isUnwritable(inner)) yield [key, inner];
  }
}

/** One accepted ingest request (or several, group-committed): valid entries, so the worker can batch many requests per insert. */
export interface ClientTelemetryJob {
  /**
   * The entries' rows as ingest serialized them once: JSONCompactEachRow lines (rowLine(), values in
   * CLI_INVOCATION_COLUMNS order) joined by "\n", which the worker concatenates into its insert without parsing.
   */
  rows?: string;
  /** insert_id of each line of `rows`, in order. */
  ids?: string[];
  /** The entries themselves: jobs of older ingests (and their spools) carry these instead of rows. */
  entries?: CliInvocationEvent[];
  /** When ingest accepted the request (ms since epoch); the worker's queue-lag metric and the bench use it. */
  receivedAtMs: number;
  /** Repaired and refused entries of the requests in this job (absent in jobs of older ingests). */
  warnings?: IngestionWarning[];
}

/**
 * OTLP records ingest received (POST /v1/logs, /v1/traces, /v1/metrics) as rows of otel_logs, otel_traces and
 * otel_metrics_sum, _gauge and _histogram (otel-rows.ts), each with its RecordId, by which the worker writes it once.
 */
export interface OtelJob {
  logs?: OtelLogRow[];
  spans?: OtelSpanRow[];
  metricSums?: OtelMetricSumRow[];
  metricGauges?: OtelMetricGaugeRow[];
  metricHistograms?: OtelMetricHistogramRow[];
  /** When ingest accepted the request (ms since epoch): the worker's queue-lag metric. */
  receivedAtMs: number;
}

/**
 * The client-telemetry stream is cut into FLOWMETER_PARTITIONS partitions by entry id, one queue each, so that every
 * copy of an entry (a client's re-send, a redelivered job) goes to one partition, which one worker at a time writes
 * (the worker's partition lease): workers write different partitions in parallel, and none needs a lock over the table.
 * The count is fixed for a queue prefix (the worker refuses to start on another); partition 0's queue keeps the
 * single-queue name.
 */
export const MAX_PARTITIONS = 64;

/** The Redis key holding the partition count the queues under `queuePrefix` were made with (platform's partitionCountProblem). */
export function partitionCountKey(queuePrefix: string): string {
  return `${queuePrefix}:partitions`;
}

/** The id's hash the worker's exactly-once check keys on (cli_invocation_ids.id_hash is its lowercase hex). */
export function entryIdHash(id: string): Buffer {
  return hash("md5", id, "buffer");
}

/** The partition of an entry whose entryIdHash() is `idHash`. */
export function partitionOfHash(idHash: Uint8Array, partitions: number): number {
  if (partitions === 1) return 0;
  return new DataView(idHash.buffer, idHash.byteOffset, idHash.byteLength).getUint32(0) % partitions;
}

/** The partition of an entry with this entryId(). */
export function partitionOf(id: string, partitions: number): number {
  return partitions === 1 ? 0 : partitionOfHash(entryIdHash(id), partitions);
}

/** The longest wait between two attempts of a telemetry job. */
export const RETRY_DELAY_CAP_MS = 300_000;

/**
 * The backoff of telemetry jobs (BullMQ custom strategy "capped"): 1 s doubling, at most `capMs` (the worker's
 * WORKER_RETRY_MAX_DELAY_MS, default RETRY_DELAY_CAP_MS). The worker registers it; `attemptsMade` counts from 1.
 */
export function retryDelayMs(attemptsMade: number, capMs: number = RETRY_DELAY_CAP_MS): number {
  return Math.min(capMs, 1000 * 2 ** Math.min(30, Math.max(0, attemptsMade - 1)));
}

/**
 * Telemetry is never given up because ClickHouse was away: a job retries with capped backoff (5 minutes at most)
 * for as long as it fails, about 9 years of attempts. What a row itself causes does not fail its job: the worker
 * writes the rows of a refused job one by one and dead-letters the refused row (client-telemetry.consumer.ts).
 * A job can still reach the failed set (a worker's own bug, a payload it cannot read); `flowmeter failed` lists
 * and re-drives those.
 */
const DURABLE_JOB_OPTIONS: JobsOptions = {
  attempts: 1_000_000,
  backoff: { type: "capped" },
  removeOnComplete: true,
  removeOnFail: false,
};

/** What every JOB_CATALOG entry says about its queue. */
interface JobDefinition {
  /** The queue's name (a partitioned kind: partition 0's; queueOf() names the others). */
  queue: string;
  jobName: string;
  options: JobsOptions;
  /**
   * The shape of the payload, checked by the consumer before it reads a job (payloadProblem) and by submitRun before
   * it queues a run: a job of another shape (a producer's bug, a hand-written job) can never be processed, so it goes
   * straight to the failed set, where `flowmeter failed` shows it, instead of retrying for years. The entries
   * themselves are checked by ingest (CliInvocationEventSchema), the events and samples by the runner that builds
   * them, a run's workflow by validateWorkflow.
   */
  schema: JSONSchema & object;
  /** Who consumes the queue: the worker (into ClickHouse; `flowmeter failed` lists and re-drives these) or a runner. */
  consumer: "worker" | "runner";
  /** One queue per partition of the stream (FLOWMETER_PARTITIONS), not one queue. */
  partitioned: boolean;
}

/** Type-only: the TypeScript payload a catalog entry's jobs carry (no such property exists at run time). */
declare const PAYLOAD: unique symbol;

/**
 * A catalog entry whose jobs carry `Payload`. It compiles only when every `Payload` has the schema's shape (as far
 * as SchemaType can tell: the fields the schema names, with their types), so the type and the schema cannot drift.
 */
function defineJob<Payload>() {
  return <const Definition extends JobDefinition>(
    definition: Definition & (Payload extends SchemaType<Definition["schema"]> ? unknown : { payloadDoesNotMatchSchema: SchemaType<Definition["schema"]> }),
  ): Definition & { readonly [PAYLOAD]?: Payload } => definition;
}

/** A metric data point row of the otel job (otel_metrics_sum, _gauge, _histogram). */
const METRIC_POINT_SCHEMA = { type: "object", required: ["TimeUnix", "MetricName", "ServiceName", "RecordId"] } as const;

export const JOB_CATALOG = {
  clientTelemetry: defineJob<ClientTelemetryJob>()({
    queue: "client-telemetry",
    jobName: "cli_invocations",
    options: DURABLE_JOB_OPTIONS,
    consumer: "worker",
    partitioned: true,
    schema: {
      type: "object",
      required: ["receivedAtMs"],
      // draft-07 (ajv's default): its `dependentRequired` would be ignored
      dependencies: { rows: ["ids"] },
      properties: {
        rows: { type: "string" },
        ids: { type: "array", items: { type: "string" } },
        entries: { type: "array", items: { type: "object" } },
        receivedAtMs: { type: "number" },
        warnings: { type: "array", items: { type: "object", required: ["warning_id", "received_at_ms", "reason"] } },
      },
    },
  }),
  /** Runner lifecycle events and telemetry samples, many per job (one job per publisher flush). Consumers dedupe by event_id / (attempt_id, seq). */
  runEvents: defineJob<RunEventsJob>()({
    queue: "run-events",
    jobName: "run_events",
    options: DURABLE_JOB_OPTIONS,
    consumer: "worker",
    partitioned: false,
    schema: {
      type: "object",
      required: ["events", "samples", "producedAtMs"],
      properties: {
        events: { type: "array", items: RUN_EVENT_SCHEMA },
        samples: { type: "array", items: { oneOf: [HOST_SAMPLE_SCHEMA, STEP_HEARTBEAT_SCHEMA] } },
        logs: { type: "array", items: STAGE_LOG_LINE_SCHEMA },
        producedAtMs: { type: "number" },
      },
    },
  }),
  /** OTLP logs, spans and metric data points from ingest's /v1/logs, /v1/traces and /v1/metrics, many per job; the worker writes each record once by RecordId. */
  otel: defineJob<OtelJob>()({
    queue: "otel",
    jobName: "otel_records",
    options: DURABLE_JOB_OPTIONS,
    consumer: "worker",
    partitioned: false,
    schema: {
      type: "object",
      required: ["receivedAtMs"],
      properties: {
        logs: { type: "array", items: { type: "object", required: ["Timestamp", "TimestampTime", "ServiceName", "RecordId"] } },
        spans: { type: "array", items: { type: "object", required: ["Timestamp", "SpanName", "ServiceName", "RecordId"] } },
        metricSums: { type: "array", items: METRIC_POINT_SCHEMA },
        metricGauges: { type: "array", items: METRIC_POINT_SCHEMA },
        metricHistograms: { type: "array", items: METRIC_POINT_SCHEMA },
        receivedAtMs: { type: "number" },
      },
    },
  }),
  /** Submitted runs; a runner's RunConsumer executes each. A failed run is a result, not a job failure, so no retries. Job id = run_id. */
  runs: defineJob<RunJob>()({
    queue: "runs",
    jobName: "run",
    options: { attempts: 1, removeOnComplete: { age: 86_400, count: 10_000 }, removeOnFail: { age: 7 * 86_400 } },
    consumer: "runner",
    partitioned: false,
    schema: {
      type: "object",
      required: ["run_id", "workflow", "submittedAtMs"],
      properties: {
        run_id: { type: "string", minLength: 1 },
        workflow: { type: "object" },
        concurrency: { type: "integer" },
        policy: RUN_POLICY_SCHEMA,
        submittedAtMs: { type: "number" },
      },
    },
  }),
} as const;

type JobCatalog = typeof JOB_CATALOG;
/** A JOB_CATALOG key: the kind of a job, which says its queue, options, payload schema and payload type. */
export type JobKind = keyof JobCatalog;
/** The payload of a job of this kind. */
export type JobPayload<Kind extends JobKind> = NonNullable<JobCatalog[Kind][typeof PAYLOAD]>;
/** The kinds the worker consumes: it must have a handler for each (consumers/worker-handlers.ts). */
export type WorkerJobKind = { [Kind in JobKind]: JobCatalog[Kind]["consumer"] extends "worker" ? Kind : never }[JobKind];
/** Those of them with one queue per partition. */
export type PartitionedJobKind = { [Kind in JobKind]: JobCatalog[Kind]["partitioned"] extends true ? Kind : never }[JobKind];

export const JOB_KINDS = Object.keys(JOB_CATALOG) as JobKind[];

function isJobKind(kind: unknown): kind is JobKind {
  return typeof kind === "string" && Object.hasOwn(JOB_CATALOG, kind);
}

/** The queue of a job kind; for a partitioned kind, that of `partition` (partition 0's keeps the single-queue name). */
export function queueOf(kind: JobKind, partition = 0): string {
  const { queue } = JOB_CATALOG[kind];
  return partition === 0 ? queue : `${queue}-${partition}`;
}

/** The queue of one partition of the client-telemetry stream. */
export function clientTelemetryQueue(partition: number): string {
  return queueOf("clientTelemetry", partition);
}

/** Every queue of the kinds `consumer` consumes, the partitioned ones for `partitions` partitions. */
export function queuesConsumedBy(consumer: JobDefinition["consumer"], partitions: number): string[] {
  return JOB_KINDS.filter((kind) => JOB_CATALOG[kind].consumer === consumer).flatMap((kind) =>
    JOB_CATALOG[kind].partitioned ? Array.from({ length: partitions }, (_, partition) => queueOf(kind, partition)) : [queueOf(kind)],
  );
}

/** The kind of the jobs of a queue named `queue` (a partition's queue included), or undefined for a queue not in the catalog. */
export function kindOfQueue(queue: string): JobKind | undefined {
  for (const kind of JOB_KINDS) {
    const { queue: name, partitioned } = JOB_CATALOG[kind];
    if (queue === name) return kind;
    const partition = partitioned && queue.startsWith(`${name}-`) ? queue.slice(name.length + 1) : "";
    if (/^[1-9][0-9]*$/.test(partition) && Number(partition) < MAX_PARTITIONS) return kind;
  }
  return undefined;
}

const payloadAjv = new Ajv({ allErrors: false, strict: false });
const payloadValidators = new Map(JOB_KINDS.map((kind) => [kind, payloadAjv.compile(JOB_CATALOG[kind].schema)]));

/**
 * What is wrong with a job's payload, or undefined when it has the shape jobs of `kind` (a JOB_CATALOG key) carry.
 * A kind the catalog does not have (a caller's cast) is refused, never checked against another kind's schema.
 */
export function payloadProblem(kind: JobKind, data: unknown): string | undefined {
  const validate = isJobKind(kind) ? payloadValidators.get(kind) : undefined;
  if (validate === undefined) return `${String(kind)} is not a job kind of the catalog (${JOB_KINDS.join(", ")})`;
  if (validate(data)) return undefined;
  const [error] = validate.errors ?? [];
  return `${kind} payload${error?.instancePath ?? ""} ${error?.message ?? "is malformed"}`;
}
