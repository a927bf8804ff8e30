/**
 * Consumes ingest's otel queue (OTLP logs and spans, as rows built by ingest) into flowmeter.otel_logs and
 * flowmeter.otel_traces, each record once: insert-once.ts drops the rows whose (ServiceName, time, RecordId) is
 * already stored, so an exporter's retry, a re-sent export or a redelivered job adds nothing, and the rollups their
 * views fill count each record once.
 */
import { JOB_CATALOG, type OtelLogRow, type OtelSpanRow } from "@flowmeter/shared";
import { otelLogsTable, otelTracesTable } from "../clickhouse/tables/otel-tables.js";
import type { ConsumerDeps } from "./client-telemetry.consumer.js";
import { insertOnce, type OwnedRow } from "./insert-once.js";
import type { JobHandler } from "./queue-consumer.js";

export function otelHandler(deps: ConsumerDeps): JobHandler<"otel"> {
  const { logger } = deps;
  return {
    rowsOf: (data) => (data.logs?.length ?? 0) + (data.spans?.length ?? 0),
    producedAtMs: (data) => data.receivedAtMs,
    async flush(jobs, reason) {
      const startedAt = performance.now();
      const logs: OwnedRow<OtelLogRow>[] = [];
      const spans: OwnedRow<OtelSpanRow>[] = [];
      for (const { jobId, data } of jobs) {
        for (const row of data.logs ?? []) logs.push({ jobId, row: otelLogsTable.toRow(row) });
        for (const row of data.spans ?? []) spans.push({ jobId, row: otelTracesTable.toRow(row) });
      }
      const writtenLogs = await insertOnce(deps, otelLogsTable, logs);
      const writtenSpans = await insertOnce(deps, otelTracesTable, spans);
      logger.debug("batch written", {
        queue: JOB_CATALOG.otel.queue,
        jobs: jobs.length,
        logs: writtenLogs,
        spans: writtenSpans,
        reason,
        ms: Math.round(performance.now() - startedAt),
      });
    },
  };
}
