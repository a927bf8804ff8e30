/**
 * The runner's HTTP server: health and metrics now; the run API (/v1/runs…, SPEC §5) joins here later.
 * Errors use the shared `{code, message, retryable}` shape.
 */
import { ApiError, errorMessage, type Logger } from "@flowmeter/shared";
import express, { type Express, type NextFunction, type Request, type Response } from "express";
import type { RunnerMetrics } from "../metrics.js";

export interface RunnerHealth {
  /** ok: events reach the queue; degraded: the queue is unreachable and events are being spooled locally. */
  status: "ok" | "degraded";
  active_runs: number;
  spooled_items: number;
  /** The producer connection's state (ready, connecting, reconnecting, …). */
  redis: string;
}

export interface RunnerAppOptions {
  metrics: RunnerMetrics;
  health: () => RunnerHealth;
  logger: Logger;
}

export function createRunnerApp({ metrics, health, logger }: RunnerAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");

  app.get("/v1/health", function serveHealth(_req: Request, res: Response) {
    res.json(health());
  });

  app.get("/metrics", async function serveMetrics(_req: Request, res: Response) {
    const text = await metrics.registry.metrics();
    res.set("Content-Type", metrics.registry.contentType).send(text);
  });

  app.use(function notFound(req: Request) {
    throw new ApiError("NOT_FOUND", `no route ${req.method} ${req.path.slice(0, 200)}`);
  });

  app.use(function handleError(error: unknown, _req: Request, res: Response, next: NextFunction) {
    if (res.headersSent) {
      next(error);
      return;
    }
    const apiError = error instanceof ApiError ? error : new ApiError("INTERNAL_ERROR", "internal error", { cause: error });
    if (apiError.code === "INTERNAL_ERROR") logger.error("request failed", { error: errorMessage(error) });
    res.status(apiError.status).json(apiError.toBody());
  });
  return app;
}
