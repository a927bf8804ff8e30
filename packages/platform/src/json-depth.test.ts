import { describe, expect, it } from "vitest";
import { exceedsJsonDepth } from "./json-depth.js";

describe("exceedsJsonDepth", () => {
  it("counts arrays and objects, the outermost as 1", () => {
    expect(exceedsJsonDepth("1", 0)).toBe(false);
    expect(exceedsJsonDepth("[]", 0)).toBe(true);
    expect(exceedsJsonDepth('{"a":[{"b":[]}]}', 4)).toBe(false);
    expect(exceedsJsonDepth('{"a":[{"b":[]}]}', 3)).toBe(true);
    expect(exceedsJsonDepth("[[],[],[[]]]", 3)).toBe(false);
    expect(exceedsJsonDepth("[[],[],[[[]]]]", 3)).toBe(true);
  });

  it("ignores brackets inside strings, escaped quotes included", () => {
    const text = JSON.stringify({ a: "[[[[{{{{", b: 'say \\"[[[[" and \\\\', c: ["]]]]"] });
    expect(exceedsJsonDepth(text, 2)).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(text), 2)).toBe(false);
    expect(exceedsJsonDepth(Buffer.from(text), 1)).toBe(true);
  });

  it("answers on very deep texts without recursion, as bytes or a string", () => {
    const deep = `{"input":${"[".repeat(400_000)}${"]".repeat(400_000)}}`;
    expect(exceedsJsonDepth(deep, 64)).toBe(true);
    expect(exceedsJsonDepth(Buffer.from(deep), 64)).toBe(true);
    expect(exceedsJsonDepth(Buffer.from(`{"s":"é${"[".repeat(100)}"}`), 1)).toBe(false);
  });
});
