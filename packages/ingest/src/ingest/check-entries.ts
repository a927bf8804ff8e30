/**
 * Per-entry checks: each entry is repaired where it can be (repairCliInvocation) and accepted, or rejected, on its
 * own; repeats within one request are enqueued once; every repaired or rejected entry leaves a warning for
 * flowmeter.ingestion_warnings.
 */
import { UnreadableLine } from "./parse-body.js";
import { uuidV7 } from "@flowmeter/platform";
import { entryId, warningExcerpt, type CliInvocationEvent, type IngestionWarning } from "@flowmeter/shared";
import { cutWhole, repairCliInvocation, type Repair } from "./repair-entry.js";

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
  /** From parseBody: the body had bytes that are not UTF-8 (the text around the first), else undefined. */
  invalidUtf8Excerpt?: string | undefined;
  /** From parseBody: false when no entry can hold a lone surrogate; true (the default) looks in every entry. */
  mayHaveLoneSurrogates?: boolean;
}

function textOf(value: unknown, key: string): string {
  const field = typeof value === "object" && value !== null ? (value as Record<string, unknown>)[key] : undefined;
  return typeof field === "string" ? field.slice(0, 200) : "";
}

export function checkEntries(
  entries: readonly unknown[],
  { maxEntryBytes, receivedAtMs, source, invalidUtf8Excerpt, mayHaveLoneSurrogates = true }: CheckContext,
): CheckedEntries {
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
      detail: cutWhole(detail, 4096),
      excerpt: warningExcerpt(entry),
    });
  };
  const reject = (entry: unknown, rejection: EntryRejection): void => {
    rejected.push(rejection);
    warn(entry, "rejected", rejection.message);
  };
  const boundable = prototypesArePlain();
  let invalidUtf8Attributed = false;
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
    // Text repairs first, so whatever is stored, details included, is text ClickHouse accepts.
    const repairsBefore: Repair[] = [];
    const surrogatesAt: string[] = [];
    const textRepaired = mayHaveLoneSurrogates ? replaceLoneSurrogates(entry, surrogatesAt) : entry;
    if (surrogatesAt.length > 0) repairsBefore.push({ reason: "lone_surrogate", detail: `lone surrogates replaced by U+FFFD in ${placesText(surrogatesAt)}` });
    if (invalidUtf8Excerpt !== undefined) {
      const replacedAt = placesHolding(textRepaired, "\uFFFD");
      if (replacedAt.length > 0)
        repairsBefore.push({ reason: "invalid_utf8", detail: `bytes that are not UTF-8 replaced by U+FFFD in ${placesText(replacedAt)}` });
    }
    const result = repairCliInvocation(textRepaired, { receivedAtMs, maxEntryBytes, knownToFit: bound >= 0 && bound <= maxEntryBytes, repairsBefore });
    if (!result.ok) {
      reject(entry, { index, code: "INVALID_PARAMS", message: result.message });
      return;
    }
    if (repairsBefore.some((repair) => repair.reason === "invalid_utf8")) invalidUtf8Attributed = true;
    const byReason = new Map<string, string[]>();
    for (const repair of result.repairs) byReason.set(repair.reason, [...(byReason.get(repair.reason) ?? []), repair.detail]);
    for (const [reason, details] of byReason) warn(entry, reason, details.join("; "));
    accepted += 1;
    const event = result.event;
    const id = entryId(event);
    if (!seen.has(id)) {
      seen.add(id);
      unique.push(event);
    }
  });
  if (invalidUtf8Excerpt !== undefined && !invalidUtf8Attributed) {
    // The bytes sat outside every stored entry (in one refused, or around the entries): one warning for the request.
    warnings.push({
      warning_id: uuidV7(),
      received_at_ms: receivedAtMs,
      reason: "invalid_utf8",
      entry_id: "",
      distinct_id: "",
      source,
      detail: "the request body had bytes that are not UTF-8, replaced by U+FFFD, outside every stored entry; the excerpt is the text around the first",
      excerpt: warningExcerpt(invalidUtf8Excerpt),
    });
  }
  return { accepted, unique, rejected, warnings };
}

/** At most 5 places, then how many more. */
function placesText(places: readonly string[]): string {
  return places.length <= 5 ? places.join(", ") : `${places.slice(0, 5).join(", ")} and ${places.length - 5} more places`;
}

/** Where a string (value or key) of `value` contains `text`, as paths like `properties.invocation.args.0`. */
function placesHolding(value: unknown, text: string, at: Array<string | number> = []): string[] {
  const places: string[] = [];
  const visit = (node: unknown): void => {
    if (typeof node === "string") {
      if (node.includes(text)) places.push(placeOf(at));
      return;
    }
    if (typeof node !== "object" || node === null) return;
    for (const [key, child] of Object.entries(node)) {
      at.push(Array.isArray(node) ? Number(key) : key);
      if (key.includes(text)) places.push(`${placeOf(at)} (its name)`);
      visit(child);
      at.pop();
    }
  };
  visit(value);
  return places;
}

function placeOf(at: ReadonlyArray<string | number>): string {
  return at.length === 0 ? "entry" : at.join(".");
}

const LONE_SURROGATE = /\p{Cs}/u;
const LONE_SURROGATES = /\p{Cs}/gu;

/**
 * Replaces lone surrogates (`"\ud800"`: valid JSON, but not text, and ClickHouse refuses the row every time) with
 * U+FFFD in every string and key, and adds to `places` where. Whatever ingest accepts, the worker must be able to
 * write: one such entry used to fail its whole job, and with it the entries of every request merged into that job.
 * Returns the value itself when nothing needed repair (the usual case), else a repaired copy; never changes its
 * argument. Recursive: call it on entries checked for depth.
 */
export function replaceLoneSurrogates<T>(value: T, places: string[] = [], at: Array<string | number> = []): T {
  if (typeof value === "string") {
    if (!LONE_SURROGATE.test(value)) return value;
    places.push(placeOf(at));
    return value.replace(LONE_SURROGATES, "\uFFFD") as T;
  }
  if (typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) {
    let copy: unknown[] | undefined;
    value.forEach((element: unknown, index) => {
      at.push(index);
      const repaired = replaceLoneSurrogates(element, places, at);
      at.pop();
      if (repaired !== element) copy ??= [...value];
      if (copy !== undefined) copy[index] = repaired;
    });
    return (copy ?? value) as T;
  }
  let changed = false;
  const pairs = Object.entries(value as Record<string, unknown>).map(([key, child]): [string, unknown] => {
    const repairedKey = LONE_SURROGATE.test(key) ? key.replace(LONE_SURROGATES, "\uFFFD") : key;
    at.push(repairedKey);
    if (repairedKey !== key) places.push(`${placeOf(at)} (its name)`);
    const repaired = replaceLoneSurrogates(child, places, at);
    at.pop();
    changed ||= repairedKey !== key || repaired !== child;
    return [repairedKey, repaired];
  });
  // Object.fromEntries defines each key as an own property: a "__proto__" key stays data.
  return (changed ? Object.fromEntries(pairs) : value) as T;
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
