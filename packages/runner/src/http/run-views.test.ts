import { describe, expect, it } from "vitest";
import { ApiError } from "@flowmeter/shared";
import type { RunRecord } from "../store/run-records.js";
import { decodeListCursor, encodeListCursor, toRunView } from "./run-views.js";

const RECORD: RunRecord = {
  run_id: "r1",
  attempt_id: "a1",
  workflow: "w",
  state: "running",
  created_at_ms: Date.UTC(2026, 0, 31, 12, 0, 0),
  started_at_ms: Date.UTC(2026, 0, 31, 12, 0, 1),
  runner_id: "runner-1",
  waiting_reason: "kept from an earlier claim",
  last_event_id: "e7",
  last_seq: 7,
  last_event_type: "run.started",
};

describe("toRunView", () => {
  it("shows times as RFC 3339, absent fields as null, and the last event type as the API version names it", () => {
    const v1 = toRunView(RECORD, "v1");
    expect(v1).toEqual({
      run_id: "r1",
      attempt_id: "a1",
      state: "running",
      workflow: "w",
      created_at: "2026-01-31T12:00:00.000Z",
      started_at: "2026-01-31T12:00:01.000Z",
      ended_at: null,
      runner_id: "runner-1",
      heartbeat_at: null,
      lease_expires_at: null,
      terminal_reason: null,
      error: null,
      cancel_reason: null,
      policy: null,
      rerun_of: null,
      waiting_reason: null,
      last_event: { event_id: "e7", seq: 7, event_type: "run.started" },
    });
    expect(toRunView(RECORD, "v2").last_event).toEqual({ event_id: "e7", seq: 7, event_type: "RunStarted" });
    expect(toRunView({ ...RECORD, state: "queued" }, "v1").waiting_reason).toBe("kept from an earlier claim");
  });
});

describe("list cursors", () => {
  it("decode what they encode, for a list walking their index", () => {
    const cursor = { index: "terminal" as const, after: "1769860800000:r1" };
    const text = encodeListCursor(cursor);
    expect(text).toMatch(/^[A-Za-z0-9_-]+$/);
    expect(decodeListCursor(text, "all")).toEqual(cursor);
    expect(decodeListCursor(text, "failed")).toEqual(cursor);
    expect(decodeListCursor(encodeListCursor({ index: "active", after: "" }), "queued")).toEqual({ index: "active", after: "" });
  });

  it("refuse text they did not make, and a cursor of another list, as INVALID_PARAMS", () => {
    const refused = (text: string, state: "all" | "active") => {
      try {
        decodeListCursor(text, state);
      } catch (error) {
        return error instanceof ApiError ? [error.code, error.message] : error;
      }
      return "accepted";
    };
    const bad = "cursor is not one this API returned (pass next_cursor unchanged)";
    expect(refused("garbage", "all")).toEqual(["INVALID_PARAMS", bad]);
    expect(refused(Buffer.from('["active","x"]').toString("base64url"), "all")).toEqual(["INVALID_PARAMS", bad]);
    expect(refused(Buffer.from('["active","",1]').toString("base64url"), "all")).toEqual(["INVALID_PARAMS", bad]);
    expect(refused(encodeListCursor({ index: "terminal", after: "" }), "active")).toEqual([
      "INVALID_PARAMS",
      "cursor belongs to a list of terminal runs, not active",
    ]);
  });
});
