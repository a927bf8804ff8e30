/**
 * Consumes ingest's client-telemetry queue into flowmeter.cli_invocations (and, through materialized views, the
 * rollups), and the warnings about repaired and refused entries into flowmeter.ingestion_warnings.
 */
import type { Redis } from "ioredis";
import type { ClickHouseClient } from "@clickhouse/client";
import { JOB_CATALOG, type ClientTelemetryJob, type Logger } from "@flowmeter/shared";
import { toClickHouseTime } from "../clickhouse/insert-json-rows.js";
import { cliInvocationsSink, toRow, type CliInvocationRow } from "../clickhouse/tables/cli-invocations.table.js";
import { ingestionWarningsSink, toRow as toWarningRow, type IngestionWarningRow } from "../clickhouse/tables/ingestion-warnings.table.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";
import { insertOnce, type OwnedRow } from "./insert-once.js";
import { createQueueConsumer, type QueueConsumer } from "./queue-consumer.js";

export interface ConsumerDeps {
  config: Pick<WorkerConfig, "queuePrefix" | "batch" | "concurrency" | "lockDurationMs" | "stalledIntervalMs" | "claimTtlMs" | "failpoint">;
  redis: Redis;
  clickhouse: ClickHouseClient;
  metrics: WorkerMetrics;
  logger: Logger;
}

/** Test-only fault injection: SIGKILL after the first insert, before any job is acknowledged. */
export function createFailpoint(config: ConsumerDeps["config"], logger: Logger): () => void {
  let armed = config.failpoint === "kill-after-insert";
  return () => {
    if (!armed) return;
    armed = false;
    logger.warn("failpoint kill-after-insert: killing the worker before acknowledging the batch");
    process.kill(process.pid, "SIGKILL");
  };
}

export function createClientTelemetryConsumer(deps: ConsumerDeps): QueueConsumer {
  const { config, logger } = deps;
  const afterInsert = createFailpoint(config, logger);
  return createQueueConsumer<ClientTelemetryJob>({
    queue: JOB_CATALOG.clientTelemetry.queue,
    config,
    redis: deps.redis,
    metrics: deps.metrics,
    logger,
    rowsOf: (data) => data.entries.length,
    producedAtMs: (data) => data.receivedAtMs,
    async flush(jobs, reason) {
      const startedAt = performance.now();
      const rows: OwnedRow<CliInvocationRow>[] = [];
      const warnings: OwnedRow<IngestionWarningRow>[] = [];
      for (const { jobId, data } of jobs) {
        const receivedAt = toClickHouseTime(data.receivedAtMs);
        for (const event of data.entries) rows.push({ jobId, row: toRow(event, receivedAt) });
        for (const warning of data.warnings ?? []) warnings.push({ jobId, row: toWarningRow(warning) });
      }
      if (warnings.length > 0) await insertOnce(deps, ingestionWarningsSink, warnings);
      const written = await insertOnce(deps, cliInvocationsSink, rows);
      logger.debug("batch written", { table: cliInvocationsSink.table, jobs: jobs.length, rows: written, duplicates: rows.length - written, reason, ms: Math.round(performance.now() - startedAt) });
      afterInsert();
    },
  });
}
