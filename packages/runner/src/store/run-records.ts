/**
 * Run records in Redis: one hash per run (`<prefix>:run:<id>:record`) with its state, attempt_id, owning runner,
 * lease and terminal reason, plus two indexes for listing (`<prefix>:run-index:active`, `<prefix>:run-index:terminal`). Every
 * runner process and API instance of a prefix reads and writes the same records, so they agree on every run, and a
 * run's state outlives the runner that executed it.
 *
 * Transitions (each one Lua script, see run-scripts.ts): create → queued; claim (a runner takes the job) → running,
 * with a lease the runner renews; the terminal event, stored by whichever process writes it → succeeded | failed |
 * cancelled. A terminal record expires `retentionSeconds` after the run ended, with the run's events.
 */
import type { Redis } from "ioredis";
import { type RunEvent, type RunPolicy, type RunState, type TerminalReason } from "@flowmeter/shared";
import { eventScriptArgs } from "./run-event-store.js";
import { eventScriptKeys, runIndexKey, runKey, workflowRunningKey, type RunLimits } from "./run-keys.js";
import { RUN_SCRIPTS } from "./run-scripts.js";

/** The record hash as stored; numbers are strings, absent fields are missing. */
export interface RunRecord {
  run_id: string;
  attempt_id: string;
  workflow: string;
  state: RunState;
  created_at_ms: number;
  started_at_ms?: number;
  ended_at_ms?: number;
  runner_id?: string;
  heartbeat_at_ms?: number;
  lease_expires_at_ms?: number;
  terminal_reason?: TerminalReason;
  error?: string;
  cancel_reason?: string;
  policy?: RunPolicy;
  last_seq?: number;
  last_event_id?: string;
  last_event_type?: string;
  /** The run this one re-runs (POST /v1/runs/{id}/rerun). */
  rerun_of?: string;
  /** Why a queued run was not started when a runner last took it (its workflow's max_concurrent_runs). */
  waiting_reason?: string;
}

/** What a run was submitted with, kept to re-run it (run-keys.ts `request`). */
export interface RunRequest {
  workflow: unknown;
  input?: unknown;
  concurrency?: number;
  policy?: RunPolicy;
}

export type ClaimResult =
  | { status: "claimed"; attemptId: string }
  | { status: "expired"; attemptId: string }
  | { status: "owned"; runnerId: string }
  | { status: "ended"; state: string }
  | { status: "waiting"; reason: string };

export type EndRunResult = "ended_now" | "ended" | "live" | "changed";

export type LeaseStatus = "renewed" | "ended" | "lost";

/**
 * Which runs a list walks: active (queued, running; newest first), terminal (most recently ended first), both, or
 * one state (walking its index).
 */
export type RunListFilter = "active" | "terminal" | "all" | RunState;

/** What a list keeps: runs in `state`, of `workflow`, created at or after `sinceMs`. */
export interface RunListQuery {
  state?: RunListFilter;
  workflow?: string;
  sinceMs?: number;
}

/** Index entries one list page reads at most when it filters (each costs a record read); a page stops there. */
export const LIST_SCAN_BUDGET = 5000;
const LIST_SCAN_BATCH = 200;

/** The indexes a list of `state` walks, in order; a cursor of that list names one of them. */
export function listIndexes(state: RunListFilter): Array<"active" | "terminal"> {
  if (state === "all") return ["active", "terminal"];
  if (state === "active" || state === "queued" || state === "running") return ["active"];
  return ["terminal"];
}

/** Where a list page starts: which index, and the member of the last run returned ("" = from its start). The API's text form: http/run-views.ts. */
export interface ListCursor {
  index: "active" | "terminal";
  after: string;
}

const RUN_ID = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

/** Caller-chosen run ids: 1-128 letters, digits, "_", "." or "-" (no ":" — BullMQ job ids and Redis keys use it). */
export function isValidRunId(value: string): boolean {
  return RUN_ID.test(value);
}

function toNumber(value: string | undefined): number | undefined {
  return value === undefined || value === "" ? undefined : Number(value);
}

