/** The live view `flowmeter run` draws: one line per stage, updated from the run's events. */
import type { RunEvent, StageStatus } from "@flowmeter/shared";

export interface StageView {
  name: string;
  group: string;
  driver: string;
  state: StageStatus;
  attempt: number;
  startedAtMs: number | undefined;
  durationMs: number | undefined;
  detail: string;
  /** The last lines a failed stage wrote, shown under its line. */
  tail: string[];
}

const SYMBOL: Record<StageStatus, string> = { queued: "·", running: "▶", succeeded: "✔", failed: "✖", skipped: "↷" };

export class RunView {
  readonly stages = new Map<string, StageView>();
  outcome: "succeeded" | "failed" | "cancelled" | undefined;
  summary = "";

  apply(event: RunEvent): void {
    switch (event.event_type) {
      case "stage.queued":
        this.stage(event).driver = event.payload.driver;
        break;
      case "stage.started":
        Object.assign(this.stage(event), {
          state: "running",
          attempt: event.payload.stage_attempt,
          startedAtMs: event.ts_ms,
          durationMs: undefined,
          detail: "",
          tail: [],
        });
        break;
      case "stage.completed":
        Object.assign(this.stage(event), { state: "succeeded", durationMs: event.payload.duration_ms, detail: "" });
        break;
      case "stage.failed":
        Object.assign(this.stage(event), {
          state: event.payload.will_retry ? "running" : "failed",
          durationMs: event.payload.duration_ms,
          detail: `${event.payload.will_retry ? "retrying after " : ""}${event.payload.error}${event.payload.allowed_failure ? " (allowed)" : ""}`,
        });
        break;
      case "stage.skipped":
        Object.assign(this.stage(event), { state: "skipped", detail: event.payload.reason });
        break;
      case "run.finished":
        this.outcome = "succeeded";
        this.summary = `run succeeded in ${(event.payload.duration_ms / 1000).toFixed(1)} s`;
        break;
      case "run.failed":
        this.outcome = "failed";
        this.summary = `run failed after ${(event.payload.duration_ms / 1000).toFixed(1)} s: ${event.payload.error}`;
        break;
      case "run.cancelled":
        this.outcome = "cancelled";
        this.summary = `run cancelled: ${event.payload.reason}`;
        break;
      default:
        break;
    }
  }

  private stage(event: RunEvent): StageView {
    const name = event.stage_name ?? "";
    let view = this.stages.get(name);
    if (!view) {
      view = {
        name,
        group: event.group_id ?? "",
        driver: "",
        state: "queued",
        attempt: 0,
        startedAtMs: undefined,
        durationMs: undefined,
        detail: "",
        tail: [],
      };
      this.stages.set(name, view);
    }
    return view;
  }

  /** Shows `lines` under a stage's line (the output of its failed attempt). */
  setTail(stageName: string, lines: string[]): void {
    const view = this.stages.get(stageName);
    if (view !== undefined) view.tail = lines;
  }

  lines(nowMs: number): string[] {
    const width = Math.max(5, ...[...this.stages.keys()].map((name) => name.length));
    return [...this.stages.values()].flatMap((stage) => {
      const elapsed = stage.state === "running" && stage.startedAtMs !== undefined ? nowMs - stage.startedAtMs : stage.durationMs;
      const time = elapsed === undefined ? "" : `${(elapsed / 1000).toFixed(1)} s`;
      const attempt = stage.attempt > 1 ? ` attempt ${stage.attempt}` : "";
      const line = `${SYMBOL[stage.state]} ${stage.name.padEnd(width)}  ${stage.group.padEnd(3)} ${stage.state.padEnd(9)} ${time.padStart(8)}${attempt}${stage.detail ? `  ${stage.detail}` : ""}`;
      return [line, ...stage.tail.map((text) => `    │ ${text}`)];
    });
  }
}
