import { describe, expect, it } from "vitest";
import { ConfigError } from "@flowmeter/platform";
import { parseWorkerConfig } from "./config.js";

function problemsOf(env: Record<string, string>): readonly string[] {
  try {
    parseWorkerConfig(env);
  } catch (error) {
    if (error instanceof ConfigError) return error.problems;
    throw error;
  }
  return [];
}

describe("CLICKHOUSE_CLUSTER", () => {
  it("is unset by default: one server or embedded chDB", () => {
    expect(parseWorkerConfig({}).clickhouse.cluster).toBeUndefined();
    expect(parseWorkerConfig({ CLICKHOUSE_URL: "http://127.0.0.1:8123" }).clickhouse.cluster).toBeUndefined();
  });

  it("names a cluster of the server at CLICKHOUSE_URL", () => {
    const config = parseWorkerConfig({ CLICKHOUSE_URL: "http://node1:8123", CLICKHOUSE_CLUSTER: "flowmeter_2" });
    expect(config.clickhouse).toMatchObject({ url: "http://node1:8123", cluster: "flowmeter_2" });
  });

  it("is refused without CLICKHOUSE_URL: embedded chDB is one process", () => {
    expect(problemsOf({ CLICKHOUSE_CLUSTER: "flowmeter" })).toEqual([
      "CLICKHOUSE_CLUSTER needs CLICKHOUSE_URL: a cluster is ClickHouse servers, embedded chDB is one process",
    ]);
  });

  it("is refused unless it is letters, digits and _, the name quoted into ON CLUSTER '…'", () => {
    for (const name of ["flow-meter", "flowmeter'; DROP TABLE x", "a b", "naïve"]) {
      expect(problemsOf({ CLICKHOUSE_URL: "http://node1:8123", CLICKHOUSE_CLUSTER: name })).toEqual([
        `CLICKHOUSE_CLUSTER=${JSON.stringify(name)}: expected a cluster name from remote_servers (letters, digits and _)`,
      ]);
    }
  });

  it("lists both problems at once, with the others", () => {
    expect(problemsOf({ CLICKHOUSE_CLUSTER: "a-b", WORKER_BATCH_MAX_ROWS: "0" })).toEqual([
      'CLICKHOUSE_CLUSTER="a-b": expected a cluster name from remote_servers (letters, digits and _)',
      "CLICKHOUSE_CLUSTER needs CLICKHOUSE_URL: a cluster is ClickHouse servers, embedded chDB is one process",
      "WORKER_BATCH_MAX_ROWS=0: expected an integer between 1 and 1000000",
    ]);
  });
});
