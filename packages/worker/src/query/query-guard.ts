/**
 * What /query lets through, decided on ClickHouse's own parse of the statement (EXPLAIN AST), never on the SQL text:
 * comments, spacing and quoting cannot hide anything from it.
 *
 * The reader connection runs with readonly = 1 as a session setting (no writes, no SETTINGS changes at the top
 * level), but chDB cannot enforce the rest: a subquery's SETTINGS clause lifts readonly, the file() function and the
 * table functions reach files and the network, INTO OUTFILE writes files in-process. So the statement must be a
 * SELECT (or DESCRIBE, SHOW, EXISTS, EXPLAIN) whose tables are flowmeter's, with no SETTINGS clause, no INTO
 * OUTFILE, no table function but pure generators, and no function that reads outside the database.
 */
import { ApiError } from "@flowmeter/shared";

export interface AstNode {
  /** `SelectWithUnionQuery`, `Function`, `TableIdentifier`, … */
  kind: string;
  /** The rest of the node's line: a function's or table's name, a literal. */
  detail: string;
  children: AstNode[];
}

const ROOT_KINDS: ReadonlySet<string> = new Set(["SelectWithUnionQuery", "DescribeQuery", "ShowTables", "ExistsTableQuery", "Explain"]);

/** Table functions that only generate values in memory; every other one (file, url, remote, s3, merge, …) is refused. */
const GENERATOR_TABLE_FUNCTIONS: ReadonlySet<string> = new Set([
  "numbers",
  "numbers_mt",
  "zeros",
  "zeros_mt",
  "generate_series",
  "generateseries",
  "values",
  "one",
]);

/** Functions that read outside the database: files, models on disk, dictionaries, Join tables. */
const OUTSIDE_READING_FUNCTION =
  /^(file|catboostevaluate|modelevaluate|naivebayesclassifier|joinget.*|dictget.*|dicthas|dictisin|dictgethierarchy|dictgetchildren|dictgetdescendants)$/;

export const QUERY_DATABASE = "flowmeter";

/** Parses the text of `EXPLAIN AST` (one node per line, one space of indent per level) into a tree. */
export function parseExplainAst(text: string): AstNode {
  const root: AstNode = { kind: "", detail: "", children: [] };
  const stack: Array<{ depth: number; node: AstNode }> = [{ depth: -1, node: root }];
  for (const line of text.split("\n")) {
    if (line.trim() === "") continue;
    const depth = line.length - line.trimStart().length;
    const body = line.trim().replace(/ \(children \d+\)$/, "");
    const space = body.indexOf(" ");
    const node: AstNode = { kind: space < 0 ? body : body.slice(0, space), detail: space < 0 ? "" : body.slice(space + 1), children: [] };
    while ((stack.at(-1)?.depth ?? -1) >= depth) stack.pop();
    stack.at(-1)?.node.children.push(node);
    stack.push({ depth, node });
  }
  const [statement, ...rest] = root.children;
  if (statement === undefined || rest.length > 0) throw new ApiError("INVALID_PARAMS", "send exactly one statement");
  return statement;
}

function refuse(message: string): never {
  throw new ApiError("INVALID_PARAMS", message);
}

/** `TableIdentifier flowmeter.t (alias a)` → `flowmeter.t`. */
function nameOf(node: AstNode): string {
  return node.detail.replace(/ \(alias [^)]*\)$/, "").trim();
}

function checkTableName(name: string): void {
  const dot = name.indexOf(".");
  // An unqualified name is a table of the reader's current database (flowmeter) or a WITH alias.
  if (dot >= 0 && name.slice(0, dot).replace(/`/g, "") !== QUERY_DATABASE) {
    refuse(`only tables of the ${QUERY_DATABASE} database can be read (not ${name.slice(0, 100)})`);
  }
}

function checkNode(node: AstNode, parent: AstNode | undefined): void {
  switch (node.kind) {
    case "Set":
      refuse("SETTINGS clauses are not allowed: /query runs with the worker's limits (see the worker README)");
    case "TableIdentifier":
      checkTableName(nameOf(node));
      break;
    case "Function": {
      const name = nameOf(node).toLowerCase();
      if (parent?.kind === "TableExpression" || parent?.kind === "DescribeQuery") {
        if (!GENERATOR_TABLE_FUNCTIONS.has(name)) refuse(`table function ${name}() is not allowed: /query reads the ${QUERY_DATABASE} database only`);
      } else if (OUTSIDE_READING_FUNCTION.test(name)) {
        refuse(`function ${name}() is not allowed: /query reads the ${QUERY_DATABASE} database only`);
      }
      // `x IN db.table` names a table as an identifier.
      if (/^(global)?(not)?in$/.test(name)) {
        const operand = node.children[0]?.children[1];
        if (operand?.kind === "Identifier") checkTableName(nameOf(operand));
      }
      break;
    }
    case "ExistsTableQuery": {
      const [database, table] = node.children;
      if (database !== undefined && table !== undefined) checkTableName(`${nameOf(database)}.${nameOf(table)}`);
      break;
    }
    case "ShowTables": {
      const database = node.children.find((child) => child.kind === "Identifier");
      if (database !== undefined) checkTableName(`${nameOf(database)}.tables`);
      break;
    }
  }
  for (const child of node.children) checkNode(child, node);
}

/** Throws ApiError INVALID_PARAMS, naming the reason, unless the parsed statement is one /query may run. */
export function checkQueryAst(statement: AstNode): void {
  if (!ROOT_KINDS.has(statement.kind)) {
    refuse("only read-only statements (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN) are allowed");
  }
  // The statement's own output clauses hang off its root: a Literal there is INTO OUTFILE's file name.
  if (statement.children.some((child) => child.kind === "Literal")) refuse("INTO OUTFILE is not allowed");
  checkNode(statement, undefined);
}
