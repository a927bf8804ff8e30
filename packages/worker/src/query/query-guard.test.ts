import { describe, expect, it } from "vitest";
import { isAllowedFunction } from "./query-functions.js";
import { checkQueryAst, checkQueryTokens, foreignDatabaseSet, lexSql, parseExplainAst } from "./query-guard.js";

const FOREIGN = foreignDatabaseSet(["INFORMATION_SCHEMA", "flowmeter"]);

/** EXPLAIN AST text as chDB prints it, for `SELECT <expression> FROM <table>`. */
function select(expression: string, from = "TableIdentifier flowmeter.t"): string {
  const indent = (text: string, spaces: number): string =>
    text
      .split("\n")
      .map((line) => " ".repeat(spaces) + line)
      .join("\n");
  return [
    "SelectWithUnionQuery (children 1)",
    " ExpressionList (children 1)",
    "  SelectQuery (children 2)",
    "   ExpressionList (children 1)",
    indent(expression, 4),
    "   TablesInSelectQuery (children 1)",
    "    TablesInSelectQueryElement (children 1)",
    "     TableExpression (children 1)",
    indent(from, 6),
    "",
  ].join("\n");
}

const checkAst = (text: string): void => checkQueryAst(parseExplainAst(text), FOREIGN);
const checkTokens = (sql: string): void => checkQueryTokens(lexSql(sql), FOREIGN);

describe("lexSql", () => {
  it("reads strings, quoted names, numbers and symbols, quotes doubled or escaped", () => {
    expect(lexSql("SELECT 'it\\'s', 'a''b', `x``y` AS \"p 95\", 0x1F, 1e-3, .5 FROM t")).toEqual([
      { kind: "word", text: "SELECT" },
      { kind: "string", text: "it\\'s" },
      { kind: "symbol", text: "," },
      { kind: "string", text: "a'b" },
      { kind: "symbol", text: "," },
      { kind: "quotedName", text: "x`y" },
      { kind: "word", text: "AS" },
      { kind: "quotedName", text: "p 95" },
      { kind: "symbol", text: "," },
      { kind: "number", text: "0x1F" },
      { kind: "symbol", text: "," },
      { kind: "number", text: "1e-3" },
      { kind: "symbol", text: "," },
      { kind: "number", text: ".5" },
      { kind: "word", text: "FROM" },
      { kind: "word", text: "t" },
    ]);
  });

  it("refuses what the formatted text never holds: comments, heredocs, parameters, ';', other characters", () => {
    for (const sql of [
      "SELECT 1 -- x",
      "SELECT 1 /* x */",
      "SELECT 1 # x",
      "SELECT $$x$$",
      "SELECT {p:String}",
      "SELECT 1; SELECT 2",
      "SELECT 1 \u00a0",
      "SELECT é",
    ]) {
      expect(() => lexSql(sql), sql).toThrow();
    }
    expect(() => lexSql("SELECT 'open")).toThrow("unterminated quote");
    expect(() => lexSql("SELECT 1 AS `open")).toThrow("unterminated quote");
  });

  it("keeps the text of a string whole, whatever it holds", () => {
    expect(lexSql("SELECT 'a -- b /* c */ `d` \"e\" ; {f}'").map((token) => token.kind)).toEqual(["word", "string"]);
  });
});

