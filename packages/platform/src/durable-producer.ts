/**
 * The durable side of a producer (ingest's client-telemetry queue, the runner's event publisher): items are sent to
 * the queue with a timeout, and when that fails or takes too long they go to a local spool file (appended and
 * fsynced, concurrent appends group-committed), as does everything after them while the spool is not empty, so order
 * is kept. The spool is replayed on its own (a ReplayLoop: it never waits for new items): each pass asks whether the
 * queue is reachable (a Redis PING), drains the spool in chunks, and otherwise tries again with backoff. A spool left
 * by a process that died is replayed at the next open(). Delivery is at least once: a send that timed out may still
 * land, and its spooled copy repeats it; consumers dedupe.
 *
 * What is each producer's own stays with it: how items become jobs (`deliver`), what a caller is answered when the
 * spool cannot take its items (ingest's 503s), batching, metrics (through the callbacks).
 */
import { GroupCommit } from "./group-commit.js";
import { errorMessage, type Logger } from "./logger.js";
import { ReplayLoop, type ReplayOutcome } from "./replay-loop.js";
import type { SpoolFile } from "./spool-file.js";

export interface DurableProducerOptions<Item> {
  spool: SpoolFile<Item>;
  /** Puts items on the queue: a direct send, or one chunk of a replay. */
  deliver: (items: Item[]) => Promise<void>;
  logger: Logger;
  /** What the items are, for log lines ("requests", "events"). */
  itemsName: string;
  /** Longest a replay's PING or one of its chunks may take before the pass is tried again later. */
  replayTimeoutMs: number;
  /** Items per deliver() while the spool is replayed. */
  replayChunk: number;
  /** Replay backoff: the first retry after retryMinMs, doubling up to retryMaxMs. */
  retryMinMs: number;
  retryMaxMs: number;
  /** Asked before a replay pass drains the spool (e.g. a Redis PING within replayTimeoutMs); false: retry later. */
  reachable?: () => Promise<boolean>;
  /** Above this many spooled bytes, spoolItems() refuses with a SpoolFullError. Default: no cap. */
  maxBytes?: number;
  /** Called whenever the spool's contents change. */
  onSpoolChange?: (state: { items: number; bytes: number }) => void;
  /** Called when a send or a replay chunk fails (the items stay, or go, in the spool). */
  onDeliveryFailed?: (error: unknown) => void;
  /** Called with the spool lines dropped at replay because they were cut short. */
  onLinesDropped?: (lines: number) => void;
}

/** The spool is at its maxBytes: the items were not taken. */
export class SpoolFullError extends Error {
  override readonly name = "SpoolFullError";
  constructor(readonly maxBytes: number) {
    super(`the local spool is full (${maxBytes} bytes)`);
  }
}

export interface SendOptions {
  timeoutMs: number;
  /** The send itself when it is not deliver(items) (ingest's group-committed add). */
  send?: () => Promise<void>;
  /** Called when the send times out, before the items are spooled (to withdraw a send not started yet). */
  onTimeout?: () => void;
}

export class DurableProducer<Item> {
  private spooled = 0;
  private bytes = 0;
  private closed = false;
  private readonly replayLoop: ReplayLoop;
  /** Each submission is one caller's items, appended whole (SpoolFile.append is all-or-nothing). */
  private readonly appends: GroupCommit<Item[]>;

  constructor(private readonly options: DurableProducerOptions<Item>) {
    this.replayLoop = new ReplayLoop({ pass: () => this.replay(), retryMinMs: options.retryMinMs, retryMaxMs: options.retryMaxMs, logger: options.logger });
    this.appends = new GroupCommit<Item[]>(async (groups) => {
      const items = groups.flat();
      await options.spool.append(items);
      this.spooled += items.length;
      this.changed();
      this.replayLoop.wake();
    });
  }

  /** Items in the spool file. */
  get spooledItems(): number {
    return this.spooled;
  }

  /** True while anything is spooled or being appended: new items must go behind it, to the spool. */
  get spooling(): boolean {
    return this.spooled > 0 || this.appends.busy;
  }

