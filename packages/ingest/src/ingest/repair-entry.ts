/**
 * Repair before reject (docs/spec.md §2): the real client reads only the status code and deletes what it sent on any
 * 202, so an entry refused inside a 202 is lost. Whatever can be read as a cli_invocation is made valid and stored,
 * with what was changed recorded: over-long strings and lists are cut, numbers sent as strings are converted, missing
 * or unreadable fields get defaults or are derived, timestamps that are not real dates or lie outside what the table
 * keeps are replaced by the time the entry was received (the client's value is kept), and an entry over the size
 * limit is cut until it fits, whatever its shape. Only an entry that is not an object, has no `properties` object or
 * names another event is refused.
 */
import { createHash } from "node:crypto";
import { Ajv, type ErrorObject } from "ajv";
import {
  CliInvocationEventSchema,
  REPAIRS_KEY,
  TIMESTAMP_MAX_AGE_MS,
  TIMESTAMP_MAX_AHEAD_MS,
  validateCliInvocation,
  type CliInvocationEvent,
  type EntryRepairs,
  type RepairReason,
} from "@flowmeter/shared";

export interface Repair {
  reason: RepairReason;
  /** Which field, and what was done: `properties.result.errorMessage cut from 1048576 to 4096 characters`. */
  detail: string;
}

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

function exists(root: unknown, pointer: string): boolean {
  if (pointer === "") return true;
  const at = locate(root, pointer);
  return at !== undefined && (Array.isArray(at.parent) ? Number(at.key) < at.parent.length : Object.hasOwn(at.parent, at.key));
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
      setAt(event, pointer, cutWhole(String(value), limit));
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
  return text.length > 64 ? `${cutWhole(text, 64)}…` : text;
}

/** The first `length` UTF-16 units of `text`, one fewer when the cut would split a surrogate pair. */
export function cutWhole(text: string, length: number): string {
  if (text.length <= length) return text;
  const last = text.charCodeAt(length - 1);
  return text.slice(0, last >= 0xd800 && last <= 0xdbff ? length - 1 : length);
}

const MAX_DURATION_MS = CliInvocationEventSchema.properties.properties.properties.durationMs.maximum;

/** The numeric fields of an entry, by where they sit in `properties`; `integer` when the schema wants a whole number. */
const NUMERIC_FIELDS = [
  { path: ["durationMs"], integer: false },
  { path: ["result", "exitCode"], integer: true },
] as const;

/** A decimal number as text: what Number() reads the same in every client's language, no hex, no Infinity. */
const DECIMAL = /^\s*-?\d+(\.\d+)?([eE][+-]?\d+)?\s*$/;

/** `durationMs: "1234"` becomes 1234 (finite, and whole where the schema wants an integer); what does not convert is left to the schema. */
function convertNumericStrings(properties: Record<string, unknown>): Repair[] {
  const repairs: Repair[] = [];
  for (const { path, integer } of NUMERIC_FIELDS) {
    const parent = path.length === 1 ? properties : properties[path[0]];
    const key = path[path.length - 1] as string;
    if (!isRecord(parent) || typeof parent[key] !== "string") continue;
    const text = parent[key];
    const number = DECIMAL.test(text) ? Number(text) : Number.NaN;
    if (!Number.isFinite(number) || (integer && !Number.isInteger(number))) continue;
    parent[key] = number;
    repairs.push({ reason: "field_converted", detail: `properties.${path.join(".")} ${JSON.stringify(cutWhole(text, 64))} converted to the number ${number}` });
  }
  return repairs;
}

type Container = Record<string, unknown> | unknown[];

/** What fitToSize may cut, found in one walk of the entry. */
interface Cuttable {
  /** Strings the schema does not pin (ids, timestamps and enums are never cut). */
  strings: Array<{ parent: Container; key: string | number; length: number; where: string }>;
  /** Lists and objects, with how many of their items may be dropped (every element; an object's keys the schema does not name). */
  containers: Array<{ node: Container; where: string; droppable: number; named: ReadonlySet<string> }>;
}

