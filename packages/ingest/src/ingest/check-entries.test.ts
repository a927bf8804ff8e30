import { REPAIRS_KEY } from "@flowmeter/shared";
import { childEntry, legacyEntry, parentEntry } from "@flowmeter/test-utils";
import { describe, expect, it } from "vitest";
import { checkEntries, jsonBytesBound, MAX_ENTRY_DEPTH, nestedDeeperThan, NOT_JSON, replaceLoneSurrogates, TOO_DEEP } from "./check-entries.js";

function nested(depth: number): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level += 1) value = level % 2 === 0 ? [value] : { a: value };
  return value;
}

describe("nestedDeeperThan", () => {
  it("counts object and array levels, the value itself being level 1", () => {
    expect(nestedDeeperThan(1, 0)).toBe(false);
    expect(nestedDeeperThan(nested(32), 32)).toBe(false);
    expect(nestedDeeperThan(nested(33), 32)).toBe(true);
  });

  it("handles 100k levels without recursion", () => {
    expect(nestedDeeperThan(nested(100_000), 32)).toBe(true);
  });
});

const CONTEXT = { receivedAtMs: Date.now(), source: "127.0.0.1" };

function check(entries: readonly unknown[], maxEntryBytes = 65_536) {
  return checkEntries(entries, { ...CONTEXT, maxEntryBytes });
}

describe("checkEntries", () => {
  it("accepts valid entries and keeps repeats once, with no warnings", () => {
    const parent = parentEntry();
    const child = childEntry(parent.properties.id, { driverKey: "driver" });
    const legacy = legacyEntry();
    const result = check([parent, child, parent, legacy]);
    expect(result.accepted).toBe(4);
    expect(result.rejected).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(result.unique).toEqual([parent, child, legacy]);
  });

  it("repairs what can be read as a cli_invocation and rejects the rest, each with a warning", () => {
    const good = parentEntry();
    const wrongType = parentEntry() as unknown as { properties: Record<string, unknown> };
    wrongType.properties["durationMs"] = "slow";
    const result = check([good, wrongType, "text", null, { event: "other", properties: {} }, { event: "cli_invocation" }]);
    expect(result.accepted).toBe(2);
    expect(result.unique[0]).toEqual(good);
    expect(result.unique[1]?.properties.durationMs).toBe(0);
    expect(result.rejected).toEqual([
      { index: 2, code: "INVALID_PARAMS", message: "entry is not a JSON object" },
      { index: 3, code: "INVALID_PARAMS", message: "entry is not a JSON object" },
      { index: 4, code: "INVALID_PARAMS", message: 'entry.event must be "cli_invocation"' },
      { index: 5, code: "INVALID_PARAMS", message: "entry.properties must be an object" },
    ]);
    expect(result.warnings.map((warning) => [warning.reason, warning.source])).toEqual([
      ["field_defaulted", "127.0.0.1"],
      ["rejected", "127.0.0.1"],
      ["rejected", "127.0.0.1"],
      ["rejected", "127.0.0.1"],
      ["rejected", "127.0.0.1"],
    ]);
    expect(result.warnings[0]).toMatchObject({
      entry_id: (wrongType as unknown as { insert_id: string }).insert_id,
      detail: "properties.durationMs must be number; replaced by a default",
    });
  });

  it("rejects a too-deep entry and cuts a too-large one to fit", () => {
    const deep = parentEntry() as unknown as { properties: Record<string, unknown> };
    deep.properties["extra"] = nested(MAX_ENTRY_DEPTH);
    const large = parentEntry() as unknown as { properties: Record<string, unknown> };
    large.properties["extra"] = "x".repeat(4000);
    const result = check([deep, large], 2048);
    expect(result.rejected).toEqual([{ index: 0, code: "INVALID_PARAMS", message: `entry is nested deeper than ${MAX_ENTRY_DEPTH} levels` }]);
    expect(result.accepted).toBe(1);
    expect(Buffer.byteLength(JSON.stringify(result.unique[0]))).toBeLessThanOrEqual(2048);
    expect(result.warnings.map((warning) => warning.reason)).toEqual(["rejected", "entry_truncated"]);
  });
});

