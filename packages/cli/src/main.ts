#!/usr/bin/env node
import { pathToFileURL } from "node:url";
import { ConfigError } from "@flowmeter/platform";
import { CliError, EXIT } from "./cli-error.js";
import { FAILED_USAGE, failed } from "./failed.js";
import { LOGS_USAGE, logs } from "./logs.js";
import { QUERY_USAGE, query } from "./query.js";
import { RUN_USAGE, run } from "./run.js";
import { SERVICE_ENTRY_POINTS } from "./services.js";
import { START_USAGE, start } from "./start.js";

const USAGE = `usage: flowmeter <command> [options]

commands:
  start              run migrations, then ingest, worker and runner on the embedded default (what \`npm start\` does)
  run <file>         submit a workflow run and follow it live
  logs <run_id> [stage] [--follow]
                     print what a run's stages wrote, line by line
  query "<SQL>"      run a read-only query through the worker's /query
  failed [--redrive] list the telemetry jobs in the queues' failed sets; --redrive retries them
  ingest | worker | runner | migrate
                     run one service alone (configured by its environment variables; see its README)
  help [command]     this text, or a command's

\`flowmeter <command> --help\` describes a command's options and environment variables.

exit codes: 0 ok, 1 run failed, 2 run cancelled, 64 usage error, 66 unreadable or invalid input file,
            69 Redis or the worker unavailable (or a query refused), 78 invalid configuration
`;

const SERVICE_USAGE = (name: string) => `usage: flowmeter ${name}

Runs the ${name} service alone, configured by environment variables: see packages/${name === "migrate" ? "worker" : name}/README.md.
`;

const COMMAND_USAGE: Record<string, string> = {
  start: START_USAGE,
  run: RUN_USAGE,
  logs: LOGS_USAGE,
  query: QUERY_USAGE,
  failed: FAILED_USAGE,
  ingest: SERVICE_USAGE("ingest"),
  worker: SERVICE_USAGE("worker"),
  runner: SERVICE_USAGE("runner"),
  migrate: SERVICE_USAGE("migrate"),
};

function wantsHelp(args: readonly string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === "help" || command === "--help" || command === "-h") {
    const topic = command === "help" ? rest[0] : undefined;
    if (topic !== undefined && COMMAND_USAGE[topic] === undefined) throw new CliError(`unknown command '${topic}'\n${USAGE}`, EXIT.usage);
    process.stdout.write(topic === undefined ? USAGE : (COMMAND_USAGE[topic] ?? USAGE));
    return command === undefined ? EXIT.usage : EXIT.ok;
  }
  const usage = COMMAND_USAGE[command];
  if (usage === undefined) throw new CliError(`unknown command '${command}'\n${USAGE}`, EXIT.usage);
  if (wantsHelp(rest) && command !== "query" && command !== "run" && command !== "failed") {
    process.stdout.write(usage);
    return EXIT.ok;
  }
  switch (command) {
    case "start":
      return start(process.env);
    case "run":
      return run(rest, process.env);
    case "logs":
      return logs(rest, process.env);
    case "query":
      return query(rest, process.env);
    case "failed":
      return failed(rest, process.env);
    case "ingest":
    case "worker":
    case "runner":
    case "migrate":
      // The service's module runs it and exits on its own.
      await import(pathToFileURL(SERVICE_ENTRY_POINTS[command]()).href);
      return new Promise<number>(() => {});
    default:
      throw new CliError(`unknown command '${command}'\n${USAGE}`, EXIT.usage);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) {
      process.stderr.write(`flowmeter: ${error.message}\n`);
      process.exit(EXIT.config);
    }
    if (error instanceof CliError) {
      process.stderr.write(`flowmeter: ${error.message}${error.message.endsWith("\n") ? "" : "\n"}`);
      process.exit(error.exitCode);
    }
    process.stderr.write(`flowmeter: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`);
    process.exit(70);
  },
);
