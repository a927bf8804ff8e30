/**
 * Keeps the leases of the runs this runner took: every third of the lease it renews them all in one Lua call
 * (run-records.ts), until each run's record is terminal, which happens when its terminal event reaches Redis. A
 * run stays tracked after its execution ended locally until then, so a run whose last events wait in the spool
 * (Redis away) is not taken for dead while they wait, as long as Redis comes back within the lease.
 *
 * When a run's record is terminal or no longer this runner's, the run is released and reported through `onReleased`;
 * if it is still executing here (failed by a reconciler after this runner could not renew in time), the consumer
 * stops it (its later events are refused anyway).
 */
import { createRepeatThrottle, errorMessage, type Logger } from "@flowmeter/platform";
import type { RunRecords } from "../store/run-records.js";

export interface LeaseKeeperOptions {
  records: RunRecords;
  runnerId: string;
  leaseMs: number;
  logger: Logger;
  /** ended: the record is terminal; lost: the record is gone or another runner's. */
  onReleased: (runId: string, status: "ended" | "lost") => void;
}

export class LeaseKeeper {
  private readonly tracked = new Set<string>();
  private timer: NodeJS.Timeout | undefined;
  private renewing: Promise<void> | undefined;
  private readonly shouldLog = createRepeatThrottle();

  constructor(private readonly options: LeaseKeeperOptions) {}

  /** Runs whose lease this runner holds (executing, or ended with the terminal event not in Redis yet). */
  get size(): number {
    return this.tracked.size;
  }

  track(runId: string): void {
    this.tracked.add(runId);
  }

  holds(runId: string): boolean {
    return this.tracked.has(runId);
  }

  start(): void {
    this.timer ??= setInterval(() => void this.renewNow(), Math.max(50, Math.floor(this.options.leaseMs / 3)));
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  /** One renewal round (rounds never overlap). Errors (Redis away) are logged; the next round tries again. */
  renewNow(): Promise<void> {
    this.renewing ??= this.renew().finally(() => {
      this.renewing = undefined;
    });
    return this.renewing;
  }

  private async renew(): Promise<void> {
    const runIds = [...this.tracked];
    if (runIds.length === 0) return;
    const { records, runnerId, leaseMs, logger } = this.options;
    let statuses;
    try {
      statuses = await records.renew(runIds, runnerId, leaseMs);
    } catch (error) {
      if (this.shouldLog(errorMessage(error)))
        logger.warn("could not renew run leases (repeats are logged every 30 s)", { runs: runIds.length, error: errorMessage(error) });
      return;
    }
    statuses.forEach((status, index) => {
      const runId = runIds[index] as string;
      if (status === "renewed") return;
      this.tracked.delete(runId);
      if (status === "lost") logger.warn("lost the lease of a run", { run_id: runId });
      this.options.onReleased(runId, status);
    });
  }
}
