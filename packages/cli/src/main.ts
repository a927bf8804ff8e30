#!/usr/bin/env node
import { pathToFileURL } from "node:url";
import { ConfigError, redactCredentials } from "@flowmeter/platform";
import { CliError, EXIT } from "./cli-error.js";
import { FAILED_USAGE, failed } from "./failed.js";
import { LOGS_USAGE, logs } from "./logs.js";
import { QUERY_USAGE, query } from "./query.js";
import { RERUN_USAGE, rerun } from "./rerun.js";
import { RUN_USAGE, run } from "./run.js";
import { SERVICE_ENTRY_POINTS } from "./services.js";
import { START_USAGE, start } from "./start.js";

const USAGE = `usage: flowmeter <command> [options]

commands:
  start              run migrations, then ingest, worker and runner on the embedded default (what \`npm start\` does)
  run <file>         submit a workflow run and follow it live
  rerun <run_id> [--failed-only]
                     run an ended run again (or only its stages that did not succeed) as a new run, and follow it
  logs <run_id> [stage] [--grep <text>] [--follow]
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
  rerun: RERUN_USAGE,
  logs: LOGS_USAGE,
  query: QUERY_USAGE,
  failed: FAILED_USAGE,
  ingest: SERVICE_USAGE("ingest"),
  worker: SERVICE_USAGE("worker"),
  runner: SERVICE_USAGE("runner"),
  migrate: SERVICE_USAGE("migrate"),
  help: USAGE,
};

function wantsHelp(args: readonly string[]): boolean {
  return args.includes("--help") || args.includes("-h");
}

/** `flowmeter help [command] [--help]`: the overview, or one command's text; only an unknown command is a usage error. */
function help(args: readonly string[]): number {
  const [topic, ...extra] = args.filter((arg) => arg !== "--help" && arg !== "-h");
  if (extra.length > 0) throw new CliError(`name at most one command\n${USAGE}`, EXIT.usage);
  const usage = topic === undefined ? USAGE : COMMAND_USAGE[topic];
  if (usage === undefined) throw new CliError(`unknown command '${topic ?? ""}'\n${USAGE}`, EXIT.usage);
  process.stdout.write(usage);
  return EXIT.ok;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined) {
    process.stdout.write(USAGE);
    return EXIT.usage;
  }
  if (command === "help" || command === "--help" || command === "-h") return help(rest);
  const usage = COMMAND_USAGE[command];
  if (usage === undefined) throw new CliError(`unknown command '${command}'\n${USAGE}`, EXIT.usage);
  if (wantsHelp(rest) && command !== "query" && command !== "run" && command !== "rerun" && command !== "failed") {
    process.stdout.write(usage);
    return EXIT.ok;
  }
  switch (command) {
    case "start":
      return start(process.env);
    case "run":
      return run(rest, process.env);
    case "rerun":
      return rerun(rest, process.env);
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

/** Everything the CLI prints about a failure goes through here: a URL's credentials never reach the terminal. */
function fail(message: string, exitCode: number): never {
  process.stderr.write(`flowmeter: ${redactCredentials(message)}${message.endsWith("\n") ? "" : "\n"}`);
  process.exit(exitCode);
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (error: unknown) => {
    if (error instanceof ConfigError) fail(error.message, EXIT.config);
    if (error instanceof CliError) fail(error.message, error.exitCode);
    fail(error instanceof Error ? (error.stack ?? error.message) : String(error), 70);
  },
);
