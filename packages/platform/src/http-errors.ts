/**
 * The one mapping from errors to HTTP answers, shared by the ingest API and the run API (docs/spec.md §5): every error
 * body is `{code, message, retryable}`, never HTML or a stack trace. Express-agnostic: `toErrorResponse` is pure,
 * and `createErrorHandler` types its arguments structurally, so express's Request/Response fit without this package
 * depending on express.
 */
import { ApiError, type ApiErrorBody } from "@flowmeter/shared";
import { createRepeatThrottle, errorMessage, type Logger } from "./logger.js";

/** A known path asked with a method it does not serve: 405 with Allow, code NOT_FOUND (docs/spec.md §5 has no method code). */
export class MethodNotAllowedError extends Error {
  override readonly name = "MethodNotAllowedError";
  constructor(
    readonly method: string,
    readonly path: string,
    readonly allow: string,
  ) {
    super(`${method} is not allowed on ${path.slice(0, 200)}; use ${allow}`);
  }
}

export interface ErrorResponse {
  status: number;
  body: ApiErrorBody;
  /** Allow (405), Retry-After (ApiError.retryAfterSeconds), WWW-Authenticate (401). */
  headers: Record<string, string>;
}

interface ParserError {
  type?: unknown;
  status?: unknown;
  code?: unknown;
  limit?: unknown;
}

function response(status: number, error: ApiError, headers: Record<string, string> = {}): ErrorResponse {
  const all = { ...headers };
  if (error.retryAfterSeconds !== undefined) all["Retry-After"] = String(error.retryAfterSeconds);
  if (error.code === "UNAUTHORIZED" && status === 401) all["WWW-Authenticate"] ??= "Bearer";
  return { status, body: error.toBody(), headers: all };
}

/** Maps ApiError, MethodNotAllowedError, body-parser/raw-body and zlib errors to an answer; anything else is a 500. */
export function toErrorResponse(error: unknown): ErrorResponse {
  if (error instanceof ApiError) return response(error.status, error);
  if (error instanceof MethodNotAllowedError) return response(405, new ApiError("NOT_FOUND", error.message), { Allow: error.allow });
  const parserError = (typeof error === "object" && error !== null ? error : {}) as ParserError;
  switch (parserError.type) {
    case "entity.too.large":
      return response(
        413,
        new ApiError(
          "PAYLOAD_TOO_LARGE",
          `request body is larger than ${typeof parserError.limit === "number" ? `${parserError.limit} bytes` : "the limit"} (after decompression)`,
        ),
      );
    case "entity.parse.failed":
      return response(400, new ApiError("INVALID_PARAMS", "request body is not valid JSON"));
    case "encoding.unsupported":
      return response(415, new ApiError("INVALID_PARAMS", "unsupported Content-Encoding; send gzip, deflate, br or an uncompressed body"));
    case "charset.unsupported":
      return response(415, new ApiError("INVALID_PARAMS", "unsupported charset; send UTF-8"));
    case "request.aborted":
      return response(400, new ApiError("INVALID_PARAMS", "request aborted before the body was read"));
    case "request.size.invalid":
      return response(400, new ApiError("INVALID_PARAMS", "request body length does not match Content-Length"));
    default:
  }
  if (typeof parserError.code === "string" && parserError.code.startsWith("Z_")) {
    return response(400, new ApiError("INVALID_PARAMS", "request body could not be decompressed"));
  }
  if (typeof parserError.status === "number" && parserError.status >= 400 && parserError.status < 500) {
    return response(400, new ApiError("INVALID_PARAMS", "malformed request"));
  }
  return response(500, new ApiError("INTERNAL_ERROR", "internal error"));
}

/** What createErrorHandler needs of a request and a response (express's fit). */
export interface ErrorHandlerRequest {
  path: string;
  socket: { destroy(): void };
}
export interface ErrorHandlerResponse {
  headersSent: boolean;
  set(headers: Record<string, string>): unknown;
  status(code: number): { json(body: unknown): unknown };
}

/**
 * The error middleware (4 arguments, as express wants): answers with toErrorResponse and logs 5xx answers with the
 * underlying cause. A 503 says a dependency is away, which repeats for every request until it is back: the same one
 * is logged at most every 30 s (whoever watches the dependency logs when the episode starts and ends). After the
 * headers went out it can only cut the connection.
 */
export function createErrorHandler(logger: Logger) {
  const shouldLogUnavailable = createRepeatThrottle();
  return function errorHandler(error: unknown, req: ErrorHandlerRequest, res: ErrorHandlerResponse, _next: (error?: unknown) => void): void {
    const answer = toErrorResponse(error);
    if (answer.status >= 500 && (answer.status !== 503 || shouldLogUnavailable(`${req.path.slice(0, 200)} ${answer.body.message}`))) {
      const cause = error instanceof ApiError ? error.cause : error;
      logger[answer.status === 503 ? "warn" : "error"]("request failed", {
        route: req.path.slice(0, 200),
        status: answer.status,
        code: answer.body.code,
        error: cause === undefined ? answer.body.message : errorMessage(cause),
      });
    }
    if (res.headersSent) {
      req.socket.destroy();
      return;
    }
    res.set(answer.headers);
    res.status(answer.status).json(answer.body);
  };
}

/** A handler for the methods a path does not serve: `.all(methodNotAllowed("GET, HEAD"))` after its real methods. */
export function methodNotAllowed(allow: string) {
  return function wrongMethod(req: { method: string; path: string }): never {
    throw new MethodNotAllowedError(req.method, req.path, allow);
  };
}

/** The last handler of an app: a route nobody serves is 404 NOT_FOUND, with the error body. */
export function notFound(req: { method: string; path: string }): never {
  throw new ApiError("NOT_FOUND", `no route ${req.method} ${req.path.slice(0, 200)}`);
}

/** `GET /metrics`: a prom-client registry's text, with its content type. */
export function serveMetrics(registry: { metrics(): Promise<string>; contentType: string }) {
  return async function metricsText(_req: unknown, res: { set(name: string, value: string): { send(body: string): unknown } }): Promise<void> {
    const text = await registry.metrics();
    res.set("Content-Type", registry.contentType).send(text);
  };
}
