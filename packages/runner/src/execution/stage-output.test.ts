import { describe, expect, it } from "vitest";
import { MAX_LOG_LINE_BYTES } from "@flowmeter/shared";
import { StageOutput } from "./stage-output.js";

function collect(maxLines?: number): { output: StageOutput; lines: Array<[string, string, boolean]> } {
  const lines: Array<[string, string, boolean]> = [];
  const output = new StageOutput((stream, line, truncated) => lines.push([stream, line, truncated]), maxLines);
  return { output, lines };
}

describe("StageOutput", () => {
  it("splits chunks into lines across chunk borders, per stream, keeping a last line without newline", () => {
    const { output, lines } = collect();
    output.write("stdout", Buffer.from("about to "));
    output.write("stderr", Buffer.from("warn 1\r\nwar"));
    output.write("stdout", Buffer.from("fail\n\nlast"));
    output.write("stderr", Buffer.from("n 2\n"));
    output.end();
    expect(lines).toEqual([
      ["stderr", "warn 1", false],
      ["stdout", "about to fail", false],
      ["stdout", "", false],
      ["stderr", "warn 2", false],
      ["stdout", "last", false],
    ]);
  });

  it("cuts an over-long line at the byte limit without splitting a character, and skips its rest", () => {
    const { output, lines } = collect();
    const long = "é".repeat(MAX_LOG_LINE_BYTES); // 2 bytes each
    output.write("stdout", Buffer.from(`${long.slice(0, 1000)}`));
    output.write("stdout", Buffer.from(`${long.slice(1000)}\nnext\n`));
    output.end();
    expect(lines).toHaveLength(2);
    expect(lines[0]?.[1]).toBe("é".repeat(MAX_LOG_LINE_BYTES / 2));
    expect(lines[0]?.[2]).toBe(true);
    expect(lines[1]).toEqual(["stdout", "next", false]);
  });

  it("keeps at most maxLines per attempt and says how many were left out", () => {
    const { output, lines } = collect(3);
    output.write("stdout", Buffer.from("1\n2\n3\n4\n55\n"));
    output.end();
    expect(lines).toEqual([
      ["stdout", "1", false],
      ["stdout", "2", false],
      ["stdout", "3", false],
      ["stderr", "[flowmeter] 2 more lines (3 bytes) not kept: a stage attempt keeps 3 lines", false],
    ]);
  });
});
