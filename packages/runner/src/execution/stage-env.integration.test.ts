/**
 * The built runner (dist/main.js, build first) started as an operator would, with its configuration in its
 * environment (bearer tokens, a Redis URL with a password, a queue prefix) and a variable meant as a secret: a stage
 * running `printenv` sees none of the configuration, a declared secret reaches the stage and reads `***` through the
 * logs API and in the run's events, and neither the runner's own log lines nor /metrics print the Redis password.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import type { RunEvent, RunView, StageLogLine } from "@flowmeter/shared";
import { deleteQueuePrefix, freePort, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";

const dist = fileURLToPath(new URL("../../dist/", import.meta.url));

describe("stage environment of a runner started with its configuration in its environment", () => {
  const data = tempDir("stage-env");
  const prefix = testQueuePrefix("stage-env");
  const token = "runner-api-token-7f3a";
  const password = "redis-password-9c1e"; // the test Redis needs none; ioredis warns and goes on
  const redisUrl = testRedisUrl().replace("redis://", `redis://:${password}@`);
  const deployToken = "deploy-token-5b2d";
  let child: ChildProcess | undefined;
  let runnerOutput = "";

  afterAll(async () => {
    child?.kill("SIGKILL");
    await deleteQueuePrefix(prefix);
    data.remove();
  });

  it("gives stages no runner configuration, the declared secrets masked, and prints no password", async () => {
    writeFileSync(join(data.path, "key.txt"), "file-secret-e41b\n");
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    child = spawn(process.execPath, [`${dist}main.js`], {
      cwd: data.path,
      env: {
        PATH: process.env["PATH"] ?? "/usr/bin:/bin",
        HOME: data.path,
        LANG: "C.UTF-8",
        REDIS_URL: redisUrl,
        QUEUE_PREFIX: prefix,
        RUNNER_API_TOKENS: token,
        RUNNER_PORT: String(port),
        FLOWMETER_DATA_DIR: data.path,
        RUNNER_SHUTDOWN_TIMEOUT_MS: "300",
        DEPLOY_TOKEN: deployToken,
        OTHER_RUNNER_VARIABLE: "not-for-stages-0d9e",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    child.stdout?.on("data", (chunk: Buffer) => (runnerOutput += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (runnerOutput += chunk.toString()));
    await waitFor(async () => ((await fetch(`${url}/v1/health`).catch(() => undefined))?.ok === true ? true : undefined), { what: "the runner" });
    const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };

    const created = await fetch(`${url}/v1/runs`, {
      method: "POST",
      headers,
      body: JSON.stringify({
        workflow: {
          name: "env-check",
          secrets: { DEPLOY: { env: "DEPLOY_TOKEN" }, KEY: { file: "key.txt" } },
          stages: [
            { name: "printenv", driver: "shell", run: "printenv" },
            { name: "use", driver: "shell", run: 'echo "deploying with $DEPLOY and $KEY"; echo "$DEPLOY" >&2; exit 1', allow_failure: true },
          ],
        },
      }),
    });
    expect(created.status).toBe(201);
    const runId = ((await created.json()) as { run_id: string }).run_id;
    const run = await waitFor(
      async () => {
        const view = (await (await fetch(`${url}/v1/runs/${runId}`, { headers })).json()) as RunView;
        return view.state === "succeeded" || view.state === "failed" ? view : undefined;
      },
      { timeoutMs: 20_000, what: "the run's end" },
    );
    expect(run.state).toBe("succeeded");

    const logs = (await (await fetch(`${url}/v1/runs/${runId}/logs`, { headers })).json()) as { lines: StageLogLine[] };
    const printed = logs.lines.filter((line) => line.stage_name === "printenv").map((line) => line.line);
    const names = printed.map((line) => line.slice(0, line.indexOf("="))).sort();
    for (const name of ["RUNNER_API_TOKENS", "REDIS_URL", "QUEUE_PREFIX", "RUNNER_PORT", "FLOWMETER_DATA_DIR", "DEPLOY_TOKEN", "OTHER_RUNNER_VARIABLE"]) {
      expect([name, names.includes(name)]).toEqual([name, false]);
    }
    expect(names).toEqual(expect.arrayContaining(["PATH", "HOME", "LANG", "DEPLOY", "KEY", "FLOWMETER_RUN_ID"]));
    expect(printed).toEqual(expect.arrayContaining(["DEPLOY=***", "KEY=***"]));
    const used = logs.lines.filter((line) => line.stage_name === "use").map((line) => [line.stream, line.line]);
    expect(used).toEqual([
      ["stdout", "deploying with *** and ***"],
      ["stderr", "***"],
    ]);

    const events = ((await (await fetch(`${url}/v1/runs/${runId}/events`, { headers })).json()) as { events: RunEvent[] }).events;
    const failed = events.find((event) => event.event_type === "stage.failed" && event.stage_name === "use");
    expect(failed?.payload).toMatchObject({ stderr_tail: "***\n" });

    const metrics = await (await fetch(`${url}/metrics`)).text();
    const everything = JSON.stringify({ logs, events }) + metrics + runnerOutput;
    for (const secret of [token, password, deployToken, "file-secret-e41b", "not-for-stages-0d9e"]) {
      expect([secret, everything.includes(secret)]).toEqual([secret, false]);
    }
  });
});
