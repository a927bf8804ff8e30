#!/usr/bin/env node
import { ConfigError, createLogger, errorMessage } from "@flowmeter/platform";
import { parseIngestConfig, type IngestConfig } from "./config.js";
import { startIngestServer } from "./server.js";

function readConfig(): IngestConfig {
  try {
    return parseIngestConfig(process.env);
  } catch (error) {
    if (error instanceof ConfigError) {
      process.stderr.write(`flowmeter ingest: ${error.message}\n`);
      process.exit(78); // EX_CONFIG (sysexits.h), as every flowmeter command and service
    }
    throw error;
  }
}

const config = readConfig();
const logger = createLogger("ingest", config.logLevel);

try {
  const server = await startIngestServer(config, logger);
  void server.partitionCheck.then((problem) => {
    if (problem === undefined) return;
    logger.error(problem);
    process.exit(78);
  });
  let signalled = false;
  const shutdown = (signal: NodeJS.Signals): void => {
    if (signalled) return;
    signalled = true;
    logger.info("shutting down", { signal });
    server.stop().then(
      () => {
        logger.info("stopped");
        process.exit(0);
      },
      (error: unknown) => {
        logger.error("shutdown failed", { error: errorMessage(error) });
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
} catch (error) {
  logger.error("failed to start", { error: errorMessage(error) });
  process.exit(1);
}
