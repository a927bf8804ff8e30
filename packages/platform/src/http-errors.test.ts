import { describe, expect, it } from "vitest";
import { ApiError } from "@flowmeter/shared";
import { createErrorHandler, MethodNotAllowedError, toErrorResponse } from "./http-errors.js";
import { createLogger } from "./logger.js";

describe("toErrorResponse", () => {
  it("maps body-parser and raw-body errors", () => {
    const cases: Array<[object, number, string]> = [
      [{ type: "entity.too.large", status: 413, limit: 1024 }, 413, "PAYLOAD_TOO_LARGE"],
      [{ type: "entity.parse.failed", status: 400 }, 400, "INVALID_PARAMS"],
      [{ type: "encoding.unsupported", status: 415 }, 415, "INVALID_PARAMS"],
      [{ type: "charset.unsupported", status: 415 }, 415, "INVALID_PARAMS"],
      [{ type: "request.aborted", status: 400 }, 400, "INVALID_PARAMS"],
      [{ type: "request.size.invalid", status: 400 }, 400, "INVALID_PARAMS"],
      [{ code: "Z_DATA_ERROR", status: 400 }, 400, "INVALID_PARAMS"],
      [{ status: 400 }, 400, "INVALID_PARAMS"],
      [{ type: "stream.not.readable", status: 500 }, 500, "INTERNAL_ERROR"],
      [new Error("boom"), 500, "INTERNAL_ERROR"],
    ];
    for (const [error, status, code] of cases) {
      const mapped = toErrorResponse(error);
      expect([mapped.status, mapped.body.code]).toEqual([status, code]);
    }
    expect(toErrorResponse({ type: "entity.too.large", limit: 1024 }).body.message).toContain("1024 bytes");
    expect(toErrorResponse({ type: "entity.parse.failed", body: '{"secret' }).body.message).toBe("request body is not valid JSON");
  });

  it("passes ApiError through with Retry-After, and maps a wrong method to 405 with Allow", () => {
    const error = new ApiError("TOO_MANY_REQUESTS", "slow down", { retryAfterSeconds: 3 });
    expect(toErrorResponse(error)).toEqual({
      status: 429,
      body: { code: "TOO_MANY_REQUESTS", message: "slow down", retryable: true },
      headers: { "Retry-After": "3" },
    });
    expect(toErrorResponse(new ApiError("UNAUTHORIZED", "no")).headers).toEqual({ "WWW-Authenticate": "Bearer" });
    const wrongMethod = toErrorResponse(new MethodNotAllowedError("GET", "/ingest", "POST"));
    expect(wrongMethod).toEqual({
      status: 405,
      body: { code: "NOT_FOUND", message: "GET is not allowed on /ingest; use POST", retryable: false },
      headers: { Allow: "POST" },
    });
  });

  it("never answers with an internal error's message", () => {
    expect(toErrorResponse(new Error("password=hunter2 at /srv/app.js:12")).body).toEqual({
      code: "INTERNAL_ERROR",
      message: "internal error",
      retryable: true,
    });
  });
});

describe("createErrorHandler", () => {
  it("answers with status, headers and body, logs 5xx with the cause, and cuts the connection once headers went out", () => {
    const logged: string[] = [];
    const handler = createErrorHandler(createLogger("test", "debug", (line) => logged.push(line)));
    const sent: { status?: number; body?: unknown; headers?: Record<string, string> } = {};
    let destroyed = false;
    const req = { path: "/x", socket: { destroy: () => (destroyed = true) } };
    const res = (headersSent: boolean) => ({
      headersSent,
      set: (headers: Record<string, string>) => (sent.headers = headers),
      status: (code: number) => ({ json: (body: unknown) => Object.assign(sent, { status: code, body }) }),
    });
    handler(new ApiError("UNAVAILABLE", "redis is away", { retryAfterSeconds: 2, cause: new Error("ECONNREFUSED") }), req, res(false), () => {});
    expect(sent).toEqual({ status: 503, body: { code: "UNAVAILABLE", message: "redis is away", retryable: true }, headers: { "Retry-After": "2" } });
    expect(logged.join("\n")).toContain("ECONNREFUSED");
    handler(new Error("late"), req, res(true), () => {});
    expect(destroyed).toBe(true);
  });
});
