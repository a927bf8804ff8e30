export { ApiError, ERROR_CODES, type ApiErrorBody, type ErrorCode } from "./errors.js";
export { ConfigError, DEFAULT_REDIS_URL, EnvReader, readRedisConfig, type EnvSource, type RedisConfig } from "./config.js";
export { createLogger, errorMessage, type LogFields, type Logger, type LogLevel } from "./logger.js";
export {
  CliInvocationEventSchema,
  KNOWN_ENVELOPE_KEYS,
  KNOWN_PROPERTY_KEYS,
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
export { JOB_CATALOG, type ClientTelemetryJob, type JobKind, type JobPayloads } from "./queues.js";
export { createRedis, redisAnswers } from "./redis.js";
export {
  RUN_EVENT_TYPES,
  RUN_EVENT_V2_NAMES,
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
  type RunEventTypeV2,
  type RunJob,
  type StageDefinition,
  type StepHeartbeat,
  type TelemetrySample,
  type TerminalRunEventType,
  type WorkflowDefinition,
} from "./run-events.js";
