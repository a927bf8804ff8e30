/**
 * Consumes the runner's run-events queue into flowmeter.run_events, flowmeter.run_telemetry and flowmeter.run_logs,
 * and each run's terminal run and stage events as spans of its trace into flowmeter.otel_traces (run-trace.ts).
 */
import { JOB_CATALOG, toClickHouseTime, type OtelSpanRow } from "@flowmeter/shared";
import { otelTracesTable } from "../clickhouse/tables/otel-tables.js";
import { runEventsTable, runLogsTable, runTelemetryTable, type RunEventRow, type RunLogRow, type RunTelemetryRow } from "../clickhouse/raw-tables.js";
import type { ConsumerDeps } from "./client-telemetry.consumer.js";
import { insertOnce, type OwnedRow } from "./insert-once.js";
import type { JobHandler } from "./queue-consumer.js";
import { spanOfRunEvent } from "./run-trace.js";

export function runEventsHandler(deps: ConsumerDeps): JobHandler<"runEvents"> {
  const { logger } = deps;
  return {
    rowsOf: (data) => data.events.length + data.samples.length + (data.logs ?? []).length,
    producedAtMs: (data) => data.producedAtMs,
    async flush(jobs, reason) {
      const startedAt = performance.now();
      const events: OwnedRow<RunEventRow>[] = [];
      const samples: OwnedRow<RunTelemetryRow>[] = [];
      const logs: OwnedRow<RunLogRow>[] = [];
      const spans: OwnedRow<OtelSpanRow>[] = [];
      for (const { jobId, data } of jobs) {
        const receivedAt = toClickHouseTime(Date.now());
        for (const event of data.events) {
          events.push({ jobId, row: runEventsTable.toRow(event, receivedAt) });
          const span = spanOfRunEvent(event);
          if (span !== undefined) spans.push({ jobId, row: otelTracesTable.toRow(span) });
        }
        for (const sample of data.samples) samples.push({ jobId, row: runTelemetryTable.toRow(sample, receivedAt) });
        for (const line of data.logs ?? []) logs.push({ jobId, row: runLogsTable.toRow(line, receivedAt) });
      }
      const writtenEvents = await insertOnce(deps, runEventsTable, events);
      const writtenSamples = await insertOnce(deps, runTelemetryTable, samples);
      const writtenLines = await insertOnce(deps, runLogsTable, logs);
      const writtenSpans = await insertOnce(deps, otelTracesTable, spans);
      logger.debug("batch written", {
        queue: JOB_CATALOG.runEvents.queue,
        jobs: jobs.length,
        events: writtenEvents,
        samples: writtenSamples,
        lines: writtenLines,
        spans: writtenSpans,
        reason,
        ms: Math.round(performance.now() - startedAt),
      });
    },
  };
}
