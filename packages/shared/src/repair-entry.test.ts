import { describe, expect, it } from "vitest";
import { REPAIRS_KEY, repairCliInvocation } from "./repair-entry.js";

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

  it("replaces timestamps from a clock two days ahead by the receive time and keeps the client's values", () => {
    const result = repair(entry({ startedAt: "2026-11-25T00:00:00.000Z", completedAt: "2026-11-25T00:00:01.000Z" }));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.event.properties.startedAt).toBe("2026-11-23T00:00:00.000Z");
    expect(result.event.properties.completedAt).toBe("2026-11-23T00:00:00.000Z");
    expect(result.event[REPAIRS_KEY]).toEqual({
      repairs: ["timestamp_replaced"],
      clientStartedAt: "2026-11-25T00:00:00.000Z",
      clientCompletedAt: "2026-11-25T00:00:01.000Z",
    });
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

  it("refuses only what is not a cli_invocation, and drops a client's own $flowmeter", () => {
    expect(repair("text")).toEqual({ ok: false, message: "entry is not a JSON object" });
    expect(repair({ event: "pageview", properties: {} })).toEqual({ ok: false, message: 'entry.event must be "cli_invocation"' });
    expect(repair({ event: "cli_invocation", properties: [] })).toEqual({ ok: false, message: "entry.properties must be an object" });
    const spoofed = repair(entry({}, { [REPAIRS_KEY]: { repairs: ["truncated"] } }));
    expect(spoofed.ok && spoofed.event[REPAIRS_KEY]).toBeUndefined();
  });

  it("never changes its argument", () => {
    const value = entry({ startedAt: "not a date" });
    const copy = structuredClone(value);
    repair(value);
    expect(value).toEqual(copy);
  });
});
