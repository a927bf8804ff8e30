import { describe, expect, it } from "vitest";
import { decodeOutputBytes, lineBytes, storedLogText } from "./log-text.js";

const stored = (bytes: Buffer) => {
  const { line, invalidUtf8 } = storedLogText(decodeOutputBytes(bytes));
  return { line, ...(invalidUtf8 ? { invalid_utf8: true } : {}) };
};

describe("log text", () => {
  it("keeps valid UTF-8 as it is, control characters included", () => {
    const bytes = Buffer.from("é ✓ 😀 \x1b[31mred\x1b[0m \0 \\x41");
    expect(stored(bytes)).toEqual({ line: bytes.toString("utf8") });
    expect(lineBytes(stored(bytes))).toEqual(bytes);
  });

  it("marks a line that is not UTF-8 and keeps every byte: \\xNN for bad bytes, backslashes doubled", () => {
    const bytes = Buffer.concat([Buffer.from("bad "), Buffer.from([0xff, 0xc3]), Buffer.from(" é \\x41 "), Buffer.from([0xed, 0xa0, 0x80, 0xf0, 0x9f])]);
    const line = stored(bytes);
    expect(line).toEqual({ line: "bad \\xff\\xc3 é \\\\x41 \\xed\\xa0\\x80\\xf0\\x9f", invalid_utf8: true });
    expect(lineBytes(line)).toEqual(bytes);
  });

  it("round-trips every single byte and random byte strings", () => {
    for (let byte = 0; byte < 256; byte += 1) expect(lineBytes(stored(Buffer.from([0x61, byte, 0x62])))).toEqual(Buffer.from([0x61, byte, 0x62]));
    let seed = 7;
    for (let round = 0; round < 200; round += 1) {
      const bytes = Buffer.from(Array.from({ length: 40 }, () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % 256));
      expect(lineBytes(stored(bytes))).toEqual(bytes);
    }
  });
});
