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
