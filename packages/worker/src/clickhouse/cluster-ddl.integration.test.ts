/**
 * The cluster form of the schema in chDB. chDB runs no distributed DDL (ON CLUSTER) and its replicated tables never
 * leave read-only mode (no Keeper session activates them), so:
 *  - every statement the migrator sends is parsed exactly as sent by ClickHouse's own parser (formatQuery);
 *  - the whole schema is applied by the production migrator in cluster mode to a chDB that has the `flowmeter` cluster
 *    (one shard, this process as its replica), with ON CLUSTER stripped and each Replicated*MergeTree mapped back to
 *    its plain engine: the Distributed tables, the views on `_local` tables and the worker's inserts and lookups with
 *    the cluster settings run for real;
 *  - each replicated table is created as rendered against an in-process test Keeper (engine, path macros, settings).
 */
import { toClickHouseTime, CLI_INVOCATION_COLUMNS, toCliInvocationRow } from "@flowmeter/shared";
import { cpSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createClient, type ClickHouseClient, type CommandParams } from "@clickhouse/client";
import { createLogger } from "@flowmeter/platform";
import { childEntry, parentEntry, tempDir } from "@flowmeter/test-utils";
import { parseWorkerConfig } from "../config.js";
import { insertBlockThroughClient, toBlock } from "./block-writer.js";
import { readSettings } from "./consistency-settings.js";
import { MigrationError, migrate, readMigrations } from "./migrate.js";
import { applyRetention } from "./retention.js";
import { findStoredIdentities, identityOf, readBackRows } from "./raw-table.js";
import { cliInvocationsTable } from "./raw-tables.js";

const CLUSTER = "flowmeter";
const logger = createLogger("test", "error");
const migrationsDir = parseWorkerConfig({}).clickhouse.migrationsDir;

// chDB listens on no port: tcp_port only lets ClickHouse recognise the cluster's one replica as this process, so
// the Distributed tables write and read it in-process. testkeeper is ClickHouse's in-memory Keeper for tests.
const CLUSTER_CONFIG = `<clickhouse>
  <tcp_port>9000</tcp_port>
  <zookeeper><implementation>testkeeper</implementation></zookeeper>
  <macros><shard>01</shard><replica>chdb</replica></macros>
  <remote_servers>
    <${CLUSTER}><shard><internal_replication>true</internal_replication><replica><host>localhost</host><port>9000</port></replica></shard></${CLUSTER}>
  </remote_servers>
</clickhouse>`;

/** A rendered statement as one server without Keeper runs it. */
function withoutReplication(sql: string): string {
  return sql
    .replaceAll(` ON CLUSTER '${CLUSTER}'`, "")
    .replace(/Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?/g, "$1(")
    .replace(/\breplicated_deduplication_window = /g, "non_replicated_deduplication_window = ");
}

