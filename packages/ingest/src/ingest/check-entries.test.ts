import { childEntry, legacyEntry, parentEntry } from "@flowmeter/test-utils";
import { describe, expect, it } from "vitest";
import { checkEntries, MAX_ENTRY_DEPTH, nestedDeeperThan } from "./check-entries.js";

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

describe("checkEntries", () => {
  it("accepts valid entries and keeps repeats once", () => {
    const parent = parentEntry();
    const child = childEntry(parent.properties.id, { driverKey: "driver" });
    const legacy = legacyEntry();
    const result = checkEntries([parent, child, parent, legacy], 65_536);
    expect(result.accepted).toBe(4);
    expect(result.rejected).toEqual([]);
    expect(result.unique).toEqual([parent, child, legacy]);
  });

  it("rejects each bad entry on its own, naming the field", () => {
    const good = parentEntry();
    const wrongType = parentEntry() as unknown as { properties: Record<string, unknown> };
    wrongType.properties["durationMs"] = "slow";
    const result = checkEntries([good, wrongType, "text", null], 65_536);
    expect(result.accepted).toBe(1);
    expect(result.unique).toEqual([good]);
    expect(result.rejected.map((rejection) => [rejection.index, rejection.code])).toEqual([
      [1, "INVALID_PARAMS"],
      [2, "INVALID_PARAMS"],
      [3, "INVALID_PARAMS"],
    ]);
    expect(result.rejected[0]?.message).toContain("properties.durationMs");
  });

  it("rejects too-deep and too-large entries", () => {
    const deep = parentEntry() as unknown as { properties: Record<string, unknown> };
    deep.properties["extra"] = nested(MAX_ENTRY_DEPTH);
    const large = parentEntry() as unknown as { properties: Record<string, unknown> };
    large.properties["extra"] = "x".repeat(2000);
    const result = checkEntries([deep, large], 1024);
    expect(result.rejected).toEqual([
      { index: 0, code: "INVALID_PARAMS", message: `entry is nested deeper than ${MAX_ENTRY_DEPTH} levels` },
      { index: 1, code: "PAYLOAD_TOO_LARGE", message: expect.stringMatching(/at most 1024 bytes/) as unknown },
    ]);
  });
});
