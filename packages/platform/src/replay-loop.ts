import { errorMessage, type Logger } from "./logger.js";

/** What one pass reports: nothing is left to replay, or it should be tried again after a backoff. */
export type ReplayOutcome = "done" | "retry";

export interface ReplayLoopOptions {
  /** One replay pass (e.g. drain a spool into Redis). A pass that throws counts as "retry". */
  pass: () => Promise<ReplayOutcome>;
  /** First retry delay, doubled after each failed pass up to retryMaxMs, back to retryMinMs after a "done". */
  retryMinMs: number;
  retryMaxMs: number;
  logger: Logger;
}

/**
 * Runs replay passes one at a time, and keeps retrying them, with backoff, for as long as they fail: a replay never
 * waits for new traffic. `wake()` asks for a pass now; a wake-up that comes while a pass runs is not lost (another
 * pass follows a successful one), and one that comes while a retry is due leaves the backoff as it is.
 */
export class ReplayLoop {
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private wokenWhileRunning = false;
  private retryDelayMs: number;
  private stopped = false;

  constructor(private readonly options: ReplayLoopOptions) {
    this.retryDelayMs = options.retryMinMs;
  }

  wake(): void {
    if (this.stopped) return;
    if (this.running !== undefined) this.wokenWhileRunning = true;
    else if (this.timer === undefined) this.startIn(0);
  }

  /**
   * Asks for the next pass after the backoff rather than now (what was just tried failed: trying again at once would
   * too); a pass already due sooner is put off. A running pass decides the next one itself.
   */
  retryLater(): void {
    if (this.stopped || this.running !== undefined) return;
    clearTimeout(this.timer);
    this.startIn(this.retryDelayMs);
    this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs);
  }

  /** No more passes; waits for the one running. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.timer = undefined;
    await this.running;
  }

  private startIn(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.runPass();
    }, delayMs);
  }

  private async runPass(): Promise<void> {
    this.wokenWhileRunning = false;
    let outcome: ReplayOutcome;
    try {
      outcome = await this.options.pass();
    } catch (error) {
      this.options.logger.error("replay pass failed", { error: errorMessage(error) });
      outcome = "retry";
    }
    // Decide the next pass here, in the pass itself, with `running` cleared first: a `wake()` from here on starts one.
    this.running = undefined;
    if (this.stopped) return;
    if (outcome === "retry") {
      this.startIn(this.retryDelayMs);
      this.retryDelayMs = Math.min(this.retryDelayMs * 2, this.options.retryMaxMs);
    } else {
      this.retryDelayMs = this.options.retryMinMs;
      if (this.wokenWhileRunning) this.startIn(0);
    }
  }
}
