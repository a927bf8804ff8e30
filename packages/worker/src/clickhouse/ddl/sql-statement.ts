/**
 * A lexer for the single-node migrations' SQL (infra/clickhouse/migrations): one statement cut into words, strings,
 * identifiers, numbers and symbols, each knowing its parenthesis depth and where it sits in the text, so the cluster
 * rules (cluster-ddl.ts) can rewrite a statement by splicing its text. It knows no ClickHouse rules of its own.
 */

export interface Lexeme {
  kind: "word" | "string" | "identifier" | "number" | "symbol";
  text: string;
  start: number;
  end: number;
  /** Parentheses open around it (for a parenthesis, around the pair). */
  depth: number;
  index: number;
  is(symbol: string): boolean;
  isWord(word: string): boolean;
}

const TOKEN =
  /(?<space>\s+)|(?<comment>--[^\n]*|\/\*[\s\S]*?\*\/)|(?<string>'(?:[^'\\]|\\[\s\S]|'')*')|(?<identifier>`(?:[^`\\]|\\[\s\S])*`|"(?:[^"\\]|\\[\s\S])*")|(?<word>[A-Za-z_][A-Za-z0-9_$]*)|(?<number>\d[\w.]*)|(?<symbol>[\s\S])/y;

function tokens(sql: string): { kind: string; text: string }[] {
  const found: { kind: string; text: string }[] = [];
  TOKEN.lastIndex = 0;
  for (let match = TOKEN.exec(sql); match !== null && match[0] !== ""; match = TOKEN.exec(sql)) {
    const kind = Object.entries(match.groups ?? {}).find(([, text]) => text !== undefined)?.[0] ?? "symbol";
    found.push({ kind, text: match[0] });
  }
  return found;
}

/**
 * One statement without its comments (blank lines left by them dropped), cut into lexemes, with the reads the cluster
 * rules (cluster-ddl.ts) make of it: its object name, `<database>.<name>` references, parentheses, top-level words
 * and commas. `problem` makes the error `fail` throws (it names the file and what was wrong).
 */
export class SqlStatement {
  readonly sql: string;
  readonly lexemes: Lexeme[] = [];
  /** Where the statement's object name (`flowmeter.x`) starts and ends, once objectName() has read it. */
  nameStart = 0;
  nameEnd = 0;
  nameEndIndex = 0;

  constructor(
    source: string,
    private readonly database: string,
    private readonly problem: (reason: string) => Error,
  ) {
    const withoutComments = tokens(source)
      .filter((token) => token.kind !== "comment")
      .map((token) => token.text)
      .join("");
    this.sql = withoutComments
      .split("\n")
      .map((line) => line.trimEnd())
      .filter((line) => line !== "")
      .join("\n")
      .trim()
      .replace(/;$/, "")
      .trimEnd();
    let offset = 0;
    let depth = 0;
    for (const { kind, text } of tokens(this.sql)) {
      const start = offset;
      offset += text.length;
      if (kind === "space") continue;
      if (text === ")") depth -= 1;
      this.lexemes.push({
        kind: kind as Lexeme["kind"],
        text,
        start,
        end: offset,
        depth,
        index: this.lexemes.length,
        is: (symbol) => kind === "symbol" && text === symbol,
        isWord: (word) => kind === "word" && text.toUpperCase() === word,
      });
      if (text === "(") depth += 1;
    }
    if (depth !== 0 || offset !== this.sql.length) this.fail("unbalanced parentheses or an unterminated string");
  }

  fail(reason: string): never {
    throw this.problem(reason);
  }

  /** The words the statement starts with (at most `count`), as written. */
  leadingWords(count: number): string[] {
    const words: string[] = [];
    for (const lexeme of this.lexemes.slice(0, count)) {
      if (lexeme.kind !== "word") break;
      words.push(lexeme.text);
    }
    return words;
  }

  next(index: number): Lexeme | undefined {
    return this.lexemes[index];
  }

