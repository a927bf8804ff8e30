import { createServer, type AddressInfo, type Socket } from "node:net";
import { gzipSync } from "node:zlib";
import { createLogger, createRedis } from "@flowmeter/platform";
import {
  CLI_INVOCATION_COLUMNS,
  JOB_CATALOG,
  toCliInvocationRow,
  type CliInvocationEvent,
  type CliInvocationRow,
  type ClientTelemetryJob,
} from "@flowmeter/shared";
import { childEntry, deleteQueuePrefix, legacyEntry, parentEntry, testQueuePrefix, testRedisUrl } from "@flowmeter/test-utils";
import type { Redis } from "ioredis";
import request, { type Response } from "supertest";
import { afterEach, describe, expect, it } from "vitest";
import { clientVersionOf, createIngestApp, type IngestApp } from "./app.js";
import { parseIngestConfig } from "./config.js";
import { closeIngestQueue, createIngestQueue, type ClientTelemetryQueue } from "./ingest/client-telemetry-queue.js";
import { ENQUEUE_TIMEOUT_MS } from "./ingest/queue-availability.js";

/** The exact batch of docs/swamp-telemetry.md §5: a parent and one failed child. */
const SWAMP_BATCH = `{"events":[
{"event":"cli_invocation","distinct_id":"user-uuid-1111","insert_id":"3f1c2b9e-8a4d-4e6f-9b21-5c7d8e9f0a1b",
 "properties":{"id":"3f1c2b9e-8a4d-4e6f-9b21-5c7d8e9f0a1b",
  "invocation":{"command":"workflow","args":["<REDACTED>"],"optionKeys":["--input","--repo-dir","--skip-checks"],
                "globalOptions":["--json"],"subcommand":"run"},
  "result":{"status":"success","exitCode":0},
  "startedAt":"2026-05-09T12:00:00.000Z","completedAt":"2026-05-09T12:00:04.321Z","durationMs":4321,
  "swampVersion":"20260509.120000.0","denoVersion":"2.3.1","platform":"linux",
  "invocationContext":{"agentSessionDetected":true,"isInteractive":false,"externalDatastoreConfigured":false,
                       "configuredAiTools":["claude"],"detectedAiTool":"claude"},
  "$repo_id":"repo-uuid-2222"}},
{"event":"cli_invocation","distinct_id":"user-uuid-1111","insert_id":"a7e4d2c1-0b3f-4c5d-8e6f-7a8b9c0d1e2f",
 "properties":{"id":"a7e4d2c1-0b3f-4c5d-8e6f-7a8b9c0d1e2f",
  "invocation":{"command":"model","args":["run","<REDACTED>","execute"],"optionKeys":[],"globalOptions":[],
                "subcommand":"method"},
  "result":{"status":"error","exitCode":1,"errorType":"Error","errorMessage":"command exited with code 1"},
  "startedAt":"2026-05-09T12:00:01.000Z","completedAt":"2026-05-09T12:00:02.250Z","durationMs":1250,
  "swampVersion":"20260509.120000.0","denoVersion":"2.3.1","platform":"linux",
  "invocationContext":{"agentSessionDetected":true,"isInteractive":false,"externalDatastoreConfigured":false,
                       "configuredAiTools":["claude"],"detectedAiTool":"claude"},
  "parentInvocationId":"3f1c2b9e-8a4d-4e6f-9b21-5c7d8e9f0a1b",
  "workflowContext":{"workflowName":"deploy","runId":"9d8c7b6a-5f4e-4d3c-2b1a-0f9e8d7c6b5a","jobName":"build",
                     "stepName":"validate","modelType":"command/shell","executor":"loopback"},
  "$repo_id":"repo-uuid-2222"}}
]}`;

interface Harness {
  ingest: IngestApp;
  queue: ClientTelemetryQueue;
  /** Every job waiting on the queue, oldest first. */
  jobs(): Promise<ClientTelemetryJob[]>;
  /** The row of every entry waiting on the queue (ingest serializes each entry's row once), in job order. */
  entries(): Promise<StoredRow[]>;
}

/** A row as ingest put it on the queue, without received_at (the receive time, which no test fixes). */
type StoredRow = Omit<CliInvocationRow, "received_at">;

/** The row ingest makes of `entry`, to compare with what it put on the queue. */
function row(entry: CliInvocationEvent): StoredRow {
  const { received_at: _receivedAt, ...rest } = toCliInvocationRow(entry, "");
  return rest;
}

