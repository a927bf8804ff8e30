#!/usr/bin/env node
/** The runner process: parse the config once, start, stop gracefully on SIGTERM/SIGINT (a second signal exits at once). */
import { ConfigError, createLogger } from "@flowmeter/platform";
import { parseRunnerConfig } from "./config.js";
import { startRunner } from "./start-runner.js";

let config;
try {
  config = parseRunnerConfig(process.env);
} catch (error) {
  if (!(error instanceof ConfigError)) throw error;
  process.stderr.write(`flowmeter runner: ${error.message}\n`);
  process.exit(78); // EX_CONFIG (sysexits.h), as every flowmeter command and service
}
const logger = createLogger("runner", config.logLevel);
const runner = await startRunner(config, logger);

let signalled = false;
for (const signal of ["SIGTERM", "SIGINT"] as const) {
  process.on(signal, () => {
    if (signalled) {
      logger.warn("second signal: exiting now", { signal });
      process.exit(1);
    }
    signalled = true;
    logger.info("shutting down", { signal, active_runs: runner.consumer.activeRuns, timeout_ms: config.shutdownTimeoutMs });
    runner.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error("shutdown failed", { error: String(error) });
        process.exit(1);
      },
    );
  });
}