function parseRecord(hash: Record<string, string>): RunRecord | undefined {
  if (hash["run_id"] === undefined || hash["state"] === undefined) return undefined;
  const record: RunRecord = {
    run_id: hash["run_id"],
    attempt_id: hash["attempt_id"] ?? "",
    workflow: hash["workflow"] ?? "",
    state: hash["state"] as RunState,
    created_at_ms: Number(hash["created_at_ms"] ?? 0),
  };
  for (const key of ["started_at_ms", "ended_at_ms", "heartbeat_at_ms", "lease_expires_at_ms", "last_seq"] as const) {
    const value = toNumber(hash[key]);
    if (value !== undefined) record[key] = value;
  }
  for (const key of ["runner_id", "error", "cancel_reason", "last_event_id", "last_event_type", "rerun_of", "waiting_reason"] as const) {
    const value = hash[key];
    if (value !== undefined && value !== "") record[key] = value;
  }
  const reason = hash["terminal_reason"];
  // Records stored before the reason took the state's name said "completed".
  if (reason !== undefined && reason !== "") record.terminal_reason = (reason === "completed" ? "succeeded" : reason) as TerminalReason;
  if (hash["policy"] !== undefined && hash["policy"] !== "") record.policy = JSON.parse(hash["policy"]) as RunPolicy;
  return record;
}

export class RunRecords {
  constructor(
    private readonly redis: Redis,
    private readonly limits: RunLimits,
  ) {}

  private recordKey(runId: string): string {
    return runKey(this.limits.prefix, runId, "record");
  }

  async get(runId: string): Promise<RunRecord | undefined> {
    return parseRecord(await this.redis.hgetall(this.recordKey(runId)));
  }

  /**
   * Creates a queued record unless the run exists. `exists`: a record is there (read it with get); `ended`: no record
   * but the run's terminal event is stored (its record was dropped), so it cannot start again. `requestHash`
   * fingerprints what was asked for (submit-run.ts): an existing record made with another one answers "conflict";
   * records without one (older runners) never conflict. `request` is kept (see `request`) as long as the record.
   */
  async create(
    runId: string,
    attemptId: string,
    workflow: string,
    policy?: RunPolicy,
    requestHash = "",
    extra: { rerunOf?: string; request?: RunRequest } = {},
  ): Promise<"created" | "exists" | "conflict" | "ended"> {
    const { prefix, retentionSeconds } = this.limits;
    return (await RUN_SCRIPTS.create.run(
      this.redis,
      [this.recordKey(runId), runIndexKey(prefix, "active"), runKey(prefix, runId, "terminal"), runKey(prefix, runId, "request")],
      [
        runId,
        attemptId,
        workflow,
        policy === undefined ? "" : JSON.stringify(policy),
        requestHash,
        extra.rerunOf ?? "",
        extra.request === undefined ? "" : JSON.stringify(extra.request),
        retentionSeconds,
      ],
    )) as "created" | "exists" | "conflict" | "ended";
  }

  /** What the run was submitted with; undefined for runs created without it (by older runners) or past its retention. */
  async request(runId: string): Promise<RunRequest | undefined> {
    const text = await this.redis.get(runKey(this.limits.prefix, runId, "request"));
    return text === null ? undefined : (JSON.parse(text) as RunRequest);
  }

  /** Removes a record `create` made, while it is still queued with this attempt (its job could not be queued). */
  async discard(runId: string, attemptId: string): Promise<boolean> {
    return (await RUN_SCRIPTS.discard.run(this.redis, [this.recordKey(runId), runIndexKey(this.limits.prefix, "active")], [runId, attemptId])) === 1;
  }

