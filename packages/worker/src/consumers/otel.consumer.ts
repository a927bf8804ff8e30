/**
 * Consumes ingest's otel queue (OTLP logs, spans and metric data points, as rows built by ingest) into
 * flowmeter.otel_logs, otel_traces and otel_metrics_sum, _gauge, _histogram, each record once: insert-once.ts drops
 * the rows whose (ServiceName, time, RecordId) is
 * already stored, so an exporter's retry, a re-sent export or a redelivered job adds nothing, and the rollups their
 * views fill count each record once.
 */
import { JOB_CATALOG, type OtelLogRow, type OtelMetricGaugeRow, type OtelMetricHistogramRow, type OtelMetricSumRow, type OtelSpanRow } from "@flowmeter/shared";
import { otelLogsTable, otelMetricGaugeTable, otelMetricHistogramTable, otelMetricSumTable, otelTracesTable } from "../clickhouse/tables/otel-tables.js";
import type { ConsumerDeps } from "./client-telemetry.consumer.js";
import { insertOnce, type OwnedRow } from "./insert-once.js";
import type { JobHandler } from "./queue-consumer.js";

export function otelHandler(deps: ConsumerDeps): JobHandler<"otel"> {
  const { logger } = deps;
  return {
    rowsOf: (data) =>
      (data.logs?.length ?? 0) +
      (data.spans?.length ?? 0) +
      (data.metricSums?.length ?? 0) +
      (data.metricGauges?.length ?? 0) +
      (data.metricHistograms?.length ?? 0),
    producedAtMs: (data) => data.receivedAtMs,
    async flush(jobs, reason) {
      const startedAt = performance.now();
      const logs: OwnedRow<OtelLogRow>[] = [];
      const spans: OwnedRow<OtelSpanRow>[] = [];
      const sums: OwnedRow<OtelMetricSumRow>[] = [];
      const gauges: OwnedRow<OtelMetricGaugeRow>[] = [];
      const histograms: OwnedRow<OtelMetricHistogramRow>[] = [];
      for (const { jobId, data } of jobs) {
        for (const row of data.logs ?? []) logs.push({ jobId, row: otelLogsTable.toRow(row) });
        for (const row of data.spans ?? []) spans.push({ jobId, row: otelTracesTable.toRow(row) });
        for (const row of data.metricSums ?? []) sums.push({ jobId, row: otelMetricSumTable.toRow(row) });
        for (const row of data.metricGauges ?? []) gauges.push({ jobId, row: otelMetricGaugeTable.toRow(row) });
        for (const row of data.metricHistograms ?? []) histograms.push({ jobId, row: otelMetricHistogramTable.toRow(row) });
      }
      const writtenLogs = await insertOnce(deps, otelLogsTable, logs);
      const writtenSpans = await insertOnce(deps, otelTracesTable, spans);
      const writtenPoints =
        (await insertOnce(deps, otelMetricSumTable, sums)) +
        (await insertOnce(deps, otelMetricGaugeTable, gauges)) +
        (await insertOnce(deps, otelMetricHistogramTable, histograms));
      logger.debug("batch written", {
        queue: JOB_CATALOG.otel.queue,
        jobs: jobs.length,
        logs: writtenLogs,
        spans: writtenSpans,
        dataPoints: writtenPoints,
        reason,
        ms: Math.round(performance.now() - startedAt),
      });
    },
  };
}
