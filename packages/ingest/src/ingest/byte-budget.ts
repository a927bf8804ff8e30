/**
 * Bounds the request bytes ingest holds at once. A request reserves its declared size before its body is read and
 * releases it once answered; one that does not fit waits (its body stays in the socket, so the client is slowed by
 * TCP, not refused). Parsing and repairing a body holds a few times its size, so this bounds ingest's memory
 * whatever the number of large requests in flight. A request larger than the whole budget runs alone.
 */
export class ByteBudget {
  private inUse = 0;
  private readonly waiting: Array<{ bytes: number; start: () => void }> = [];

  constructor(private readonly limit: number) {}

  /** Resolves once `bytes` are reserved; call the returned function to give them back. */
  async reserve(bytes: number): Promise<() => void> {
    const size = Math.min(bytes, this.limit);
    if (this.waiting.length > 0 || this.inUse + size > this.limit) {
      await new Promise<void>((start) => this.waiting.push({ bytes: size, start }));
    } else {
      this.inUse += size;
    }
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.inUse -= size;
      this.admit();
    };
  }

  private admit(): void {
    for (let next = this.waiting[0]; next !== undefined && this.inUse + next.bytes <= this.limit; next = this.waiting[0]) {
      this.waiting.shift();
      this.inUse += next.bytes;
      next.start();
    }
  }
}
