/**
 * `flowmeter run <file>`: submits a run of a workflow file to the runner fleet (the BullMQ runs queue), follows
 * its events with a live view of stage states (a failed stage's last lines of output under its line), and exits with
 * the run's outcome: 0 succeeded, 1 failed, 2 cancelled. Ctrl-C cancels the run (a second Ctrl-C stops following without waiting).
 */
import { createRepeatThrottle, errorMessage, redactUrl } from "@flowmeter/platform";
import { type RunEvent, type RunEventOf } from "@flowmeter/shared";
import { RunStore, WorkflowValidationError, cancelRun, followRun, loadWorkflowFile, submitRun } from "@flowmeter/runner";
import { CliError, EXIT, parseOptions } from "./cli-error.js";
import { parseRedisClientConfig } from "./config.js";
import { formatLogLine } from "./logs.js";
import { connectRedis } from "./redis-connection.js";
import { RunView } from "./run-view.js";

const NO_RUNNER_HINT_MS = 10_000;
/** Lines of a failed stage's output shown under it. */
const FAILED_STAGE_LINES = 8;
/** Of those, how many are its last stderr lines when stdout was read after them; and how far back they are looked for. */
const FAILED_STAGE_ERROR_LINES = 3;
const ERROR_SEARCH_LINES = 1000;

export const RUN_USAGE = `usage: flowmeter run <workflow.yaml|workflow.json>

Submits a run of the workflow to the runners (the BullMQ runs queue in Redis) and follows it live: one line per
stage, and under a stage that failed the last lines it wrote (all of them: flowmeter logs <run_id> <stage>).
Ctrl-C cancels the run; a second Ctrl-C stops following and leaves it running.

exit codes: 0 the run succeeded, 1 it failed, 2 it was cancelled, 130 stopped following, 64 usage error,
            66 the file cannot be read or is not a valid workflow, 69 Redis unreachable, 78 invalid configuration
environment:
  REDIS_URL           the runners' Redis (default: the one \`npm start\` uses, redis://127.0.0.1:6379)
  QUEUE_PREFIX        the runners' queue prefix (default: the one \`npm start\` derives from FLOWMETER_DATA_DIR)
  FLOWMETER_DATA_DIR  the data directory of the \`npm start\` to submit to (default ./.flowmeter)
`;

export async function run(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const { positional, help } = parseOptions(args, [], RUN_USAGE);
  if (help) {
    out.write(RUN_USAGE);
    return EXIT.ok;
  }
  const [file, ...extra] = positional;
  if (file === undefined || extra.length > 0)
    throw new CliError(`${file === undefined ? "name one workflow file" : "name only one workflow file"}\n${RUN_USAGE}`, EXIT.usage);
  const { redisUrl, queuePrefix } = parseRedisClientConfig(env);

  const workflow = await loadWorkflowFile(file).catch((error: unknown) => {
    if (error instanceof WorkflowValidationError) throw new CliError(error.message.includes(file) ? error.message : `${file}: ${error.message}`, EXIT.noInput);
    const code = (error as NodeJS.ErrnoException).code;
    if (code === "ENOENT" || code === "EISDIR" || code === "EACCES") throw new CliError(`${file}: cannot read the workflow file (${code})`, EXIT.noInput);
    throw error;
  });
  const redis = await connectRedis(redisUrl);
  const store = new RunStore(redis, { prefix: queuePrefix });
  let runId: string;
  try {
    runId = (await submitRun(store, workflow)).run_id;
  } catch (error) {
    await store.close();
    redis.disconnect();
    if (error instanceof WorkflowValidationError) throw new CliError(`${file}: ${error.message}`, EXIT.noInput);
    throw new CliError(
      `could not submit the run: Redis at ${redactUrl(redisUrl)} is not reachable (${errorMessage(error)}). Is flowmeter running (npm start)?`,
    );
  }
  out.write(`run ${runId} of workflow ${workflow.name} submitted (${workflow.stages.length} ${workflow.stages.length === 1 ? "stage" : "stages"})\n`);
  return followSubmittedRun(store, { redisUrl, queuePrefix }, runId, out);
}

/**
 * Follows a run just submitted (flowmeter run, flowmeter rerun) until it ends: a live view of its stages, Ctrl-C
 * cancels it (twice: stops following). Closes `store` and its connection. Answers the exit code of its outcome.
 */