function rowsOf(job: ClientTelemetryJob): StoredRow[] {
  if (job.rows === undefined || job.rows === "") return [];
  return job.rows.split("\n").map((line) => {
    const values = JSON.parse(line) as unknown[];
    const { received_at: _receivedAt, ...rest } = Object.fromEntries(
      CLI_INVOCATION_COLUMNS.map((column, index) => [column, values[index]]),
    ) as unknown as CliInvocationRow;
    return rest;
  });
}

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function setup(env: Record<string, string> = {}, redisUrl = testRedisUrl()): Promise<Harness> {
  const prefix = testQueuePrefix("ingest");
  const config = parseIngestConfig({ ...env, REDIS_URL: redisUrl, QUEUE_PREFIX: prefix });
  const redis: Redis = createRedis(redisUrl, "producer");
  redis.on("error", () => {});
  const queue = createIngestQueue(redis, prefix);
  const ingest = createIngestApp({ config, queue, redis, logger: createLogger("ingest", "error", () => {}) });
  const reachable = redisUrl === testRedisUrl();
  cleanups.push(async () => {
    await ingest.close();
    await closeIngestQueue(queue, redis);
    if (reachable) await deleteQueuePrefix(prefix);
  });
  const [partition0] = queue.partitions;
  if (reachable) await partition0?.waitUntilReady();
  const jobs = async (): Promise<ClientTelemetryJob[]> =>
    ((await partition0?.getWaiting(0, -1)) ?? []).sort((a, b) => Number(a.id) - Number(b.id)).map((job) => job.data);
  return { ingest, queue, jobs, entries: async () => (await jobs()).flatMap(rowsOf) };
}

/** Milliseconds since the epoch of ClickHouse DateTime64 text ('2026-05-09 12:00:01.000', UTC). */
function clickHouseTimeMs(text: string | undefined): number {
  return Date.parse(`${(text ?? "").replace(" ", "T")}Z`);
}

function post(harness: Harness, body: string | Buffer | object, headers: Record<string, string> = {}): Promise<Response> {
  let req = request(harness.ingest.app).post("/ingest").set("content-type", "application/json");
  for (const [name, value] of Object.entries(headers)) req = req.set(name, value);
  // superagent would JSON-serialize a Buffer sent as application/json; send its bytes as they are.
  if (Buffer.isBuffer(body)) return req.serialize((data: unknown) => data as string).send(body);
  return req.send(typeof body === "string" ? body : JSON.stringify(body));
}

/** Every error answer is exactly {code, message, retryable}, in JSON. */
function expectError(res: Response, status: number, code: string): void {
  expect(res.status).toBe(status);
  expect(res.headers["content-type"]).toMatch(/^application\/json/);
  expect(Object.keys(res.body as object).sort()).toEqual(["code", "message", "retryable"]);
  expect((res.body as { code: string }).code).toBe(code);
  expect(typeof (res.body as { message: unknown }).message).toBe("string");
  expect((res.body as { retryable: boolean }).retryable).toBe(code === "UNAVAILABLE" || code === "TOO_MANY_REQUESTS" || code === "INTERNAL_ERROR");
}

