/**
 * `flowmeter logs <run_id> [stage] [--follow]`: prints what a run's stages wrote, line by line, from the runners'
 * Redis (the newest RUNNER_LOG_BUFFER_LINES of the run, while its retention lasts; ClickHouse's run_logs table keeps
 * every line). With --follow it keeps printing new lines until the run has ended.
 */
import { redactUrl } from "@flowmeter/platform";
import { isTerminalRunState, type StageLogLine } from "@flowmeter/shared";
import { RunStore, lineBytes, logLineMatches } from "@flowmeter/runner";
import { CliError, EXIT, parseOptions } from "./cli-error.js";
import { parseRedisClientConfig } from "./config.js";
import { connectRedis } from "./redis-connection.js";

const PAGE = 1000;
const POLL_MS = 300;

export const LOGS_USAGE = `usage: flowmeter logs <run_id> [stage] [--grep <text>] [--follow] [--raw]

Prints the output of a run's stages, one line each as "<stage>: <line>" (stderr lines as "<stage> (stderr): <line>"),
in the order the runner read them; only one stage's lines when a stage is named. --follow (-f) waits for new lines
until the run has ended. --grep keeps the lines containing the text, ignoring case (a plain substring, as ?q= of the
run API). Control characters (ESC, NUL, the other C0 and C1 codes except tab) are written visibly
(\\x1b, \\x00), and bytes that were not UTF-8 as \\xNN; --raw writes every line's bytes exactly as the stage wrote
them, escape sequences included. Lines come from the runners' Redis (the newest RUNNER_LOG_BUFFER_LINES of each run);
older ones are in ClickHouse: flowmeter query "SELECT … FROM flowmeter.run_logs WHERE run_id = '…'".

exit codes: 0 ok, 64 usage error, 66 no such run, 69 Redis unreachable, 78 invalid configuration
environment: REDIS_URL, QUEUE_PREFIX, FLOWMETER_DATA_DIR (as for flowmeter run)
`;

const CONTROL = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f]/g;

/**
 * Control characters as visible text (ESC as \x1b, NUL as \x00; C1 as \u009b): a stage's output must not move the
 * cursor, recolour, retitle or clear the terminal of whoever reads its log. Tab stays as it is.
 */
export function escapeControls(text: string): string {
  return text.replace(CONTROL, (char) => {
    const code = char.charCodeAt(0);
    return code < 0x80 ? `\\x${code.toString(16).padStart(2, "0")}` : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

function prefix(line: StageLogLine): string {
  return `${escapeControls(line.stage_name)}${line.stream === "stderr" ? " (stderr)" : ""}: `;
}

/** One line for a reader: control characters escaped; a line that was not UTF-8 shows its bad bytes as \xNN. */
export function formatLogLine(line: StageLogLine): string {
  return `${prefix(line)}${escapeControls(line.line)}${line.truncated ? " …" : ""}`;
}

/** One line as the stage wrote it, byte for byte (--raw): control sequences and bytes that are not UTF-8 included. */
export function rawLogLine(line: StageLogLine): Buffer {
  return Buffer.concat([Buffer.from(prefix(line)), lineBytes(line), Buffer.from(line.truncated ? " …\n" : "\n")]);
}

export async function logs(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const follow = args.includes("--follow") || args.includes("-f");
  const raw = args.includes("--raw");
  const { positional, help, options } = parseOptions(
    args.filter((arg) => arg !== "--follow" && arg !== "-f" && arg !== "--raw"),
    ["grep"],
    LOGS_USAGE,
  );
  const grep = options.get("grep");
  if (grep === "") throw new CliError(`--grep needs some text\n${LOGS_USAGE}`, EXIT.usage);
  const keep = grep === undefined ? undefined : (line: StageLogLine) => logLineMatches(line, grep);
  if (help) {
    out.write(LOGS_USAGE);
    return EXIT.ok;
  }
  const [runId, stage, ...extra] = positional;
  if (runId === undefined || extra.length > 0) throw new CliError(`name a run id, and at most one stage\n${LOGS_USAGE}`, EXIT.usage);
  const { redisUrl, queuePrefix } = parseRedisClientConfig(env);

  const redis = await connectRedis(redisUrl);
  const store = new RunStore(redis, { prefix: queuePrefix });
  const stopped = new AbortController();
  const onInterrupt = () => stopped.abort();
  process.on("SIGINT", onInterrupt);
  try {
    let record = await store.records.get(runId);
    if (record === undefined)
      throw new CliError(`no run ${runId} in Redis ${redactUrl(redisUrl)} (prefix ${queuePrefix}): unknown, or past its retention`, EXIT.noInput);
    let fromSeq = 0;
    for (;;) {
      const page = await store.logs.read(runId, fromSeq, PAGE, stage, keep);
      for (const line of page.items) out.write(raw ? rawLogLine(line) : `${formatLogLine(line)}\n`);
      fromSeq = page.nextSeq;
      if (page.items.length === PAGE) continue;
      // The run's last lines are stored before its terminal event, so once it has ended a read finds them all.
      if (!follow || isTerminalRunState(record.state) || stopped.signal.aborted) return EXIT.ok;
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      // A record gone meanwhile (past its retention) has ended too.
      record = (await store.records.get(runId)) ?? { ...record, state: "failed" };
    }
  } finally {
    process.off("SIGINT", onInterrupt);
    await store.close();
    redis.disconnect();
  }
}
