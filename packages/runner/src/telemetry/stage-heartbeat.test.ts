import { describe, expect, it } from "vitest";
import { StageHeartbeat } from "./stage-heartbeat.js";

describe("StageHeartbeat", () => {
  it("reports deltas, and quiet then stagnant after N heartbeats without output", () => {
    const heartbeat = new StageHeartbeat(2);
    const at = (stdout: number, stderr: number, nowMs: number) =>
      heartbeat.next({ startedAtMs: 1000, stdoutBytes: stdout, stderrBytes: stderr, pid: 42, pidAlive: true }, nowMs);
    expect(at(10, 0, 31_000)).toEqual({
      elapsed_secs: 30,
      stdout_bytes: 10,
      stderr_bytes: 0,
      stdout_delta_bytes: 10,
      stderr_delta_bytes: 0,
      stagnant_heartbeats: 0,
      pid: 42,
      pid_alive: true,
      output_state: "active",
    });
    expect(at(10, 0, 61_000)).toMatchObject({ stdout_delta_bytes: 0, stagnant_heartbeats: 1, output_state: "quiet" });
    expect(at(10, 0, 91_000)).toMatchObject({ stagnant_heartbeats: 2, output_state: "stagnant" });
    expect(at(10, 5, 121_000)).toMatchObject({ stderr_delta_bytes: 5, stagnant_heartbeats: 0, output_state: "active", elapsed_secs: 120 });
  });
});
