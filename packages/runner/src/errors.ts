/** The runner's exceptions. Expected outcomes (a stage failing, a run cancelled) are values, not errors. */

/** A workflow definition the runner refuses to run; `problems` names every stage and field at fault. */
export class WorkflowValidationError extends Error {
  override readonly name = "WorkflowValidationError";
  readonly retryable = false;

  constructor(
    readonly problems: readonly string[],
    readonly context: { source?: string } = {},
  ) {
    const where = context.source === undefined ? "" : ` (${context.source})`;
    super(`invalid workflow${where}:\n${problems.map((problem) => `  - ${problem}`).join("\n")}`);
  }
}

/** A batch could not be handed to Redis; the publisher spools it and retries. */
export class DeliveryError extends Error {
  override readonly name = "DeliveryError";
  readonly retryable = true;

  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { cause: options.cause });
  }
}

/** A resume cursor (event_id) that names no stored event of the run: unknown, or past its retention. */
export class UnknownEventCursorError extends Error {
  override readonly name = "UnknownEventCursorError";
  readonly retryable = false;

  constructor(
    readonly runId: string,
    readonly eventId: string,
  ) {
    super(`run ${runId} has no stored event ${eventId} (unknown, or older than the retention)`);
  }
}

/** A workflow `file` the runner will not read: outside its workflows directory, missing, not a file, or too large. */
export class WorkflowFileError extends Error {
  override readonly name = "WorkflowFileError";
  readonly retryable = false;

  constructor(
    message: string,
    readonly file: string,
  ) {
    super(message);
  }
}

/** A run id submitted again with another workflow, input, concurrency or policy than the run it names (409 RUN_ID_CONFLICT). */
export class RunIdConflictError extends Error {
  override readonly name = "RunIdConflictError";
  readonly retryable = false;

  constructor(readonly runId: string) {
    super(`run ${runId} exists with another request (workflow, input, concurrency or policy); resend the same request, or use a new run_id`);
  }
}

/**
 * A run that cannot be re-run (rerun-run.ts): `unknown` (no such run), `active` (not ended yet), `nothing_failed`
 * (only failed stages asked for, and none failed), `request_gone` (what it was submitted with is no longer kept).
 */
export class RerunRefusedError extends Error {
  override readonly name = "RerunRefusedError";
  readonly retryable = false;

  constructor(
    readonly reason: "unknown" | "active" | "nothing_failed" | "request_gone",
    message: string,
  ) {
    super(message);
  }
}
