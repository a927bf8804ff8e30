/**
 * The run API's request bodies: JSON only, declared as such, within MAX_REQUEST_BODY_BYTES and
 * MAX_BODY_NESTING_DEPTH. A body of another declared type is refused 415 before it is read (a web page can send
 * text/plain or form bodies cross-site without a preflight; the real clients send application/json). A request
 * without a body needs no Content-Type (`POST …/cancel` with nothing to say).
 */
import { exceedsJsonDepth } from "@flowmeter/platform";
import { ApiError } from "@flowmeter/shared";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { MAX_BODY_NESTING_DEPTH, MAX_REQUEST_BODY_BYTES } from "./api-limits.js";

/** Undefined when the declared Content-Type is JSON (charset utf-8, if any), else the 415 to answer. */
export function jsonContentTypeRefusal(contentType: string | undefined): ApiError | undefined {
  const [type = "", ...parameters] = (contentType ?? "").split(";").map((part) => part.trim().toLowerCase());
  const charset = parameters
    .find((parameter) => parameter.startsWith("charset="))
    ?.slice("charset=".length)
    .replace(/"/g, "");
  if (type === "application/json" && (charset === undefined || charset === "utf-8" || charset === "utf8")) return undefined;
  const declared = type === "" ? "is missing" : `${JSON.stringify((contentType ?? "").slice(0, 100))} is not accepted`;
  return new ApiError("INVALID_PARAMS", `Content-Type ${declared}; send application/json (UTF-8)`, { status: 415 });
}

function hasBody(req: Request): boolean {
  return req.headers["transfer-encoding"] !== undefined || Number(req.headers["content-length"] ?? 0) > 0;
}

function refuseOtherTypes(req: Request, _res: Response, next: NextFunction): void {
  next(hasBody(req) ? jsonContentTypeRefusal(req.headers["content-type"]) : undefined);
}

function parseJson(req: Request, _res: Response, next: NextFunction): void {
  const raw: unknown = req.body;
  if (!Buffer.isBuffer(raw)) return next(); // no body at all
  if (raw.length === 0) {
    req.body = {};
    return next();
  }
  if (exceedsJsonDepth(raw, MAX_BODY_NESTING_DEPTH)) {
    return next(
      new ApiError("INVALID_PARAMS", `request body nests arrays and objects deeper than ${MAX_BODY_NESTING_DEPTH} levels (the body itself is level 1)`),
    );
  }
  try {
    req.body = JSON.parse(raw.toString("utf8")) as unknown;
  } catch (error) {
    return next(new ApiError("INVALID_PARAMS", `request body is not valid JSON: ${error instanceof Error ? error.message : String(error)}`));
  }
  next();
}

/** The middlewares of a route that takes a JSON body: Content-Type check, bounded read, depth scan, parse. */
export function jsonBody(): RequestHandler[] {
  return [refuseOtherTypes, express.raw({ type: () => true, limit: MAX_REQUEST_BODY_BYTES }), parseJson];
}
