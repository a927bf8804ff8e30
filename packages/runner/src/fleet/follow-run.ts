import { createRedis, errorMessage } from "@flowmeter/platform";
import { type RunEvent } from "@flowmeter/shared";
import type { EventCursor } from "../store/run-event-store.js";
import { RunStore } from "../store/run-store.js";

export interface FollowRunOptions extends EventCursor {
  /** Stops following (the iterator ends) when aborted; checked at least every `blockMs`. */
  signal?: AbortSignal;
  blockMs?: number;
  /** Called when the connection reports an error (it keeps retrying). */
  onError?: (message: string) => void;
}

/**
 * Follows a run's events from any process: yields the stored events in seq order (after the cursor, else from
 * the first), then new ones as the runner publishes them, and ends after the terminal event (`run.finished`,
 * `run.failed` or `run.cancelled`). Works for runs not started yet: it waits for their first event.
 */
export async function* followRun(
  connection: { redisUrl: string; queuePrefix: string },
  runId: string,
  options: FollowRunOptions = {},
): AsyncGenerator<RunEvent> {
  const redis = createRedis(connection.redisUrl, "worker");
  redis.on("error", (error) => options.onError?.(errorMessage(error)));
  try {
    const { events } = new RunStore(redis, { prefix: connection.queuePrefix });
    const cursor: EventCursor = {
      ...(options.afterSeq === undefined ? {} : { afterSeq: options.afterSeq }),
      ...(options.afterEventId === undefined ? {} : { afterEventId: options.afterEventId }),
    };
    yield* events.follow(runId, cursor, {
      ...(options.blockMs === undefined ? {} : { blockMs: options.blockMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } finally {
    redis.disconnect();
  }
}
