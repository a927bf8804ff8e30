/** flowmeter.cli_invocation_ids: the ids of the entries stored within the dedup horizon (migration 0023). */
import type { RawTable } from "../raw-table.js";

export interface CliInvocationIdRow {
  /** Lowercase hex of entryIdHash(insert_id) (shared/queues.ts). */
  id_hash: string;
  /** When this id was stored, ClickHouse DateTime text (whole seconds). */
  received_at: string;
}

export const cliInvocationIdsTable: RawTable<CliInvocationIdRow> = {
  name: "flowmeter.cli_invocation_ids",
  label: "cli_invocation_ids",
  hasViews: false,
  columns: ["id_hash", "received_at"],
  identity: [{ column: "id_hash", type: "FixedString(32)" }],
};