  /** A runner taking a run's job: see the CLAIM script. `maxConcurrentRuns`: the workflow's max_concurrent_runs. */
  async claim(
    runId: string,
    runnerId: string,
    leaseMs: number,
    attemptId: string,
    workflow: string,
    policy?: RunPolicy,
    maxConcurrentRuns?: number,
  ): Promise<ClaimResult> {
    const { prefix, retentionSeconds } = this.limits;
    const [status, value] = (await RUN_SCRIPTS.claim.run(
      this.redis,
      [this.recordKey(runId), runIndexKey(prefix, "active"), runKey(prefix, runId, "terminal"), workflowRunningKey(prefix, workflow)],
      [runId, runnerId, leaseMs, attemptId, workflow, policy === undefined ? "" : JSON.stringify(policy), maxConcurrentRuns ?? "", retentionSeconds],
    )) as [string, string];
    switch (status) {
      case "claimed":
        return { status, attemptId: value };
      case "expired":
        return { status, attemptId: value };
      case "owned":
        return { status, runnerId: value };
      case "waiting":
        return { status, reason: value };
      default:
        return { status: "ended", state: value };
    }
  }

  /** Renews this runner's leases on `runIds`; the answer is per run, in order. */
  async renew(runIds: readonly string[], runnerId: string, leaseMs: number): Promise<LeaseStatus[]> {
    if (runIds.length === 0) return [];
    return (await RUN_SCRIPTS.renew.run(
      this.redis,
      runIds.map((runId) => this.recordKey(runId)),
      [runnerId, leaseMs],
    )) as LeaseStatus[];
  }

  /** Notes a cancel request on an active run's record; returns its state (undefined when there is no record). */
  async requestCancel(runId: string, reason: string): Promise<RunState | undefined> {
    const state = (await RUN_SCRIPTS.requestCancel.run(this.redis, [this.recordKey(runId)], [reason])) as string;
    return state === "" ? undefined : (state as RunState);
  }

  /**
   * Ends a run that no runner is executing by storing `events` (seq numbers following `expectedLastSeq`, the last
   * one terminal), only while it is in `expectedState`, its last stored seq is `expectedLastSeq`, and (when
   * `requireExpiredLease`) its lease ran out, or (with `requireRunner`, for a runner known dead) it is still that
   * runner's. `changed`/`live`: nothing was written; the caller may look again.
   */
  async end(
    runId: string,
    expected: { state: "queued" | "running"; lastSeq: number; requireExpiredLease: boolean; requireRunner?: string },
    events: readonly RunEvent[],
  ): Promise<EndRunResult> {
    const [status] = (await RUN_SCRIPTS.endRun.run(this.redis, eventScriptKeys(this.limits.prefix, runId), [
      runId,
      this.limits.maxEventsPerRun,
      this.limits.retentionSeconds,
      expected.state,
      expected.requireRunner !== undefined ? `runner:${expected.requireRunner}` : expected.requireExpiredLease ? "1" : "0",
      expected.lastSeq,
      ...events.flatMap(eventScriptArgs),
    ])) as [EndRunResult];
    return status;
  }

  /** Now, by Redis's clock (leases are compared with it). */
  async now(): Promise<number> {
    return Number(await RUN_SCRIPTS.now.run(this.redis, [], []));
  }

  /** Several records in one round trip; undefined where a run has none. */
  async getMany(runIds: readonly string[]): Promise<Array<RunRecord | undefined>> {
    if (runIds.length === 0) return [];
    const pipeline = this.redis.pipeline();
    for (const runId of runIds) pipeline.hgetall(this.recordKey(runId));
    return ((await pipeline.exec()) ?? []).map(([error, hash]) => {
      if (error !== null) throw error;
      return parseRecord(hash as Record<string, string>);
    });
  }

  /** How many runs are active (queued or running), from the index (records expired since are still counted). */
  async activeCount(): Promise<number> {
    return this.redis.zcard(runIndexKey(this.limits.prefix, "active"));
  }

  /** Every active run (queued or running), oldest first, `chunk` at a time. */
  async *activeRuns(chunk = 500): AsyncGenerator<RunRecord> {
    const key = runIndexKey(this.limits.prefix, "active");
    let after = "-";
    for (;;) {
      const members = await this.redis.zrangebylex(key, after, "+", "LIMIT", 0, chunk);
      for (const record of await this.getMany(members.map((member) => member.slice(14)))) if (record !== undefined) yield record;
      if (members.length < chunk) return;
      after = `(${members.at(-1) as string}`;
    }
  }

