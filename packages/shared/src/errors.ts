import type { SchemaType } from "./schema-type.js";

/** Error codes of the HTTP APIs (docs/spec.md §5). The same `{code, message, retryable}` shape serves ingest and the run API. */
export const ERROR_CODES = [
  "INVALID_SPEC",
  "INVALID_PARAMS",
  "NOT_FOUND",
  "ALREADY_TERMINAL",
  "RUN_ID_CONFLICT",
  "PAYLOAD_TOO_LARGE",
  "TOO_MANY_REQUESTS",
  "UNAUTHORIZED",
  "INTERNAL_ERROR",
  "UNAVAILABLE",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

/** Every error answer of both APIs: its schema (the run API's OpenAPI document serves it) and its type. */
export const API_ERROR_SCHEMA = {
  type: "object",
  additionalProperties: false,
  required: ["code", "message", "retryable"],
  properties: { code: { type: "string", enum: ERROR_CODES }, message: { type: "string" }, retryable: { type: "boolean" } },
} as const;
export type ApiErrorBody = SchemaType<typeof API_ERROR_SCHEMA>;

const HTTP_STATUS: Record<ErrorCode, number> = {
  INVALID_SPEC: 400,
  INVALID_PARAMS: 400,
  NOT_FOUND: 404,
  ALREADY_TERMINAL: 409,
  RUN_ID_CONFLICT: 409,
  PAYLOAD_TOO_LARGE: 413,
  TOO_MANY_REQUESTS: 429,
  UNAUTHORIZED: 401,
  INTERNAL_ERROR: 500,
  UNAVAILABLE: 503,
};

const RETRYABLE: ReadonlySet<ErrorCode> = new Set(["TOO_MANY_REQUESTS", "UNAVAILABLE", "INTERNAL_ERROR"]);

/**
 * An error an HTTP handler throws on purpose; the error middleware turns it into its status and body. `status`
 * overrides the code's usual status where the code list has no closer code (403 UNAUTHORIZED, 415 INVALID_PARAMS).
 */
export class ApiError extends Error {
  override readonly name = "ApiError";
  readonly status: number;
  readonly retryable: boolean;
  /** Seconds a client should wait before retrying; sent as Retry-After. */
  readonly retryAfterSeconds: number | undefined;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: { retryAfterSeconds?: number; cause?: unknown; status?: number } = {},
  ) {
    super(message, { cause: options.cause });
    this.status = options.status ?? HTTP_STATUS[code];
    this.retryable = RETRYABLE.has(code);
    this.retryAfterSeconds = options.retryAfterSeconds;
  }

  toBody(): ApiErrorBody {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}
