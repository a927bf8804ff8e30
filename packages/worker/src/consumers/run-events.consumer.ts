/** Consumes the runner's run-events queue into flowmeter.run_events, flowmeter.run_telemetry and flowmeter.run_logs. */
import { JOB_CATALOG, type RunEventsJob, toClickHouseTime } from "@flowmeter/shared";
import {
  runEventsTable,
  runLogsTable,
  runTelemetryTable,
  type RunEventRow,
  type RunLogRow,
  type RunTelemetryRow,
} from "../clickhouse/raw-tables.js";
import type { ConsumerDeps } from "./client-telemetry.consumer.js";
import { insertOnce, type OwnedRow } from "./insert-once.js";
import { createQueueConsumer, type QueueConsumer } from "./queue-consumer.js";

export function createRunEventsConsumer(deps: ConsumerDeps): QueueConsumer {
  const { config, logger } = deps;
  return createQueueConsumer<RunEventsJob>({
    queue: JOB_CATALOG.runEvents.queue,
    payload: "runEvents",
    config,
    redis: deps.redis,
    metrics: deps.metrics,
    logger,
    rowsOf: (data) => data.events.length + data.samples.length + (data.logs ?? []).length,
    producedAtMs: (data) => data.producedAtMs,
    async flush(jobs, reason) {
      const startedAt = performance.now();
      const events: OwnedRow<RunEventRow>[] = [];
      const samples: OwnedRow<RunTelemetryRow>[] = [];
      const logs: OwnedRow<RunLogRow>[] = [];
      for (const { jobId, data } of jobs) {
        const receivedAt = toClickHouseTime(Date.now());
        for (const event of data.events) events.push({ jobId, row: runEventsTable.toRow(event, receivedAt) });
        for (const sample of data.samples) samples.push({ jobId, row: runTelemetryTable.toRow(sample, receivedAt) });
        for (const line of data.logs ?? []) logs.push({ jobId, row: runLogsTable.toRow(line, receivedAt) });
      }
      const writtenEvents = await insertOnce(deps, runEventsTable, events);
      const writtenSamples = await insertOnce(deps, runTelemetryTable, samples);
      const writtenLines = await insertOnce(deps, runLogsTable, logs);
      logger.debug("batch written", {
        queue: JOB_CATALOG.runEvents.queue,
        jobs: jobs.length,
        events: writtenEvents,
        samples: writtenSamples,
        lines: writtenLines,
        reason,
        ms: Math.round(performance.now() - startedAt),
      });
    },
  });
}
