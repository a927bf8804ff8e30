import { describe, expect, it } from "vitest";
import { clickHouseErrorCode, isRowRefusal } from "./row-refusal.js";

describe("isRowRefusal", () => {
  it("names a value ClickHouse cannot store as the row's fault, from chDB's message or clickhouse-js's code", () => {
    const chdb = new Error("Code: 41. DB::Exception: Cannot read DateTime: unexpected date: 2026-13-45. (CANNOT_PARSE_DATETIME) (version 26.7.2.1)");
    const server = Object.assign(new Error("Cannot parse input: expected '\"' before: 'x'"), { code: "27", type: "CANNOT_PARSE_INPUT_ASSERTION_FAILED" });
    expect([clickHouseErrorCode(chdb), isRowRefusal(chdb)]).toEqual([41, true]);
    expect([clickHouseErrorCode(server), isRowRefusal(server)]).toEqual([27, true]);
  });

  it("takes a server that is away, slow or overloaded for what it is: not the row's fault", () => {
    const refused = Object.assign(new Error("connect ECONNREFUSED 127.0.0.1:8123"), { code: "ECONNREFUSED" });
    const tooManyParts = Object.assign(new Error("Too many parts (3000)"), { code: "252", type: "TOO_MANY_PARTS" });
    const memory = new Error("Code: 241. DB::Exception: Memory limit (total) exceeded. (MEMORY_LIMIT_EXCEEDED)");
    for (const error of [refused, tooManyParts, memory, new Error("Timeout error."), new TypeError("x is undefined"), "plain text"]) {
      expect(isRowRefusal(error), String(error)).toBe(false);
    }
  });
});
