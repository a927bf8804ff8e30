/**
 * The bench's large table (issue #22): fills flowmeter.cli_invocations the way months of traffic would, by the engine's
 * own INSERT … SELECT FROM numbers(), so that the phases run again on it show whether the worker's write cost grows with
 * the table. The materialized views fire on these inserts, so the rollups fill too.
 *
 * Every prefilled row's command, driver (children) and workflow (children) start with PREFILL_PREFIX, so the bench's
 * exactness checks can leave them out and look at the bench's own entries only.
 */
import type { createClickHouse } from "@flowmeter/worker";

type ClickHouse = Awaited<ReturnType<typeof createClickHouse>>;

export const PREFILL_PREFIX = "prefill-";

/** Rows written per statement: one statement's blocks stay within the engine's default memory limits. */
export const PREFILL_ROWS_PER_STATEMENT = 10_000_000;

/** How far back the prefilled entries were received: started_at and received_at spread evenly over these days. */
export const PREFILL_SPREAD_DAYS = 90;

const DAY_MS = 86_400_000;
const MERGES_QUIET_SECONDS = 15;

/** A skewed pick of 0..count-1 (a few values carry most rows, as real commands and workflows do), from hash `seed`. */
function skewed(seed: number, count: number): string {
  return `toUInt32(pow((cityHash64(number, ${seed}) % 1000000) / 1000000, 3) * ${count})`;
}

/**
 * Rows [first, first + count) of the prefill, received up to PREFILL_SPREAD_DAYS before `nowMs`: random UUID ids, a few
 * thousand users and repositories, 300 commands, 70 % children (200 drivers, 300 workflows, 12 steps), exponential
 * durations (children ~2 s, parents ~20 s), 85 % success, sent 0–5 s after completion.
 */
export function prefillStatement(first: number, count: number, total: number, nowMs: number): string {
  const spreadMs = PREFILL_SPREAD_DAYS * DAY_MS;
  return `INSERT INTO flowmeter.cli_invocations (insert_id, entry_id, distinct_id, received_at, started_at, completed_at, duration_ms,
  command, subcommand, args, option_keys, global_options, status, exit_code, error_type, error_message, swamp_version, deno_version,
  platform, repo_id, is_child, parent_invocation_id, workflow_name, run_id, job_name, step_name, model_type, driver, trigger_source,
  initiated_by, invocation_context, extra)
WITH
  toInt64(${Math.round(nowMs) - spreadMs}) + toInt64(number / ${total} * ${spreadMs}) - toInt64(cityHash64(number, 1) % 60000) AS received_ms,
  toInt64(cityHash64(number, 2) % 5000) AS delay_ms,
  cityHash64(number, 3) % 10 < 7 AS child,
  (cityHash64(number, 4) % 1000000) / 1000000 AS uniform,
  round(-log(1 - uniform) * if(child, 2000, 20000), 1) AS duration,
  cityHash64(number, 5) % 100 AS status_pick,
  multiIf(status_pick < 85, 'success', status_pick < 95, 'error', 'user_error') AS result_status,
  toString(generateUUIDv4(number)) AS id
SELECT
  id,
  id,
  UUIDNumToString(MD5(concat('user', toString(cityHash64(number, 6) % 5000)))),
  fromUnixTimestamp64Milli(received_ms, 'UTC'),
  fromUnixTimestamp64Milli(received_ms - delay_ms - toInt64(duration), 'UTC'),
  fromUnixTimestamp64Milli(received_ms - delay_ms, 'UTC'),
  duration,
  concat('${PREFILL_PREFIX}cmd-', toString(${skewed(7, 300)})),
  concat('sub-', toString(cityHash64(number, 8) % 8)),
  if(child, ['run', '<REDACTED>', 'execute'], ['<REDACTED>']),
  if(cityHash64(number, 9) % 3 = 0, ['--input'], emptyArrayString()),
  if(cityHash64(number, 9) % 4 = 1, ['--json'], emptyArrayString()),
  result_status,
  multiIf(result_status = 'success', 0, result_status = 'error', 1, 2),
  if(result_status = 'success', '', 'Error'),
  if(result_status = 'success', '', 'command exited with code 1'),
  concat('202605', leftPad(toString(1 + cityHash64(number, 10) % 28), 2, '0'), '.120000.0'),
  ['2.3.1', '2.3.0', '2.2.12', '2.4.0'][1 + cityHash64(number, 11) % 4],
  ['linux', 'darwin', 'windows'][1 + cityHash64(number, 12) % 3],
  UUIDNumToString(MD5(concat('repo', toString(cityHash64(number, 13) % 2000)))),
  child,
  if(child, UUIDNumToString(MD5(concat('parent', toString(intDiv(number, 5))))), ''),
  if(child, concat('${PREFILL_PREFIX}wf-', toString(${skewed(14, 300)})), ''),
  if(child, UUIDNumToString(MD5(concat('run', toString(intDiv(number, 5))))), ''),
  if(child, ['build', 'test', 'deploy', 'lint'][1 + cityHash64(number, 15) % 4], ''),
  if(child, concat('step-', toString(cityHash64(number, 16) % 12)), ''),
  if(child, ['command/shell', 'http/request', 'docker/run'][1 + cityHash64(number, 17) % 3], ''),
  if(child, concat('${PREFILL_PREFIX}driver-', toString(${skewed(18, 200)})), ''),
  '',
  '',
  concat('{"agentSessionDetected":', if(cityHash64(number, 19) % 2 = 0, 'true', 'false'),
         ',"isInteractive":', if(child, 'false', 'true'), ',"externalDatastoreConfigured":false}'),
  '{}'
FROM numbers(${first}, ${count})`;
}

