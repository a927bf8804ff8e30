/**
 * The local append-only spool (JSONL, one item per line) that holds what could not be handed to Redis, in order,
 * until it can be replayed: the runner's events and samples, and ingest's accepted entries. One file per process,
 * `<owner>-<host>-<pid>.jsonl`, so several processes can share a directory; a process adopts the files of processes
 * of its owner and host that are gone. Without `fsync`, lines survive a process crash, not a machine crash; with it
 * (ingest: a 202 means durable), each append is on disk before it resolves.
 *
 * An append is all or nothing: a write that fails part-way (ENOSPC) is cut back before the append rejects, and an
 * append never continues a line a crash left unfinished, so a torn line can only hold items whose append never
 * resolved. Such a line is dropped at replay and counted (`DrainResult.dropped`).
 */
import { createReadStream, createWriteStream } from "node:fs";
import { appendFile, mkdir, open, readdir, rename, stat, unlink, readFile, type FileHandle } from "node:fs/promises";
import { hostname } from "node:os";
import { basename, join } from "node:path";
import { createInterface } from "node:readline";
import { pipeline } from "node:stream/promises";
import { errorMessage, type Logger } from "./logger.js";

const HOST = hostname().replace(/[^A-Za-z0-9.]/g, "_");

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

export interface SpoolFileOptions {
  /** Whose spool: the file name's first part (`runner`, `ingest`); only files of the same owner are adopted. */
  owner: string;
  /** fsync every append before it resolves. */
  fsync?: boolean;
}

/** What a drain did: items handed over or dropped, and the failure it stopped on (none when the spool is empty). */
export interface DrainResult {
  /** Items delivered plus lines dropped. */
  consumed: number;
  /** Lines that were not JSON: a write cut short by a crash or a failed append, whose items were never acknowledged. */
  dropped: number;
  error?: unknown;
}

export class SpoolFile<Item> {
  readonly path: string;
  /** Appends and the rename that starts a drain run one at a time, so no append writes into a file being drained. */
  private exclusiveTail: Promise<unknown> = Promise.resolve();
  private readonly owner: string;
  private readonly fsync: boolean;
  /** A process's spool, or one it was adopting (`.adopting`) when it died. */
  private readonly spoolName: RegExp;

  constructor(
    readonly dir: string,
    private readonly logger: Logger,
    { owner, fsync = false }: SpoolFileOptions,
  ) {
    this.owner = owner;
    this.fsync = fsync;
    this.path = join(dir, `${owner}-${HOST}-${process.pid}.jsonl`);
    this.spoolName = new RegExp(`^${owner}-(.+)-(\\d+)\\.jsonl(\\.adopting|\\.draining)?$`);
  }

  /** Creates the directory, adopts the spools of gone processes of this owner and host, and returns how many items wait. */
  async open(): Promise<number> {
    await mkdir(this.dir, { recursive: true });
    for (const name of await readdir(this.dir)) {
      const match = this.spoolName.exec(name);
      if (match === null || match[1] !== HOST || name === basename(this.path)) continue;
      const pid = Number(match[2]);
      if (pid !== process.pid && processAlive(pid)) continue;
      const claimed = `${this.path}.adopting`;
      try {
        await rename(join(this.dir, name), claimed); // atomic: only one runner claims a file
        await appendFile(this.path, await readFile(claimed));
        await unlink(claimed);
        this.logger.info(`adopted the spool of a ${this.owner} that is gone`, { file: name });
      } catch (error) {
        this.logger.warn("could not adopt a spool file", { file: name, error: errorMessage(error) });
      }
    }
    return this.countItems();
  }

  /** Lines of the file being drained and of the file appended to. */
  private async countItems(): Promise<number> {
    let count = 0;
    for (const path of [this.drainingPath, this.path]) {
      try {
        for await (const line of createInterface({ input: createReadStream(path, "utf8"), crlfDelay: Infinity })) {
          if (line.trim() !== "") count += 1;
        }
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ENOENT") throw error;
      }
    }
    return count;
  }

  /** Where a drain reads from: the spool is renamed here when a drain starts, so appends go on into a fresh file. */
  private get drainingPath(): string {
    return `${this.path}.draining`;
  }

