/**
 * The cluster form of the single-node migrations (infra/clickhouse/migrations), derived from them statement by statement
 * when CLICKHOUSE_CLUSTER is set, so no second set of migrations is kept by hand. Every statement runs ON CLUSTER, and:
 *  - a table becomes `<table>_local`, its MergeTree engine the Replicated one (one Keeper path per shard), plus a
 *    Distributed table under the original name, so the worker, the views and the dashboards keep their table names;
 *  - a materialized view reads and writes the `_local` tables: it fires on the shard a block lands on;
 *  - a plain view is unchanged, reading the Distributed tables;
 *  - an ALTER goes to the `_local` table, and its column changes to the Distributed table too;
 *  - an INSERT … SELECT (a backfill) runs once, as written: it reads and writes the Distributed tables, so each row
 *    lands on its shard.
 * A statement outside these rules throws ClusterRenderError naming its file, so a new migration cannot silently
 * leave cluster mode behind: extend the rules, or write the migration so they cover it. The statements are read with
 * the lexer in sql-statement.ts; the rules are here.
 */
import { RETRY_MAX_DELAY_MS_LIMIT } from "../../config.js";
import { ClusterRenderError, localTable, onCluster } from "../cluster-names.js";
import { rawTableNamed } from "../raw-tables.js";
import { SqlStatement, type Lexeme } from "./sql-statement.js";

const DATABASE = "flowmeter";

/**
 * How long a replicated table remembers an inserted block's token, counted from its newest block. A block is inserted
 * again when a cut-short insert is repaired (consumers/block-journal.ts) or its job retries; either happens before the
 * table's next insert, and a failing job retries at least every WORKER_RETRY_MAX_DELAY_MS (at most a day), so a week
 * leaves a wide margin; ClickHouse's default, an hour, would not cover the longest delay. The count window stays the
 * single-node one (10000).
 */
export const REPLICATED_DEDUPLICATION_WINDOW_SECONDS = (7 * RETRY_MAX_DELAY_MS_LIMIT) / 1000;

const MERGE_TREE_ENGINE = /^(Replacing|Summing|Aggregating|Collapsing|VersionedCollapsing|Graphite|Coalescing)?MergeTree$/;

/** ALTER commands that change columns: the Distributed table's columns follow the local table's. */
const COLUMN_COMMANDS = ["ADD COLUMN", "DROP COLUMN", "MODIFY COLUMN", "RENAME COLUMN", "COMMENT COLUMN"];
/** ALTER commands about the stored data and its indexes: the local tables only. */
const LOCAL_COMMANDS = [
  "ADD INDEX",
  "DROP INDEX",
  "MATERIALIZE INDEX",
  "CLEAR INDEX",
  "ADD PROJECTION",
  "DROP PROJECTION",
  "MATERIALIZE PROJECTION",
  "CLEAR PROJECTION",
  "ADD CONSTRAINT",
  "DROP CONSTRAINT",
  "MODIFY TTL",
  "REMOVE TTL",
  "MATERIALIZE TTL",
  "MODIFY SETTING",
  "RESET SETTING",
  "MODIFY ORDER BY",
  "MATERIALIZE COLUMN",
  "CLEAR COLUMN",
  "DELETE WHERE",
  "UPDATE",
];
/** Clauses after ENGINE that end an ORDER BY expression. */
const TABLE_CLAUSES = new Set(["PARTITION", "PRIMARY", "SAMPLE", "TTL", "SETTINGS", "COMMENT", "ORDER"]);

export interface ClusterRenderer {
  /** The statements, in order, that apply one single-node statement on the cluster. `file` names it in errors. */
  render(file: string, sql: string): string[];
}

/**
 * A renderer for one run of the migrations, in order: it remembers which tables earlier statements sharded, so a
 * materialized view or an ALTER can find their local tables.
 */
