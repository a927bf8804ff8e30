import { createLogger, uuidV7, type Logger } from "@flowmeter/platform";
import {
  RUN_EVENT_V2_NAMES,
  isTerminalRunEvent,
  type HeartbeatMetrics,
  type HostMetrics,
  type RunEvent,
  type RunEventLevel,
  type RunEventOf,
  type RunEventPayloads,
  type RunEventType,
  type StageLogLine,
  type TelemetrySample,
} from "@flowmeter/shared";
import { storedLogText } from "./log-text.js";
import type { SecretMask } from "./secret-mask.js";

/** A line's stored text, marked when it was not UTF-8 (log-text.ts); masked before, so a secret is found in its bytes as written. */
function logText(text: string): { line: string; invalid_utf8?: boolean } {
  const { line, invalidUtf8 } = storedLogText(text);
  return invalidUtf8 ? { line, invalid_utf8: true } : { line };
}

/** Where a run's events and samples go: the EventPublisher in production, an array in tests. Must not block or throw. */
export interface RunOutput {
  event(event: RunEvent): void;
  sample(sample: TelemetrySample): void;
  log(line: StageLogLine): void;
}

export interface EventFields {
  message: string;
  level?: RunEventLevel;
  stage_name?: string;
  group_id?: string;
}

/**
 * Builds the envelopes of one run attempt: event_id, seq (0-based, strictly increasing), timestamps, the v2
 * name; the 1-based seq of its samples, and of its stage log lines (a sequence of their own). After the terminal run event it refuses everything, so nothing
 * can follow the terminal event.
 */
export class RunEventSequencer {
  private nextSeq: number;
  private nextSampleSeq = 1;
  private nextLogSeq = 1;
  private terminal = false;

  constructor(
    readonly runId: string,
    readonly attemptId: string,
    private readonly output: RunOutput,
    private readonly logger: Logger,
    firstSeq = 0,
    /** The run's secret values, masked in event messages, errors and log lines before they leave the runner. */
    private readonly mask?: SecretMask,
  ) {
    this.nextSeq = firstSeq;
  }

  get ended(): boolean {
    return this.terminal;
  }

  emit<T extends RunEventType>(type: T, fields: EventFields, payload: RunEventPayloads[T]): void {
    if (this.terminal) {
      this.logger.error("event after the terminal event dropped", { run_id: this.runId, event_type: type });
      return;
    }
    const now = Date.now();
    if (this.mask !== undefined && !this.mask.empty) {
      fields = { ...fields, message: this.mask.text(fields.message) };
      payload = this.maskPayload(type, payload);
    }
    const event: RunEventOf<T> = {
      event_id: uuidV7(now),
      run_id: this.runId,
      attempt_id: this.attemptId,
      seq: this.nextSeq++,
      ts_ms: now,
      timestamp: new Date(now).toISOString(),
      level: fields.level ?? "info",
      event_type: type,
      event_type_v2: RUN_EVENT_V2_NAMES[type],
      message: fields.message,
      stage_name: fields.stage_name ?? null,
      group_id: fields.group_id ?? null,
      payload,
    };
    this.terminal = isTerminalRunEvent(event);
    this.deliver(() => this.output.event(event as RunEvent));
  }

  host(stageName: string, host: HostMetrics): void {
    if (this.terminal) return;
    const sample: TelemetrySample = { kind: "host", ...this.sampleIds(), stage_name: stageName, host };
    this.deliver(() => this.output.sample(sample));
  }

  heartbeat(stage: { stage_name: string; group_id: string; stage_attempt: number }, heartbeat: HeartbeatMetrics): void {
    if (this.terminal) return;
    const sample: TelemetrySample = { kind: "heartbeat", ...this.sampleIds(), ...stage, heartbeat };
    this.deliver(() => this.output.sample(sample));
  }

  log(
    stage: { stage_name: string; stage_attempt: number },
    stream: StageLogLine["stream"],
    line: string,
    truncated: boolean,
    timestampMs: number = Date.now(),
  ): void {
    if (this.terminal) return;
    const logLine: StageLogLine = {
      run_id: this.runId,
      attempt_id: this.attemptId,
      seq: this.nextLogSeq++,
      timestamp_ms: timestampMs,
      ...stage,
      stream,
      ...logText(this.mask === undefined ? line : this.mask.excerpt(line, { end: truncated })),
      truncated,
    };
    this.deliver(() => this.output.log(logLine));
  }

  /** The payload fields that carry free text (stage output in stderr_tail, errors, cancel reasons); run.failed's reason is a code. */
  private maskPayload<T extends RunEventType>(type: T, payload: RunEventPayloads[T]): RunEventPayloads[T] {
    const masked: Record<string, unknown> = { ...payload };
    const mask = this.mask;
    if (mask === undefined) return payload;
    for (const key of ["error", "stderr_tail", "reason"]) {
      const value = masked[key];
      if (typeof value === "string" && !(key === "reason" && type === "run.failed")) masked[key] = mask.text(value);
    }
    return masked as RunEventPayloads[T];
  }

  private sampleIds(): { run_id: string; attempt_id: string; seq: number; timestamp_ms: number } {
    return { run_id: this.runId, attempt_id: this.attemptId, seq: this.nextSampleSeq++, timestamp_ms: Date.now() };
  }

  /** Telemetry trouble never fails a run. */
  private deliver(send: () => void): void {
    try {
      send();
    } catch (error) {
      this.logger.error("run output failed", { run_id: this.runId, error: error instanceof Error ? error.message : String(error) });
    }
  }
}

const SILENT = createLogger("runner", "error", () => {});

/**
 * Events written on behalf of a run by a process not executing it (the reconciler, the cancel of a queued run):
 * `build` emits them on a sequencer of the run's attempt starting at `firstSeq`; they are returned, not sent.
 */
export function buildRunEvents(runId: string, attemptId: string, firstSeq: number, build: (events: RunEventSequencer) => void): RunEvent[] {
  const out: RunEvent[] = [];
  build(new RunEventSequencer(runId, attemptId, { event: (event) => out.push(event), sample: () => {}, log: () => {} }, SILENT, firstSeq));
  return out;
}
