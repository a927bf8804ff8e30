/**
 * What a stage wrote, end to end: runner → Redis (the logs API, `flowmeter run`'s failure excerpt, `flowmeter logs`)
 * and run-events queue → worker → ClickHouse run_logs. A long stage keeps its head and its tail, so the error it
 * printed last is never the line dropped. Control characters and bytes that are not UTF-8 are kept exactly, and
 * `flowmeter logs` shows them escaped unless --raw.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { type StageLogLine } from "@flowmeter/shared";
import { parseRunnerConfig, startRunner, type RunningRunner } from "@flowmeter/runner";
import { createRunEventsConsumer, createExactlyOnceState, createWorkerMetrics, parseWorkerConfig, type QueueConsumer } from "@flowmeter/worker";
import * as worker from "@flowmeter/worker";
import { deleteQueuePrefix, tempDir, testQueuePrefix, testRedisUrl, waitFor, openScratchDatabase, type ScratchDatabase } from "@flowmeter/test-utils";
import { logs } from "./logs.js";
import { run } from "./run.js";

const logger = createLogger("test", "error");

/** A stream `flowmeter run` and `flowmeter logs` write to, kept as bytes (not a terminal). */
function captured(): { out: NodeJS.WriteStream; text: () => string; bytes: () => Buffer } {
  const chunks: Buffer[] = [];
  const out = { isTTY: false, write: (chunk: string | Buffer) => chunks.push(Buffer.from(chunk)) > 0 } as unknown as NodeJS.WriteStream;
  return { out, text: () => Buffer.concat(chunks).toString("utf8"), bytes: () => Buffer.concat(chunks) };
}

