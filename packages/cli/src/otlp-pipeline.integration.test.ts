/**
 * OpenTelemetry in, with the OpenTelemetry JS SDK's own exporters as the clients: log records and spans exported by
 * OTLPLogExporter (protobuf and JSON) and OTLPTraceExporter (protobuf) to a running ingest, written by a running
 * worker's otel consumer, counted exactly in ClickHouse and in the rollups; an export sent again (what an exporter's
 * retry sends) and the same records in the other encoding add nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT_CONTEXT, SpanKind, trace } from "@opentelemetry/api";
import { OTLPLogExporter as OTLPProtoLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPLogExporter as OTLPJsonLogExporter } from "@opentelemetry/exporter-logs-otlp-http";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor, type ReadableLogRecord } from "@opentelemetry/sdk-logs";
import { InMemorySpanExporter, SimpleSpanProcessor, TracerProvider, type ReadableSpan } from "@opentelemetry/sdk-trace";
import { createLogger, createRedis } from "@flowmeter/platform";
import { parseIngestConfig, startIngestServer, type IngestServer } from "@flowmeter/ingest";
import { createExactlyOnceState, createOtelConsumer, createWorkerMetrics, parseWorkerConfig } from "@flowmeter/worker";
import * as worker from "@flowmeter/worker";
import { deleteQueuePrefix, openScratchDatabase, tempDir, testQueuePrefix, testRedisUrl, waitFor, type ScratchDatabase } from "@flowmeter/test-utils";

const logger = createLogger("test", "error");

/** What an exporter's export() reports: 0 (SUCCESS) or 1 (FAILED), with the error. */
function exportWith<Item>(exporter: { export(items: Item[], done: (result: { code: number; error?: Error }) => void): void }, items: Item[]) {
  return new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(items, resolve));
}

