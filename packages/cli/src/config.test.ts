import { resolve } from "node:path";
import { describe, expect, it } from "vitest";
import { embeddedQueuePrefix, parseStartConfig } from "./config.js";

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
