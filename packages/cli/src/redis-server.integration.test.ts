import { afterEach, describe, expect, it } from "vitest";
import { createLogger, redisAnswersAt } from "@flowmeter/platform";
import { freePort, tempDir, testRedisUrl } from "@flowmeter/test-utils";
import { RedisUnavailableError, chooseRedis, type RedisChoice } from "./redis-server.js";

const logger = createLogger("test", "error");

describe("chooseRedis", () => {
  const data = tempDir("redis-choice");
  let choice: RedisChoice | undefined;

  afterEach(async () => {
    if (choice?.process) {
      choice.process.kill("SIGTERM");
      await new Promise((resolve) => choice?.process?.once("exit", resolve));
    }
    choice = undefined;
  });

  it("uses REDIS_URL when it answers", async () => {
    choice = await chooseRedis(testRedisUrl(), data.path, logger);
    expect(choice).toEqual({ url: testRedisUrl(), process: undefined });
  });

  it("refuses a REDIS_URL that does not answer, saying what to do", async () => {
    const url = `redis://127.0.0.1:${await freePort()}`;
    await expect(chooseRedis(url, data.path, logger)).rejects.toThrow(RedisUnavailableError);
    await expect(chooseRedis(url, data.path, logger)).rejects.toThrow(/does not answer.*unset REDIS_URL/);
  });

  it("launches a private redis-server (AOF on, noeviction) when nothing answers locally", async () => {
    const port = await freePort();
    choice = await chooseRedis(undefined, data.path, logger, port);
    expect(choice.url).toBe(`redis://127.0.0.1:${port}`);
    expect(choice.process).toBeDefined();
    expect(await redisAnswersAt(choice.url)).toBe(true);
    const { Redis } = await import("ioredis");
    const redis = new Redis(choice.url);
    expect(await redis.config("GET", "appendonly")).toEqual(["appendonly", "yes"]);
    expect(await redis.config("GET", "maxmemory-policy")).toEqual(["maxmemory-policy", "noeviction"]);
    redis.disconnect();
  });

  it("names what to install when redis-server is missing", async () => {
    const port = await freePort();
    const path = process.env["PATH"];
    process.env["PATH"] = "/nonexistent";
    try {
      await expect(chooseRedis(undefined, data.path, logger, port)).rejects.toThrow(/apt-get install -y redis-server/);
    } finally {
      process.env["PATH"] = path;
    }
  });
});