export async function followSubmittedRun(
  store: RunStore,
  { redisUrl, queuePrefix }: { redisUrl: string; queuePrefix: string },
  runId: string,
  out: NodeJS.WriteStream,
): Promise<number> {
  const { redis } = store;
  const view = new RunView();
  const live = out.isTTY === true;
  let drawn = 0;
  const draw = () => {
    if (!live) return;
    const lines = view.lines(Date.now());
    out.write(`${drawn > 0 ? `\x1b[${drawn}A` : ""}${lines.map((line) => `\x1b[2K${line}`).join("\n")}${lines.length > 0 ? "\n" : ""}`);
    drawn = lines.length;
  };
  const ticker = setInterval(draw, 250);
  const hint = setTimeout(() => {
    // A runner that took it and held it back (its workflow's max_concurrent_runs) says why in the record.
    void store.records
      .get(runId)
      .catch(() => undefined)
      .then((record) => {
        if (record?.state !== "queued") return;
        out.write(
          record.waiting_reason !== undefined
            ? `run ${runId} waits: ${record.waiting_reason}\n`
            : `no runner has started run ${runId} yet; runners take runs from Redis ${redactUrl(redisUrl)} (prefix ${queuePrefix}). Is one running (npm start)?\n`,
        );
      });
  }, NO_RUNNER_HINT_MS);

  const stopFollowing = new AbortController();
  let interrupts = 0;
  let firstInterruptMs = 0;
  const onInterrupt = () => {
    // npm forwards the terminal's SIGINT to its child as well: two signals within a second are one Ctrl-C.
    if (interrupts === 1 && Date.now() - firstInterruptMs < 1000) return;
    if (interrupts === 0) firstInterruptMs = Date.now();
    interrupts += 1;
    if (interrupts === 1) {
      // Clear the live block first, so the next draw starts below this line instead of over it.
      if (live && drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
      drawn = 0;
      out.write(`cancelling run ${runId} (Ctrl-C again to stop following)\n`);
      void cancelRun(store, runId, "cancelled from flowmeter run").catch(() => undefined);
    } else stopFollowing.abort();
  };
  process.on("SIGINT", onInterrupt);

  // Following keeps trying while Redis is away (a restart should not stop it); say so rather than go quiet.
  const shouldSay = createRepeatThrottle(10_000);
  const onRedisError = (message: string) => {
    if (!shouldSay(message)) return;
    if (live && drawn > 0) out.write(`\x1b[${drawn}A\x1b[0J`);
    drawn = 0;
    out.write(`Redis at ${redactUrl(redisUrl)}: ${message}; still trying (Ctrl-C twice stops following)\n`);
  };

  try {
    for await (const event of followRun({ redisUrl, queuePrefix }, runId, { signal: stopFollowing.signal, onError: onRedisError })) {
      clearTimeout(hint);
      view.apply(event);
      const tail = event.event_type === "stage.failed" && !event.payload.will_retry ? await failedStageLines(store, event) : [];
      view.setTail(event.stage_name ?? "", tail);
      if (live) draw();
      else out.write([describe(event), ...tail.map((line) => `    │ ${line}`)].map((line) => `${line}\n`).join(""));
    }
  } finally {
    clearInterval(ticker);
    clearTimeout(hint);
    process.off("SIGINT", onInterrupt);
    await store.close();
    redis.disconnect();
  }
  if (view.outcome === undefined) {
    out.write(`stopped following run ${runId}; it goes on\n`);
    return 130;
  }
  out.write(`${view.summary}\n`);
  return view.outcome === "succeeded" ? 0 : view.outcome === "failed" ? 1 : 2;
}

/**
 * The last lines the failed attempt wrote; its lines reach Redis before its stage.failed event. Its last stderr
 * lines are among them even when more stdout was read after them (the two pipes are read in no set order, so a
 * final error line can be stored before the end of a long stdout).
 */
async function failedStageLines(store: RunStore, event: RunEventOf<"stage.failed">): Promise<string[]> {
  const recent = await store.logs.tail(event.run_id, ERROR_SEARCH_LINES, event.stage_name ?? "").catch(() => []);
  const lines = recent.filter((line) => line.stage_attempt === event.payload.stage_attempt);
  let shown = lines.slice(-FAILED_STAGE_LINES);
  const errors = lines.filter((line) => line.stream === "stderr" && !line.line.startsWith("[flowmeter]")).slice(-FAILED_STAGE_ERROR_LINES);
  const lastError = errors.at(-1);
  if (lastError !== undefined && !shown.includes(lastError)) {
    shown = [...errors, ...lines.slice(-(FAILED_STAGE_LINES - errors.length))].sort((a, b) => a.seq - b.seq);
  }
  return shown.map(formatLogLine);
}

function describe(event: RunEvent): string {
  const stage = event.stage_name === null ? "" : ` ${event.stage_name}`;
  const attempt = "stage_attempt" in event.payload && event.payload.stage_attempt > 0 ? ` attempt ${event.payload.stage_attempt}` : "";
  return `${event.timestamp} ${event.event_type}${stage}${attempt}${event.message ? `: ${event.message}` : ""}`;
}