  /** Opens the spool; what an earlier process left there is replayed first. */
  async open(): Promise<void> {
    this.spooled = await this.options.spool.open();
    this.bytes = await this.options.spool.bytes();
    this.changed();
    if (this.spooled > 0)
      this.options.logger.info(`replaying the spool left by an earlier process`, { [this.options.itemsName]: this.spooled, file: this.options.spool.path });
    this.replayLoop.wake();
  }

  /**
   * Sends the items (behind the spool, when anything is spooled), falling back to the spool when the send fails or
   * takes longer than `timeoutMs`. Resolves once they are on the queue or in the spool; rejects only when the spool
   * cannot take them (SpoolFullError, or the append's error).
   */
  async send(items: Item[], { timeoutMs, send = () => this.options.deliver(items), onTimeout }: SendOptions): Promise<"sent" | "spooled"> {
    if (this.spooling) {
      await this.spoolItems(items);
      return "spooled";
    }
    try {
      await withTimeout(send(), timeoutMs, onTimeout);
      return "sent";
    } catch (error) {
      this.deliveryFailed(error);
      await this.spoolItems(items);
      return "spooled";
    }
  }

  /** Appends the items to the spool (group-committed with concurrent appends) and wakes the replay. */
  async spoolItems(items: Item[]): Promise<void> {
    if (items.length === 0) return;
    if (this.closed) throw new Error("the producer is closed");
    const size = items.reduce((sum, item) => sum + Buffer.byteLength(JSON.stringify(item)) + 1, 0);
    const { maxBytes } = this.options;
    if (maxBytes !== undefined && this.bytes + size > maxBytes) throw new SpoolFullError(maxBytes);
    this.bytes += size;
    try {
      await this.appends.submit(items).written;
    } catch (error) {
      this.bytes -= size;
      throw error;
    }
  }

  /** Asks for a replay pass now (it keeps its backoff when a retry is due). */
  wake(): void {
    this.replayLoop.wake();
  }

  /** Stops replaying, after one last pass when `lastTry`; what is still spooled stays for the next open(). */
  async close({ lastTry = false }: { lastTry?: boolean } = {}): Promise<void> {
    await this.replayLoop.stop();
    if (lastTry) await this.replay().catch((error: unknown) => this.options.logger.warn("last replay failed", { error: errorMessage(error) }));
    this.closed = true;
    if (this.spooled > 0)
      this.options.logger.warn("left in the spool for the next start", { [this.options.itemsName]: this.spooled, file: this.options.spool.path });
  }

  private deliveryFailed(error: unknown): void {
    this.options.onDeliveryFailed?.(error);
    // The replay starts after the backoff: the append that follows does not wake it at once.
    this.replayLoop.retryLater();
    if (!this.spooling) this.options.logger.warn("queue unreachable: spooling locally", { error: errorMessage(error), file: this.options.spool.path });
  }

  /** One replay pass: PING, then drain the spool into the queue. */
  private async replay(): Promise<ReplayOutcome> {
    const { spool, logger } = this.options;
    // The file, not the count, says whether anything waits: an append may have landed since the count was read.
    if (this.spooled === 0 && (await spool.bytes()) === 0) return "done";
    if (this.options.reachable !== undefined && !(await this.options.reachable())) return "retry";
    const { consumed, dropped, error } = await spool.drain(
      (items) => withTimeout(this.options.deliver(items), this.options.replayTimeoutMs),
      this.options.replayChunk,
    );
    this.spooled = Math.max(0, this.spooled - consumed);
    if (this.spooled === 0) this.bytes = await spool.bytes();
    this.changed();
    if (dropped > 0) {
      this.options.onLinesDropped?.(dropped);
      logger.warn("dropped spool lines cut short: items that were never acknowledged (a failed write or a crash)", { lines: dropped, file: spool.path });
    }
    if (error !== undefined) {
      this.options.onDeliveryFailed?.(error);
      logger.debug("spool replay stopped; retrying", { error: errorMessage(error), still_spooled: this.spooled });
      return "retry";
    }
    if (consumed > 0) logger.info("spool replayed into the queue", { [this.options.itemsName]: consumed, still_spooled: this.spooled });
    return "done";
  }

  private changed(): void {
    this.options.onSpoolChange?.({ items: this.spooled, bytes: this.bytes });
  }
}

/** `promise`, or a rejection after `ms` (calling `onTimeout` first). */
export async function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout?: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      onTimeout?.();
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
