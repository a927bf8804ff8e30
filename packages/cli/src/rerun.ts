/**
 * `flowmeter rerun <run_id> [--failed-only]`: starts a new run of what an ended run was submitted with (all its
 * stages, or only those that did not succeed), linked to it (rerun_of), and follows it as `flowmeter run` does.
 */
import { errorMessage, redactUrl } from "@flowmeter/platform";
import { RerunRefusedError, RunStore, WorkflowValidationError, rerunRun } from "@flowmeter/runner";
import { CliError, EXIT, parseOptions } from "./cli-error.js";
import { parseRedisClientConfig } from "./config.js";
import { connectRedis } from "./redis-connection.js";
import { followSubmittedRun } from "./run.js";

export const RERUN_USAGE = `usage: flowmeter rerun <run_id> [--failed-only]

Starts a new run of an ended run's workflow, with its input, concurrency and policy, and follows it live as
flowmeter run does. The new run names the old one (rerun_of); the old run is not changed. --failed-only leaves out
the stages that succeeded (dependencies on them count as met) and runs the others: failed, skipped, never started.

exit codes: 0 the new run succeeded, 1 it failed, 2 it was cancelled, 130 stopped following, 64 usage error,
            66 no such run, or it cannot be re-run (still active; nothing failed; its workflow is not kept),
            69 Redis unreachable, 78 invalid configuration
environment: REDIS_URL, QUEUE_PREFIX, FLOWMETER_DATA_DIR (as for flowmeter run)
`;

export async function rerun(args: string[], env: NodeJS.ProcessEnv, out: NodeJS.WriteStream = process.stdout): Promise<number> {
  const failedOnly = args.includes("--failed-only");
  const { positional, help } = parseOptions(
    args.filter((arg) => arg !== "--failed-only"),
    [],
    RERUN_USAGE,
  );
  if (help) {
    out.write(RERUN_USAGE);
    return EXIT.ok;
  }
  const [runId, ...extra] = positional;
  if (runId === undefined || extra.length > 0) throw new CliError(`name one run id\n${RERUN_USAGE}`, EXIT.usage);
  const { redisUrl, queuePrefix } = parseRedisClientConfig(env);

  const redis = await connectRedis(redisUrl);
  const store = new RunStore(redis, { prefix: queuePrefix });
  let created;
  try {
    created = await rerunRun(store, runId, { failedOnly });
  } catch (error) {
    await store.close();
    redis.disconnect();
    if (error instanceof RerunRefusedError) throw new CliError(error.message, EXIT.noInput);
    if (error instanceof WorkflowValidationError) throw new CliError(`run ${runId}: ${error.message}`, EXIT.noInput);
    throw new CliError(
      `could not submit the re-run: Redis at ${redactUrl(redisUrl)} is not reachable (${errorMessage(error)}). Is flowmeter running (npm start)?`,
    );
  }
  out.write(`run ${created.run_id} re-runs ${runId}${failedOnly ? " (the stages that did not succeed)" : ""}\n`);
  return followSubmittedRun(store, { redisUrl, queuePrefix }, created.run_id, out);
}
