/** The one place errors become HTTP answers: every error body is {code, message, retryable}; express's own handlers never answer. */
import { ApiError, errorMessage, type Logger } from "@flowmeter/shared";
import type { NextFunction, Request, Response } from "express";

export interface HttpError {
  status: number;
  error: ApiError;
  headers?: Record<string, string>;
}

/** A known path asked with a method it does not serve: 405 with Allow, code NOT_FOUND (SPEC §5 has no method code). */
export class MethodNotAllowedError extends Error {
  override readonly name = "MethodNotAllowedError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly allow: string,
  ) {
    super(`${method} is not allowed on ${path}; use ${allow}`);
  }
}

interface ParserError {
  type?: unknown;
  status?: unknown;
  code?: unknown;
  limit?: unknown;
}

/** Maps ApiError, body-parser/raw-body and zlib errors to a status and an ApiError; anything else is a 500. */
export function toHttpError(error: unknown): HttpError {
  if (error instanceof ApiError) return { status: error.status, error };
  if (error instanceof MethodNotAllowedError) return { status: 405, error: new ApiError("NOT_FOUND", error.message), headers: { Allow: error.allow } };
  const parserError = (typeof error === "object" && error !== null ? error : {}) as ParserError;
  switch (parserError.type) {
    case "entity.too.large":
      return {
        status: 413,
        error: new ApiError("PAYLOAD_TOO_LARGE", `request body is larger than ${typeof parserError.limit === "number" ? `${parserError.limit} bytes` : "the limit"} (after decompression)`),
      };
    case "encoding.unsupported":
      return { status: 415, error: new ApiError("INVALID_PARAMS", "unsupported Content-Encoding; send gzip, deflate, br or an uncompressed body") };
    case "charset.unsupported":
      return { status: 415, error: new ApiError("INVALID_PARAMS", "unsupported charset; send UTF-8") };
    case "request.aborted":
      return { status: 400, error: new ApiError("INVALID_PARAMS", "request aborted before the body was read") };
    case "request.size.invalid":
      return { status: 400, error: new ApiError("INVALID_PARAMS", "request body length does not match Content-Length") };
    default:
  }
  if (typeof parserError.code === "string" && parserError.code.startsWith("Z_")) {
    return { status: 400, error: new ApiError("INVALID_PARAMS", "request body could not be decompressed") };
  }
  if (typeof parserError.status === "number" && parserError.status >= 400 && parserError.status < 500) {
    return { status: 400, error: new ApiError("INVALID_PARAMS", "malformed request") };
  }
  return { status: 500, error: new ApiError("INTERNAL_ERROR", "internal error") };
}

export function createErrorHandler(logger: Logger) {
  return function errorHandler(error: unknown, req: Request, res: Response, _next: NextFunction): void {
    const { status, error: apiError, headers } = toHttpError(error);
    if (status >= 500) {
      const cause = apiError === error ? apiError.cause : error;
      logger[status === 503 ? "warn" : "error"]("request failed", { route: req.path, status, code: apiError.code, error: cause === undefined ? apiError.message : errorMessage(cause) });
    }
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    if (headers !== undefined) res.set(headers);
    if (apiError.retryAfterSeconds !== undefined) res.set("Retry-After", String(apiError.retryAfterSeconds));
    res.status(status).json(apiError.toBody());
  };
}
