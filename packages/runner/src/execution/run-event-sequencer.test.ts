import { describe, expect, it } from "vitest";
import { createLogger, uuidV7 } from "@flowmeter/platform";
import { type RunEvent, type TelemetrySample } from "@flowmeter/shared";
import { RunEventSequencer } from "./run-event-sequencer.js";

describe("uuidV7", () => {
  it("is a version 7 UUID that sorts in creation order, even within one millisecond", () => {
    const ids = Array.from({ length: 5000 }, () => uuidV7(1_700_000_000_000));
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect([...ids].sort()).toEqual(ids);
    expect(new Set(ids).size).toBe(ids.length);
    const now = Date.now();
    expect(parseInt(uuidV7(now).replace(/-/g, "").slice(0, 12), 16)).toBe(now); // 48-bit ms timestamp first
  });
});

describe("RunEventSequencer", () => {
  it("numbers events from 0 and samples from 1, and refuses anything after the terminal event", () => {
    const events: RunEvent[] = [];
    const samples: TelemetrySample[] = [];
    const errors: string[] = [];
    const sequencer = new RunEventSequencer(
      "r",
      "a",
      { event: (event) => events.push(event), sample: (sample) => samples.push(sample), log: () => {} },
      createLogger("runner", "error", (line) => errors.push(line)),
    );
    sequencer.emit("run.started", { message: "go" }, { workflow: "w", stage_count: 0, concurrency: 1 });
    sequencer.host("", { rss_bytes: 1, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 });
    sequencer.emit("run.failed", { message: "x", level: "error" }, { workflow: "w", duration_ms: 1, error: "boom" });
    sequencer.emit("stage.skipped", { message: "late", stage_name: "s", group_id: "g0" }, { workflow: "w", driver: "shell", stage_attempt: 0, reason: "late" });
    sequencer.host("", { rss_bytes: 1, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 });
    expect(events.map((event) => [event.seq, event.event_type, event.event_type_v2])).toEqual([
      [0, "run.started", "RunStarted"],
      [1, "run.failed", "RunFailed"],
    ]);
    expect(samples.map((sample) => sample.seq)).toEqual([1]);
    expect(sequencer.ended).toBe(true);
    expect(errors.join("")).toContain("event after the terminal event dropped");
  });

  it("survives an output that throws", () => {
    const sequencer = new RunEventSequencer(
      "r",
      "a",
      {
        event: () => {
          throw new Error("broken");
        },
        sample: () => {},
        log: () => {},
      },
      createLogger("runner", "error", () => {}),
    );
    expect(() => sequencer.emit("run.started", { message: "go" }, { workflow: "w", stage_count: 0, concurrency: 1 })).not.toThrow();
  });
});
