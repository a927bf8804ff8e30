/**
 * The ids a partition's writer has stored within the dedup horizon, as Bloom filters: "certainly not stored" for
 * almost every new id, so the exact lookup (cli_invocation_ids) runs only for the few that may be. One filter set
 * per UTC day of receipt, so a day leaves the horizon by dropping its filters; each day's set grows by filters of
 * doubling capacity (a scalable Bloom filter), so a quiet day costs little memory and a busy one keeps its error rate.
 *
 * Keys are 16-byte hashes (idHash()); their bytes are already uniform, so the probes come from them directly
 * (double hashing), with no second hash.
 */

/** Ids the first filter of a day holds at its error rate; each further filter holds twice the one before. */
const FIRST_CAPACITY = 1 << 16;
const LARGEST_CAPACITY = 1 << 24;
/** Bits per id and probes: about 7e-5 false positives per filter at capacity. */
const BITS_PER_ID = 20;
const PROBES = 14;

const DAY_MS = 86_400_000;

class BloomFilter {
  readonly bits: Uint32Array;
  readonly mask: number;
  count = 0;

  /** Ids it holds at its error rate: the bits it has (at least `wanted` ids' worth) over BITS_PER_ID. */
  readonly capacity: number;

  constructor(wanted: number) {
    // A power of two of bits, so a probe is a mask, not a division; the capacity is what those bits hold.
    const bitCount = 2 ** Math.ceil(Math.log2(wanted * BITS_PER_ID));
    this.bits = new Uint32Array(bitCount / 32);
    this.mask = bitCount - 1;
    this.capacity = Math.floor(bitCount / BITS_PER_ID);
  }

  add(first: number, step: number): void {
    for (let probe = 0, bit = first; probe < PROBES; probe += 1, bit = (bit + step) >>> 0) {
      const index = bit & this.mask;
      this.bits[index >>> 5] = (this.bits[index >>> 5] as number) | (1 << (index & 31));
    }
    this.count += 1;
  }

  has(first: number, step: number): boolean {
    for (let probe = 0, bit = first; probe < PROBES; probe += 1, bit = (bit + step) >>> 0) {
      const index = bit & this.mask;
      if (((this.bits[index >>> 5] as number) & (1 << (index & 31))) === 0) return false;
    }
    return true;
  }
}

export class SeenIds {
  /** By UTC day number (ms / DAY_MS), each day's filters oldest first. */
  private readonly days = new Map<number, BloomFilter[]>();

  /** `horizonDays`: ids received more than this many days before the newest day are forgotten by expire(). */
  constructor(private readonly horizonDays: number) {}

  /** `hash`: 16 bytes (idHash()); `receivedAtMs`: when the id was stored. */
  add(hash: Uint8Array, receivedAtMs: number): void {
    const day = Math.floor(receivedAtMs / DAY_MS);
    let filters = this.days.get(day);
    if (filters === undefined) {
      filters = [new BloomFilter(FIRST_CAPACITY)];
      this.days.set(day, filters);
    }
    let filter = filters[filters.length - 1] as BloomFilter;
    if (filter.count >= filter.capacity) {
      filter = new BloomFilter(Math.min(LARGEST_CAPACITY, filter.capacity * 2));
      filters.push(filter);
    }
    const [first, step] = probesOf(hash);
    filter.add(first, step);
  }

  /** False: certainly not added (within the horizon). True: maybe; ask the exact store. */
  mayContain(hash: Uint8Array): boolean {
    const [first, step] = probesOf(hash);
    for (const filters of this.days.values()) {
      for (const filter of filters) if (filter.has(first, step)) return true;
    }
    return false;
  }

  /** Drops the days wholly before the horizon as of `nowMs`. */
  expire(nowMs: number): void {
    const oldestKept = Math.floor(nowMs / DAY_MS) - this.horizonDays;
    for (const day of this.days.keys()) if (day < oldestKept) this.days.delete(day);
  }

  /** Ids held (over every day kept). */
  get size(): number {
    let size = 0;
    for (const filters of this.days.values()) for (const filter of filters) size += filter.count;
    return size;
  }

  /** Bytes of filter memory held. */
  get bytes(): number {
    let bytes = 0;
    for (const filters of this.days.values()) for (const filter of filters) bytes += filter.bits.byteLength;
    return bytes;
  }
}

function probesOf(hash: Uint8Array): [number, number] {
  const view = new DataView(hash.buffer, hash.byteOffset, hash.byteLength);
  // An odd step visits distinct bits in a power-of-two table.
  return [view.getUint32(0), (view.getUint32(4) | 1) >>> 0];
}
