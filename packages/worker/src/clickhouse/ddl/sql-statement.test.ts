import { describe, expect, it } from "vitest";
import { SqlStatement } from "./sql-statement.js";

const read = (sql: string) => new SqlStatement(sql, "flowmeter", (reason) => new Error(`test.sql: ${reason}`));

describe("SqlStatement", () => {
  it("drops comments, blank lines and the final semicolon, and knows each lexeme's kind and depth", () => {
    const statement = read(
      "-- a comment\nCREATE TABLE flowmeter.t /* inline */ (\n\n  a String DEFAULT 'x;(', `b c` UInt8\n) ENGINE = MergeTree ORDER BY a;\n",
    );
    expect(statement.sql).toBe("CREATE TABLE flowmeter.t  (\n  a String DEFAULT 'x;(', `b c` UInt8\n) ENGINE = MergeTree ORDER BY a");
    expect(statement.leadingWords(5)).toEqual(["CREATE", "TABLE", "flowmeter"]);
    expect(statement.objectName()).toEqual({ name: "t" });
    const columns = statement.lexemes[statement.nameEndIndex];
    expect(columns?.is("(")).toBe(true);
    expect(statement.closing(columns?.index ?? 0).depth).toBe(0);
    expect(statement.lexemes.filter((lexeme) => lexeme.depth === 1).map((lexeme) => [lexeme.kind, lexeme.text])).toEqual([
      ["word", "a"],
      ["word", "String"],
      ["word", "DEFAULT"],
      ["string", "'x;('"],
      ["symbol", ","],
      ["identifier", "`b c`"],
      ["word", "UInt8"],
    ]);
    expect(statement.splitTopLevel((columns?.index ?? 0) + 1, statement.closing(columns?.index ?? 0).index)).toEqual([
      { text: "a String DEFAULT 'x;('" },
      { text: "`b c` UInt8" },
    ]);
    expect(statement.topLevelWord("ORDER", 0)?.text).toBe("ORDER");
  });

  it("finds <database>.<name> references written without spaces", () => {
    const statement = read("CREATE VIEW flowmeter.v AS SELECT * FROM flowmeter.a JOIN flowmeter . b USING (x)");
    expect([...statement.qualifiedReferences(0)].map((reference) => reference.name)).toEqual(["v", "a"]);
  });

  it("fails with the caller's error on unbalanced parentheses or an unqualified name", () => {
    expect(() => read("CREATE TABLE flowmeter.t (a String")).toThrow("test.sql: unbalanced parentheses or an unterminated string");
    expect(() => read("DROP TABLE t").objectName()).toThrow('test.sql: expected flowmeter.<name> at "t"');
  });
});
