import { describe, expect, it } from "vitest";
import { insertSettings, readSettings, settingsClause } from "./consistency-settings.js";

describe("insert and read settings", () => {
  it("one server: the block's token and view deduplication, nothing else; reads as they are", () => {
    expect(insertSettings("abc", undefined)).toEqual({ insert_deduplication_token: "abc", deduplicate_blocks_in_dependent_materialized_views: 1 });
    expect(readSettings(undefined)).toEqual({});
  });

  it("a cluster: the insert reaches its shard and a majority of replicas before it returns, one quorum insert at a time", () => {
    expect(insertSettings("abc", "flowmeter")).toEqual({
      insert_deduplication_token: "abc",
      deduplicate_blocks_in_dependent_materialized_views: 1,
      distributed_foreground_insert: 1,
      insert_quorum: "auto",
      insert_quorum_parallel: 0,
    });
  });

  it("a cluster: reads refuse a replica that misses an acknowledged insert", () => {
    expect(readSettings("flowmeter")).toEqual({ select_sequential_consistency: "1" });
  });

  it("renders a SETTINGS clause, strings quoted", () => {
    expect(settingsClause(insertSettings("ab'c", "flowmeter"))).toBe(
      "insert_deduplication_token = 'ab\\'c', deduplicate_blocks_in_dependent_materialized_views = 1, distributed_foreground_insert = 1, insert_quorum = 'auto', insert_quorum_parallel = 0",
    );
  });
});
