/**
 * Batches the events and samples of every run of this process onto the `run-events` queue: one job per flush
 * (every `flushIntervalMs`, or at once when `maxBatchItems` are waiting). `event()`/`sample()` only push to a
 * buffer, so telemetry never blocks or fails the executor.
 *
 * When a batch cannot be delivered (Redis away, or slower than `deliveryTimeoutMs`), it goes to the local spool,
 * and so does everything after it while the spool is not empty, so order is kept. The spool is replayed in order
 * with backoff (`retryMinMs` … `retryMaxMs`) and emptied once delivered. Delivery is at least once: a batch that
 * timed out may still land, and a replay may repeat it; consumers dedupe by event_id and (attempt_id, seq).
 *
 * Bounds: samples are dropped (and counted) when more than `maxBufferedSamples` wait in memory; events and log lines
 * are never dropped here (the executor bounds the lines of each stage attempt: RUNNER_LOG_HEAD_LINES + RUNNER_LOG_TAIL_LINES per stream). The spool file itself is not capped: `flowmeter_runner_events_spooled` shows its size.
 */
import { errorMessage, type Logger, type SpoolFile } from "@flowmeter/platform";
import { type RunEvent, type RunEventsJob, type StageLogLine, type TelemetrySample } from "@flowmeter/shared";
import { appendFileSync } from "node:fs";
import { DeliveryError } from "../errors.js";
import type { RunOutput } from "../execution/run-event-sequencer.js";
import type { RunnerMetrics } from "../metrics.js";
/** One line of the runner's spool. */
export type SpoolItem = { event: RunEvent } | { sample: TelemetrySample } | { log: StageLogLine };

export type DeliverBatch = (batch: RunEventsJob) => Promise<void>;

export interface EventPublisherOptions {
  deliver: DeliverBatch;
  spool: SpoolFile<SpoolItem>;
  logger: Logger;
  metrics?: Pick<RunnerMetrics, "eventsSpooled" | "deliveryFailures" | "samplesDropped">;
  flushIntervalMs?: number;
  maxBatchItems?: number;
  maxBufferedSamples?: number;
  deliveryTimeoutMs?: number;
  retryMinMs?: number;
  retryMaxMs?: number;
}

export class EventPublisher implements RunOutput {
  private readonly flushIntervalMs: number;
  private readonly maxBatchItems: number;
  private readonly maxBufferedSamples: number;
  private readonly deliveryTimeoutMs: number;
  private readonly retryMinMs: number;
  private readonly retryMaxMs: number;
  private buffer: SpoolItem[] = [];
  private bufferedSamples = 0;
  private spooled = 0;
  /** Every flush and replay runs on this chain, one at a time, so batches leave in order. */
  private chain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushQueued = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelayMs: number;
  private closed = false;

  constructor(private readonly options: EventPublisherOptions) {
    this.flushIntervalMs = options.flushIntervalMs ?? 150;
    this.maxBatchItems = options.maxBatchItems ?? 500;
    this.maxBufferedSamples = options.maxBufferedSamples ?? 10_000;
    this.deliveryTimeoutMs = options.deliveryTimeoutMs ?? 3000;
    this.retryMinMs = options.retryMinMs ?? 250;
    this.retryMaxMs = options.retryMaxMs ?? 5000;
    this.retryDelayMs = this.retryMinMs;
  }

  /** Opens the spool; what an earlier process left there is replayed first. */
  async start(): Promise<void> {
    this.setSpooled(await this.options.spool.open());
    if (this.spooled > 0) {
      this.options.logger.info("replaying spooled events", { items: this.spooled, file: this.options.spool.path });
      this.scheduleReplay(0);
    }
  }

  /** Items waiting in the spool file. */
  get spooledItems(): number {
    return this.spooled;
  }

  event(event: RunEvent): void {
    this.push({ event });
  }

  sample(sample: TelemetrySample): void {
    if (this.bufferedSamples >= this.maxBufferedSamples) {
      this.options.metrics?.samplesDropped.inc();
      return;
    }
    this.bufferedSamples += 1;
    this.push({ sample });
  }

  log(line: StageLogLine): void {
    this.push({ log: line });
  }

