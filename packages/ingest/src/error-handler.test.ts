import { ApiError } from "@flowmeter/shared";
import { describe, expect, it } from "vitest";
import { MethodNotAllowedError, toHttpError } from "./error-handler.js";

describe("toHttpError", () => {
  it("maps body-parser and raw-body errors", () => {
    const cases: Array<[object, number, string]> = [
      [{ type: "entity.too.large", status: 413, limit: 1024 }, 413, "PAYLOAD_TOO_LARGE"],
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
      const mapped = toHttpError(error);
      expect([mapped.status, mapped.error.code]).toEqual([status, code]);
    }
    expect(toHttpError({ type: "entity.too.large", limit: 1024 }).error.message).toContain("1024 bytes");
  });

  it("passes ApiError through and maps a wrong method to 405 with Allow", () => {
    const error = new ApiError("TOO_MANY_REQUESTS", "slow down", { retryAfterSeconds: 3 });
    expect(toHttpError(error)).toEqual({ status: 429, error });
    const wrongMethod = toHttpError(new MethodNotAllowedError("GET", "/ingest", "POST"));
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers).toEqual({ Allow: "POST" });
    expect(wrongMethod.error.toBody()).toEqual({ code: "NOT_FOUND", message: "GET is not allowed on /ingest; use POST", retryable: false });
  });
});
