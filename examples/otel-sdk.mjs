// The OpenTelemetry JS SDK exporting a span, a log record and a metric to flowmeter's ingest over OTLP/HTTP
// (protobuf). The exporters read OTEL_EXPORTER_OTLP_ENDPOINT (and OTEL_EXPORTER_OTLP_HEADERS, e.g.
// "x-api-key=<key>" when ingest has INGEST_API_KEYS) and append /v1/traces, /v1/logs and /v1/metrics to it.
//   OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:7070 node examples/otel-sdk.mjs
import { OTLPLogExporter } from "@opentelemetry/exporter-logs-otlp-proto";
import { OTLPMetricExporter } from "@opentelemetry/exporter-metrics-otlp-proto";
import { OTLPTraceExporter } from "@opentelemetry/exporter-trace-otlp-proto";
import { resourceFromAttributes } from "@opentelemetry/resources";
import { LoggerProvider, SimpleLogRecordProcessor } from "@opentelemetry/sdk-logs";
import { MeterProvider, PeriodicExportingMetricReader } from "@opentelemetry/sdk-metrics";
import { SimpleSpanProcessor, TracerProvider } from "@opentelemetry/sdk-trace";

/** The exporter, noting each failed export (the SDK only logs them), so that the script can say whether all arrived. */
const failures = [];
function watched(exporter) {
  const send = exporter.export.bind(exporter);
  exporter.export = (items, done) =>
    send(items, (result) => {
      if (result.code !== 0) failures.push(result.error?.message ?? "export failed");
      done(result);
    });
  return exporter;
}

const resource = resourceFromAttributes({ "service.name": "checkout" });
const tracing = new TracerProvider({ resource, spanProcessors: [new SimpleSpanProcessor({ exporter: watched(new OTLPTraceExporter()) })] });
const logging = new LoggerProvider({ resource, processors: [new SimpleLogRecordProcessor({ exporter: watched(new OTLPLogExporter()) })] });
const metering = new MeterProvider({ resource, readers: [new PeriodicExportingMetricReader({ exporter: watched(new OTLPMetricExporter()) })] });

const span = tracing.getTracer("checkout").startSpan("place order");
logging.getLogger("checkout").emit({ severityText: "INFO", severityNumber: 9, body: "order placed" });
metering.getMeter("checkout").createCounter("orders").add(3, { region: "eu" });
span.end();

// Shutting down flushes: each provider exports what it holds before resolving.
await Promise.all([tracing.shutdown(), logging.shutdown(), metering.shutdown()]);
const endpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT ?? "http://localhost:4318";
if (failures.length > 0) {
  console.error(`export to ${endpoint} failed: ${failures.join("; ")}`);
  process.exitCode = 1;
} else console.log(`exported 1 span, 1 log record and 1 metric to ${endpoint}`);