/** A schema node whose string value is never cut: an id (the only strings with a minLength), a timestamp, an enum or a constant. */
function pinned(schema: Record<string, unknown> | undefined): boolean {
  return schema !== undefined && ("minLength" in schema || "pattern" in schema || "enum" in schema || "const" in schema);
}

function schemaOf(schema: Record<string, unknown> | undefined, key: string | number): Record<string, unknown> | undefined {
  const child = typeof key === "number" ? schema?.["items"] : isRecord(schema?.["properties"]) ? schema["properties"][key] : undefined;
  return isRecord(child) ? child : undefined;
}

/** Walks the entry without recursion (whatever its depth), paired with the schema where the schema describes it. */
function findCuttable(event: Record<string, unknown>, stringFloor: number): Cuttable {
  const found: Cuttable = { strings: [], containers: [] };
  const stack: Array<{ node: Container; schema: Record<string, unknown> | undefined; where: string }> = [
    { node: event, schema: CliInvocationEventSchema, where: "entry" },
  ];
  for (let item = stack.pop(); item !== undefined; item = stack.pop()) {
    const { node, schema, where } = item;
    const named = new Set(isRecord(schema?.["properties"]) ? Object.keys(schema["properties"]) : []);
    let droppable = 0;
    const visit = (key: string | number, child: unknown): void => {
      if (typeof key === "number" || !named.has(key)) droppable += 1;
      if (typeof child === "string" ? child.length <= stringFloor : typeof child !== "object" || child === null) return;
      const childSchema = schemaOf(schema, key);
      const childWhere = where === "entry" ? String(key) : `${where}.${key}`;
      if (typeof child !== "string") stack.push({ node: child as Container, schema: childSchema, where: childWhere });
      else if (!pinned(childSchema)) found.strings.push({ parent: node, key, length: child.length, where: childWhere });
    };
    if (Array.isArray(node)) for (let index = 0; index < node.length; index += 1) visit(index, node[index]);
    else for (const key of Object.keys(node)) visit(key, node[key]);
    if (droppable > 0) found.containers.push({ node, where, droppable, named });
  }
  return found;
}

/**
 * The level to cut `sizes` down to so that at least `excess` units go, cutting the largest first and all of them to
 * the same level; undefined when cutting everything down to `floor` is not enough.
 */
function waterLevel(sizes: number[], excess: number, floor: number): number | undefined {
  const sorted = sizes.filter((size) => size > floor).sort((a, b) => b - a);
  let sum = 0;
  for (let count = 1; count <= sorted.length; count += 1) {
    sum += sorted[count - 1] as number;
    const level = Math.floor((sum - excess) / count);
    if (level >= (sorted[count] ?? floor)) return Math.max(level, floor);
  }
  return undefined;
}

/** Strings are cut to no fewer characters than this before lists lose items; then to SHORTEST_STRING_CHARS. */
const SHORT_STRING_CHARS = 64;
const SHORTEST_STRING_CHARS = 16;

/**
 * Cuts `event` until its JSON is at most `maxBytes`: first its longest strings, all to one length but not below 64
 * characters; then lists and objects keep their first items (an object keeps every field the schema names); at
 * last strings go down to 16 characters. Ids, timestamps and enums are never cut, so an entry always fits unless
 * those alone do not (INGEST_MAX_ENTRY_BYTES is at least 16 KiB: they always do). Returns what was cut, or
 * undefined when it does not fit.
 */