describe("POST /ingest: what the swamp CLI sends", () => {
  it("accepts the parent + child batch of the reference and enqueues it verbatim as one job", async () => {
    const harness = await setup();
    const res = await post(harness, SWAMP_BATCH);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, rejected: [] });
    const jobs = await harness.jobs();
    expect(jobs).toHaveLength(1);
    expect(rowsOf(jobs[0] as ClientTelemetryJob)).toEqual((JSON.parse(SWAMP_BATCH) as { events: CliInvocationEvent[] }).events.map(row));
    expect(typeof jobs[0]?.receivedAtMs).toBe("number");
    const [job] = (await harness.queue.partitions[0]?.getWaiting(0, -1)) ?? [];
    expect(job?.name).toBe("cli_invocations");
    expect(job?.opts.attempts).toBe(JOB_CATALOG.clientTelemetry.options.attempts);
  });

  it("records the version of the sender from its User-Agent in each row's client_version", async () => {
    const harness = await setup();
    expect((await post(harness, SWAMP_BATCH, { "user-agent": "swamp-cli/20260610.080000.0" })).status).toBe(202);
    expect((await post(harness, parentEntry(), { "user-agent": "curl/8.5.0" })).status).toBe(202);
    const rows = await harness.entries();
    expect(rows.map((stored) => stored.client_version)).toEqual(["20260610.080000.0", "20260610.080000.0", ""]);
    // The rest of each row is the entry's, as sent: the version travels beside it, not in its extra fields.
    const sent = (JSON.parse(SWAMP_BATCH) as { events: CliInvocationEvent[] }).events.map(row);
    expect(rows.slice(0, 2)).toEqual(sent.map((expected) => ({ ...expected, client_version: "20260610.080000.0" })));
    expect(clientVersionOf("swamp-cli/20260609.232501.0")).toBe("20260609.232501.0");
    expect(clientVersionOf("swamp-cli/1.2.3 (linux)")).toBe("1.2.3");
    expect(clientVersionOf("swamp-cli/")).toBe("");
    expect(clientVersionOf(undefined)).toBe("");
  });

  it("accepts a bare single event", async () => {
    const harness = await setup();
    const entry = parentEntry();
    const res = await post(harness, entry);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 1, rejected: [] });
    expect(await harness.entries()).toEqual([entry].map(row));
  });

  it("accepts a legacy entry, a child with driver instead of executor, and keeps unknown properties verbatim", async () => {
    const harness = await setup();
    const legacy = legacyEntry();
    const parent = parentEntry();
    const child = childEntry(parent.properties.id, { driverKey: "driver", driver: "local" });
    const extended = { ...parentEntry(), futureEnvelopeField: [1, { a: null }] } as CliInvocationEvent;
    extended.properties = { ...extended.properties, newField: { nested: ["x"] }, triggerSource: "api", initiatedBy: "ghost" };
    const res = await post(harness, { events: [legacy, child, extended] });
    expect(res.body).toEqual({ accepted: 3, rejected: [] });
    expect(await harness.entries()).toEqual([legacy, child, extended].map(row));
    expect((await harness.entries())[1]?.driver).toBe("local");
  });

  it("reads a top-level array and NDJSON", async () => {
    const harness = await setup();
    const [a, b, c, d] = [parentEntry(), parentEntry(), parentEntry(), parentEntry()];
    expect((await post(harness, [a, b])).body).toEqual({ accepted: 2, rejected: [] });
    const ndjson = `${JSON.stringify(c)}\n${JSON.stringify(d)}\n`;
    expect((await post(harness, ndjson, { "content-type": "application/x-ndjson" })).body).toEqual({ accepted: 2, rejected: [] });
    expect((await post(harness, ndjson)).body).toEqual({ accepted: 2, rejected: [] });
    expect(await harness.entries()).toEqual([a, b, c, d, c, d].map(row));
  });

  it("accepts a gzip body", async () => {
    const harness = await setup();
    const res = await post(harness, gzipSync(Buffer.from(SWAMP_BATCH)), { "content-encoding": "gzip" });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, rejected: [] });
    expect(await harness.entries()).toHaveLength(2);
  });

  it("enqueues an entry repeated within one request once, counting each as accepted", async () => {
    const harness = await setup();
    const entry = parentEntry();
    const legacy = legacyEntry();
    const res = await post(harness, { events: [entry, legacy, entry, legacy] });
    expect(res.body).toEqual({ accepted: 4, rejected: [] });
    expect(await harness.entries()).toEqual([entry, legacy].map(row));
  });

  it("puts the entries of concurrent requests into shared jobs (group commit), each answered once stored", async () => {
    const harness = await setup();
    const entries = Array.from({ length: 40 }, () => parentEntry());
    const answers = await Promise.all(entries.map((entry) => post(harness, entry)));
    expect(answers.map((res) => res.status)).toEqual(entries.map(() => 202));
    const jobs = await harness.jobs();
    expect(jobs.length).toBeLessThan(entries.length);
    expect((await harness.entries()).map((entry) => entry.insert_id).sort()).toEqual(entries.map((entry) => entry.insert_id).sort());
  });

  it("answers 202 with nothing enqueued for an empty batch", async () => {
    const harness = await setup();
    expect((await post(harness, { events: [] })).body).toEqual({ accepted: 0, rejected: [] });
    expect(await harness.jobs()).toEqual([]);
  });
});

