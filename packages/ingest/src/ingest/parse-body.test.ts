import { ApiError } from "@flowmeter/shared";
import { describe, expect, it } from "vitest";
import { UnreadableLine, parseBody } from "./parse-body.js";

const bytes = (text: string): Buffer => Buffer.from(text, "utf8");

function parseError(body: Uint8Array | undefined, contentType = "application/json"): ApiError {
  try {
    parseBody(body, contentType);
  } catch (error) {
    if (error instanceof ApiError) return error;
    throw error;
  }
  throw new Error("expected parseBody to throw");
}

describe("parseBody", () => {
  it("reads a bare event as one entry", () => {
    expect(parseBody(bytes('{"event":"cli_invocation","properties":{}}'), "application/json")).toEqual([{ event: "cli_invocation", properties: {} }]);
  });

  it('reads {"events": [...]} and a top-level array', () => {
    expect(parseBody(bytes('{"events":[{"a":1},{"b":2}]}'), "application/json")).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseBody(bytes('[{"a":1},2]'), "application/json")).toEqual([{ a: 1 }, 2]);
    expect(parseBody(bytes('{"events":[]}'), "application/json")).toEqual([]);
  });

  it("treats an object with both event and events as a bare event", () => {
    expect(parseBody(bytes('{"event":"x","events":1}'), undefined)).toEqual([{ event: "x", events: 1 }]);
  });

  it("reads NDJSON by content type, and detects it under application/json", () => {
    expect(parseBody(bytes('{"a":1}\n\n{"b":2}\n'), "application/x-ndjson; charset=utf-8")).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseBody(bytes('{"a":1}\r\n{"b":2}'), "application/json")).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseBody(bytes('{"a":1}'), "application/x-ndjson")).toEqual([{ a: 1 }]);
  });

  it("keeps __proto__ as an own property without touching prototypes", () => {
    const [entry] = parseBody(bytes('{"__proto__":{"polluted":true}}'), "application/json") as Array<Record<string, unknown>>;
    expect(Object.hasOwn(entry ?? {}, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(entry)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("strips a UTF-8 byte order mark", () => {
    expect(parseBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes("[]")]), "application/json")).toEqual([]);
  });

  it("refuses empty, non-UTF-8, malformed and wrongly shaped bodies with INVALID_PARAMS", () => {
    const cases: Array<[Uint8Array | undefined, string, RegExp]> = [
      [undefined, "application/json", /empty/],
      [bytes(""), "application/json", /empty/],
      [bytes("  \n "), "application/json", /empty/],
      [bytes("\n\n"), "application/x-ndjson", /empty/],
      [Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]), "application/json", /UTF-8/],
      [bytes('{"events": ['), "application/json", /not valid JSON/],
      [bytes('{"a":1}\n{"b":'), "application/json", /not valid JSON/],
      [bytes("42"), "application/json", /JSON number/],
      [bytes("null"), "application/json", /JSON null/],
      [bytes('"text"'), "application/json", /JSON string/],
      [bytes('{"events":{}}'), "application/json", /"events" must be an array/],
    ];
    for (const [body, contentType, message] of cases) {
      const error = parseError(body, contentType);
      expect(error.code).toBe("INVALID_PARAMS");
      expect(error.status).toBe(400);
      expect(error.message).toMatch(message);
    }
  });

  it("keeps the good lines of NDJSON and marks each bad one in its place", () => {
    const entries = parseBody(bytes('{"a":1}\nnope\n\n{"b":2}'), "application/x-ndjson");
    expect(entries).toEqual([{ a: 1 }, new UnreadableLine(2, "nope", "NDJSON line 2 is not valid JSON"), { b: 2 }]);
  });

  it("never echoes body contents in its messages", () => {
    const error = parseError(bytes('{"event": secret-token-123}'));
    expect(error.message).not.toContain("secret");
    const positioned = parseError(bytes('{"event": 1'));
    expect(positioned.message).toMatch(/at position \d+/);
  });
});
