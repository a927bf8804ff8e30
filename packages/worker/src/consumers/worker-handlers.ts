/**
 * The worker's handler of every job kind it consumes (JOB_CATALOG entries with consumer "worker"), from which it
 * builds its consumers: a kind added to the catalog without a handler here, or a handler typed for another payload,
 * does not compile.
 */
import type { JOB_CATALOG, WorkerJobKind } from "@flowmeter/shared";
import { clientTelemetryHandler, type ConsumerDeps } from "./client-telemetry.consumer.js";
import { otelHandler } from "./otel.consumer.js";
import type { PartitionWriter } from "./partition-writer.js";
import { createQueueConsumer, type JobHandler, type QueueConsumer } from "./queue-consumer.js";
import { runEventsHandler } from "./run-events.consumer.js";

/** A partitioned kind's handler writes through its partition's writer (partition-consumers.ts); the others need none. */
type HandlerFactory<Kind extends WorkerJobKind> = (typeof JOB_CATALOG)[Kind]["partitioned"] extends true
  ? (deps: ConsumerDeps, writer: PartitionWriter) => JobHandler<Kind>
  : (deps: ConsumerDeps) => JobHandler<Kind>;

export const WORKER_HANDLERS: { [Kind in WorkerJobKind]: HandlerFactory<Kind> } = {
  clientTelemetry: clientTelemetryHandler,
  runEvents: runEventsHandler,
  otel: otelHandler,
};

/** The consumer of the run-events queue. */
export function createRunEventsConsumer(deps: ConsumerDeps): QueueConsumer {
  return createQueueConsumer("runEvents", WORKER_HANDLERS.runEvents(deps), deps);
}

/** The consumer of ingest's otel queue (OTLP logs and spans). */
export function createOtelConsumer(deps: ConsumerDeps): QueueConsumer {
  return createQueueConsumer("otel", WORKER_HANDLERS.otel(deps), deps);
}