function fitToSize(event: Record<string, unknown>, sizeBefore: number, maxBytes: number): string | undefined {
  const stringsCut = new Set<string>();
  let stringCap = Number.POSITIVE_INFINITY;
  const itemsBefore = new Map<string, { total: number; kept: number; keys: boolean }>();
  let stringFloor = SHORT_STRING_CHARS;
  let size = sizeBefore;
  for (let round = 0; size > maxBytes; size = jsonBytes(event), round += 1) {
    if (round === 200) return undefined;
    const { strings, containers } = findCuttable(event, stringFloor);
    // Each UTF-16 unit cut takes at least one byte off the JSON.
    const level = waterLevel(
      strings.map((string) => string.length),
      size - maxBytes,
      stringFloor,
    );
    for (const string of strings) {
      const cap = level ?? stringFloor;
      if (string.length <= cap) continue;
      const parent = string.parent as Record<string | number, string>;
      parent[string.key] = cutWhole(parent[string.key] as string, cap);
      stringsCut.add(string.where);
      stringCap = Math.min(stringCap, cap);
    }
    if (level !== undefined) continue;
    const droppable = containers.reduce((sum, container) => sum + container.droppable, 0);
    if (droppable === 0) {
      if (stringFloor === SHORTEST_STRING_CHARS) return undefined;
      stringFloor = SHORTEST_STRING_CHARS;
      continue;
    }
    // Drop about the share of items the excess is of the whole (at least one), the largest lists and objects first.
    const sizeNow = strings.length > 0 ? jsonBytes(event) : size;
    if (sizeNow <= maxBytes) {
      size = sizeNow;
      break;
    }
    const toDrop = Math.max(1, Math.ceil((droppable * (sizeNow - maxBytes)) / sizeNow));
    const keep = waterLevel(
      containers.map((container) => container.droppable),
      toDrop,
      0,
    );
    for (const { node, where, droppable: count, named } of containers) {
      const kept = Math.min(count, keep ?? 0);
      if (kept === count) continue;
      const before = itemsBefore.get(where) ?? { total: count, kept: count, keys: !Array.isArray(node) };
      itemsBefore.set(where, { ...before, kept: before.kept - (count - kept) });
      if (Array.isArray(node)) node.length = kept;
      else dropUnnamedKeys(node, named, kept);
    }
  }
  const parts = [`entry cut from ${sizeBefore} to ${size} bytes`];
  if (stringsCut.size > 0) parts.push(`${stringsCut.size} strings cut to at most ${stringCap} characters, longest first`);
  const lists = [...itemsBefore].map(([where, { total, kept, keys }]) => `${where} kept its first ${kept} of ${total} ${keys ? "extra fields" : "items"}`);
  parts.push(...lists.slice(0, 8));
  if (lists.length > 8) parts.push(`and ${lists.length - 8} more lists or objects cut`);
  return parts.join("; ");
}

/** Keeps every key in `named` and the first `kept` others. */
function dropUnnamedKeys(node: Record<string, unknown>, named: ReadonlySet<string>, kept: number): void {
  let seen = 0;
  for (const key of Object.keys(node)) {
    if (named.has(key)) continue;
    seen += 1;
    if (seen > kept) delete node[key];
  }
}

function jsonBytes(value: unknown): number {
  return Buffer.byteLength(JSON.stringify(value));
}

export interface RepairOptions {
  /** Replaces timestamps that cannot be kept. */
  receivedAtMs: number;
  /** The largest the entry's JSON may be, `$flowmeter` record included. */
  maxEntryBytes: number;
  /** The caller knows the entry's JSON is at most maxEntryBytes (check-entries' size bound): it is not serialized. */
  knownToFit?: boolean;
  /** Repairs made to `value` before this call (text decoding); recorded with the others. */
  repairsBefore?: readonly Repair[];
}

/**
 * The entry made valid, with every repair made, or the reason it cannot be read as a cli_invocation at all.
 * Never changes `value`.
 */