describe("the cluster form of the schema, in chDB", () => {
  const data = tempDir("cluster-ddl");
  let session: { query(sql: string, format?: string): string; close(): void };
  let clickhouse: ClickHouseClient;
  /** `clickhouse`, its DDL run without replication; what the migrator sent, as sent, in `sent`. */
  let cluster: ClickHouseClient;
  const sent: string[] = [];

  beforeAll(async () => {
    const configFile = join(data.path, "cluster.xml");
    writeFileSync(configFile, CLUSTER_CONFIG);
    const dataDir = join(data.path, "clickhouse");
    const { Session } = await import("chdb");
    session = new Session(dataDir, { connectionArgs: [`--config-file=${configFile}`] });
    const { createChdbConnection } = await import("chdb/connection");
    const connection = createChdbConnection({ path: dataDir }) as unknown as NonNullable<Parameters<typeof createClient>[0]>["connection"];
    // As createClickHouse() configures a cluster's client (over chDB these become session SETs, which is what they mean).
    clickhouse = createClient({ connection, clickhouse_settings: readSettings(CLUSTER) });
    cluster = new Proxy(clickhouse, {
      get(target, name) {
        if (name === "command") {
          return (params: CommandParams) => {
            sent.push(params.query);
            return target.command({ ...params, query: withoutReplication(params.query) });
          };
        }
        const value: unknown = Reflect.get(target, name);
        return typeof value === "function" ? (value as (...args: unknown[]) => unknown).bind(target) : value;
      },
    });
  });
  afterAll(async () => {
    // A read-only replicated table holds chDB's shutdown forever: they go first.
    session.query("DROP DATABASE IF EXISTS flowmeter_keeper SYNC");
    await clickhouse.close();
    session.close();
    data.remove();
  });

  async function rows<T>(query: string): Promise<T[]> {
    return (await clickhouse.query({ query, format: "JSONEachRow" })).json<T>();
  }

  it("refuses a migration it cannot render before it runs anything", async () => {
    const dir = tempDir("cluster-migrations");
    cpSync(migrationsDir, dir.path, { recursive: true });
    writeFileSync(join(dir.path, "0999_create_buffer.sql"), "CREATE TABLE IF NOT EXISTS flowmeter.buffer (id String) ENGINE = Memory");
    const failure = migrate(cluster, dir.path, logger, { cluster: CLUSTER });
    await expect(failure).rejects.toThrow(MigrationError);
    await expect(failure).rejects.toThrow(/^0999_create_buffer\.sql: cannot render for a cluster: engine Memory has no replicated form/);
    dir.remove();
    expect(sent).toEqual([]);
  });

  it("applies every migration once through the production migrator, recording each in the Distributed ledger", async () => {
    const first = await migrate(cluster, migrationsDir, logger, { cluster: CLUSTER });
    expect(first.applied).toHaveLength(readMigrations(migrationsDir).length);
    expect((await migrate(cluster, migrationsDir, logger, { cluster: CLUSTER })).applied).toEqual([]);
    const ledger = await rows<{ version: number }>("SELECT version FROM flowmeter.schema_migrations ORDER BY version");
    expect(ledger.map((row) => row.version)).toEqual(first.applied.map((name) => Number(name.slice(0, 4))));
    // Every statement runs on every node, but a backfill (INSERT … SELECT), which runs once through the Distributed tables.
    expect(sent.filter((statement) => !statement.startsWith("INSERT INTO")).every((statement) => statement.includes(` ON CLUSTER '${CLUSTER}'`))).toBe(true);
  });

  it("every statement sent parses as sent, ON CLUSTER and Replicated engines included", async () => {
    for (const statement of sent) {
      const literal = statement.replaceAll("\\", "\\\\").replaceAll("'", "\\'");
      const [parsed] = await rows<{ formatted: string }>(`SELECT formatQuery('${literal}') AS formatted`);
      expect(parsed?.formatted).toMatch(/^(CREATE|ALTER|DROP|INSERT INTO)/);
    }
  });

  it("keeps every table name: Distributed tables over the _local ones, the views unchanged", async () => {
    const tables = new Map(
      (await rows<{ name: string; engine: string }>("SELECT name, engine FROM system.tables WHERE database = 'flowmeter'")).map((row) => [
        row.name,
        row.engine,
      ]),
    );
    for (const table of ["cli_invocations", "run_events", "run_telemetry", "ingestion_warnings", "driver_stats_1m", "stage_stats_1m", "command_stats_1m"]) {
      expect(tables.get(table)).toBe("Distributed");
      expect(tables.get(`${table}_local`)).toMatch(/MergeTree$/);
    }
    expect([tables.get("driver_stats"), tables.get("stage_stats"), tables.get("command_stats")]).toEqual(["View", "View", "View"]);
    const described = await rows<{ name: string }>("DESCRIBE TABLE flowmeter.cli_invocations");
    expect(described.map((column) => column.name)).toEqual([...CLI_INVOCATION_COLUMNS]);
  });

  it("a block inserted again through the Distributed table, as a retry or a repair, is counted once in the rollups", async () => {
    const startedAt = new Date("2026-11-30T10:00:00.000Z");
    const parent = parentEntry({ startedAt });
    const entries = [parent, childEntry(parent.properties.id, { startedAt }), childEntry(parent.properties.id, { startedAt })];
    const receivedAt = toClickHouseTime(startedAt.getTime());
    const block = toBlock(
      cliInvocationsTable.name,
      cliInvocationsTable.columns,
      entries.map((entry) => toCliInvocationRow(entry, receivedAt)),
    );
    await insertBlockThroughClient(clickhouse, block, { cluster: CLUSTER });
    await insertBlockThroughClient(clickhouse, block, { cluster: CLUSTER });

    const stored = entries.map((entry) => toCliInvocationRow(entry, receivedAt));
    const identities = await findStoredIdentities(clickhouse, cliInvocationsTable, stored);
    expect(identities).toEqual(new Set(stored.map((row) => identityOf(cliInvocationsTable, row))));
    const body = await readBackRows(clickhouse, cliInvocationsTable, [...identities]);
    await insertBlockThroughClient(clickhouse, { ...block, body }, { cluster: CLUSTER });

    const count = async (query: string) => Number((await rows<{ n: number | string }>(query))[0]?.n);
    expect(await count("SELECT count() AS n FROM flowmeter.cli_invocations")).toBe(3);
    expect(await count("SELECT sum(count) AS n FROM flowmeter.command_stats")).toBe(3);
    expect(await count("SELECT sum(count) AS n FROM flowmeter.driver_stats WHERE source = 'client'")).toBe(2);
  });

  it("sets the TTLs on the _local tables", async () => {
    await applyRetention(cluster, { rawDays: 90, telemetryDays: 30, logsDays: 30, rollupDays: 400, dedupHorizonDays: 8, otelDays: 30 }, logger, {
      cluster: CLUSTER,
    });
    expect(
      sent
        .filter((statement) => /^ALTER .* (MODIFY|REMOVE) TTL/s.test(statement))
        .every((statement) => /^ALTER TABLE flowmeter\.\w+_local ON CLUSTER 'flowmeter' /.test(statement)),
    ).toBe(true);
    const [row] = await rows<{ engine_full: string }>("SELECT engine_full FROM system.tables WHERE database = 'flowmeter' AND name = 'cli_invocations_local'");
    expect(row?.engine_full).toContain("TTL toDateTime(started_at) + toIntervalDay(90)");
  });

  it("creates each replicated table as rendered, its Keeper path and replica from the node's macros", async () => {
    // Each run of the migrator sends the ledger's CREATE again.
    const creates = [...new Set(sent.filter((statement) => /^CREATE TABLE .*_local ON CLUSTER/.test(statement)))];
    expect(creates.length).toBeGreaterThanOrEqual(8);
    session.query("CREATE DATABASE IF NOT EXISTS flowmeter_keeper");
    for (const statement of creates) session.query(statement.replaceAll(` ON CLUSTER '${CLUSTER}'`, "").replace("flowmeter.", "flowmeter_keeper."));
    const replicas = await rows<{ table: string; zookeeper_path: string; replica_name: string }>(
      "SELECT table, zookeeper_path, replica_name FROM system.replicas WHERE database = 'flowmeter_keeper' ORDER BY table",
    );
    expect(replicas.length).toBe(creates.length);
    for (const replica of replicas) {
      expect(replica).toEqual({ table: replica.table, zookeeper_path: `/clickhouse/tables/01/flowmeter/${replica.table}`, replica_name: "chdb" });
    }
    const [settings] = await rows<{ engine_full: string }>(
      "SELECT engine_full FROM system.tables WHERE database = 'flowmeter_keeper' AND name = 'cli_invocations_local'",
    );
    expect(settings?.engine_full).toMatch(
      /^ReplicatedReplacingMergeTree\('\/clickhouse\/tables\/\{shard\}\/flowmeter\/cli_invocations_local', '\{replica\}'\)/,
    );
    expect(settings?.engine_full).toContain("replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800");
  });
});