describe("checkQueryTokens", () => {
  it("allows plain quoted names, spaces and a few signs included", () => {
    expect(() => checkTokens("SELECT count() AS `p95 ms`, 1 AS `a-b%/c:d+e*f` FROM t AS `my t`")).not.toThrow();
  });

  it("refuses quoted names that could change how EXPLAIN AST reads: line breaks, escapes, brackets, dots, quotes", () => {
    for (const name of [
      "`x\\n y`",
      "`x\n y`",
      "`x\r`",
      "`x\\t`",
      "`x\\x0Ay`",
      "`a)b`",
      "`a(b`",
      "`a.b`",
      '`a"b`',
      "`a'b`",
      "`a``b`",
      "` a`",
      "`a\u2028b`",
      "`é`",
      '"x\\ny"',
    ]) {
      expect(() => checkTokens(`SELECT file('/etc/hostname') AS ${name}`), name).toThrow(/quoted names|escapes/);
    }
  });

  it("refuses any name of another database, in any position and quoting", () => {
    for (const sql of [
      "SELECT * FROM system.one",
      "SELECT * FROM `system`.`one`",
      "SELECT * FROM SYSTEM.one",
      "SELECT nullIn(0, system.one)",
      "SELECT 1 IN information_schema.tables",
      "SELECT * FROM default.t",
      "EXISTS TABLE system.users",
      "WITH system AS (SELECT 1) SELECT * FROM system",
    ]) {
      expect(() => checkTokens(sql), sql).toThrow("only tables of the flowmeter database");
    }
  });

  it("refuses SETTINGS and INTO OUTFILE wherever they are", () => {
    expect(() => checkTokens("SELECT * FROM (SELECT 1 SETTINGS readonly = 0)")).toThrow("SETTINGS clauses are not allowed");
    expect(() => checkTokens("SELECT 1 INTO OUTFILE '/tmp/x'")).toThrow("INTO OUTFILE is not allowed");
  });

  it("refuses statements other than reads", () => {
    for (const sql of [
      "INSERT INTO t VALUES (1)",
      "DROP TABLE t",
      "SET readonly = 0",
      "SYSTEM SHUTDOWN",
      "KILL QUERY WHERE 1",
      "OPTIMIZE TABLE t",
      "USE system",
    ]) {
      expect(() => checkTokens(sql), sql).toThrow();
    }
  });

  it("allows SHOW TABLES of flowmeter only, and no other SHOW", () => {
    for (const sql of [
      "SHOW TABLES",
      "SHOW TABLES FROM flowmeter",
      "SHOW TABLES IN flowmeter NOT LIKE 'x%' LIMIT 3",
      "SHOW TABLES ILIKE '%run%' FORMAT JSON",
    ]) {
      expect(() => checkTokens(sql), sql).not.toThrow();
    }
    for (const sql of [
      "SHOW DATABASES",
      "SHOW CHANGED SETTINGS ILIKE '%'",
      "SHOW CLUSTERS",
      "SHOW MERGES",
      "SHOW PROCESSLIST",
      "SHOW USERS",
      "SHOW GRANTS",
      "SHOW CREATE TABLE t",
      "SHOW DICTIONARIES",
      "SHOW FULL TABLES",
      "SHOW TEMPORARY TABLES",
      "SHOW TABLES FROM other",
      "SHOW TABLES LIKE x",
    ]) {
      expect(() => checkTokens(sql), sql).toThrow(/SHOW is limited|only tables|SETTINGS/);
    }
  });
});

describe("parseExplainAst", () => {
  it("builds the tree from the indentation, names without their aliases", () => {
    const tree = parseExplainAst(select("Function count (alias n) (children 1)\n ExpressionList"));
    expect(tree.kind).toBe("SelectWithUnionQuery");
    const expression = tree.children[0]?.children[0]?.children[0]?.children[0];
    expect(expression).toMatchObject({ kind: "Function", name: "count", children: [{ kind: "ExpressionList", name: "", children: [] }] });
  });

  it("refuses the split a line break in an alias makes (the attack of issue 20)", () => {
    const split = select("Function file (alias x\n y) (children 1)\n ExpressionList (children 1)\n  Literal '/etc/hostname'");
    expect(() => parseExplainAst(split)).toThrow("cannot check this statement");
  });

  it("refuses children counts that do not match, indentation jumps, unknown kinds and more than one statement", () => {
    expect(() => parseExplainAst(select("Function count (children 2)\n ExpressionList"))).toThrow("cannot check this statement");
    expect(() => parseExplainAst(select("Function count (children 1)\n   ExpressionList"))).toThrow("cannot check this statement");
    expect(() => parseExplainAst(select("Asterisk (children 1)\n ColumnsTransformerList (children 1)\n  ColumnsApplyTransformer"))).toThrow(
      "cannot check this statement",
    );
    expect(() => parseExplainAst(select("QueryParameter p:String"))).toThrow("cannot check this statement");
    expect(() => parseExplainAst(`${select("Asterisk")}Set\n`)).toThrow("cannot check this statement");
    expect(() => parseExplainAst(`${select("Asterisk")}SelectWithUnionQuery\n`)).toThrow("send exactly one statement");
  });

  it("refuses a function or table name that is not plain", () => {
    expect(() => parseExplainAst(select("Function my func (children 1)\n ExpressionList"))).toThrow("cannot check this statement");
    expect(() => parseExplainAst(select("Asterisk", "TableIdentifier a.b.c"))).toThrow("cannot check this statement");
  });
});

