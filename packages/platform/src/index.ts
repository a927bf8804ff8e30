// The helpers every service process uses: config reading, logging, Redis connections, HTTP error answers, the spool file, ids.
export { browserRequestRefusal, type RequestHeaders } from "./browser-guard.js";
export { ConfigError, DEFAULT_REDIS_URL, EnvReader, isLoopbackHost, readDataDir, readRedisConfig, type EnvSource, type RedisConfig } from "./config.js";
export { createLogger, createRepeatThrottle, errorMessage, type LogFields, type Logger, type LogLevel } from "./logger.js";
export { createRedis, partitionCountProblem, redisAnswers, redisAnswersAt } from "./redis.js";
export { MethodNotAllowedError, createErrorHandler, methodNotAllowed, notFound, serveMetrics, toErrorResponse, type ErrorResponse } from "./http-errors.js";
export { exceedsJsonDepth } from "./json-depth.js";
export { REDACTED, redactCredentials, redactUrl } from "./redact.js";
export { bearerToken, createSecretMatcher } from "./secrets.js";
export { DurableProducer, SpoolFullError, withTimeout, type DurableProducerOptions, type SendOptions } from "./durable-producer.js";
export { GroupCommit } from "./group-commit.js";
export { ReplayLoop, type ReplayLoopOptions, type ReplayOutcome } from "./replay-loop.js";
export { SpoolFile, type DrainResult, type SpoolFileOptions } from "./spool-file.js";
export { uuidV7 } from "./uuid-v7.js";
