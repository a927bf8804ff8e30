/**
 * Repair before reject (docs/spec.md §2): the real client reads only the status code and deletes what it sent on any
 * 202, so an entry refused inside a 202 is lost. Whatever can be read as a cli_invocation is made valid and stored,
 * with what was changed recorded: over-long strings and lists are cut, missing or unreadable fields get defaults or
 * are derived, timestamps that are not real dates or lie outside what the table keeps are replaced by the time the
 * entry was received (the client's value is kept). Only an entry that is not an object, has no `properties` object
 * or names another event is refused.
 */
import { createHash } from "node:crypto";
import { Ajv, type ErrorObject } from "ajv";
import { CliInvocationEventSchema, TIMESTAMP_MAX_AGE_MS, TIMESTAMP_MAX_AHEAD_MS, validateCliInvocation, type CliInvocationEvent } from "./telemetry.js";

/** Why an entry was changed; one row per reason in ingestion_warnings. */
export const REPAIR_REASONS = ["truncated", "timestamp_replaced", "id_derived", "field_defaulted", "field_dropped", "entry_truncated"] as const;
export type RepairReason = (typeof REPAIR_REASONS)[number];

export interface Repair {
  reason: RepairReason;
  /** Which field, and what was done: `properties.result.errorMessage cut from 1048576 to 4096 characters`. */
  detail: string;
}

/** What ingest adds to a repaired entry, under the reserved envelope key `$flowmeter` (a client's own is dropped). */
export interface EntryRepairs {
  repairs: RepairReason[];
  /** The client's startedAt / completedAt, as sent, when they were replaced. */
  clientStartedAt?: string;
  clientCompletedAt?: string;
}

export const REPAIRS_KEY = "$flowmeter";

export type RepairResult = { ok: true; event: CliInvocationEvent; repairs: Repair[] } | { ok: false; message: string };

const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: false });
const validateAll = ajv.compile<CliInvocationEvent>(CliInvocationEventSchema);

/** Defaults for required fields and for fields whose value cannot be read (by JSON pointer). */
const DEFAULTS: Record<string, () => unknown> = {
  "/distinct_id": () => "unknown",
  "/properties/invocation": () => ({ command: "" }),
  "/properties/invocation/command": () => "",
  "/properties/result": () => ({ status: "error", exitCode: -1 }),
  "/properties/result/status": () => "error",
  "/properties/result/exitCode": () => -1,
  "/properties/durationMs": () => 0,
  "/properties/workflowContext/workflowName": () => "",
  "/properties/workflowContext/runId": () => "",
  "/properties/workflowContext/jobName": () => "",
  "/properties/workflowContext/stepName": () => "",
};

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function pathOf(pointer: string): string {
  return pointer === "" ? "entry" : pointer.slice(1).replaceAll("/", ".");
}

/** The parent container and key of a JSON pointer inside `root`, or undefined when the path does not exist. */
function locate(root: unknown, pointer: string): { parent: Record<string, unknown> | unknown[]; key: string } | undefined {
  const parts = pointer
    .split("/")
    .slice(1)
    .map((part) => part.replaceAll("~1", "/").replaceAll("~0", "~"));
  let node: unknown = root;
  for (const part of parts.slice(0, -1)) {
    if (Array.isArray(node)) node = node[Number(part)];
    else if (isRecord(node)) node = node[part];
    else return undefined;
  }
  const key = parts.at(-1);
  if (key === undefined || (!Array.isArray(node) && !isRecord(node))) return undefined;
  return { parent: node, key };
}

function setAt(root: unknown, pointer: string, value: unknown): void {
  const at = locate(root, pointer);
  if (at === undefined) return;
  if (Array.isArray(at.parent)) at.parent[Number(at.key)] = value;
  else at.parent[at.key] = value;
}

function getAt(root: unknown, pointer: string): unknown {
  const at = locate(root, pointer);
  if (at === undefined) return undefined;
  return Array.isArray(at.parent) ? at.parent[Number(at.key)] : at.parent[at.key];
}

function deleteAt(root: unknown, pointer: string): void {
  const at = locate(root, pointer);
  if (at === undefined) return;
  if (Array.isArray(at.parent)) at.parent.splice(Number(at.key), 1);
  else delete at.parent[at.key];
}