export function createClusterRenderer(cluster: string): ClusterRenderer {
  const clause = onCluster(cluster);
  const sharded = new Set<string>();
  return {
    render(file, sql) {
      const statement = readStatement(file, sql);
      const kind = statementKind(statement);
      switch (kind) {
        case "CREATE DATABASE":
          return [statement.withClauseAfterName(clause)];
        case "CREATE TABLE":
          return renderTable(statement, cluster, clause, sharded);
        case "CREATE MATERIALIZED VIEW":
          return [renderMaterializedView(statement, clause, sharded)];
        case "CREATE VIEW":
          return [statement.withClauseAfterName(clause)];
        case "ALTER TABLE":
          return renderAlter(statement, clause, sharded);
        case "DROP TABLE":
        case "DROP VIEW":
          return renderDrop(statement, clause, sharded);
        case "INSERT INTO":
          if (!statement.lexemes.some((lexeme) => lexeme.isWord("SELECT"))) {
            statement.fail("only INSERT … SELECT (a backfill) has a cluster form here: it runs once, through the Distributed tables");
          }
          return [statement.sql];
      }
    },
  };
}

/** Every migration's cluster statements, in order. */
export function renderClusterMigrations(migrations: readonly { file: string; sql: string }[], cluster: string): string[][] {
  const renderer = createClusterRenderer(cluster);
  return migrations.map(({ file, sql }) => renderer.render(file, sql));
}

/** The statement, refused when it is already a cluster form (ON CLUSTER) or more than one statement. */
function readStatement(file: string, sql: string): SqlStatement {
  const statement = new SqlStatement(sql, DATABASE, (reason) => new ClusterRenderError(`${file}: cannot render for a cluster: ${reason}`));
  const { lexemes } = statement;
  if (lexemes.some((lexeme, index) => lexeme.isWord("ON") && lexeme.depth === 0 && lexemes[index + 1]?.isWord("CLUSTER"))) {
    statement.fail("already has ON CLUSTER; single-node migrations never do, the cluster form adds it");
  }
  if (lexemes.some((lexeme) => lexeme.is(";"))) statement.fail("holds more than one statement; a migration is one statement");
  return statement;
}

function statementKind(
  statement: SqlStatement,
): "CREATE DATABASE" | "CREATE TABLE" | "CREATE MATERIALIZED VIEW" | "CREATE VIEW" | "ALTER TABLE" | "DROP TABLE" | "DROP VIEW" | "INSERT INTO" {
  const words = statement.leadingWords(5);
  const head = words.join(" ").toUpperCase();
  const kinds = [
    ["CREATE DATABASE", "CREATE DATABASE"],
    ["CREATE TABLE", "CREATE TABLE"],
    ["CREATE MATERIALIZED VIEW", "CREATE MATERIALIZED VIEW"],
    ["CREATE VIEW", "CREATE VIEW"],
    ["CREATE OR REPLACE VIEW", "CREATE VIEW"],
    ["ALTER TABLE", "ALTER TABLE"],
    ["DROP TABLE", "DROP TABLE"],
    ["DROP VIEW", "DROP VIEW"],
    ["INSERT INTO", "INSERT INTO"],
  ] as const;
  const found = kinds.find(([prefix]) => head === prefix || head.startsWith(`${prefix} `));
  if (!found)
    statement.fail(
      `"${words.join(" ")}" statements have no cluster form here (CREATE DATABASE/TABLE/VIEW/MATERIALIZED VIEW, ALTER TABLE, DROP TABLE/VIEW, INSERT INTO)`,
    );
  return found[1];
}

