/** flowmeter.ingestion_warnings: one row per repaired or refused client entry (migration 0016). */
import { toClickHouseTime } from "@flowmeter/shared";
import type { IngestionWarning } from "@flowmeter/shared";
import type { RawTable } from "../raw-table.js";

export interface IngestionWarningRow {
  received_at: string;
  warning_id: string;
  reason: string;
  entry_id: string;
  distinct_id: string;
  source: string;
  detail: string;
  excerpt: string;
}

export const COLUMNS = [
  "received_at",
  "warning_id",
  "reason",
  "entry_id",
  "distinct_id",
  "source",
  "detail",
  "excerpt",
] as const satisfies readonly (keyof IngestionWarningRow)[];

export function toRow(warning: IngestionWarning): IngestionWarningRow {
  const { received_at_ms: receivedAtMs, ...rest } = warning;
  return { received_at: toClickHouseTime(receivedAtMs), ...rest };
}

export const ingestionWarningsTable: RawTable<IngestionWarningRow> = {
  name: "flowmeter.ingestion_warnings",
  label: "ingestion_warnings",
  hasViews: false,
  columns: COLUMNS,
  identity: [
    { column: "received_at", type: "DateTime64(3, 'UTC')" },
    { column: "warning_id", type: "String" },
  ],
};