/** One schema error turned into a change of `event`, or undefined when this error cannot be repaired. */
function repairError(event: Record<string, unknown>, error: ErrorObject): Repair | undefined {
  const pointer = error.instancePath;
  const value = getAt(event, pointer);
  switch (error.keyword) {
    case "maxLength": {
      const limit = Number(error.params["limit"]);
      setAt(event, pointer, String(value).slice(0, limit));
      return { reason: "truncated", detail: `${pathOf(pointer)} cut from ${String(value).length} to ${limit} characters` };
    }
    case "maxItems": {
      const limit = Number(error.params["limit"]);
      setAt(event, pointer, (value as unknown[]).slice(0, limit));
      return { reason: "truncated", detail: `${pathOf(pointer)} cut from ${(value as unknown[]).length} to ${limit} items` };
    }
    case "required": {
      const missing = `${pointer}/${String(error.params["missingProperty"])}`;
      if (missing === "/properties/id" || missing === "/properties/startedAt" || missing === "/properties/completedAt") return undefined;
      setAt(event, missing, (DEFAULTS[missing] ?? (() => ""))());
      return { reason: "field_defaulted", detail: `${pathOf(missing)} was missing` };
    }
    default: {
      if (pointer === "/properties/id" || pointer === "/properties/startedAt" || pointer === "/properties/completedAt") return undefined;
      const fallback = DEFAULTS[pointer];
      // A list of names holding something else: its text.
      if (/^\/properties\/invocation\/(args|optionKeys|globalOptions)\/\d+$/.test(pointer)) {
        setAt(event, pointer, typeof value === "string" ? value : (JSON.stringify(value) ?? ""));
        return { reason: "field_defaulted", detail: `${pathOf(pointer)} ${error.message ?? "is invalid"}; stored as text` };
      }
      if (fallback !== undefined) {
        setAt(event, pointer, fallback());
        return { reason: "field_defaulted", detail: `${pathOf(pointer)} ${error.message ?? "is invalid"}; replaced by a default` };
      }
      deleteAt(event, pointer);
      return { reason: "field_dropped", detail: `${pathOf(pointer)} ${error.message ?? "is invalid"}; dropped` };
    }
  }
}

const ISO_TIMESTAMP = new RegExp(CliInvocationEventSchema.properties.properties.properties.startedAt.pattern);
const CANONICAL_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

/** The time of an ISO 8601 timestamp the table can keep, or undefined (not a string, not a real date, out of range). */
function usableTime(value: unknown, nowMs: number): number | undefined {
  if (typeof value !== "string" || !ISO_TIMESTAMP.test(value)) return undefined;
  const ms = Date.parse(value);
  if (!Number.isFinite(ms) || (CANONICAL_UTC.test(value) && new Date(ms).toISOString() !== value)) return undefined;
  if (ms < nowMs - TIMESTAMP_MAX_AGE_MS || ms > nowMs + TIMESTAMP_MAX_AHEAD_MS) return undefined;
  return ms;
}

function excerpt(value: unknown): string {
  const text = typeof value === "string" ? value : (JSON.stringify(value) ?? String(value));
  return text.length > 64 ? `${text.slice(0, 64)}…` : text;
}

/** Every string in `value` with where it sits, longest first. */
function stringsBySize(value: unknown): Array<{ parent: Record<string, unknown> | unknown[]; key: string | number; length: number }> {
  const found: Array<{ parent: Record<string, unknown> | unknown[]; key: string | number; length: number }> = [];
  const visit = (node: unknown): void => {
    if (Array.isArray(node))
      node.forEach((child, index) => (typeof child === "string" ? found.push({ parent: node, key: index, length: child.length }) : visit(child)));
    else if (isRecord(node)) {
      for (const [key, child] of Object.entries(node)) {
        if (typeof child === "string") found.push({ parent: node, key, length: child.length });
        else visit(child);
      }
    }
  };
  visit(value);
  return found.sort((a, b) => b.length - a.length);
}

/** Cuts the longest strings of `event` until its JSON fits `maxBytes`; false if even that cannot make it fit. */
function fitToSize(event: CliInvocationEvent, maxBytes: number): boolean {
  for (let round = 0; round < 64; round += 1) {
    const bytes = Buffer.byteLength(JSON.stringify(event));
    if (bytes <= maxBytes) return true;
    const [longest] = stringsBySize(event);
    if (longest === undefined || longest.length <= 16) return false;
    const text = (longest.parent as Record<string | number, string>)[longest.key] ?? "";
    // Every character cut takes at least one byte off the JSON: cut the excess, or half when that is not enough.
    const excess = bytes - maxBytes;
    const keep = text.length - excess >= 16 ? text.length - excess : Math.max(16, Math.floor(text.length / 2));
    (longest.parent as Record<string | number, string>)[longest.key] = text.slice(0, keep);
  }
  return Buffer.byteLength(JSON.stringify(event)) <= maxBytes;
}

/**
 * The entry made valid, with every repair made, or the reason it cannot be read as a cli_invocation at all.
 * `receivedAtMs` replaces timestamps that cannot be kept. Never changes `value`.
 */
