export { browserRequestRefusal, type RequestHeaders } from "./browser-guard.js";
export { ApiError, ERROR_CODES, type ApiErrorBody, type ErrorCode } from "./errors.js";
export { ConfigError, DEFAULT_REDIS_URL, EnvReader, isLoopbackHost, readDataDir, readRedisConfig, type EnvSource, type RedisConfig } from "./config.js";
export { createLogger, createRepeatThrottle, errorMessage, type LogFields, type Logger, type LogLevel } from "./logger.js";
export {
  CliInvocationEventSchema,
  entryDriver,
  entryId,
  validateCliInvocation,
  type CliInvocationEvent,
  type CliInvocationProperties,
  type CommandInvocation,
  type InvocationResult,
  type InvocationStatus,
  type ValidationResult,
  type WorkflowContext,
} from "./telemetry.js";
export { REPAIR_REASONS, REPAIRS_KEY, repairCliInvocation, type EntryRepairs, type Repair, type RepairReason, type RepairResult } from "./repair-entry.js";
export {
  JOB_CATALOG,
  payloadProblem,
  RETRY_DELAY_CAP_MS,
  WARNING_EXCERPT_CHARS,
  retryDelayMs,
  warningExcerpt,
  type ClientTelemetryJob,
  type IngestionWarning,
} from "./queues.js";
export { createRedis, redisAnswers, redisAnswersAt } from "./redis.js";
export {
  MAX_LOG_LINE_BYTES,
  MAX_LOG_LINES_PER_ATTEMPT,
  RUN_EVENT_TYPES,
  RUN_FAILED_REASONS,
  RUN_EVENT_V2_NAMES,
  RUN_POLICY_LIMITS,
  TERMINAL_RUN_EVENT_TYPES,
  isTerminalRunEvent,
  uuidV7,
  type HeartbeatMetrics,
  type HostMetrics,
  type HostSample,
  type OutputState,
  type RunEvent,
  type RunEventLevel,
  type RunEventOf,
  type RunEventPayloads,
  type RunEventsJob,
  type RunEventType,
  type RunFailedReason,
  type RunEventTypeV2,
  type RunJob,
  type RunPolicy,
  type StageDefinition,
  type StageLogLine,
  type StepHeartbeat,
  type TelemetrySample,
  type TerminalRunEventType,
  type WorkflowDefinition,
} from "./run-events.js";
export { MethodNotAllowedError, createErrorHandler, methodNotAllowed, toErrorResponse, type ErrorResponse } from "./http-errors.js";
export {
  ACTIVE_RUN_STATES,
  RUN_STATES,
  STAGE_STATUSES,
  TERMINAL_RUN_STATES,
  isTerminalRunState,
  type ApiVersion,
  type CancelRunRequest,
  type CreateRunRequest,
  type CreateRunResponse,
  type RunEventsResponse,
  type RunEventView,
  type RunListResponse,
  type RunStagesResponse,
  type RunState,
  type RunTelemetryResponse,
  type RunLogsResponse,
  type RunView,
  type StageStatus,
  type StageView,
  type TerminalReason,
  type TerminalRunState,
} from "./run-api.js";
export { bearerToken, createSecretMatcher } from "./secrets.js";
export { SpoolFile, type SpoolFileOptions } from "./spool-file.js";
