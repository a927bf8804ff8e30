/**
 * OTLP metrics in, with the OpenTelemetry JS SDK's own exporters as the clients: a counter, an up-down counter, a
 * gauge and a histogram collected by the SDK's MeterProvider, exported by OTLPMetricExporter (protobuf, then JSON) to
 * a running ingest's /v1/metrics, written by a running worker's otel consumer into otel_metrics_sum, _gauge and
 * _histogram with the values the SDK measured; the export sent again (what an exporter's retry sends) and the same
 * data points in the other encoding add nothing.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { OTLPMetricExporter as OTLPProtoMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPMetricExporter as OTLPJsonMetricExporter } from "@opentelemetry/exporter-metrics-otlp-http";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { MeterProvider, MetricReader, type ResourceMetrics } from "@opentelemetry/sdk-metrics";
import { createLogger, createRedis } from "@flowmeter/platform";
import { parseIngestConfig, startIngestServer, type IngestServer } from "@flowmeter/ingest";
import { createExactlyOnceState, createOtelConsumer, createWorkerMetrics, parseWorkerConfig } from "@flowmeter/worker";
import * as worker from "@flowmeter/worker";
import { deleteQueuePrefix, openScratchDatabase, tempDir, testQueuePrefix, testRedisUrl, waitFor, type ScratchDatabase } from "@flowmeter/test-utils";

const logger = createLogger("test", "error");

/** A reader the test collects from when it wants to (the SDK's periodic reader exports on a timer). */
class CollectOnDemandReader extends MetricReader {
  protected override async onShutdown(): Promise<void> {}
  protected override async onForceFlush(): Promise<void> {}
}

function exportWith(exporter: { export(metrics: ResourceMetrics, done: (result: { code: number; error?: Error }) => void): void }, metrics: ResourceMetrics) {
  return new Promise<{ code: number; error?: Error }>((resolve) => exporter.export(metrics, resolve));
}