export function repairCliInvocation(
  value: unknown,
  { receivedAtMs, maxEntryBytes, knownToFit = false }: { receivedAtMs: number; maxEntryBytes: number; knownToFit?: boolean },
): RepairResult {
  if (!isRecord(value)) return { ok: false, message: "entry is not a JSON object" };
  if (value["event"] !== "cli_invocation") return { ok: false, message: `entry.event must be "cli_invocation"` };
  if (!isRecord(value["properties"])) return { ok: false, message: "entry.properties must be an object" };

  const clean = !Object.hasOwn(value, REPAIRS_KEY) && validateCliInvocation(value, receivedAtMs).ok;
  if (clean && (knownToFit || Buffer.byteLength(JSON.stringify(value)) <= maxEntryBytes)) return { ok: true, event: value as CliInvocationEvent, repairs: [] };

  const event = structuredClone(value) as Record<string, unknown> & { properties: Record<string, unknown> };
  delete event[REPAIRS_KEY];
  const repairs: Repair[] = [];
  const record: EntryRepairs = { repairs: [] };
  const p = event.properties;

  // Identity first: everything else may be cut, the id must stay what the client sent (or be derived the same way on a re-send).
  if (typeof p["id"] !== "string" || p["id"] === "" || p["id"].length > 200) {
    const insertId = event["insert_id"];
    const derived =
      typeof insertId === "string" && insertId !== "" && insertId.length <= 200
        ? insertId
        : `derived-${createHash("sha256").update(JSON.stringify(value)).digest("hex").slice(0, 32)}`;
    repairs.push({
      reason: "id_derived",
      detail: `properties.id ${p["id"] === undefined ? "was missing" : `(${excerpt(p["id"])}) could not be used`}; ${derived === insertId ? "insert_id used" : "derived from the entry's content"}`,
    });
    p["id"] = derived;
  }
  if (event["insert_id"] !== undefined && (typeof event["insert_id"] !== "string" || event["insert_id"] === "" || event["insert_id"].length > 200)) {
    repairs.push({ reason: "id_derived", detail: `insert_id (${excerpt(event["insert_id"])}) could not be used; properties.id used` });
    delete event["insert_id"];
  }
  if (typeof event["distinct_id"] !== "string" || event["distinct_id"] === "" || event["distinct_id"].length > 200) {
    repairs.push({
      reason: "field_defaulted",
      detail: `distinct_id ${event["distinct_id"] === undefined ? "was missing" : `(${excerpt(event["distinct_id"])}) could not be used`}; "unknown" used`,
    });
    event["distinct_id"] = "unknown";
  }

  // Timestamps: a usable one is kept; one that is not is replaced by the other (± durationMs) or by the receive time.
  const started = usableTime(p["startedAt"], receivedAtMs);
  const completed = usableTime(p["completedAt"], receivedAtMs);
  const duration = typeof p["durationMs"] === "number" && Number.isFinite(p["durationMs"]) && p["durationMs"] >= 0 ? p["durationMs"] : undefined;
  if (started === undefined || completed === undefined) {
    const startedMs = started ?? (completed !== undefined ? completed - (duration ?? 0) : receivedAtMs);
    const completedMs = completed ?? startedMs + (started !== undefined ? (duration ?? 0) : 0);
    for (const [name, ms, usable] of [
      ["startedAt", startedMs, started],
      ["completedAt", completedMs, completed],
    ] as const) {
      if (usable !== undefined) continue;
      const sent = p[name];
      if (sent !== undefined)
        record[name === "startedAt" ? "clientStartedAt" : "clientCompletedAt"] = typeof sent === "string" ? sent.slice(0, 200) : excerpt(sent);
      repairs.push({
        reason: "timestamp_replaced",
        detail: `properties.${name} ${sent === undefined ? "was missing" : `(${excerpt(sent)}) is not a date within 5 years ago and a day ahead`}; ${usable === undefined && ms === receivedAtMs ? "the receive time" : "derived from the other timestamp"} used`,
      });
      p[name] = new Date(ms).toISOString();
    }
  }

  for (let pass = 0; pass < 8 && !validateAll(event); pass += 1) {
    for (const error of validateAll.errors ?? []) {
      const repair = repairError(event, error);
      if (repair === undefined) return { ok: false, message: `${pathOf(error.instancePath)} ${error.message ?? "is invalid"}` };
      repairs.push(repair);
    }
  }
  if (!validateAll(event)) return { ok: false, message: "entry could not be repaired" };

  const sizeBefore = Buffer.byteLength(JSON.stringify(event));
  if (sizeBefore > maxEntryBytes) {
    // Room for the $flowmeter record added below.
    if (!fitToSize(event, Math.max(maxEntryBytes - 512, Math.floor(maxEntryBytes / 2))))
      return { ok: false, message: `entry is ${sizeBefore} bytes and cannot be cut to ${maxEntryBytes}` };
    repairs.push({
      reason: "entry_truncated",
      detail: `entry cut from ${sizeBefore} to ${Buffer.byteLength(JSON.stringify(event))} bytes, longest strings first`,
    });
  }
  record.repairs = [...new Set(repairs.map((repair) => repair.reason))];
  if (record.repairs.length > 0) event[REPAIRS_KEY] = record;
  return { ok: true, event: event, repairs };
}
