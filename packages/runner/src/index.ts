export { parseRunnerConfig, type RunnerConfig } from "./config.js";
export { DeliveryError, UnknownEventCursorError, WorkflowFileError, WorkflowValidationError } from "./errors.js";
export {
  createRunnerMetrics,
  RECONCILE_REASONS,
  RUN_OUTCOMES,
  STAGE_OUTCOMES,
  type RunnerMetrics,
  type RunOutcomeStatus,
  type StageOutcome,
} from "./metrics.js";
export { loadWorkflowFile, parseWorkflowText, type LoadWorkflowOptions } from "./workflow/load-workflow-file.js";
export { validateWorkflow, type ValidateWorkflowOptions } from "./workflow/validate-workflow.js";
export { loadWorkflowFromDir, MAX_WORKFLOW_FILE_BYTES } from "./workflow/workflows-dir.js";
export { planStages, type PlannedStage } from "./workflow/stage-graph.js";
export type { Driver, DriverCommand } from "./drivers/driver.js";
export { BUILT_IN_DRIVER_NAMES, DriverRegistry } from "./drivers/driver-registry.js";
export { nodeDriver } from "./drivers/node-driver.js";
export { shellDriver } from "./drivers/shell-driver.js";
export { RunExecution, type RunExecutionOptions, type RunOutcome } from "./execution/run-execution.js";
export type { RunOutput } from "./execution/run-event-sequencer.js";
export { EventPublisher, type DeliverBatch, type EventPublisherOptions } from "./delivery/event-publisher.js";
export { createQueueDelivery } from "./delivery/queue-delivery.js";
export { RunEventStore, runIndexKey, runKey, type EventCursor, type RunEventStoreOptions } from "./delivery/run-event-store.js";
export { RunSampleStore, type RunSampleStoreOptions, type SamplePage } from "./telemetry/run-sample-store.js";
export { RunRecords, isValidRunId, toRunView, type ClaimResult, type RunListFilter, type RunRecord, type RunRecordsOptions } from "./runs/run-records.js";
export { buildStageView } from "./runs/stage-view.js";
export type { SpoolItem } from "./delivery/event-publisher.js";
export { cancelRun, type CancelRunOptions } from "./fleet/cancel-run.js";
export { LeaseKeeper, type LeaseKeeperOptions } from "./fleet/lease-keeper.js";
export { RunReconciler, abandonEvents, type AbandonReason, type RunReconcilerOptions } from "./fleet/run-reconciler.js";
export { followRun, type FollowRunOptions } from "./fleet/follow-run.js";
export { RunConsumer, type RunConsumerOptions, type RunJobResult } from "./fleet/run-consumer.js";
export { createRunQueue, submitRun, type RunQueue, type SubmitRunOptions, type SubmittedRun } from "./fleet/submit-run.js";
export { createRunnerApp, type RunnerAppOptions, type RunnerHealth } from "./http/app.js";
export { createRunRoutes, type RunApiOptions } from "./http/run-routes.js";
export { OPENAPI_DOCUMENT } from "./http/openapi.js";
export { newRunnerId, startRunner, type RunningRunner } from "./start-runner.js";
