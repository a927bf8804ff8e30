/**
 * The local append-only spool (JSONL, one event or sample per line) that holds what could not be handed to
 * Redis, in emit order, until it can be replayed. One file per runner process, `runner-<host>-<pid>.jsonl`, so
 * several runners can share a directory; a runner adopts the files of runners of its host that are gone.
 * Lines are written with appendFile (no fsync): they survive a process crash, not a machine crash.
 */
import { createReadStream, createWriteStream } from "node:fs";
import { appendFile, mkdir, readdir, rename, stat, truncate, unlink, readFile } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { errorMessage, type Logger, type RunEvent, type TelemetrySample } from "@flowmeter/shared";

export type SpoolItem = { event: RunEvent } | { sample: TelemetrySample };

const HOST = hostname().replace(/[^A-Za-z0-9.]/g, "_");
/** A runner's spool, or one it was adopting (`.adopting`) when it died. */
const SPOOL_NAME = /^runner-(.+)-(\d+)\.jsonl(\.adopting)?$/;

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export class SpoolFile {
  readonly path: string;

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
  ) {
    this.path = join(dir, `runner-${HOST}-${process.pid}.jsonl`);
  }

  /** Creates the directory, adopts the spools of gone runners of this host, and returns how many items wait. */
  async open(): Promise<number> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      const match = SPOOL_NAME.exec(name);
      if (match === null || match[1] !== HOST || name === basename(this.path)) continue;
      const pid = Number(match[2]);
      if (pid !== process.pid && processAlive(pid)) continue;
      const claimed = `${this.path}.adopting`;
      try {
        await rename(join(this.dir, name), claimed); // atomic: only one runner claims a file
        await appendFile(this.path, await readFile(claimed));
        await unlink(claimed);
        this.logger.info("adopted the spool of a runner that is gone", { file: name });
      } catch (error) {
        this.logger.warn("could not adopt a spool file", { file: name, error: errorMessage(error) });
      }
    }
    return this.countItems();
  }

  private async countItems(): Promise<number> {
    let count = 0;
    try {
      for await (const line of createInterface({ input: createReadStream(this.path, "utf8"), crlfDelay: Infinity })) {
        if (line.trim() !== "") count += 1;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
    }
    return count;
  }

  async append(items: readonly SpoolItem[]): Promise<void> {
    if (items.length === 0) return;
    await appendFile(this.path, items.map((item) => `${JSON.stringify(item)}\n`).join(""));
  }

  /**
   * Hands the spooled items to `deliver` in order, `chunkSize` at a time. On the first failure it stops and
   * keeps only what was not delivered; when everything was delivered it empties the file. `consumed` counts the
   * items delivered plus any malformed line dropped (a write cut short by a crash).
   */
  async drain(deliver: (items: SpoolItem[]) => Promise<void>, chunkSize: number): Promise<{ consumed: number; error?: unknown }> {
    try {
      if ((await stat(this.path)).size === 0) return { consumed: 0 };
    } catch {
      return { consumed: 0 };
    }
    const input = createReadStream(this.path, "utf8");
    const lines = createInterface({ input, crlfDelay: Infinity });
    let deliveredBytes = 0;
    let pendingBytes = 0;
    let consumed = 0;
    let chunk: SpoolItem[] = [];
    const send = async (): Promise<void> => {
      if (chunk.length > 0) await deliver(chunk);
      consumed += chunk.length;
      deliveredBytes += pendingBytes;
      pendingBytes = 0;
      chunk = [];
    };
    try {
      for await (const line of lines) {
        pendingBytes += Buffer.byteLength(line) + 1;
        if (line.trim() === "") continue;
        try {
          chunk.push(JSON.parse(line) as SpoolItem);
        } catch {
          consumed += 1;
          this.logger.warn("dropped a malformed spool line", { file: this.path });
        }
        if (chunk.length >= chunkSize) await send();
      }
      await send();
    } catch (error) {
      lines.close();
      input.destroy();
      await this.keepFrom(deliveredBytes);
      return { consumed, error };
    }
    await truncate(this.path, 0);
    return { consumed };
  }

  /** Drops the first `offset` bytes (already delivered) from the file. */
  private async keepFrom(offset: number): Promise<void> {
    if (offset === 0) return;
    const rest = `${this.path}.rest`;
    await pipeline(createReadStream(this.path, { start: offset }), createWriteStream(rest));
    await rename(rest, this.path);
  }
}
