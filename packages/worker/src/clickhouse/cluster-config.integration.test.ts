/**
 * The example cluster (infra/clickhouse/cluster) read by ClickHouse itself: each node's files loaded into chDB the way
 * the server image loads config.d, then the cluster and macros that CLICKHOUSE_CLUSTER and the rendered Keeper paths
 * (cluster-ddl.ts) rely on, as the engine sees them. Keeper and replication themselves cannot run here.
 */
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { tempDir } from "@flowmeter/test-utils";

const EXAMPLE_DIR = resolve(fileURLToPath(new URL(".", import.meta.url)), "../../../../infra/clickhouse/cluster");

describe("the example three-node cluster configuration", () => {
  const data = tempDir("cluster-config");
  afterAll(() => data.remove());

  for (const node of ["node1", "node2", "node3"]) {
    it(`${node}: the flowmeter cluster is one shard of node1..node3, and the node's macros name its shard and replica`, async () => {
      const configDir = join(data.path, node);
      mkdirSync(join(configDir, "config.d"), { recursive: true });
      writeFileSync(join(configDir, "config.xml"), "<clickhouse></clickhouse>");
      copyFileSync(join(EXAMPLE_DIR, "cluster.xml"), join(configDir, "config.d/cluster.xml"));
      copyFileSync(join(EXAMPLE_DIR, `${node}.xml`), join(configDir, "config.d/node.xml"));
      process.env.CLICKHOUSE_CLUSTER_SECRET = "example-secret";
      const { Session } = await import("chdb");
      const session = new Session(join(configDir, "data"), { connectionArgs: [`--config-file=${join(configDir, "config.xml")}`] });
      try {
        const query = (sql: string) => JSON.parse(session.query(sql, "JSON")) as { data: Record<string, unknown>[] };
        expect(query("SELECT shard_num, replica_num, host_name, port FROM system.clusters WHERE cluster = 'flowmeter' ORDER BY replica_num").data).toEqual([
          { shard_num: 1, replica_num: 1, host_name: "node1", port: 9000 },
          { shard_num: 1, replica_num: 2, host_name: "node2", port: 9000 },
          { shard_num: 1, replica_num: 3, host_name: "node3", port: 9000 },
        ]);
        expect(query("SELECT macro, substitution FROM system.macros ORDER BY macro").data).toEqual([
          { macro: "replica", substitution: node },
          { macro: "shard", substitution: "01" },
        ]);
      } finally {
        session.close();
      }
    });
  }
});