  private push(item: SpoolItem): void {
    if (this.closed) {
      // After close nothing flushes any more: keep the item for the next start rather than lose it.
      try {
        appendFileSync(this.options.spool.path, `${JSON.stringify(item)}\n`);
        this.setSpooled(this.spooled + 1);
      } catch (error) {
        this.options.logger.error("item emitted after close lost", { error: errorMessage(error) });
      }
      return;
    }
    this.buffer.push(item);
    if (this.buffer.length >= this.maxBatchItems) this.queueFlush();
    else this.flushTimer ??= setTimeout(() => this.queueFlush(), this.flushIntervalMs);
  }

  private queueFlush(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.flushQueued) return;
    this.flushQueued = true;
    void this.enqueue(() => {
      this.flushQueued = false;
      return this.flushNow();
    });
  }

  /** Flushes what is buffered now (and replays the spool unless a retry is pending); resolves when done. */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    return this.enqueue(() => this.flushNow());
  }

  /** Stops the timers, flushes, and tries the spool once more; what is still undelivered stays in the spool file. */
  async close(): Promise<void> {
    clearTimeout(this.flushTimer);
    clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    const last = this.enqueue(() => this.flushNow());
    this.closed = true; // from here on no retry is scheduled, and late items go straight to the spool file
    await last;
    if (this.spooled > 0) this.options.logger.warn("events left in the spool for the next start", { items: this.spooled, file: this.options.spool.path });
  }

  private enqueue(operation: () => Promise<void>): Promise<void> {
    this.chain = this.chain.then(operation).catch((error: unknown) => {
      this.options.logger.error("event publisher failed", { error: errorMessage(error) });
    });
    return this.chain;
  }

  private async flushNow(): Promise<void> {
    const items = this.buffer;
    this.buffer = [];
    this.bufferedSamples = 0;
    if (this.spooled > 0) {
      await this.toSpool(items);
      if (this.retryTimer === undefined) await this.replay();
      return;
    }
    for (let start = 0; start < items.length; start += this.maxBatchItems) {
      try {
        await this.deliver(items.slice(start, start + this.maxBatchItems));
      } catch (error) {
        await this.toSpool(items.slice(start));
        this.deliveryFailed(error);
        return;
      }
    }
  }

  private async replay(): Promise<void> {
    if (this.spooled === 0) return;
    const { consumed, error } = await this.options.spool.drain((items) => this.deliver(items), this.maxBatchItems);
    this.setSpooled(Math.max(0, this.spooled - consumed));
    if (error !== undefined) {
      this.deliveryFailed(error);
      return;
    }
    this.setSpooled(0);
    this.retryDelayMs = this.retryMinMs;
    this.options.logger.info("spool replayed: delivering directly again", { items: consumed });
  }

  private deliveryFailed(error: unknown): void {
    this.options.metrics?.deliveryFailures.inc();
    if (this.retryDelayMs === this.retryMinMs) {
      this.options.logger.warn("queue unreachable: spooling events locally", { error: errorMessage(error), file: this.options.spool.path });
    }
    this.scheduleReplay(this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.retryMaxMs);
  }

  private scheduleReplay(delayMs: number): void {
    if (this.retryTimer !== undefined || this.closed) return;
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      void this.enqueue(() => this.replay());
    }, delayMs);
  }

  private async toSpool(items: SpoolItem[]): Promise<void> {
    if (items.length === 0) return;
    try {
      await this.options.spool.append(items);
      this.setSpooled(this.spooled + items.length);
    } catch (error) {
      this.options.logger.error("cannot write the spool: items lost", { items: items.length, error: errorMessage(error) });
    }
  }

  private setSpooled(count: number): void {
    this.spooled = count;
    this.options.metrics?.eventsSpooled.set(count);
  }

  private async deliver(items: SpoolItem[]): Promise<void> {
    const batch = { events: [] as RunEvent[], samples: [] as TelemetrySample[], logs: [] as StageLogLine[], producedAtMs: Date.now() } satisfies RunEventsJob;
    for (const item of items) {
      if ("event" in item) batch.events.push(item.event);
      else if ("sample" in item) batch.samples.push(item.sample);
      else batch.logs.push(item.log);
    }
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        this.options.deliver(batch),
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new DeliveryError(`delivery took over ${this.deliveryTimeoutMs} ms`)), this.deliveryTimeoutMs);
        }),
      ]);
    } finally {
      clearTimeout(timer);
    }
  }
}