describe("jsonBytesBound", () => {
  const jsonBytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

  it("is at least the byte length JSON.stringify writes, escapes, lone surrogates and long number forms included", () => {
    const values: unknown[] = [
      "",
      'quote " backslash \\ newline \n tab \t',
      "\u0000\u0001\u001f\u007f",
      "\ud800 lone \udfff surrogates",
      "é ü 日本 😀 astral",
      1e20,
      1e21,
      -0.0000057296900417770885,
      -1.2345678901234567e-7,
      Number.MAX_VALUE,
      -Number.MIN_VALUE,
      0,
      true,
      false,
      null,
      [],
      {},
      [[[]], {}, [1, "a", null]],
      { 'k"e\\y\u0001': { "": [1e20, "😀"] }, 日本: -0.0000057296900417770885 },
      JSON.parse('{"__proto__":{"polluted":true},"a":[1,2,3]}'),
      Object.assign(Object.create(null) as object, { a: 1, b: ["x"] }),
      JSON.parse(JSON.stringify({ events: [parentEntry(), childEntry("p"), legacyEntry()] })),
    ];
    for (const value of values) {
      expect(jsonBytesBound(value, 1)).toBeGreaterThanOrEqual(jsonBytes(value));
    }
  });

  it("finds the same depth as nestedDeeperThan", () => {
    for (const depth of [1, 2, MAX_ENTRY_DEPTH - 1, MAX_ENTRY_DEPTH]) expect(jsonBytesBound(nested(depth), 1)).toBeGreaterThanOrEqual(0);
    expect(jsonBytesBound(nested(MAX_ENTRY_DEPTH + 1), 1)).toBe(TOO_DEEP);
    expect(jsonBytesBound(nested(100_000), 1)).toBe(TOO_DEEP);
    expect(jsonBytesBound({ a: 1, b: [nested(MAX_ENTRY_DEPTH)] }, 1)).toBe(TOO_DEEP);
  });

  it("gives up on values JSON.parse does not produce", () => {
    class Thing {
      a = 1;
    }
    for (const value of [
      undefined,
      () => 1,
      Symbol("s"),
      1n,
      new Date(0),
      new Map(),
      new Thing(),
      [1, , 3],
      { a: undefined },
      { toJSON: () => 1 },
      Buffer.from("x"),
    ]) {
      expect(jsonBytesBound(value, 1)).toBe(NOT_JSON);
    }
  });
});

describe("checkEntries sizes", () => {
  it("keeps an entry at the limit as it is and cuts one a byte over", () => {
    const entry = parentEntry() as unknown as { properties: Record<string, unknown> };
    entry.properties["extra"] = { big: 1e20, control: "\u0001\u001f", astral: "😀é", long: "y".repeat(3000) };
    const bytes = Buffer.byteLength(JSON.stringify(entry));
    const atLimit = check([entry], bytes);
    expect(atLimit.warnings).toEqual([]);
    const over = check([entry], bytes - 1);
    expect(over.accepted).toBe(1);
    expect(over.warnings.map((warning) => warning.reason)).toEqual(["entry_truncated"]);
    expect(Buffer.byteLength(JSON.stringify(over.unique[0]))).toBeLessThanOrEqual(bytes - 1);
  });

  it("checks entries JSON.parse cannot produce the exact way", () => {
    const withDate = { ...parentEntry(), when: new Date(0) };
    const result = check([withDate, [undefined]]);
    expect(result.accepted).toBe(1);
    expect(result.rejected.map((rejection) => rejection.code)).toEqual(["INVALID_PARAMS"]);
    const deepInMap = { ...parentEntry(), map: new Map(), deep: nested(MAX_ENTRY_DEPTH) };
    expect(check([deepInMap]).rejected[0]?.message).toBe(`entry is nested deeper than ${MAX_ENTRY_DEPTH} levels`);
  });
});