export function repairCliInvocation(value: unknown, { receivedAtMs, maxEntryBytes, knownToFit = false, repairsBefore = [] }: RepairOptions): RepairResult {
  if (!isRecord(value)) return { ok: false, message: "entry is not a JSON object" };
  if (value["event"] !== "cli_invocation") return { ok: false, message: `entry.event must be "cli_invocation"` };
  if (!isRecord(value["properties"])) return { ok: false, message: "entry.properties must be an object" };

  const clean = repairsBefore.length === 0 && !Object.hasOwn(value, REPAIRS_KEY) && validateCliInvocation(value, receivedAtMs).ok;
  if (clean && (knownToFit || Buffer.byteLength(JSON.stringify(value)) <= maxEntryBytes)) return { ok: true, event: value as CliInvocationEvent, repairs: [] };

  const event = structuredClone(value) as Record<string, unknown> & { properties: Record<string, unknown> };
  delete event[REPAIRS_KEY];
  const repairs: Repair[] = [...repairsBefore];
  const record: EntryRepairs = { repairs: [] };
  const p = event.properties;
  repairs.push(...convertNumericStrings(p));

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
  const sentDuration = p["durationMs"];
  const duration = typeof sentDuration === "number" && sentDuration >= 0 && sentDuration <= MAX_DURATION_MS ? sentDuration : undefined;
  if (started === undefined || completed === undefined) {
    // Both replaced: the entry was sent once it completed, so it completed by the receive time, and it started
    // durationMs before, so the stored duration stays the one sent. One replaced: derived from the other.
    const startedMs = started ?? (completed !== undefined ? completed - (duration ?? 0) : receivedAtMs - (duration ?? 0));
    const completedMs = completed ?? startedMs + (duration ?? 0);
    const how = {
      startedAt:
        completed !== undefined
          ? `completedAt minus durationMs (${duration ?? 0} ms) used`
          : duration !== undefined
            ? `the receive time minus durationMs (${duration} ms) used, so the duration stays the one sent`
            : "the receive time used (durationMs unusable)",
      completedAt: started !== undefined ? `startedAt plus durationMs (${duration ?? 0} ms) used` : "the receive time used",
    };
    for (const [name, ms, usable] of [
      ["startedAt", startedMs, started],
      ["completedAt", completedMs, completed],
    ] as const) {
      if (usable !== undefined) continue;
      const sent = p[name];
      if (sent !== undefined)
        record[name === "startedAt" ? "clientStartedAt" : "clientCompletedAt"] = typeof sent === "string" ? cutWhole(sent, 200) : excerpt(sent);
      repairs.push({
        reason: "timestamp_replaced",
        detail: `properties.${name} ${sent === undefined ? "was missing" : `(${excerpt(sent)}) is not a date within 5 years ago and a day ahead`}; ${how[name]}`,
      });
      p[name] = new Date(ms).toISOString();
    }
  }

  // Items of a list cut to their bound are reported once per list, not once per item.
  const itemCuts = new Map<string, { items: number; longest: number; limit: number }>();
  for (let pass = 0; pass < 8 && !validateAll(event); pass += 1) {
    for (const error of validateAll.errors ?? []) {
      // An earlier repair of this pass removed the value (a list cut to 256 items, then its item 300 too long).
      if (error.keyword !== "required" && !exists(event, error.instancePath)) continue;
      const listItem = /^(.*)\/\d+$/.exec(error.instancePath);
      const length = String(getAt(event, error.instancePath)).length;
      const repair = repairError(event, error);
      if (repair === undefined) return { ok: false, message: `${pathOf(error.instancePath)} ${error.message ?? "is invalid"}` };
      if (error.keyword === "maxLength" && listItem !== null) {
        const list = pathOf(listItem[1] ?? "");
        const cuts = itemCuts.get(list) ?? { items: 0, longest: 0, limit: Number(error.params["limit"]) };
        itemCuts.set(list, { ...cuts, items: cuts.items + 1, longest: Math.max(cuts.longest, length) });
      } else repairs.push(repair);
    }
  }
  for (const [list, { items, longest, limit }] of itemCuts)
    repairs.push({ reason: "truncated", detail: `${items} items of ${list} cut to ${limit} characters (the longest had ${longest})` });
  if (!validateAll(event)) return { ok: false, message: "entry could not be repaired" };

  // The limit holds for the entry as stored, its $flowmeter record included.
  record.repairs = [...new Set(repairs.map((repair) => repair.reason))];
  const recordBytes = (): number => (record.repairs.length === 0 ? 0 : jsonBytes(REPAIRS_KEY) + jsonBytes(record) + 2);
  const sizeBefore = jsonBytes(event);
  if (sizeBefore + recordBytes() > maxEntryBytes) {
    if (!record.repairs.includes("entry_truncated")) record.repairs.push("entry_truncated");
    const cut = fitToSize(event, sizeBefore, maxEntryBytes - recordBytes());
    if (cut === undefined) return { ok: false, message: `entry is ${sizeBefore} bytes; even its ids and timestamps do not fit in ${maxEntryBytes}` };
    repairs.push({ reason: "entry_truncated", detail: cut });
  }
  if (record.repairs.length > 0) event[REPAIRS_KEY] = record;
  return { ok: true, event: event, repairs };
}