describe("OTLP metrics from the OpenTelemetry JS SDK to ClickHouse", () => {
  const data = tempDir("otlp-metrics");
  const prefix = testQueuePrefix("otlp-metrics");
  let database: ScratchDatabase<worker.BlockWriter>;
  let ingest: IngestServer;
  let consumer: ReturnType<typeof createOtelConsumer>;
  let workerRedis: ReturnType<typeof createRedis>;

  beforeAll(async () => {
    database = await openScratchDatabase("otlp-metrics", worker);
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

  it("stores sums, gauges and histograms as measured, each data point once", async () => {
    const service = `svc-metrics-${Date.now()}`;
    const reader = new CollectOnDemandReader();
    const provider = new MeterProvider({ resource: resourceFromAttributes({ "service.name": service }), readers: [reader] });
    const meter = provider.getMeter("flowmeter-test", "1.0.0");
    const requests = meter.createCounter("http.server.requests", { description: "Requests served", unit: "{request}" });
    const inFlight = meter.createUpDownCounter("http.server.active_requests");
    const temperature = meter.createGauge("room.temperature", { unit: "Cel" });
    const latency = meter.createHistogram("http.server.duration", { unit: "ms", advice: { explicitBucketBoundaries: [10, 100, 1000] } });
    for (const route of ["/a", "/b", "/c"]) {
      for (let index = 0; index < 10; index += 1) requests.add(route === "/a" ? 2 : 1, { route });
    }
    inFlight.add(5);
    inFlight.add(-2);
    temperature.record(21.5, { room: "lab" });
    for (const ms of [5, 50, 50, 500, 5000]) latency.record(ms, { route: "/a" });
    const { resourceMetrics, errors } = await reader.collect();
    expect(errors).toEqual([]);

    const base = `http://127.0.0.1:${ingest.port}/v1/metrics`;
    expect(await exportWith(new OTLPProtoMetricExporter({ url: base }), resourceMetrics)).toEqual({ code: 0 });
    const where = `WHERE ServiceName = '${service}'`;
    // 3 routes of the counter + the up-down counter; 1 gauge; 1 histogram.
    await waitFor(
      async () => {
        const sums = await count(`SELECT count() AS n FROM flowmeter.otel_metrics_sum ${where}`);
        const gauges = await count(`SELECT count() AS n FROM flowmeter.otel_metrics_gauge ${where}`);
        const histograms = await count(`SELECT count() AS n FROM flowmeter.otel_metrics_histogram ${where}`);
        return sums === 4 && gauges === 1 && histograms === 1 ? true : undefined;
      },
      { what: "every data point in the metrics tables" },
    );

    const sums = await database.rows<{
      MetricName: string;
      route: string;
      Value: number;
      IsMonotonic: boolean;
      AggregationTemporality: number;
      MetricUnit: string;
    }>(
      `SELECT MetricName, Attributes['route'] AS route, Value, IsMonotonic, AggregationTemporality, MetricUnit FROM flowmeter.otel_metrics_sum ${where} ORDER BY MetricName, route`,
    );
    expect(sums).toEqual([
      { MetricName: "http.server.active_requests", route: "", Value: 3, IsMonotonic: false, AggregationTemporality: 2, MetricUnit: "" },
      { MetricName: "http.server.requests", route: "/a", Value: 20, IsMonotonic: true, AggregationTemporality: 2, MetricUnit: "{request}" },
      { MetricName: "http.server.requests", route: "/b", Value: 10, IsMonotonic: true, AggregationTemporality: 2, MetricUnit: "{request}" },
      { MetricName: "http.server.requests", route: "/c", Value: 10, IsMonotonic: true, AggregationTemporality: 2, MetricUnit: "{request}" },
    ]);
    const gauges = await database.rows<{ MetricName: string; room: string; Value: number; ScopeName: string; ScopeVersion: string }>(
      `SELECT MetricName, Attributes['room'] AS room, Value, ScopeName, ScopeVersion FROM flowmeter.otel_metrics_gauge ${where}`,
    );
    expect(gauges).toEqual([{ MetricName: "room.temperature", room: "lab", Value: 21.5, ScopeName: "flowmeter-test", ScopeVersion: "1.0.0" }]);
    const histograms = await database.rows<{ Count: string; Sum: number; BucketCounts: string[]; ExplicitBounds: number[]; Min: number; Max: number }>(
      `SELECT Count, Sum, BucketCounts, ExplicitBounds, Min, Max FROM flowmeter.otel_metrics_histogram ${where}`,
    );
    expect(histograms.map((row) => ({ ...row, Count: Number(row.Count), BucketCounts: row.BucketCounts.map(Number) }))).toEqual([
      { Count: 5, Sum: 5605, BucketCounts: [1, 2, 1, 1], ExplicitBounds: [10, 100, 1000], Min: 5, Max: 5000 },
    ]);

    // The same export again (an exporter's retry), and the same data points as JSON: nothing new is stored.
    expect(await exportWith(new OTLPProtoMetricExporter({ url: base }), resourceMetrics)).toEqual({ code: 0 });
    expect(await exportWith(new OTLPJsonMetricExporter({ url: base }), resourceMetrics)).toEqual({ code: 0 });
    // A marker export after them: once it is stored, the jobs before it have been written too.
    const markerService = `${service}-marker`;
    const markerReader = new CollectOnDemandReader();
    const markerProvider = new MeterProvider({ resource: resourceFromAttributes({ "service.name": markerService }), readers: [markerReader] });
    markerProvider.getMeter("flowmeter-test").createCounter("marker").add(1);
    expect(await exportWith(new OTLPProtoMetricExporter({ url: base }), (await markerReader.collect()).resourceMetrics)).toEqual({ code: 0 });
    await waitFor(
      async () => ((await count(`SELECT count() AS n FROM flowmeter.otel_metrics_sum WHERE ServiceName = '${markerService}'`)) === 1 ? true : undefined),
      {
        what: "the marker data point",
      },
    );
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_metrics_sum ${where}`)).toBe(4);
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_metrics_gauge ${where}`)).toBe(1);
    expect(await count(`SELECT count() AS n FROM flowmeter.otel_metrics_histogram ${where}`)).toBe(1);
    await provider.shutdown();
    await markerProvider.shutdown();
  });
});
