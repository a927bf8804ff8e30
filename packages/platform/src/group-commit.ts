/**
 * Group commit: one write in flight at a time, and what is submitted meanwhile goes together in the next write. An
 * item alone is written at once, or, with `lingerMs`, after waiting that long for others to join it (Kafka's
 * linger.ms: a little latency for fewer, larger writes when items come one by one); items that waited for a write in
 * flight go as soon as it ends. Ingest uses it for its Redis adds, DurableProducer for spool appends.
 */
export class GroupCommit<T> {
  private waiting: Array<{ item: T; resolve: () => void; reject: (error: unknown) => void }> = [];
  private writing = false;
  private lingering: NodeJS.Timeout | undefined;

  /**
   * `lingerMs`: how long items that find no write in flight wait for others; `lingerWhile`: whether the items waiting
   * are still few enough to wait (default: always), so large items go at once.
   */
  constructor(
    private readonly write: (items: T[]) => Promise<void>,
    private readonly linger: { lingerMs: number; lingerWhile?: (items: readonly T[]) => boolean } = { lingerMs: 0 },
  ) {}

  /** True while a write is in flight or items wait for the next one. */
  get busy(): boolean {
    return this.writing || this.waiting.length > 0;
  }

  /**
   * `written` resolves once the item's group is written (rejects with the write's error). `withdraw` takes the item
   * back while its write has not started, so it is not written after all.
   */
  submit(item: T): { written: Promise<void>; withdraw: () => void } {
    let entry: (typeof this.waiting)[number] | undefined;
    const written = new Promise<void>((resolve, reject) => {
      entry = { item, resolve, reject };
      this.waiting.push(entry);
    });
    this.writeWaiting();
    return { written, withdraw: () => (this.waiting = this.waiting.filter((candidate) => candidate !== entry)) };
  }

  private writeWaiting(lingered = false): void {
    if (this.writing || this.waiting.length === 0) return;
    const { lingerMs, lingerWhile = () => true } = this.linger;
    if (lingerMs > 0 && !lingered && lingerWhile(this.waiting.map((pending) => pending.item))) {
      this.lingering ??= setTimeout(() => {
        this.lingering = undefined;
        this.writeWaiting(true);
      }, lingerMs);
      return;
    }
    const group = this.waiting;
    this.waiting = [];
    this.writing = true;
    this.write(group.map((pending) => pending.item))
      .then(
        () => group.forEach((pending) => pending.resolve()),
        (error: unknown) => group.forEach((pending) => pending.reject(error)),
      )
      .finally(() => {
        this.writing = false;
        this.writeWaiting(true);
      });
  }
}
