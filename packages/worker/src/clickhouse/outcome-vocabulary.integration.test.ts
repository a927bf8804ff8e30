/**
 * One vocabulary for outcomes (docs/spec.md §6): client children of every status and runner stages of every outcome,
 * stored before migrations 0043–0051 (in the old words) and after them, end up in driver_stats, stage_stats and
 * run_events.stage_outcome in the same words only.
 */
import { randomUUID } from "node:crypto";
import { copyFileSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ClickHouseClient } from "@clickhouse/client";
import { createLogger, uuidV7 } from "@flowmeter/platform";
import { RUN_EVENT_V2_NAMES, toClickHouseTime, type RunEvent } from "@flowmeter/shared";
import { childEntry, parentEntry, tempDir } from "@flowmeter/test-utils";
import { parseWorkerConfig } from "../config.js";
import { createClickHouse } from "./client.js";
import { migrate } from "./migrate.js";
import { cliInvocationsTable, runEventsTable } from "./raw-tables.js";

const logger = createLogger("test", "error");

/** The words, as in docs/spec.md §6 and packages/runner/src/metrics.ts STAGE_OUTCOMES (plus the client's user_error). */
const OUTCOMES = ["succeeded", "failed", "user_error", "cancelled", "timed_out", "skipped"];
/** The last migration before the vocabulary was unified. */
const BEFORE_VOCABULARY = 42;

type RunnerOutcome = "succeeded" | "failed" | "cancelled" | "timed_out" | "skipped";
const RUNNER_OUTCOMES: RunnerOutcome[] = ["succeeded", "failed", "cancelled", "timed_out", "skipped"];

/** The event that ends stage `outcome` of a run of `workflow`. */
function endingEvent(workflow: string, driver: string, outcome: RunnerOutcome, seq: number): RunEvent {
  const now = Date.now();
  const base = {
    event_id: uuidV7(now + seq),
    run_id: randomUUID(),
    attempt_id: randomUUID(),
    seq,
    ts_ms: now,
    timestamp: new Date(now).toISOString(),
    level: "info" as const,
    message: "",
    stage_name: outcome,
    group_id: "g0",
  };
  if (outcome === "succeeded") {
    return {
      ...base,
      event_type: "stage.completed",
      event_type_v2: RUN_EVENT_V2_NAMES["stage.completed"],
      payload: { workflow, driver, stage_attempt: 1, duration_ms: 10, exit_code: 0 },
    };
  }
  if (outcome === "skipped") {
    return {
      ...base,
      event_type: "stage.skipped",
      event_type_v2: RUN_EVENT_V2_NAMES["stage.skipped"],
      payload: { workflow, driver, stage_attempt: 0, reason: "a dependency failed" },
    };
  }
  return {
    ...base,
    event_type: "stage.failed",
    event_type_v2: RUN_EVENT_V2_NAMES["stage.failed"],
    payload: {
      workflow,
      driver,
      stage_attempt: 1,
      duration_ms: 10,
      exit_code: outcome === "failed" ? 1 : -1,
      error: outcome,
      will_retry: false,
      timed_out: outcome === "timed_out",
      cancelled: outcome === "cancelled",
      allowed_failure: false,
    },
  };
}

