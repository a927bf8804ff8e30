import type { StageDefinition } from "@flowmeter/shared";

/** A program to start for one attempt of a stage: `file` with `args`, no shell interpolation by the runner. */
export interface DriverCommand {
  file: string;
  args: readonly string[];
}

/**
 * How a stage's `run` becomes a child process. The executor owns everything else (environment, output
 * counting, timeouts, kill, heartbeats), so a driver is only this translation. Register drivers by name in a
 * DriverRegistry; the name is also the `driver` label of the stage metrics, so keep the set small and fixed.
 */
export interface Driver {
  readonly name: string;
  command(stage: StageDefinition): DriverCommand;
}