describe("checkQueryAst", () => {
  it("allows a SELECT over a flowmeter table with allowed functions, aliases and a FORMAT", () => {
    expect(() =>
      checkAst(
        select(
          "Function quantilesTDigestMergeIf (alias p 95) (children 2)\n ExpressionList (children 2)\n  Identifier t.x\n  Literal UInt64_1\n ExpressionList (children 1)\n  Literal Float64_0.5",
        ),
      ),
    ).not.toThrow();
    expect(() => checkAst(select("Asterisk", "TableIdentifier command_stats (alias c)"))).not.toThrow();
    expect(() => checkAst(select("Asterisk", "Function numbers (children 1)\n ExpressionList (children 1)\n  Literal UInt64_10"))).not.toThrow();
  });

  it("refuses functions outside the allow-list, in any position", () => {
    for (const name of [
      "file",
      "FILE",
      "url",
      "catboostEvaluate",
      "dictHas",
      "dictGetString",
      "joinGet",
      "nullIn",
      "notNullIn",
      "globalNullIn",
      "globalNotNullIn",
      "getServerSetting",
      "getSetting",
      "hasColumnInTable",
      "hostName",
      "currentUser",
      "editDistance",
      "levenshteinDistance",
      "addressToLine",
      "aiGenerate",
      "regionToName",
      "s3",
      "remote",
      "input",
    ]) {
      expect(() => checkAst(select(`Function ${name} (children 1)\n ExpressionList`)), name).toThrow(`function ${name}() is not allowed`);
    }
  });

  it("refuses table functions but the generators, tables of other databases and unknown EXPLAIN kinds", () => {
    for (const name of ["file", "url", "merge", "remote", "s3", "executable", "view", "zeros", "dictionary", "input", "mergeTreeIndex"]) {
      expect(() => checkAst(select("Asterisk", `Function ${name} (children 1)\n ExpressionList`)), name).toThrow(`table function ${name}() is not allowed`);
    }
    expect(() => checkAst(select("Asterisk", "TableIdentifier other.t"))).toThrow("only tables of the flowmeter database");
    expect(() => checkAst(select("Asterisk", "TableIdentifier information_schema.tables"))).toThrow("only tables of the flowmeter database");
    expect(() => checkAst(select("Identifier system.one"))).toThrow("only tables of the flowmeter database");
    expect(() => checkAst("Explain EXPLAIN TABLE OVERRIDE (children 1)\n Identifier t\n")).toThrow("EXPLAIN is allowed for SELECT statements only");
    expect(() => checkAst("InsertQuery (children 1)\n Identifier t\n")).toThrow("cannot check this statement");
  });

  it("refuses INTO OUTFILE (a literal under the root)", () => {
    const outfile =
      "SelectWithUnionQuery (children 2)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Literal 'x'\n Literal '/tmp/x'\n";
    expect(() => checkAst(outfile)).toThrow("INTO OUTFILE is not allowed");
  });
});

describe("isAllowedFunction", () => {
  it("allows the dashboard families, aliases, any case, and aggregates with combinators", () => {
    for (const name of [
      "count",
      "COUNT",
      "countIf",
      "countDistinct",
      "uniqExactIf",
      "quantilesTDigestMergeIf",
      "sumMap",
      "avgOrNullIf",
      "argMax",
      "lagInFrame",
      "row_number",
      "toStartOfInterval",
      "formatDateTime",
      "concat",
      "lower",
      "arrayMap",
      "lambda",
      "if",
      "multiIf",
      "toInt64",
      "CAST",
      "greatest",
      "round",
      "plus",
      "in",
      "notIn",
      "like",
      "JSONExtractString",
      "median",
    ]) {
      expect(isAllowedFunction(name), name).toBe(true);
    }
  });

  it("refuses the rest, combinator-looking names included", () => {
    for (const name of [
      "file",
      "fileIf",
      "nullIn",
      "nullInIf",
      "dictGetOrNull",
      "editDistanceIf",
      "getServerSetting",
      "hasColumnInTable",
      "sleepEachRow",
      "State",
      "joinGetOrNull",
      "catboostEvaluate",
    ]) {
      expect(isAllowedFunction(name), name).toBe(false);
    }
  });
});
