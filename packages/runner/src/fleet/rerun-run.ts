import { isTerminalRunState, type WorkflowDefinition } from "@flowmeter/shared";
import { RerunRefusedError } from "../errors.js";
import { buildStageView } from "../store/stage-view.js";
import type { RunStore } from "../store/run-store.js";
import { submitRun, type SubmittedRun } from "./submit-run.js";

export interface RerunOptions {
  /** Only the stages that did not succeed (failed, skipped, never started); those that succeeded are left out. */
  failedOnly?: boolean;
  /** Driver names to validate against; default: the built-in drivers. */
  drivers?: readonly string[];
}

/**
 * The workflow without the stages that succeeded, and without dependencies on them: what is left starts where the
 * earlier run stopped. Stages share nothing but their order, so a dependency that already succeeded is met.
 */
export function withoutSucceededStages(workflow: WorkflowDefinition, succeeded: ReadonlySet<string>): WorkflowDefinition {
  const stages = workflow.stages
    .filter((stage) => !succeeded.has(stage.name))
    .map((stage) => {
      if (stage.depends_on === undefined) return stage;
      const { depends_on: dependsOn, ...rest } = stage;
      const left = dependsOn.filter((name) => !succeeded.has(name));
      return left.length === 0 ? rest : { ...rest, depends_on: left };
    });
  return { ...workflow, stages };
}

/**
 * Submits a new run of what an ended run was submitted with (workflow, input, concurrency, policy), linked to it
 * (`rerun_of`); with `failedOnly`, only its stages that did not succeed. The old run is not touched. Throws
 * RerunRefusedError when the run is unknown, still active, had nothing failed (failedOnly), or its request is no
 * longer kept (it lives as long as the run's record).
 */
export async function rerunRun(store: RunStore, runId: string, options: RerunOptions = {}): Promise<SubmittedRun> {
  await store.ready();
  const record = await store.records.get(runId);
  if (record === undefined) throw new RerunRefusedError("unknown", `run ${runId} not found (unknown, or past its retention)`);
  if (!isTerminalRunState(record.state)) {
    throw new RerunRefusedError("active", `run ${runId} is still ${record.state}; re-run it once it has ended (or cancel it first)`);
  }
  const request = await store.records.request(runId);
  if (request === undefined)
    throw new RerunRefusedError("request_gone", `run ${runId} was submitted by an older runner; its workflow is not kept to re-run it`);
  let workflow = request.workflow as WorkflowDefinition;
  if (options.failedOnly === true) {
    const stages = buildStageView(await store.events.read(runId, {}, store.limits.maxEventsPerRun));
    const succeeded = new Set(stages.filter((stage) => stage.status === "succeeded").map((stage) => stage.stage_name));
    workflow = withoutSucceededStages(workflow, succeeded);
    if (workflow.stages.length === 0)
      throw new RerunRefusedError("nothing_failed", `every stage of run ${runId} succeeded; nothing to re-run with failed_only`);
  }
  return submitRun(store, workflow, request.input, {
    rerunOf: runId,
    ...(request.concurrency === undefined ? {} : { concurrency: request.concurrency }),
    ...(request.policy === undefined ? {} : { policy: request.policy }),
    ...(options.drivers === undefined ? {} : { drivers: options.drivers }),
  });
}