describe("one vocabulary for outcomes over every stage rollup", () => {
  const data = tempDir("outcome-vocabulary");
  const oldMigrations = tempDir("outcome-vocabulary-migrations");
  const migrationsDir = parseWorkerConfig({}).clickhouse.migrationsDir;
  let clickhouse: ClickHouseClient;

  async function rows<T>(query: string): Promise<T[]> {
    return (await clickhouse.query({ query, format: "JSONEachRow" })).json<T>();
  }

  /**
   * A client child of each status and a runner stage of each outcome, under workflow and driver `label`.
   * `oldWorker`: run_events rows as the worker wrote them before, a cancelled or timed-out stage as 'failed'.
   */
  async function writeEachOutcome(label: string, { oldWorker }: { oldWorker: boolean }): Promise<void> {
    const receivedAt = toClickHouseTime(Date.now());
    const parent = parentEntry();
    const children = (["success", "error", "user_error"] as const).map((status) =>
      childEntry(parent.properties.id, { workflowName: label, stepName: status, driverKey: "driver", driver: label, status }),
    );
    await clickhouse.insert({
      table: cliInvocationsTable.name,
      values: [parent, ...children].map((entry) => cliInvocationsTable.toRow(entry, receivedAt)),
      format: "JSONEachRow",
    });
    const events = RUNNER_OUTCOMES.map((outcome, seq) => {
      const row = runEventsTable.toRow(endingEvent(label, label, outcome, seq), receivedAt);
      return oldWorker && row.stage_outcome !== "" && !["succeeded", "skipped"].includes(row.stage_outcome) ? { ...row, stage_outcome: "failed" } : row;
    });
    await clickhouse.insert({ table: runEventsTable.name, values: events, format: "JSONEachRow" });
  }

  async function statusCounts(view: "driver_stats" | "stage_stats", label: string): Promise<Record<string, number>> {
    const column = view === "driver_stats" ? "driver" : "workflow";
    const found = await rows<{ status: string; n: string }>(
      `SELECT ${view === "driver_stats" ? "concat(source, ':', status)" : "status"} AS status, sum(count) AS n FROM flowmeter.${view}
       WHERE ${column} = '${label}' GROUP BY status ORDER BY status`,
    );
    return Object.fromEntries(found.map((row) => [row.status, Number(row.n)]));
  }

  beforeAll(async () => {
    mkdirSync(oldMigrations.path, { recursive: true });
    for (const file of readdirSync(migrationsDir)) {
      if (file.endsWith(".sql") && Number(file.slice(0, 4)) <= BEFORE_VOCABULARY) copyFileSync(join(migrationsDir, file), join(oldMigrations.path, file));
    }
    clickhouse = await createClickHouse({ url: undefined, dataDir: data.path });
    await migrate(clickhouse, oldMigrations.path, logger);
    await writeEachOutcome("before", { oldWorker: true });
    expect((await statusCounts("stage_stats", "before"))["success"]).toBe(1);
    await migrate(clickhouse, migrationsDir, logger);
    await writeEachOutcome("after", { oldWorker: false });
  });
  afterAll(async () => {
    await clickhouse.close();
    data.remove();
    oldMigrations.remove();
  });

  it("rewrites the rollup rows stored before in the vocabulary, counts kept", async () => {
    // A cancelled or timed-out stage rolled up as 'failed' before stays 'failed': the 1m tables cannot tell them apart.
    expect(await statusCounts("stage_stats", "before")).toEqual({ failed: 4, skipped: 1, succeeded: 2, user_error: 1 });
    expect(await statusCounts("driver_stats", "before")).toEqual({
      "client:failed": 1,
      "client:succeeded": 1,
      "client:user_error": 1,
      "runner:failed": 3,
      "runner:skipped": 1,
      "runner:succeeded": 1,
    });
  });

  it("corrects stored run_events of cancelled and timed-out stages", async () => {
    const stored = await rows<{ stage_name: string; stage_outcome: string }>(
      "SELECT stage_name, stage_outcome FROM flowmeter.run_events WHERE workflow = 'before' ORDER BY stage_name",
    );
    expect(stored.map((row) => [row.stage_name, row.stage_outcome])).toEqual(RUNNER_OUTCOMES.map((outcome) => [outcome, outcome]).sort());
  });

  it("rolls up what is written after in the vocabulary, cancelled and timed_out kept apart", async () => {
    expect(await statusCounts("stage_stats", "after")).toEqual({ cancelled: 1, failed: 2, skipped: 1, succeeded: 2, timed_out: 1, user_error: 1 });
    expect(await statusCounts("driver_stats", "after")).toEqual({
      "client:failed": 1,
      "client:succeeded": 1,
      "client:user_error": 1,
      "runner:cancelled": 1,
      "runner:failed": 1,
      "runner:skipped": 1,
      "runner:succeeded": 1,
      "runner:timed_out": 1,
    });
  });

  it("holds no other word in any stage rollup, raw or viewed, nor in run_events", async () => {
    for (const table of ["driver_stats_1m", "stage_stats_1m", "driver_stats", "stage_stats"]) {
      const words = await rows<{ status: string }>(`SELECT DISTINCT status FROM flowmeter.${table}`);
      expect(
        words.map((row) => row.status).filter((word) => !OUTCOMES.includes(word)),
        table,
      ).toEqual([]);
    }
    const outcomes = await rows<{ stage_outcome: string }>("SELECT DISTINCT stage_outcome FROM flowmeter.run_events WHERE stage_outcome != ''");
    expect(outcomes.map((row) => row.stage_outcome).filter((word) => !OUTCOMES.includes(word))).toEqual([]);
  });
});
