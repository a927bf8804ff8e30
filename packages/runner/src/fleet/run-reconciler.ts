/**
 * Ends the runs nobody will end: every runner runs one, once at start (as soon as Redis answers) and every
 * `intervalMs`. It walks the active runs of its prefix and
 * - fails a running run whose runner is dead for certain (a runner of this host whose process is gone: stage-registry.ts
 *   records them) at once, and one whose lease ran out (its runner died elsewhere, or was cut off from Redis for longer
 *   than the lease), with terminal_reason `runner_restarted`: its running stages get stage.failed (exit_code -1,
 *   duration_ms up to when this host killed what was left of them, else up to the dead runner's last lease
 *   renewal), its queued ones stage.skipped, then run.failed; the run is not executed again;
 * - fails a queued run whose job is no longer in the runs queue (`job_lost`: e.g. the API process died between
 *   creating the record and queueing the job).
 * The events are stored by one Lua script that also ends the record, only if the run is still in the state seen
 * and no event was stored meanwhile, so several reconcilers (and a late spool replay of the dead runner) cannot give
 * a run two terminal events. A re-delivered runs job (BullMQ stalled-job recovery) comes here too, through the
 * consumer's claim.
 */
import { errorMessage, type Logger } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import { buildRunEvents, type RunEventSequencer } from "../execution/run-event-sequencer.js";
import type { StageRegistry } from "../execution/stage-registry.js";
import type { RunnerMetrics } from "../metrics.js";
import type { RunRecord } from "../store/run-records.js";
import type { RunStore } from "../store/run-store.js";
import { buildStageView } from "../store/stage-view.js";
import type { LeaseKeeper } from "./lease-keeper.js";

export type AbandonReason = "runner_restarted" | "job_lost";

/** Job states in which a queued run's job will still reach a runner. */
const PENDING_JOB_STATES = new Set(["waiting", "active", "delayed", "prioritized", "waiting-children"]);

/**
 * The events that end a run nobody executes any more, continuing its stored events: stage.failed (exit_code -1) for
 * each running stage, stage.skipped for each queued one, then run.failed with `reason`.
 */
export function abandonEvents(
  record: RunRecord,
  stored: readonly RunEvent[],
  lastSeq: number,
  reason: AbandonReason,
  nowMs = Date.now(),
  stageKilledAtMs: ReadonlyMap<string, number> = new Map(),
): RunEvent[] {
  return buildRunEvents(record.run_id, record.attempt_id, lastSeq + 1, (events) => emitAbandon(events, record, stored, reason, nowMs, stageKilledAtMs));
}

/**
 * When a running stage of a dead runner stopped: when this host killed its leftovers, else (gone already, or on
 * another host) no later than its runner's last lease renewal, the last moment anyone knew of it.
 */
function stageEndMs(record: RunRecord, stageName: string, nowMs: number, stageKilledAtMs: ReadonlyMap<string, number>): number {
  return stageKilledAtMs.get(`${record.run_id}\0${stageName}`) ?? Math.min(nowMs, record.heartbeat_at_ms ?? nowMs);
}

function emitAbandon(
  events: RunEventSequencer,
  record: RunRecord,
  stored: readonly RunEvent[],
  reason: AbandonReason,
  nowMs: number,
  stageKilledAtMs: ReadonlyMap<string, number>,
): void {
  const workflow = record.workflow;
  const error =
    reason === "runner_restarted"
      ? `runner ${record.runner_id ?? "(unknown)"} stopped renewing the run's lease (it stopped or lost Redis); the run is not executed again`
      : "the run's job left the runs queue before a runner started it";
  for (const stage of buildStageView(stored)) {
    const fields = { stage_name: stage.stage_name, ...(stage.group_id === null ? {} : { group_id: stage.group_id }) };
    const driver = stage.driver ?? "";
    if (stage.status === "running") {
      const endMs = stageEndMs(record, stage.stage_name, nowMs, stageKilledAtMs);
      const startedMs = stage.started_at === null ? endMs : Date.parse(stage.started_at);
      events.emit(
        "stage.failed",
        { ...fields, message: `stage "${stage.stage_name}" failed: ${reason.replace("_", " ")}`, level: "error" },
        {
          workflow,
          driver,
          stage_attempt: stage.stage_attempt,
          duration_ms: Math.max(0, endMs - startedMs),
          exit_code: -1,
          error: reason.replace("_", " "),
          will_retry: false,
          timed_out: false,
          cancelled: false,
          allowed_failure: false,
        },
      );
    } else if (stage.status === "queued") {
      const skipReason = `run failed: ${reason.replace("_", " ")}`;
      events.emit(
        "stage.skipped",
        { ...fields, message: `stage "${stage.stage_name}" skipped: ${skipReason}`, level: "warn" },
        { workflow, driver, stage_attempt: 0, reason: skipReason },
      );
    }
  }
  const startedMs = record.started_at_ms ?? record.created_at_ms;
  events.emit(
    "run.failed",
    { message: `run of workflow "${workflow}" failed: ${error}`, level: "error" },
    { workflow, duration_ms: Math.max(0, nowMs - startedMs), error, reason },
  );
}

