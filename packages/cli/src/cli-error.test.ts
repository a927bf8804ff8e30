import { describe, expect, it } from "vitest";
import { CliError, EXIT, parseOptions } from "./cli-error.js";

describe("parseOptions", () => {
  it("splits options from positional arguments, in both spellings", () => {
    expect(parseOptions(["--format", "Vertical", "SELECT", "1"], ["format"], "usage")).toEqual({
      options: new Map([["format", "Vertical"]]),
      positional: ["SELECT", "1"],
      help: false,
    });
    expect(parseOptions(["SELECT 1", "--format=JSONEachRow"], ["format"], "usage").options.get("format")).toBe("JSONEachRow");
    expect(parseOptions(["--", "--help"], [], "usage")).toEqual({ options: new Map(), positional: ["--help"], help: false });
  });

  it("takes -h and --help as help anywhere", () => {
    expect(parseOptions(["file.yaml", "-h"], [], "usage").help).toBe(true);
    expect(parseOptions(["--help"], [], "usage").help).toBe(true);
  });

  it("refuses an unknown option or a missing value with the usage exit code", () => {
    for (const args of [["--bogus"], ["--format"]]) {
      let error: unknown;
      try {
        parseOptions(args, ["format"], "usage: x");
      } catch (caught) {
        error = caught;
      }
      expect(error).toBeInstanceOf(CliError);
      expect((error as CliError).exitCode).toBe(EXIT.usage);
      expect((error as CliError).message).toContain("usage: x");
    }
  });
});
