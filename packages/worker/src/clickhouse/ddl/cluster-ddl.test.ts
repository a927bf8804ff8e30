import { describe, expect, it } from "vitest";
import { parseWorkerConfig, RETRY_MAX_DELAY_MS_LIMIT } from "../../config.js";
import { createClusterRenderer, renderClusterMigrations, REPLICATED_DEDUPLICATION_WINDOW_SECONDS } from "./cluster-ddl.js";
import { ClusterRenderError } from "../cluster-names.js";
import { readMigrations, type Migration } from "../migrate.js";

const migrations = readMigrations(parseWorkerConfig({}).clickhouse.migrationsDir);
const fileOf = (migration: Migration) => `${String(migration.version).padStart(4, "0")}_${migration.name}.sql`;
const rendered = new Map(
  renderClusterMigrations(
    migrations.map((migration) => ({ file: fileOf(migration), sql: migration.sql })),
    "flowmeter",
  ).map((statements, index) => [migrations[index]?.version, statements]),
);

/** A renderer that has already seen migrations 0001–0021 (the tables later statements refer to). */
function rendererAfterMigrations(): ReturnType<typeof createClusterRenderer> {
  const renderer = createClusterRenderer("flowmeter");
  for (const migration of migrations.filter(({ version }) => version <= 21)) renderer.render(fileOf(migration), migration.sql);
  return renderer;
}

