/**
 * Per-entry checks: each entry is repaired where it can be (repairCliInvocation) and accepted, or rejected, on its
 * own; repeats within one request are enqueued once; every repaired or rejected entry leaves a warning for
 * flowmeter.ingestion_warnings.
 */
import { UnreadableLine } from "./parse-body.js";
import { uuidV7 } from "@flowmeter/platform";
import { entryId, repairCliInvocation, warningExcerpt, type CliInvocationEvent, type IngestionWarning } from "@flowmeter/shared";

export const MAX_ENTRY_DEPTH = 32;

export interface EntryRejection {
  index: number;
  code: "INVALID_PARAMS" | "PAYLOAD_TOO_LARGE";
  message: string;
}

export interface CheckedEntries {
  /** Valid (or repaired) entries, repeats included. */
  accepted: number;
  /** Entries to enqueue, first occurrence of each entryId(). */
  unique: CliInvocationEvent[];
  rejected: EntryRejection[];
  /** One per repair reason of each repaired entry, and one per rejected entry. */
  warnings: IngestionWarning[];
}

export interface CheckContext {
  maxEntryBytes: number;
  receivedAtMs: number;
  /** The client's address, for the warnings. */
  source: string;
}

function textOf(value: unknown, key: string): string {
  const field = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return typeof field === "string" ? field.slice(0, 200) : "";
}

export function checkEntries(entries: readonly unknown[], { maxEntryBytes, receivedAtMs, source }: CheckContext): CheckedEntries {
  const seen = new Set<string>();
  const unique: CliInvocationEvent[] = [];
  const rejected: EntryRejection[] = [];
  const warnings: IngestionWarning[] = [];
  let accepted = 0;
  const warn = (entry: unknown, reason: string, detail: string): void => {
    const properties = typeof entry === "object" && entry !== null ? (entry as Record<string, unknown>)["properties"] : undefined;
    warnings.push({
      warning_id: uuidV7(),
      received_at_ms: receivedAtMs,
      reason,
      entry_id: textOf(entry, "insert_id") || textOf(properties, "id"),
      distinct_id: textOf(entry, "distinct_id"),
      source,
      detail: detail.slice(0, 4096),
      excerpt: warningExcerpt(entry),
    });
  };
  const reject = (entry: unknown, rejection: EntryRejection): void => {
    rejected.push(rejection);
    warn(entry, "rejected", rejection.message);
  };
  const boundable = prototypesArePlain();
  entries.forEach((entry, index) => {
    if (entry instanceof UnreadableLine) {
      reject(entry.text, { index, code: "INVALID_PARAMS", message: entry.reason });
      return;
    }
    // Depth first: JSON.stringify and the validator recurse, and would overflow the stack on a deep entry.
    // One walk answers both checks for JSON data; only an entry it cannot bound closely enough is serialized.
    const bound = boundable ? jsonBytesBound(entry, 1) : NOT_JSON;
    if (bound === TOO_DEEP || (bound === NOT_JSON && nestedDeeperThan(entry, MAX_ENTRY_DEPTH))) {
      reject(entry, { index, code: "INVALID_PARAMS", message: `entry is nested deeper than ${MAX_ENTRY_DEPTH} levels` });
      return;
    }
    const result = repairCliInvocation(entry, { receivedAtMs, maxEntryBytes, knownToFit: bound >= 0 && bound <= maxEntryBytes });
    if (!result.ok) {
      reject(entry, { index, code: "INVALID_PARAMS", message: result.message });
      return;
    }
    const byReason = new Map<string, string[]>();
    for (const repair of result.repairs) byReason.set(repair.reason, [...(byReason.get(repair.reason) ?? []), repair.detail]);
    for (const [reason, details] of byReason) warn(entry, reason, details.join("; "));
    accepted += 1;
    const event = replaceLoneSurrogates(result.event);
    const id = entryId(event);
    if (!seen.has(id)) {
      seen.add(id);
      unique.push(event);
    }
  });
  return { accepted, unique, rejected, warnings };
}

const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/**
 * Replaces lone surrogates (`"\ud800"`: valid JSON, but not text, and ClickHouse refuses the row every time) with
 * U+FFFD in every string and key. Whatever ingest accepts, the worker must be able to write: one such entry used to
 * fail its whole job, and with it the entries of every request merged into that job. Returns the value itself when
 * nothing needed repair (the usual case), else a repaired copy; never changes its argument.
 */