  /**
   * One page of runs, newest first: active ones by creation time, terminal ones by end time; `all` lists the active
   * runs, then the terminal ones. `state` may also name one state, `workflow` one workflow, and `sinceMs` keeps runs
   * created at or after it (the indexes are ordered by time, so the walk stops there). Filtered runs are read and
   * left out, at most LIST_SCAN_BUDGET index entries per page: a page may hold fewer than `limit` runs (even none)
   * while `nextCursor` is set. Records gone since they were indexed (expired) are skipped and unindexed.
   */
  async list(query: RunListQuery, limit: number, cursor: ListCursor | undefined): Promise<{ records: RunRecord[]; nextCursor: ListCursor | undefined }> {
    const state = query.state ?? "all";
    const indexes = listIndexes(state);
    if (cursor !== undefined && !indexes.includes(cursor.index)) {
      // The API refuses such a cursor first (http/run-views.ts decodeListCursor); here it is a caller's bug.
      throw new Error(`cursor belongs to a list of ${cursor.index} runs, not ${state}`);
    }
    const matches = (record: RunRecord) =>
      (state === "all" || state === "active" || state === "terminal" || record.state === state) &&
      (query.workflow === undefined || record.workflow === query.workflow) &&
      (query.sinceMs === undefined || record.created_at_ms >= query.sinceMs);
    const filtered = !["all", "active", "terminal"].includes(state) || query.workflow !== undefined || query.sinceMs !== undefined;
    const lowest = query.sinceMs === undefined ? "-" : `[${String(Math.max(0, query.sinceMs)).padStart(13, "0")}:`;
    const records: RunRecord[] = [];
    let examined = 0;
    let position = cursor === undefined ? 0 : indexes.indexOf(cursor.index);
    let after = cursor?.after === "" ? undefined : cursor?.after;
    for (; position < indexes.length; position += 1) {
      const index = indexes[position] as "active" | "terminal";
      const key = runIndexKey(this.limits.prefix, index);
      for (;;) {
        if (examined >= LIST_SCAN_BUDGET) return { records, nextCursor: { index, after: after ?? "" } };
        const want = limit - records.length;
        const batch = filtered ? Math.min(Math.max(want, LIST_SCAN_BATCH), LIST_SCAN_BUDGET - examined) : want;
        const members = await this.redis.zrevrangebylex(key, after === undefined ? "+" : `(${after}`, lowest, "LIMIT", 0, batch);
        const found = await this.getMany(members.map((member) => member.slice(14)));
        const gone: string[] = [];
        for (const [offset, member] of members.entries()) {
          if (records.length >= limit) break;
          const record = found[offset];
          if (record === undefined) gone.push(member);
          else if (matches(record)) records.push(record);
          after = member;
          examined += 1;
        }
        if (gone.length > 0) await this.redis.zrem(key, ...gone);
        if (records.length >= limit) return { records, nextCursor: await this.more(indexes, position, after, lowest) };
        if (members.length < batch) break;
      }
      after = undefined;
    }
    return { records, nextCursor: undefined };
  }

  /** Where the next page starts when one was filled at `after` of indexes[position]: undefined when no index has more. */
  private async more(
    indexes: ReadonlyArray<"active" | "terminal">,
    position: number,
    after: string | undefined,
    lowest: string,
  ): Promise<ListCursor | undefined> {
    for (let next = position; next < indexes.length; next += 1) {
      const index = indexes[next] as "active" | "terminal";
      const from = next === position && after !== undefined ? `(${after}` : "+";
      const left = await this.redis.zrevrangebylex(runIndexKey(this.limits.prefix, index), from, lowest, "LIMIT", 0, 1);
      if (left.length > 0) return { index, after: next === position ? (after ?? "") : "" };
    }
    return undefined;
  }
}
