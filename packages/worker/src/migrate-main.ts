#!/usr/bin/env node
/**
 * One-shot: applies pending ClickHouse migrations, then the retention settings (clickhouse/retention.ts), and exits
 * (the compose `migrate` service; `npm start` runs it first).
 */
import { ConfigError, EnvReader, createLogger, errorMessage } from "@flowmeter/shared";
import { createClickHouse, describeClickHouse } from "./clickhouse/client.js";
import { migrate } from "./clickhouse/migrate.js";
import { applyRetention, readRetentionConfig } from "./clickhouse/retention.js";
import { readClickHouseConfig } from "./config.js";

async function main(): Promise<void> {
  const reader = new EnvReader(process.env);
  let config;
  try {
    config = reader.finish({ clickhouse: readClickHouseConfig(reader), retention: readRetentionConfig(reader), logLevel: reader.logLevel() });
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`flowmeter migrate: ${error.message}\n`);
      process.exit(1);
    }
    throw error;
  }
  const logger = createLogger("migrate", config.logLevel);
  const clickhouse = createClickHouse(config.clickhouse);
  try {
    logger.info("migrating", { clickhouse: describeClickHouse(config.clickhouse), migrations: config.clickhouse.migrationsDir });
    await migrate(clickhouse, config.clickhouse.migrationsDir, logger);
    await applyRetention(clickhouse, config.retention, logger);
  } catch (error) {
    logger.error("migration failed", { error: errorMessage(error) });
    process.exitCode = 1;
  } finally {
    await clickhouse.close();
  }
}

void main();