describe("POST /ingest: bad input", () => {
  it("repairs the entry with wrong types instead of refusing it, and records the repair as a warning", async () => {
    const harness = await setup();
    const [good1, bad, good2] = [parentEntry(), parentEntry(), parentEntry()];
    (bad.properties as Record<string, unknown>)["durationMs"] = "slow";
    (bad.properties.result as Record<string, unknown>)["status"] = "meh";
    const res = await post(harness, { events: [good1, bad, good2] });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 3, rejected: [] });
    const stored = await harness.entries();
    expect(stored[0]).toEqual(row(good1));
    expect(stored[1]?.duration_ms).toBe(0);
    expect(stored[1]?.status).toBe("error");
    expect(stored[1]?.repairs).toEqual(["field_defaulted"]);
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.entry_id])).toEqual([["field_defaulted", bad.insert_id]]);
    expect(warnings[0]?.detail).toBe(
      "properties.result.status must be equal to one of the allowed values; replaced by a default; properties.durationMs must be number; replaced by a default",
    );
  });

  it("answers 202 with accepted 0 when no entry is a cli_invocation, and enqueues their warnings", async () => {
    const harness = await setup();
    const res = await post(harness, [{}, { event: "other" }]);
    expect(res.status).toBe(202);
    expect((res.body as { accepted: number }).accepted).toBe(0);
    expect((res.body as { rejected: unknown[] }).rejected).toHaveLength(2);
    const jobs = await harness.jobs();
    expect(jobs.map((job) => [rowsOf(job).length, job.warnings?.map((warning) => warning.reason)])).toEqual([[0, ["rejected", "rejected"]]]);
  });

  it("answers 400 INVALID_PARAMS to malformed JSON, without echoing it", async () => {
    const harness = await setup();
    const res = await post(harness, '{"events": [{"event": "cli_invocation", "distinct_id": secret-value');
    expectError(res, 400, "INVALID_PARAMS");
    expect(JSON.stringify(res.body)).not.toContain("secret");
    expect(await harness.jobs()).toEqual([]);
  });

  it("answers 400 INVALID_PARAMS to an empty body and shapes that are not events", async () => {
    const harness = await setup();
    expectError(await post(harness, ""), 400, "INVALID_PARAMS");
    expectError(await request(harness.ingest.app).post("/ingest"), 415, "INVALID_PARAMS");
    expectError(await post(harness, "42"), 400, "INVALID_PARAMS");
    expectError(await post(harness, '{"events": "nope"}'), 400, "INVALID_PARAMS");
    expectError(await post(harness, gzipSync(Buffer.from("[]")).subarray(0, 10), { "content-encoding": "gzip" }), 400, "INVALID_PARAMS");
    expectError(await post(harness, "[]", { "content-encoding": "compress" }), 415, "INVALID_PARAMS");
    expect(await harness.jobs()).toEqual([]);
  });

  it("answers 413 to a body over INGEST_MAX_BODY_BYTES, and to a gzip bomb", async () => {
    const harness = await setup({ INGEST_MAX_BODY_BYTES: "1048576" });
    const big = JSON.stringify([parentEntry(), { padding: "x".repeat(1_048_576) }]);
    expectError(await post(harness, big), 413, "PAYLOAD_TOO_LARGE");
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20));
    expect(bomb.length).toBeLessThan(100_000);
    const res = await post(harness, bomb, { "content-encoding": "gzip" });
    expectError(res, 413, "PAYLOAD_TOO_LARGE");
    expect(await harness.jobs()).toEqual([]);
  });

  it("stores entries of 2,000 args × 550 characters (1.1 MB) and 256 × 300 (78 KB), cut to fit, each with its warning", async () => {
    const harness = await setup();
    const [huge, large, small] = [parentEntry(), parentEntry(), parentEntry()];
    huge.properties.invocation.args = Array.from({ length: 2000 }, () => "a".repeat(550));
    large.properties.invocation.args = Array.from({ length: 256 }, () => "b".repeat(300));
    const res = await post(harness, { events: [huge, large, small] });
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 3, rejected: [] });
    const stored = await harness.entries();
    expect(stored.map((entry) => entry.insert_id)).toEqual([huge.insert_id, large.insert_id, small.insert_id]);
    // The row's values (what the queue and ClickHouse get) of an entry cut to fit stay within the limit too.
    expect(stored.map((entry) => Buffer.byteLength(JSON.stringify(Object.values(entry))) <= 65_536)).toEqual([true, true, true]);
    expect(stored.map((entry) => entry.args.length)).toEqual([256, 256, 1]);
    expect(stored[2]).toEqual(row(small));
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.entry_id])).toEqual([
      ["truncated", huge.insert_id],
      ["entry_truncated", huge.insert_id],
      ["entry_truncated", large.insert_id],
    ]);
    expect(warnings[1]?.detail).toMatch(/^entry cut from \d+ to \d+ bytes; 256 strings cut to at most \d+ characters, longest first$/);
  });

  it("cuts an entry over INGEST_MAX_ENTRY_BYTES to fit instead of refusing it", async () => {
    const harness = await setup();
    const [small, large] = [parentEntry(), parentEntry()];
    (large.properties as Record<string, unknown>)["blob"] = "x".repeat(70_000);
    const res = await post(harness, [large, small]);
    expect(res.body).toEqual({ accepted: 2, rejected: [] });
    const [storedLarge, storedSmall] = await harness.entries();
    expect(storedSmall).toEqual(row(small));
    expect(storedLarge?.insert_id).toBe(large.insert_id);
    expect(Buffer.byteLength(JSON.stringify(Object.values(storedLarge ?? {})))).toBeLessThanOrEqual(65_536);
  });

  it("accepts what the real client sends when an error line is a megabyte long: 25 entries, 27 MB, all stored", async () => {
    const harness = await setup();
    const entries = Array.from({ length: 25 }, () => {
      const entry = parentEntry({ status: "error" });
      entry.properties.result.errorMessage = "stack overflow at ".repeat(61_000);
      return entry;
    });
    const res = await post(harness, { events: entries });
    expect(res.body).toEqual({ accepted: 25, rejected: [] });
    const stored = await harness.entries();
    expect(stored.map((entry) => entry.insert_id)).toEqual(entries.map((entry) => entry.insert_id));
    expect(stored.every((entry) => entry.error_message.length === 4096)).toBe(true);
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => warning.reason)).toEqual(Array.from({ length: 25 }, () => "truncated"));
    expect(warnings.every((warning) => warning.excerpt.length <= 1025)).toBe(true);
  });

  it("stores an entry from a clock two days ahead as completed when it was received, keeping the client's time", async () => {
    const harness = await setup();
    const ahead = parentEntry({ startedAt: new Date(Date.now() + 2 * 86_400_000) });
    const before = Date.now();
    const res = await post(harness, ahead);
    expect(res.body).toEqual({ accepted: 1, rejected: [] });
    const [stored] = await harness.entries();
    const completedAtMs = clickHouseTimeMs(stored?.completed_at);
    expect(completedAtMs).toBeGreaterThanOrEqual(before);
    expect(completedAtMs).toBeLessThanOrEqual(Date.now());
    expect(completedAtMs - clickHouseTimeMs(stored?.started_at)).toBe(ahead.properties.durationMs);
    expect(stored?.repairs).toEqual(["timestamp_replaced"]);
    expect(stored?.client_started_at).toBe(ahead.properties.startedAt);
  });

  it("keeps the good lines of an NDJSON request and lists the bad one in rejected", async () => {
    const harness = await setup();
    const [a, b] = [parentEntry(), parentEntry()];
    const res = await post(harness, `${JSON.stringify(a)}\n{"event": oops\n${JSON.stringify(b)}\n`, { "content-type": "application/x-ndjson" });
    expect(res.body).toEqual({ accepted: 2, rejected: [{ index: 1, code: "INVALID_PARAMS", message: "NDJSON line 2 is not valid JSON" }] });
    expect(await harness.entries()).toEqual([a, b].map(row));
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.excerpt])).toEqual([["rejected", '"{\\"event\\": oops"']]);
  });

  it("enqueues a 10k-entry batch in jobs of at most 1000, and refuses 10001 entries with 413", async () => {
    const harness = await setup({ INGEST_MAX_BODY_BYTES: String(32 * 1024 * 1024) });
    const entries = Array.from({ length: 10_000 }, () => parentEntry());
    const res = await post(harness, { events: entries });
    expect(res.body).toEqual({ accepted: 10_000, rejected: [] });
    const jobs = await harness.jobs();
    expect(jobs).toHaveLength(10);
    expect(jobs.every((job) => (job.ids ?? []).length <= 1000)).toBe(true);
    expect(new Set(jobs.flatMap((job) => job.ids ?? []))).toEqual(new Set(entries.map((entry) => entry.insert_id)));

    const tooMany = await post(
      harness,
      Array.from({ length: 10_001 }, () => ({})),
    );
    expectError(tooMany, 413, "PAYLOAD_TOO_LARGE");
    expect((tooMany.body as { message: string }).message).toContain("10000");
    expect(await harness.jobs()).toHaveLength(10);
  }, 60_000);

  it("keeps __proto__ keys as data and pollutes nothing", async () => {
    const harness = await setup();
    const entry = parentEntry();
    const json = JSON.stringify(entry)
      .replace('"properties":{', '"properties":{"__proto__":{"polluted":true},')
      .replace('{"event":', '{"__proto__":{"polluted":true},"event":');
    const res = await post(harness, `{"events":[${json}]}`);
    expect(res.body).toEqual({ accepted: 1, rejected: [] });
    const [stored] = await harness.entries();
    expect(stored?.entry_id).toBe(entry.properties.id);
    // Unknown fields are kept as data, at their path, in the row's extra column.
    const extra = JSON.parse(stored?.extra ?? "{}") as Record<string, unknown> & { properties: Record<string, unknown> };
    expect(Object.getOwnPropertyDescriptor(extra, "__proto__")?.value).toEqual({ polluted: true });
    expect(Object.getOwnPropertyDescriptor(extra.properties, "__proto__")?.value).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>)["polluted"]).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>)["polluted"]).toBeUndefined();
  });

  it("stores the entries of a batch with a byte that is not UTF-8, warning for the entry that held it", async () => {
    const harness = await setup();
    const [first, damaged, last] = [parentEntry(), parentEntry(), parentEntry()];
    damaged.properties.result.errorMessage = "bad BYTE here";
    const json = JSON.stringify({ events: [first, damaged, last] });
    const [before, after] = json.split("BYTE");
    const res = await post(harness, Buffer.concat([Buffer.from(before ?? ""), Buffer.from([0xff]), Buffer.from(after ?? "")]));
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 3, rejected: [] });
    const stored = await harness.entries();
    expect(stored.map((entry) => entry.insert_id)).toEqual([first.insert_id, damaged.insert_id, last.insert_id]);
    expect(stored[1]?.error_message).toBe("bad \uFFFD here");
    expect(stored[1]?.repairs).toEqual(["invalid_utf8"]);
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.entry_id, warning.detail])).toEqual([
      ["invalid_utf8", damaged.insert_id, "bytes that are not UTF-8 replaced by U+FFFD in properties.result.errorMessage"],
    ]);
  });

  it("warns for the request when the byte that is not UTF-8 is outside every stored entry", async () => {
    const harness = await setup();
    const entry = parentEntry();
    const res = await post(
      harness,
      Buffer.concat([Buffer.from(`{"note":"`), Buffer.from([0xc3, 0x28]), Buffer.from(`","events":[${JSON.stringify(entry)}]}`)]),
    );
    expect(res.body).toEqual({ accepted: 1, rejected: [] });
    expect(await harness.entries()).toEqual([entry].map(row));
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.entry_id])).toEqual([["invalid_utf8", ""]]);
    expect(warnings[0]?.excerpt.startsWith(JSON.stringify('{"note":"\uFFFD(","events":[').slice(0, -1))).toBe(true);
  });

  it("stores a lone surrogate as U+FFFD with a lone_surrogate warning", async () => {
    const harness = await setup();
    const entry = parentEntry();
    const res = await post(harness, JSON.stringify(entry).replace('"platform":"linux"', '"platform":"lin\\ud800ux"'));
    expect(res.body).toEqual({ accepted: 1, rejected: [] });
    const [stored] = await harness.entries();
    expect(stored?.platform).toBe("lin\uFFFDux");
    expect(stored?.repairs).toEqual(["lone_surrogate"]);
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.entry_id, warning.detail])).toEqual([
      ["lone_surrogate", entry.insert_id, "lone surrogates replaced by U+FFFD in properties.platform"],
    ]);
  });

  it("converts numbers sent as strings, and keeps durationMs when both timestamps are replaced", async () => {
    const harness = await setup();
    const converted = parentEntry();
    const skewed = parentEntry({ startedAt: new Date(Date.now() + 3 * 86_400_000), durationMs: 1250 });
    Object.assign(converted.properties, { durationMs: "1234" });
    Object.assign(converted.properties.result, { exitCode: "1" });
    const before = Date.now();
    const res = await post(harness, [converted, skewed]);
    expect(res.body).toEqual({ accepted: 2, rejected: [] });
    const [storedConverted, storedSkewed] = await harness.entries();
    expect([storedConverted?.duration_ms, storedConverted?.exit_code]).toEqual([1234, 1]);
    const startedAtMs = clickHouseTimeMs(storedSkewed?.started_at);
    const completedAtMs = clickHouseTimeMs(storedSkewed?.completed_at);
    expect(completedAtMs - startedAtMs).toBe(1250);
    expect(storedSkewed?.duration_ms).toBe(1250);
    expect(completedAtMs).toBeGreaterThanOrEqual(before);
    expect(completedAtMs).toBeLessThanOrEqual(Date.now());
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.entry_id])).toEqual([
      ["field_converted", converted.insert_id],
      ["timestamp_replaced", skewed.insert_id],
    ]);
    expect(warnings[1]?.detail).toContain("the receive time minus durationMs (1250 ms) used, so the duration stays the one sent");
  });

  it("refuses a top-level array nested 4,000 deep alone, in rejected and as a warning, and stores the valid entry (never a 500)", async () => {
    const harness = await setup();
    const good = parentEntry();
    const deep = `${"[".repeat(4000)}${"]".repeat(4000)}`;
    const res = await post(harness, `[${JSON.stringify(good)},${deep}]`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 1, rejected: [{ index: 1, code: "INVALID_PARAMS", message: "entry is nested deeper than 32 levels" }] });
    expect(await harness.entries()).toEqual([good].map(row));
    const alone = await post(harness, deep);
    expect(alone.status).toBe(202);
    expect(alone.body).toEqual({ accepted: 0, rejected: [{ index: 0, code: "INVALID_PARAMS", message: "entry is nested deeper than 32 levels" }] });
    const warnings = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warnings.map((warning) => [warning.reason, warning.excerpt])).toEqual([
      ["rejected", `${"[".repeat(1024)}…`],
      ["rejected", `${"[".repeat(1024)}…`],
    ]);
  });

  it("writes the start of an entry nested 10,000 deep as its warning's excerpt, not [object Object]", async () => {
    const harness = await setup();
    const depth = 10_000;
    const res = await post(harness, `{"events":[${'{"a":'.repeat(depth)}1${"}".repeat(depth)}]}`);
    expect(res.body).toEqual({ accepted: 0, rejected: [{ index: 0, code: "INVALID_PARAMS", message: "entry is nested deeper than 32 levels" }] });
    const [warning] = (await harness.jobs()).flatMap((job) => job.warnings ?? []);
    expect(warning?.excerpt.startsWith('{"a":{"a":{"a":')).toBe(true);
  });

  it("rejects an entry nested 100k levels deep and keeps the others; the server stays up", async () => {
    const harness = await setup();
    const [before, deep, after] = [parentEntry(), parentEntry(), parentEntry()];
    const depth = 100_000;
    const deepJson = JSON.stringify(deep).replace('"properties":{', `"properties":{"deep":${"[".repeat(depth)}${"]".repeat(depth)},`);
    const res = await post(harness, `[${JSON.stringify(before)},${deepJson},${JSON.stringify(after)}]`);
    expect(res.status).toBe(202);
    expect(res.body).toEqual({ accepted: 2, rejected: [{ index: 1, code: "INVALID_PARAMS", message: "entry is nested deeper than 32 levels" }] });
    expect(await harness.entries()).toEqual([before, after].map(row));
    expect((await request(harness.ingest.app).get("/healthz")).status).toBe(200);
  });
});

