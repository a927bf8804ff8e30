import { describe, expect, it } from "vitest";
import { EnvReader } from "./config.js";
import { createLogger, errorMessage } from "./logger.js";
import { redactCredentials, redactUrl } from "./redact.js";

describe("redactUrl", () => {
  it("replaces the password, or a user name standing alone", () => {
    expect(redactUrl("redis://:hunter2@127.0.0.1:6379")).toBe("redis://:***@127.0.0.1:6379");
    expect(redactUrl("rediss://admin:hunter2@db.example:6380/2")).toBe("rediss://admin:***@db.example:6380/2");
    expect(redactUrl("https://ghp_token@github.com/x.git")).toBe("https://***@github.com/x.git");
    expect(redactUrl("redis://127.0.0.1:6379")).toBe("redis://127.0.0.1:6379");
    expect(redactUrl("not a url :hunter2@")).toBe("(invalid url)");
  });
});

describe("redactCredentials", () => {
  it("redacts every URL's credentials in a text and leaves the rest", () => {
    expect(redactCredentials("redis=redis://:hunter2@127.0.0.1:6379 prefix=fm")).toBe("redis=redis://:***@127.0.0.1:6379 prefix=fm");
    expect(redactCredentials('a "rediss://u:p%40ss@h:1" and https://tok@h/x')).toBe('a "rediss://u:***@h:1" and https://***@h/x');
    expect(redactCredentials("mail me at a@b.c, see https://h/p@x")).toBe("mail me at a@b.c, see https://h/p@x");
    expect(redactCredentials("no urls here")).toBe("no urls here");
  });

  it("keeps passwords out of every log line and config error", () => {
    const lines: string[] = [];
    const logger = createLogger("test", "info", (line) => lines.push(line));
    logger.info("started", { redis: "redis://:hunter2@127.0.0.1:6379" });
    logger.warn("redis unreachable", { error: "connect to redis://user:hunter2@db failed" });
    expect(lines.join("")).not.toContain("hunter2");
    expect(lines[0]).toContain("redis=redis://:***@127.0.0.1:6379");
    expect(errorMessage(new Error("Redis at redis://:hunter2@db:6379 is not reachable"))).toBe("Redis at redis://:***@db:6379 is not reachable");

    const reader = new EnvReader({ REDIS_URL: "http://:hunter2@127.0.0.1:6379" });
    reader.url("REDIS_URL", ["redis:", "rediss:"]);
    expect(() => reader.finish({})).toThrow(/REDIS_URL="http:\/\/:\*\*\*@127\.0\.0\.1:6379": expected a redis: or rediss: URL/);
  });
});
