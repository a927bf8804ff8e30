import { describe, expect, it } from "vitest";
import request from "supertest";
import { createLogger } from "@flowmeter/shared";
import { createRunnerMetrics } from "../metrics.js";
import { createRunnerApp } from "./app.js";

describe("runner HTTP app", () => {
  const metrics = createRunnerMetrics(["node", "shell"]);
  const app = createRunnerApp({
    metrics,
    logger: createLogger("runner", "error", () => {}),
    health: () => ({ status: "degraded", active_runs: 1, spooled_items: 12, redis: "reconnecting" }),
  });

  it("GET /v1/health", async () => {
    const response = await request(app).get("/v1/health").expect(200);
    expect(response.body).toEqual({ status: "degraded", active_runs: 1, spooled_items: 12, redis: "reconnecting" });
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

  it("answers unknown routes with the shared error shape", async () => {
    const response = await request(app).get("/v1/runs").expect(404);
    expect(response.body).toEqual({ code: "NOT_FOUND", message: "no route GET /v1/runs", retryable: false });
  });
});