describe("OTLP from the OpenTelemetry JS SDK to ClickHouse", () => {
  const data = tempDir("otlp-pipeline");
  const prefix = testQueuePrefix("otlp");
  let database: ScratchDatabase<worker.BlockWriter>;
  let ingest: IngestServer;
  let consumer: ReturnType<typeof createOtelConsumer>;
  let workerRedis: ReturnType<typeof createRedis>;

  beforeAll(async () => {
    database = await openScratchDatabase("otlp-pipeline", worker);
    workerRedis = createRedis(testRedisUrl(), "worker");
    const workerConfig = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix }), batch: { maxRows: 5000, maxWaitMs: 50 } };
    consumer = createOtelConsumer({
      config: workerConfig,
      redis: workerRedis,
      metrics: createWorkerMetrics(),
      logger,
      clickhouse: database.clickhouse,
      writer: database.writer,
      ...createExactlyOnceState(workerRedis, workerConfig, logger),
    });
    consumer.start();
    ingest = await startIngestServer(
      parseIngestConfig({ INGEST_PORT: "0", REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix, FLOWMETER_DATA_DIR: `${data.path}/ingest` }),
      logger,
    );
  }, 60_000);

  afterAll(async () => {
    await ingest.stop();
    await consumer.close();
    workerRedis.disconnect();
    await deleteQueuePrefix(prefix);
    await database.close();
    data.remove();
  });

  const count = async (query: string): Promise<number> => Number((await database.rows<{ n: string }>(query))[0]?.n);

  it("stores each log record once, whether exported again or in the other encoding, and counts it in otel_log_stats", async () => {
    const service = `svc-logs-${Date.now()}`;
    const captured = new InMemoryLogRecordExporter();
    const provider = new LoggerProvider({
      resource: resourceFromAttributes({ "service.name": service, "deployment.environment": "test" }),
      processors: [new SimpleLogRecordProcessor({ exporter: captured })],
    });
    const otelLogger = provider.getLogger("flowmeter-test", "1.0.0");
    for (let index = 0; index < 600; index += 1) {
      otelLogger.emit({
        severityNumber: index % 3 === 0 ? 17 : 9,
        severityText: index % 3 === 0 ? "ERROR" : "INFO",
        body: `line ${index}`,
        attributes: { index, ratio: index / 7, flag: index % 2 === 0, tags: ["a", "b"] },
      });
    }
    await provider.forceFlush();
    const records: ReadableLogRecord[] = captured.getFinishedLogRecords();
    expect(records).toHaveLength(600);

    const url = `http://127.0.0.1:${ingest.port}/v1/logs`;
    const protobuf = new OTLPProtoLogExporter({ url });
    // 512 records per export, as the SDK's batch processor sends them; then all of them again (a retry), then as JSON.
    expect(await exportWith(protobuf, records.slice(0, 512))).toEqual({ code: 0 });
    expect(await exportWith(protobuf, records.slice(512))).toEqual({ code: 0 });
    expect(await exportWith(protobuf, records)).toEqual({ code: 0 });
    expect(await exportWith(new OTLPJsonLogExporter({ url }), records.slice(0, 100))).toEqual({ code: 0 });

    await waitFor(async () => ((await count(`SELECT count() AS n FROM flowmeter.otel_logs WHERE ServiceName = '${service}'`)) >= 600 ? true : undefined), {
      timeoutMs: 30_000,
      what: "600 log records in otel_logs",
    });
    // The re-sends were answered once the queue had them; the worker has taken every job once the queue is empty.
    await waitFor(async () => ((await consumer.pendingJobs()) === 0 ? true : undefined), { timeoutMs: 30_000, what: "the otel queue drained" });
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_logs WHERE ServiceName = '${service}'`)).toBe(600);
    expect(await count(`SELECT uniqExact(RecordId) AS n FROM flowmeter.otel_logs WHERE ServiceName = '${service}'`)).toBe(600);
    expect(await count(`SELECT sum(count) AS n FROM flowmeter.otel_log_stats WHERE service = '${service}' AND severity_text = 'ERROR'`)).toBe(200);
    expect(await count(`SELECT sum(count) AS n FROM flowmeter.otel_log_stats WHERE service = '${service}'`)).toBe(600);
    const [first] = await database.rows<Record<string, unknown>>(
      `SELECT Body, SeverityNumber, ScopeName, ScopeVersion, LogAttributes, ResourceAttributes FROM flowmeter.otel_logs WHERE ServiceName = '${service}' AND Body = 'line 3'`,
    );
    expect(first).toEqual({
      Body: "line 3",
      SeverityNumber: 17,
      ScopeName: "flowmeter-test",
      ScopeVersion: "1.0.0",
      LogAttributes: { index: "3", ratio: String(3 / 7), flag: "false", tags: '["a","b"]' },
      ResourceAttributes: expect.objectContaining({ "service.name": service, "deployment.environment": "test" }),
    });
    await protobuf.shutdown();
    await provider.shutdown();
  }, 90_000);

  it("stores each span once with its parent, events and duration, and counts it in otel_span_stats", async () => {
    const service = `svc-traces-${Date.now()}`;
    const captured = new InMemorySpanExporter();
    const provider = new TracerProvider({
      resource: resourceFromAttributes({ "service.name": service }),
      spanProcessors: [new SimpleSpanProcessor({ exporter: captured })],
    });
    const tracer = provider.getTracer("flowmeter-test");
    for (let run = 0; run < 20; run += 1) {
      const parent = tracer.startSpan("deploy", { kind: SpanKind.SERVER });
      for (const stage of ["build", "test", "publish"]) {
        const child = tracer.startSpan(stage, {}, trace.setSpan(ROOT_CONTEXT, parent));
        child.addEvent("started", { attempt: 1 });
        child.end();
      }
      parent.end();
    }
    await provider.forceFlush();
    const spans: ReadableSpan[] = captured.getFinishedSpans();
    expect(spans).toHaveLength(80);

    const exporter = new OTLPTraceExporter({ url: `http://127.0.0.1:${ingest.port}/v1/traces` });
    expect(await exportWith(exporter, spans)).toEqual({ code: 0 });
    expect(await exportWith(exporter, spans)).toEqual({ code: 0 });
    await waitFor(async () => ((await count(`SELECT count() AS n FROM flowmeter.otel_traces WHERE ServiceName = '${service}'`)) >= 80 ? true : undefined), {
      timeoutMs: 30_000,
      what: "80 spans in otel_traces",
    });
    await waitFor(async () => ((await consumer.pendingJobs()) === 0 ? true : undefined), { timeoutMs: 30_000, what: "the otel queue drained" });
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_traces WHERE ServiceName = '${service}'`)).toBe(80);
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_traces WHERE ServiceName = '${service}' AND SpanName = 'build' AND ParentSpanId != ''`)).toBe(
      20,
    );
    expect(
      await count(`SELECT countIf(Events.Name = ['started']) AS n FROM flowmeter.otel_traces WHERE ServiceName = '${service}' AND SpanName = 'test'`),
    ).toBe(20);
    expect(await count(`SELECT sum(count) AS n FROM flowmeter.otel_span_stats WHERE service = '${service}' AND span_name = 'deploy'`)).toBe(20);
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_traces WHERE ServiceName = '${service}' AND SpanKind = 'Server'`)).toBe(20);
    const traceIds = new Set(spans.map((span) => span.spanContext().traceId));
    expect(
      await count(
        `SELECT uniqExact(TraceId) AS n FROM flowmeter.otel_traces_trace_id_ts WHERE TraceId IN (SELECT TraceId FROM flowmeter.otel_traces WHERE ServiceName = '${service}')`,
      ),
    ).toBe(traceIds.size);
    await exporter.shutdown();
    await provider.shutdown();
  }, 90_000);
});
