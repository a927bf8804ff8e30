/**
 * What /query lets through. It fails closed: a statement is run only when every part of it is recognised and
 * allowed; anything the guard cannot classify is refused.
 *
 * It reads two things ClickHouse produced, never the client's text: the statement as ClickHouse formats it
 * (`formatQuerySingleLine`: comments gone, one statement, identifiers back-quoted where needed) and ClickHouse's parse
 * of that text (`EXPLAIN AST`, one node per line). The AST text is only unambiguous while no name in the statement
 * can contain a line break or the AST's own punctuation (an alias `x\n y` once split a node in two and hid
 * `file()`), so:
 * 1. the formatted text is lexed (`lexSql`) and every back-quoted name must be plain (letters, digits, `_`, space and
 *    a few signs, no quote, bracket, dot or line break); no name may be another database's (`system`, …); no
 *    SETTINGS, INTO OUTFILE, query parameters or heredocs; SHOW must read `SHOW TABLES [FROM flowmeter] …`;
 * 2. the AST is parsed strictly (`parseExplainAst`): every line a known node kind with a well-formed name, and every
 *    node's `(children N)` matching what follows it;
 * 3. the tree is checked against allow-lists (`checkQueryAst`): node kinds, functions (query-functions.ts), table
 *    functions, tables only of `flowmeter`.
 * The reader sessions run read-only with limits a statement cannot change (query-engine.ts): the guard is the wall
 * for what readonly does not cover (the file() function, other databases, server state), the engine the wall for
 * writes and settings.
 */
import { ApiError } from "@flowmeter/shared";
import { ALLOWED_TABLE_FUNCTIONS, isAllowedFunction } from "./query-functions.js";

export const QUERY_DATABASE = "flowmeter";

/** Databases every ClickHouse has besides ours; the engine adds the ones it finds (`system.databases`). */
export const KNOWN_FOREIGN_DATABASES: readonly string[] = ["system", "information_schema", "default", "_temporary_and_external_tables"];

function refuse(message: string): never {
  throw new ApiError("INVALID_PARAMS", message);
}

// ---------------------------------------------------------------------------------------------------------------
// 1. The formatted text, lexed.

export type TokenKind = "word" | "quotedName" | "string" | "number" | "symbol";

export interface Token {
  kind: TokenKind;
  /** A word, number or symbol as written; a quoted name or string without its quotes (escapes kept as written). */
  text: string;
}

const SYMBOLS = new Set(["(", ")", "[", "]", ",", ".", "+", "-", "*", "/", "%", "=", "<", ">", "!", "|", ":", "?", "^", "&", "~", "@"]);
const NUMBER = /^(?:0[xX][0-9a-fA-F]+|0[bB][01]+|(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)/;
const WORD = /^[A-Za-z_][A-Za-z0-9_]*/;

/** The body of a quoted token starting at `start` (the opening quote), the index after its close, whether it holds `\`. */
function readQuoted(sql: string, start: number): { text: string; end: number; escaped: boolean } {
  const quote = sql[start];
  let text = "";
  let escaped = false;
  let i = start + 1;
  while (i < sql.length) {
    const char = sql[i] as string;
    if (char === "\\") {
      // What an escape stands for is not decoded: a quoted name holding one is refused, a string is never interpreted.
      escaped = true;
      text += sql.slice(i, i + 2);
      i += 2;
    } else if (char === quote) {
      if (sql[i + 1] !== quote) return { text, end: i + 1, escaped };
      text += quote;
      i += 2;
    } else {
      text += char;
      i += 1;
    }
  }
  refuse("the statement has an unterminated quote");
}

/**
 * Tokens of a statement as ClickHouse formats it. Anything it does not expect in that text (comments, heredocs,
 * query parameters, characters outside the SQL alphabet, `;`) is refused rather than guessed at.
 */
export function lexSql(sql: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < sql.length) {
    const char = sql[i] as string;
    const rest = sql.slice(i, i + 256);
    if (/[ \t\n\v\f\r]/.test(char)) {
      i += 1;
    } else if (char === "'" || char === "`" || char === '"') {
      const { text, end, escaped } = readQuoted(sql, i);
      if (char !== "'" && escaped) refuse("quoted names with escapes (\\…) are not allowed");
      tokens.push({ kind: char === "'" ? "string" : "quotedName", text });
      i = end;
    } else if (rest.startsWith("--") || rest.startsWith("/*") || char === "#") {
      refuse("comments are not expected in the formatted statement");
    } else if (NUMBER.test(rest)) {
      const text = (NUMBER.exec(rest) as RegExpExecArray)[0];
      tokens.push({ kind: "number", text });
      i += text.length;
    } else if (WORD.test(rest)) {
      const text = (WORD.exec(rest) as RegExpExecArray)[0];
      tokens.push({ kind: "word", text });
      i += text.length;
    } else if (SYMBOLS.has(char)) {
      tokens.push({ kind: "symbol", text: char });
      i += 1;
    } else {
      refuse(`the statement has a character /query does not accept outside quotes: ${JSON.stringify(char)}`);
    }
  }
  return tokens;
}

