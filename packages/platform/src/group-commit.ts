/**
 * Group commit: one write in flight at a time, and what is submitted meanwhile goes together in the next write. An
 * item alone is written at once; under load many share a write. Ingest uses it for its Redis adds, DurableProducer for
 * spool appends.
 */
export class GroupCommit<T> {
  private waiting: Array<{ item: T; resolve: () => void; reject: (error: unknown) => void }> = [];
  private writing = false;

  constructor(private readonly write: (items: T[]) => Promise<void>) {}

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

  private writeWaiting(): void {
    if (this.writing || this.waiting.length === 0) return;
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
        this.writeWaiting();
      });
  }
}
