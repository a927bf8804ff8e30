#!/usr/bin/env node
import { ConfigError } from "@flowmeter/shared";
import { CliError } from "./cli-error.js";
import { query } from "./query.js";
import { run } from "./run.js";
import { start } from "./start.js";

const USAGE = `usage: flowmeter <command>

  start            run ingest, worker and runner on the embedded default (what \`npm start\` does)
  run <file>       submit a workflow run to the runners and follow it live; exits 0 succeeded, 1 failed, 2 cancelled
  query "<SQL>"    run a read-only query against flowmeter's ClickHouse through the worker
  bench            measure the pipeline end to end (what \`npm run bench\` does)
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case "start":
      return start(process.env);
    case "run":
      return run(rest, process.env);
    case "query":
      if (rest.length === 0) break;
      return query(rest.join(" "), process.env);
    case "bench": {
      const { bench } = await import("./bench.js");
      return bench(process.env);
    }
    default:
      break;
  }
  process.stderr.write(USAGE);
  return command === undefined || command === "help" || command === "--help" ? 0 : 2;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError || error instanceof CliError) process.stderr.write(`flowmeter: ${error.message}\n`);
    else process.stderr.write(`flowmeter: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(1);
  },
);
