/**
 * `flowmeter failed [--redrive]`: what sits in the telemetry queues' failed sets (jobs the worker gave up on: since
 * telemetry retries without a deadline, only a payload the worker cannot handle), and moves them back to waiting.
 */
import { errorMessage, redactUrl } from "@flowmeter/platform";
import { partitionCountKey, queuesConsumedBy } from "@flowmeter/shared";
import { Queue } from "bullmq";
import { CliError, EXIT, parseOptions } from "./cli-error.js";
import { parseRedisClientConfig } from "./config.js";
import { connectRedis } from "./redis-connection.js";

export const FAILED_USAGE = `usage: flowmeter failed [--redrive]

Lists the jobs in the failed sets of the telemetry queues (client-telemetry and its partitions, run-events): how many, and the
newest ones with their error. --redrive moves every failed job back to waiting, for the worker to write again
(writes are idempotent: what was already stored is not stored twice).

exit codes: 0 ok, 64 usage error, 69 Redis unreachable, 78 invalid configuration
environment: REDIS_URL, QUEUE_PREFIX, FLOWMETER_DATA_DIR (as for flowmeter run)
`;

export async function failed(args: readonly string[], env: NodeJS.ProcessEnv, out: NodeJS.WritableStream = process.stdout): Promise<number> {
  const { positional, help, options } = parseOptions(
    args.filter((arg) => arg !== "--redrive"),
    [],
    FAILED_USAGE,
  );
  if (help) {
    out.write(FAILED_USAGE);
    return EXIT.ok;
  }
  if (positional.length > 0 || options.size > 0) throw new CliError(`unexpected argument ${positional[0] ?? ""}\n${FAILED_USAGE}`, EXIT.usage);
  const redrive = args.includes("--redrive");
  const { redisUrl, queuePrefix: prefix } = parseRedisClientConfig(env);
  const redis = await connectRedis(redisUrl);
  try {
    // Every queue the worker consumes (JOB_CATALOG), each partition's: the count the queues were made with is kept in Redis.
    const partitions = Number((await redis.get(partitionCountKey(prefix))) ?? "1") || 1;
    const queues = queuesConsumedBy("worker", partitions);
    for (const name of queues) {
      const queue = new Queue(name, { connection: redis, prefix });
      try {
        const count = await queue.getJobCountByTypes("failed").catch((error: unknown) => {
          throw new CliError(`Redis at ${redactUrl(redisUrl)} is not reachable (${errorMessage(error)})`);
        });
        out.write(`${name}: ${count} failed ${count === 1 ? "job" : "jobs"}\n`);
        for (const job of await queue.getFailed(0, 4)) {
          out.write(`  job ${job.id ?? "?"}: ${job.attemptsMade} attempts, ${String(job.failedReason ?? "").slice(0, 200)}\n`);
        }
        if (redrive && count > 0) {
          await queue.retryJobs({ state: "failed" });
          out.write(`  moved ${count} back to waiting\n`);
        }
      } finally {
        await queue.close();
      }
    }
  } finally {
    redis.disconnect();
  }
  return EXIT.ok;
}
