export { createIngestApp, type IngestApp, type IngestAppOptions } from "./app.js";
export { parseIngestConfig, type IngestConfig } from "./config.js";
export { closeIngestQueue, createIngestQueue, type ClientTelemetryQueue } from "./ingest/client-telemetry-queue.js";
export { createIngestMetrics, type IngestMetrics } from "./metrics.js";
export { startIngestServer, type IngestServer } from "./server.js";
