/**
 * Masks a run's secret values as `***` in what the runner stores of it (log lines, event messages, errors), as CI
 * runners do. Each value is masked where it appears literally, and so is each line of a multi-line value (a key
 * printed line by line). Where a text was cut out of longer output (a log line cut at its size limit, the stderr
 * tail of a failed stage), an end that holds part of a secret is masked too, so a cut cannot leave half a secret
 * readable. Encodings of a value (base64, JSON escapes) are not caught.
 */
import { REDACTED } from "@flowmeter/platform";

/** Shorter values would mask ordinary words; resolveSecrets refuses them. */
export const MIN_SECRET_CHARS = 4;

export class SecretMask {
  /** Longest first, so a value is masked whole before a shorter one inside it. */
  private readonly needles: readonly string[];

  constructor(values: readonly string[]) {
    const needles = new Set<string>();
    for (const value of values) {
      if (value.length < MIN_SECRET_CHARS) continue;
      needles.add(value);
      for (const line of value.split(/\r?\n/)) if (line.trim().length >= MIN_SECRET_CHARS) needles.add(line);
    }
    this.needles = [...needles].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.needles.length === 0;
  }

  text(text: string): string {
    let masked = text;
    for (const needle of this.needles) if (masked.includes(needle)) masked = masked.split(needle).join(REDACTED);
    return masked;
  }

  /** A text cut out of longer output at its start, its end or both: an end holding part of a secret is masked too. */
  excerpt(text: string, cut: { start?: boolean; end?: boolean }): string {
    let masked = this.text(text);
    if (cut.end === true) {
      const from = this.longestEndStartingASecret(masked);
      if (from < masked.length) masked = `${masked.slice(0, from)}${REDACTED}`;
    }
    if (cut.start === true) {
      const to = this.longestStartEndingASecret(masked);
      if (to > 0) masked = `${REDACTED}${masked.slice(to)}`;
    }
    return masked;
  }

  /** Where the longest end of `text` that is the beginning of a secret starts (text.length when none is). */
  private longestEndStartingASecret(text: string): number {
    let from = text.length;
    for (const needle of this.needles) {
      for (let start = Math.max(0, text.length - needle.length + 1); start < from; start += 1) {
        if (needle.startsWith(text.slice(start))) {
          from = start;
          break;
        }
      }
    }
    return from;
  }

  /** Where the longest start of `text` that is the end of a secret stops (0 when none is). */
  private longestStartEndingASecret(text: string): number {
    let to = 0;
    for (const needle of this.needles) {
      for (let end = Math.min(text.length, needle.length - 1); end > to; end -= 1) {
        if (needle.endsWith(text.slice(0, end))) {
          to = end;
          break;
        }
      }
    }
    return to;
  }
}
