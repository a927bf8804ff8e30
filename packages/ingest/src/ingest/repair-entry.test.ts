import { describe, expect, it } from "vitest";
import { REPAIRS_KEY } from "@flowmeter/shared";
import { repairCliInvocation } from "./repair-entry.js";

const NOW = Date.parse("2026-11-23T00:00:00.000Z");

function entry(properties: Record<string, unknown> = {}, envelope: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    event: "cli_invocation",
    distinct_id: "user-1",
    insert_id: "id-1",
    ...envelope,
    properties: {
      id: "id-1",
      invocation: { command: "model", args: [], optionKeys: [], globalOptions: [] },
      result: { status: "error", exitCode: 1 },
      startedAt: "2026-11-20T10:00:00.000Z",
      completedAt: "2026-11-20T10:00:01.000Z",
      durationMs: 1000,
      ...properties,
    },
  };
}

const repair = (value: unknown, maxEntryBytes = 65_536) => repairCliInvocation(value, { receivedAtMs: NOW, maxEntryBytes });

describe("repairCliInvocation", () => {
  it("returns a valid entry untouched, with no repairs", () => {
    const value = entry();
    expect(repair(value)).toEqual({ ok: true, event: value, repairs: [] });
  });

  it("cuts an error message over 4096 characters and says so", () => {
    const result = repair(entry({ result: { status: "error", exitCode: 1, errorMessage: "e".repeat(5000) } }));
    expect(result.ok && result.event.properties.result.errorMessage).toBe("e".repeat(4096));
    expect(result.ok && result.repairs).toEqual([{ reason: "truncated", detail: "properties.result.errorMessage cut from 5000 to 4096 characters" }]);
    expect(result.ok && result.event[REPAIRS_KEY]).toEqual({ repairs: ["truncated"] });
  });

  it("replaces timestamps from a clock two days ahead: completed at the receive time, started durationMs before, client's values kept", () => {
    const result = repair(entry({ startedAt: "2026-11-25T00:00:00.000Z", completedAt: "2026-11-25T00:00:01.000Z", durationMs: 1000 }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.properties.startedAt).toBe("2026-11-22T23:59:59.000Z");
    expect(result.event.properties.completedAt).toBe("2026-11-23T00:00:00.000Z");
    expect(result.event.properties.durationMs).toBe(1000);
    expect(result.event[REPAIRS_KEY]).toEqual({
      repairs: ["timestamp_replaced"],
      clientStartedAt: "2026-11-25T00:00:00.000Z",
      clientCompletedAt: "2026-11-25T00:00:01.000Z",
    });
    expect(result.repairs.map((r) => r.detail)).toEqual([
      "properties.startedAt (2026-11-25T00:00:00.000Z) is not a date within 5 years ago and a day ahead; the receive time minus durationMs (1000 ms) used, so the duration stays the one sent",
      "properties.completedAt (2026-11-25T00:00:01.000Z) is not a date within 5 years ago and a day ahead; the receive time used",
    ]);
  });

  it("keeps a durationMs sent as a string, converted, when both timestamps are replaced", () => {
    const result = repair(entry({ startedAt: "1999-01-01T00:00:00Z", completedAt: "garbage", durationMs: "2500" }));
    expect(result.ok && [result.event.properties.startedAt, result.event.properties.completedAt, result.event.properties.durationMs]).toEqual([
      "2026-11-22T23:59:57.500Z",
      "2026-11-23T00:00:00.000Z",
      2500,
    ]);
    expect(result.ok && result.repairs.map((r) => r.reason)).toEqual(["field_converted", "timestamp_replaced", "timestamp_replaced"]);
  });

  it("converts numbers sent as strings, with a warning, and defaults what is not a number of the right kind", () => {
    const converted = repair(entry({ durationMs: "1234", result: { status: "error", exitCode: "1" } }));
    expect(converted.ok && [converted.event.properties.durationMs, converted.event.properties.result.exitCode]).toEqual([1234, 1]);
    expect(converted.ok && converted.repairs).toEqual([
      { reason: "field_converted", detail: 'properties.durationMs "1234" converted to the number 1234' },
      { reason: "field_converted", detail: 'properties.result.exitCode "1" converted to the number 1' },
    ]);
    expect(converted.ok && converted.event[REPAIRS_KEY]).toEqual({ repairs: ["field_converted"] });
    expect(repair(entry({ durationMs: " 1.5e3 " }))).toMatchObject({ ok: true, event: { properties: { durationMs: 1500 } } });
    for (const [durationMs, exitCode] of [
      ["1e400", "1.5"],
      ["0x10", "Infinity"],
      ["", "one"],
    ]) {
      const result = repair(entry({ durationMs, result: { status: "error", exitCode } }));
      expect(result.ok && [result.event.properties.durationMs, result.event.properties.result.exitCode]).toEqual([0, -1]);
      expect(result.ok && result.repairs.map((r) => r.reason)).toEqual(["field_defaulted", "field_defaulted"]);
    }
  });

  it("derives a missing completedAt from startedAt and durationMs", () => {
    const value = entry();
    delete (value["properties"] as Record<string, unknown>)["completedAt"];
    const result = repair(value);
    expect(result.ok && result.event.properties.completedAt).toBe("2026-11-20T10:00:01.000Z");
    expect(result.ok && result.repairs.map((r) => r.reason)).toEqual(["timestamp_replaced"]);
  });

  it("derives missing ids: properties.id from insert_id, else from the content, the same on a re-send", () => {
    const noId = entry();
    delete (noId["properties"] as Record<string, unknown>)["id"];
    expect(repair(noId)).toMatchObject({ ok: true, event: { properties: { id: "id-1" } } });
    const neither = entry({}, { insert_id: undefined, distinct_id: undefined });
    delete neither["insert_id"];
    delete neither["distinct_id"];
    delete (neither["properties"] as Record<string, unknown>)["id"];
    const first = repair(neither);
    const again = repair(structuredClone(neither));
    expect(first.ok && first.event.properties.id).toMatch(/^derived-[0-9a-f]{32}$/);
    expect(first.ok && again.ok && first.event.properties.id === again.event.properties.id).toBe(true);
    expect(first.ok && first.event.distinct_id).toBe("unknown");
  });

  it("fills what is missing or unreadable, and drops optional fields it cannot read", () => {
    const result = repair(entry({ result: { status: "meh" }, platform: 42, invocation: { command: "x", args: ["a", 7] } }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.properties.result).toEqual({ status: "error", exitCode: -1 });
    expect(result.event.properties.platform).toBeUndefined();
    expect(result.event.properties.invocation.args).toEqual(["a", "7"]);
    expect(new Set(result.repairs.map((r) => r.reason))).toEqual(new Set(["field_defaulted", "field_dropped"]));
  });

  it("cuts a megabyte error line so the entry fits, longest strings first", () => {
    const result = repair(entry({ result: { status: "error", exitCode: 1, errorMessage: "x".repeat(1_100_000) }, note: "keep me" }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(Buffer.byteLength(JSON.stringify(result.event))).toBeLessThanOrEqual(65_536);
    expect(result.event.properties["note"]).toBe("keep me");
    expect(result.repairs.map((r) => r.reason)).toEqual(["truncated"]);
  });

  it("records the repairs made before it (text decoding) with its own", () => {
    const before = [{ reason: "lone_surrogate" as const, detail: "properties.platform: lone surrogates replaced by U+FFFD" }];
    const result = repairCliInvocation(entry(), { receivedAtMs: NOW, maxEntryBytes: 65_536, knownToFit: true, repairsBefore: before });
    expect(result.ok && result.repairs).toEqual(before);
    expect(result.ok && result.event[REPAIRS_KEY]).toEqual({ repairs: ["lone_surrogate"] });
  });

  it("refuses only what is not a cli_invocation, and drops a client's own $flowmeter", () => {
    expect(repair("text")).toEqual({ ok: false, message: "entry is not a JSON object" });
    expect(repair({ event: "pageview", properties: {} })).toEqual({ ok: false, message: 'entry.event must be "cli_invocation"' });
    expect(repair({ event: "cli_invocation", properties: [] })).toEqual({ ok: false, message: "entry.properties must be an object" });
    const spoofed = repair(entry({}, { [REPAIRS_KEY]: { repairs: ["truncated"] } }));
    expect(spoofed.ok && spoofed.event[REPAIRS_KEY]).toBeUndefined();
  });

  it("reports the items of a list cut to their bound once, and keeps the first 256", () => {
    const result = repair(entry({ invocation: { command: "x", args: Array.from({ length: 300 }, (_, index) => `${index}`.padEnd(600, "a")) } }), 1_000_000);
    expect(result.ok && result.event.properties.invocation.args?.map((arg) => arg.slice(0, 3))).toEqual(
      Array.from({ length: 256 }, (_, index) => `${index}`.padEnd(3, "a")),
    );
    expect(result.ok && result.repairs).toEqual([
      { reason: "truncated", detail: "properties.invocation.args cut from 300 to 256 items" },
      { reason: "truncated", detail: "256 items of properties.invocation.args cut to 512 characters (the longest had 600)" },
    ]);
  });

  it("never changes its argument", () => {
    const value = entry({ startedAt: "not a date" });
    const copy = structuredClone(value);
    repair(value);
    expect(value).toEqual(copy);
  });
});

describe("repairCliInvocation: any entry fits INGEST_MAX_ENTRY_BYTES", () => {
  const bytes = (value: unknown): number => Buffer.byteLength(JSON.stringify(value));

  function fits(value: Record<string, unknown>, maxEntryBytes = 65_536): { event: Record<string, unknown>; detail: string } {
    const result = repair(value, maxEntryBytes);
    if (!result.ok) throw new Error(result.message);
    expect(bytes(result.event)).toBeLessThanOrEqual(maxEntryBytes);
    expect(/\p{Cs}/u.test(JSON.stringify(result.event).replace(/\\u[dD][89a-fA-F][0-9a-fA-F]{2}/g, ""))).toBe(false);
    expect(result.event.properties.id).toBe((value["properties"] as { id: string }).id);
    expect(result.event.insert_id).toBe(value["insert_id"]);
    expect(result.event[REPAIRS_KEY]).toMatchObject({ repairs: expect.arrayContaining(["entry_truncated"]) as unknown });
    return { event: result.event, detail: result.repairs.find((r) => r.reason === "entry_truncated")?.detail ?? "" };
  }

  it("stores 2,000 args of 550 characters (1.1 MB): the first 256, each cut to the same length", () => {
    const { event, detail } = fits(entry({ invocation: { command: "model", args: Array.from({ length: 2000 }, () => "a".repeat(550)) } }));
    const args = (event["properties"] as { invocation: { args: string[] } }).invocation.args;
    expect(args).toHaveLength(256);
    expect(new Set(args.map((arg) => arg.length)).size).toBe(1);
    expect(detail).toMatch(/^entry cut from \d+ to \d+ bytes; 256 strings cut to at most \d+ characters, longest first$/);
  });

  it("stores 256 args of 300 characters (78 KB)", () => {
    const { event } = fits(entry({ invocation: { command: "model", args: Array.from({ length: 256 }, () => "b".repeat(300)) } }));
    expect((event["properties"] as { invocation: { args: string[] } }).invocation.args).toHaveLength(256);
  });

  it("keeps the first items of a long list of small values, and says how many were dropped", () => {
    const { event, detail } = fits(entry({ samples: Array.from({ length: 1_000_000 }, (_, index) => index) }));
    const samples = (event["properties"] as { samples: number[] }).samples;
    expect(samples.length).toBeGreaterThan(1000);
    expect(samples.slice(0, 5)).toEqual([0, 1, 2, 3, 4]);
    expect(detail).toContain(`properties.samples kept its first ${samples.length} of 1000000 items`);
  });

  it("drops extra fields of an object with 100,000 keys, never the ones the schema names", () => {
    const context = Object.fromEntries(Array.from({ length: 100_000 }, (_, index) => [`key${index}`, index]));
    const value = entry({ invocationContext: context, ...Object.fromEntries(Array.from({ length: 5000 }, (_, index) => [`extra${index}`, "v".repeat(40)])) });
    const { event, detail } = fits(value);
    const properties = event["properties"] as Record<string, unknown>;
    for (const key of ["id", "invocation", "result", "startedAt", "completedAt", "durationMs"])
      expect(properties[key]).toEqual((value["properties"] as Record<string, unknown>)[key]);
    expect(Object.keys(properties["invocationContext"] as object)[0]).toBe("key0");
    expect(detail).toMatch(/properties.invocationContext kept its first \d+ of 100000 extra fields/);
  });

  it("cuts a huge key, deep lists of long strings, and astral text without splitting a pair", () => {
    fits(entry({ ["k".repeat(200_000)]: 1 }));
    fits(entry({ nested: Array.from({ length: 50 }, () => ({ list: Array.from({ length: 50 }, () => "😀".repeat(500)) })) }));
    fits(entry({ result: { status: "error", exitCode: 1, errorMessage: "😀".repeat(3000) }, note: "é".repeat(100_000) }), 16_384);
  });

  it("fits the worst entry into the smallest limit allowed (16 KiB): ids, names and client timestamps of control characters", () => {
    const control = (length: number): string => "\u0001".repeat(length);
    const value = entry(
      {
        id: control(200),
        parentInvocationId: control(200),
        startedAt: control(300),
        completedAt: control(300),
        invocation: { command: control(512), subcommand: control(512), args: Array.from({ length: 256 }, () => control(512)) },
        result: { status: "user_error", exitCode: 2, errorType: control(512), errorMessage: control(4096) },
        workflowContext: { workflowName: control(512), runId: control(512), jobName: control(512), stepName: control(512), executor: control(512) },
        swampVersion: control(512),
      },
      { insert_id: control(200), distinct_id: control(200) },
    );
    fits(value, 16_384);
  });

  it("keeps the $flowmeter record inside the limit", () => {
    const value = entry({ startedAt: "garbage", note: "n".repeat(5000) });
    const size = bytes(value);
    const result = repair(value, size);
    expect(result.ok && bytes(result.event)).toBeLessThanOrEqual(size);
    expect(result.ok && (result.event[REPAIRS_KEY] as { repairs: string[] }).repairs).toEqual(["timestamp_replaced", "entry_truncated"]);
  });
});
