/**
 * Everything a runner fleet keeps of its runs in Redis, behind one object built once per process (start-runner.ts,
 * or the CLI) and passed to what needs it: run records (state, claims, leases), events, telemetry samples, stage log
 * lines, cancel marks, and the two queues (`runs`, `run-events`). The key layout is in run-keys.ts, the atomic
 * transitions in run-scripts.ts.
 *
 * A run's terminal event reaches Redis one of two ways, both ending the record in the same Lua function
 * (`finish_record`): the runner executing the run stores it with the run's other events (events.append, through
 * its publisher, delivery/queue-delivery.ts), and any other process (a reconciler, the cancel of a queued run)
 * through `endRun`, which writes only if the run is still as that process saw it.
 */
import { Queue } from "bullmq";
import type { Redis } from "ioredis";
import { JOB_CATALOG, type RunEvent, type RunEventsJob, type RunJob, type StageLogLine, type TelemetrySample } from "@flowmeter/shared";
import { RunEventStore } from "./run-event-store.js";
import { cancelChannel, runKey, runLimits, type RunLimits } from "./run-keys.js";
import { RunRecords, type EndRunResult } from "./run-records.js";
import { RunStream } from "./run-stream.js";

export const DEFAULT_TELEMETRY_BUFFER_SIZE = 5000;
export const DEFAULT_LOG_BUFFER_LINES = 20_000;

export interface RunStoreOptions {
  /** The queue prefix (QUEUE_PREFIX). */
  prefix: string;
  /** How long a run's keys live after its last write. */
  retentionSeconds?: number;
  maxEventsPerRun?: number;
  /** Telemetry samples kept per run for the run API; 0 keeps none. */
  telemetryBufferSize?: number;
  /** Stage log lines kept per run for the run API; 0 keeps none. */
  logBufferLines?: number;
  /**
   * Where `endRun` hands the events it stored, for the worker (ClickHouse). A runner passes its publisher (spooled
   * while Redis is away); default: a job on the run-events queue.
   */
  forward?: (events: readonly RunEvent[]) => void | Promise<void>;
}

/** A cancel request as published to the runners of a prefix. */
export interface CancelMessage {
  run_id: string;
  reason: string;
}

/** Whether a sample concerns a stage: a heartbeat of it, or a host sample taken while it ran. */
export function concernsStage(sample: TelemetrySample, stageName: string): boolean {
  return sample.kind === "heartbeat" ? sample.stage_name === stageName : sample.stage_name.split(",").includes(stageName);
}

export function logConcernsStage(line: StageLogLine, stageName: string): boolean {
  return line.stage_name === stageName;
}

/** A log search (`?q=` of the logs API, flowmeter logs --grep): the text anywhere in the line, ignoring case. */
export function logLineMatches(line: StageLogLine, text: string): boolean {
  return line.line.toLowerCase().includes(text.toLowerCase());
}

export class RunStore {
  readonly prefix: string;
  readonly retentionSeconds: number;
  /** Where the runs live and how much of each is kept. */
  readonly limits: RunLimits;
  readonly records: RunRecords;
  readonly events: RunEventStore;
  readonly samples: RunStream<TelemetrySample>;
  readonly logs: RunStream<StageLogLine>;
  /** The pub/sub channel cancel requests go to. */
  readonly cancelChannel: string;
  private runQueueInstance: Queue<RunJob> | undefined;
  private eventsQueueInstance: Queue<RunEventsJob> | undefined;

  constructor(
    /** A producer connection (createRedis(url, "producer")): fails fast while Redis is away. The caller closes it. */
    readonly redis: Redis,
    private readonly options: RunStoreOptions,
  ) {
    const limits = runLimits(options);
    this.limits = limits;
    const { prefix, retentionSeconds } = limits;
    this.prefix = prefix;
    this.retentionSeconds = retentionSeconds;
    this.records = new RunRecords(redis, limits);
    this.events = new RunEventStore(redis, limits);
    this.samples = new RunStream(redis, {
      prefix,
      retentionSeconds,
      suffix: "samples",
      capacity: options.telemetryBufferSize ?? DEFAULT_TELEMETRY_BUFFER_SIZE,
      concernsStage,
    });
    this.logs = new RunStream(redis, {
      prefix,
      retentionSeconds,
      suffix: "logs",
      capacity: options.logBufferLines ?? DEFAULT_LOG_BUFFER_LINES,
      concernsStage: logConcernsStage,
    });
    this.cancelChannel = cancelChannel(prefix);
  }

  /** The `runs` queue: one job per submitted run, job id = run id. */
  get runQueue(): Queue<RunJob> {
    this.runQueueInstance ??= quiet(new Queue<RunJob>(JOB_CATALOG.runs.queue, { connection: this.redis, prefix: this.prefix }));
    return this.runQueueInstance;
  }

  /** The `run-events` queue the worker consumes. */
  get eventsQueue(): Queue<RunEventsJob> {
    this.eventsQueueInstance ??= quiet(new Queue<RunEventsJob>(JOB_CATALOG.runEvents.queue, { connection: this.redis, prefix: this.prefix }));
    return this.eventsQueueInstance;
  }

  /** Resolves once the connection is ready (a new connection is not; a producer connection does not queue commands). */
  async ready(): Promise<void> {
    if (this.redis.status !== "ready") await this.runQueue.waitUntilReady();
  }

  /**
   * Notes a cancel request for runners: the mark a runner taking the run later reads (first reason wins), and a
   * message to the runners listening now.
   */
  async markCancel(runId: string, reason: string): Promise<void> {
    const message: CancelMessage = { run_id: runId, reason };
    await this.redis
      .multi()
      .set(runKey(this.prefix, runId, "cancel"), reason, "EX", this.retentionSeconds, "NX")
      .publish(this.cancelChannel, JSON.stringify(message))
      .exec();
  }

  /** The reason of a cancel requested for the run, or null. */
  async cancelMark(runId: string): Promise<string | null> {
    return this.redis.get(runKey(this.prefix, runId, "cancel"));
  }

  /**
   * Ends a run no runner is executing: stores `events` (the last one terminal) only while the run is as `expected`
   * (RunRecords.end), and when they ended it, forwards them to the worker. See the module comment.
   */
  async endRun(runId: string, expected: Parameters<RunRecords["end"]>[1], events: readonly RunEvent[]): Promise<EndRunResult> {
    const result = await this.records.end(runId, expected, events);
    if (result === "ended_now") await (this.options.forward ?? ((ended) => this.enqueueEvents(ended)))(events);
    return result;
  }

  private async enqueueEvents(events: readonly RunEvent[]): Promise<void> {
    await this.eventsQueue.add(JOB_CATALOG.runEvents.jobName, { events: [...events], samples: [], producedAtMs: Date.now() }, JOB_CATALOG.runEvents.options);
  }

  /** Closes the queues it opened (not the connection). */
  async close(): Promise<void> {
    for (const queue of [this.runQueueInstance, this.eventsQueueInstance]) await queue?.close().catch(() => {});
  }
}

/** Queue errors mirror the connection's (its owner logs them); without a listener an "error" event would crash the process. */
function quiet<T extends Queue>(queue: T): T {
  queue.on("error", () => {});
  return queue;
}
