/**
 * The runner's HTTP server: the run API (`/v1/runs…`, docs/spec.md §5, in run-routes.ts), `GET /v1/health`, `GET /metrics`
 * and `GET /v1/openapi.json`. Every error, unknown routes and wrong methods included, is the shared
 * `{code, message, retryable}` body (createErrorHandler from @flowmeter/platform), never HTML.
 */
import { browserRequestRefusal, createErrorHandler, methodNotAllowed, notFound, serveMetrics, type Logger } from "@flowmeter/platform";
import express, { type Express, type Request, type Response } from "express";
import type { RunnerMetrics } from "../metrics.js";
import { OPENAPI_DOCUMENT, type RunnerHealth } from "./openapi.js";
import { createRunRoutes, type RunApiOptions } from "./run-routes.js";

export type { RunnerHealth };

export interface RunnerAppOptions {
  metrics: RunnerMetrics;
  health: () => RunnerHealth;
  logger: Logger;
  /** The address the server listens on (RUNNER_HOST): on loopback, requests must name a loopback Host. */
  listenHost: string;
  /** The run API's dependencies. */
  runs: RunApiOptions;
}

export function createRunnerApp({ metrics, health, logger, listenHost, runs }: RunnerAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.disable("etag");
  app.set("strict routing", true);
  app.set("case sensitive routing", true);

  app.use(function refuseBrowsers(req: Request, _res: Response, next: (error?: unknown) => void) {
    next(browserRequestRefusal(req.headers, listenHost));
  });

  app
    .route("/v1/health")
    .get(function serveHealth(_req: Request, res: Response) {
      res.json(health());
    })
    .all(methodNotAllowed("GET, HEAD"));

  app
    .route("/v1/openapi.json")
    .get(function serveOpenApi(_req: Request, res: Response) {
      res.json(OPENAPI_DOCUMENT);
    })
    .all(methodNotAllowed("GET, HEAD"));

  app.route("/metrics").get(serveMetrics(metrics.registry)).all(methodNotAllowed("GET, HEAD"));

  app.use(createRunRoutes(runs));

  app.use(notFound);
  app.use(createErrorHandler(logger));
  return app;
}
