/** flowmeter.cli_invocations: one row per accepted cli_invocation entry (migration 0001; the row mapping is shared's cli-invocation-row.ts). */
import { CLI_INVOCATION_COLUMNS, type CliInvocationRow } from "@flowmeter/shared";
import type { RawTable } from "../raw-table.js";

export const TABLE = "flowmeter.cli_invocations";

export const cliInvocationsTable: RawTable<CliInvocationRow> = {
  name: TABLE,
  label: "cli_invocations",
  hasViews: true,
  columns: CLI_INVOCATION_COLUMNS,
  // insert_id alone: a re-send with another startedAt (a client clock fixed, a timestamp ingest replaced by the receive
  // time) is the same entry. Its writer looks ids up in cli_invocation_ids (consumers/partition-writer.ts), not here.
  identity: [{ column: "insert_id", type: "String" }],
};
