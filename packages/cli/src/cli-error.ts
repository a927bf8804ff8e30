/**
 * Exit codes of the `flowmeter` command. 0-2 are a run's outcome; the rest follow sysexits.h, so a script can tell a
 * failed run from a mistake in the command line, a missing file or a pipeline that is not running.
 */
export const EXIT = {
  ok: 0,
  runFailed: 1,
  runCancelled: 2,
  /** Wrong command line: unknown command or option, missing argument. */
  usage: 64,
  /** A file named on the command line cannot be read or is not a valid workflow. */
  noInput: 66,
  /** Redis or the worker does not answer, or a query was refused. */
  unavailable: 69,
  /** An environment variable is invalid. */
  config: 78,
} as const;

/** A failure the user can fix; the CLI prints its message without a stack trace and exits with `exitCode`. */
export class CliError extends Error {
  override readonly name: string = "CliError";
  constructor(
    message: string,
    readonly exitCode: number = EXIT.unavailable,
  ) {
    super(message);
  }
}

/** Splits `--name value` / `--name=value` options from positional arguments; refuses options not in `known`. */
export function parseOptions(
  args: readonly string[],
  known: readonly string[],
  usage: string,
): { options: Map<string, string>; positional: string[]; help: boolean } {
  const options = new Map<string, string>();
  const positional: string[] = [];
  let help = false;
  for (let index = 0; index < args.length; index += 1) {
    const arg = args[index] ?? "";
    if (arg === "--") {
      positional.push(...args.slice(index + 1));
      break;
    }
    if (arg === "-h" || arg === "--help") {
      help = true;
      continue;
    }
    if (arg.startsWith("-") && arg !== "-") {
      const [name = "", inline] = arg.replace(/^--?/, "").split(/=(.*)/s, 2);
      if (!known.includes(name)) throw new CliError(`unknown option ${arg}\n${usage}`, EXIT.usage);
      const value = inline ?? args[(index += 1)];
      if (value === undefined) throw new CliError(`option --${name} needs a value\n${usage}`, EXIT.usage);
      options.set(name, value);
      continue;
    }
    positional.push(arg);
  }
  return { options, positional, help };
}
