/**
 * Runs as traces, following the OpenTelemetry CI/CD semantic conventions (opentelemetry.io/docs/specs/semconv/cicd):
 * each run a SERVER span `RUN {workflow}` (cicd.pipeline.name, cicd.pipeline.run.id, cicd.pipeline.result), each
 * stage attempt an INTERNAL span under it named after the stage (cicd.pipeline.task.name, cicd.pipeline.task.run.id,
 * cicd.pipeline.task.run.result), as rows of otel_traces built from the runner's terminal events: a stage attempt's
 * span from its stage.completed, stage.failed or stage.skipped, the run's from its run.finished, run.failed or
 * run.cancelled. Each span is so written when its attempt ends, not after the run.
 *
 * Every id is derived, never random: the trace id is the first 16 bytes of SHA-256(run_id), the run span's id the
 * first 8 bytes of SHA-256("run/" + run_id), a stage attempt's the first 8 bytes of SHA-256 of its task run id
 * (`{attempt_id}/{stage}/{stage_attempt}`), and RecordId the first 16 bytes of SHA-256 of the row, as ingest's
 * record-id.ts: a redelivered job or a second runner continuing the run writes into the same trace, and the same
 * event twice is one span.
 */
import { createHash } from "node:crypto";
import type { OtelAttributes, OtelSpanRow, RunEvent, RunEventOf } from "@flowmeter/shared";

export const RUN_TRACE_SERVICE_NAME = "flowmeter-runner";
export const RUN_TRACE_SCOPE_NAME = "flowmeter.run-events";

/** cicd.pipeline.result and cicd.pipeline.task.run.result values (the conventions' enum). */
export type CicdResult = "success" | "failure" | "error" | "timeout" | "cancellation" | "skip";

function sha256Hex(text: string, bytes: number): string {
  return createHash("sha256")
    .update(text)
    .digest("hex")
    .slice(0, bytes * 2);
}

export const runTraceId = (runId: string): string => sha256Hex(runId, 16);
export const runSpanId = (runId: string): string => sha256Hex(`run/${runId}`, 8);
export const taskRunId = (attemptId: string, stage: string, stageAttempt: number): string => `${attemptId}/${stage}/${stageAttempt}`;
export const taskSpanId = (attemptId: string, stage: string, stageAttempt: number): string => sha256Hex(taskRunId(attemptId, stage, stageAttempt), 8);

/** DateTime64(9) text of a time in milliseconds, with all nine digits, as ClickHouse returns it (the lookup compares text). */
function nanosText(epochMs: number): string {
  const iso = new Date(epochMs).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 23)}000000`;
}

function stageResult(event: RunEventOf<"stage.completed"> | RunEventOf<"stage.failed"> | RunEventOf<"stage.skipped">): CicdResult {
  if (event.event_type === "stage.completed") return "success";
  if (event.event_type === "stage.skipped") return "skip";
  if (event.payload.cancelled) return "cancellation";
  if (event.payload.timed_out) return "timeout";
  return "failure";
}

function runResult(event: RunEventOf<"run.finished"> | RunEventOf<"run.failed"> | RunEventOf<"run.cancelled">): CicdResult {
  if (event.event_type === "run.finished") return "success";
  if (event.event_type === "run.cancelled") return "cancellation";
  if (event.payload.reason === "run_timed_out") return "timeout";
  if (event.payload.reason === undefined || event.payload.reason === "stage_failed") return "failure";
  return "error";
}

interface SpanFields {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: "Server" | "Internal";
  startMs: number;
  durationMs: number;
  attributes: OtelAttributes;
  result: CicdResult;
  statusMessage: string;
}

function spanRow(fields: SpanFields): OtelSpanRow {
  const failed = fields.result === "failure" || fields.result === "error" || fields.result === "timeout";
  const row: Omit<OtelSpanRow, "RecordId"> = {
    Timestamp: nanosText(fields.startMs),
    TraceId: fields.traceId,
    SpanId: fields.spanId,
    ParentSpanId: fields.parentSpanId,
    TraceState: "",
    SpanName: fields.name,
    SpanKind: fields.kind,
    ServiceName: RUN_TRACE_SERVICE_NAME,
    ResourceAttributes: { "service.name": RUN_TRACE_SERVICE_NAME },
    ScopeName: RUN_TRACE_SCOPE_NAME,
    ScopeVersion: "",
    SpanAttributes: fields.attributes,
    Duration: Math.max(0, fields.durationMs) * 1_000_000,
    StatusCode: failed ? "Error" : "Unset",
    StatusMessage: failed ? fields.statusMessage : "",
    "Events.Timestamp": [],
    "Events.Name": [],
    "Events.Attributes": [],
    "Links.TraceId": [],
    "Links.SpanId": [],
    "Links.TraceState": [],
    "Links.Attributes": [],
  };
  return { ...row, RecordId: sha256Hex(JSON.stringify(row), 16) };
}

/** The span a terminal run or stage event ends; undefined for the other events. */
export function spanOfRunEvent(event: RunEvent): OtelSpanRow | undefined {
  const traceId = runTraceId(event.run_id);
  switch (event.event_type) {
    case "stage.completed":
    case "stage.failed":
    case "stage.skipped": {
      const stage = event.stage_name ?? "";
      const durationMs = event.event_type === "stage.skipped" ? 0 : event.payload.duration_ms;
      const result = stageResult(event);
      const attributes: OtelAttributes = {
        "cicd.pipeline.name": event.payload.workflow,
        "cicd.pipeline.run.id": event.run_id,
        "cicd.pipeline.task.name": stage,
        "cicd.pipeline.task.run.id": taskRunId(event.attempt_id, stage, event.payload.stage_attempt),
        "cicd.pipeline.task.run.result": result,
        "flowmeter.stage.attempt": String(event.payload.stage_attempt),
        "flowmeter.stage.driver": event.payload.driver,
      };
      if (event.event_type !== "stage.skipped") attributes["process.exit.code"] = String(event.payload.exit_code);
      if (event.event_type === "stage.failed") {
        attributes["flowmeter.stage.will_retry"] = String(event.payload.will_retry);
        attributes["flowmeter.stage.allowed_failure"] = String(event.payload.allowed_failure);
      }
      return spanRow({
        traceId,
        spanId: taskSpanId(event.attempt_id, stage, event.payload.stage_attempt),
        parentSpanId: runSpanId(event.run_id),
        name: stage,
        kind: "Internal",
        startMs: event.ts_ms - durationMs,
        durationMs,
        attributes,
        result,
        statusMessage: event.event_type === "stage.failed" ? event.payload.error : "",
      });
    }
    case "run.finished":
    case "run.failed":
    case "run.cancelled": {
      const result = runResult(event);
      return spanRow({
        traceId,
        spanId: runSpanId(event.run_id),
        parentSpanId: "",
        name: `RUN ${event.payload.workflow}`,
        kind: "Server",
        startMs: event.ts_ms - event.payload.duration_ms,
        durationMs: event.payload.duration_ms,
        attributes: {
          "cicd.pipeline.action.name": "RUN",
          "cicd.pipeline.name": event.payload.workflow,
          "cicd.pipeline.run.id": event.run_id,
          "cicd.pipeline.result": result,
        },
        result,
        statusMessage: event.event_type === "run.failed" ? event.payload.error : "",
      });
    }
    default:
      return undefined;
  }
}