  /** Runs `work` after every append and drain rename started before it. */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.exclusiveTail.then(work, work);
    this.exclusiveTail = run.catch(() => undefined);
    return run;
  }

  /**
   * Appends the items as lines (fsynced when the spool was made with `fsync`). All or nothing: when the write or the
   * fsync fails (a full disk), what was written of it is cut off again before this rejects.
   */
  async append(items: readonly Item[]): Promise<void> {
    if (items.length === 0) return;
    const text = items.map((item) => `${JSON.stringify(item)}\n`).join("");
    await this.exclusive(async () => {
      const file = await open(this.path, "a+");
      try {
        const sizeBefore = (await file.stat()).size;
        // A line a crash (or a cut-back that failed) left unfinished gets its own line end, so it stays one
        // malformed line and these items are not glued to it.
        const unfinished = sizeBefore > 0 && (await file.read(Buffer.alloc(1), 0, 1, sizeBefore - 1)).buffer[0] !== 0x0a;
        try {
          await this.writeText(file, unfinished ? `\n${text}` : text);
          if (this.fsync) await file.datasync();
        } catch (error) {
          await file.truncate(sizeBefore).catch((cutError: unknown) => {
            this.logger.error("could not cut a failed spool write back; its line will be dropped at replay", {
              file: this.path,
              error: errorMessage(cutError),
            });
          });
          throw error;
        }
      } finally {
        await file.close();
      }
    });
  }

  /**
   * Writes `text` at the end of the open spool file. A test seam: a subclass may fail part-way, as a full disk does
   * (see ingest's spool-disk-full test, for when no small filesystem can be mounted).
   */
  protected async writeText(file: FileHandle, text: string): Promise<void> {
    await file.writeFile(text);
  }

  /** Bytes waiting in the spool: the file appended to and the one being drained. */
  async bytes(): Promise<number> {
    return (await fileBytes(this.path)) + (await fileBytes(this.drainingPath));
  }

  /**
   * Hands the spooled items to `deliver` in order, `chunkSize` at a time, until the spool is empty. The file is
   * renamed aside before it is read, so items appended meanwhile go to a fresh file, drained next. On the first
   * failure (of `deliver` or of the file system) it stops and keeps only what was not delivered; it never throws.
   */
  async drain(deliver: (items: Item[]) => Promise<void>, chunkSize: number): Promise<DrainResult> {
    let consumed = 0;
    let dropped = 0;
    try {
      for (;;) {
        if ((await fileBytes(this.drainingPath, -1)) < 0) {
          const started = await this.exclusive(async () => {
            if ((await fileBytes(this.path)) === 0) return false;
            await rename(this.path, this.drainingPath);
            return true;
          });
          if (!started) return { consumed, dropped };
        }
        const round = await this.drainFile(this.drainingPath, deliver, chunkSize);
        consumed += round.consumed;
        dropped += round.dropped;
        if (round.error !== undefined) return { consumed, dropped, error: round.error };
      }
    } catch (error) {
      return { consumed, dropped, error };
    }
  }

  /** Delivers the items of `path` in order; deletes it when all went, else keeps what did not. */
  private async drainFile(path: string, deliver: (items: Item[]) => Promise<void>, chunkSize: number): Promise<DrainResult> {
    const input = createReadStream(path, "utf8");
    const lines = createInterface({ input, crlfDelay: Infinity });
    let deliveredBytes = 0;
    let pendingBytes = 0;
    let consumed = 0;
    let dropped = 0;
    let chunk: Item[] = [];
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
          chunk.push(JSON.parse(line) as Item);
        } catch {
          consumed += 1;
          dropped += 1;
          this.logger.warn("dropped a spool line cut short (its items were never acknowledged)", { file: path, bytes: Buffer.byteLength(line) });
        }
        if (chunk.length >= chunkSize) await send();
      }
      await send();
    } catch (error) {
      lines.close();
      input.destroy();
      try {
        await this.keepFrom(path, deliveredBytes);
      } catch {
        // The file stays whole: what was delivered from it goes again next time (consumers dedupe).
        return { consumed: 0, dropped: 0, error };
      }
      return { consumed, dropped, error };
    }
    await unlink(path);
    return { consumed, dropped };
  }

  /** Drops the first `offset` bytes (already delivered) from the file at `path`. */
  private async keepFrom(path: string, offset: number): Promise<void> {
    if (offset === 0) return;
    const rest = `${path}.rest`;
    await pipeline(createReadStream(path, { start: offset }), createWriteStream(rest));
    await rename(rest, path);
  }
}

/** A file's size, `missing` (0) when it does not exist. */
async function fileBytes(path: string, missing = 0): Promise<number> {
  try {
    return (await stat(path)).size;
  } catch {
    return missing;
  }
}