/**
 * What a quoted name may hold: enough for readable aliases (`AS "p95 ms"`), nothing EXPLAIN AST uses as punctuation
 * (brackets, dots, quotes, line breaks).
 */
const PLAIN_NAME = /^[A-Za-z0-9_][A-Za-z0-9_ %/:+*-]*$/;
const REFUSED_WORDS = new Set(["settings", "into", "outfile"]);
const ROOT_WORDS = new Set(["select", "with", "show", "describe", "desc", "exists", "explain"]);

function isName(token: Token | undefined): token is Token {
  return token?.kind === "word" || token?.kind === "quotedName";
}

/** `SHOW TABLES [FROM|IN flowmeter] [[NOT] LIKE|ILIKE 'pattern'] [LIMIT n] [FORMAT name]`, nothing else. */
function checkShowTables(tokens: Token[]): void {
  const lower = tokens.map((token) => (token.kind === "word" ? token.text.toLowerCase() : token.text));
  let i = 2;
  const next = (...expected: string[]): boolean => {
    if (tokens[i]?.kind !== "word" || !expected.includes(lower[i] as string)) return false;
    i += 1;
    return true;
  };
  const shown = `SHOW is limited to SHOW TABLES [FROM ${QUERY_DATABASE}] [LIKE 'pattern'] [LIMIT n]`;
  if (lower[0] !== "show" || lower[1] !== "tables") refuse(shown);
  if (next("from", "in")) {
    const database = tokens[i];
    if (!isName(database)) refuse(shown);
    if (database.text !== QUERY_DATABASE) refuse(`only tables of the ${QUERY_DATABASE} database can be read (not ${database.text.slice(0, 100)})`);
    i += 1;
  }
  next("not");
  if (next("like", "ilike")) {
    if (tokens[i]?.kind !== "string") refuse(shown);
    i += 1;
  }
  if (next("limit")) {
    if (tokens[i]?.kind !== "number") refuse(shown);
    i += 1;
  }
  if (next("format")) {
    if (!isName(tokens[i])) refuse(shown);
    i += 1;
  }
  if (i !== tokens.length) refuse(shown);
}

