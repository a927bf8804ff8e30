/**
 * The run API against real Redis and a real runner (startRunner): every route, every error code, and every answer
 * checked against the OpenAPI document (status listed, body valid by ajv). The last test asserts that every
 * documented status of every operation was seen.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { request as httpRequest } from "node:http";
import { join } from "node:path";
import request, { type Response } from "supertest";
import { Ajv2020, type ValidateFunction } from "ajv/dist/2020.js";
import { Queue } from "bullmq";
import type { Express } from "express";
import type { Redis } from "ioredis";
import { createLogger, createRedis } from "@flowmeter/platform";
import { JOB_CATALOG, isTerminalRunEvent, type RunEvent, type RunEventsJob, type RunView, type StageLogLine, type StageView } from "@flowmeter/shared";
import { deleteQueuePrefix, tempDir, testQueuePrefix, testRedisUrl, waitFor } from "@flowmeter/test-utils";
import { parseRunnerConfig } from "../config.js";
import { RunReconciler } from "../fleet/run-reconciler.js";
import { runKey } from "../store/run-keys.js";
import { RunStore } from "../store/run-store.js";
import { createRunnerMetrics } from "../metrics.js";
import { startRunner, type RunningRunner } from "../start-runner.js";
import { createRunnerApp } from "./app.js";
import { OPENAPI_DOCUMENT } from "./openapi.js";
import { LOGS_LIMIT, MAX_BODY_NESTING_DEPTH } from "./api-limits.js";

const quiet = createLogger("runner", "error", () => {});
type Method = "get" | "post" | "put" | "delete";
type Target = string | Express;

// ---------------------------------------------------------------------------------------------------------
// The contract: every answer's status must be listed for its operation, and its body valid against the schema.
// ---------------------------------------------------------------------------------------------------------

const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: true });
ajv.addSchema(OPENAPI_DOCUMENT, "openapi");
const validators = new Map<string, ValidateFunction>();
const seen = new Set<string>();

interface ResponseObject {
  $ref?: string;
  content?: Record<string, { schema: object }>;
}

function resolveResponse(response: ResponseObject): ResponseObject {
  if (response.$ref === undefined) return response;
  const name = response.$ref.replace("#/components/responses/", "");
  return (OPENAPI_DOCUMENT.components.responses as Record<string, ResponseObject>)[name] as ResponseObject;
}

function validatorFor(key: string, schema: object): ValidateFunction {
  let validate = validators.get(key);
  if (validate === undefined) {
    // The schema's refs point into the document: "#/components/…" → "openapi#/components/…".
    validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')) as object);
    validators.set(key, validate);
  }
  return validate;
}

function expectValid(key: string, schema: object, body: unknown): void {
  const validate = validatorFor(key, schema);
  const valid = validate(body);
  expect(valid, `${key}: ${ajv.errorsText(validate.errors)}\n${JSON.stringify(body).slice(0, 2000)}`).toBe(true);
}

function checkContract(res: Response, method: Method, template: string): void {
  const operations = (OPENAPI_DOCUMENT.paths as unknown as Record<string, Record<string, { responses: Record<string, ResponseObject> }>>)[template];
  const operation = operations?.[method];
  if (operation === undefined) {
    // A method the path does not serve (or an unknown path): 404/405 with the error body.
    expect([404, 405]).toContain(res.status);
    expectValid("Error", { $ref: "#/components/schemas/Error" }, res.body);
    return;
  }
  const status = String(res.status);
  const listed = operation.responses[status] ?? operation.responses["default"];
  expect(listed, `${method.toUpperCase()} ${template} answered ${status}, which the document does not list`).toBeDefined();
  const response = resolveResponse(listed as ResponseObject);
  const type = (res.headers["content-type"] ?? "").split(";")[0] ?? "";
  const content = response.content?.[type];
  expect(content, `${method.toUpperCase()} ${template} ${status}: content type ${type} not documented`).toBeDefined();
  expectValid(`${method} ${template} ${status}`, content?.schema ?? {}, type === "application/json" ? res.body : res.text);
  if (operation.responses[status] !== undefined) seen.add(`${method} ${template} ${status}`);
}

async function call(
  target: Target,
  method: Method,
  template: string,
  path: string,
  options: { json?: unknown; raw?: string; headers?: Record<string, string>; contentType?: string } = {},
): Promise<Response> {
  let req = request(target)[method](path);
  for (const [name, value] of Object.entries(options.headers ?? {})) req = req.set(name, value);
  if (options.raw !== undefined) {
    req = req.set("content-type", options.contentType ?? "application/json").send(options.raw);
  } else if (options.json !== undefined) req = req.send(options.json as object);
  const res = await req;
  expect(res.headers["content-type"] ?? "").not.toContain("text/html");
  checkContract(res, method, template);
  return res;
}

/** A POST whose body declares no Content-Type at all (supertest always adds one). */
async function postWithoutContentType(url: string, body: string): Promise<{ status: number; body: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: "POST", headers: { "content-length": Buffer.byteLength(body) } }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown }));
    });
    req.on("error", reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------------------

const sleepy = (name: string, seconds: number) => ({
  name,
  stages: [
    { name: "wait", driver: "shell", run: `sleep ${seconds}` },
    { name: "after", driver: "shell", run: "true", depends_on: ["wait"] },
  ],
});

describe("run API (real Redis, real runner)", () => {
  const prefix = testQueuePrefix("api");
  const idlePrefix = testQueuePrefix("api-idle"); // no runner takes its runs
  const dir = tempDir("api");
  const workflowsDir = join(dir.path, "flows");
  let runner: RunningRunner;
  let other: Express; // a second API instance on the same prefix, with its own connection
  let idle: Express; // an API instance on a prefix no runner serves
  let secured: Express; // with bearer tokens
  const connections: Redis[] = [];
  const stores: RunStore[] = [];
  let idleStore: RunStore;

  function apiApp(appPrefix: string, apiTokens: string[] = [], maxActiveRuns?: number): Express {
    const redis = createRedis(testRedisUrl(), "producer");
    connections.push(redis);
    const store = new RunStore(redis, { prefix: appPrefix, retentionSeconds: 600 });
    stores.push(store);
    if (appPrefix === idlePrefix && apiTokens.length === 0) idleStore = store;
    return createRunnerApp({
      listenHost: "127.0.0.1",
      metrics: createRunnerMetrics(["shell", "node"]),
      logger: quiet,
      health: () => ({ status: "ok", runner_id: "api-only", active_runs: 0, spooled_items: 0, redis: redis.status }),
      runs: { store, workflowsDir, drivers: ["shell", "node"], apiTokens, ...(maxActiveRuns === undefined ? {} : { maxActiveRuns }) },
    });
  }

  async function getRun(target: Target, runId: string, query = ""): Promise<RunView> {
    return (await call(target, "get", "/v1/runs/{run_id}", `/v1/runs/${runId}${query}`)).body as RunView;
  }

  async function waitForState(target: Target, runId: string, states: string[]): Promise<RunView> {
    return waitFor(
      async () => {
        const run = await getRun(target, runId);
        return states.includes(run.state) ? run : undefined;
      },
      { timeoutMs: 20_000, what: `run ${runId} in ${states.join("|")}` },
    );
  }

  async function allEvents(target: Target, runId: string, query = ""): Promise<RunEvent[]> {
    return (await call(target, "get", "/v1/runs/{run_id}/events", `/v1/runs/${runId}/events${query}`)).body.events as RunEvent[];
  }

  beforeAll(async () => {
    mkdirSync(workflowsDir, { recursive: true });
    writeFileSync(join(workflowsDir, "hello.yaml"), "name: hello\nstages:\n  - name: greet\n    driver: shell\n    run: echo hello\n");
    writeFileSync(join(workflowsDir, "bad.yaml"), "name: bad\nstages:\n  - name: build\n    driver: docker\n    run: make\n");
    writeFileSync(join(dir.path, "outside.yaml"), "name: outside\nstages:\n  - name: x\n    driver: shell\n    run: 'true'\n");
    symlinkSync(join(dir.path, "outside.yaml"), join(workflowsDir, "escape.yaml"));
    const config = parseRunnerConfig({
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: prefix,
      RUNNER_PORT: "0",
      FLOWMETER_DATA_DIR: dir.path,
      RUNNER_WORKFLOWS_DIR: workflowsDir,
      RUNNER_MAX_RUNS: "8",
      RUNNER_SAMPLE_INTERVAL_MS: "100",
      RUNNER_HEARTBEAT_INTERVAL_MS: "100",
      RUNNER_TELEMETRY_BUFFER_SIZE: "10",
      RUNNER_STAGE_KILL_GRACE_MS: "200",
      RUNNER_SHUTDOWN_TIMEOUT_MS: "300",
      RUNNER_LEASE_MS: "1500",
      RUNNER_RECONCILE_INTERVAL_MS: "300",
    });
    runner = await startRunner(config, quiet);
    await runner.consumer.ready();
    other = apiApp(prefix);
    idle = apiApp(idlePrefix);
    secured = apiApp(idlePrefix, ["s3cret-token"]);
    await waitFor(() => (connections.every((redis) => redis.status === "ready") ? true : undefined));
  });

  afterAll(async () => {
    await runner.stop();
    for (const store of stores) await store.close();
    for (const redis of connections) redis.disconnect();
    await deleteQueuePrefix(prefix);
    await deleteQueuePrefix(idlePrefix);
    dir.remove();
  });

  let finishedRunId = "";

  it("serves what stages wrote, line by line (GET /v1/runs/{id}/logs): all of a run, one stage, from a seq", async () => {
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: {
        workflow: {
          name: "logs",
          stages: [
            { name: "a", driver: "shell", run: "echo about to fail; echo oops >&2; exit 3" },
            { name: "b", driver: "shell", run: "for i in 1 2 3; do echo line $i; done" },
          ],
        },
      },
    });
    const runId = created.body.run_id as string;
    await waitForState(runner.url, runId, ["failed"]);
    const all = await call(other, "get", "/v1/runs/{run_id}/logs", `/v1/runs/${runId}/logs`);
    const lines = all.body.lines as StageLogLine[];
    expect(lines.map((line) => line.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(all.body).toMatchObject({ run_id: runId, attempt_id: created.body.attempt_id, next_seq: 6 });
    const text = (stage: string) => lines.filter((line) => line.stage_name === stage).map((line) => `${line.stream}: ${line.line}`);
    expect(text("a").sort()).toEqual(["stderr: oops", "stdout: about to fail"]);
    expect(text("b")).toEqual(["stdout: line 1", "stdout: line 2", "stdout: line 3"]);

    const firstOfB = lines.find((line) => line.stage_name === "b")?.seq ?? 0;
    const page = await call(runner.url, "get", "/v1/runs/{run_id}/logs", `/v1/runs/${runId}/logs?stage=b&from_seq=${firstOfB + 1}&limit=1`);
    expect((page.body.lines as StageLogLine[]).map((line) => line.line)).toEqual(["line 2"]);
    const rest = await call(runner.url, "get", "/v1/runs/{run_id}/logs", `/v1/runs/${runId}/logs?stage=b&from_seq=${page.body.next_seq as number}`);
    expect((rest.body.lines as StageLogLine[]).map((line) => line.line)).toEqual(["line 3"]);

    // ?q= searches the lines (ignoring case), alone, with a stage, and page by page.
    const search = async (query: string) => (await call(runner.url, "get", "/v1/runs/{run_id}/logs", `/v1/runs/${runId}/logs?${query}`)).body;
    expect(((await search("q=LINE")).lines as StageLogLine[]).map((line) => line.line)).toEqual(["line 1", "line 2", "line 3"]);
    expect(((await search("q=o&stage=a")).lines as StageLogLine[]).map((line) => line.line).sort()).toEqual(["about to fail", "oops"]);
    const firstHit = await search("q=line%202&limit=1");
    expect([(firstHit.lines as StageLogLine[]).map((line) => line.line), firstHit.next_seq]).toEqual([["line 2"], firstOfB + 2]);
    expect(await search(`q=line%202&from_seq=${firstHit.next_seq as number}`)).toMatchObject({ lines: [], next_seq: 6 });
    for (const query of ["from_seq=-1", "from_seq=x", "stage=", "q=", "limit=0", `limit=${LOGS_LIMIT.max + 1}`]) {
      const res = await call(runner.url, "get", "/v1/runs/{run_id}/logs", `/v1/runs/${runId}/logs?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, "INVALID_PARAMS"]);
    }
    expect((await call(runner.url, "get", "/v1/runs/{run_id}/logs", "/v1/runs/no-such-run/logs")).status).toBe(404);
  });

  it("takes a run policy (validated, echoed in GET, applied): past run_timeout_secs the run fails run_timed_out", async () => {
    for (const [policy, message] of [
      [{ run_timeout_secs: 0 }, "policy.run_timeout_secs must be an integer between 1 and 604800"],
      [{ stage_retries: 1.5 }, "policy.stage_retries must be an integer between 0 and 100"],
      [{ timeout: 5 }, 'policy: unknown field "timeout"'],
      ["fast", "policy must be a JSON object"],
    ] as const) {
      const res = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("bad-policy", 1), policy } });
      expect([res.status, res.body.code]).toEqual([400, "INVALID_PARAMS"]);
      expect(res.body.message).toContain(message);
    }
    const policy = { run_timeout_secs: 1, stage_timeout_secs: 60, stage_retries: 0, kill_grace_secs: 1 };
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: { workflow: { name: "bounded", stages: [{ name: "slow", driver: "shell", run: "sleep 30" }] }, policy },
    });
    expect(created.status).toBe(201);
    const runId = created.body.run_id as string;
    expect((await getRun(runner.url, runId)).policy).toEqual(policy);
    const ended = await waitForState(runner.url, runId, ["failed"]);
    expect(ended).toMatchObject({ terminal_reason: "run_timed_out", error: "run timed out after 1s", policy });
    const events = await allEvents(runner.url, runId);
    expect(events.find((event) => event.event_type === "stage.failed")?.payload).toMatchObject({ timed_out: true, cancelled: false });
  });

  it("creates a run from an inline workflow; any runner executes it; run, events (v1, v2) and stages read back", async () => {
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: {
        workflow: {
          name: "inline",
          stages: [
            { name: "build", driver: "shell", run: "echo built" },
            { name: "test", driver: "node", run: "process.exit(JSON.parse(process.env.FLOWMETER_INPUT).code)", depends_on: ["build"] },
          ],
        },
        input: { code: 0 },
      },
    });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ state: "queued" });
    expect(created.headers["location"]).toBe(`/v1/runs/${created.body.run_id as string}`);
    const runId = created.body.run_id as string;
    finishedRunId = runId;

    const run = await waitForState(runner.url, runId, ["succeeded", "failed", "cancelled"]);
    expect(run).toMatchObject({
      run_id: runId,
      attempt_id: created.body.attempt_id,
      state: "succeeded",
      workflow: "inline",
      terminal_reason: "succeeded",
      runner_id: runner.runnerId,
      error: null,
    });
    expect(run.started_at).not.toBeNull();
    expect(run.ended_at).not.toBeNull();
    expect(run.lease_expires_at).toBeNull();
    expect(run.last_event?.event_type).toBe("run.finished");
    expect((await getRun(runner.url, runId, "?api_version=v2")).last_event?.event_type).toBe("RunCompleted");

    const page = await call(runner.url, "get", "/v1/runs/{run_id}/events", `/v1/runs/${runId}/events`);
    const events = page.body.events as RunEvent[];
    expect(events.map((event) => event.event_type)).toEqual([
      "run.started",
      "stage.queued",
      "stage.queued",
      "stage.started",
      "stage.completed",
      "stage.started",
      "stage.completed",
      "run.finished",
    ]);
    expect(events.map((event) => event.seq)).toEqual([0, 1, 2, 3, 4, 5, 6, 7]);
    expect(page.body).toMatchObject({ run_id: runId, has_more: false, next_from_event_id: events.at(-1)?.event_id });
    const v2 = await allEvents(runner.url, runId, "?api_version=v2");
    expect(v2.map((event) => event.event_type)).toEqual(events.map((event) => event.event_type_v2));
    expect(v2.map((event) => event.event_type)).toContain("StageSucceeded");
    expect(await allEvents(runner.url, runId, "?api_version=v1")).toEqual(events);

    const stages = await call(runner.url, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${runId}/stages`);
    expect(stages.body).toMatchObject({ run_id: runId, attempt_id: created.body.attempt_id, state: "succeeded" });
    expect(stages.body.stages).toMatchObject([
      { stage_name: "build", group_id: "g0", depends_on: [], driver: "shell", status: "succeeded", stage_attempt: 1, exit_code: 0 },
      { stage_name: "test", group_id: "g1", depends_on: ["build"], driver: "node", status: "succeeded", stage_attempt: 1, exit_code: 0 },
    ]);
    for (const stage of stages.body.stages as Array<{ duration_ms: number; started_at: string; completed_at: string }>) {
      expect(stage.duration_ms).toBeGreaterThanOrEqual(0);
      expect(Date.parse(stage.completed_at)).toBeGreaterThanOrEqual(Date.parse(stage.started_at));
    }
  });

  it("is idempotent by run_id: the same request twice starts one run (200 the second time), another request is 409 RUN_ID_CONFLICT; once ended, 409 ALREADY_TERMINAL", async () => {
    const runId = `idem-${Date.now()}`;
    const body = { workflow: sleepy("idem", 0.4), run_id: runId };
    const first = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: body });
    const second = await call(other, "post", "/v1/runs", "/v1/runs", { json: body });
    expect(first.status).toBe(201);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ run_id: runId, attempt_id: first.body.attempt_id });
    expect(["queued", "running"]).toContain(second.body.state);
    // The same request with its keys in another order is the same request; another workflow is a conflict.
    const reordered = await call(other, "post", "/v1/runs", "/v1/runs", {
      json: { run_id: runId, workflow: { stages: body.workflow.stages, name: body.workflow.name } },
    });
    expect(reordered.status).toBe(200);
    const conflict = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("idem", 0.5), run_id: runId } });
    expect(conflict.status).toBe(409);
    expect(conflict.body).toMatchObject({ code: "RUN_ID_CONFLICT", retryable: false });
    const otherInput = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { ...body, input: { changed: true } } });
    expect(otherInput.body).toMatchObject({ code: "RUN_ID_CONFLICT" });
    await waitForState(runner.url, runId, ["succeeded"]);
    const events = await allEvents(runner.url, runId);
    expect(events.filter((event) => event.event_type === "run.started")).toHaveLength(1);
    expect(events.filter(isTerminalRunEvent)).toHaveLength(1);
    expect(new Set(events.map((event) => event.attempt_id))).toEqual(new Set([first.body.attempt_id]));
    const again = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: body });
    expect(again.status).toBe(409);
    expect(again.body).toMatchObject({ code: "ALREADY_TERMINAL", retryable: false });
    expect(again.body.message).toContain("succeeded");
  });

  it("refuses an invalid workflow with INVALID_SPEC naming stage and field, and bad bodies with INVALID_PARAMS; nothing is queued", async () => {
    const queue = (stores[0] as RunStore).runQueue;
    const before = await queue.getJobCounts();
    const spec = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: {
        workflow: {
          name: "bad",
          stages: [
            { name: "a", driver: "shell", run: "true" },
            { name: "b", driver: "docker", depends_on: ["zz"] },
          ],
        },
      },
    });
    expect(spec.status).toBe(400);
    expect(spec.body.code).toBe("INVALID_SPEC");
    expect(spec.body.message).toContain('stage "b": unknown driver "docker"');
    expect(spec.body.message).toContain('stage "b": run is required');
    expect(spec.body.message).toContain('stage "b": depends_on names unknown stage "zz"');
    expect((await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: "not an object" } })).body.code).toBe("INVALID_SPEC");

    const params: Array<[string, { json?: unknown; raw?: string }, string]> = [
      ["not JSON", { raw: '{"workflow": ' }, "not valid JSON"],
      ["an array", { json: [1] }, "JSON object"],
      ["neither workflow nor file", { json: { input: 1 } }, "exactly one of workflow"],
      ["both", { json: { workflow: sleepy("x", 0), file: "hello.yaml" } }, "exactly one of workflow"],
      ["an unknown field", { json: { workflow: sleepy("x", 0), priority: 1 } }, 'unknown field "priority"'],
      ["a run_id with a colon", { json: { workflow: sleepy("x", 0), run_id: "a:b" } }, "run_id"],
      ["a run_id that is not a string", { json: { workflow: sleepy("x", 0), run_id: 7 } }, "run_id"],
      ["concurrency 0", { json: { workflow: sleepy("x", 0), concurrency: 0 } }, "concurrency"],
      ["a file that is not a string", { json: { file: 42 } }, "file must be"],
      ["a bad api_version", { json: { workflow: sleepy("x", 0) } }, "api_version"],
    ];
    for (const [what, options, message] of params) {
      const path = what === "a bad api_version" ? "/v1/runs?api_version=v9" : "/v1/runs";
      const res = await call(runner.url, "post", "/v1/runs", path, options);
      expect([what, res.status, res.body.code]).toEqual([what, 400, "INVALID_PARAMS"]);
      expect(res.body.message).toContain(message);
    }
    // Only JSON bodies: a text/plain POST (no preflight from a web page, nor from an old client) starts nothing.
    const body = JSON.stringify({ workflow: { name: "sneaky", stages: [{ name: "a", driver: "shell", run: "touch /tmp/should-not-run" }] } });
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1"]) {
      const res = await call(runner.url, "post", "/v1/runs", "/v1/runs", { raw: body, contentType });
      expect([contentType, res.status, res.body.code, res.body.retryable]).toEqual([contentType, 415, "INVALID_PARAMS", false]);
      expect(res.body.message).toContain("is not accepted; send application/json");
    }
    const undeclared = await postWithoutContentType(`${runner.url}/v1/runs`, body);
    expect(undeclared).toEqual({
      status: 415,
      body: { code: "INVALID_PARAMS", message: "Content-Type is missing; send application/json (UTF-8)", retryable: false },
    });
    // (accepted ones go to the API on a prefix no runner serves: queued, never run)
    expect((await call(idle, "post", "/v1/runs", "/v1/runs", { raw: body, contentType: "Application/JSON; charset=UTF-8" })).status).toBe(201);

    // Nesting: 64 levels (the body is level 1) is accepted; one more, or 400,000 (once a 500), is 400 naming the limit.
    const nested = (levels: number): string => `{"workflow":${JSON.stringify(sleepy("deep", 0))},"input":${"[".repeat(levels)}${"]".repeat(levels)}}`;
    expect((await call(idle, "post", "/v1/runs", "/v1/runs", { raw: nested(MAX_BODY_NESTING_DEPTH - 1) })).status).toBe(201);
    for (const levels of [MAX_BODY_NESTING_DEPTH, 400_000]) {
      const res = await call(runner.url, "post", "/v1/runs", "/v1/runs", { raw: nested(levels) });
      expect([levels, res.status, res.body.code, res.body.retryable]).toEqual([levels, 400, "INVALID_PARAMS", false]);
      expect(res.body.message).toContain(`deeper than ${MAX_BODY_NESTING_DEPTH} levels`);
    }
    const deepCancel = await call(runner.url, "post", "/v1/runs/{run_id}/cancel", "/v1/runs/nosuchrun/cancel", { raw: `{"reason":${"[".repeat(100_000)}` });
    expect([deepCancel.status, deepCancel.body.code]).toEqual([400, "INVALID_PARAMS"]);
    const tooLarge = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("big", 0), input: "x".repeat(1_100_000) } });
    expect(tooLarge.status).toBe(413);
    expect(tooLarge.body).toMatchObject({ code: "PAYLOAD_TOO_LARGE", retryable: false });
    expect(await queue.getJobCounts()).toEqual(before);
  });

  it("runs workflow files from RUNNER_WORKFLOWS_DIR and refuses paths leaving it", async () => {
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { file: "hello.yaml" } });
    expect(created.status).toBe(201);
    expect(await waitForState(runner.url, created.body.run_id as string, ["succeeded", "failed"])).toMatchObject({ state: "succeeded", workflow: "hello" });
    const refused: Array<[string, string]> = [
      ["../outside.yaml", "outside the workflows directory"],
      [join(dir.path, "outside.yaml"), "outside the workflows directory"],
      ["escape.yaml", "symbolic link"],
      ["missing.yaml", "does not exist"],
      [".", "outside the workflows directory"],
    ];
    for (const [file, message] of refused) {
      const res = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { file } });
      expect([file, res.status, res.body.code]).toEqual([file, 400, "INVALID_PARAMS"]);
      expect(res.body.message).toContain(message);
      if (!file.startsWith("/")) expect(res.body.message).not.toContain(dir.path); // no server paths in answers
    }
    const bad = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { file: "bad.yaml" } });
    expect(bad.body).toMatchObject({ code: "INVALID_SPEC" });
    expect(bad.body.message).toContain('invalid workflow (bad.yaml): stage "build": unknown driver "docker"');
  });

  it("lists runs by state in bounded pages with a cursor, honouring api_version=v2; bad parameters are INVALID_PARAMS", async () => {
    const active: string[] = [];
    for (let index = 0; index < 2; index += 1) {
      active.push((await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy(`long${index}`, 4) } })).body.run_id as string);
    }
    const activeList = await call(runner.url, "get", "/v1/runs", "/v1/runs?state=active");
    expect((activeList.body.runs as RunView[]).map((run) => run.run_id)).toEqual([...active].reverse()); // newest first
    expect((activeList.body.runs as RunView[]).every((run) => run.state === "queued" || run.state === "running")).toBe(true);
    expect(activeList.body.next_cursor).toBeNull();

    const walk = async (query: string, limit: number): Promise<RunView[]> => {
      const runs: RunView[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 50; pages += 1) {
        const res: Response = await call(other, "get", "/v1/runs", `/v1/runs?limit=${limit}${query}${cursor === null ? "" : `&cursor=${cursor}`}`);
        expect((res.body.runs as RunView[]).length).toBeLessThanOrEqual(limit);
        runs.push(...(res.body.runs as RunView[]));
        cursor = res.body.next_cursor as string | null;
        if (cursor === null) return runs;
      }
      throw new Error("too many pages");
    };
    const terminal = await walk("&state=terminal", 2);
    const terminalIds = terminal.map((run) => run.run_id);
    expect(new Set(terminalIds).size).toBe(terminalIds.length);
    expect(terminalIds).toContain(finishedRunId);
    expect(terminal.every((run) => ["succeeded", "failed", "cancelled"].includes(run.state))).toBe(true);
    const endTimes = terminal.map((run) => Date.parse(run.ended_at ?? ""));
    expect(endTimes).toEqual([...endTimes].sort((a, b) => b - a)); // most recently ended first

    const everything = await walk("", 1);
    expect(everything.map((run) => run.run_id)).toEqual([...[...active].reverse(), ...terminalIds]);

    const v2 = await call(runner.url, "get", "/v1/runs", "/v1/runs?state=terminal&api_version=v2");
    const finished = (v2.body.runs as RunView[]).find((run) => run.run_id === finishedRunId);
    expect(finished?.last_event?.event_type).toBe("RunCompleted");

    const activeCursor = (await call(runner.url, "get", "/v1/runs", "/v1/runs?state=active&limit=1")).body.next_cursor as string;
    for (const query of [
      "state=bogus",
      "limit=0",
      "limit=501",
      "limit=abc",
      "cursor=garbage",
      `state=terminal&cursor=${activeCursor}`,
      "api_version=v3",
      "state=active&state=terminal",
    ]) {
      const res = await call(runner.url, "get", "/v1/runs", `/v1/runs?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, "INVALID_PARAMS"]);
    }
    for (const runId of active) await call(runner.url, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { json: { reason: "test cleanup" } });
  });

  it("lists runs by workflow, by one state and since a time, across pages; a bad since is INVALID_PARAMS", async () => {
    const before = new Date().toISOString();
    const made: Array<{ id: string; workflow: string }> = [];
    for (const [workflow, run] of [
      ["listed-ok", "true"],
      ["listed-bad", "exit 1"],
      ["listed-ok", "true"],
      ["listed-bad", "exit 1"],
      ["listed-ok", "true"],
    ] as const) {
      const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
        json: { workflow: { name: workflow, stages: [{ name: "s", driver: "shell", run }] } },
      });
      made.push({ id: created.body.run_id as string, workflow });
      await waitForState(runner.url, created.body.run_id as string, ["succeeded", "failed"]);
    }
    const walk = async (query: string, limit: number): Promise<string[]> => {
      const ids: string[] = [];
      let cursor: string | null = null;
      for (let pages = 0; pages < 20; pages += 1) {
        const res: Response = await call(runner.url, "get", "/v1/runs", `/v1/runs?limit=${limit}&${query}${cursor === null ? "" : `&cursor=${cursor}`}`);
        ids.push(...(res.body.runs as RunView[]).map((run) => run.run_id));
        cursor = res.body.next_cursor as string | null;
        if (cursor === null) return ids;
      }
      throw new Error("too many pages");
    };
    const newestFirst = (workflow: string) =>
      made
        .filter((run) => run.workflow === workflow)
        .map((run) => run.id)
        .reverse();
    expect(await walk("workflow=listed-ok", 2)).toEqual(newestFirst("listed-ok"));
    expect(await walk("workflow=listed-bad&state=failed", 1)).toEqual(newestFirst("listed-bad"));
    expect(await walk("workflow=listed-bad&state=succeeded", 5)).toEqual([]);
    expect(await walk("workflow=listed-ok&state=running", 5)).toEqual([]);
    expect(await walk(`since=${encodeURIComponent(before)}&state=terminal`, 3)).toEqual(made.map((run) => run.id).reverse());
    const failedSince = await call(runner.url, "get", "/v1/runs", `/v1/runs?state=failed&since=${encodeURIComponent(before)}`);
    expect((failedSince.body.runs as RunView[]).map((run) => [run.run_id, run.state])).toEqual(newestFirst("listed-bad").map((id) => [id, "failed"]));
    expect(await walk(`since=${encodeURIComponent(new Date(Date.now() + 60_000).toISOString())}`, 5)).toEqual([]);
    for (const query of ["since=yesterday", "since=2026-13-45T00:00:00Z", "workflow=no%20spaces", "state=finished", "since="]) {
      const res = await call(runner.url, "get", "/v1/runs", `/v1/runs?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, "INVALID_PARAMS"]);
    }
  });

  it("reads events after a cursor (exclusive), pages with next_from_event_id, and refuses an unknown from_event_id", async () => {
    const events = await allEvents(runner.url, finishedRunId);
    const middle = events[3] as RunEvent;
    const resumed = await call(runner.url, "get", "/v1/runs/{run_id}/events", `/v1/runs/${finishedRunId}/events?from_event_id=${middle.event_id}`);
    expect((resumed.body.events as RunEvent[]).map((event) => event.seq)).toEqual(events.slice(4).map((event) => event.seq));

    const paged: RunEvent[] = [];
    let from: string | null = null;
    let hasMore = true;
    while (hasMore) {
      const res: Response = await call(
        other,
        "get",
        "/v1/runs/{run_id}/events",
        `/v1/runs/${finishedRunId}/events?limit=3${from === null ? "" : `&from_event_id=${from}`}`,
      );
      paged.push(...(res.body.events as RunEvent[]));
      from = res.body.next_from_event_id as string;
      hasMore = res.body.has_more as boolean;
    }
    expect(paged).toEqual(events);
    const atEnd = await call(runner.url, "get", "/v1/runs/{run_id}/events", `/v1/runs/${finishedRunId}/events?from_event_id=${from as string}`);
    expect(atEnd.body).toEqual({ run_id: finishedRunId, events: [], next_from_event_id: from, has_more: false });

    const otherRunEvent = (
      await allEvents(
        runner.url,
        (await call(runner.url, "get", "/v1/runs", "/v1/runs?state=terminal")).body.runs.find((run: RunView) => run.run_id !== finishedRunId).run_id as string,
      )
    )[0] as RunEvent;
    for (const query of [
      "from_event_id=0190a0a0-0000-7000-8000-000000000000",
      `from_event_id=${otherRunEvent.event_id}`,
      "from_event_id=",
      "limit=10001",
      "limit=0",
      "api_version=v0",
    ]) {
      const res = await call(runner.url, "get", "/v1/runs/{run_id}/events", `/v1/runs/${finishedRunId}/events?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, "INVALID_PARAMS"]);
      if (query.startsWith("from_event_id=0")) expect(res.body.message).toContain("not an event of run");
    }
  });

  it("answers 404 NOT_FOUND for unknown runs on every run route", async () => {
    for (const [method, template, path] of [
      ["get", "/v1/runs/{run_id}", "/v1/runs/no-such-run"],
      ["get", "/v1/runs/{run_id}/events", "/v1/runs/no-such-run/events"],
      ["get", "/v1/runs/{run_id}/stages", "/v1/runs/no-such-run/stages"],
      ["get", "/v1/runs/{run_id}/telemetry", "/v1/runs/no-such-run/telemetry"],
      ["post", "/v1/runs/{run_id}/cancel", "/v1/runs/no-such-run/cancel"],
      ["post", "/v1/runs/{run_id}/rerun", "/v1/runs/no-such-run/rerun"],
      ["get", "/v1/runs/{run_id}", "/v1/runs/not%3Avalid"],
    ] as Array<[Method, string, string]>) {
      const res = await call(runner.url, method, template, path);
      expect([path, res.status, res.body]).toEqual([
        path,
        404,
        { code: "NOT_FOUND", message: expect.stringContaining("not found") as unknown, retryable: false },
      ]);
    }
    for (const template of ["/v1/runs/{run_id}", "/v1/runs/{run_id}/stages", "/v1/runs/{run_id}/telemetry"]) {
      const path = `${template.replace("{run_id}", finishedRunId)}?api_version=2`;
      expect((await call(runner.url, "get", template, path)).body.code).toBe("INVALID_PARAMS");
    }
  });

  it("shows live stages while the run is active, then telemetry from Redis: from_seq paging, stage filter, bounded buffer", async () => {
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: {
        workflow: {
          name: "live",
          stages: [
            { name: "slow", driver: "shell", run: "sleep 1.3" },
            { name: "next", driver: "shell", run: "true", depends_on: ["slow"] },
            { name: "also", driver: "shell", run: "true", depends_on: ["slow"] },
          ],
        },
      },
    });
    const runId = created.body.run_id as string;
    const live = await waitFor(async () => {
      const res = await call(other, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${runId}/stages`);
      return res.body.stages?.[0]?.status === "running" ? res.body : undefined;
    });
    expect(live.state).toBe("running");
    expect(live.stages).toMatchObject([
      { stage_name: "slow", status: "running", stage_attempt: 1, completed_at: null, exit_code: null, group_id: "g0" },
      { stage_name: "next", status: "queued", depends_on: ["slow"], started_at: null, group_id: "g1" },
      { stage_name: "also", status: "queued", depends_on: ["slow"], started_at: null, group_id: "g1" },
    ]);
    expect(live.stages[0].started_at).not.toBeNull();

    await waitForState(runner.url, runId, ["succeeded"]);
    const telemetry = await call(other, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry`);
    const samples = telemetry.body.samples as Array<{ seq: number; kind: string; stage_name: string }>;
    // ~13 host samples and ~13 heartbeats were taken; the buffer keeps the newest 10 (RUNNER_TELEMETRY_BUFFER_SIZE).
    expect(samples).toHaveLength(10);
    expect(samples.map((sample) => sample.seq)).toEqual(samples.map((_, index) => (samples[0]?.seq ?? 0) + index));
    expect(samples[0]?.seq).toBeGreaterThan(10);
    expect(new Set(samples.map((sample) => sample.kind))).toEqual(new Set(["host", "heartbeat"]));
    expect(telemetry.body).toMatchObject({ run_id: runId, attempt_id: created.body.attempt_id, next_seq: (samples.at(-1)?.seq ?? 0) + 1 });

    const from = samples[5]?.seq ?? 0;
    const page = await call(runner.url, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry?from_seq=${from}&limit=3`);
    expect((page.body.samples as Array<{ seq: number }>).map((sample) => sample.seq)).toEqual([from, from + 1, from + 2]);
    expect(page.body.next_seq).toBe(from + 3);
    const rest = await call(runner.url, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry?from_seq=${page.body.next_seq as number}`);
    expect((rest.body.samples as Array<{ seq: number }>).map((sample) => sample.seq)).toEqual(samples.slice(8).map((sample) => sample.seq));
    const slow = await call(runner.url, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry?stage_name=slow`);
    expect((slow.body.samples as Array<{ stage_name: string }>).length).toBeGreaterThan(0);
    expect((slow.body.samples as Array<{ stage_name: string }>).every((sample) => sample.stage_name.split(",").includes("slow"))).toBe(true);
    const past = await call(runner.url, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry?from_seq=100000`);
    expect(past.body).toMatchObject({ samples: [], next_seq: 100000 });
    for (const query of ["from_seq=-1", "from_seq=abc", "from_seq=1.5", "from_seq=", "limit=0", "limit=10001", "stage_name="]) {
      const res = await call(runner.url, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry?${query}`);
      expect([query, res.status, res.body.code]).toEqual([query, 400, "INVALID_PARAMS"]);
    }
  });

  it("cancels a running run (202, then stage.failed -1, stage.skipped, run.cancelled); twice gives the same answer; an ended run answers 200 with its stored state", async () => {
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("cancel-me", 10) } });
    const runId = created.body.run_id as string;
    await waitFor(async () =>
      (await call(runner.url, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${runId}/stages`)).body.stages?.[0]?.status === "running" ? true : undefined,
    );
    for (const [raw, message] of [
      ["{oops", "not valid JSON"],
      ["[]", "JSON object"],
      ['{"reason": 5}', "reason must be"],
      ['{"reason": ""}', "reason must be"],
      ['{"reason": "   "}', "reason must match"],
      ['{"why": "x"}', 'unknown field "why"'],
    ]) {
      const res = await call(runner.url, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { raw });
      expect([raw, res.status, res.body.code]).toEqual([raw, 400, "INVALID_PARAMS"]);
      expect(res.body.message).toContain(message);
    }
    const plain = await call(runner.url, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { raw: '{"reason":"x"}', contentType: "text/plain" });
    expect([plain.status, plain.body.code]).toEqual([415, "INVALID_PARAMS"]);
    expect((await getRun(runner.url, runId)).state).toBe("running"); // malformed requests cancelled nothing

    const started = Date.now();
    const first = await call(runner.url, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { json: { reason: "enough" } });
    const second = await call(other, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { json: { reason: "changed my mind" } });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({ run_id: runId, state: "running", cancel_reason: "enough" });
    expect([second.status, second.body.state, second.body.cancel_reason]).toEqual(
      second.status === 202 ? [202, "running", "enough"] : [200, "cancelled", "enough"],
    );

    const ended = await waitForState(runner.url, runId, ["cancelled"]);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(ended).toMatchObject({ terminal_reason: "cancelled", cancel_reason: "enough", error: null });
    const events = await allEvents(runner.url, runId);
    expect(events.find((event) => event.event_type === "stage.failed")).toMatchObject({ stage_name: "wait", payload: { exit_code: -1, cancelled: true } });
    expect(events.find((event) => event.event_type === "stage.skipped")).toMatchObject({ stage_name: "after" });
    expect(events.at(-1)).toMatchObject({ event_type: "run.cancelled", payload: { reason: "enough" } });
    expect(events.filter(isTerminalRunEvent)).toHaveLength(1);
    const stages = (await call(runner.url, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${runId}/stages`)).body.stages as Array<{
      status: string;
      exit_code: number | null;
    }>;
    expect(stages.map((stage) => [stage.status, stage.exit_code])).toEqual([
      ["failed", -1],
      ["skipped", null],
    ]);

    const stored = await getRun(runner.url, runId);
    const afterEnd = await call(runner.url, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`);
    const afterEndAgain = await call(other, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { json: { reason: "again" } });
    expect([afterEnd.status, afterEndAgain.status]).toEqual([200, 200]);
    expect(afterEnd.body).toEqual(stored);
    expect(afterEndAgain.body).toEqual(stored);
    expect(await allEvents(runner.url, runId)).toEqual(events); // nothing was added
  });

  it("cancels a queued run at once (no runner takes it): one run.cancelled event; twice gives the same answer", async () => {
    const created = await call(idle, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("queued", 1), run_id: `queued-${Date.now()}` } });
    const runId = created.body.run_id as string;
    expect((await getRun(idle, runId)).state).toBe("queued");
    const first = await call(idle, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`);
    const second = await call(idle, "post", "/v1/runs/{run_id}/cancel", `/v1/runs/${runId}/cancel`, { json: { reason: "later" } });
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({
      state: "cancelled",
      terminal_reason: "cancelled",
      cancel_reason: "cancelled through the run API",
      started_at: null,
      runner_id: null,
    });
    expect(second.body).toEqual(first.body);
    const events = await allEvents(idle, runId);
    expect(events).toMatchObject([
      { seq: 0, event_type: "run.cancelled", attempt_id: created.body.attempt_id, payload: { reason: "cancelled through the run API" } },
    ]);
    expect((await call(idle, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${runId}/stages`)).body.stages).toEqual([]);
    expect((await call(idle, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("queued", 1), run_id: runId } })).status).toBe(409);
  });

  it("fails a queued run whose job vanished (job_lost), once, with one terminal event", async () => {
    const created = await call(idle, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("lost", 1) } });
    const runId = created.body.run_id as string;
    await idleStore.runQueue.remove(runId);
    const reconcilers = [0, 1].map(
      () =>
        new RunReconciler({
          store: idleStore,
          jobLostGraceMs: 0,
          leaseMs: 1000,
          logger: quiet,
        }),
    );
    await new Promise((resolve) => setTimeout(resolve, 5));
    const failed = await Promise.all(reconcilers.map((reconciler) => reconciler.runOnce()));
    expect(failed.flat()).toEqual([runId]); // two reconcilers at once: one of them ends it
    expect(await getRun(idle, runId)).toMatchObject({ state: "failed", terminal_reason: "job_lost" });
    expect(await allEvents(idle, runId)).toMatchObject([{ event_type: "run.failed", payload: { reason: "job_lost" } }]);
  });

  it("two API instances agree: a run created through one is executed by the runner and read alike through both", async () => {
    const created = await call(other, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("shared", 0.2), input: { from: "other" } } });
    expect(created.status).toBe(201);
    const runId = created.body.run_id as string;
    await waitForState(other, runId, ["succeeded"]);
    expect(await getRun(other, runId)).toEqual(await getRun(runner.url, runId));
    expect(await allEvents(other, runId, "?api_version=v2")).toEqual(await allEvents(runner.url, runId, "?api_version=v2"));
    const listA = await call(other, "get", "/v1/runs", "/v1/runs?state=terminal&limit=500");
    const listB = await call(runner.url, "get", "/v1/runs", "/v1/runs?state=terminal&limit=500");
    expect(listA.body).toEqual(listB.body);
    expect(await getRun(runner.url, runId)).toMatchObject({ runner_id: runner.runnerId });
  });

  it("requires a bearer token on /v1/runs when tokens are configured; health, metrics and the document stay open", async () => {
    const paths = OPENAPI_DOCUMENT.paths as Record<string, Record<string, { security?: unknown[] }>>;
    for (const [template, operations] of Object.entries(paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        if (method === "parameters") continue;
        const path = template.replace("{run_id}", "some-run");
        if (operation.security !== undefined && operation.security.length === 0) {
          expect((await call(secured, method as Method, template, path)).status).toBe(200);
          continue;
        }
        for (const headers of [{}, { authorization: "Bearer wrong" }, { authorization: "Basic czNjcmV0LXRva2Vu" }] as Array<Record<string, string>>) {
          const res = await call(secured, method as Method, template, path, { headers });
          expect([template, method, res.status, res.body.code]).toEqual([template, method, 401, "UNAUTHORIZED"]);
          expect(res.headers["www-authenticate"]).toBe("Bearer");
        }
      }
    }
    const ok = await call(secured, "get", "/v1/runs", "/v1/runs?limit=1", { headers: { authorization: "Bearer s3cret-token" } });
    expect(ok.status).toBe(200);
  });

  it("answers unknown routes 404 and wrong methods 405, always with the error body", async () => {
    for (const [method, path, status, allow] of [
      ["get", "/v1/runs/x/y/z", 404, undefined],
      ["post", "/v1/nope", 404, undefined],
      ["get", "/", 404, undefined],
      ["get", "/v1/runs/", 404, undefined],
      ["delete", "/v1/runs", 405, "GET, HEAD, POST"],
      ["put", `/v1/runs/${finishedRunId}`, 405, "GET, HEAD"],
      ["get", `/v1/runs/${finishedRunId}/cancel`, 405, "POST"],
      ["post", `/v1/runs/${finishedRunId}/events`, 405, "GET, HEAD"],
      ["delete", "/v1/openapi.json", 405, "GET, HEAD"],
    ] as Array<[Method, string, number, string | undefined]>) {
      const res = await call(runner.url, method, "(none)", path);
      expect([path, res.status, res.body.code, res.headers["allow"]]).toEqual([path, status, "NOT_FOUND", allow]);
      expect(res.headers["content-type"]).toContain("application/json");
    }
  });

  it("serves health, metrics and the OpenAPI document", async () => {
    expect((await call(runner.url, "get", "/v1/health", "/v1/health")).body).toMatchObject({ status: "ok", runner_id: runner.runnerId, redis: "ready" });
    expect((await call(runner.url, "get", "/metrics", "/metrics")).text).toContain("flowmeter_runner_runs_reconciled_total");
    const document = (await call(runner.url, "get", "/v1/openapi.json", "/v1/openapi.json")).body as typeof OPENAPI_DOCUMENT;
    expect(document).toEqual(JSON.parse(JSON.stringify(OPENAPI_DOCUMENT)));
  });

  it("re-runs an ended run as a new run linked to it: all its stages, or with failed_only only those that did not succeed", async () => {
    const marker = join(dir.path, "rerun-marker");
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: {
        workflow: {
          name: "flaky",
          stages: [
            { name: "build", driver: "shell", run: "echo built" },
            // Fails until the marker exists: the first run fails here, a re-run after the "fix" succeeds.
            { name: "test", driver: "shell", run: `test -e ${marker} || { echo "no marker" >&2; exit 3; }`, depends_on: ["build"] },
            { name: "deploy", driver: "shell", run: "echo deployed", depends_on: ["test"] },
          ],
        },
        input: { n: 1 },
        concurrency: 2,
      },
    });
    const oldRunId = created.body.run_id as string;
    expect((await waitForState(runner.url, oldRunId, ["succeeded", "failed", "cancelled"])).state).toBe("failed");
    writeFileSync(marker, "");

    const failedOnly = await call(runner.url, "post", "/v1/runs/{run_id}/rerun", `/v1/runs/${oldRunId}/rerun?failed_only=true`);
    expect(failedOnly.status).toBe(201);
    const rerunId = failedOnly.body.run_id as string;
    expect(rerunId).not.toBe(oldRunId);
    expect(failedOnly.headers["location"]).toBe(`/v1/runs/${rerunId}`);
    expect(failedOnly.body).toMatchObject({ state: "queued", workflow: "flaky", rerun_of: oldRunId });
    expect((await waitForState(runner.url, rerunId, ["succeeded", "failed", "cancelled"])).state).toBe("succeeded");
    const stages = (await call(runner.url, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${rerunId}/stages`)).body.stages as StageView[];
    expect(stages.map((stage) => [stage.stage_name, stage.status, stage.depends_on])).toEqual([
      ["test", "succeeded", []],
      ["deploy", "succeeded", ["test"]],
    ]);
    // The old run is unchanged; the new one says what it re-runs.
    expect(await getRun(runner.url, oldRunId)).toMatchObject({ state: "failed", rerun_of: null });
    expect(await getRun(runner.url, rerunId)).toMatchObject({ rerun_of: oldRunId });

    // All stages, with the same input and concurrency.
    const all = await call(runner.url, "post", "/v1/runs/{run_id}/rerun", `/v1/runs/${oldRunId}/rerun?api_version=v2`);
    expect(all.status).toBe(201);
    const allId = all.body.run_id as string;
    expect((await waitForState(runner.url, allId, ["succeeded", "failed", "cancelled"])).state).toBe("succeeded");
    const allStages = (await call(runner.url, "get", "/v1/runs/{run_id}/stages", `/v1/runs/${allId}/stages`)).body.stages as StageView[];
    expect(allStages.map((stage) => stage.stage_name)).toEqual(["build", "test", "deploy"]);

    // Nothing failed: failed_only has nothing to run.
    const nothing = await call(runner.url, "post", "/v1/runs/{run_id}/rerun", `/v1/runs/${allId}/rerun?failed_only=true`);
    expect([nothing.status, nothing.body.code, nothing.body.message]).toEqual([
      409,
      "INVALID_PARAMS",
      `every stage of run ${allId} succeeded; nothing to re-run with failed_only`,
    ]);
    const bad = await call(runner.url, "post", "/v1/runs/{run_id}/rerun", `/v1/runs/${allId}/rerun?failed_only=yes`);
    expect([bad.status, bad.body.message]).toEqual([400, 'failed_only must be true or false, not "yes"']);

    // A run still queued (no runner serves the idle prefix) cannot be re-run yet.
    const queued = await call(idle, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("queued-rerun", 1) } });
    const active = await call(idle, "post", "/v1/runs/{run_id}/rerun", `/v1/runs/${queued.body.run_id as string}/rerun`);
    expect([active.status, active.body.code]).toEqual([409, "INVALID_PARAMS"]);
    expect(active.body.message).toContain("is still queued");
  });

  it("holds runs of a workflow past its max_concurrent_runs queued, saying why, and starts them as others end", async () => {
    const workflow = { name: "one-at-a-time", max_concurrent_runs: 1, stages: [{ name: "hold", driver: "shell", run: "sleep 0.8" }] };
    const first = (await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow } })).body.run_id as string;
    await waitForState(runner.url, first, ["running"]);
    const second = (await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow } })).body.run_id as string;
    const waiting = await waitFor(
      async () => {
        const run = await getRun(runner.url, second);
        return run.waiting_reason === null ? undefined : run;
      },
      { timeoutMs: 5000, what: "the second run's waiting_reason" },
    );
    expect(waiting).toMatchObject({ state: "queued", waiting_reason: 'workflow "one-at-a-time" has 1 of its max_concurrent_runs 1 running' });
    const ended = await waitForState(runner.url, first, ["succeeded", "failed"]);
    const later = await waitForState(runner.url, second, ["succeeded", "failed"]);
    expect([ended.state, later.state, later.waiting_reason]).toEqual(["succeeded", "succeeded", null]);
    expect(Date.parse(later.started_at ?? "")).toBeGreaterThanOrEqual(Date.parse(ended.ended_at ?? ""));
    const invalid = await call(runner.url, "post", "/v1/runs", "/v1/runs", { json: { workflow: { ...workflow, max_concurrent_runs: 0 } } });
    expect([invalid.status, invalid.body.message]).toEqual([400, "invalid workflow: workflow: max_concurrent_runs must be an integer between 1 and 1000"]);
  });

  it("answers 429 TOO_MANY_REQUESTS with Retry-After to new runs while RUNNER_API_MAX_ACTIVE_RUNS are active; a re-sent create still answers", async () => {
    const fullPrefix = testQueuePrefix("api-full"); // no runner: its runs stay queued
    const full = apiApp(fullPrefix, [], 1);
    try {
      await waitFor(() => (connections.every((redis) => redis.status === "ready") ? true : undefined));
      const first = await call(full, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("full", 1), run_id: "full-1" } });
      expect(first.status).toBe(201);
      const second = await call(full, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("full", 1) } });
      expect([second.status, second.headers["retry-after"], second.body.code, second.body.retryable]).toEqual([429, "5", "TOO_MANY_REQUESTS", true]);
      expect(second.body.message).toContain("RUNNER_API_MAX_ACTIVE_RUNS");
      // The same create again is idempotent, not a new run: answered as before.
      expect((await call(full, "post", "/v1/runs", "/v1/runs", { json: { workflow: sleepy("full", 1), run_id: "full-1" } })).status).toBe(200);
      // Once it ended there is room again; a re-run then fills it, and the next re-run waits.
      expect((await call(full, "post", "/v1/runs/{run_id}/cancel", "/v1/runs/full-1/cancel")).status).toBe(200);
      expect((await call(full, "post", "/v1/runs/{run_id}/rerun", "/v1/runs/full-1/rerun")).status).toBe(201);
      const rerun = await call(full, "post", "/v1/runs/{run_id}/rerun", "/v1/runs/full-1/rerun");
      expect([rerun.status, rerun.headers["retry-after"], rerun.body.code]).toEqual([429, "5", "TOO_MANY_REQUESTS"]);
    } finally {
      await deleteQueuePrefix(fullPrefix);
    }
  });

  it("saw every documented status of every operation, each body valid against the document", () => {
    const documented: string[] = [];
    for (const [template, operations] of Object.entries(OPENAPI_DOCUMENT.paths as Record<string, Record<string, { responses?: Record<string, unknown> }>>)) {
      for (const [method, operation] of Object.entries(operations)) {
        for (const status of Object.keys(operation.responses ?? {})) if (status !== "default") documented.push(`${method} ${template} ${status}`);
      }
    }
    expect(documented.length).toBeGreaterThan(30);
    expect(documented.filter((key) => !seen.has(key))).toEqual([]);
  });

  it("keeps a run's keys bounded: events and samples expire, terminal records expire with them", async () => {
    const redis = connections[0] as Redis;
    for (const suffix of ["events", "event-ids", "record", "terminal", "samples", "request"] as const) {
      const ttl = await redis.ttl(runKey(prefix, finishedRunId, suffix));
      if (suffix === "samples" && ttl === -2) continue; // a short run may have taken no sample
      expect([suffix, ttl > 0 && ttl <= 604_800]).toEqual([suffix, true]);
    }
  });
});

