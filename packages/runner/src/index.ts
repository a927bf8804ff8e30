// What other packages use of the runner: the CLI (start, run, logs), the bench and the operations tests.
export { parseRunnerConfig, type RunnerConfig } from "./config.js";
export { RerunRefusedError, RunIdConflictError, WorkflowValidationError } from "./errors.js";
export { lineBytes } from "./execution/log-text.js";
export { createRunnerMetrics } from "./metrics.js";
export { loadWorkflowFile } from "./workflow/load-workflow-file.js";
export { BUILT_IN_DRIVER_NAMES } from "./drivers/driver-registry.js";
export { RunStore, logLineMatches } from "./store/run-store.js";
export { cancelRun } from "./fleet/cancel-run.js";
export { followRun } from "./fleet/follow-run.js";
export { rerunRun } from "./fleet/rerun-run.js";
export { submitRun } from "./fleet/submit-run.js";
export { startRunner, type RunningRunner } from "./start-runner.js";