/** The checks on the formatted text: what must hold before its EXPLAIN AST can be read line by line. */
export function checkQueryTokens(tokens: Token[], foreignDatabases: ReadonlySet<string>): void {
  const first = tokens[0];
  if (first === undefined) refuse("send one statement");
  if (!(first.kind === "word" && ROOT_WORDS.has(first.text.toLowerCase())) && first.text !== "(") {
    refuse("only read-only statements (SELECT, WITH, SHOW TABLES, DESCRIBE, EXISTS, EXPLAIN) are allowed");
  }
  if (first.text.toLowerCase() === "show") checkShowTables(tokens);
  for (const token of tokens) {
    if (token.kind === "quotedName" && !PLAIN_NAME.test(token.text)) {
      refuse(`the name ${JSON.stringify(token.text.slice(0, 100))} is not allowed: quoted names may hold letters, digits, spaces and _ % / : + * - only`);
    }
    if (!isName(token)) continue;
    const lower = token.text.toLowerCase();
    if (foreignDatabases.has(lower)) refuse(`only tables of the ${QUERY_DATABASE} database can be read (not ${token.text})`);
    if (token.kind === "word" && REFUSED_WORDS.has(lower)) {
      refuse(
        lower === "settings" ? "SETTINGS clauses are not allowed: /query runs with the worker's limits (see the worker README)" : "INTO OUTFILE is not allowed",
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------
// 2. EXPLAIN AST, parsed strictly.

export interface AstNode {
  /** `SelectWithUnionQuery`, `Function`, `TableIdentifier`, … */
  kind: string;
  /** A function's or identifier's name (no alias), a literal, EXPLAIN's kind; "" when the node has none. */
  name: string;
  children: AstNode[];
}

/** Node kinds a read-only statement is made of; any other (Set, QueryParameter, APPLY, …) is refused. */
const ALLOWED_KINDS: ReadonlySet<string> = new Set([
  "SelectWithUnionQuery",
  "SelectQuery",
  "SelectIntersectExceptQuery",
  "ExpressionList",
  "Function",
  "Identifier",
  "Literal",
  "Asterisk",
  "QualifiedAsterisk",
  "ColumnsRegexpMatcher",
  "ColumnsListMatcher",
  "QualifiedColumnsRegexpMatcher",
  "QualifiedColumnsListMatcher",
  "ColumnsTransformerList",
  "ColumnsExceptTransformer",
  "ColumnsReplaceTransformer",
  "ColumnsReplaceTransformer::Replacement",
  "TablesInSelectQuery",
  "TablesInSelectQueryElement",
  "TableExpression",
  "TableIdentifier",
  "TableJoin",
  "ArrayJoin",
  "Subquery",
  "OrderByElement",
  "InterpolateElement",
  "WithElement",
  "WindowDefinition",
  "WindowListElement",
  "SampleRatio",
  "Explain",
  "DescribeQuery",
  "ExistsTableQuery",
  "ShowTables",
]);

const ROOT_KINDS: ReadonlySet<string> = new Set(["SelectWithUnionQuery", "DescribeQuery", "ShowTables", "ExistsTableQuery", "Explain"]);
const EXPLAIN_KINDS: ReadonlySet<string> = new Set([
  "EXPLAIN",
  "EXPLAIN PLAN",
  "EXPLAIN PIPELINE",
  "EXPLAIN SYNTAX",
  "EXPLAIN AST",
  "EXPLAIN ESTIMATE",
  "EXPLAIN QUERY TREE",
]);

const PLAIN = "[A-Za-z0-9_][A-Za-z0-9_ %/:+*-]*";
const ALIAS = `(?: \\(alias ${PLAIN}\\))?`;
// The detail is optional and lazy, so ` (children N)` is read as the count, never as part of the detail.
const LINE = /^( *)([A-Za-z]+(?:::[A-Za-z]+)?)(?: (.*?))??(?: \(children (\d+)\))?$/;
/** How each kind's text after the kind must look (the name is group 1); kinds not listed carry nothing but an alias. */
const DETAIL: Record<string, RegExp> = {
  Function: new RegExp(`^([A-Za-z_][A-Za-z0-9_]*)${ALIAS}$`),
  Identifier: new RegExp(`^(${PLAIN}(?:\\.${PLAIN})*)${ALIAS}$`),
  TableIdentifier: new RegExp(`^(${PLAIN}(?:\\.${PLAIN})?)${ALIAS}$`),
  // A literal is printed quoted and escaped by ClickHouse; it is never interpreted here.
  Literal: /^(.+)$/,
  Explain: /^(EXPLAIN(?: [A-Z]+)*)$/,
  ExistsTableQuery: new RegExp(`^((?:${PLAIN})? ${PLAIN})$`),
  SampleRatio: /^([0-9 /]+)$/,
};
const NO_DETAIL = new RegExp(`^()(?:\\(alias ${PLAIN}\\))?$`);

/** Parses the text of `EXPLAIN AST` into a tree; refuses a line or a shape it does not recognise. */
export function parseExplainAst(text: string): AstNode {
  const root: AstNode = { kind: "", name: "", children: [] };
  const declared = new Map<AstNode, number>();
  const stack: Array<{ depth: number; node: AstNode }> = [{ depth: -1, node: root }];
  for (const line of text.replace(/\n$/, "").split("\n")) {
    const parsed = LINE.exec(line);
    const kind = parsed?.[2];
    if (parsed === null || kind === undefined || !ALLOWED_KINDS.has(kind)) {
      refuse(`/query cannot check this statement (EXPLAIN AST line ${JSON.stringify(line.trim().slice(0, 100))})`);
    }
    const detail = (DETAIL[kind] ?? NO_DETAIL).exec(parsed[3] ?? "");
    if (detail === null) refuse(`/query cannot check this statement (EXPLAIN AST line ${JSON.stringify(line.trim().slice(0, 100))})`);
    const depth = (parsed[1] as string).length;
    while ((stack.at(-1) as { depth: number }).depth >= depth) stack.pop();
    const parent = stack.at(-1) as { depth: number; node: AstNode };
    if (depth !== parent.depth + 1) refuse("/query cannot check this statement (EXPLAIN AST indentation)");
    const node: AstNode = { kind, name: detail[1] ?? "", children: [] };
    declared.set(node, Number(parsed[4] ?? 0));
    parent.node.children.push(node);
    stack.push({ depth, node });
  }
  for (const [node, count] of declared) {
    if (node.children.length !== count) refuse(`/query cannot check this statement (EXPLAIN AST ${node.kind} children)`);
  }
  const [statement, ...rest] = root.children;
  if (statement === undefined || rest.length > 0) refuse("send exactly one statement");
  return statement;
}

// ---------------------------------------------------------------------------------------------------------------
// 3. The tree, checked.

function checkTableName(name: string, foreignDatabases: ReadonlySet<string>): void {
  const parts = name.split(".");
  // An unqualified name is a table of the reader's current database (flowmeter) or a WITH alias.
  if ((parts.length > 1 && parts[0] !== QUERY_DATABASE) || foreignDatabases.has((parts[0] as string).toLowerCase())) {
    refuse(`only tables of the ${QUERY_DATABASE} database can be read (not ${name.slice(0, 100)})`);
  }
}

function checkNode(node: AstNode, parent: AstNode | undefined, foreignDatabases: ReadonlySet<string>): void {
  switch (node.kind) {
    case "TableIdentifier":
      checkTableName(node.name, foreignDatabases);
      break;
    case "Identifier": {
      // `x IN db.table` names a table as an identifier; a column's qualifier is a table alias, never a database.
      const first = node.name.split(".")[0] as string;
      if (foreignDatabases.has(first.toLowerCase())) refuse(`only tables of the ${QUERY_DATABASE} database can be read (not ${node.name.slice(0, 100)})`);
      break;
    }
    case "Function": {
      if (parent?.kind === "TableExpression") {
        if (!ALLOWED_TABLE_FUNCTIONS.has(node.name)) {
          refuse(
            `table function ${node.name}() is not allowed: /query reads the ${QUERY_DATABASE} database and the generators ${[...ALLOWED_TABLE_FUNCTIONS].join(", ")}`,
          );
        }
      } else if (!isAllowedFunction(node.name)) {
        refuse(
          `function ${node.name}() is not allowed: /query allows the aggregate, date, string, array, maths, conditional and conversion functions (see the worker README)`,
        );
      }
      break;
    }
    case "Explain":
      if (!EXPLAIN_KINDS.has(node.name) || node.children.length !== 1 || node.children[0]?.kind !== "SelectWithUnionQuery") {
        refuse("EXPLAIN is allowed for SELECT statements only (PLAN, PIPELINE, SYNTAX, AST, ESTIMATE, QUERY TREE)");
      }
      break;
    // SHOW's shape is checked on the text (checkShowTables): its AST has the database and the FORMAT as identifiers.
    case "ExistsTableQuery":
    case "ShowTables":
      for (const child of node.children) {
        if (child.kind !== "Identifier") refuse("/query cannot check this statement");
      }
      if (node.kind === "ExistsTableQuery" && node.children.length === 2)
        checkTableName(`${node.children[0]?.name}.${node.children[1]?.name}`, foreignDatabases);
      break;
  }
  for (const child of node.children) checkNode(child, node, foreignDatabases);
}

/** Throws ApiError INVALID_PARAMS, naming the reason, unless the parsed statement is one /query may run. */
export function checkQueryAst(statement: AstNode, foreignDatabases: ReadonlySet<string>): void {
  if (!ROOT_KINDS.has(statement.kind)) refuse("only read-only statements (SELECT, WITH, SHOW TABLES, DESCRIBE, EXISTS, EXPLAIN) are allowed");
  // The statement's own output clauses hang off its root: a Literal there is INTO OUTFILE's file name.
  if (statement.children.some((child) => child.kind === "Literal")) refuse("INTO OUTFILE is not allowed");
  checkNode(statement, undefined, foreignDatabases);
}

/** The foreign-database set the checks take: the well-known names and those the engine lists, lower-cased. */
export function foreignDatabaseSet(engineDatabases: readonly string[]): ReadonlySet<string> {
  return new Set([...KNOWN_FOREIGN_DATABASES, ...engineDatabases].map((name) => name.toLowerCase()).filter((name) => name !== QUERY_DATABASE));
}
