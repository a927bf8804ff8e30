#!/usr/bin/env node
/**
 * One-shot: applies pending ClickHouse migrations, then the retention settings (clickhouse/retention.ts), and exits
 * (the compose `migrate` service; `npm start` runs it first). A server that is not answering yet, or goes away
 * mid-way (the official image's first boot runs a temporary server, then restarts), is retried for
 * CLICKHOUSE_WAIT_SECONDS: migrations are recorded one by one and idempotent, so a retry picks up where it stopped.
 * A changed or misnumbered migration file (MigrationError) is never retried. With CLICKHOUSE_CLUSTER the migrations
 * and the TTLs run in their cluster form (clickhouse/cluster-ddl.ts), ON CLUSTER, through the server at CLICKHOUSE_URL.
 */
import { ConfigError, EnvReader, createLogger, errorMessage } from "@flowmeter/platform";
import { createClickHouse, describeClickHouse } from "./clickhouse/client.js";
import { MigrationError, migrate } from "./clickhouse/migrate.js";
import { applyRetention } from "./clickhouse/retention.js";
import { readClickHouseConfig, readRetentionConfig } from "./config.js";

async function main(): Promise<void> {
  const reader = new EnvReader(process.env);
  let config;
  try {
    config = reader.finish({
      clickhouse: readClickHouseConfig(reader),
      retention: readRetentionConfig(reader),
      logLevel: reader.logLevel(),
    });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`flowmeter migrate: ${error.message}\n`);
      process.exit(78); // EX_CONFIG (sysexits.h), as every flowmeter command and service
    }
    throw error;
  }
  const logger = createLogger("migrate", config.logLevel);
  let clickhouse;
  try {
    clickhouse = await createClickHouse(config.clickhouse);
  } catch (error) {
    logger.error("cannot open ClickHouse", { clickhouse: describeClickHouse(config.clickhouse), error: errorMessage(error) });
    process.exitCode = 1;
    return;
  }
  // Embedded chDB is in this process: nothing to wait for.
  const deadline = Date.now() + (config.clickhouse.url === undefined ? 0 : config.clickhouse.waitSeconds * 1000);
  logger.info("migrating", { clickhouse: describeClickHouse(config.clickhouse), migrations: config.clickhouse.migrationsDir });
  try {
    for (let attempt = 1; ; attempt += 1) {
      try {
        await migrate(clickhouse, config.clickhouse.migrationsDir, logger, { cluster: config.clickhouse.cluster });
        await applyRetention(clickhouse, config.retention, logger, { cluster: config.clickhouse.cluster });
        return;
      } catch (error) {
        if (error instanceof MigrationError || Date.now() >= deadline) throw error;
        logger.warn("ClickHouse not ready; retrying (CLICKHOUSE_WAIT_SECONDS)", { attempt, error: errorMessage(error) });
        await new Promise((resolve) => setTimeout(resolve, RETRY_MS));
      }
    }
  } catch (error) {
    logger.error("migration failed", { error: errorMessage(error) });
    process.exitCode = 1;
  } finally {
    await clickhouse.close();
  }
}

const RETRY_MS = 2000;

void main();
