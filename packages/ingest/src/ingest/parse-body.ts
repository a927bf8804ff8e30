/**
 * Turns a request body into the list of entries it carries. Accepted shapes: one bare event object,
 * `{"events": [...]}` (what the swamp CLI sends for two or more entries), a top-level array, or NDJSON.
 * Entries are not validated here; each one is checked on its own later. Bytes that are not UTF-8 are replaced by
 * U+FFFD rather than refusing the request (the real client re-sends whatever is not answered 202, for 7 days).
 * JSON.parse builds values of any depth without recursion; what is nested too deep is refused per entry later.
 */
import { ApiError } from "@flowmeter/shared";

const NDJSON_TYPES: ReadonlySet<string> = new Set([
  "application/x-ndjson",
  "application/ndjson",
  "application/jsonl",
  "application/jsonlines",
  "application/x-jsonlines",
]);

/**
 * 415 unless the body is declared JSON or NDJSON, in UTF-8 (no charset, or `charset=utf-8` in any case). The real
 * client always sends `application/json`; a web page can send text/plain, form or multipart bodies cross-site without
 * a preflight, so those are refused before reading. A body in another charset (UTF-16...) would read as garbage.
 */
export function contentTypeRefusal(contentType: string | undefined): ApiError | undefined {
  const [type, ...parameters] = (contentType ?? "").split(";");
  const mediaType = type?.trim().toLowerCase() ?? "";
  if (mediaType !== "application/json" && !NDJSON_TYPES.has(mediaType)) {
    return new ApiError(
      "INVALID_PARAMS",
      `Content-Type ${mediaType === "" ? "is missing" : `${mediaType.slice(0, 100)} is not accepted`}; send application/json (or application/x-ndjson)`,
      { status: 415 },
    );
  }
  for (const parameter of parameters) {
    const [name, value = ""] = parameter.split("=", 2).map((part) => part.trim());
    const charset = value.replace(/^"(.*)"$/, "$1").toLowerCase();
    if (name?.toLowerCase() === "charset" && charset !== "utf-8" && charset !== "utf8") {
      return new ApiError("INVALID_PARAMS", `charset ${JSON.stringify(charset.slice(0, 40))} is not accepted; send UTF-8 (charset=utf-8, or no charset)`, {
        status: 415,
      });
    }
  }
  return undefined;
}

/** An NDJSON line that is not JSON: it stands in the entry list at its place, and checkEntries refuses it alone. */
export class UnreadableLine {
  constructor(
    readonly lineNumber: number,
    readonly text: string,
    readonly reason: string,
  ) {}
}

const SHAPE_HINT = 'expected an event object, {"events": [...]}, an array of events, or NDJSON (one event per line)';

const utf8 = new TextDecoder("utf-8", { fatal: true });
const utf8Repairing = new TextDecoder("utf-8");

export interface ParsedBody {
  entries: unknown[];
  /**
   * The body had bytes that are not UTF-8, decoded as U+FFFD: checkEntries warns for each entry holding U+FFFD,
   * or for the request when none does. Undefined when the body was valid UTF-8 (the usual case); else the decoded
   * text around the first U+FFFD, for that request's warning.
   */
  invalidUtf8Excerpt: string | undefined;
  /**
   * False proves no entry holds a lone surrogate (they can only come from a `\uD800`-style escape), so checkEntries
   * need not look for them.
   */
  mayHaveLoneSurrogates: boolean;
}

/** Throws ApiError INVALID_PARAMS when the body is empty, not JSON (nor NDJSON) or not one of the accepted shapes. */
export function parseBody(body: Uint8Array | undefined, contentType: string | undefined): ParsedBody {
  if (body === undefined || body.length === 0) throw new ApiError("INVALID_PARAMS", `request body is empty; ${SHAPE_HINT}`);
  let text: string;
  let invalidUtf8Excerpt: string | undefined;
  try {
    text = utf8.decode(body);
  } catch {
    // Decoded a second time only when the first found a byte that is not UTF-8: the usual body is decoded once.
    text = utf8Repairing.decode(body);
    const first = text.indexOf("\uFFFD");
    invalidUtf8Excerpt = text.slice(Math.max(0, first - 200), first + 200);
  }
  if (text.trim() === "") throw new ApiError("INVALID_PARAMS", `request body is empty; ${SHAPE_HINT}`);
  const mayHaveLoneSurrogates = text.includes("\\u") && ESCAPED_SURROGATE.test(text);
  return { entries: isNdjsonType(contentType) ? parseNdjson(text) : parseJson(text), invalidUtf8Excerpt, mayHaveLoneSurrogates };
}

/** `\uD800`-`\uDFFF` as a JSON escape (or, harmlessly, as text after an escaped backslash). */
const ESCAPED_SURROGATE = /\\u[dD][89a-fA-F]/;

function parseJson(text: string): unknown[] {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (error) {
    // Several lines that each parse on their own are NDJSON sent with a JSON content type.
    const lines = text.split("\n").filter((line) => line.trim() !== "");
    const entries = lines.length > 1 ? parseEachLine(lines) : undefined;
    if (entries !== undefined) return entries;
    throw new ApiError("INVALID_PARAMS", `request body is not valid JSON${jsonErrorPosition(error)}; ${SHAPE_HINT}`);
  }
  return entriesOf(value);
}

function entriesOf(value: unknown): unknown[] {
  if (Array.isArray(value)) return value;
  if (typeof value !== "object" || value === null)
    throw new ApiError("INVALID_PARAMS", `request body is a JSON ${value === null ? "null" : typeof value}; ${SHAPE_HINT}`);
  if (Object.hasOwn(value, "events") && !Object.hasOwn(value, "event")) {
    const events = (value as { events: unknown }).events;
    if (!Array.isArray(events)) throw new ApiError("INVALID_PARAMS", '"events" must be an array of events');
    return events;
  }
  return [value];
}

/** One entry per non-empty line; a line that is not JSON becomes an UnreadableLine, so the good lines are kept. */
function parseNdjson(text: string): unknown[] {
  const entries: unknown[] = [];
  let lineNumber = 0;
  for (const line of text.split("\n")) {
    lineNumber += 1;
    if (line.trim() === "") continue;
    try {
      entries.push(JSON.parse(line));
    } catch (error) {
      entries.push(new UnreadableLine(lineNumber, line, `NDJSON line ${lineNumber} is not valid JSON${jsonErrorPosition(error)}`));
    }
  }
  if (entries.length === 0) throw new ApiError("INVALID_PARAMS", `request body is empty; ${SHAPE_HINT}`);
  return entries;
}

function isNdjsonType(contentType: string | undefined): boolean {
  const mediaType = contentType?.split(";", 1)[0]?.trim().toLowerCase();
  return mediaType !== undefined && NDJSON_TYPES.has(mediaType);
}

function parseEachLine(lines: string[]): unknown[] | undefined {
  try {
    return lines.map((line) => JSON.parse(line) as unknown);
  } catch {
    return undefined;
  }
}

/** JSON.parse messages quote the input; keep only the position, so no row content reaches the client. */
function jsonErrorPosition(error: unknown): string {
  const match = error instanceof Error ? /at position (\d+)/.exec(error.message) : null;
  return match ? ` (at position ${match[1]})` : "";
}
