/** flowmeter.run_logs: the lines stages wrote (migration 0022), one row per (attempt_id, seq). */
import { toClickHouseTime } from "@flowmeter/shared";
import type { StageLogLine } from "@flowmeter/shared";
import type { RawTable } from "../raw-table.js";

export interface RunLogRow {
  run_id: string;
  attempt_id: string;
  seq: number;
  ts: string;
  received_at: string;
  stage_name: string;
  stage_attempt: number;
  stream: StageLogLine["stream"];
  line: string;
  truncated: boolean;
}

export const COLUMNS = [
  "run_id",
  "attempt_id",
  "seq",
  "ts",
  "received_at",
  "stage_name",
  "stage_attempt",
  "stream",
  "line",
  "truncated",
] as const satisfies readonly (keyof RunLogRow)[];

export function toRow(line: StageLogLine, receivedAt: string): RunLogRow {
  return {
    run_id: line.run_id,
    attempt_id: line.attempt_id,
    seq: line.seq,
    ts: toClickHouseTime(line.timestamp_ms),
    received_at: receivedAt,
    stage_name: line.stage_name,
    stage_attempt: line.stage_attempt,
    stream: line.stream,
    line: line.line,
    truncated: line.truncated,
  };
}

export const runLogsTable: RawTable<RunLogRow> = {
  name: "flowmeter.run_logs",
  label: "run_logs",
  hasViews: false,
  columns: COLUMNS,
  identity: [
    { column: "run_id", type: "String" },
    { column: "attempt_id", type: "String" },
    { column: "seq", type: "UInt64" },
  ],
};
