/**
 * The live stage view of a run (`GET /v1/runs/{id}/stages`), folded from its events in seq order. Every stage event
 * upserts its stage, so a stage shows up even when its stage.queued event is not stored (trimmed, or a producer
 * that does not send it). Figures are those of the stage's latest attempt.
 */
import type { RunEvent, StageView } from "@flowmeter/shared";

function emptyStage(event: RunEvent, name: string): StageView {
  return {
    stage_name: name,
    group_id: event.group_id,
    depends_on: [],
    driver: null,
    status: "queued",
    stage_attempt: 0,
    started_at: null,
    completed_at: null,
    duration_ms: null,
    exit_code: null,
  };
}

export function buildStageView(events: readonly RunEvent[]): StageView[] {
  const stages = new Map<string, StageView>();
  for (const event of events) {
    if (event.stage_name === null || !event.event_type.startsWith("stage.")) continue;
    let stage = stages.get(event.stage_name);
    if (stage === undefined) {
      stage = emptyStage(event, event.stage_name);
      stages.set(event.stage_name, stage);
    }
    stage.group_id ??= event.group_id;
    if ("driver" in event.payload) stage.driver = event.payload.driver;
    switch (event.event_type) {
      case "stage.queued":
        stage.depends_on = [...event.payload.depends_on];
        break;
      case "stage.started":
        Object.assign(stage, {
          status: "running",
          stage_attempt: event.payload.stage_attempt,
          started_at: event.timestamp,
          completed_at: null,
          duration_ms: null,
          exit_code: null,
        } satisfies Partial<StageView>);
        break;
      case "stage.completed":
        Object.assign(stage, {
          status: "succeeded",
          stage_attempt: event.payload.stage_attempt,
          completed_at: event.timestamp,
          duration_ms: event.payload.duration_ms,
          exit_code: event.payload.exit_code,
        } satisfies Partial<StageView>);
        break;
      case "stage.failed":
        // An attempt that will be retried leaves the stage running (the next attempt starts at once).
        Object.assign(stage, {
          status: event.payload.will_retry ? "running" : "failed",
          stage_attempt: event.payload.stage_attempt,
          completed_at: event.payload.will_retry ? null : event.timestamp,
          duration_ms: event.payload.duration_ms,
          exit_code: event.payload.exit_code,
        } satisfies Partial<StageView>);
        break;
      case "stage.skipped":
        Object.assign(stage, { status: "skipped", stage_attempt: event.payload.stage_attempt, completed_at: event.timestamp } satisfies Partial<StageView>);
        break;
      default:
    }
  }
  return [...stages.values()];
}
