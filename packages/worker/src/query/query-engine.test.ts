/**
 * The wall clock and the readers, with a stand-in reader whose statement never returns on its own: what ClickHouse
 * cannot interrupt (constant folding) is answered at the limit, and its reader stays taken until the engine lets go.
 */
import { ApiError } from "@flowmeter/shared";
import { describe, expect, it } from "vitest";
import { runReadOnlyQuery, type QueryEngine, type QueryLimits, type QueryReader } from "./query-engine.js";

const LIMITS: QueryLimits = { timeoutSeconds: 1, maxMemoryBytes: 1 << 30, maxResultRows: 10, maxResultBytes: 1024, concurrency: 1, maxThreads: 1 };
const AST =
  "SelectWithUnionQuery (children 1)\n ExpressionList (children 1)\n  SelectQuery (children 1)\n   ExpressionList (children 1)\n    Literal UInt64_1\n";

/** One reader; `run` settles only when the test says so, like a chDB call nothing can interrupt. */
function stuckEngine(): { engine: QueryEngine; finish: () => void } {
  let finish = (): void => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const reader: QueryReader = {
    canonical: async (sql) => sql,
    explainAst: async () => AST,
    run: async () => {
      await finished;
      return Buffer.from("1\n");
    },
  };
  let taken = false;
  const engine: QueryEngine = {
    limits: LIMITS,
    foreignDatabases: async () => new Set(["system"]),
    async withReader(signal, use) {
      if (signal.aborted) throw signal.reason as Error;
      if (taken) throw new ApiError("TOO_MANY_REQUESTS", "busy");
      taken = true;
      const work = use(reader);
      void work.finally(() => {
        taken = false;
      });
      return new Promise((resolve, reject) => {
        signal.addEventListener("abort", () => reject(signal.reason as Error), { once: true });
        work.then(resolve, reject);
      });
    },
    close: async () => undefined,
  };
  return { engine, finish };
}

describe("runReadOnlyQuery", () => {
  it("answers a statement still running past the limit as timed out, 1 s after the limit, in the SPEC error shape", async () => {
    const { engine, finish } = stuckEngine();
    const started = performance.now();
    const error = await runReadOnlyQuery(engine, "SELECT 1", "TSV", new AbortController().signal).catch((caught: unknown) => caught);
    const tookMs = performance.now() - started;
    expect(error).toBeInstanceOf(ApiError);
    expect((error as ApiError).toBody()).toEqual({
      code: "INVALID_PARAMS",
      message: "Timeout exceeded: the statement ran past the 1 s limit and was cut off; the limit is set by WORKER_QUERY_TIMEOUT_SECONDS",
      retryable: false,
    });
    expect(tookMs).toBeGreaterThan(1900);
    expect(tookMs).toBeLessThan(4000);
    // The reader is still held by the statement the engine has not let go of.
    await expect(runReadOnlyQuery(engine, "SELECT 1", "TSV", new AbortController().signal)).rejects.toMatchObject({ code: "TOO_MANY_REQUESTS" });
    finish();
    await new Promise((resolve) => setImmediate(resolve));
    expect((await runReadOnlyQuery(engine, "SELECT 1", "TSV", new AbortController().signal)).toString()).toBe("1\n");
  });

  it("drops the answer when the client goes away", async () => {
    const { engine, finish } = stuckEngine();
    const client = new AbortController();
    const answer = runReadOnlyQuery(engine, "SELECT 1", "TSV", client.signal);
    client.abort();
    await expect(answer).rejects.toMatchObject({ code: "INVALID_PARAMS" });
    finish();
  });
});
