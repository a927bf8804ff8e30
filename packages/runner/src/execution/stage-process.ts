/**
 * One attempt of a stage as a real child process: spawned in its own process group, stdout/stderr counted, cut
 * into log lines (stage-output.ts) and the last KiB of stderr kept, a timeout, and a kill that sends SIGTERM to the group and to every process seen in
 * its tree, then SIGKILL after a grace period. When the attempt ends, whatever is left of it is killed, and while it
 * runs it is on record for the next runner should this one die (stage-registry.ts says what that cannot catch).
 *
 * exit code: the process's own code; 128 + signal number when a signal ended it (SIGTERM 143, SIGKILL 137),
 * as shells report it; -1 when it could not be started.
 */
import { spawn } from "node:child_process";
import { constants } from "node:os";
import type { DriverCommand } from "../drivers/driver.js";
import type { StageCgroup } from "./stage-cgroup.js";
import { StageOutput, type EmitLine, type StageOutputLimits } from "./stage-output.js";
import { TrackedStage, type StageRegistry } from "./stage-registry.js";

const STDERR_TAIL_BYTES = 1024;
/** After the process exits, how long to wait for its output pipes to close (a descendant may still hold them). */
const PIPE_CLOSE_WAIT_MS = 500;

export interface StageProcessOptions {
  command: DriverCommand;
  env: NodeJS.ProcessEnv;
  cwd: string;
  /** Kill the attempt after this long; undefined for no timeout. */
  timeoutMs?: number;
  /** SIGTERM → SIGKILL delay on timeout or cancel. */
  killGraceMs: number;
  /** Where live stages are recorded for the next runner; without it the stage is still contained while this runner lives. */
  registry?: StageRegistry;
  /** Names the stage in its record. */
  label: { runId: string; stage: string };
  /** Receives each line of output: the head as it is read, the tail when the attempt ends (stage-output.ts). */
  onLine?: EmitLine;
  /** Lines kept from the start and the end of the attempt's output (default DEFAULT_STAGE_OUTPUT_LIMITS). */
  outputLimits?: StageOutputLimits;
}

export interface StageProcessResult {
  exitCode: number;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  /** `terminate()` was called before the process ended (the run was cancelled). */
  terminated: boolean;
  /** Set when the process could not be started (exitCode is then -1). */
  spawnError?: string;
  durationMs: number;
  stderrTail: string;
  /** The stage wrote more stderr than the tail holds: the tail starts inside its output. */
  stderrTailCut: boolean;
}

export function exitCodeOf(code: number | null, signal: NodeJS.Signals | null): number {
  if (code !== null) return code;
  if (signal !== null) return 128 + (constants.signals[signal] ?? 0);
  return -1;
}

export class StageProcess {
  readonly startedAtMs = Date.now();
  readonly pid: number | null;
  stdoutBytes = 0;
  stderrBytes = 0;
  readonly result: Promise<StageProcessResult>;
  private exited = false;
  private timedOut = false;
  private terminated = false;
  private stderrTail = Buffer.alloc(0);
  private timeoutTimer: NodeJS.Timeout | undefined;
  private killTimer: NodeJS.Timeout | undefined;
  private readonly tracked: TrackedStage | undefined;
  /** The attempt's cgroup, where the host gives stages one (stage-cgroup.ts). */
  readonly cgroup: StageCgroup | undefined;
  private readonly lines: StageOutput | undefined;

  constructor(private readonly options: StageProcessOptions) {
    const cgroup = options.registry?.createCgroup();
    this.cgroup = cgroup;
    const command = cgroup === undefined ? options.command : cgroup.wrap(options.command);
    let child;
    try {
      child = spawn(command.file, [...command.args], { cwd: options.cwd, env: options.env, detached: true, stdio: ["ignore", "pipe", "pipe"] });
    } catch (error) {
      cgroup?.remove(); // arguments spawn refuses at once (a NUL byte): nothing ran in it
      throw error;
    }
    this.pid = child.pid ?? null;
    if (this.pid === null) cgroup?.remove();
    this.tracked = this.pid === null ? undefined : new TrackedStage(options.registry, { ...options.label, processGroup: this.pid }, cgroup);
    this.lines = options.onLine === undefined ? undefined : new StageOutput(options.onLine, options.outputLimits);
    child.stdout.on("data", (chunk: Buffer) => {
      this.stdoutBytes += chunk.length;
      this.lines?.write("stdout", chunk);
    });
    child.stderr.on("data", (chunk: Buffer) => {
      this.stderrBytes += chunk.length;
      this.lines?.write("stderr", chunk);
      this.stderrTail = Buffer.concat([this.stderrTail, chunk]).subarray(-STDERR_TAIL_BYTES);
    });
    this.result = new Promise((resolve) => {
      let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
      let spawnError: string | undefined;
      let pipeTimer: NodeJS.Timeout | undefined;
      let done = false;
      const finish = (): void => {
        if (done) return;
        done = true;
        clearTimeout(pipeTimer);
        clearTimeout(this.timeoutTimer);
        clearTimeout(this.killTimer);
        this.exited = true;
        this.tracked?.end(); // leftovers: the process group and what left it
        child.stdout.destroy();
        child.stderr.destroy();
        this.lines?.end();
        resolve({
          exitCode: spawnError === undefined ? exitCodeOf(exit?.code ?? null, exit?.signal ?? null) : -1,
          signal: exit?.signal ?? null,
          timedOut: this.timedOut,
          terminated: this.terminated,
          ...(spawnError === undefined ? {} : { spawnError }),
          durationMs: Date.now() - this.startedAtMs,
          stderrTail: this.stderrTail.toString("utf8"),
          stderrTailCut: this.stderrBytes > this.stderrTail.length,
        });
      };
      child.on("error", (error) => {
        if (this.pid === null) {
          spawnError = error.message;
          finish();
        }
      });
      child.on("exit", (code, signal) => {
        exit = { code, signal };
        this.exited = true;
        pipeTimer = setTimeout(finish, PIPE_CLOSE_WAIT_MS);
      });
      child.on("close", (code, signal) => {
        exit ??= { code, signal };
        finish();
      });
    });
    if (options.timeoutMs !== undefined && this.pid !== null) {
      this.timeoutTimer = setTimeout(() => {
        this.timedOut = true;
        this.kill();
      }, options.timeoutMs);
    }
  }

  /** True until the process has exited. */
  get alive(): boolean {
    return this.pid !== null && !this.exited;
  }

  /** Ends the attempt early (run cancelled): SIGTERM now, SIGKILL after the grace period. */
  terminate(): void {
    if (!this.alive) return;
    this.terminated = true;
    this.kill();
  }

  private kill(): void {
    if (this.killTimer !== undefined) return;
    this.signalGroup("SIGTERM");
    this.killTimer = setTimeout(() => this.signalGroup("SIGKILL"), this.options.killGraceMs);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    this.tracked?.scan();
    this.tracked?.signal(signal);
  }
}
