/**
 * Applies the numbered SQL migrations in infra/clickhouse/migrations, one statement per file, forward only,
 * recording each in flowmeter.schema_migrations. Services never run DDL themselves; this runner does, once.
 * On a cluster (CLICKHOUSE_CLUSTER) each file runs as its cluster form (cluster-ddl.ts), one or more ON CLUSTER
 * statements, all idempotent, and is recorded once they all succeeded; the ledger itself is rendered the same way.
 */
import { toClickHouseTime } from "@flowmeter/shared";
import { createHash } from "node:crypto";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ClickHouseClient } from "@clickhouse/client";
import type { Logger } from "@flowmeter/platform";
import { insertBlockThroughClient, toBlock } from "./block-writer.js";
import { createClusterRenderer } from "./ddl/cluster-ddl.js";
import { ClusterRenderError } from "./cluster-names.js";

export class MigrationError extends Error {
  override readonly name = "MigrationError";
}

export interface Migration {
  version: number;
  name: string;
  sql: string;
  checksum: string;
}

const FILE_NAME = /^(\d{4})_([a-z0-9_]+)\.sql$/;

export function readMigrations(dir: string): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!file.endsWith(".sql")) continue;
    const match = FILE_NAME.exec(file);
    if (!match) throw new MigrationError(`${file}: migration files are named NNNN_verb_object.sql`);
    const sql = readFileSync(join(dir, file), "utf8");
    const version = Number(match[1]);
    if (migrations.some((migration) => migration.version === version)) {
      throw new MigrationError(`${file}: version ${match[1]} is used twice; give the new file the highest number plus one`);
    }
    migrations.push({ version, name: match[2] ?? file, sql, checksum: createHash("sha256").update(sql).digest("hex") });
  }
  return migrations;
}

interface AppliedMigration {
  version: number;
  name: string;
  checksum: string;
}

const CREATE_DATABASE = "CREATE DATABASE IF NOT EXISTS flowmeter";
const CREATE_LEDGER = `CREATE TABLE IF NOT EXISTS flowmeter.schema_migrations
            (version UInt32, name String, checksum String, applied_at DateTime64(3, 'UTC'))
            ENGINE = MergeTree ORDER BY version`;
const LEDGER_COLUMNS = ["version", "name", "checksum", "applied_at"] as const;

/** `cluster`: CLICKHOUSE_CLUSTER; undefined applies the files as they are, to one server. */
export async function migrate(
  client: ClickHouseClient,
  dir: string,
  logger: Logger,
  { cluster }: { cluster?: string | undefined } = {},
): Promise<{ applied: string[] }> {
  const migrations = readMigrations(dir);
  // Every file is rendered before anything runs: one a cluster cannot take stops the run before it starts.
  const { setup, statementsOf } = cluster === undefined ? singleNodeStatements() : clusterStatements(migrations, cluster);
  for (const query of setup) await client.command({ query });
  const result = await client.query({ query: "SELECT version, name, checksum FROM flowmeter.schema_migrations ORDER BY version", format: "JSONEachRow" });
  const applied = await result.json<AppliedMigration>();
  const highest = applied.reduce((max, row) => Math.max(max, row.version), 0);

  for (const row of applied) {
    const file = migrations.find((migration) => migration.version === row.version);
    if (!file) throw new MigrationError(`migration ${row.version} (${row.name}) is applied but its file is gone; restore it`);
    if (file.checksum !== row.checksum) {
      throw new MigrationError(
        `migration ${String(row.version).padStart(4, "0")}_${row.name} changed after it was applied; never edit an applied migration, add a new one`,
      );
    }
  }
  const pending = migrations.filter((migration) => !applied.some((row) => row.version === migration.version));
  const misplaced = pending.find((migration) => migration.version < highest);
  if (misplaced) {
    throw new MigrationError(
      `migration ${String(misplaced.version).padStart(4, "0")}_${misplaced.name} is numbered below the highest applied (${highest}); renumber it to ${highest + 1}`,
    );
  }

  const names: string[] = [];
  for (const migration of pending) {
    const label = `${String(migration.version).padStart(4, "0")}_${migration.name}`;
    const startedAt = Date.now();
    for (const query of statementsOf(migration)) await client.command({ query });
    if (cluster === undefined) {
      await client.insert({
        table: "flowmeter.schema_migrations",
        values: [{ version: migration.version, name: migration.name, checksum: migration.checksum, applied_at: Date.now() }],
        format: "JSONEachRow",
      });
    } else {
      const row = { version: migration.version, name: migration.name, checksum: migration.checksum, applied_at: toClickHouseTime(Date.now()) };
      await insertBlockThroughClient(client, toBlock("flowmeter.schema_migrations", LEDGER_COLUMNS, [row]), { cluster });
    }
    logger.info("migration applied", { migration: label, ms: Date.now() - startedAt });
    names.push(label);
  }
  logger.info(pending.length === 0 ? "schema up to date" : "migrations done", {
    applied: pending.length,
    version: Math.max(highest, ...pending.map((m) => m.version)),
  });
  return { applied: names };
}

interface MigrationStatements {
  /** The database and the ledger. */
  setup: string[];
  statementsOf: (migration: Migration) => string[];
}

function singleNodeStatements(): MigrationStatements {
  return { setup: [CREATE_DATABASE, CREATE_LEDGER], statementsOf: (migration) => [migration.sql] };
}

function clusterStatements(migrations: readonly Migration[], cluster: string): MigrationStatements {
  const renderer = createClusterRenderer(cluster);
  try {
    const setup = [...renderer.render("the database", CREATE_DATABASE), ...renderer.render("the ledger", CREATE_LEDGER)];
    const rendered = new Map(migrations.map((migration) => [migration.version, renderer.render(fileName(migration), migration.sql)]));
    return { setup, statementsOf: (migration) => rendered.get(migration.version) ?? [] };
  } catch (error) {
    if (error instanceof ClusterRenderError) throw new MigrationError(error.message, { cause: error });
    throw error;
  }
}

function fileName(migration: Migration): string {
  return `${String(migration.version).padStart(4, "0")}_${migration.name}.sql`;
}
