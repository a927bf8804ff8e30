/**
 * Cuts a stage attempt's stdout and stderr into lines for its log (docs/spec.md §6, run_logs). Bounds, so a stage
 * printing without end costs the runner, Redis and ClickHouse a known amount:
 * - a line is cut at MAX_LOG_LINE_BYTES (marked `truncated`; the rest of it, up to its newline, is not kept);
 * - an attempt keeps its first `headLines` lines over both streams (emitted as they are read), then a rolling
 *   window of the last `tailLines` lines of each stream (emitted when the attempt ends, interleaved in the order they
 *   were read, each with the time it was read). Per stream, because the two pipes are read in no set order: a
 *   stage's final stderr line may be read before the last 64 KiB of its stdout, and must not be pushed out by them.
 *   Between head and tail one stderr line marks the cut: "[flowmeter] … K lines, B bytes left out …" (B without
 *   newlines). The error a failing stage prints last is therefore always kept.
 * A trailing "\r" is dropped (CRLF output), and the last line is kept even without a final newline. Bytes that are not
 * UTF-8 are kept as lone surrogates (log-text.ts), escaped and marked when the line is stored.
 */
import { MAX_LOG_LINE_BYTES, type StageLogLine } from "@flowmeter/shared";
import { decodeOutputBytes } from "./log-text.js";

export type EmitLine = (stream: StageLogLine["stream"], line: string, truncated: boolean, timestampMs?: number) => void;

export interface StageOutputLimits {
  /** Lines kept from the start of the attempt. */
  headLines: number;
  /** Lines kept from the end of each stream (held in memory until the attempt ends: at most 2 × tailLines × MAX_LOG_LINE_BYTES). */
  tailLines: number;
}

export const DEFAULT_STAGE_OUTPUT_LIMITS: StageOutputLimits = { headLines: 5000, tailLines: 5000 };

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

/** Cuts a buffer at `max` bytes without splitting a UTF-8 character; bytes that are not UTF-8 are kept (log-text.ts). */
function utf8Prefix(bytes: Buffer, max: number): string {
  if (bytes.length <= max) return decodeOutputBytes(bytes);
  let end = max;
  while (end > max - 4 && end > 0 && ((bytes[end] ?? 0) & 0xc0) === 0x80) end -= 1; // back off continuation bytes
  return decodeOutputBytes(bytes.subarray(0, end));
}

interface HeldLine {
  stream: StageLogLine["stream"];
  text: string;
  truncated: boolean;
  /** Bytes the stage wrote for it, without the newline (what the cut counts when it drops out of the tail). */
  bytes: number;
  timestampMs: number;
  /** Read order over both streams, to emit the two tails interleaved as they were read. */
  order: number;
}

/** The last `capacity` lines of one stream. */
class TailWindow {
  private readonly lines: HeldLine[] = [];
  private start = 0;

  constructor(private readonly capacity: number) {}

  /** Holds `line`; returns the line it pushed out, if any. */
  push(line: HeldLine): HeldLine | undefined {
    if (this.capacity === 0) return line;
    if (this.lines.length < this.capacity) {
      this.lines.push(line);
      return undefined;
    }
    const out = this.lines[this.start];
    this.lines[this.start] = line;
    this.start = (this.start + 1) % this.lines.length;
    return out;
  }

  drain(): HeldLine[] {
    const lines = [...this.lines.slice(this.start), ...this.lines.slice(0, this.start)];
    this.lines.length = 0;
    this.start = 0;
    return lines;
  }
}

export class StageOutput {
  private headKept = 0;
  private readOrder = 0;
  private readonly tails: Record<StageLogLine["stream"], TailWindow>;
  private leftOutLines = 0;
  private leftOutBytes = 0;
  private readonly splitters: Record<StageLogLine["stream"], LineSplitter>;

  constructor(
    private readonly emit: EmitLine,
    private readonly limits: StageOutputLimits = DEFAULT_STAGE_OUTPUT_LIMITS,
  ) {
    this.splitters = { stdout: this.splitter("stdout"), stderr: this.splitter("stderr") };
    this.tails = { stdout: new TailWindow(limits.tailLines), stderr: new TailWindow(limits.tailLines) };
  }

  write(stream: StageLogLine["stream"], chunk: Buffer): void {
    this.splitters[stream].push(chunk);
  }

  /** Emits what is left of unfinished lines, then the cut (if lines were left out) and the held tails. */
  end(): void {
    this.splitters.stdout.end();
    this.splitters.stderr.end();
    if (this.leftOutLines > 0) {
      this.emit(
        "stderr",
        `[flowmeter] … ${this.leftOutLines} lines, ${this.leftOutBytes} bytes left out … (a stage attempt keeps its first ${this.limits.headLines} lines and the last ${this.limits.tailLines} of each stream)`,
        false,
      );
    }
    const held = [...this.tails.stdout.drain(), ...this.tails.stderr.drain()].sort((a, b) => a.order - b.order);
    for (const line of held) this.emit(line.stream, line.text, line.truncated, line.timestampMs);
  }

  private splitter(stream: StageLogLine["stream"]): LineSplitter {
    return new LineSplitter((bytes, truncated) => {
      let text = utf8Prefix(bytes, MAX_LOG_LINE_BYTES);
      if (!truncated && text.endsWith("\r")) text = text.slice(0, -1);
      if (this.headKept < this.limits.headLines) {
        this.headKept += 1;
        this.emit(stream, text, truncated);
        return;
      }
      const out = this.tails[stream].push({ stream, text, truncated, bytes: bytes.length, timestampMs: Date.now(), order: this.readOrder++ });
      if (out !== undefined) {
        this.leftOutLines += 1;
        this.leftOutBytes += out.bytes;
      }
    });
  }
}