describe("cluster form of the migrations", () => {
  it("renders every migration, each statement ON CLUSTER, no non-replicated engine or setting left", () => {
    expect(rendered.size).toBe(migrations.length);
    for (const statements of rendered.values()) {
      expect(statements.length).toBeGreaterThan(0);
      for (const statement of statements) {
        // A backfill (INSERT … SELECT) runs once, through the Distributed tables; everything else on every node.
        if (statement.startsWith("INSERT INTO")) expect(statement).toMatch(/^INSERT INTO flowmeter\.\w+ .*\bSELECT\b/s);
        else expect(statement).toMatch(/^(CREATE|ALTER|DROP) .* ON CLUSTER 'flowmeter'/);
        expect(statement).not.toMatch(/ENGINE = (Replacing|Aggregating)?MergeTree\b/);
        expect(statement).not.toContain("non_replicated_deduplication_window");
        expect(statement).not.toContain("--");
      }
    }
  });

  it("a raw table: a replicated _local table and a Distributed one under its name, sharded by its identity", () => {
    expect(rendered.get(16)).toEqual([
      `CREATE TABLE IF NOT EXISTS flowmeter.ingestion_warnings_local ON CLUSTER 'flowmeter'
(
    received_at DateTime64(3, 'UTC'),
    warning_id String,
    reason LowCardinality(String),
    entry_id String,
    distinct_id String,
    source String,
    detail String,
    excerpt String COMMENT 'the start of the entry as sent, at most about 1 KiB'
)
ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/flowmeter/ingestion_warnings_local', '{replica}')
PARTITION BY toYYYYMM(received_at)
ORDER BY (received_at, warning_id)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800`,
      `CREATE TABLE IF NOT EXISTS flowmeter.ingestion_warnings ON CLUSTER 'flowmeter' AS flowmeter.ingestion_warnings_local
ENGINE = Distributed('flowmeter', flowmeter, ingestion_warnings_local, cityHash64(warning_id))`,
    ]);
    expect(rendered.get(1)?.[1]).toContain("ENGINE = Distributed('flowmeter', flowmeter, cli_invocations_local, cityHash64(insert_id))");
    expect(rendered.get(11)?.[1]).toContain("ENGINE = Distributed('flowmeter', flowmeter, run_events_local, cityHash64(run_id))");
    expect(rendered.get(12)?.[1]).toContain("ENGINE = Distributed('flowmeter', flowmeter, run_telemetry_local, cityHash64(attempt_id))");
  });

  it("a rollup: ReplicatedAggregatingMergeTree, and a Distributed table the views read", () => {
    expect(rendered.get(2)).toEqual([
      `CREATE TABLE IF NOT EXISTS flowmeter.driver_stats_1m_local ON CLUSTER 'flowmeter'
(
    minute DateTime('UTC'),
    source LowCardinality(String) COMMENT 'client | runner',
    driver LowCardinality(String),
    status LowCardinality(String),
    entries SimpleAggregateFunction(sum, UInt64),
    duration_quantiles AggregateFunction(quantilesTDigest(0.5, 0.9, 0.99), Float64)
)
ENGINE = ReplicatedAggregatingMergeTree('/clickhouse/tables/{shard}/flowmeter/driver_stats_1m_local', '{replica}')
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, source, driver, status)
SETTINGS replicated_deduplication_window = 10000, replicated_deduplication_window_seconds = 604800`,
      `CREATE TABLE IF NOT EXISTS flowmeter.driver_stats_1m ON CLUSTER 'flowmeter' AS flowmeter.driver_stats_1m_local
ENGINE = Distributed('flowmeter', flowmeter, driver_stats_1m_local, cityHash64(minute, source, driver, status))`,
    ]);
  });

  it("a materialized view: from the local raw table into the local rollup, comments dropped", () => {
    expect(rendered.get(3)).toEqual([
      `CREATE MATERIALIZED VIEW IF NOT EXISTS flowmeter.driver_stats_client_mv ON CLUSTER 'flowmeter' TO flowmeter.driver_stats_1m_local AS
SELECT
    toStartOfMinute(completed_at) AS minute,
    'client' AS source,
    driver,
    status,
    count() AS entries,
    quantilesTDigestState(0.5, 0.9, 0.99)(duration_ms) AS duration_quantiles
FROM flowmeter.cli_invocations_local
WHERE is_child
GROUP BY minute, driver, status`,
    ]);
  });

  it("a view: unchanged but for ON CLUSTER, reading the Distributed rollup", () => {
    expect(rendered.get(8)).toEqual([
      `CREATE VIEW IF NOT EXISTS flowmeter.driver_stats ON CLUSTER 'flowmeter' AS
SELECT minute, source, driver, status, count, q[1] AS p50_ms, q[2] AS p90_ms, q[3] AS p99_ms
FROM
(
    SELECT minute, source, driver, status, sum(entries) AS count, quantilesTDigestMerge(0.5, 0.9, 0.99)(duration_quantiles) AS q
    FROM flowmeter.driver_stats_1m
    GROUP BY minute, source, driver, status
)`,
    ]);
  });

  it("an ALTER: everything to the local table, the column changes to the Distributed table too", () => {
    expect(rendered.get(19)).toEqual([
      `ALTER TABLE flowmeter.cli_invocations_local ON CLUSTER 'flowmeter'
    MODIFY COLUMN invocation_context CODEC(ZSTD(3)),
    MODIFY COLUMN extra CODEC(ZSTD(3)),
    MODIFY COLUMN error_message CODEC(ZSTD(3)),
    ADD INDEX IF NOT EXISTS distinct_id_bloom distinct_id TYPE bloom_filter(0.01) GRANULARITY 4,
    ADD INDEX IF NOT EXISTS repo_id_bloom repo_id TYPE bloom_filter(0.01) GRANULARITY 4,
    ADD INDEX IF NOT EXISTS run_id_bloom run_id TYPE bloom_filter(0.01) GRANULARITY 4`,
      `ALTER TABLE flowmeter.cli_invocations ON CLUSTER 'flowmeter'
    MODIFY COLUMN invocation_context CODEC(ZSTD(3)),
    MODIFY COLUMN extra CODEC(ZSTD(3)),
    MODIFY COLUMN error_message CODEC(ZSTD(3))`,
    ]);
    expect(rendered.get(18)).toEqual(["ALTER TABLE flowmeter.cli_invocations_local ON CLUSTER 'flowmeter' MATERIALIZE INDEX insert_id_bloom"]);
    expect(rendered.get(15)?.map((statement) => statement.split("\n")[0])).toEqual([
      "ALTER TABLE flowmeter.cli_invocations_local ON CLUSTER 'flowmeter'",
      "ALTER TABLE flowmeter.cli_invocations ON CLUSTER 'flowmeter'",
    ]);
  });

  it("a new plain MergeTree table, like run_logs: sharded by its sorting key, settings kept", () => {
    const renderer = rendererAfterMigrations();
    expect(
      renderer.render(
        "0099_create_run_lines.sql",
        `-- one row per line
CREATE TABLE IF NOT EXISTS flowmeter.run_lines
(
    run_id String,
    seq UInt64,
    line String CODEC(ZSTD(3)) -- cut at 4 KiB
)
ENGINE = MergeTree()
ORDER BY (run_id, seq)
TTL toDateTime(now()) + INTERVAL 1 DAY
SETTINGS index_granularity = 4096;
`,
      ),
    ).toEqual([
      `CREATE TABLE IF NOT EXISTS flowmeter.run_lines_local ON CLUSTER 'flowmeter'
(
    run_id String,
    seq UInt64,
    line String CODEC(ZSTD(3))
)
ENGINE = ReplicatedMergeTree('/clickhouse/tables/{shard}/flowmeter/run_lines_local', '{replica}')
ORDER BY (run_id, seq)
TTL toDateTime(now()) + INTERVAL 1 DAY
SETTINGS index_granularity = 4096, replicated_deduplication_window_seconds = 604800`,
      `CREATE TABLE IF NOT EXISTS flowmeter.run_lines ON CLUSTER 'flowmeter' AS flowmeter.run_lines_local
ENGINE = Distributed('flowmeter', flowmeter, run_lines_local, cityHash64(run_id, seq))`,
    ]);
    expect(renderer.render("0100_create_x.sql", "CREATE TABLE flowmeter.x (v UInt64, id String) ENGINE = ReplacingMergeTree(v) ORDER BY id")).toEqual([
      "CREATE TABLE flowmeter.x_local ON CLUSTER 'flowmeter' (v UInt64, id String) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/flowmeter/x_local', '{replica}', v) ORDER BY id\nSETTINGS replicated_deduplication_window_seconds = 604800",
      "CREATE TABLE flowmeter.x ON CLUSTER 'flowmeter' AS flowmeter.x_local\nENGINE = Distributed('flowmeter', flowmeter, x_local, cityHash64(id))",
    ]);
    expect(renderer.render("0101_drop_x.sql", "DROP TABLE IF EXISTS flowmeter.x SYNC")).toEqual([
      "DROP TABLE IF EXISTS flowmeter.x ON CLUSTER 'flowmeter' SYNC",
      "DROP TABLE IF EXISTS flowmeter.x_local ON CLUSTER 'flowmeter' SYNC",
    ]);
  });

  it("keeps a block's token for longer than a failing job can wait between two attempts", () => {
    expect(REPLICATED_DEDUPLICATION_WINDOW_SECONDS * 1000).toBeGreaterThanOrEqual(7 * RETRY_MAX_DELAY_MS_LIMIT);
    expect(() => parseWorkerConfig({ WORKER_RETRY_MAX_DELAY_MS: String(RETRY_MAX_DELAY_MS_LIMIT + 1) })).toThrow(/WORKER_RETRY_MAX_DELAY_MS/);
  });
});