describe("POST /ingest: auth and rate limit", () => {
  it("requires a configured key, by x-api-key or Bearer", async () => {
    const harness = await setup({ INGEST_API_KEYS: "key-one,key-two" });
    expectError(await post(harness, parentEntry()), 401, "UNAUTHORIZED");
    expectError(await post(harness, parentEntry(), { "x-api-key": "key-three" }), 401, "UNAUTHORIZED");
    expectError(await post(harness, parentEntry(), { authorization: "Bearer nope" }), 401, "UNAUTHORIZED");
    expectError(await post(harness, parentEntry(), { authorization: "Basic a2V5LW9uZQ==" }), 401, "UNAUTHORIZED");
    expect(await harness.jobs()).toEqual([]);
    expect((await post(harness, parentEntry(), { "x-api-key": "key-one" })).status).toBe(202);
    expect((await post(harness, parentEntry(), { authorization: "Bearer key-two" })).status).toBe(202);
    expect(await harness.jobs()).toHaveLength(2);
  });

  it("answers 429 with Retry-After past the per-key rate, other keys unaffected", async () => {
    const harness = await setup({ INGEST_API_KEYS: "a,b", INGEST_RATE_LIMIT_ENTRIES_PER_SECOND: "1" });
    expect((await post(harness, [parentEntry(), parentEntry()], { "x-api-key": "a" })).status).toBe(202);
    const limited = await post(harness, [parentEntry()], { "x-api-key": "a" });
    expectError(limited, 429, "TOO_MANY_REQUESTS");
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((await post(harness, [parentEntry()], { "x-api-key": "b" })).status).toBe(202);
    expect(await harness.entries()).toHaveLength(3);
  });
});

