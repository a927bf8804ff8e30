import { ApiError } from "@flowmeter/shared";
import { describe, expect, it } from "vitest";
import { UnreadableLine, contentTypeRefusal, parseBody } from "./parse-body.js";

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
    expect(parseBody(bytes('{"event":"cli_invocation","properties":{}}'), "application/json").entries).toEqual([{ event: "cli_invocation", properties: {} }]);
  });

  it('reads {"events": [...]} and a top-level array', () => {
    expect(parseBody(bytes('{"events":[{"a":1},{"b":2}]}'), "application/json").entries).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseBody(bytes('[{"a":1},2]'), "application/json").entries).toEqual([{ a: 1 }, 2]);
    expect(parseBody(bytes('{"events":[]}'), "application/json").entries).toEqual([]);
  });

  it("treats an object with both event and events as a bare event", () => {
    expect(parseBody(bytes('{"event":"x","events":1}'), undefined).entries).toEqual([{ event: "x", events: 1 }]);
  });

  it("reads NDJSON by content type, and detects it under application/json", () => {
    expect(parseBody(bytes('{"a":1}\n\n{"b":2}\n'), "application/x-ndjson; charset=utf-8").entries).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseBody(bytes('{"a":1}\r\n{"b":2}'), "application/json").entries).toEqual([{ a: 1 }, { b: 2 }]);
    expect(parseBody(bytes('{"a":1}'), "application/x-ndjson").entries).toEqual([{ a: 1 }]);
  });

  it("keeps __proto__ as an own property without touching prototypes", () => {
    const [entry] = parseBody(bytes('{"__proto__":{"polluted":true}}'), "application/json").entries as Array<Record<string, unknown>>;
    expect(Object.hasOwn(entry ?? {}, "__proto__")).toBe(true);
    expect(Object.getPrototypeOf(entry)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("strips a UTF-8 byte order mark", () => {
    expect(parseBody(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), bytes("[]")]), "application/json").entries).toEqual([]);
  });

  it("refuses empty, malformed and wrongly shaped bodies with INVALID_PARAMS", () => {
    const cases: Array<[Uint8Array | undefined, string, RegExp]> = [
      [undefined, "application/json", /empty/],
      [bytes(""), "application/json", /empty/],
      [bytes("  \n "), "application/json", /empty/],
      [bytes("\n\n"), "application/x-ndjson", /empty/],
      [Buffer.from([0x7b, 0xff, 0x3a, 0x31, 0x7d]), "application/json", /not valid JSON/],
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

  it("replaces bytes that are not UTF-8 by U+FFFD instead of refusing the body, and says so", () => {
    const body = Buffer.concat([bytes('[{"a":"ok"},{"b":"x'), Buffer.from([0xff, 0xc3, 0x28]), bytes('y"}]')]);
    const parsed = parseBody(body, "application/json");
    expect(parsed.entries).toEqual([{ a: "ok" }, { b: "x\uFFFD\uFFFD(y" }]);
    expect(parsed.invalidUtf8Excerpt).toBe('[{"a":"ok"},{"b":"x\uFFFD\uFFFD(y"}]');
    // UTF-8 encoded surrogates (ED A0 80) are not UTF-8 either.
    expect(parseBody(Buffer.concat([bytes('["'), Buffer.from([0xed, 0xa0, 0x80]), bytes('"]')]), "application/json").entries).toEqual(["\uFFFD\uFFFD\uFFFD"]);
    const clean = parseBody(bytes('[{"a":"\uFFFD as sent"}]'), "application/json");
    expect(clean.invalidUtf8Excerpt).toBeUndefined();
  });

  it("says whether an entry may hold a lone surrogate: only a \\uD800-\\uDFFF escape can make one", () => {
    expect(parseBody(bytes('[{"a":"plain é 😀"}]'), "application/json").mayHaveLoneSurrogates).toBe(false);
    expect(parseBody(bytes('[{"a":"\\u001b[31m red"}]'), "application/json").mayHaveLoneSurrogates).toBe(false);
    expect(parseBody(bytes('[{"a":"\\ud800"}]'), "application/json").mayHaveLoneSurrogates).toBe(true);
    expect(parseBody(bytes('{"a":"\\uDFFF"}\n'), "application/x-ndjson").mayHaveLoneSurrogates).toBe(true);
  });

  it("keeps the good lines of NDJSON and marks each bad one in its place", () => {
    const { entries } = parseBody(bytes('{"a":1}\nnope\n\n{"b":2}'), "application/x-ndjson");
    expect(entries).toEqual([{ a: 1 }, new UnreadableLine(2, "nope", "NDJSON line 2 is not valid JSON"), { b: 2 }]);
  });

  it("never echoes body contents in its messages", () => {
    const error = parseError(bytes('{"event": secret-token-123}'));
    expect(error.message).not.toContain("secret");
    const positioned = parseError(bytes('{"event": 1'));
    expect(positioned.message).toMatch(/at position \d+/);
  });
});

describe("contentTypeRefusal", () => {
  it("accepts JSON and NDJSON in UTF-8, labelled or not, in any case", () => {
    for (const contentType of [
      "application/json",
      "Application/JSON; charset=utf-8",
      "application/json;charset=UTF-8",
      'application/json; charset="utf-8"',
      "application/json; Charset=UTF8; foo=bar",
      "application/x-ndjson; charset=utf-8",
    ]) {
      expect(contentTypeRefusal(contentType), contentType).toBeUndefined();
    }
  });

  it("refuses another charset with 415 naming it", () => {
    for (const [contentType, charset] of [
      ["application/json; charset=utf-16", "utf-16"],
      ["application/json; charset=UTF-16LE", "utf-16le"],
      ['application/x-ndjson; charset="iso-8859-1"', "iso-8859-1"],
    ]) {
      const refusal = contentTypeRefusal(contentType);
      expect(refusal?.status).toBe(415);
      expect(refusal?.code).toBe("INVALID_PARAMS");
      expect(refusal?.message).toBe(`charset "${charset}" is not accepted; send UTF-8 (charset=utf-8, or no charset)`);
    }
  });

  it("refuses what a web page can post without a preflight, and a missing type", () => {
    expect(contentTypeRefusal("text/plain")?.status).toBe(415);
    expect(contentTypeRefusal(undefined)?.message).toBe("Content-Type is missing; send application/json (or application/x-ndjson)");
  });
});
