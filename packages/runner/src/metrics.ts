/** Every runner metric, created per process (one Registry per createRunnerMetrics call, so tests can build many). */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";

/** Values of the `status` label of stage outcomes: how a stage ended (after its last attempt). */
export const STAGE_OUTCOMES = ["succeeded", "failed", "timed_out", "cancelled", "skipped"] as const;
export type StageOutcome = (typeof STAGE_OUTCOMES)[number];

/** Values of the `status` label of run outcomes. */
export const RUN_OUTCOMES = ["succeeded", "failed", "cancelled"] as const;
export type RunOutcomeStatus = (typeof RUN_OUTCOMES)[number];

/** Values of the `reason` label of reconciled runs. */
export const RECONCILE_REASONS = ["runner_restarted", "job_lost"] as const;

export interface RunnerMetrics {
  registry: Registry;
  up: Gauge;
  activeRuns: Gauge;
  /** driver: a name from the DriverRegistry (fixed at start: shell, node, …). */
  activeStages: Gauge<"driver">;
  /** driver: a registered driver name. status: succeeded | failed | timed_out | cancelled | skipped. One per stage, after its last attempt. */
  stageOutcomes: Counter<"driver" | "status">;
  /** driver: a registered driver name. One observation per attempt (each process run). */
  stageDuration: Histogram<"driver">;
  /** status: succeeded | failed | cancelled. */
  runOutcomes: Counter<"status">;
  /** reason: runner_restarted | job_lost. Runs this process's reconciler failed on behalf of a runner that is gone. */
  runsReconciled: Counter<"reason">;
  /** Events and samples waiting in the local spool file (the queue was unreachable). */
  eventsSpooled: Gauge;
  deliveryFailures: Counter;
  samplesDropped: Counter;
  /** Last heartbeat time (ms) of each running stage attempt, keyed by its handle; read at scrape by the heartbeat-age gauge. */
  heartbeats: Map<object, number>;
}

export function createRunnerMetrics(driverNames: readonly string[]): RunnerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: "flowmeter_" });
  const heartbeats = new Map<object, number>();
  const metrics: RunnerMetrics = {
    registry,
    heartbeats,
    up: new Gauge({ name: "flowmeter_runner_up", help: "1 while the runner process is serving", registers: [registry] }),
    activeRuns: new Gauge({ name: "flowmeter_runner_active_runs", help: "Runs executing in this process", registers: [registry] }),
    activeStages: new Gauge({
      name: "flowmeter_runner_active_stages",
      help: "Stage processes running in this process, by driver",
      labelNames: ["driver"],
      registers: [registry],
    }),
    stageOutcomes: new Counter({
      name: "flowmeter_runner_stage_outcomes_total",
      help: "Stages ended, by driver and outcome (after the last attempt)",
      labelNames: ["driver", "status"],
      registers: [registry],
    }),
    stageDuration: new Histogram({
      name: "flowmeter_runner_stage_duration_seconds",
      help: "Duration of stage attempts (one process run each), by driver",
      labelNames: ["driver"],
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600],
      registers: [registry],
    }),
    runOutcomes: new Counter({
      name: "flowmeter_runner_runs_total",
      help: "Runs ended, by outcome",
      labelNames: ["status"],
      registers: [registry],
    }),
    runsReconciled: new Counter({
      name: "flowmeter_runner_runs_reconciled_total",
      help: "Runs failed by this runner's reconciler because their runner stopped renewing the lease (runner_restarted) or their job was lost (job_lost)",
      labelNames: ["reason"],
      registers: [registry],
    }),
    eventsSpooled: new Gauge({
      name: "flowmeter_runner_events_spooled",
      help: "Events and samples buffered in the local spool file because the queue was unreachable",
      registers: [registry],
    }),
    deliveryFailures: new Counter({
      name: "flowmeter_runner_delivery_failures_total",
      help: "Batches the publisher could not hand to Redis (they were spooled)",
      registers: [registry],
    }),
    samplesDropped: new Counter({
      name: "flowmeter_runner_samples_dropped_total",
      help: "Telemetry samples dropped because the in-memory buffer was full (events are never dropped)",
      registers: [registry],
    }),
  };
  new Gauge({
    name: "flowmeter_runner_heartbeat_age_seconds",
    help: "Seconds since the stalest running stage last sent a heartbeat (since it started, before its first); 0 when none runs",
    registers: [registry],
    collect() {
      const now = Date.now();
      let oldest = now;
      for (const at of heartbeats.values()) oldest = Math.min(oldest, at);
      this.set((now - oldest) / 1000);
    },
  });
  metrics.up.set(1);
  for (const driver of driverNames) {
    metrics.activeStages.set({ driver }, 0);
    metrics.stageDuration.zero({ driver });
    for (const status of STAGE_OUTCOMES) metrics.stageOutcomes.inc({ driver, status }, 0);
  }
  for (const status of RUN_OUTCOMES) metrics.runOutcomes.inc({ status }, 0);
  for (const reason of RECONCILE_REASONS) metrics.runsReconciled.inc({ reason }, 0);
  return metrics;
}
