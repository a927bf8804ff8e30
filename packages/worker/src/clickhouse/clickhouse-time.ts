/** ClickHouse DateTime64 text ('2026-05-09 12:00:01.000'), always UTC. */
export function toClickHouseTime(epochMs: number): string {
  return new Date(epochMs).toISOString().replace("T", " ").replace("Z", "");
}

const UTC_MILLIS = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** ClickHouse DateTime64 text of an ISO 8601 timestamp; the common `toISOString()` shape is rewritten without a Date. */
export function isoToClickHouseTime(iso: string): string {
  if (UTC_MILLIS.test(iso)) return `${iso.slice(0, 10)} ${iso.slice(11, 23)}`;
  const epochMs = Date.parse(iso);
  return toClickHouseTime(Number.isFinite(epochMs) ? epochMs : 0);
}
