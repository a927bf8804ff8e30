/**
 * Consumes one partition of ingest's client-telemetry stream (its queue) into flowmeter.cli_invocations (and, through
 * materialized views, the rollups) with the partition's writer, and the warnings about repaired and refused entries
 * into flowmeter.ingestion_warnings.
 */
import type { Redis } from "ioredis";
import { errorMessage } from "@flowmeter/platform";
import { CLI_INVOCATION_COLUMNS, entryId, rowLine, toClickHouseTime, warningExcerpt, type CliInvocationEvent } from "@flowmeter/shared";
import { isRowRefusal } from "../clickhouse/row-refusal.js";
import { cliInvocationsTable, ingestionWarningsTable, type IngestionWarningRow } from "../clickhouse/raw-tables.js";
import type { PartitionWriter, RowLine } from "./partition-writer.js";
import type { WorkerConfig } from "../config.js";
import type { WorkerMetrics } from "../metrics.js";
import { insertOnce, type InsertOnceDeps, type OwnedRow } from "./insert-once.js";
import type { JobHandler } from "./queue-consumer.js";

export interface ConsumerDeps extends InsertOnceDeps {
  config: Pick<WorkerConfig, "queuePrefix" | "batch" | "concurrency" | "lockDurationMs" | "stalledIntervalMs" | "retryMaxDelayMs">;
  redis: Redis;
  metrics: WorkerMetrics;
}

/** The handler of one partition's jobs, written with the partition's writer. */
export function clientTelemetryHandler(deps: ConsumerDeps, partitionWriter: PartitionWriter): JobHandler<"clientTelemetry"> {
  const { logger } = deps;
  return {
    rowsOf: (data) => data.ids?.length ?? data.entries?.length ?? 0,
    check: (data) =>
      data.rows !== undefined && rowLinesOf(data.rows).length !== (data.ids?.length ?? -1)
        ? "clientTelemetry payload: rows and ids differ in count"
        : undefined,
    producedAtMs: (data) => data.receivedAtMs,
    async flush(jobs, reason) {
      const startedAt = performance.now();
      const rows: OwnedRow<RowLine>[] = [];
      const warnings: OwnedRow<IngestionWarningRow>[] = [];
      const unreadable: OwnedRow<IngestionWarningRow>[] = [];
      for (const { jobId, data } of jobs) {
        // Ingest serialized each entry's row once (rowLine); jobs of older ingests carry the entries.
        if (data.rows !== undefined) {
          const ids = data.ids ?? [];
          rowLinesOf(data.rows).forEach((line, index) => rows.push({ jobId, row: { insertId: ids[index] ?? "", line } }));
        }
        const receivedAt = toClickHouseTime(data.receivedAtMs);
        for (const event of data.entries ?? []) {
          try {
            rows.push({ jobId, row: { insertId: entryId(event), line: rowLine(event, receivedAt) } });
          } catch (error) {
            unreadable.push({ jobId, row: deadLetter(data.receivedAtMs, entryIdOf(event), event, error) });
          }
        }
        for (const warning of data.warnings ?? []) warnings.push({ jobId, row: ingestionWarningsTable.toRow(warning) });
      }
      const [single] = jobs;
      if (warnings.length + unreadable.length > 0) await insertOnce(deps, ingestionWarningsTable, [...warnings, ...unreadable]);
      let written: number;
      try {
        written = await partitionWriter.write(rows.map(({ row }) => row));
      } catch (error) {
        // Only a row's own fault is worth looking for row by row; anything else (ClickHouse away, overloaded) retries.
        // A batch of several jobs is retried job by job by the queue consumer; a job alone, row by row.
        if (!isRowRefusal(error) || jobs.length > 1 || single === undefined) throw error;
        written = await writeRowsAlone(single.data.receivedAtMs, rows, error);
      }
      logger.debug("batch written", {
        table: cliInvocationsTable.name,
        jobs: jobs.length,
        rows: written,
        duplicates: rows.length - written,
        reason,
        ms: Math.round(performance.now() - startedAt),
      });
    },
  };

  /**
   * The rows of one refused job, each on its own: a row ClickHouse refuses alone goes to ingestion_warnings as a
   * dead letter (reason `dead_letter`, with the error and the row) and the rest are written, so the job completes.
   * A row is set aside only when ClickHouse refuses it for what it holds (isRowRefusal); any other error is not a
   * row's trouble: it is thrown and the job retried.
   */
  async function writeRowsAlone(receivedAtMs: number, rows: OwnedRow<RowLine>[], batchError: unknown): Promise<number> {
    logger.warn("a job ClickHouse refused; writing its rows one by one", { rows: rows.length, error: errorMessage(batchError) });
    const deadLetters: OwnedRow<IngestionWarningRow>[] = [];
    let written = 0;
    for (const owned of rows) {
      try {
        written += await partitionWriter.write([owned.row]);
      } catch (error) {
        if (!isRowRefusal(error)) throw error;
        deadLetters.push({ jobId: owned.jobId, row: deadLetter(receivedAtMs, owned.row.insertId, rowOf(owned.row.line), error) });
      }
    }
    if (deadLetters.length > 0) {
      await insertOnce(deps, ingestionWarningsTable, deadLetters);
      deps.metrics.deadLetters.inc({ table: cliInvocationsTable.label }, deadLetters.length);
      logger.error("rows ClickHouse refuses were written to flowmeter.ingestion_warnings as dead letters", {
        rows: deadLetters.length,
        error: deadLetters[0]?.row.detail,
      });
    }
    return written;
  }
}

/** The lines of a job's `rows` (none for an empty string). */
function rowLinesOf(rows: string): string[] {
  return rows === "" ? [] : rows.split("\n");
}

/** A row line's values by column, for a dead letter's excerpt. */
function rowOf(line: string): unknown {
  try {
    const values = JSON.parse(line) as unknown[];
    return Object.fromEntries(CLI_INVOCATION_COLUMNS.map((column, index) => [column, values[index]]));
  } catch {
    return line;
  }
}

function entryIdOf(event: CliInvocationEvent): string {
  try {
    return entryId(event);
  } catch {
    return "";
  }
}

/** A row ClickHouse refuses every time, kept where an operator finds it; its id makes a retried dead letter land once. */
function deadLetter(receivedAtMs: number, id: string, content: unknown, error: unknown): IngestionWarningRow {
  return {
    received_at: toClickHouseTime(receivedAtMs),
    warning_id: `dead-letter-${id}`,
    reason: "dead_letter",
    entry_id: id,
    distinct_id: typeof (content as { distinct_id?: unknown })?.distinct_id === "string" ? String((content as { distinct_id: string }).distinct_id) : "",
    source: "worker",
    detail: errorMessage(error).slice(0, 4096),
    excerpt: warningExcerpt(content),
  };
}
