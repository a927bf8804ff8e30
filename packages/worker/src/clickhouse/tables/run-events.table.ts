/** flowmeter.run_events: one row per runner lifecycle event (migration 0011). */
import { toClickHouseTime } from "@flowmeter/shared";
import type { RunEvent } from "@flowmeter/shared";
import type { RawTable } from "../raw-table.js";

export interface RunEventRow {
  event_id: string;
  run_id: string;
  attempt_id: string;
  seq: number;
  ts: string;
  received_at: string;
  level: string;
  event_type: string;
  event_type_v2: string;
  message: string;
  workflow: string;
  stage_name: string;
  group_id: string;
  driver: string;
  stage_attempt: number;
  stage_outcome: "" | "succeeded" | "failed" | "skipped";
  duration_ms: number;
  exit_code: number | null;
  error: string;
  payload: string;
}

export const COLUMNS = [
  "event_id",
  "run_id",
  "attempt_id",
  "seq",
  "ts",
  "received_at",
  "level",
  "event_type",
  "event_type_v2",
  "message",
  "workflow",
  "stage_name",
  "group_id",
  "driver",
  "stage_attempt",
  "stage_outcome",
  "duration_ms",
  "exit_code",
  "error",
  "payload",
] as const satisfies readonly (keyof RunEventRow)[];

/** The outcome when this event ends its stage: a failed attempt that will be retried does not. */
export function stageOutcome(event: RunEvent): RunEventRow["stage_outcome"] {
  switch (event.event_type) {
    case "stage.completed":
      return "succeeded";
    case "stage.failed":
      return event.payload.will_retry ? "" : "failed";
    case "stage.skipped":
      return "skipped";
    default:
      return "";
  }
}

export function toRow(event: RunEvent, receivedAt: string): RunEventRow {
  const payload: Record<string, unknown> = event.payload;
  const numberField = (name: string) => (typeof payload[name] === "number" ? payload[name] : undefined);
  const textField = (name: string) => (typeof payload[name] === "string" ? payload[name] : "");
  return {
    event_id: event.event_id,
    run_id: event.run_id,
    attempt_id: event.attempt_id,
    seq: event.seq,
    ts: toClickHouseTime(event.ts_ms),
    received_at: receivedAt,
    level: event.level,
    event_type: event.event_type,
    event_type_v2: event.event_type_v2,
    message: event.message,
    workflow: textField("workflow"),
    stage_name: event.stage_name ?? "",
    group_id: event.group_id ?? "",
    driver: textField("driver"),
    stage_attempt: numberField("stage_attempt") ?? 0,
    stage_outcome: stageOutcome(event),
    duration_ms: numberField("duration_ms") ?? 0,
    exit_code: numberField("exit_code") ?? null,
    error: textField("error") || textField("reason"),
    payload: JSON.stringify(event.payload),
  };
}

export const runEventsTable: RawTable<RunEventRow> = {
  name: "flowmeter.run_events",
  label: "run_events",
  hasViews: true,
  columns: COLUMNS,
  identity: [
    { column: "ts", type: "DateTime64(3, 'UTC')" },
    { column: "event_id", type: "String" },
  ],
};
