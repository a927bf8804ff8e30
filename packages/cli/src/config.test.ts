import { resolve } from "node:path";
import { ConfigError } from "@flowmeter/platform";
import { describe, expect, it } from "vitest";
import { embeddedQueuePrefix, parseRedisClientConfig, parseStartConfig, parseWorkerUrl } from "./config.js";

describe("embeddedQueuePrefix", () => {
  it("is private to the data directory, the same however the directory is named", () => {
    const here = embeddedQueuePrefix({ FLOWMETER_DATA_DIR: "/tmp/a/.flowmeter" });
    expect(here).toMatch(/^flowmeter-[0-9a-f]{10}$/);
    expect(embeddedQueuePrefix({ FLOWMETER_DATA_DIR: "/tmp/a/b/../.flowmeter" })).toBe(here);
    expect(embeddedQueuePrefix({ FLOWMETER_DATA_DIR: "/tmp/b/.flowmeter" })).not.toBe(here);
    expect(embeddedQueuePrefix({})).toBe(embeddedQueuePrefix({ FLOWMETER_DATA_DIR: resolve(".flowmeter") }));
  });

  it("gives way to QUEUE_PREFIX", () => {
    expect(embeddedQueuePrefix({ QUEUE_PREFIX: "shared", FLOWMETER_DATA_DIR: "/tmp/a" })).toBe("shared");
    expect(parseStartConfig({ QUEUE_PREFIX: "shared" }).queuePrefix).toBe("shared");
  });
});

describe("parseRedisClientConfig", () => {
  it("defaults to the Redis npm start uses, and refuses a URL that is not Redis's without printing its password", () => {
    expect(parseRedisClientConfig({ QUEUE_PREFIX: "p" })).toEqual({ redisUrl: "redis://127.0.0.1:6379", queuePrefix: "p" });
    expect(() => parseRedisClientConfig({ REDIS_URL: "http://:secret@host:6379" })).toThrow(ConfigError);
    expect(() => parseRedisClientConfig({ REDIS_URL: "http://:secret@host:6379" })).toThrow(
      'REDIS_URL="http://:***@host:6379": expected a redis: or rediss: URL',
    );
  });
});

describe("parseWorkerUrl", () => {
  it("is WORKER_URL, else the worker's port on 127.0.0.1; a bad value is a configuration error", () => {
    expect(parseWorkerUrl({})).toBe("http://127.0.0.1:7072");
    expect(parseWorkerUrl({ WORKER_METRICS_PORT: "9000" })).toBe("http://127.0.0.1:9000");
    expect(parseWorkerUrl({ WORKER_URL: "http://worker:7072/" })).toBe("http://worker:7072");
    expect(() => parseWorkerUrl({ WORKER_URL: "worker:7072x" })).toThrow(ConfigError);
    expect(() => parseWorkerUrl({ WORKER_METRICS_PORT: "abc" })).toThrow('WORKER_METRICS_PORT="abc": expected an integer');
  });
});
