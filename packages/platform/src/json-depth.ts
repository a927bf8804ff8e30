/**
 * How deep a JSON text nests, read from the raw text before it is parsed: JSON.parse itself copes with any depth,
 * but everything after it that walks the value recursively (schema validation, JSON.stringify, structured clone)
 * overflows the stack somewhere in the thousands, which would answer a client 500 instead of 400. The scan is one
 * pass, no recursion, and stops at the first level past the limit.
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

/**
 * True when arrays and objects in `text` nest deeper than `maxDepth` (the outermost array or object is depth 1;
 * brackets inside strings do not count). Works on UTF-8 bytes or a string alike, malformed JSON included (the
 * parser refuses that afterwards).
 */
export function exceedsJsonDepth(text: string | Uint8Array, maxDepth: number): boolean {
  const at = typeof text === "string" ? (index: number) => text.charCodeAt(index) : (index: number) => text[index] ?? 0;
  let depth = 0;
  let inString = false;
  for (let index = 0; index < text.length; index += 1) {
    const code = at(index);
    if (inString) {
      if (code === BACKSLASH) index += 1;
      else if (code === QUOTE) inString = false;
    } else if (code === QUOTE) inString = true;
    else if (code === OPEN_ARRAY || code === OPEN_OBJECT) {
      depth += 1;
      if (depth > maxDepth) return true;
    } else if ((code === CLOSE_ARRAY || code === CLOSE_OBJECT) && depth > 0) depth -= 1;
  }
  return false;
}