export function replaceLoneSurrogates<T>(value: T): T {
  if (typeof value === "string") return (LONE_SURROGATE.test(value) ? value.replace(LONE_SURROGATES, "\uFFFD") : value) as T;
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    const repaired = value.map((element: unknown) => replaceLoneSurrogates(element));
    return (repaired.some((element, index) => element !== value[index]) ? repaired : value) as T;
  }
  let copy: Record<string, unknown> | undefined;
  const entries = Object.entries(value as Record<string, unknown>);
  entries.forEach(([key, child], index) => {
    const repairedKey = replaceLoneSurrogates(key);
    const repaired = replaceLoneSurrogates(child);
    if (copy === undefined && (repairedKey !== key || repaired !== child)) copy = Object.fromEntries(entries.slice(0, index));
    if (copy !== undefined) copy[repairedKey] = repaired;
  });
  return (copy ?? value) as T;
}

/** True when objects/arrays nest more than `maxDepth` levels (the value itself is level 1). Iterative on purpose. */
export function nestedDeeperThan(value: unknown, maxDepth: number): boolean {
  const stack: Array<{ value: unknown; depth: number }> = [{ value, depth: 1 }];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    if (typeof item.value !== "object" || item.value === null) continue;
    if (item.depth > maxDepth) return true;
    for (const child of Object.values(item.value)) {
      if (typeof child === "object" && child !== null) stack.push({ value: child, depth: item.depth + 1 });
    }
  }
  return false;
}

/** jsonBytesBound: an object or array nests deeper than MAX_ENTRY_DEPTH. */
export const TOO_DEEP = -1;
/** jsonBytesBound: a value JSON.parse does not produce (undefined, function, class instance, hole...); use the exact checks. */
export const NOT_JSON = -2;

/** JSON.stringify writes a finite number in at most 25 characters (-0.0000057296900417770885), anything else as null. */
const MAX_NUMBER_BYTES = 26;
/** Per UTF-16 unit of a string, JSON.stringify writes at most 6 bytes (\u001f, a lone surrogate); 1-3 otherwise. */
const MAX_BYTES_PER_UNIT = 6;

/** Inherited enumerable keys or a toJSON would change what for-in visits or what JSON.stringify writes; then jsonBytesBound is not used. */
function prototypesArePlain(): boolean {
  for (const _key in Object.prototype) return false;
  for (const _key in Array.prototype as object) return false;
  return !("toJSON" in Object.prototype) && !("toJSON" in Array.prototype);
}

/**
 * An upper bound of Buffer.byteLength(JSON.stringify(value)) for JSON data (what JSON.parse returns), found
 * without serializing: strings count by their length, numbers and literals by their longest form. TOO_DEEP when
 * an object or array sits deeper than MAX_ENTRY_DEPTH (`depth` is the value's own level, 1 for an entry): exactly
 * when nestedDeeperThan would say so for the properties and elements JSON.stringify visits. NOT_JSON for anything
 * else. Recursion is bounded by MAX_ENTRY_DEPTH, so deep input cannot overflow the stack.
 */
export function jsonBytesBound(value: unknown, depth: number): number {
  if (typeof value === "string") return 2 + MAX_BYTES_PER_UNIT * value.length;
  if (typeof value !== "object") return typeof value === "number" ? MAX_NUMBER_BYTES : typeof value === "boolean" ? 5 : NOT_JSON;
  if (value === null) return 4;
  if (depth > MAX_ENTRY_DEPTH) return TOO_DEEP;
  let bytes = 2;
  if (Array.isArray(value)) {
    if (Object.getPrototypeOf(value) !== Array.prototype) return NOT_JSON;
    for (let index = 0; index < value.length; index += 1) {
      // A hole reads as undefined: NOT_JSON.
      const element = jsonBytesBound(value[index], depth + 1);
      if (element < 0) return element;
      bytes += 1 + element;
    }
    return bytes;
  }
  const prototype: unknown = Object.getPrototypeOf(value);
  if (prototype !== Object.prototype && prototype !== null) return NOT_JSON;
  // for-in visits own enumerable keys only: the prototype is Object.prototype (no enumerable keys) or null.
  for (const key in value) {
    const property = jsonBytesBound((value as Record<string, unknown>)[key], depth + 1);
    if (property < 0) return property;
    bytes += 4 + MAX_BYTES_PER_UNIT * key.length + property;
  }
  return bytes;
}
