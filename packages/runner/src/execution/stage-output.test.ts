import { describe, expect, it } from "vitest";
import { MAX_LOG_LINE_BYTES } from "@flowmeter/shared";
import { StageOutput, type StageOutputLimits } from "./stage-output.js";

function collect(limits?: StageOutputLimits): { output: StageOutput; lines: Array<[string, string, boolean]> } {
  const lines: Array<[string, string, boolean]> = [];
  const output = new StageOutput((stream, line, truncated) => lines.push([stream, line, truncated]), limits);
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

  it("keeps the first headLines and the last tailLines, the cut marked where it happened", () => {
    const { output, lines } = collect({ headLines: 2, tailLines: 2 });
    output.write("stdout", Buffer.from("1\n2\n3\n"));
    output.write("stderr", Buffer.from("FATAL the real error\n")); // read before the rest of stdout
    output.write("stdout", Buffer.from("44\n5\n6\n"));
    output.end();
    expect(lines).toEqual([
      ["stdout", "1", false],
      ["stdout", "2", false],
      ["stderr", "[flowmeter] … 2 lines, 3 bytes left out … (a stage attempt keeps its first 2 lines and the last 2 of each stream)", false],
      ["stderr", "FATAL the real error", false],
      ["stdout", "5", false],
      ["stdout", "6", false],
    ]);
  });

  it("emits the tail lines with the time each was read, and nothing extra when nothing was left out", () => {
    const seen: Array<[string, number | undefined]> = [];
    const output = new StageOutput((_stream, line, _truncated, timestampMs) => seen.push([line, timestampMs]), { headLines: 1, tailLines: 5 });
    const before = Date.now();
    output.write("stdout", Buffer.from("a\nb\nc\n"));
    output.end();
    expect(seen.map(([line]) => line)).toEqual(["a", "b", "c"]);
    expect(seen[0]?.[1]).toBeUndefined();
    expect(seen[1]?.[1]).toBeGreaterThanOrEqual(before);
  });

  it("with no tail, keeps only the head and counts the rest", () => {
    const { output, lines } = collect({ headLines: 3, tailLines: 0 });
    output.write("stdout", Buffer.from("1\n2\n3\n4\n55\n"));
    output.end();
    expect(lines).toEqual([
      ["stdout", "1", false],
      ["stdout", "2", false],
      ["stdout", "3", false],
      ["stderr", "[flowmeter] … 2 lines, 3 bytes left out … (a stage attempt keeps its first 3 lines and the last 0 of each stream)", false],
    ]);
  });
});
