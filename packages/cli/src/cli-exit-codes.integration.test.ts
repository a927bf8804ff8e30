/**
 * `npx flowmeter …` from the repository, as a user runs it, when something is wrong: a Redis that refuses, one that
 * accepts connections and never answers, a host that does not exist, a Redis with a password, a bad configuration,
 * and `help --help`. Every command that needs Redis gives up within its deadline with exit 69 and names the Redis
 * it tried; no output ever holds the password.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { createServer, type Server, type Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort, tempDir, waitFor } from "@flowmeter/test-utils";

const root = fileURLToPath(new URL("../../../", import.meta.url));
const PASSWORD = "hunter2-not-for-print";
/** REDIS_CONNECT_TIMEOUT_MS plus what npx and node take to start on a busy machine. */
const GIVES_UP_WITHIN_MS = 40_000;

interface Outcome {
  code: number | null;
  printed: string;
  elapsedMs: number;
}

/** The variables these tests set, dropped from the inherited environment so a developer's own cannot change the outcome. */
const OWN_VARIABLES = ["REDIS_URL", "QUEUE_PREFIX", "WORKER_URL", "LOG_LEVEL", "INGEST_PORT", "RUNNER_PORT", "WORKER_METRICS_PORT", "CLICKHOUSE_URL"];

function npxFlowmeter(args: string[], env: Record<string, string>): Promise<Outcome> {
  const inherited = Object.fromEntries(Object.entries(process.env).filter(([name]) => !OWN_VARIABLES.includes(name)));
  const started = Date.now();
  const child: ChildProcess = spawn("npx", ["flowmeter", ...args], { cwd: root, env: { ...inherited, ...env }, stdio: ["ignore", "pipe", "pipe"] });
  let printed = "";
  child.stdout?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
  const timer = setTimeout(() => child.kill("SIGKILL"), GIVES_UP_WITHIN_MS + 20_000);
  return new Promise((resolve) =>
    child.once("close", (code) => {
      clearTimeout(timer);
      resolve({ code, printed, elapsedMs: Date.now() - started });
    }),
  );
}

describe("flowmeter when Redis cannot be reached", () => {
  const data = tempDir("cli-exit-codes");
  let frozen: Server;
  const frozenSockets: Socket[] = [];
  let frozenPort = 0;

  beforeAll(async () => {
    // Accepts every connection and never writes a byte: a Redis that is stopped (SIGSTOP) or wedged.
    frozen = createServer((socket) => frozenSockets.push(socket));
    await new Promise<void>((resolve) => frozen.listen(0, "127.0.0.1", resolve));
    frozenPort = (frozen.address() as { port: number }).port;
  });

  afterAll(async () => {
    for (const socket of frozenSockets) socket.destroy();
    await new Promise((resolve) => frozen.close(resolve));
    data.remove();
  });

  function expectGaveUp(outcome: Outcome, redisShownAs: string): void {
    expect(outcome.code, outcome.printed).toBe(69);
    expect(outcome.printed).toContain(`Redis at ${redisShownAs} does not answer`);
    expect(outcome.printed).not.toContain(PASSWORD);
    expect(outcome.elapsedMs).toBeLessThan(GIVES_UP_WITHIN_MS);
  }

  it(
    "a Redis that refuses connections: run, failed, logs and start exit 69 naming it, password redacted",
    async () => {
      const env = { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:1`, FLOWMETER_DATA_DIR: data.path };
      const outcomes = await Promise.all([
        npxFlowmeter(["run", "examples/deploy.yaml"], env),
        npxFlowmeter(["failed"], env),
        npxFlowmeter(["logs", "nosuchrun"], env),
        npxFlowmeter(["start"], env),
      ]);
      for (const outcome of outcomes) {
        expectGaveUp(outcome, "redis://:***@127.0.0.1:1");
        expect(outcome.printed).toContain("ECONNREFUSED");
      }
    },
    GIVES_UP_WITHIN_MS + 30_000,
  );

  it(
    "a Redis that accepts connections and never answers: run, failed and logs exit 69 naming it",
    async () => {
      const env = { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${frozenPort}`, FLOWMETER_DATA_DIR: data.path };
      const outcomes = await Promise.all([
        npxFlowmeter(["run", "examples/deploy.yaml"], env),
        npxFlowmeter(["failed", "--redrive"], env),
        npxFlowmeter(["logs", "nosuchrun", "--follow"], env),
      ]);
      for (const outcome of outcomes) expectGaveUp(outcome, `redis://:***@127.0.0.1:${frozenPort}`);
      expect(frozenSockets.length).toBeGreaterThanOrEqual(3);
    },
    GIVES_UP_WITHIN_MS + 30_000,
  );

  it(
    "a host that does not exist: exit 69 naming it and the lookup that failed",
    async () => {
      const outcome = await npxFlowmeter(["failed"], { REDIS_URL: `redis://ops:${PASSWORD}@no-such-host.invalid:6379`, FLOWMETER_DATA_DIR: data.path });
      expectGaveUp(outcome, "redis://ops:***@no-such-host.invalid:6379");
      expect(outcome.printed).toContain("ENOTFOUND");
    },
    GIVES_UP_WITHIN_MS + 10_000,
  );
});