describe("statements the cluster form has no rule for", () => {
  const cases: [string, string, RegExp][] = [
    ["0090_create_buffer.sql", "CREATE TABLE IF NOT EXISTS flowmeter.buffer (id String) ENGINE = Memory", /engine Memory has no replicated form/],
    ["0090_create_copy.sql", "CREATE TABLE IF NOT EXISTS flowmeter.copy AS flowmeter.run_events", /without a column list/],
    ["0090_create_unordered.sql", "CREATE TABLE flowmeter.u (id String) ENGINE = MergeTree ORDER BY tuple()", /ORDER BY tuple\(\) gives no sharding key/],
    ["0090_create_default_db.sql", "CREATE TABLE IF NOT EXISTS events (id String) ENGINE = MergeTree ORDER BY id", /expected flowmeter.<name>/],
    ["0090_insert.sql", "INSERT INTO flowmeter.run_events (event_id) VALUES ('x')", /only INSERT … SELECT \(a backfill\) has a cluster form/],
    [
      "0090_replicated.sql",
      "CREATE TABLE flowmeter.r (id String) ENGINE = ReplicatedMergeTree ORDER BY id",
      /engine ReplicatedMergeTree has no replicated form/,
    ],
    ["0090_on_cluster.sql", "ALTER TABLE flowmeter.run_events ON CLUSTER 'c' ADD INDEX i ts TYPE minmax", /already has ON CLUSTER/],
    [
      "0090_inner_mv.sql",
      "CREATE MATERIALIZED VIEW flowmeter.m ENGINE = MergeTree ORDER BY id AS SELECT event_id AS id FROM flowmeter.run_events",
      /without TO keeps its rows in an inner table/,
    ],
    [
      "0090_join_mv.sql",
      "CREATE MATERIALIZED VIEW flowmeter.m TO flowmeter.driver_stats_1m AS SELECT * FROM flowmeter.run_events AS e JOIN flowmeter.run_telemetry AS t USING run_id",
      /reads run_events and run_telemetry/,
    ],
    [
      "0090_mv_into_view.sql",
      "CREATE MATERIALIZED VIEW flowmeter.m TO flowmeter.driver_stats AS SELECT 1 FROM flowmeter.run_events",
      /writes flowmeter.driver_stats, which no/,
    ],
    ["0090_alter_view.sql", "ALTER TABLE flowmeter.driver_stats MODIFY QUERY SELECT 1", /ALTER of flowmeter.driver_stats, which no earlier migration/],
    ["0090_freeze.sql", "ALTER TABLE flowmeter.run_events FREEZE", /ALTER command "FREEZE" has no rule/],
    ["0090_two.sql", "ALTER TABLE flowmeter.run_events DELETE WHERE 1; SELECT 1", /more than one statement/],
  ];
  for (const [file, sql, reason] of cases) {
    it(`${file}: throws, naming the file`, () => {
      const renderer = rendererAfterMigrations();
      let thrown: unknown;
      try {
        renderer.render(file, sql);
      } catch (error) {
        thrown = error;
      }
      expect(thrown).toBeInstanceOf(ClusterRenderError);
      expect((thrown as Error).message).toMatch(new RegExp(`^${file.replaceAll(".", "\\.")}: cannot render for a cluster: `));
      expect((thrown as Error).message).toMatch(reason);
    });
  }

  it("refuses a cluster name it cannot quote", () => {
    expect(() => createClusterRenderer("a'b")).toThrow(ClusterRenderError);
  });
});
