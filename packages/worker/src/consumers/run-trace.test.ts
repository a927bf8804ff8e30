import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import type { RunEvent } from "@flowmeter/shared";
import { runSpanId, runTraceId, spanOfRunEvent, taskSpanId } from "./run-trace.js";

const envelope = {
  event_id: "0190a0a0-0000-7000-8000-000000000001",
  run_id: "run-1",
  attempt_id: "attempt-1",
  seq: 5,
  ts_ms: Date.UTC(2026, 11, 7, 12, 0, 10, 250),
  timestamp: "2026-12-07T12:00:10.250Z",
  level: "info",
  message: "",
  group_id: "g1",
} as const;

describe("spanOfRunEvent", () => {
  it("derives the trace id from the run id and the span ids from the run and the stage attempt", () => {
    expect(runTraceId("run-1")).toBe(createHash("sha256").update("run-1").digest("hex").slice(0, 32));
    expect(runSpanId("run-1")).toHaveLength(16);
    expect(taskSpanId("attempt-1", "build", 1)).not.toBe(taskSpanId("attempt-1", "build", 2));
  });

  it("maps a failed stage attempt to an INTERNAL span under the run span, ending at the event", () => {
    const event: RunEvent = {
      ...envelope,
      level: "error",
      stage_name: "smoke",
      event_type: "stage.failed",
      event_type_v2: "StageFailed",
      payload: {
        workflow: "deploy",
        driver: "shell",
        stage_attempt: 1,
        duration_ms: 1250,
        exit_code: 1,
        error: "exit code 1",
        will_retry: true,
        timed_out: false,
        cancelled: false,
        allowed_failure: false,
      },
    };
    const span = spanOfRunEvent(event);
    expect(span).toMatchObject({
      Timestamp: "2026-12-07 12:00:09.000000000",
      TraceId: runTraceId("run-1"),
      SpanId: taskSpanId("attempt-1", "smoke", 1),
      ParentSpanId: runSpanId("run-1"),
      SpanName: "smoke",
      SpanKind: "Internal",
      ServiceName: "flowmeter-runner",
      Duration: 1_250_000_000,
      StatusCode: "Error",
      StatusMessage: "exit code 1",
      SpanAttributes: {
        "cicd.pipeline.name": "deploy",
        "cicd.pipeline.run.id": "run-1",
        "cicd.pipeline.task.name": "smoke",
        "cicd.pipeline.task.run.id": "attempt-1/smoke/1",
        "cicd.pipeline.task.run.result": "failure",
        "flowmeter.stage.attempt": "1",
        "flowmeter.stage.driver": "shell",
        "process.exit.code": "1",
        "flowmeter.stage.will_retry": "true",
        "flowmeter.stage.allowed_failure": "false",
      },
    });
    expect(spanOfRunEvent(event)?.RecordId).toBe(span?.RecordId);
  });

  it("maps a run's end to a SERVER span `RUN {workflow}` with the run's result", () => {
    const event: RunEvent = {
      ...envelope,
      stage_name: null,
      level: "error",
      event_type: "run.failed",
      event_type_v2: "RunFailed",
      payload: { workflow: "deploy", duration_ms: 10_250, error: "run timed out", reason: "run_timed_out" },
    };
    expect(spanOfRunEvent(event)).toMatchObject({
      Timestamp: "2026-12-07 12:00:00.000000000",
      SpanId: runSpanId("run-1"),
      ParentSpanId: "",
      SpanName: "RUN deploy",
      SpanKind: "Server",
      Duration: 10_250_000_000,
      StatusCode: "Error",
      SpanAttributes: {
        "cicd.pipeline.action.name": "RUN",
        "cicd.pipeline.name": "deploy",
        "cicd.pipeline.run.id": "run-1",
        "cicd.pipeline.result": "timeout",
      },
    });
  });

  it("maps a skipped stage to a zero-length span with result skip, and ignores events that end nothing", () => {
    const skipped: RunEvent = {
      ...envelope,
      stage_name: "publish",
      event_type: "stage.skipped",
      event_type_v2: "StageSkipped",
      payload: { workflow: "deploy", driver: "shell", stage_attempt: 0, reason: "dependency failed" },
    };
    expect(spanOfRunEvent(skipped)).toMatchObject({ Duration: 0, StatusCode: "Unset", SpanAttributes: { "cicd.pipeline.task.run.result": "skip" } });
    const started: RunEvent = {
      ...envelope,
      stage_name: null,
      event_type: "run.started",
      event_type_v2: "RunStarted",
      payload: { workflow: "deploy", stage_count: 5, concurrency: 4 },
    };
    expect(spanOfRunEvent(started)).toBeUndefined();
  });
});