describe("stage output end to end", () => {
  const data = tempDir("stage-output");
  const prefix = testQueuePrefix("stage-output");
  const redis = createRedis(testRedisUrl(), "worker");
  const env = { REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix };
  let database: ScratchDatabase<worker.BlockWriter>;
  let consumer: QueueConsumer;
  let runner: RunningRunner;

  beforeAll(async () => {
    database = await openScratchDatabase("stage-output", worker);
    const workerConfig = { ...parseWorkerConfig({ QUEUE_PREFIX: prefix }), batch: { maxRows: 50_000, maxWaitMs: 100 } };
    consumer = createRunEventsConsumer({
      config: workerConfig,
      redis,
      metrics: createWorkerMetrics(),
      logger,
      clickhouse: database.clickhouse,
      writer: database.writer,
      ...createExactlyOnceState(redis, workerConfig, logger),
    });
    consumer.start();
    runner = await startRunner(
      parseRunnerConfig({ ...env, RUNNER_PORT: "0", FLOWMETER_DATA_DIR: data.path, RUNNER_LOG_HEAD_LINES: "1000", RUNNER_LOG_TAIL_LINES: "500" }),
      logger,
    );
  });

  afterAll(async () => {
    await runner.stop();
    await consumer.close();
    redis.disconnect();
    await database.close();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  async function runWorkflow(name: string, script: string): Promise<{ runId: string; output: string; exitCode: number }> {
    const file = join(data.path, `${name}.json`);
    writeFileSync(file, JSON.stringify({ name, stages: [{ name: "main", driver: "shell", run: script }] }));
    const { out, text } = captured();
    const exitCode = await run([file], env, out);
    const runId = /run (\S+) of workflow/.exec(text())?.[1] ?? "";
    return { runId, output: text(), exitCode };
  }

  async function apiLines(runId: string): Promise<StageLogLine[]> {
    const response = await fetch(`${runner.url}/v1/runs/${runId}/logs?limit=10000`);
    expect(response.status).toBe(200);
    return ((await response.json()) as { lines: StageLogLine[] }).lines;
  }

  it("keeps the head and the tail of a long stage, the cut marked, and the final error everywhere", async () => {
    const { runId, output, exitCode } = await runWorkflow("long-output", `seq 1 20000; echo "FATAL the real error" >&2; exit 3`);
    expect(exitCode).toBe(1);
    // flowmeter run: the failure excerpt ends with the error line
    expect(output).toContain("    │ main (stderr): FATAL the real error\n");

    // seq 1..20000 on stdout, then the error on stderr: the first 1000, the cut, the last 500 of stdout and the
    // error (read before or after the end of stdout: the two pipes are read in no set order).
    const lines = await apiLines(runId);
    expect(lines).toHaveLength(1000 + 1 + 500 + 1);
    expect(lines.slice(0, 1000).map((line) => line.line)).toEqual(Array.from({ length: 1000 }, (_, index) => String(index + 1)));
    expect(lines[1000]).toMatchObject({
      stream: "stderr",
      line: "[flowmeter] … 18500 lines, 83501 bytes left out … (a stage attempt keeps its first 1000 lines and the last 500 of each stream)",
    });
    const tail = lines.slice(1001);
    expect(tail.filter((line) => line.stream === "stdout").map((line) => line.line)).toEqual(Array.from({ length: 500 }, (_, index) => String(19_501 + index)));
    expect(tail.filter((line) => line.stream === "stderr").map((line) => line.line)).toEqual(["FATAL the real error"]);

    const stored = await waitFor(
      async () => {
        const found = await database.rows<{ seq: number; stream: string; line: string }>(
          `SELECT seq, stream, line FROM flowmeter.run_logs WHERE run_id = '${runId}' ORDER BY seq`,
        );
        return found.length === lines.length ? found : undefined;
      },
      { what: "every line in run_logs" },
    );
    const error = lines.find((line) => line.line === "FATAL the real error");
    expect(stored.filter((row) => row.line === "FATAL the real error")).toEqual([{ seq: error?.seq, stream: "stderr", line: "FATAL the real error" }]);
  });

  it("keeps control characters and bytes that are not UTF-8 exactly, marks the latter, and flowmeter logs escapes them unless --raw", async () => {
    const script = String.raw`printf 'red \033[31mX\033[0m nul \000 end\n'; printf 'bad \377\376 ok \\x41\n'`; // one stream: the order of two pipes' reads is not set
    const { runId, exitCode } = await runWorkflow("control-bytes", script);
    expect(exitCode).toBe(0);
    const colour = "red \x1b[31mX\x1b[0m nul \0 end";
    const lines = await apiLines(runId);
    expect(lines.map(({ stream, line, invalid_utf8 }) => ({ stream, line, invalid_utf8 }))).toEqual([
      { stream: "stdout", line: colour, invalid_utf8: undefined },
      { stream: "stdout", line: "bad \\xff\\xfe ok \\\\x41", invalid_utf8: true },
    ]);

    const shown = captured();
    expect(await logs([runId], env, shown.out)).toBe(0);
    expect(shown.text()).toBe("main: red \\x1b[31mX\\x1b[0m nul \\x00 end\nmain: bad \\xff\\xfe ok \\\\x41\n");
    expect(shown.bytes().some((byte) => byte < 0x20 && byte !== 0x0a && byte !== 0x09)).toBe(false);

    const raw = captured();
    expect(await logs([runId, "--raw"], env, raw.out)).toBe(0);
    expect(raw.bytes()).toEqual(Buffer.concat([Buffer.from(`main: ${colour}\nmain: bad `), Buffer.from([0xff, 0xfe]), Buffer.from(" ok \\x41\n")]));

    const stored = await waitFor(
      async () => {
        const found = await database.rows<{ line: string }>(`SELECT line FROM flowmeter.run_logs WHERE run_id = '${runId}' ORDER BY seq`);
        return found.length === 2 ? found : undefined;
      },
      { what: "both lines in run_logs" },
    );
    expect(stored.map((row) => row.line)).toEqual([colour, "bad \\xff\\xfe ok \\\\x41"]);
  });
});
