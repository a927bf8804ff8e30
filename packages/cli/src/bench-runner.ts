/**
 * The runner part of `npm run bench`: one run of many short stages executed in this process on the real
 * EventPublisher (real Redis queue delivery), consumed by the bench's worker into ClickHouse. Reports the
 * synchronous cost of event emission on a stage's path (time inside RunOutput calls per stage), the async
 * delivery cost per event, and events/s emitted and visible in run_events.
 */
import { Queue } from "bullmq";
import {
  JOB_CATALOG,
  createLogger,
  createRedis,
  uuidV7,
  type RunEvent,
  type RunEventsJob,
  type TelemetrySample,
  type WorkflowDefinition,
} from "@flowmeter/shared";
import { SpoolFile } from "@flowmeter/shared";
import { DriverRegistry, EventPublisher, RunEventStore, RunExecution, createQueueDelivery, type SpoolItem } from "@flowmeter/runner";

export interface RunnerBenchResult {
  stages: number;
  events: number;
  runSeconds: number;
  emitMicrosPerStage: number;
  deliverMicrosPerEvent: number;
  eventsPerSecond: number;
  visiblePerSecond: number;
  /** The run's events re-sent as `floodRuns` runs of their own, as fast as the publisher takes them. */
  flood: { runs: number; events: number; seconds: number; visiblePerSecond: number };
}

export async function benchRunner(options: {
  redisUrl: string;
  prefix: string;
  spoolDir: string;
  stages: number;
  floodRuns: number;
  countStored: (runId: string) => Promise<number>;
  countAllStored: () => Promise<number>;
}): Promise<RunnerBenchResult> {
  const logger = createLogger("bench", "warn");
  const redis = createRedis(options.redisUrl, "producer");
  const queue = new Queue<RunEventsJob>(JOB_CATALOG.runEvents.queue, { connection: redis, prefix: options.prefix });
  const store = new RunEventStore(redis, { prefix: options.prefix });
  const deliver = createQueueDelivery({ queue, store, redis });
  let deliverMs = 0;
  let delivered = 0;
  const publisher = new EventPublisher({
    deliver: async (batch) => {
      const startedAt = performance.now();
      await deliver(batch);
      deliverMs += performance.now() - startedAt;
      delivered += batch.events.length + batch.samples.length;
    },
    spool: new SpoolFile<SpoolItem>(options.spoolDir, logger, { owner: "runner" }),
    logger,
  });
  await publisher.start();

  let emitMs = 0;
  let events = 0;
  const emitted: RunEvent[] = [];
  const timedOutput = {
    event(event: RunEvent) {
      const startedAt = performance.now();
      publisher.event(event);
      emitMs += performance.now() - startedAt;
      events += 1;
      emitted.push(event);
    },
    sample(sample: TelemetrySample) {
      const startedAt = performance.now();
      publisher.sample(sample);
      emitMs += performance.now() - startedAt;
    },
  };
  const workflow: WorkflowDefinition = {
    name: "bench-short-stages",
    concurrency: 8,
    stages: Array.from({ length: options.stages }, (_, index) => ({
      name: `s${index}`,
      driver: "shell",
      run: "true",
      ...(index >= 8 ? { depends_on: [`s${index - 8}`] } : {}),
    })),
  };
  const runId = uuidV7();
  const execution = new RunExecution({ runId, workflow, drivers: new DriverRegistry(), output: timedOutput, logger, concurrency: 8 });
  const startedAt = performance.now();
  await execution.run();
  const runSeconds = (performance.now() - startedAt) / 1000;
  await publisher.flush();
  while ((await options.countStored(runId)) < events) {
    if (performance.now() - startedAt > 120_000) throw new Error("run events did not all become visible in ClickHouse");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const visibleSeconds = (performance.now() - startedAt) / 1000;

  // Stages are processes: on two cores spawning them bounds a real run to a few hundred events/s. The same event
  // stream re-sent as many runs measures what the delivery path (run event store, queue, worker) carries.
  const storedBefore = await options.countAllStored();
  const floodStarted = performance.now();
  for (let run = 0; run < options.floodRuns; run += 1) {
    const [runId, attemptId] = [uuidV7(), uuidV7()];
    for (const event of emitted) publisher.event({ ...event, run_id: runId, attempt_id: attemptId, event_id: uuidV7() });
    // Let the publisher's flushes run between runs, as stages finishing over time would.
    await new Promise((resolve) => setImmediate(resolve));
  }
  await publisher.flush();
  const floodEvents = emitted.length * options.floodRuns;
  while ((await options.countAllStored()) < storedBefore + floodEvents) {
    if (performance.now() - floodStarted > 300_000) throw new Error("flooded run events did not all become visible in ClickHouse");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const floodSeconds = (performance.now() - floodStarted) / 1000;
  await publisher.close();
  await queue.close();
  redis.disconnect();
  return {
    stages: options.stages,
    events,
    runSeconds,
    emitMicrosPerStage: (emitMs * 1000) / options.stages,
    deliverMicrosPerEvent: delivered === 0 ? 0 : (deliverMs * 1000) / delivered,
    eventsPerSecond: events / runSeconds,
    visiblePerSecond: events / visibleSeconds,
    flood: { runs: options.floodRuns, events: floodEvents, seconds: floodSeconds, visiblePerSecond: floodEvents / floodSeconds },
  };
}
