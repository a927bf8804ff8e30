/**
 * Collects items from many callers and writes them in one flush, when `maxRows` rows are waiting or
 * `maxWaitMs` after the first one arrived, whichever comes first. `add()` resolves once the flush that
 * carried the item succeeded and rejects if it failed, so a caller (a queue job) is acknowledged only
 * after its rows are written. Flushes run one at a time.
 */
export type FlushReason = "size" | "time" | "shutdown";

export interface BatchWriterOptions<T> {
  name: string;
  maxRows: number;
  maxWaitMs: number;
  /** Rows an item contributes towards `maxRows`. */
  rowsOf: (item: T) => number;
  flush: (items: T[], reason: FlushReason) => Promise<void>;
}

interface Pending<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export class BatchWriter<T> {
  private pending: Pending<T>[] = [];
  private pendingRows = 0;
  private timer: NodeJS.Timeout | undefined;
  private flushing: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly options: BatchWriterOptions<T>) {}

  get name(): string {
    return this.options.name;
  }

  add(item: T): Promise<void> {
    if (this.closed) return Promise.reject(new Error(`${this.options.name}: batch writer is closed`));
    return new Promise<void>((resolve, reject) => {
      this.pending.push({ item, resolve, reject });
      this.pendingRows += this.options.rowsOf(item);
      if (this.pendingRows >= this.options.maxRows) this.trigger("size");
      else this.startTimer();
    });
  }

  private startTimer(): void {
    this.timer ??= setTimeout(() => {
      this.timer = undefined;
      this.trigger("time");
    }, this.options.maxWaitMs);
  }

  /** Flushes what is waiting and refuses new items. */
  async close(): Promise<void> {
    this.closed = true;
    while (this.flushing !== undefined || this.pending.length > 0) {
      if (this.flushing === undefined) this.trigger("shutdown");
      await this.flushing?.catch(() => undefined);
    }
  }

  private trigger(reason: FlushReason): void {
    if (this.flushing !== undefined) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.pendingRows = 0;
    this.flushing = this.options
      .flush(
        batch.map((entry) => entry.item),
        reason,
      )
      .then(
        () => batch.forEach((entry) => entry.resolve()),
        (error: unknown) => batch.forEach((entry) => entry.reject(error)),
      )
      .finally(() => {
        this.flushing = undefined;
        if (this.pending.length === 0) return;
        if (this.pendingRows >= this.options.maxRows || this.closed) this.trigger(this.closed ? "shutdown" : "size");
        else if (this.timer === undefined) this.trigger("time");
      });
  }
}