describe("replaceLoneSurrogates", () => {
  it("replaces lone surrogates in values and keys with U+FFFD and keeps paired ones", () => {
    const entry = JSON.parse('{"a":["ok","x\\ud800y","\\udfff"],"k\\udc00":{"emoji":"\\ud83d\\ude00"}}') as unknown;
    expect(replaceLoneSurrogates(entry)).toEqual({ a: ["ok", "x\uFFFDy", "\uFFFD"], "k\uFFFD": { emoji: "😀" } });
  });

  it("repairs accepted entries before they are enqueued, with a lone_surrogate warning naming where", () => {
    const entry = parentEntry();
    entry.properties.invocation.args = ["\ud800", "fine"];
    (entry.properties as Record<string, unknown>)["k\udc00"] = "x";
    const checked = check([entry]);
    expect(checked.rejected).toEqual([]);
    expect(checked.unique[0]?.properties.invocation.args).toEqual(["\uFFFD", "fine"]);
    expect(checked.unique[0]?.properties["k\uFFFD"]).toBe("x");
    expect(checked.unique[0]?.[REPAIRS_KEY]).toEqual({ repairs: ["lone_surrogate"] });
    expect(checked.warnings.map((warning) => [warning.reason, warning.entry_id, warning.detail])).toEqual([
      ["lone_surrogate", entry.insert_id, "lone surrogates replaced by U+FFFD in properties.invocation.args.0, properties.k\uFFFD (its name)"],
    ]);
    expect(/\p{Cs}/u.test(checked.warnings[0]?.excerpt ?? "")).toBe(false);
  });

  it("does not look for lone surrogates when parseBody proved there are none", () => {
    const entry = parentEntry();
    entry.properties.invocation.args = ["\ud800"];
    expect(checkEntries([entry], { ...CONTEXT, maxEntryBytes: 65_536, mayHaveLoneSurrogates: false }).warnings).toEqual([]);
  });
});

describe("replaceLoneSurrogates leaves its argument alone", () => {
  it("returns the same value when nothing needs repair, and a copy otherwise", () => {
    const clean = { a: ["x", { b: "😀" }] };
    expect(replaceLoneSurrogates(clean)).toBe(clean);
    const dirty = { a: ["x", { b: "\ud800" }], c: 1 };
    const repaired = replaceLoneSurrogates(dirty);
    expect(repaired).toEqual({ a: ["x", { b: "\uFFFD" }], c: 1 });
    expect(dirty.a[1]).toEqual({ b: "\ud800" });
  });
});

describe("checkEntries after bytes that are not UTF-8", () => {
  const context = { ...CONTEXT, maxEntryBytes: 65_536, invalidUtf8Excerpt: 'x"}, {"b":"\uFFFD' };

  it("warns for each stored entry holding U+FFFD, naming where, and stores them all", () => {
    const [clean, damaged] = [parentEntry(), parentEntry()];
    damaged.properties.invocation.args = ["ok", "bad \uFFFD byte"];
    const checked = checkEntries([clean, damaged], context);
    expect(checked.accepted).toBe(2);
    expect(checked.unique[0]).toEqual(clean);
    expect(checked.unique[1]?.[REPAIRS_KEY]).toEqual({ repairs: ["invalid_utf8"] });
    expect(checked.warnings.map((warning) => [warning.reason, warning.entry_id, warning.detail])).toEqual([
      ["invalid_utf8", damaged.insert_id, "bytes that are not UTF-8 replaced by U+FFFD in properties.invocation.args.1"],
    ]);
  });

  it("warns once for the request when no stored entry holds the replacement", () => {
    const checked = checkEntries([parentEntry(), "\uFFFD"], context);
    expect(checked.accepted).toBe(1);
    expect(checked.warnings.map((warning) => [warning.reason, warning.entry_id])).toEqual([
      ["rejected", ""],
      ["invalid_utf8", ""],
    ]);
    expect(checked.warnings[1]?.excerpt).toBe(JSON.stringify(context.invalidUtf8Excerpt));
  });
});

describe("checkEntries on deep input", () => {
  it("refuses an entry nested 4,000 or 100,000 deep alone, with an excerpt of its start, and keeps the rest", () => {
    const good = parentEntry();
    const result = check([good, nested(4000), { ...parentEntry(), deep: nested(100_000) }]);
    expect(result.accepted).toBe(1);
    expect(result.unique).toEqual([good]);
    expect(result.rejected.map((rejection) => rejection.index)).toEqual([1, 2]);
    expect(result.warnings.map((warning) => warning.excerpt.slice(0, 8))).toEqual(['{"a":[{"', '{"event"']);
  });
});
