import { describe, expect, it } from "vitest";
import { WARNING_EXCERPT_CHARS, warningExcerpt } from "./queues.js";

function nested(depth: number, makeObject: boolean): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level += 1) value = makeObject ? { a: value } : [value];
  return value;
}

describe("warningExcerpt", () => {
  it("writes what JSON.stringify writes when it is short", () => {
    const values: unknown[] = [
      "text",
      42,
      -0.5,
      Number.NaN,
      true,
      null,
      [],
      {},
      [1, "a", null, undefined, () => 1, Symbol("s"), { b: [true] }],
      { a: 1, skipped: undefined, fn: () => 1, when: new Date(0), map: new Map([["k", 1]]), 'quote"key': "é 😀 \u0001" },
      Object.assign(Object.create(null) as object, { a: [1] }),
    ];
    for (const value of values) expect(warningExcerpt(value)).toBe(JSON.stringify(value));
    expect(warningExcerpt(undefined)).toBe("undefined");
  });

  it("gives the start of an entry nested 10,000 or 100,000 deep, not [object Object] nor a stack overflow", () => {
    const objects = warningExcerpt(nested(10_000, true));
    expect(objects.startsWith('{"a":{"a":{"a":')).toBe(true);
    expect(objects).toHaveLength(WARNING_EXCERPT_CHARS + 1);
    expect(objects.endsWith("…")).toBe(true);
    const arrays = warningExcerpt(nested(100_000, false));
    expect(arrays).toBe(`${"[".repeat(WARNING_EXCERPT_CHARS)}…`);
  });

  it("cuts long strings inside and the whole, never splitting a surrogate pair", () => {
    expect(warningExcerpt({ message: "x".repeat(2_000_000) })).toBe(`{"message":"${"x".repeat(WARNING_EXCERPT_CHARS - 12)}…`);
    const astral = warningExcerpt(`a${"😀".repeat(600)}`);
    expect(astral).toBe(`"a${"😀".repeat(WARNING_EXCERPT_CHARS / 2 - 1)}…`);
    expect(/\p{Cs}/u.test(astral)).toBe(false);
    const wide = warningExcerpt(["a", "😀".repeat(2000)]);
    expect(/\p{Cs}/u.test(wide)).toBe(false);
    expect(wide.length).toBeLessThanOrEqual(WARNING_EXCERPT_CHARS + 1);
  });

  it("ends on a value with a cycle", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    expect(warningExcerpt(cyclic).startsWith('{"a":1,"self":{"a":1,"self":')).toBe(true);
  });
});
