import { describe, expect, expectTypeOf, it } from "vitest";
import {
  JOB_CATALOG,
  JOB_KINDS,
  WARNING_EXCERPT_CHARS,
  kindOfQueue,
  payloadProblem,
  queueOf,
  queuesConsumedBy,
  warningExcerpt,
  type JobKind,
  type JobPayload,
  type PartitionedJobKind,
  type WorkerJobKind,
} from "./queues.js";
import type { RunEventsJob, RunJob } from "./run-schemas.js";

function nested(depth: number, makeObject: boolean): unknown {
  let value: unknown = 1;
  for (let level = 0; level < depth; level += 1) value = makeObject ? { a: value } : [value];
  return value;
}

describe("warningExcerpt", () => {
  it("writes what JSON.stringify writes when it is short", () => {
    const values: unknown[] = [
      "text",
      42,
      -0.5,
      Number.NaN,
      true,
      null,
      [],
      {},
      [1, "a", null, undefined, () => 1, Symbol("s"), { b: [true] }],
      { a: 1, skipped: undefined, fn: () => 1, when: new Date(0), map: new Map([["k", 1]]), 'quote"key': "é 😀 \u0001" },
      Object.assign(Object.create(null) as object, { a: [1] }),
    ];
    for (const value of values) expect(warningExcerpt(value)).toBe(JSON.stringify(value));
    expect(warningExcerpt(undefined)).toBe("undefined");
  });

  it("gives the start of an entry nested 10,000 or 100,000 deep, not [object Object] nor a stack overflow", () => {
    const objects = warningExcerpt(nested(10_000, true));
    expect(objects.startsWith('{"a":{"a":{"a":')).toBe(true);
    expect(objects).toHaveLength(WARNING_EXCERPT_CHARS + 1);
    expect(objects.endsWith("…")).toBe(true);
    const arrays = warningExcerpt(nested(100_000, false));
    expect(arrays).toBe(`${"[".repeat(WARNING_EXCERPT_CHARS)}…`);
  });

  it("cuts long strings inside and the whole, never splitting a surrogate pair", () => {
    expect(warningExcerpt({ message: "x".repeat(2_000_000) })).toBe(`{"message":"${"x".repeat(WARNING_EXCERPT_CHARS - 12)}…`);
    const astral = warningExcerpt(`a${"😀".repeat(600)}`);
    expect(astral).toBe(`"a${"😀".repeat(WARNING_EXCERPT_CHARS / 2 - 1)}…`);
    expect(/\p{Cs}/u.test(astral)).toBe(false);
    const wide = warningExcerpt(["a", "😀".repeat(2000)]);
    expect(/\p{Cs}/u.test(wide)).toBe(false);
    expect(wide.length).toBeLessThanOrEqual(WARNING_EXCERPT_CHARS + 1);
  });

  it("ends on a value with a cycle", () => {
    const cyclic: Record<string, unknown> = { a: 1 };
    cyclic["self"] = cyclic;
    expect(warningExcerpt(cyclic).startsWith('{"a":1,"self":{"a":1,"self":')).toBe(true);
  });
});

describe("the job catalog", () => {
  it("types each kind's payload from its entry, and says who consumes which kind", () => {
    expectTypeOf<JobPayload<"runs">>().toEqualTypeOf<RunJob>();
    expectTypeOf<JobPayload<"runEvents">>().toEqualTypeOf<RunEventsJob>();
    expectTypeOf<"clientTelemetry" | "runEvents">().toExtend<WorkerJobKind>();
    expectTypeOf<"runs">().not.toExtend<WorkerJobKind>();
    expectTypeOf<PartitionedJobKind>().toEqualTypeOf<"clientTelemetry">();
    const run: JobPayload<"runs"> = { run_id: "r1", workflow: { name: "w", stages: [] }, submittedAtMs: 1 };
    // @ts-expect-error a run is not a run-events payload
    const events: JobPayload<"runEvents"> = run;
    expect(events).toBe(run);
  });

  it("checks a payload against its own kind's schema only, and refuses a kind the catalog does not have", () => {
    expect(payloadProblem("runs", { run_id: "r1", workflow: {}, submittedAtMs: 1 })).toBeUndefined();
    expect(payloadProblem("runEvents", { run_id: "r1", workflow: {}, submittedAtMs: 1 })).toBe("runEvents payload must have required property 'events'");
    expect(payloadProblem("clientTelemetry", { rows: "[]", receivedAtMs: 1 })).toBe(
      "clientTelemetry payload must have property ids when property rows is present",
    );
    expect(payloadProblem("run-events" as JobKind, { events: [], samples: [], producedAtMs: 1 })).toBe(
      `run-events is not a job kind of the catalog (${JOB_KINDS.join(", ")})`,
    );
  });

  it("names every queue, partitions included, and knows the kind of each and of no other", () => {
    const workerQueues = queuesConsumedBy("worker", 3);
    expect(workerQueues.slice(0, 3)).toEqual(["client-telemetry", "client-telemetry-1", "client-telemetry-2"]);
    expect(workerQueues.filter((queue) => queue === "run-events")).toHaveLength(1);
    expect(workerQueues).not.toContain("runs");
    expect(queuesConsumedBy("runner", 3)).toEqual(["runs"]);
    expect(queueOf("clientTelemetry", 2)).toBe("client-telemetry-2");
    expect(kindOfQueue("client-telemetry")).toBe("clientTelemetry");
    expect(kindOfQueue("client-telemetry-63")).toBe("clientTelemetry");
    expect(kindOfQueue(JOB_CATALOG.runEvents.queue)).toBe("runEvents");
    for (const unknown of ["client-telemetry-64", "client-telemetry-01", "run-events-1", "runs-2", "telemetry", ""])
      expect(kindOfQueue(unknown)).toBeUndefined();
  });
});