function renderTable(statement: SqlStatement, cluster: string, clause: string, sharded: Set<string>): string[] {
  const { name } = statement.objectName();
  const columns = statement.next(statement.nameEndIndex);
  if (!columns?.is("(")) statement.fail("CREATE TABLE without a column list (… AS …) has no mechanical cluster form; write its columns out");
  const columnsEnd = statement.closing(columns.index);
  const engine = statement.next(columnsEnd.index + 1);
  const equals = engine === undefined ? undefined : statement.next(engine.index + 1);
  const engineName = equals === undefined ? undefined : statement.next(equals.index + 1);
  if (!engine?.isWord("ENGINE") || !equals?.is("=") || engineName?.kind !== "word") statement.fail("CREATE TABLE needs ENGINE = … after its columns");
  if (!MERGE_TREE_ENGINE.test(engineName.text)) {
    statement.fail(`engine ${engineName.text} has no replicated form here: only the MergeTree family is rendered (a single-node file never names Replicated*)`);
  }
  const argsOpen = statement.next(engineName.index + 1);
  const argsClose = argsOpen?.is("(") ? statement.closing(argsOpen.index) : undefined;
  const engineArgs = argsOpen && argsClose ? statement.sql.slice(argsOpen.end, argsClose.start).trim() : "";
  const engineEnd = argsClose ?? engineName;

  const local = localTable(name);
  const settings = statement.topLevelWord("SETTINGS", engineEnd.index + 1);
  const clauses = statement.sql.slice(engineEnd.end, settings?.start ?? statement.sql.length).trimEnd();
  const replicatedEngine = `Replicated${engineName.text}('/clickhouse/tables/{shard}/${DATABASE}/${local}', '{replica}'${engineArgs === "" ? "" : `, ${engineArgs}`})`;
  const localStatement =
    `${statement.sql.slice(0, statement.nameStart)}${DATABASE}.${local} ${clause}${statement.sql.slice(statement.nameEnd, engine.start)}` +
    `ENGINE = ${replicatedEngine}${clauses}\nSETTINGS ${replicatedSettings(statement, settings).join(", ")}`;

  // A raw table's comes from the registry (it follows the row's identity); any other table is sharded by its sorting key.
  const shardingKey = rawTableNamed(name)?.shardingKey ?? sortingKeyHash(statement, engineEnd.index + 1);
  const distributedStatement =
    `${statement.sql.slice(0, statement.nameStart)}${DATABASE}.${name} ${clause} AS ${DATABASE}.${local}\n` +
    `ENGINE = Distributed('${cluster}', ${DATABASE}, ${local}, ${shardingKey})`;
  sharded.add(name);
  return [localStatement, distributedStatement];
}

/**
 * The table's SETTINGS for a replicated engine: non_replicated_deduplication_window becomes the replicated count window,
 * and the time window is set (REPLICATED_DEDUPLICATION_WINDOW_SECONDS) unless the file sets one.
 */
function replicatedSettings(statement: SqlStatement, settings: Lexeme | undefined): string[] {
  const items = settings === undefined ? [] : statement.splitTopLevel(settings.index + 1, statement.lexemes.length);
  const rendered: string[] = [];
  const names = new Set<string>();
  for (const item of items) {
    const [name] = item.text.split(/\s*=\s*/, 1);
    const value = item.text.slice(item.text.indexOf("=") + 1).trim();
    if (name === "non_replicated_deduplication_window") {
      rendered.push(`replicated_deduplication_window = ${value}`);
      names.add("replicated_deduplication_window");
    } else {
      rendered.push(item.text);
      names.add(name ?? "");
    }
  }
  if (!names.has("replicated_deduplication_window_seconds")) {
    rendered.push(`replicated_deduplication_window_seconds = ${REPLICATED_DEDUPLICATION_WINDOW_SECONDS}`);
  }
  return rendered;
}

function sortingKeyHash(statement: SqlStatement, from: number): string {
  const order = statement.topLevelWord("ORDER", from);
  const by = order === undefined ? undefined : statement.next(order.index + 1);
  if (!order || !by?.isWord("BY")) statement.fail("CREATE TABLE without ORDER BY: give the table a sharding key in the registry (raw-tables.ts)");
  let end = statement.lexemes.length;
  for (let index = by.index + 1; index < statement.lexemes.length; index += 1) {
    const lexeme = statement.lexemes[index];
    if (lexeme && lexeme.depth === 0 && lexeme.kind === "word" && TABLE_CLAUSES.has(lexeme.text.toUpperCase())) {
      end = index;
      break;
    }
  }
  const first = statement.lexemes[by.index + 1];
  const last = statement.lexemes[end - 1];
  if (!first || !last || end <= by.index + 1) statement.fail("ORDER BY without a key");
  const wholeTuple = first.is("(") && statement.closing(first.index).index === end - 1;
  const parts = wholeTuple ? statement.splitTopLevel(first.index + 1, end - 1).map((part) => part.text) : [statement.sql.slice(first.start, last.end)];
  const columns = parts.filter((part) => !/^tuple\s*\(\s*\)$/i.test(part));
  if (columns.length === 0) statement.fail("ORDER BY tuple() gives no sharding key: add one for the table in the registry (raw-tables.ts)");
  return `cityHash64(${columns.join(", ")})`;
}

