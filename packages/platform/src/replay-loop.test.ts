import { describe, expect, it } from "vitest";
import { createLogger } from "./logger.js";
import { ReplayLoop, type ReplayOutcome } from "./replay-loop.js";

const quiet = createLogger("test", "error", () => {});

/** Resolves once `condition` holds, checking every few ms (fails the test after 2 s). */
async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error("condition not reached");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe("ReplayLoop", () => {
  it("retries a failing or throwing pass on its own, with no further wake-up", async () => {
    const outcomes: Array<ReplayOutcome | Error> = ["retry", new Error("disk gone"), "retry", "done"];
    let passes = 0;
    const loop = new ReplayLoop({
      pass: async () => {
        const outcome = outcomes[passes++];
        if (outcome instanceof Error) throw outcome;
        return outcome ?? "done";
      },
      retryMinMs: 5,
      retryMaxMs: 20,
      logger: quiet,
    });
    loop.wake();
    await until(() => passes === 4);
    await loop.stop();
    expect(passes).toBe(4);
  });

  it("does not lose a wake-up that comes while a pass runs", async () => {
    let passes = 0;
    let release: () => void = () => {};
    const loop = new ReplayLoop({
      pass: async () => {
        passes += 1;
        if (passes === 1) await new Promise<void>((resolve) => (release = resolve));
        return "done";
      },
      retryMinMs: 60_000,
      retryMaxMs: 60_000,
      logger: quiet,
    });
    loop.wake();
    await until(() => passes === 1);
    loop.wake(); // new work arrived while the first pass was past its check
    release();
    await until(() => passes === 2);
    await loop.stop();
  });

  it("runs nothing after stop", async () => {
    let passes = 0;
    const loop = new ReplayLoop({ pass: async () => (passes++, "retry"), retryMinMs: 5, retryMaxMs: 5, logger: quiet });
    loop.wake();
    await until(() => passes >= 1);
    await loop.stop();
    const stoppedAt = passes;
    loop.wake();
    await new Promise((resolve) => setTimeout(resolve, 30));
    expect(passes).toBe(stoppedAt);
  });

  it("retryLater puts a pass that was due at once off by the backoff, and a wake-up meanwhile keeps it there", async () => {
    const startedAt: number[] = [];
    const loop = new ReplayLoop({ pass: async () => (startedAt.push(Date.now()), "done"), retryMinMs: 80, retryMaxMs: 80, logger: quiet });
    const askedAt = Date.now();
    loop.wake(); // due at once…
    loop.retryLater(); // …but what it would replay just failed
    loop.wake();
    await until(() => startedAt.length === 1);
    await loop.stop();
    expect((startedAt[0] ?? 0) - askedAt).toBeGreaterThanOrEqual(75);
  });
});
