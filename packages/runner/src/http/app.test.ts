import { afterAll, describe, expect, it } from "vitest";
import request from "supertest";
import { Redis } from "ioredis";
import { createLogger } from "@flowmeter/platform";
import { RunStore } from "../store/run-store.js";
import { createRunnerMetrics } from "../metrics.js";
import { createRunnerApp } from "./app.js";

describe("runner HTTP app (no Redis needed)", () => {
  const metrics = createRunnerMetrics(["node", "shell"]);
  // Nothing listens on port 1: health and metrics do not touch Redis, and the run routes answer 503 while it is away.
  const redis = new Redis({ port: 1, lazyConnect: true, enableOfflineQueue: false, maxRetriesPerRequest: 0, retryStrategy: () => null });
  redis.on("error", () => {});
  const store = new RunStore(redis, { prefix: "fmtest-unit", retentionSeconds: 60 });
  const app = createRunnerApp({
    listenHost: "127.0.0.1",
    metrics,
    logger: createLogger("runner", "error", () => {}),
    health: () => ({ status: "degraded", runner_id: "host-1-abc", active_runs: 1, spooled_items: 12, redis: "reconnecting" }),
    runs: { store, workflowsDir: "/nonexistent", drivers: ["shell"], apiTokens: [] },
  });
  afterAll(() => redis.disconnect());

  it("GET /v1/health", async () => {
    const response = await request(app).get("/v1/health").expect(200);
    expect(response.body).toEqual({ status: "degraded", runner_id: "host-1-abc", active_runs: 1, spooled_items: 12, redis: "reconnecting" });
  });

  it("GET /metrics: runner metrics with bounded labels, default metrics prefixed flowmeter_", async () => {
    metrics.eventsSpooled.set(12);
    const response = await request(app).get("/metrics").expect(200);
    expect(response.headers["content-type"]).toContain("text/plain");
    const text = response.text;
    for (const name of [
      "flowmeter_runner_up 1",
      "flowmeter_runner_active_runs 0",
      'flowmeter_runner_active_stages{driver="shell"} 0',
      'flowmeter_runner_stage_outcomes_total{driver="node",status="timed_out"} 0',
      'flowmeter_runner_stage_duration_seconds_bucket{le="1",driver="shell"} 0',
      "flowmeter_runner_heartbeat_age_seconds 0",
      "flowmeter_runner_events_spooled 12",
      'flowmeter_runner_runs_total{status="failed"} 0',
      'flowmeter_runner_runs_reconciled_total{reason="runner_restarted"} 0',
      "flowmeter_process_resident_memory_bytes",
    ]) {
      expect(text).toContain(name);
    }
    expect(text).not.toMatch(/run_id|attempt_id/);
  });

  it("reports the heartbeat age of the stalest running stage", async () => {
    const handle = {};
    metrics.heartbeats.set(handle, Date.now() - 45_000);
    const text = await metrics.registry.getSingleMetricAsString("flowmeter_runner_heartbeat_age_seconds");
    metrics.heartbeats.delete(handle);
    expect(Number(/ ([\d.]+)$/.exec(text)?.[1])).toBeGreaterThanOrEqual(45);
  });

  it("answers unknown routes and wrong methods with the shared error shape, never HTML", async () => {
    const unknown = await request(app).get("/v1/nope").expect(404);
    expect(unknown.headers["content-type"]).toContain("application/json");
    expect(unknown.body).toEqual({ code: "NOT_FOUND", message: "no route GET /v1/nope", retryable: false });
    const wrongMethod = await request(app).delete("/v1/health").expect(405);
    expect(wrongMethod.headers["allow"]).toBe("GET, HEAD");
    expect(wrongMethod.body).toEqual({ code: "NOT_FOUND", message: "DELETE is not allowed on /v1/health; use GET, HEAD", retryable: false });
    const trailingSlash = await request(app).get("/v1/health/").expect(404);
    expect(trailingSlash.body.code).toBe("NOT_FOUND");
  });

  it("answers 503 UNAVAILABLE (retryable, Retry-After) on run routes while Redis is away", async () => {
    const response = await request(app).get("/v1/runs").expect(503);
    expect(response.body).toEqual({ code: "UNAVAILABLE", message: "redis is not reachable", retryable: true });
    expect(response.headers["retry-after"]).toBe("2");
  });

  it("serves its OpenAPI document", async () => {
    const response = await request(app).get("/v1/openapi.json").expect(200);
    expect(response.body.openapi).toBe("3.1.0");
    expect(Object.keys(response.body.paths as object)).toContain("/v1/runs/{run_id}/telemetry");
  });

  it("refuses what a web page could send: a foreign Origin, a rebound Host, cross-site fetch metadata", async () => {
    for (const [name, value] of [
      ["origin", "http://evil.example"],
      ["host", "evil.example:7071"],
      ["sec-fetch-site", "cross-site"],
    ] as const) {
      const response = await request(app).post("/v1/runs").set(name, value).set("content-type", "text/plain").send("{}").expect(403);
      expect(response.body).toMatchObject({ code: "UNAUTHORIZED", retryable: false });
      await request(app).get("/v1/health").set(name, value).expect(403);
    }
  });
});
