/**
 * `flowmeter rerun` and `flowmeter logs --grep` against real Redis and a real runner: a failed run re-run with
 * --failed-only runs only the stage that failed and its dependent, linked to the old run; a refused re-run exits 66
 * saying why. --grep prints the lines containing a text, ignoring case.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, createRedis } from "@flowmeter/platform";
import { RunStore, parseRunnerConfig, startRunner, type RunningRunner } from "@flowmeter/runner";
import { deleteQueuePrefix, tempDir, testQueuePrefix, testRedisUrl } from "@flowmeter/test-utils";
import { CliError } from "./cli-error.js";
import { logs } from "./logs.js";
import { rerun } from "./rerun.js";
import { run } from "./run.js";

const logger = createLogger("test", "error");

function captured(): { out: NodeJS.WriteStream; text: () => string } {
  const chunks: string[] = [];
  const out = { isTTY: false, write: (chunk: string) => chunks.push(String(chunk)) > 0 } as unknown as NodeJS.WriteStream;
  return { out, text: () => chunks.join("") };
}

describe("flowmeter rerun and logs --grep", () => {
  const data = tempDir("cli-rerun");
  const prefix = testQueuePrefix("cli-rerun");
  const env = { REDIS_URL: testRedisUrl(), QUEUE_PREFIX: prefix };
  const redis = createRedis(testRedisUrl(), "producer");
  const store = new RunStore(redis, { prefix });
  let runner: RunningRunner;

  beforeAll(async () => {
    runner = await startRunner(parseRunnerConfig({ ...env, RUNNER_PORT: "0", FLOWMETER_DATA_DIR: data.path }), logger);
  });

  afterAll(async () => {
    await runner.stop();
    await store.close();
    redis.disconnect();
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("re-runs only the stages that did not succeed, as a new run linked to the old one, and follows it", async () => {
    const marker = join(data.path, "fixed");
    const file = join(data.path, "flaky.json");
    writeFileSync(
      file,
      JSON.stringify({
        name: "flaky",
        stages: [
          { name: "build", driver: "shell", run: "echo built" },
          { name: "test", driver: "shell", run: `test -e ${marker}`, depends_on: ["build"] },
          { name: "deploy", driver: "shell", run: "echo deployed", depends_on: ["test"] },
        ],
      }),
    );
    const first = captured();
    expect(await run([file], env, first.out)).toBe(1);
    const oldRunId = /run (\S+) of workflow/.exec(first.text())?.[1] ?? "";
    writeFileSync(marker, "");

    const second = captured();
    expect(await rerun([oldRunId, "--failed-only"], env, second.out), second.text()).toBe(0);
    const newRunId = new RegExp(`run (\\S+) re-runs ${oldRunId} \\(the stages that did not succeed\\)`).exec(second.text())?.[1] ?? "";
    expect(newRunId).not.toBe("");
    const started = [...second.text().matchAll(/stage\.started (\w+)/g)].map((match) => match[1]);
    expect(started).toEqual(["test", "deploy"]);
    expect(await store.records.get(newRunId)).toMatchObject({ state: "succeeded", rerun_of: oldRunId, workflow: "flaky" });

    // Everything succeeded now: --failed-only has nothing to run; an unknown run is refused alike.
    await expect(rerun([newRunId, "--failed-only"], env, captured().out)).rejects.toEqual(
      new CliError(`every stage of run ${newRunId} succeeded; nothing to re-run with failed_only`, 66),
    );
    await expect(rerun(["no-such-run"], env, captured().out)).rejects.toMatchObject({ exitCode: 66 });
  });

  it("logs --grep prints only the lines containing the text, ignoring case; with a stage, only that stage's", async () => {
    const file = join(data.path, "noisy.json");
    writeFileSync(
      file,
      JSON.stringify({
        name: "noisy",
        stages: [
          { name: "one", driver: "shell", run: "seq 1 3000; echo 'ERROR: disk full' >&2; echo done" },
          { name: "two", driver: "shell", run: "echo 'an error here too'; echo fine", depends_on: ["one"] },
        ],
      }),
    );
    const submitted = captured();
    expect(await run([file], env, submitted.out)).toBe(0);
    const runId = /run (\S+) of workflow/.exec(submitted.text())?.[1] ?? "";

    const all = captured();
    expect(await logs([runId, "--grep", "error"], env, all.out)).toBe(0);
    expect(all.text()).toBe("one (stderr): ERROR: disk full\ntwo: an error here too\n");
    const one = captured();
    expect(await logs([runId, "one", "--grep=2999"], env, one.out)).toBe(0);
    expect(one.text()).toBe("one: 2999\n");
    await expect(logs([runId, "--grep"], env, captured().out)).rejects.toMatchObject({ exitCode: 64 });
  });
});
