import { describe, expect, it } from "vitest";
import { checkQueryAst, parseExplainAst } from "./query-guard.js";

// EXPLAIN AST text as chDB prints it.
const SUBQUERY_SETTINGS = `SelectWithUnionQuery (children 1)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      Subquery (children 1)
       SelectWithUnionQuery (children 1)
        ExpressionList (children 1)
         SelectQuery (children 3)
          ExpressionList (children 1)
           Asterisk
          TablesInSelectQuery (children 1)
           TablesInSelectQueryElement (children 1)
            TableExpression (children 1)
             TableIdentifier flowmeter.cli_invocations (alias c)
          Set
`;

const OUTFILE = `SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 1)
   ExpressionList (children 1)
    Literal 'x'
 Literal '/tmp/x'
`;

const FORMAT = `SelectWithUnionQuery (children 2)
 ExpressionList (children 1)
  SelectQuery (children 2)
   ExpressionList (children 1)
    Asterisk
   TablesInSelectQuery (children 1)
    TablesInSelectQueryElement (children 1)
     TableExpression (children 1)
      TableIdentifier command_stats
 Identifier Vertical
`;

describe("parseExplainAst", () => {
  it("builds the tree from the indentation", () => {
    const tree = parseExplainAst(FORMAT);
    expect(tree.kind).toBe("SelectWithUnionQuery");
    expect(tree.children.map((child) => `${child.kind} ${child.detail}`)).toEqual(["ExpressionList ", "Identifier Vertical"]);
  });

  it("refuses more than one statement", () => {
    expect(() => parseExplainAst(`${FORMAT}vm\n`)).toThrow("send exactly one statement");
  });
});

describe("checkQueryAst", () => {
  it("allows a SELECT over a flowmeter table with its own FORMAT", () => {
    expect(() => checkQueryAst(parseExplainAst(FORMAT))).not.toThrow();
  });

  it("refuses a SETTINGS clause anywhere, INTO OUTFILE, and statements other than reads", () => {
    expect(() => checkQueryAst(parseExplainAst(SUBQUERY_SETTINGS))).toThrow("SETTINGS clauses are not allowed");
    expect(() => checkQueryAst(parseExplainAst(OUTFILE))).toThrow("INTO OUTFILE is not allowed");
    expect(() => checkQueryAst(parseExplainAst("InsertQuery (children 1)\n Identifier t\n"))).toThrow("only read-only statements");
  });

  it("refuses tables of other databases, table functions but generators, and functions that read outside", () => {
    const select = (from: string): string =>
      `SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 2)\n   ExpressionList (children 1)\n    Asterisk\n   TablesInSelectQuery (children 1)\n    TablesInSelectQueryElement (children 1)\n     TableExpression (children 1)\n      ${from}\n`;
    expect(() => checkQueryAst(parseExplainAst(select("TableIdentifier system.users")))).toThrow("only tables of the flowmeter database");
    expect(() => checkQueryAst(parseExplainAst(select("Function url (children 1)\n       ExpressionList (children 1)\n        Literal 'http://x'")))).toThrow(
      "table function url() is not allowed",
    );
    expect(() =>
      checkQueryAst(parseExplainAst(select("Function numbers (children 1)\n       ExpressionList (children 1)\n        Literal UInt64_10"))),
    ).not.toThrow();
    const scalar =
      "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Function dictGetString (children 1)\n     ExpressionList (children 1)\n      Literal 'd'\n";
    expect(() => checkQueryAst(parseExplainAst(scalar))).toThrow("function dictgetstring() is not allowed");
  });
});