function renderMaterializedView(statement: SqlStatement, clause: string, sharded: Set<string>): string {
  statement.objectName();
  const to = statement.next(statement.nameEndIndex);
  if (!to?.isWord("TO")) statement.fail("a materialized view without TO keeps its rows in an inner table, which has no cluster form here; give it a TO table");
  const target = statement.qualifiedNameAt(to.index + 1);
  if (!sharded.has(target.name)) statement.fail(`the view writes ${DATABASE}.${target.name}, which no earlier migration created as a table`);
  if (statement.topLevelWord("POPULATE", target.endIndex))
    statement.fail("POPULATE has no cluster form: it would fill each node from its own shard only while inserts go on");
  const sources = new Set<string>();
  let body = "";
  let copiedTo = statement.lexemes[target.endIndex]?.start ?? statement.sql.length;
  for (const reference of statement.qualifiedReferences(target.endIndex)) {
    if (!sharded.has(reference.name)) continue;
    sources.add(reference.name);
    body += `${statement.sql.slice(copiedTo, reference.start)}${DATABASE}.${localTable(reference.name)}`;
    copiedTo = reference.end;
  }
  body += statement.sql.slice(copiedTo);
  if (sources.size !== 1) {
    statement.fail(
      sources.size === 0
        ? "the view reads no table created by an earlier migration"
        : `the view reads ${[...sources].join(" and ")}: on a cluster each node would join its own shards' rows only`,
    );
  }
  return `${statement.sql.slice(0, statement.nameEnd)} ${clause} TO ${DATABASE}.${localTable(target.name)} ${body.trimStart()}`;
}

function renderAlter(statement: SqlStatement, clause: string, sharded: Set<string>): string[] {
  const { name } = statement.objectName();
  if (!sharded.has(name)) statement.fail(`ALTER of ${DATABASE}.${name}, which no earlier migration created as a table`);
  const firstCommand = statement.lexemes[statement.nameEndIndex];
  if (!firstCommand) statement.fail("ALTER TABLE without a command");
  const querySettings = statement.topLevelWord("SETTINGS", statement.nameEndIndex);
  const separator = statement.sql.slice(statement.nameEnd, firstCommand.start);
  const commands = statement.splitTopLevel(statement.nameEndIndex, querySettings?.index ?? statement.lexemes.length);
  const local: string[] = [];
  const distributed: string[] = [];
  for (const command of commands) {
    const words = command.text.toUpperCase().split(/\s+/);
    const starts = (prefix: string) => prefix.split(" ").every((word, index) => words[index] === word);
    if (COLUMN_COMMANDS.some(starts)) {
      local.push(command.text);
      distributed.push(command.text);
    } else if (LOCAL_COMMANDS.some(starts)) {
      local.push(command.text);
    } else {
      statement.fail(`ALTER command "${command.text.slice(0, 40)}" has no rule for a cluster: add it to COLUMN_COMMANDS or LOCAL_COMMANDS in cluster-ddl.ts`);
    }
  }
  const suffix = querySettings ? ` ${statement.sql.slice(querySettings.start)}` : "";
  const alter = (table: string, parts: string[]) => `ALTER TABLE ${DATABASE}.${table} ${clause}${separator}${parts.join(`,${separator}`)}${suffix}`;
  return [alter(localTable(name), local), ...(distributed.length > 0 ? [alter(name, distributed)] : [])];
}

function renderDrop(statement: SqlStatement, clause: string, sharded: Set<string>): string[] {
  const { name } = statement.objectName();
  const head = statement.sql.slice(0, statement.nameStart);
  const tail = statement.sql.slice(statement.nameEnd);
  if (!sharded.has(name)) return [statement.withClauseAfterName(clause)];
  sharded.delete(name);
  return [`${head}${DATABASE}.${name} ${clause}${tail}`, `${head}${DATABASE}.${localTable(name)} ${clause}${tail}`];
}
