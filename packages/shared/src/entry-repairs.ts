/**
 * The `$flowmeter` record ingest adds to an entry it repaired (its repair itself lives in packages/ingest): the
 * contract between ingest, which writes it, and the row mapping (cli-invocation-row.ts) the worker's rows come from.
 */

/** Why an entry was changed; one row per reason in ingestion_warnings. */
export const REPAIR_REASONS = [
  "truncated",
  "timestamp_replaced",
  "id_derived",
  "field_converted",
  "field_defaulted",
  "field_dropped",
  "entry_truncated",
  "invalid_utf8",
  "lone_surrogate",
] as const;
export type RepairReason = (typeof REPAIR_REASONS)[number];

/** What ingest adds to an entry, under the reserved envelope key `$flowmeter` (a client's own is dropped). */
export interface EntryRepairs {
  repairs: RepairReason[];
  /** The client's startedAt / completedAt, as sent, when they were replaced. */
  clientStartedAt?: string;
  clientCompletedAt?: string;
  /** The version of the sender that delivered the entry, from its User-Agent (`swamp-cli/<VERSION>`). */
  clientVersion?: string;
}

export const REPAIRS_KEY = "$flowmeter";