/**
 * Migration 0024's statement (the ids of the entries received within the horizon, as the worker keys them), limited to
 * the prefilled rows: the bench's own entries are in cli_invocation_ids already.
 */
export function prefillIdsStatement(horizonDays: number): string {
  return `INSERT INTO flowmeter.cli_invocation_ids (id_hash, received_at)
SELECT lower(hex(MD5(insert_id))), toDateTime(received_at)
FROM flowmeter.cli_invocations
WHERE received_at >= now() - INTERVAL ${horizonDays} DAY AND startsWith(command, '${PREFILL_PREFIX}')`;
}

export interface PrefillResult {
  rows: number;
  seconds: number;
  /** cli_invocation_ids rows the fill wrote (the prefilled entries received within the horizon). */
  ids: number;
  idsSeconds: number;
  /** From the last insert until no merge of a flowmeter table ran (capped by `mergeWaitSeconds`). */
  mergeSeconds: number;
  mergesSettled: boolean;
  /** Active parts of cli_invocations once the merges settled (or the wait ended). */
  activeParts: number;
  bytesOnDisk: number;
}

async function scalar(clickhouse: ClickHouse, query: string): Promise<number> {
  const [row] = await (await clickhouse.query({ query: `SELECT (${query}) AS value`, format: "JSONEachRow" })).json<{ value: string | number }>();
  return Number(row?.value);
}

/**
 * Writes `rows` prefilled entries into the open database, then their ids within `horizonDays`, then waits (at most
 * `mergeWaitSeconds`) for the engine's merges of the new parts. `progress` gets one line per statement.
 */
export async function prefill(
  clickhouse: ClickHouse,
  options: { rows: number; horizonDays: number; mergeWaitSeconds: number; nowMs: number; progress: (line: string) => void },
): Promise<PrefillResult> {
  const { rows, horizonDays, progress } = options;
  const startedAt = performance.now();
  for (let first = 0; first < rows; first += PREFILL_ROWS_PER_STATEMENT) {
    const count = Math.min(PREFILL_ROWS_PER_STATEMENT, rows - first);
    const statementStarted = performance.now();
    await clickhouse.command({ query: prefillStatement(first, count, rows, options.nowMs) });
    const now = performance.now();
    progress(
      `prefill: ${(first + count).toLocaleString("en-US")} of ${rows.toLocaleString("en-US")} rows, ` +
        `${Math.round(count / ((now - statementStarted) / 1000)).toLocaleString("en-US")} rows/s this statement, ` +
        `${Math.round((first + count) / ((now - startedAt) / 1000)).toLocaleString("en-US")} rows/s overall, ${((now - startedAt) / 1000).toFixed(0)} s`,
    );
  }
  const seconds = (performance.now() - startedAt) / 1000;

  const idsBefore = await scalar(clickhouse, "SELECT count() FROM flowmeter.cli_invocation_ids");
  const idsStarted = performance.now();
  await clickhouse.command({ query: prefillIdsStatement(horizonDays) });
  const idsSeconds = (performance.now() - idsStarted) / 1000;
  const ids = (await scalar(clickhouse, "SELECT count() FROM flowmeter.cli_invocation_ids")) - idsBefore;
  progress(`prefill: ${ids.toLocaleString("en-US")} ids received within ${horizonDays} days into cli_invocation_ids in ${idsSeconds.toFixed(1)} s`);

  // Settled: no merge of a flowmeter table for MERGES_QUIET_SECONDS in a row (the engine picks its next merge every few seconds).
  const mergeStarted = performance.now();
  let quietSince = performance.now();
  let mergesSettled = false;
  while (performance.now() - mergeStarted < options.mergeWaitSeconds * 1000) {
    if ((await scalar(clickhouse, "SELECT count() FROM system.merges WHERE database = 'flowmeter'")) > 0) quietSince = performance.now();
    else if (performance.now() - quietSince >= MERGES_QUIET_SECONDS * 1000) {
      mergesSettled = true;
      break;
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
  const mergeSeconds = (performance.now() - mergeStarted) / 1000;
  const activeParts = await scalar(clickhouse, "SELECT count() FROM system.parts WHERE active AND database = 'flowmeter' AND table = 'cli_invocations'");
  const bytesOnDisk = await scalar(clickhouse, "SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = 'flowmeter'");
  progress(
    `prefill: merges ${mergesSettled ? "settled" : "still running"} after ${mergeSeconds.toFixed(0)} s; cli_invocations has ${activeParts} active parts, ` +
      `flowmeter ${(bytesOnDisk / 1048576).toFixed(0)} MiB on disk`,
  );
  return { rows, seconds, ids, idsSeconds, mergeSeconds, mergesSettled, activeParts, bytesOnDisk };
}

export interface Takeover {
  partition: number;
  storedIdsInHorizon: number;
  filterBytes: number;
  ms: number;
}

/** The worker's "partition taken over" log line (partition-writer.ts), else undefined. */
export function parseTakeover(line: string): Takeover | undefined {
  if (!/ partition taken over /.test(`${line} `)) return undefined;
  const field = (name: string) => Number(new RegExp(` ${name}=(\\d+)`).exec(line)?.[1] ?? Number.NaN);
  const takeover = { partition: field("partition"), storedIdsInHorizon: field("stored_ids_in_horizon"), filterBytes: field("filter_bytes"), ms: field("ms") };
  return Object.values(takeover).every(Number.isFinite) ? takeover : undefined;
}
