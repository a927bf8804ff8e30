import type { HeartbeatMetrics } from "@flowmeter/shared";

/** Heartbeats without output growth after which a stage's output_state is `stagnant` rather than `quiet`. */
export const STAGNANT_AFTER_HEARTBEATS = 3;

export interface StageActivity {
  startedAtMs: number;
  stdoutBytes: number;
  stderrBytes: number;
  pid: number | null;
  pidAlive: boolean;
}

/** The heartbeat fields of one running stage attempt (seed 002): deltas and stagnation since the previous heartbeat. */
export class StageHeartbeat {
  private lastStdout = 0;
  private lastStderr = 0;
  private stagnant = 0;

  constructor(private readonly stagnantAfter: number = STAGNANT_AFTER_HEARTBEATS) {}

  next(activity: StageActivity, nowMs: number = Date.now()): HeartbeatMetrics {
    const stdoutDelta = activity.stdoutBytes - this.lastStdout;
    const stderrDelta = activity.stderrBytes - this.lastStderr;
    this.lastStdout = activity.stdoutBytes;
    this.lastStderr = activity.stderrBytes;
    this.stagnant = stdoutDelta + stderrDelta > 0 ? 0 : this.stagnant + 1;
    return {
      elapsed_secs: Math.max(0, nowMs - activity.startedAtMs) / 1000,
      stdout_bytes: activity.stdoutBytes,
      stderr_bytes: activity.stderrBytes,
      stdout_delta_bytes: stdoutDelta,
      stderr_delta_bytes: stderrDelta,
      stagnant_heartbeats: this.stagnant,
      pid: activity.pid,
      pid_alive: activity.pidAlive,
      output_state: this.stagnant === 0 ? "active" : this.stagnant >= this.stagnantAfter ? "stagnant" : "quiet",
    };
  }
}
