/**
 * Cuts a stage attempt's stdout and stderr into lines for its log (docs/spec.md §6, run_logs). Bounds, so a stage
 * printing without end costs the runner, Redis and ClickHouse a known amount:
 * - a line is cut at MAX_LOG_LINE_BYTES (marked `truncated`; the rest of it, up to its newline, is not kept);
 * - an attempt keeps MAX_LOG_LINES_PER_ATTEMPT lines over both streams; past that lines are only counted, and
 *   `end()` adds one stderr line saying how many were left out.
 * A trailing "\r" is dropped (CRLF output), and the last line is kept even without a final newline.
 */
import { MAX_LOG_LINE_BYTES, MAX_LOG_LINES_PER_ATTEMPT, type StageLogLine } from "@flowmeter/shared";

export type EmitLine = (stream: StageLogLine["stream"], line: string, truncated: boolean) => void;

const NEWLINE = 0x0a;

class LineSplitter {
  private pending: Buffer = Buffer.alloc(0);
  /** The current line was already emitted cut; skip to its newline. */
  private skipping = false;

  constructor(private readonly take: (bytes: Buffer, truncated: boolean) => void) {}

  push(chunk: Buffer): void {
    let start = 0;
    for (let newline = chunk.indexOf(NEWLINE, start); newline !== -1; newline = chunk.indexOf(NEWLINE, start)) {
      this.append(chunk.subarray(start, newline));
      if (!this.skipping) this.take(this.pending, false);
      this.pending = Buffer.alloc(0);
      this.skipping = false;
      start = newline + 1;
    }
    this.append(chunk.subarray(start));
  }

  end(): void {
    if (this.pending.length > 0 && !this.skipping) this.take(this.pending, false);
    this.pending = Buffer.alloc(0);
  }

  private append(bytes: Buffer): void {
    if (this.skipping || bytes.length === 0) return;
    this.pending = this.pending.length === 0 ? Buffer.from(bytes) : Buffer.concat([this.pending, bytes]);
    if (this.pending.length > MAX_LOG_LINE_BYTES) {
      this.take(this.pending, true);
      this.pending = Buffer.alloc(0);
      this.skipping = true;
    }
  }
}

/** Cuts a buffer at `max` bytes without splitting a UTF-8 character. */
function utf8Prefix(bytes: Buffer, max: number): string {
  if (bytes.length <= max) return bytes.toString("utf8");
  let end = max;
  while (end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1; // back off continuation bytes
  return bytes.subarray(0, end).toString("utf8");
}

export class StageOutput {
  private kept = 0;
  private leftOutLines = 0;
  private leftOutBytes = 0;
  private readonly splitters: Record<StageLogLine["stream"], LineSplitter>;

  constructor(
    private readonly emit: EmitLine,
    private readonly maxLines = MAX_LOG_LINES_PER_ATTEMPT,
  ) {
    this.splitters = { stdout: this.splitter("stdout"), stderr: this.splitter("stderr") };
  }

  write(stream: StageLogLine["stream"], chunk: Buffer): void {
    this.splitters[stream].push(chunk);
  }

  /** Emits what is left of unfinished lines, and the left-out count if any. */
  end(): void {
    this.splitters.stdout.end();
    this.splitters.stderr.end();
    if (this.leftOutLines > 0) {
      this.emit(
        "stderr",
        `[flowmeter] ${this.leftOutLines} more lines (${this.leftOutBytes} bytes) not kept: a stage attempt keeps ${this.maxLines} lines`,
        false,
      );
    }
  }

  private splitter(stream: StageLogLine["stream"]): LineSplitter {
    return new LineSplitter((bytes, truncated) => {
      if (this.kept >= this.maxLines) {
        this.leftOutLines += 1;
        this.leftOutBytes += bytes.length;
        return;
      }
      this.kept += 1;
      let text = utf8Prefix(bytes, MAX_LOG_LINE_BYTES);
      if (!truncated && text.endsWith("\r")) text = text.slice(0, -1);
      this.emit(stream, text, truncated);
    });
  }
}
