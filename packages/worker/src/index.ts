export { BatchWriter, type BatchWriterOptions, type FlushReason } from "./batch-writer.js";
export { createClickHouse, describeClickHouse } from "./clickhouse/client.js";
export { MigrationError, migrate, readMigrations, type Migration } from "./clickhouse/migrate.js";
export { parseWorkerConfig, readClickHouseConfig, type ClickHouseConfig, type WorkerConfig } from "./config.js";
export { createClientTelemetryConsumer, type ClientTelemetryConsumer } from "./consumers/client-telemetry.consumer.js";
export { createWorkerMetrics, type WorkerMetrics } from "./metrics.js";
export { insertJsonRows, toClickHouseTime } from "./clickhouse/insert-json-rows.js";
export { COLUMNS as CLI_INVOCATION_COLUMNS, toRow } from "./clickhouse/tables/cli-invocations.table.js";
