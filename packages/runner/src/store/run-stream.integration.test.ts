import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import type { StageLogLine, TelemetrySample } from "@flowmeter/shared";
import { deleteQueuePrefix, testQueuePrefix, testRedisUrl } from "@flowmeter/test-utils";
import { runKey } from "./run-keys.js";
import { RunStream, type RunStreamOptions } from "./run-stream.js";
import { concernsStage, logConcernsStage } from "./run-store.js";

function host(runId: string, seq: number, stageName: string): TelemetrySample {
  return {
    kind: "host",
    run_id: runId,
    attempt_id: "a1",
    seq,
    timestamp_ms: Date.now(),
    stage_name: stageName,
    host: { rss_bytes: 1, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 },
  };
}

function heartbeat(runId: string, seq: number, stageName: string): TelemetrySample {
  return {
    kind: "heartbeat",
    run_id: runId,
    attempt_id: "a1",
    seq,
    timestamp_ms: Date.now(),
    stage_name: stageName,
    group_id: "g0",
    stage_attempt: 1,
    heartbeat: {
      elapsed_secs: 1,
      stdout_bytes: 0,
      stderr_bytes: 0,
      stdout_delta_bytes: 0,
      stderr_delta_bytes: 0,
      stagnant_heartbeats: 0,
      pid: 1,
      pid_alive: true,
      output_state: "quiet",
    },
  };
}

function samplesOf(redis: Redis, options: Omit<RunStreamOptions<TelemetrySample>, "suffix" | "concernsStage">): RunStream<TelemetrySample> {
  return new RunStream<TelemetrySample>(redis, { ...options, suffix: "samples", concernsStage });
}

function logLine(runId: string, seq: number, stageName: string): StageLogLine {
  return {
    run_id: runId,
    attempt_id: "a1",
    seq,
    timestamp_ms: 1,
    stage_name: stageName,
    stage_attempt: 1,
    stream: "stdout",
    line: `line ${seq}`,
    truncated: false,
  };
}

describe("RunStream (real Redis)", () => {
  const prefix = testQueuePrefix("samples");
  let redis: Redis;
  beforeAll(() => {
    redis = new Redis(testRedisUrl());
  });
  afterAll(async () => {
    await deleteQueuePrefix(prefix);
    redis.disconnect();
  });

  it("keeps the newest `capacity` samples per run, with a TTL, and reads from an inclusive seq with a next cursor", async () => {
    const store = samplesOf(redis, { prefix, capacity: 5, retentionSeconds: 120 });
    const samples = Array.from({ length: 12 }, (_, index) => host("s1", index + 1, "a"));
    await store.append(samples.slice(0, 8));
    await store.append(samples.slice(4)); // overlapping replay: no duplicates
    expect(await redis.xlen(runKey(prefix, "s1", "samples"))).toBe(5);
    expect(await redis.ttl(runKey(prefix, "s1", "samples"))).toBeGreaterThan(100);
    const all = await store.read("s1", 0, 100);
    expect(all.items.map((sample) => sample.seq)).toEqual([8, 9, 10, 11, 12]);
    expect(all.nextSeq).toBe(13);
    const page = await store.read("s1", 9, 2);
    expect(page).toMatchObject({ nextSeq: 11, items: [{ seq: 9 }, { seq: 10 }] });
    expect(await store.read("s1", 13, 10)).toEqual({ items: [], nextSeq: 13 });
  });

  it("filters by stage: its heartbeats and the host samples taken while it ran", async () => {
    const store = samplesOf(redis, { prefix, capacity: 100 });
    await store.append([
      host("s2", 1, ""),
      host("s2", 2, "build"),
      heartbeat("s2", 3, "build"),
      host("s2", 4, "build,test"),
      heartbeat("s2", 5, "test"),
      host("s2", 6, "test"),
    ]);
    const build = await store.read("s2", 0, 100, "build");
    expect(build.items.map((sample) => sample.seq)).toEqual([2, 3, 4]);
    expect(build.nextSeq).toBe(7);
    expect((await store.read("s2", 0, 2, "test")).items.map((sample) => sample.seq)).toEqual([4, 5]);
  });

  it("capacity 0 disables the buffer: nothing is written, reads answer nothing; a negative capacity is refused", async () => {
    const store = samplesOf(redis, { prefix, capacity: 0 });
    await store.append([host("s3", 1, "a"), host("s3", 2, "a")]);
    expect(await redis.exists(runKey(prefix, "s3", "samples"))).toBe(0);
    expect(await store.read("s3", 0, 10)).toEqual({ items: [], nextSeq: 0 });
    expect(() => samplesOf(redis, { prefix, capacity: -1 })).toThrow(/at least 0/);
  });

  it("reads the newest lines of a run, or of one stage, oldest first", async () => {
    const logs = new RunStream<StageLogLine>(redis, { prefix, suffix: "logs", capacity: 1000, concernsStage: logConcernsStage });
    await logs.append(Array.from({ length: 600 }, (_, index) => logLine("l1", index + 1, index % 2 === 0 ? "a" : "b")));
    expect((await logs.tail("l1", 3)).map((line) => line.seq)).toEqual([598, 599, 600]);
    expect((await logs.tail("l1", 2, "a")).map((line) => line.seq)).toEqual([597, 599]);
    expect((await logs.tail("l1", 700, "b")).length).toBe(300);
    expect(await logs.tail("nothing", 5)).toEqual([]);
  });
});