export interface RunReconcilerOptions {
  /** Runs, their events and the runs queue; rounds wait until its connection is ready. */
  store: RunStore;
  /** A queued run is checked for a lost job only once it is this old (its job is queued just after its record). */
  jobLostGraceMs: number;
  logger: Logger;
  metrics?: Pick<RunnerMetrics, "runsReconciled">;
  /** This runner's own leases: never abandoned here, and renewed first when Redis comes back. */
  ownLeases?: () => Pick<LeaseKeeper, "holds" | "renewNow">;
  /**
   * After Redis was unreachable, nobody could renew a lease: expired leases mean nothing until every runner had a
   * full lease period to renew. After a reconnection, runs are abandoned only once this long has passed.
   */
  leaseMs: number;
  /** The runners of this host known dead (stage-registry.ts): their runs end at once, lease or not. */
  localRunners?: Pick<StageRegistry, "deadRunners" | "forget">;
}

const NO_LEASES: Pick<LeaseKeeper, "holds" | "renewNow"> = { holds: () => false, renewNow: async () => {} };

export class RunReconciler {
  private timer: NodeJS.Timeout | undefined;
  private round: Promise<string[]> | undefined;
  private connectedBefore: boolean;
  private graceUntilMs = 0;
  private readonly onReady = (): void => {
    if (this.connectedBefore) this.graceUntilMs = Date.now() + this.options.leaseMs;
    this.connectedBefore = true;
    void this.ownLeases().renewNow();
  };

  constructor(private readonly options: RunReconcilerOptions) {
    this.connectedBefore = options.store.redis.status === "ready";
  }

  private ownLeases(): Pick<LeaseKeeper, "holds" | "renewNow"> {
    return this.options.ownLeases?.() ?? NO_LEASES;
  }

  /** Runs a round now (or as soon as Redis is ready), then every `intervalMs`. */
  start(intervalMs: number): void {
    if (this.timer !== undefined) return;
    this.timer = setInterval(() => void this.runOnce(), intervalMs);
    this.options.store.redis.on("ready", this.onReady);
    void this.runOnce();
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
    this.options.store.redis.off("ready", this.onReady);
  }

  /** One round (rounds never overlap); resolves with the ids of the runs it failed. Never rejects. */
  runOnce(): Promise<string[]> {
    this.round ??= this.reconcile()
      .catch((error: unknown) => {
        this.options.logger.warn("reconcile round failed", { error: errorMessage(error) });
        return [];
      })
      .finally(() => {
        this.round = undefined;
      });
    return this.round;
  }

  private async reconcile(): Promise<string[]> {
    const { store, jobLostGraceMs } = this.options;
    const { records, runQueue } = store;
    if (store.redis.status !== "ready" || Date.now() < this.graceUntilMs) return [];
    const own = this.ownLeases();
    await own.renewNow();
    const now = await records.now();
    const dead = this.options.localRunners?.deadRunners();
    const failed: string[] = [];
    /** Dead runners of this host that still hold a run after this round: kept on record for the next one. */
    const stillHolding = new Set<string>();
    for await (const record of records.activeRuns()) {
      const runId = record.run_id;
      if (own.holds(runId)) continue;
      const deadRunner = record.state === "running" && record.runner_id !== undefined && dead?.runnerIds.has(record.runner_id) ? record.runner_id : undefined;
      let reason: AbandonReason | undefined;
      if (record.state === "running" && (deadRunner !== undefined || (record.lease_expires_at_ms ?? 0) < now)) reason = "runner_restarted";
      else if (record.state === "queued" && record.created_at_ms < now - jobLostGraceMs && !PENDING_JOB_STATES.has(await runQueue.getJobState(runId)))
        reason = "job_lost";
      const ended =
        reason !== undefined && (await this.abandon(runId, reason, deadRunner === undefined ? {} : { deadRunner, stageKilledAtMs: dead?.stageKilledAtMs }));
      if (ended) failed.push(runId);
      else if (deadRunner !== undefined) stillHolding.add(deadRunner);
    }
    for (const runnerId of dead?.runnerIds ?? []) if (!stillHolding.has(runnerId)) this.options.localRunners?.forget(runnerId, failed);
    return failed;
  }

  /**
   * Fails a run nobody executes (see abandonEvents), if it is still as the caller saw it: running with an expired
   * lease, or still held by `known.deadRunner`, a runner known dead (runner_restarted), or queued (job_lost). True
   * when this call ended it.
   */
  async abandon(
    runId: string,
    reason: AbandonReason,
    known: { deadRunner?: string; stageKilledAtMs?: ReadonlyMap<string, number> | undefined } = {},
  ): Promise<boolean> {
    const { store, logger } = this.options;
    const { records, events: stored } = store;
    for (let attempt = 0; attempt < 3; attempt += 1) {
      const record = await records.get(runId);
      const expectedState = reason === "runner_restarted" ? "running" : "queued";
      if (record === undefined || record.state !== expectedState) return false;
      const lastSeq = (await stored.last(runId))?.seq ?? -1;
      const history = lastSeq < 0 ? [] : await stored.read(runId, {}, store.limits.maxEventsPerRun);
      const events = abandonEvents(record, history, lastSeq, reason, Date.now(), known.stageKilledAtMs);
      const result = await store.endRun(
        runId,
        {
          state: expectedState,
          lastSeq,
          requireExpiredLease: reason === "runner_restarted",
          ...(known.deadRunner === undefined ? {} : { requireRunner: known.deadRunner }),
        },
        events,
      );
      if (result === "ended_now") {
        this.options.metrics?.runsReconciled.inc({ reason });
        logger.warn("run failed by the reconciler", { run_id: runId, reason, runner_id: record.runner_id, attempt_id: record.attempt_id });
        return true;
      }
      if (result !== "changed") return false; // ended meanwhile, or its lease was renewed
    }
    return false;
  }
}
