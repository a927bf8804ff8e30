import { describe, expect, it } from "vitest";
import { parseTakeover, prefillIdsStatement, prefillStatement, PREFILL_PREFIX } from "./bench-prefill.js";

describe("bench prefill", () => {
  it("reads the worker's takeover line", () => {
    const line = "2026-12-07T23:00:00.000Z info  worker  partition taken over partition=3 stored_ids_in_horizon=8891234 filter_bytes=29360128 ms=10417";
    expect(parseTakeover(line)).toEqual({ partition: 3, storedIdsInHorizon: 8_891_234, filterBytes: 29_360_128, ms: 10_417 });
    expect(parseTakeover("2026-12-07T23:00:00.000Z info  worker  worker started partitions=1")).toBeUndefined();
  });

  it("writes numbered rows whose names the bench's checks can leave out, and their ids within the horizon", () => {
    const statement = prefillStatement(20_000_000, 10_000_000, 100_000_000, Date.UTC(2026, 11, 7));
    expect(statement).toContain("FROM numbers(20000000, 10000000)");
    expect(statement).toContain(`concat('${PREFILL_PREFIX}cmd-'`);
    expect(statement).toContain(`concat('${PREFILL_PREFIX}driver-'`);
    expect(statement).toContain(`concat('${PREFILL_PREFIX}wf-'`);
    expect(prefillIdsStatement(8)).toContain("WHERE received_at >= now() - INTERVAL 8 DAY AND startsWith(command, 'prefill-')");
  });
});