describe("Redis unreachable", () => {
  it("answers 503 UNAVAILABLE with Retry-After, quickly, on /ingest and /healthz", async () => {
    const harness = await setup({}, "redis://127.0.0.1:1");
    const started = Date.now();
    const res = await post(harness, SWAMP_BATCH);
    expect(Date.now() - started).toBeLessThan(3000);
    expectError(res, 503, "UNAVAILABLE");
    expect((res.body as { retryable: boolean }).retryable).toBe(true);
    expect(Number(res.headers["retry-after"])).toBeGreaterThan(0);
    const health = await request(harness.ingest.app).get("/healthz");
    expectError(health, 503, "UNAVAILABLE");
    expect(Date.now() - started).toBeLessThan(3000);
  });
});

describe("Redis that accepts connections but never answers", () => {
  it("answers 503 UNAVAILABLE after the enqueue timeout", async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, "127.0.0.1", resolve));
    cleanups.push(async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    });
    const harness = await setup({}, `redis://127.0.0.1:${(silent.address() as AddressInfo).port}`);
    const started = Date.now();
    const res = await post(harness, parentEntry());
    const elapsedMs = Date.now() - started;
    expectError(res, 503, "UNAVAILABLE");
    expect(res.headers["retry-after"]).toBeDefined();
    // ENQUEUE_TIMEOUT_MS (1 s), within the real CLI's 2 s; this app has no spool, so the answer is 503.
    expect(elapsedMs).toBeGreaterThanOrEqual(ENQUEUE_TIMEOUT_MS - 100);
    expect(elapsedMs).toBeLessThan(2000);
  });
});