describe("run API with RUNNER_TELEMETRY_BUFFER_SIZE=0", () => {
  const prefix = testQueuePrefix("api-nobuf");
  const dir = tempDir("api-nobuf");
  let runner: RunningRunner;
  const redis = createRedis(testRedisUrl(), "worker");
  const events = new Queue<RunEventsJob>(JOB_CATALOG.runEvents.queue, { connection: redis, prefix });

  beforeAll(async () => {
    const config = parseRunnerConfig({
      REDIS_URL: testRedisUrl(),
      QUEUE_PREFIX: prefix,
      RUNNER_PORT: "0",
      FLOWMETER_DATA_DIR: dir.path,
      RUNNER_SAMPLE_INTERVAL_MS: "100",
      RUNNER_HEARTBEAT_INTERVAL_MS: "100",
      RUNNER_TELEMETRY_BUFFER_SIZE: "0",
    });
    runner = await startRunner(config, quiet);
    await runner.consumer.ready();
  });

  afterAll(async () => {
    await runner.stop();
    await events.close();
    redis.disconnect();
    await deleteQueuePrefix(prefix);
    dir.remove();
  });

  it("keeps no samples for the API (samples: [], next_seq = from_seq) while they still reach the run-events queue", async () => {
    const created = await call(runner.url, "post", "/v1/runs", "/v1/runs", {
      json: { workflow: { name: "nobuf", stages: [{ name: "a", driver: "shell", run: "sleep 0.5" }] } },
    });
    const runId = created.body.run_id as string;
    await waitFor(async () => ((await call(runner.url, "get", "/v1/runs/{run_id}", `/v1/runs/${runId}`)).body.state === "succeeded" ? true : undefined));
    for (const [query, nextSeq] of [
      ["", 0],
      ["?from_seq=3", 3],
    ] as const) {
      const res = await call(runner.url, "get", "/v1/runs/{run_id}/telemetry", `/v1/runs/${runId}/telemetry${query}`);
      expect(res.body).toEqual({ run_id: runId, attempt_id: created.body.attempt_id, next_seq: nextSeq, samples: [] });
    }
    expect(await redis.exists(runKey(prefix, runId, "samples"))).toBe(0);
    const jobs = await events.getJobs(["waiting"]);
    expect(jobs.flatMap((job) => job.data.samples).filter((sample) => sample.run_id === runId).length).toBeGreaterThan(3);
  });
});
