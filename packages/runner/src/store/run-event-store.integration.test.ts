import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Redis } from "ioredis";
import { uuidV7 } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import { deleteQueuePrefix, testQueuePrefix, testRedisUrl } from "@flowmeter/test-utils";
import { UnknownEventCursorError } from "../errors.js";
import { RunEventStore } from "./run-event-store.js";
import { runKey, runLimits } from "./run-keys.js";

function event(runId: string, seq: number, type: "stage.queued" | "run.finished" = "stage.queued"): RunEvent {
  const now = Date.now();
  const base = {
    event_id: uuidV7(now),
    run_id: runId,
    attempt_id: "a1",
    seq,
    ts_ms: now,
    timestamp: new Date(now).toISOString(),
    level: "info" as const,
    message: "m",
  };
  return type === "run.finished"
    ? { ...base, event_type: type, event_type_v2: "RunCompleted", stage_name: null, group_id: null, payload: { workflow: "w", duration_ms: 1 } }
    : { ...base, event_type: type, event_type_v2: "StageQueued", stage_name: "s", group_id: "g0", payload: { workflow: "w", driver: "shell", depends_on: [] } };
}

describe("RunEventStore (real Redis)", () => {
  const prefix = testQueuePrefix("store");
  let redis: Redis;
  let store: RunEventStore;
  beforeAll(() => {
    redis = new Redis(testRedisUrl());
    store = new RunEventStore(redis, runLimits({ prefix, retentionSeconds: 3600 }));
  });
  afterAll(async () => {
    await deleteQueuePrefix(prefix);
    redis.disconnect();
  });

  it("stores events by seq, skips re-appended ones, and reads from a seq or event_id cursor", async () => {
    const events = [0, 1, 2, 3].map((seq) => event("r1", seq));
    await store.append(events.slice(0, 3));
    await store.append(events.slice(1)); // a replay overlapping what is stored
    const all = await store.read("r1");
    expect(all.map((item) => item.event_id)).toEqual(events.map((item) => item.event_id));
    expect((await store.read("r1", { afterSeq: 1 })).map((item) => item.seq)).toEqual([2, 3]);
    expect((await store.read("r1", { afterEventId: events[2]?.event_id as string })).map((item) => item.seq)).toEqual([3]);
    expect((await store.read("r1", {}, 2)).map((item) => item.seq)).toEqual([0, 1]);
    expect((await store.last("r1"))?.seq).toBe(3);
    expect(await store.last("nothing")).toBeUndefined();
    await expect(store.read("r1", { afterEventId: "no-such-event" })).rejects.toBeInstanceOf(UnknownEventCursorError);
    const ttl = await redis.ttl(runKey(prefix, "r1", "events"));
    expect(ttl).toBeGreaterThan(3000);
    expect(await redis.ttl(runKey(prefix, "r1", "event-ids"))).toBeGreaterThan(3000);
  });

  it("refuses events after the run's terminal event (fenced) but not re-appends of stored ones, and pages with has_more", async () => {
    const events = [event("r3", 0), event("r3", 1), event("r3", 2, "run.finished")];
    expect(await store.append(events)).toEqual([]);
    const late = [event("r3", 3), { ...event("r3", 4, "run.finished"), attempt_id: "a2" }];
    expect((await store.append([...events, ...late])).map((item) => item.seq)).toEqual([3, 4]); // replayed ones are not "fenced"
    expect((await store.read("r3")).map((item) => item.seq)).toEqual([0, 1, 2]);
    expect(await store.page("r3", {}, 2)).toMatchObject({ hasMore: true, events: [{ seq: 0 }, { seq: 1 }] });
    expect(await store.page("r3", { afterSeq: 1 }, 2)).toMatchObject({ hasMore: false, events: [{ seq: 2 }] });
    expect(await redis.get(runKey(prefix, "r3", "terminal"))).toBe(events[2]?.event_id);
  });

  it("follows a run: stored events first, then new ones, until the terminal event", async () => {
    await store.append([event("r2", 0), event("r2", 1)]);
    const follower = new Redis(testRedisUrl());
    try {
      const seen: number[] = [];
      const following = (async () => {
        for await (const item of new RunEventStore(follower, runLimits({ prefix })).follow("r2", {}, { blockMs: 100 })) seen.push(item.seq);
      })();
      await new Promise((resolve) => setTimeout(resolve, 150));
      await store.append([event("r2", 2), event("r2", 3, "run.finished")]);
      await following;
      expect(seen).toEqual([0, 1, 2, 3]);
    } finally {
      follower.disconnect();
    }
  });

  it("stops following when the signal aborts", async () => {
    const follower = new Redis(testRedisUrl());
    try {
      const controller = new AbortController();
      setTimeout(() => controller.abort(), 100);
      const seen: RunEvent[] = [];
      for await (const item of new RunEventStore(follower, runLimits({ prefix })).follow("never-started", {}, { blockMs: 50, signal: controller.signal }))
        seen.push(item);
      expect(seen).toEqual([]);
    } finally {
      follower.disconnect();
    }
  });
});