describe("routes", () => {
  it("serves /healthz", async () => {
    const harness = await setup();
    const res = await request(harness.ingest.app).get("/healthz");
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: "ok", redis: "up" });
  });

  it("serves /metrics with the ingest metrics and default process metrics", async () => {
    const harness = await setup();
    await post(harness, [parentEntry(), {}]);
    await request(harness.ingest.app).get("/nope");
    const res = await request(harness.ingest.app).get("/metrics");
    expect(res.status).toBe(200);
    expect(res.headers["content-type"]).toMatch(/^text\/plain/);
    for (const name of [
      "flowmeter_ingest_requests_total",
      "flowmeter_ingest_entries_accepted_total",
      "flowmeter_ingest_entries_rejected_total",
      "flowmeter_ingest_enqueue_duration_seconds",
      "flowmeter_ingest_request_body_bytes",
      "flowmeter_process_cpu_user_seconds_total",
    ]) {
      expect(res.text).toContain(name);
    }
    expect(res.text).toContain('flowmeter_ingest_requests_total{route="/ingest",status="202"} 1');
    expect(res.text).toContain('flowmeter_ingest_requests_total{route="other",status="404"} 1');
    expect(res.text).toContain("flowmeter_ingest_entries_accepted_total 1");
    expect(res.text).toContain('flowmeter_ingest_entries_rejected_total{reason="INVALID_PARAMS"} 1');
  });

  it("answers unknown routes and wrong methods in the error shape", async () => {
    const harness = await setup();
    expectError(await request(harness.ingest.app).get("/"), 404, "NOT_FOUND");
    const wrongMethod = await request(harness.ingest.app).get("/ingest");
    expectError(wrongMethod, 405, "NOT_FOUND");
    expect(wrongMethod.headers["allow"]).toBe("POST");
    expectError(await request(harness.ingest.app).options("/ingest"), 405, "NOT_FOUND");
    expectError(await request(harness.ingest.app).delete("/metrics"), 405, "NOT_FOUND");
  });
});

