/** Bounds of the run API, used by the OpenAPI document (openapi.ts) and so by the routes that validate with it. */
export const MAX_REQUEST_BODY_BYTES = 1_048_576;
export const LIST_LIMIT = { default: 50, max: 500 } as const;
export const EVENTS_LIMIT = { default: 1000, max: 10_000 } as const;
export const TELEMETRY_LIMIT = { default: 1000, max: 10_000 } as const;
export const LOGS_LIMIT = { default: 1000, max: 10_000 } as const;
/** Arrays and objects in a request body nest at most this deep (the body is level 1); deeper is 400, checked before parsing. */
export const MAX_BODY_NESTING_DEPTH = 64;
/** Retry-After of a 429 (the fleet has RUNNER_API_MAX_ACTIVE_RUNS runs queued or running). */
export const FULL_RETRY_AFTER_SECONDS = 5;
