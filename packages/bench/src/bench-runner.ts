/**
 * The runner part of `npm run bench`: a runner started in this process through the runner package's `startRunner`
 * (the wiring `flowmeter start` runs: run consumer and leases, event publisher with its spool, delivery into the
 * run-events queue and the run's stored events and samples) is sent one run of many short stages through its run API
 * (`POST /v1/runs`, as a client submits one); the bench's worker consumes its events into ClickHouse. Reports the synchronous cost of event emission on
 * a stage's path (time inside the publisher's event()/sample() calls, per stage), events/s emitted and visible in
 * run_events, then what the delivery path carries: the run's events re-sent through the same publisher as many runs
 * of their own, with the wall time of each flush (its delivery) per event.
 *
 * The delivery cost is read from flush() in the re-sent runs because the runner keeps its delivery function to
 * itself (startRunner takes none); during the real run the publisher flushes on its own timer, out of sight.
 */
import { createLogger, uuidV7 } from "@flowmeter/platform";
import { isTerminalRunEvent, type RunEvent, type TelemetrySample, type WorkflowDefinition } from "@flowmeter/shared";
import { parseRunnerConfig, startRunner } from "@flowmeter/runner";

export interface RunnerBenchResult {
  stages: number;
  events: number;
  runSeconds: number;
  emitMicrosPerStage: number;
  eventsPerSecond: number;
  visiblePerSecond: number;
  /** The run's events re-sent as `runs` runs of their own, each flushed before the next. */
  flood: { runs: number; events: number; seconds: number; visiblePerSecond: number; deliverMicrosPerEvent: number };
}

async function waitUntil(done: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const startedAt = performance.now();
  while (!(await done())) {
    if (performance.now() - startedAt > timeoutMs) throw new Error(what);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function benchRunner(options: {
  redisUrl: string;
  prefix: string;
  /** The runner's FLOWMETER_DATA_DIR (its spool and stage records go there). */
  dataDir: string;
  stages: number;
  floodRuns: number;
  countStored: (runId: string) => Promise<number>;
  countAllStored: () => Promise<number>;
}): Promise<RunnerBenchResult> {
  const logger = createLogger("bench", "warn");
  const config = parseRunnerConfig(
    {
      REDIS_URL: options.redisUrl,
      QUEUE_PREFIX: options.prefix,
      FLOWMETER_DATA_DIR: options.dataDir,
      RUNNER_PORT: "0",
      RUNNER_MAX_RUNS: "1",
      LOG_LEVEL: "warn",
    },
    options.dataDir,
  );
  const runner = await startRunner(config, logger);
  const { publisher } = runner;
  const [event, sample] = [publisher.event.bind(publisher), publisher.sample.bind(publisher)];
  const restore = () => {
    publisher.event = event;
    publisher.sample = sample;
  };
  try {
    // The run consumer emits through the publisher it was started with (RunningRunner.publisher), calling its
    // methods anew each time: these own properties time every call of the run and note its events.
    const runId = uuidV7();
    let emitMs = 0;
    const emitted: RunEvent[] = [];
    let ended: () => void = () => {};
    const runEnded = new Promise<void>((resolve) => (ended = resolve));
    publisher.event = (runEvent: RunEvent) => {
      const startedAt = performance.now();
      event(runEvent);
      emitMs += performance.now() - startedAt;
      if (runEvent.run_id !== runId) return;
      emitted.push(runEvent);
      if (isTerminalRunEvent(runEvent)) ended();
    };
    publisher.sample = (telemetry: TelemetrySample) => {
      const startedAt = performance.now();
      sample(telemetry);
      emitMs += performance.now() - startedAt;
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
    const startedAt = performance.now();
    const submitted = await fetch(`${runner.url}/v1/runs`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ workflow, run_id: runId }),
    });
    if (submitted.status !== 201) throw new Error(`POST /v1/runs answered ${submitted.status}: ${await submitted.text()}`);
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      runEnded,
      new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error("the bench run did not end within 300 s")), 300_000);
      }),
    ]).finally(() => clearTimeout(timer));
    const runSeconds = (performance.now() - startedAt) / 1000;
    restore();
    const events = emitted.length;
    await publisher.flush();
    await waitUntil(async () => (await options.countStored(runId)) >= events, 120_000, "run events did not all become visible in ClickHouse");
    const visibleSeconds = (performance.now() - startedAt) / 1000;

    // Stages are processes: on two cores spawning them bounds a real run to a few hundred events/s. The same event
    // stream re-sent as many runs measures what the delivery path (run event store, queue, worker) carries.
    const storedBefore = await options.countAllStored();
    const floodStarted = performance.now();
    let deliverMs = 0;
    for (let run = 0; run < options.floodRuns; run += 1) {
      const [floodRunId, attemptId] = [uuidV7(), uuidV7()];
      for (const runEvent of emitted) publisher.event({ ...runEvent, run_id: floodRunId, attempt_id: attemptId, event_id: uuidV7() });
      const flushStarted = performance.now();
      await publisher.flush();
      deliverMs += performance.now() - flushStarted;
    }
    const floodEvents = events * options.floodRuns;
    await waitUntil(
      async () => (await options.countAllStored()) >= storedBefore + floodEvents,
      300_000,
      "re-sent run events did not all become visible in ClickHouse",
    );
    const floodSeconds = (performance.now() - floodStarted) / 1000;
    return {
      stages: options.stages,
      events,
      runSeconds,
      emitMicrosPerStage: (emitMs * 1000) / options.stages,
      eventsPerSecond: events / runSeconds,
      visiblePerSecond: events / visibleSeconds,
      flood: {
        runs: options.floodRuns,
        events: floodEvents,
        seconds: floodSeconds,
        visiblePerSecond: floodEvents / floodSeconds,
        deliverMicrosPerEvent: floodEvents === 0 ? 0 : (deliverMs * 1000) / floodEvents,
      },
    };
  } finally {
    restore();
    await runner.stop();
  }
}
