import { describe, expect, it } from "vitest";
import { createLogger } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import { RunEventSequencer } from "../execution/run-event-sequencer.js";
import { buildStageView } from "./stage-view.js";

function sequence(build: (events: RunEventSequencer) => void): RunEvent[] {
  const out: RunEvent[] = [];
  build(
    new RunEventSequencer(
      "r",
      "a",
      { event: (event) => out.push(event), sample: () => {}, log: () => {} },
      createLogger("test", "error", () => {}),
    ),
  );
  return out;
}

describe("buildStageView", () => {
  it("folds queued → running → retried → succeeded, failures and skips, with the latest attempt's figures", () => {
    const events = sequence((e) => {
      e.emit("run.started", { message: "" }, { workflow: "w", stage_count: 3, concurrency: 2 });
      e.emit("stage.queued", { message: "", stage_name: "build", group_id: "g0" }, { workflow: "w", driver: "shell", depends_on: [] });
      e.emit("stage.queued", { message: "", stage_name: "test", group_id: "g1" }, { workflow: "w", driver: "node", depends_on: ["build"] });
      e.emit("stage.queued", { message: "", stage_name: "deploy", group_id: "g2" }, { workflow: "w", driver: "shell", depends_on: ["test"] });
      e.emit("stage.started", { message: "", stage_name: "build", group_id: "g0" }, { workflow: "w", driver: "shell", stage_attempt: 1, max_attempts: 2 });
      e.emit(
        "stage.failed",
        { message: "", stage_name: "build", group_id: "g0" },
        {
          workflow: "w",
          driver: "shell",
          stage_attempt: 1,
          duration_ms: 5,
          exit_code: 1,
          error: "exited with code 1",
          will_retry: true,
          timed_out: false,
          cancelled: false,
          allowed_failure: false,
        },
      );
    });
    const retrying = buildStageView(events);
    expect(retrying.map((stage) => [stage.stage_name, stage.status])).toEqual([
      ["build", "running"],
      ["test", "queued"],
      ["deploy", "queued"],
    ]);
    expect(retrying[0]).toMatchObject({ stage_attempt: 1, exit_code: 1, completed_at: null });
    expect(retrying[1]).toMatchObject({ group_id: "g1", depends_on: ["build"], driver: "node", stage_attempt: 0, started_at: null });

    const more = sequence((e) => {
      e.emit("stage.started", { message: "", stage_name: "build", group_id: "g0" }, { workflow: "w", driver: "shell", stage_attempt: 2, max_attempts: 2 });
      e.emit(
        "stage.completed",
        { message: "", stage_name: "build", group_id: "g0" },
        { workflow: "w", driver: "shell", stage_attempt: 2, duration_ms: 7, exit_code: 0 },
      );
      e.emit("stage.started", { message: "", stage_name: "test", group_id: "g1" }, { workflow: "w", driver: "node", stage_attempt: 1, max_attempts: 1 });
      e.emit(
        "stage.failed",
        { message: "", stage_name: "test", group_id: "g1" },
        {
          workflow: "w",
          driver: "node",
          stage_attempt: 1,
          duration_ms: 3,
          exit_code: 2,
          error: "exited with code 2",
          will_retry: false,
          timed_out: false,
          cancelled: false,
          allowed_failure: false,
        },
      );
      e.emit(
        "stage.skipped",
        { message: "", stage_name: "deploy", group_id: "g2" },
        { workflow: "w", driver: "shell", stage_attempt: 0, reason: "dependency" },
      );
    });
    const ended = buildStageView([...events, ...more]);
    expect(ended.map((stage) => [stage.stage_name, stage.status, stage.stage_attempt, stage.exit_code, stage.duration_ms])).toEqual([
      ["build", "succeeded", 2, 0, 7],
      ["test", "failed", 1, 2, 3],
      ["deploy", "skipped", 0, null, null],
    ]);
    expect(ended[0]?.started_at).toBe(more[0]?.timestamp);
    expect(ended[0]?.completed_at).toBe(more[1]?.timestamp);
  });

  it("upserts a stage from any stage event, without its stage.queued", () => {
    const events = sequence((e) => {
      e.emit("stage.started", { message: "", stage_name: "late", group_id: "g3" }, { workflow: "w", driver: "shell", stage_attempt: 1, max_attempts: 1 });
    });
    expect(buildStageView(events)).toEqual([
      {
        stage_name: "late",
        group_id: "g3",
        depends_on: [],
        driver: "shell",
        status: "running",
        stage_attempt: 1,
        started_at: events[0]?.timestamp,
        completed_at: null,
        duration_ms: null,
        exit_code: null,
      },
    ]);
  });
});
