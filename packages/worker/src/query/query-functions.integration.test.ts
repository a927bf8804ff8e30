/** The function allow-list against the chDB this repository runs: every name exists, and nothing else slips through. */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Session } from "chdb";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ALLOWED_FUNCTION_FAMILIES, ALLOWED_TABLE_FUNCTIONS, isAllowedFunction } from "./query-functions.js";

interface SystemFunction {
  name: string;
  is_aggregate: number;
  alias_to: string;
}

describe("the /query function allow-list", () => {
  let dir: string;
  let session: Session;
  let functions: SystemFunction[];

  beforeAll(async () => {
    const { Session } = await import("chdb");
    dir = mkdtempSync(join(tmpdir(), "flowmeter-query-functions-"));
    session = new Session(dir, { connectionArgs: ["--readonly=1"] });
    functions = (await session.queryAsync("SELECT name, is_aggregate, alias_to FROM system.functions", { format: "JSONEachRow" }))
      .text()
      .trim()
      .split("\n")
      .map((line) => JSON.parse(line) as SystemFunction);
  });
  afterAll(() => {
    session.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("names only functions system.functions has", () => {
    const names = new Set(functions.map((fn) => fn.name));
    const missing = Object.values(ALLOWED_FUNCTION_FAMILIES)
      .flat()
      .filter((name) => !names.has(name));
    expect(missing).toEqual([]);
  });

  it("lets through no function beyond the lists but aggregates with combinators", () => {
    const listed = new Set(Object.values(ALLOWED_FUNCTION_FAMILIES).flat());
    const beyond = functions.filter((fn) => isAllowedFunction(fn.name) && !listed.has(fn.name) && fn.is_aggregate === 0).map((fn) => fn.name);
    // The two syntax forms query-functions.ts adds: `x::T` and `CASE x WHEN …`.
    expect(beyond.sort()).toEqual(["_CAST", "caseWithExpression"]);
  });

  it("refuses every function of the families left out (files, dictionaries, models, introspection, server state)", () => {
    for (const name of [
      "file",
      "catboostEvaluate",
      "dictHas",
      "dictGet",
      "joinGet",
      "getServerSetting",
      "getSetting",
      "hasColumnInTable",
      "hostName",
      "FQDN",
      "currentUser",
      "addressToSymbol",
      "regionToName",
      "aiGenerate",
      "naiveBayesClassifier",
      "editDistance",
      "nullIn",
      "globalNotNullIn",
      "filesystemAvailable",
      "uptime",
      "serverUUID",
    ]) {
      expect(
        functions.some((fn) => fn.name === name),
        `${name} exists`,
      ).toBe(true);
      expect(isAllowedFunction(name), name).toBe(false);
    }
  });

  it("allows table functions that run read-only", async () => {
    const sources: Record<string, string> = {
      numbers: "numbers(2)",
      numbers_mt: "numbers_mt(2)",
      generate_series: "generate_series(1, 2)",
      generateSeries: "generateSeries(1, 2)",
      values: "values('a UInt8', 1, 2)",
    };
    expect(Object.keys(sources).sort()).toEqual([...ALLOWED_TABLE_FUNCTIONS].sort());
    for (const source of Object.values(sources)) {
      expect((await session.queryAsync(`SELECT count() FROM ${source}`, { format: "TSVRaw" })).text(), source).toBe("2\n");
    }
    // zeros() needs readonly = 0, which /query never gives: it is not allowed.
    await expect(session.queryAsync("SELECT count() FROM zeros(2)")).rejects.toThrow("readonly");
  });
});
