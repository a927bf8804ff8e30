import { ConfigError, DEFAULT_REDIS_URL } from "@flowmeter/platform";
import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { parseIngestConfig } from "./config.js";

describe("parseIngestConfig", () => {
  it("uses the defaults when nothing is set", () => {
    expect(parseIngestConfig({})).toEqual({
      port: 7070,
      host: "127.0.0.1",
      ignoredHost: undefined,
      apiKeys: [],
      public: false,
      maxBodyBytes: 33_554_432,
      bodyBytesInFlight: 134_217_728,
      maxEntriesPerRequest: 10_000,
      maxEntryBytes: 65_536,
      otlpMaxBodyBytes: 20_971_520,
      otlpMaxQueuedJobs: 10_000,
      enqueueLingerMs: 1,
      rateLimitEntriesPerSecond: 100_000,
      logLevel: "info",
      redis: { url: DEFAULT_REDIS_URL, queuePrefix: "flowmeter", partitions: 1 },
      spoolDir: resolve(".flowmeter", "spool"),
      spoolMaxBytes: 1_073_741_824,
    });
  });

  it("binds INGEST_HOST (default 0.0.0.0) only when API keys are configured", () => {
    expect(parseIngestConfig({ INGEST_API_KEYS: "a, b,," })).toMatchObject({ apiKeys: ["a", "b"], host: "0.0.0.0", ignoredHost: undefined });
    expect(parseIngestConfig({ INGEST_API_KEYS: "a", INGEST_HOST: "10.0.0.5" })).toMatchObject({ host: "10.0.0.5" });
    expect(parseIngestConfig({ INGEST_HOST: "0.0.0.0" })).toMatchObject({ host: "127.0.0.1", ignoredHost: "0.0.0.0" });
    expect(parseIngestConfig({ INGEST_HOST: "::1" })).toMatchObject({ host: "::1", ignoredHost: undefined });
  });

  it("INGEST_PUBLIC binds beyond loopback without keys, and refuses keys beside it", () => {
    expect(parseIngestConfig({ INGEST_PUBLIC: "true" })).toMatchObject({ public: true, apiKeys: [], host: "0.0.0.0", ignoredHost: undefined });
    expect(parseIngestConfig({ INGEST_PUBLIC: "true", INGEST_HOST: "10.0.0.5" })).toMatchObject({ host: "10.0.0.5" });
    expect(() => parseIngestConfig({ INGEST_PUBLIC: "true", INGEST_API_KEYS: "a" })).toThrow(/INGEST_PUBLIC=true and INGEST_API_KEYS are exclusive/);
  });

  it("reads every variable", () => {
    const config = parseIngestConfig({
      INGEST_PORT: "17070",
      INGEST_MAX_BODY_BYTES: "2048",
      INGEST_MAX_ENTRIES_PER_REQUEST: "5",
      INGEST_MAX_ENTRY_BYTES: "16384",
      INGEST_RATE_LIMIT_ENTRIES_PER_SECOND: "0",
      LOG_LEVEL: "debug",
      REDIS_URL: "redis://redis.internal:6380",
      QUEUE_PREFIX: "fm",
    });
    expect(config).toMatchObject({
      port: 17070,
      maxBodyBytes: 2048,
      maxEntriesPerRequest: 5,
      maxEntryBytes: 16_384,
      rateLimitEntriesPerSecond: 0,
      logLevel: "debug",
      redis: { url: "redis://redis.internal:6380", queuePrefix: "fm", partitions: 1 },
    });
  });

  it("lists every problem at once", () => {
    let thrown: unknown;
    try {
      parseIngestConfig({
        INGEST_PORT: "seventy",
        INGEST_MAX_BODY_BYTES: "-1",
        INGEST_MAX_ENTRIES_PER_REQUEST: "0",
        INGEST_MAX_ENTRY_BYTES: "1.5",
        INGEST_RATE_LIMIT_ENTRIES_PER_SECOND: "fast",
        LOG_LEVEL: "loud",
        REDIS_URL: "http://localhost",
      });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(ConfigError);
    const problems = (thrown as ConfigError).problems;
    expect(problems).toHaveLength(7);
    for (const name of [
      "INGEST_PORT",
      "INGEST_MAX_BODY_BYTES",
      "INGEST_MAX_ENTRIES_PER_REQUEST",
      "INGEST_MAX_ENTRY_BYTES",
      "INGEST_RATE_LIMIT_ENTRIES_PER_SECOND",
      "LOG_LEVEL",
      "REDIS_URL",
    ]) {
      expect(problems.some((problem) => problem.startsWith(`${name}=`))).toBe(true);
    }
  });
});
