/**
 * Stage output bytes as log text, faithfully. A line that is valid UTF-8 is kept as its text. A line that is not
 * keeps every byte too: while the runner handles it (masking), each byte that is not part of a valid UTF-8 sequence
 * is a lone surrogate U+DC80–U+DCFF (Python's "surrogateescape"); when it is stored, each such byte is written `\xNN`
 * and each backslash doubled, and the line is marked `invalid_utf8: true`, so `lineBytes` gives the exact bytes back.
 */

/** Length of the valid UTF-8 sequence starting at `index`, or 0 when the byte there does not start one. */
function sequenceLength(bytes: Uint8Array, index: number): number {
  const lead = bytes[index] ?? 0;
  const continuation = (offset: number, min = 0x80, max = 0xbf): boolean => {
    const byte = bytes[index + offset];
    return byte !== undefined && byte >= min && byte <= max;
  };
  if (lead < 0x80) return 1;
  if (lead >= 0xc2 && lead <= 0xdf) return continuation(1) ? 2 : 0;
  if (lead >= 0xe0 && lead <= 0xef) {
    const [min, max] = lead === 0xe0 ? [0xa0, 0xbf] : lead === 0xed ? [0x80, 0x9f] : [0x80, 0xbf];
    return continuation(1, min, max) && continuation(2) ? 3 : 0;
  }
  if (lead >= 0xf0 && lead <= 0xf4) {
    const [min, max] = lead === 0xf0 ? [0x90, 0xbf] : lead === 0xf4 ? [0x80, 0x8f] : [0x80, 0xbf];
    return continuation(1, min, max) && continuation(2) && continuation(3) ? 4 : 0;
  }
  return 0;
}

const strictDecoder = new TextDecoder("utf-8", { fatal: true });

/** The bytes as text; bytes that are not valid UTF-8 become lone surrogates U+DC80–U+DCFF (one per byte). */
export function decodeOutputBytes(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    let text = "";
    let start = 0;
    let index = 0;
    while (index < bytes.length) {
      const length = sequenceLength(bytes, index);
      if (length > 0) {
        index += length;
        continue;
      }
      text += Buffer.from(bytes.subarray(start, index)).toString("utf8") + String.fromCharCode(0xdc00 + (bytes[index] ?? 0));
      index += 1;
      start = index;
    }
    return text + Buffer.from(bytes.subarray(start)).toString("utf8");
  }
}

const ESCAPED_BYTE = /[\udc80-\udcff]/;

/** The stored form of a decoded line: as is when it was valid UTF-8, else escaped and marked (see above). */
export function storedLogText(text: string): { line: string; invalidUtf8: boolean } {
  if (!ESCAPED_BYTE.test(text)) return { line: text, invalidUtf8: false };
  const line = text.replace(/\\|[\udc80-\udcff]/g, (char) => (char === "\\" ? "\\\\" : `\\x${(char.charCodeAt(0) - 0xdc00).toString(16).padStart(2, "0")}`));
  return { line, invalidUtf8: true };
}

/** The exact bytes a stored line stands for. */
export function lineBytes(line: { line: string; invalid_utf8?: boolean }): Buffer {
  if (line.invalid_utf8 !== true) return Buffer.from(line.line, "utf8");
  const parts: Buffer[] = [];
  let start = 0;
  for (const match of line.line.matchAll(/\\\\|\\x([0-9a-f]{2})/g)) {
    parts.push(Buffer.from(line.line.slice(start, match.index), "utf8"));
    parts.push(match[1] === undefined ? Buffer.from("\\") : Buffer.from([parseInt(match[1], 16)]));
    start = match.index + match[0].length;
  }
  parts.push(Buffer.from(line.line.slice(start), "utf8"));
  return Buffer.concat(parts);
}