describe("flowmeter with a Redis that needs a password", () => {
  let redis: ChildProcess;
  let port = 0;

  beforeAll(async () => {
    port = await freePort();
    redis = spawn("redis-server", ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--requirepass", PASSWORD], {
      stdio: ["ignore", "pipe", "inherit"],
    });
    let output = "";
    redis.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
    await waitFor(() => (output.includes("Ready to accept connections") ? true : undefined), { timeoutMs: 10_000, what: "redis-server to start" });
  });

  afterAll(() => {
    redis.kill("SIGKILL");
  });

  it(
    "never prints the password: not for an unknown run (exit 66), nor for a wrong password (exit 69)",
    async () => {
      const [unknownRun, wrongPassword] = await Promise.all([
        npxFlowmeter(["logs", "nosuchrun"], { REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}` }),
        npxFlowmeter(["failed"], { REDIS_URL: `redis://:${PASSWORD}-wrong@127.0.0.1:${port}` }),
      ]);
      expect(unknownRun.code, unknownRun.printed).toBe(66);
      expect(unknownRun.printed).toContain(`no run nosuchrun in Redis redis://:***@127.0.0.1:${port}`);
      expect(unknownRun.printed).not.toContain(PASSWORD);
      expect(wrongPassword.code, wrongPassword.printed).toBe(69);
      expect(wrongPassword.printed).toContain(`Redis at redis://:***@127.0.0.1:${port} does not answer`);
      expect(wrongPassword.printed).not.toContain(PASSWORD);
    },
    GIVES_UP_WITHIN_MS + 10_000,
  );

  // Last in this group: it stops the Redis.
  it("flowmeter run says so when Redis goes away while it follows a run (and keeps trying)", async () => {
    const child = spawn("npx", ["flowmeter", "run", "examples/deploy.yaml"], {
      cwd: root,
      env: { ...process.env, REDIS_URL: `redis://:${PASSWORD}@127.0.0.1:${port}`, QUEUE_PREFIX: "fmtest-run-outage" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let printed = "";
    child.stdout?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    child.stderr?.on("data", (chunk: Buffer) => (printed += chunk.toString()));
    try {
      // No runner takes it: the command is following a queued run.
      await waitFor(() => (printed.includes("of workflow deploy submitted") ? true : undefined), { timeoutMs: 30_000, what: `the run submitted (${printed})` });
      redis.kill("SIGKILL");
      await waitFor(() => (printed.includes(`Redis at redis://:***@127.0.0.1:${port}: `) ? true : undefined), {
        timeoutMs: 15_000,
        what: `the note that Redis went away (${printed})`,
      });
      expect(printed).toContain("still trying");
      expect(printed).not.toContain(PASSWORD);
      expect(child.exitCode).toBeNull();
    } finally {
      child.kill("SIGKILL");
    }
  }, 60_000);
});

describe("flowmeter with an invalid configuration", () => {
  const env = {
    INGEST_PORT: "abc",
    LOG_LEVEL: "loud",
    REDIS_URL: `http://:${PASSWORD}@127.0.0.1:6379`,
    CLICKHOUSE_WAIT_SECONDS: "soon",
    WORKER_URL: "not a url",
  };
  const redisProblem = 'REDIS_URL="http://:***@127.0.0.1:6379": expected a redis: or rediss: URL';
  const problems = {
    ingest: ['INGEST_PORT="abc": expected an integer', 'LOG_LEVEL="loud"', redisProblem],
    worker: ['LOG_LEVEL="loud"', 'CLICKHOUSE_WAIT_SECONDS="soon"', redisProblem],
    runner: ['LOG_LEVEL="loud"', redisProblem],
    migrate: ['LOG_LEVEL="loud"', 'CLICKHOUSE_WAIT_SECONDS="soon"'],
    start: ['INGEST_PORT="abc"', 'LOG_LEVEL="loud"', 'CLICKHOUSE_WAIT_SECONDS="soon"', redisProblem],
    run: [redisProblem],
    logs: [redisProblem],
    failed: [redisProblem],
    query: ['WORKER_URL="not a url": not a valid URL'],
  };
  const argsOf: Record<keyof typeof problems, string[]> = {
    ingest: ["ingest"],
    worker: ["worker"],
    runner: ["runner"],
    migrate: ["migrate"],
    start: ["start"],
    run: ["run", "examples/deploy.yaml"],
    logs: ["logs", "somerun"],
    failed: ["failed"],
    query: ["query", "SELECT 1"],
  };

  it("every command and service exits 78 and lists every problem", async () => {
    const names = Object.keys(problems) as (keyof typeof problems)[];
    // Three at a time: the machine running the tests is shared.
    for (let index = 0; index < names.length; index += 3) {
      const batch = names.slice(index, index + 3);
      const outcomes = await Promise.all(batch.map((name) => npxFlowmeter(argsOf[name], env)));
      batch.forEach((name, position) => {
        const outcome = outcomes[position] as Outcome;
        expect(outcome.code, `${name}: ${outcome.printed}`).toBe(78);
        expect(outcome.printed).toContain("invalid configuration:");
        for (const problem of problems[name]) expect(outcome.printed, name).toContain(problem);
        expect(outcome.printed).not.toContain(PASSWORD);
      });
    }
  }, 120_000);
});

describe("flowmeter help", () => {
  it("help --help, help <command> and help <command> --help print the text and exit 0; an unknown topic is a usage error", async () => {
    const [overview, short, ofRun, ofRunHelp, unknown] = await Promise.all([
      npxFlowmeter(["help", "--help"], {}),
      npxFlowmeter(["help", "-h"], {}),
      npxFlowmeter(["help", "run"], {}),
      npxFlowmeter(["help", "run", "--help"], {}),
      npxFlowmeter(["help", "nosuchcommand"], {}),
    ]);
    for (const outcome of [overview, short]) {
      expect(outcome.code, outcome.printed).toBe(0);
      expect(outcome.printed).toContain("usage: flowmeter <command> [options]");
    }
    for (const outcome of [ofRun, ofRunHelp]) {
      expect(outcome.code, outcome.printed).toBe(0);
      expect(outcome.printed).toContain("usage: flowmeter run <workflow.yaml|workflow.json>");
    }
    expect(unknown.code).toBe(64);
    expect(unknown.printed).toContain("unknown command 'nosuchcommand'");
  }, 60_000);
});
