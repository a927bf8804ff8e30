import { describe, expect, it } from "vitest";
import { ConfigError } from "@flowmeter/platform";
import { parseRunnerConfig } from "./config.js";

describe("parseRunnerConfig", () => {
  it("has defaults for everything", () => {
    expect(parseRunnerConfig({}, "/srv")).toEqual({
      host: "127.0.0.1",
      port: 7071,
      apiTokens: [],
      workflowsDir: "/srv",
      apiMaxActiveRuns: 10_000,
      maxRuns: 4,
      stageConcurrency: 4,
      sampleIntervalMs: 1000,
      heartbeatIntervalMs: 30_000,
      stageKillGraceMs: 5000,
      shutdownTimeoutMs: 30_000,
      eventRetentionSeconds: 604_800,
      telemetryBufferSize: 5000,
      logBufferLines: 20_000,
      logHeadLines: 5000,
      logTailLines: 5000,
      leaseMs: 30_000,
      reconcileIntervalMs: 10_000,
      dataDir: "/srv/.flowmeter",
      spoolDir: "/srv/.flowmeter/spool",
      logLevel: "info",
      redis: { url: "redis://127.0.0.1:6379", queuePrefix: "flowmeter" },
    });
  });

  it("reads every variable; the spool dir follows FLOWMETER_DATA_DIR unless set", () => {
    const config = parseRunnerConfig(
      {
        RUNNER_PORT: "8081",
        RUNNER_HOST: "0.0.0.0",
        RUNNER_API_TOKENS: "tok-1, tok-2",
        RUNNER_WORKFLOWS_DIR: "flows",
        RUNNER_TELEMETRY_BUFFER_SIZE: "0",
        RUNNER_LEASE_MS: "600",
        RUNNER_RECONCILE_INTERVAL_MS: "200",
        RUNNER_MAX_RUNS: "8",
        RUNNER_SAMPLE_INTERVAL_MS: "500",
        RUNNER_HEARTBEAT_INTERVAL_MS: "10000",
        RUNNER_STAGE_KILL_GRACE_MS: "0",
        FLOWMETER_DATA_DIR: "data",
        REDIS_URL: "redis://redis:6380",
        QUEUE_PREFIX: "fm",
        LOG_LEVEL: "debug",
      },
      "/srv",
    );
    expect(config).toMatchObject({
      port: 8081,
      host: "0.0.0.0",
      maxRuns: 8,
      sampleIntervalMs: 500,
      heartbeatIntervalMs: 10_000,
      stageKillGraceMs: 0,
      logLevel: "debug",
    });
    expect(config).toMatchObject({ apiTokens: ["tok-1", "tok-2"], workflowsDir: "/srv/flows", telemetryBufferSize: 0, leaseMs: 600, reconcileIntervalMs: 200 });
    expect(config.spoolDir).toBe("/srv/data/spool");
    expect(config.redis).toEqual({ url: "redis://redis:6380", queuePrefix: "fm" });
    expect(parseRunnerConfig({ FLOWMETER_DATA_DIR: "data", RUNNER_SPOOL_DIR: "/var/spool/fm" }, "/srv").spoolDir).toBe("/var/spool/fm");
  });

  it("refuses a non-loopback host without tokens, and allows loopback hosts without them", () => {
    expect(() => parseRunnerConfig({ RUNNER_HOST: "10.0.0.5" })).toThrow(/RUNNER_HOST=10.0.0.5: listening beyond loopback needs RUNNER_API_TOKENS/);
    for (const host of ["127.0.0.1", "127.1.2.3", "localhost", "::1"]) expect(parseRunnerConfig({ RUNNER_HOST: host }).host).toBe(host);
    expect(parseRunnerConfig({ RUNNER_HOST: "0.0.0.0", RUNNER_API_TOKENS: "secret" }).apiTokens).toEqual(["secret"]);
  });

  it("lists every problem at once", () => {
    let error: unknown;
    try {
      parseRunnerConfig({
        RUNNER_HOST: "0.0.0.0",
        RUNNER_PORT: "http",
        RUNNER_MAX_RUNS: "0",
        RUNNER_SAMPLE_INTERVAL_MS: "10",
        RUNNER_TELEMETRY_BUFFER_SIZE: "-1",
        RUNNER_LEASE_MS: "10",
        REDIS_URL: "http://x",
        LOG_LEVEL: "loud",
      });
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'REDIS_URL="http://x": expected a redis: or rediss: URL',
      "RUNNER_HOST=0.0.0.0: listening beyond loopback needs RUNNER_API_TOKENS (comma-separated bearer tokens)",
      'RUNNER_PORT="http": expected an integer',
      "RUNNER_MAX_RUNS=0: expected an integer between 1 and 1000",
      "RUNNER_SAMPLE_INTERVAL_MS=10: expected an integer between 100 and 3600000",
      "RUNNER_TELEMETRY_BUFFER_SIZE=-1: expected an integer between 0 and 1000000",
      "RUNNER_LEASE_MS=10: expected an integer between 300 and 3600000",
      'LOG_LEVEL="loud": expected one of debug, info, warn, error',
    ]);
  });
});
