/** flowmeter.run_telemetry: host samples and step heartbeats (migration 0012). Cumulative counters stored as sent. */
import { toClickHouseTime } from "@flowmeter/shared";
import type { TelemetrySample } from "@flowmeter/shared";
import type { RawTable } from "../raw-table.js";

export interface RunTelemetryRow {
  run_id: string;
  attempt_id: string;
  seq: number;
  kind: "host" | "heartbeat";
  ts: string;
  received_at: string;
  stage_name: string;
  group_id: string;
  stage_attempt: number;
  rss_bytes: number;
  cpu_percent: number;
  io_read_bytes: number;
  io_write_bytes: number;
  elapsed_secs: number;
  stdout_bytes: number;
  stderr_bytes: number;
  stdout_delta_bytes: number;
  stderr_delta_bytes: number;
  stagnant_heartbeats: number;
  pid: number | null;
  pid_alive: boolean;
  output_state: string;
}

export const COLUMNS = [
  "run_id",
  "attempt_id",
  "seq",
  "kind",
  "ts",
  "received_at",
  "stage_name",
  "group_id",
  "stage_attempt",
  "rss_bytes",
  "cpu_percent",
  "io_read_bytes",
  "io_write_bytes",
  "elapsed_secs",
  "stdout_bytes",
  "stderr_bytes",
  "stdout_delta_bytes",
  "stderr_delta_bytes",
  "stagnant_heartbeats",
  "pid",
  "pid_alive",
  "output_state",
] as const satisfies readonly (keyof RunTelemetryRow)[];

const NO_HOST = { rss_bytes: 0, cpu_percent: 0, io_read_bytes: 0, io_write_bytes: 0 };
const NO_HEARTBEAT = {
  elapsed_secs: 0,
  stdout_bytes: 0,
  stderr_bytes: 0,
  stdout_delta_bytes: 0,
  stderr_delta_bytes: 0,
  stagnant_heartbeats: 0,
  pid: null,
  pid_alive: false,
  output_state: "",
};

export function toRow(sample: TelemetrySample, receivedAt: string): RunTelemetryRow {
  const base = {
    run_id: sample.run_id,
    attempt_id: sample.attempt_id,
    seq: sample.seq,
    ts: toClickHouseTime(sample.timestamp_ms),
    received_at: receivedAt,
    stage_name: sample.stage_name,
  };
  if (sample.kind === "host") return { ...base, kind: "host", group_id: "", stage_attempt: 0, ...sample.host, ...NO_HEARTBEAT };
  return { ...base, kind: "heartbeat", group_id: sample.group_id, stage_attempt: sample.stage_attempt, ...NO_HOST, ...sample.heartbeat };
}

export const runTelemetryTable: RawTable<RunTelemetryRow> = {
  name: "flowmeter.run_telemetry",
  label: "run_telemetry",
  hasViews: false,
  columns: COLUMNS,
  identity: [
    { column: "ts", type: "DateTime64(3, 'UTC')" },
    { column: "attempt_id", type: "String" },
    { column: "seq", type: "UInt64" },
  ],
};
