import { errorMessage, redactCredentials, redactUrl } from "@flowmeter/platform";
import { CliError, EXIT, parseOptions } from "./cli-error.js";
import { parseWorkerUrl } from "./config.js";

export const QUERY_USAGE = `usage: flowmeter query [--format <Format>] "<SQL>"

Runs one read-only statement (SELECT, WITH, SHOW, DESCRIBE, EXISTS, EXPLAIN) over the flowmeter database through
the worker's /query, which owns embedded chDB. A FORMAT clause in the SQL wins over --format.

options:
  --format <Format>   a ClickHouse output format (default PrettyCompactMonoBlock; e.g. TabSeparatedWithNames,
                      JSONEachRow, CSVWithNames, Vertical)
environment:
  WORKER_URL          the worker (default http://127.0.0.1:$WORKER_METRICS_PORT, port 7072)
`;

/** `flowmeter query "SELECT …"`: runs a read-only query through the worker (which owns embedded chDB). */
export async function query(args: readonly string[], env: NodeJS.ProcessEnv): Promise<number> {
  const { options, positional, help } = parseOptions(args, ["format"], QUERY_USAGE);
  if (help) {
    process.stdout.write(QUERY_USAGE);
    return EXIT.ok;
  }
  const sql = positional.join(" ");
  if (sql.trim() === "") throw new CliError(`give the SQL to run\n${QUERY_USAGE}`, EXIT.usage);
  const base = parseWorkerUrl(env);
  const format = options.get("format");
  const url = `${base}/query${format === undefined ? "" : `?format=${encodeURIComponent(format)}`}`;
  const response = await fetch(url, { method: "POST", body: sql }).catch((error: unknown) => {
    throw new CliError(
      `the worker at ${redactUrl(base)} does not answer (${errorMessage(error instanceof Error && error.cause instanceof Error ? error.cause : error)}); is flowmeter running (npm start)?`,
    );
  });
  const text = await response.text();
  if (!response.ok) {
    let message = text;
    try {
      message = (JSON.parse(text) as { message: string }).message;
    } catch {
      // not the error shape: print it as it came
    }
    throw new CliError(`query refused (${response.status}): ${redactCredentials(message)}`);
  }
  process.stdout.write(text.endsWith("\n") || text === "" ? text : `${text}\n`);
  return EXIT.ok;
}