  /** The object the statement creates, alters or drops: the first name after its keywords and IF [NOT] EXISTS. */
  objectName(): { name: string } {
    let index = 0;
    while (index < this.lexemes.length) {
      const lexeme = this.lexemes[index];
      if (!lexeme || lexeme.kind !== "word") break;
      const upper = lexeme.text.toUpperCase();
      if (!["CREATE", "OR", "REPLACE", "DATABASE", "TABLE", "MATERIALIZED", "VIEW", "ALTER", "DROP", "IF", "NOT", "EXISTS"].includes(upper)) break;
      index += 1;
    }
    if (this.lexemes[0]?.isWord("CREATE") && this.lexemes[1]?.isWord("DATABASE")) {
      const lexeme = this.lexemes[index];
      if (lexeme?.kind !== "word") this.fail("CREATE DATABASE without a name");
      this.nameStart = lexeme.start;
      this.nameEnd = lexeme.end;
      this.nameEndIndex = index + 1;
      return { name: lexeme.text };
    }
    const name = this.qualifiedNameAt(index);
    this.nameStart = name.start;
    this.nameEnd = name.end;
    this.nameEndIndex = name.endIndex;
    return { name: name.name };
  }

  /** `<database>.<name>` at `index`; anything else fails (migrations name their objects with the database). */
  qualifiedNameAt(index: number): { name: string; start: number; end: number; endIndex: number } {
    const database = this.lexemes[index];
    const dot = this.lexemes[index + 1];
    const name = this.lexemes[index + 2];
    if (!database?.isWord(this.database.toUpperCase()) || !dot?.is(".") || name?.kind !== "word") {
      this.fail(`expected ${this.database}.<name> at "${this.sql.slice(database?.start ?? 0, (database?.start ?? 0) + 40)}"`);
    }
    return { name: name.text, start: database.start, end: name.end, endIndex: index + 3 };
  }

  /** Every `<database>.<name>` from `index` on. */
  *qualifiedReferences(index: number): Generator<{ name: string; start: number; end: number }> {
    for (let at = index; at + 2 < this.lexemes.length; at += 1) {
      const [database, dot, name] = [this.lexemes[at], this.lexemes[at + 1], this.lexemes[at + 2]];
      if (database?.isWord(this.database.toUpperCase()) && dot?.is(".") && name?.kind === "word" && dot.start === database.end && name.start === dot.end) {
        yield { name: name.text, start: database.start, end: name.end };
        at += 2;
      }
    }
  }

  withClauseAfterName(clause: string): string {
    this.objectName();
    return `${this.sql.slice(0, this.nameEnd)} ${clause}${this.sql.slice(this.nameEnd)}`;
  }

  /** The parenthesis closing the one at `index`. */
  closing(index: number): Lexeme {
    const open = this.lexemes[index];
    const close = this.lexemes.slice(index + 1).find((lexeme) => lexeme.is(")") && lexeme.depth === open?.depth);
    if (!open || !close) this.fail("unbalanced parentheses");
    return close;
  }

  /** The first `word` outside parentheses from `index` on. */
  topLevelWord(word: string, index: number): Lexeme | undefined {
    return this.lexemes.slice(index).find((lexeme) => lexeme.depth === 0 && lexeme.isWord(word));
  }

  /** The source text of lexemes [from, to) cut at the commas at the depth of `from`, each piece trimmed. */
  splitTopLevel(from: number, to: number): { text: string }[] {
    const depth = this.lexemes[from]?.depth ?? 0;
    const pieces: { text: string }[] = [];
    let start = from;
    for (let index = from; index <= to; index += 1) {
      const lexeme = this.lexemes[index];
      if (index === to || (lexeme?.is(",") && lexeme.depth === depth)) {
        const first = this.lexemes[start];
        const last = this.lexemes[index - 1];
        if (first && last && index > start) pieces.push({ text: this.sql.slice(first.start, last.end) });
        start = index + 1;
      }
    }
    return pieces;
  }
}
