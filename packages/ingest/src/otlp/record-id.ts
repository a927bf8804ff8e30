/**
 * A record's identity, from its content: the first 128 bits (hex) of the SHA-256 of its row as ingest builds it
 * (every column but RecordId, in table order: resource, scope and the record's own fields, times in nanoseconds).
 * An exporter that retries sends the same bytes, so the retried records get the same ids and the worker stores them
 * once (it looks ids up by ServiceName, time and RecordId before inserting). Two records identical in every field,
 * down to the nanosecond, are one record. A record with no time at all gets the receive time, so its retry is not
 * recognised.
 */
import { createHash } from "node:crypto";

export function recordId(row: object): string {
  return createHash("sha256").update(JSON.stringify(row)).digest("hex").slice(0, 32);
}