describe("what a web page or a sloppy endpoint sends", () => {
  it("refuses bodies a page can post without a preflight: text/plain, form, multipart, no content type", async () => {
    const harness = await setup();
    const body = JSON.stringify(parentEntry());
    for (const contentType of ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x"]) {
      const res = await request(harness.ingest.app).post("/ingest").set("content-type", contentType).send(body);
      expectError(res, 415, "INVALID_PARAMS");
      expect(res.body.message).toBe(`Content-Type ${contentType.split(";")[0]} is not accepted; send application/json (or application/x-ndjson)`);
    }
    const bare = await request(harness.ingest.app)
      .post("/ingest")
      .serialize((data: unknown) => data as string)
      .send(Buffer.from(body))
      .unset("content-type");
    expectError(bare, 415, "INVALID_PARAMS");
    expect(await harness.entries()).toEqual([]);
  });

  it("refuses a foreign Origin and a Host that is not this service's (DNS rebinding) on every route", async () => {
    const harness = await setup();
    expectError(await post(harness, parentEntry(), { origin: "http://evil.example" }), 403, "UNAUTHORIZED");
    expectError(await post(harness, parentEntry(), { host: "evil.example:7070" }), 403, "UNAUTHORIZED");
    expectError(await request(harness.ingest.app).get("/metrics").set("sec-fetch-site", "cross-site"), 403, "UNAUTHORIZED");
    expect(await harness.entries()).toEqual([]);
  });

  it("answers 415 naming the charset to a UTF-16 body, and accepts UTF-8 labelled as such in any case", async () => {
    const harness = await setup();
    const entry = parentEntry();
    const utf16 = await post(harness, Buffer.from(JSON.stringify(entry), "utf16le"), { "content-type": "application/json; charset=utf-16" });
    expectError(utf16, 415, "INVALID_PARAMS");
    expect((utf16.body as { message: string }).message).toBe('charset "utf-16" is not accepted; send UTF-8 (charset=utf-8, or no charset)');
    for (const contentType of ["application/json; charset=utf-8", "application/json;charset=UTF-8", "application/x-ndjson; Charset=Utf-8"]) {
      expect((await post(harness, entry, { "content-type": contentType })).body, contentType).toEqual({ accepted: 1, rejected: [] });
    }
    // Re-sends of one entry: ingest enqueues each, the worker stores it once.
    expect(await harness.entries()).toEqual([entry, entry, entry].map(row));
  });

  it("serves //ingest and /ingest/ as /ingest (an endpoint configured with a trailing slash)", async () => {
    const harness = await setup();
    for (const path of ["//ingest", "/ingest/"]) {
      const res = await request(harness.ingest.app).post(path).set("content-type", "application/json").send(JSON.stringify(parentEntry()));
      expect(res.status, path).toBe(202);
    }
    expect((await harness.entries()).length).toBe(2);
  });
});

describe("INGEST_PUBLIC", () => {
  it("accepts any CLI user's entries without keys, ignoring the client's own x-api-key, and still refuses web pages", async () => {
    const harness = await setup({ INGEST_PUBLIC: "true" });
    const entry = parentEntry();
    const res = await post(harness, entry, { "x-api-key": "the-users-own-swamp-club-key", host: "telemetry.example.com" });
    expect(res.body).toEqual({ accepted: 1, rejected: [] });
    expect(JSON.stringify(await harness.jobs())).not.toContain("the-users-own-swamp-club-key");
    expectError(await post(harness, parentEntry(), { host: "telemetry.example.com", origin: "https://evil.example" }), 403, "UNAUTHORIZED");
  });
});
