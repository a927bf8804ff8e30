/**
 * Batches the events and samples of every run of this process onto the `run-events` queue: one job per flush
 * (every `flushIntervalMs`, or at once when `maxBatchItems` are waiting). `event()`/`sample()` only push to a
 * buffer, so telemetry never blocks or fails the executor.
 *
 * When a batch cannot be delivered (Redis away, or slower than `deliveryTimeoutMs`), it goes to the local spool,
 * and so does everything after it while the spool is not empty, so order is kept: platform's DurableProducer, which
 * replays the spool on its own, in order, with backoff (`retryMinMs` … `retryMaxMs`, after a PING when `reachable`
 * is given) and empties it once delivered. Delivery is at least once: a batch that timed out may still land, and a
 * replay may repeat it; consumers dedupe by event_id and (attempt_id, seq).
 *
 * Bounds: samples are dropped (and counted) when more than `maxBufferedSamples` wait in memory; events and log lines
 * are never dropped here (the executor bounds the lines of each stage attempt: RUNNER_LOG_HEAD_LINES + RUNNER_LOG_TAIL_LINES per stream). The spool file itself is not capped: `flowmeter_runner_events_spooled` shows its size.
 */
import { DurableProducer, errorMessage, type Logger, type SpoolFile } from "@flowmeter/platform";
import { type RunEvent, type RunEventsJob, type StageLogLine, type TelemetrySample } from "@flowmeter/shared";
import { appendFileSync } from "node:fs";
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
  /** Asked before each replay of the spool (a Redis PING); without it the replay just tries. */
  reachable?: () => Promise<boolean>;
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
  private readonly producer: DurableProducer<SpoolItem>;
  private buffer: SpoolItem[] = [];
  private bufferedSamples = 0;
  /** Every flush runs on this chain, one at a time, so batches leave in order. */
  private chain: Promise<void> = Promise.resolve();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushQueued = false;
  private closed = false;

  constructor(private readonly options: EventPublisherOptions) {
    this.flushIntervalMs = options.flushIntervalMs ?? 150;
    this.maxBatchItems = options.maxBatchItems ?? 500;
    this.maxBufferedSamples = options.maxBufferedSamples ?? 10_000;
    this.deliveryTimeoutMs = options.deliveryTimeoutMs ?? 3000;
    this.producer = new DurableProducer<SpoolItem>({
      spool: options.spool,
      deliver: (items) => this.deliver(items),
      logger: options.logger,
      itemsName: "items",
      replayTimeoutMs: this.deliveryTimeoutMs,
      replayChunk: this.maxBatchItems,
      retryMinMs: options.retryMinMs ?? 250,
      retryMaxMs: options.retryMaxMs ?? 5000,
      reachable: options.reachable,
      onSpoolChange: ({ items }) => options.metrics?.eventsSpooled.set(items),
      onDeliveryFailed: () => options.metrics?.deliveryFailures.inc(),
    });
  }

  /** Opens the spool; what an earlier process left there is replayed first. */
  async start(): Promise<void> {
    await this.producer.open();
  }

  /** Items waiting in the spool file. */
  get spooledItems(): number {
    return this.producer.spooledItems;
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

  /** Flushes what is buffered now (and asks for a replay of the spool, unless a retry is pending); resolves when done. */
  flush(): Promise<void> {
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    return this.enqueue(() => this.flushNow());
  }

  /** Stops the timer, flushes, and tries the spool once more; what is still undelivered stays in the spool file. */
  async close(): Promise<void> {
    clearTimeout(this.flushTimer);
    const last = this.enqueue(() => this.flushNow());
    this.closed = true; // from here on late items go straight to the spool file
    await last;
    await this.producer.close({ lastTry: true });
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
    if (items.length === 0) this.producer.wake();
    try {
      for (let start = 0; start < items.length; start += this.maxBatchItems) {
        const outcome = await this.producer.send(items.slice(start, start + this.maxBatchItems), { timeoutMs: this.deliveryTimeoutMs });
        if (outcome === "spooled") {
          // Everything after a batch that went to the spool goes behind it.
          await this.producer.spoolItems(items.slice(start + this.maxBatchItems));
          return;
        }
      }
    } catch (error) {
      this.options.logger.error("cannot write the spool: items lost", { error: errorMessage(error) });
    }
  }

  private async deliver(items: SpoolItem[]): Promise<void> {
    const batch = { events: [] as RunEvent[], samples: [] as TelemetrySample[], logs: [] as StageLogLine[], producedAtMs: Date.now() } satisfies RunEventsJob;
    for (const item of items) {
      if ("event" in item) batch.events.push(item.event);
      else if ("sample" in item) batch.samples.push(item.sample);
      else batch.logs.push(item.log);
    }
    await this.options.deliver(batch);
  }
}
