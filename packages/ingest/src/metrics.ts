/** Every ingest metric, created per app (one Registry per createIngestApp call) so tests can build many apps. */
import { REPAIR_REASONS } from "@flowmeter/shared";
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Values of the `route` label; any other path is counted as "other". */
export const METRIC_ROUTES = ["/ingest", "/v1/logs", "/v1/traces", "/healthz", "/metrics"] as const;

export interface IngestMetrics {
  registry: Registry;
  /** route: /ingest | /v1/logs | /v1/traces | /healthz | /metrics | other. status: the HTTP status sent (200, 202, 400, 401, 404, 405, 413, 415, 429, 500, 503). */
  requests: Counter<"route" | "status">;
  entriesAccepted: Counter;
  /**
   * reason: the error code. Per entry: INVALID_PARAMS (not an object, no properties, another event, nested too
   * deep, an NDJSON line that is not JSON). For every entry of a refused request: TOO_MANY_REQUESTS (rate limit),
   * UNAVAILABLE (Redis unreachable).
   */
  entriesRejected: Counter<"reason">;
  /** reason: a RepairReason (REPAIR_REASONS: truncated, entry_truncated, field_converted, invalid_utf8, lone_surrogate...); one count per reason per entry. */
  entriesRepaired: Counter<"reason">;
  /** outcome: ok | error (error includes the 1 s timeout, after which the request is spooled). */
  enqueueDuration: Histogram<"outcome">;
  /** Body size after gzip/deflate decoding, for requests whose body was read. */
  requestBodyBytes: Histogram;
  /** Accepted requests waiting in the local spool for Redis (0 when Redis takes them directly). */
  spooledRequests: Gauge;
  /** Size of the local spool file(s). */
  spoolBytes: Gauge;
  /** reason: disk_full (ENOSPC, EDQUOT) | io_error. Requests answered 503 because their spool append failed. */
  spoolWriteFailedRequests: Counter<"reason">;
  /** Spool lines dropped at replay because they were cut short: requests never answered 202 (a failed write, a crash). */
  spoolLinesDropped: Counter;
  /** OTLP records (log records, spans, data points) by signal (logs | traces | metrics) and outcome (accepted | rejected: counted in partial_success). */
  otlpRecords: Counter<"signal" | "outcome">;
}

/** A counter by `reason` with every known reason's series from the start, so increase() sees the first one after a restart. */
function reasonCounter(registry: Registry, name: string, help: string, reasons: readonly string[]): Counter<"reason"> {
  const counter = new Counter({ name, help, labelNames: ["reason"], registers: [registry] });
  for (const reason of reasons) counter.inc({ reason }, 0);
  return counter;
}

export function createIngestMetrics(): IngestMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "flowmeter_" });
  return {
    registry,
    requests: new Counter({
      name: "flowmeter_ingest_requests_total",
      help: "HTTP requests answered, by route and status",
      labelNames: ["route", "status"],
      registers: [registry],
    }),
    entriesAccepted: new Counter({
      name: "flowmeter_ingest_entries_accepted_total",
      help: "Entries accepted and enqueued (an entry repeated within one request counts each time)",
      registers: [registry],
    }),
    entriesRejected: reasonCounter(registry, "flowmeter_ingest_entries_rejected_total", "Entries not accepted, by reason (error code)", [
      "INVALID_PARAMS",
      "TOO_MANY_REQUESTS",
      "UNAVAILABLE",
    ]),
    entriesRepaired: reasonCounter(
      registry,
      "flowmeter_ingest_entries_repaired_total",
      "Entries accepted after a repair, by reason (an entry with several repairs counts once per reason)",
      REPAIR_REASONS,
    ),
    enqueueDuration: new Histogram({
      name: "flowmeter_ingest_enqueue_duration_seconds",
      help: "Time to put one request's entries on the queue",
      labelNames: ["outcome"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers: [registry],
    }),
    spooledRequests: new Gauge({
      name: "flowmeter_ingest_spooled_requests",
      help: "Accepted requests waiting in the local spool until Redis takes them",
      registers: [registry],
    }),
    spoolBytes: new Gauge({
      name: "flowmeter_ingest_spool_bytes",
      help: "Bytes in the local spool (INGEST_SPOOL_MAX_BYTES is the limit)",
      registers: [registry],
    }),
    spoolWriteFailedRequests: reasonCounter(
      registry,
      "flowmeter_ingest_spool_write_failed_requests_total",
      "Requests answered 503 because the local spool could not be written (disk_full: ENOSPC or EDQUOT), by reason",
      ["disk_full", "io_error"],
    ),
    spoolLinesDropped: new Counter({
      name: "flowmeter_ingest_spool_lines_dropped_total",
      help: "Spool lines dropped at replay because they were cut short (their requests were never answered 202)",
      registers: [registry],
    }),
    otlpRecords: new Counter({
      name: "flowmeter_ingest_otlp_records_total",
      help: "OTLP log records, spans and metric data points received, by signal and outcome (rejected: counted in partial_success)",
      labelNames: ["signal", "outcome"],
      registers: [registry],
    }),
    requestBodyBytes: new Histogram({
      name: "flowmeter_ingest_request_body_bytes",
      help: "Size of request bodies after decoding",
      buckets: [256, 1024, 4096, 16_384, 65_536, 262_144, 1_048_576, 4_194_304],
      registers: [registry],
    }),
  };
}
