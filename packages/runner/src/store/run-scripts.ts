/**
 * The Lua scripts that keep a run's record and its events consistent in Redis. Each runs atomically, so:
 * - a run's record changes state in exactly one place per transition (create → queued, claim → running, the
 *   terminal event → succeeded/failed/cancelled), and the terminal transition happens in the same script that
 *   stores the terminal event: the record and the event stream cannot disagree;
 * - once a run's terminal event is stored, every later event of the run is refused ("fenced"), so a run never has
 *   two terminal events, whichever process (its runner, a spool replay, a reconciler, the API) writes them;
 * - leases are compared with Redis's own clock (TIME), so runners on hosts with skewed clocks agree.
 *
 * Keys (see runKey / runIndexKey): per run `record` (hash), `events` (stream), `event-ids` (hash),
 * `terminal` (the terminal event's id); per prefix `run-index:active` and `run-index:terminal` (not `runs:…`: BullMQ's runs queue owns those), sorted sets of
 * `<13-digit ms>:<run_id>` members (all scores 0, ordered lexically = by time, then run id).
 */
import { createHash } from "node:crypto";
import type { Redis } from "ioredis";

const PRELUDE = `
local function ms(n) return string.format('%d', n) end
local function member(at_ms, run_id) return string.format('%013d', tonumber(at_ms)) .. ':' .. run_id end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- Ends a run's record (when it has one): state, reason, time, index membership, expiry.
local function finish_record(record, active, terminal, run_id, state, reason, detail, ended_ms, retention)
  if redis.call('EXISTS', record) == 0 then return end
  local created = redis.call('HGET', record, 'created_at_ms') or '0'
  redis.call('HSET', record, 'state', state, 'terminal_reason', reason, 'ended_at_ms', ended_ms)
  if state == 'failed' then redis.call('HSET', record, 'error', detail) end
  if state == 'cancelled' then redis.call('HSETNX', record, 'cancel_reason', detail) end
  redis.call('HDEL', record, 'lease_expires_at_ms')
  redis.call('ZREM', active, member(created, run_id))
  redis.call('ZADD', terminal, 0, member(ended_ms, run_id))
  redis.call('ZREMRANGEBYLEX', terminal, '-', '(' .. string.format('%013d', math.max(0, tonumber(ended_ms) - retention * 1000)) .. ':')
  redis.call('EXPIRE', record, retention)
  -- The run's request (run-keys.ts) lives as long as its record: its key is the record's with another suffix.
  local request = string.sub(record, 1, #record - #'record') .. 'request'
  if redis.call('EXISTS', request) == 1 then redis.call('EXPIRE', request, retention) end
end

-- k: events, event-ids, record, run-index:active, run-index:terminal, terminal marker.
-- a[from..]: 8-tuples seq, event_id, event_type, terminal state ('' unless terminal), terminal reason, detail, ts_ms, json.
-- Returns the ids of the events refused because the run had already ended (duplicates are not listed).
local function append_events(k, run_id, maxlen, retention, a, from)
  local fenced = {}
  local ended = redis.call('EXISTS', k[6]) == 1
  local has_record = redis.call('EXISTS', k[3]) == 1
  for i = from, #a, 8 do
    local seq, id = a[i], a[i + 1]
    if ended then
      if redis.call('HEXISTS', k[2], id) == 0 then fenced[#fenced + 1] = id end
    else
      local added = redis.pcall('XADD', k[1], 'MAXLEN', '~', maxlen, ms(tonumber(seq) + 1) .. '-0', 'e', a[i + 7])
      if type(added) == 'table' and added.err then
        -- an entry at or below the stream's top: already stored (a replay); anything else is a real error
        if not string.find(added.err, 'equal or smaller', 1, true) then return redis.error_reply(added.err) end
      else
        redis.call('HSET', k[2], id, seq)
        if has_record then redis.call('HSET', k[3], 'last_seq', seq, 'last_event_id', id, 'last_event_type', a[i + 2]) end
        if a[i + 3] ~= '' then
          ended = true
          redis.call('SET', k[6], id, 'EX', retention)
          finish_record(k[3], k[4], k[5], run_id, a[i + 3], a[i + 4], a[i + 5], a[i + 6], retention)
        end
      end
    end
  end
  redis.call('EXPIRE', k[1], retention)
  redis.call('EXPIRE', k[2], retention)
  return fenced
end
`;

/** KEYS: events, event-ids, record, run-index:active, run-index:terminal, terminal. ARGV: run_id, maxlen, retention, tuples… */
const APPEND = `${PRELUDE}
return append_events(KEYS, ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV, 4)`;

/**
 * Ends a run on behalf of a process that is not executing it (reconciler, API cancel of a queued run), only if the
 * run is still in `expected_state`, its lease ran out (when asked), and its last stored seq is still the one the
 * caller built its events after. KEYS: as APPEND. ARGV: run_id, maxlen, retention, expected_state,
 * require_expired_lease ('1'|'0', or 'runner:<runner_id>': the run must still be that runner's, lease or not: a
 * runner known dead), expected_last_seq, tuples…
 */
const END_RUN = `${PRELUDE}
if redis.call('EXISTS', KEYS[6]) == 1 then return {'ended'} end
local state = redis.call('HGET', KEYS[3], 'state')
if state ~= ARGV[4] then return {'changed', state or ''} end
if ARGV[5] == '1' and (tonumber(redis.call('HGET', KEYS[3], 'lease_expires_at_ms')) or 0) >= now_ms() then return {'live'} end
if string.sub(ARGV[5], 1, 7) == 'runner:' and redis.call('HGET', KEYS[3], 'runner_id') ~= string.sub(ARGV[5], 8) then return {'changed', state} end
local top = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local last = -1
if #top > 0 then last = tonumber(string.match(top[1][1], '^(%d+)')) - 1 end
if last ~= tonumber(ARGV[6]) then return {'changed', state} end
append_events(KEYS, ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV, 7)
return {'ended_now'}`;

/**
 * KEYS: record, run-index:active, terminal, request. ARGV: run_id, attempt_id, workflow, policy JSON ('' for none), request
 * hash ('' for none), rerun_of ('' for none), request JSON ('' for none), retention seconds. An existing record whose
 * stored request hash differs from a given one: 'conflict'.
 */
const CREATE = `${PRELUDE}
if redis.call('EXISTS', KEYS[1]) == 1 then
  local stored = redis.call('HGET', KEYS[1], 'request_hash')
  if stored and ARGV[5] ~= '' and stored ~= ARGV[5] then return 'conflict' end
  return 'exists'
end
if redis.call('EXISTS', KEYS[3]) == 1 then return 'ended' end
local now = now_ms()
redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'attempt_id', ARGV[2], 'workflow', ARGV[3], 'state', 'queued', 'created_at_ms', ms(now))
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'policy', ARGV[4]) end
if ARGV[5] ~= '' then redis.call('HSET', KEYS[1], 'request_hash', ARGV[5]) end
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'rerun_of', ARGV[6]) end
if ARGV[7] ~= '' then redis.call('SET', KEYS[4], ARGV[7], 'EX', tonumber(ARGV[8])) end
redis.call('ZADD', KEYS[2], 0, member(now, ARGV[1]))
return 'created'`;

/** Undoes CREATE when the job could not be queued. KEYS: record, run-index:active. ARGV: run_id, attempt_id. */
const DISCARD = `${PRELUDE}
local r = redis.call('HMGET', KEYS[1], 'state', 'attempt_id', 'created_at_ms')
if r[1] ~= 'queued' or r[2] ~= ARGV[2] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], member(r[3], ARGV[1]))
return 1`;

/**
 * A runner taking a run's job. KEYS: record, run-index:active, terminal, workflow-running. ARGV: run_id, runner_id,
 * lease_ms, attempt_id (for a job queued without a record), workflow, policy JSON ('' for none), the workflow's
 * max_concurrent_runs ('' for none), retention seconds.
 * Returns {'claimed', attempt_id} (also when this runner holds it already: the caller must not be executing it) |
 * {'expired', attempt_id} (running, lease ran out: its runner died) | {'owned', runner_id} (running elsewhere,
 * lease live) | {'ended', state} | {'waiting', reason} (queued, and its workflow has max_concurrent_runs running: the
 * reason is stored in the record's waiting_reason until a claim takes it).
 */
const CLAIM = `${PRELUDE}
local now = now_ms()
local lease_until = ms(now + tonumber(ARGV[3]))
if redis.call('EXISTS', KEYS[1]) == 0 then
  if redis.call('EXISTS', KEYS[3]) == 1 then return {'ended', ''} end
  redis.call('HSET', KEYS[1], 'run_id', ARGV[1], 'attempt_id', ARGV[4], 'workflow', ARGV[5], 'state', 'running', 'created_at_ms', ms(now),
    'started_at_ms', ms(now), 'runner_id', ARGV[2], 'heartbeat_at_ms', ms(now), 'lease_expires_at_ms', lease_until)
  if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'policy', ARGV[6]) end
  redis.call('ZADD', KEYS[2], 0, member(now, ARGV[1]))
  return {'claimed', ARGV[4]}
end
local r = redis.call('HMGET', KEYS[1], 'state', 'attempt_id', 'runner_id', 'lease_expires_at_ms')
if r[1] == 'queued' then
  if ARGV[7] ~= '' then
    local limit = tonumber(ARGV[7])
    -- Runs that ended (or vanished) since they were claimed leave the set here; a dead runner's run stays until it is ended.
    local record_prefix = string.sub(KEYS[1], 1, #KEYS[1] - #(ARGV[1] .. ':record'))
    for _, other in ipairs(redis.call('SMEMBERS', KEYS[4])) do
      if redis.call('HGET', record_prefix .. other .. ':record', 'state') ~= 'running' then redis.call('SREM', KEYS[4], other) end
    end
    local running = redis.call('SCARD', KEYS[4])
    if running >= limit then
      local reason = 'workflow "' .. ARGV[5] .. '" has ' .. running .. ' of its max_concurrent_runs ' .. limit .. ' running'
      redis.call('HSET', KEYS[1], 'waiting_reason', reason)
      return {'waiting', reason}
    end
    redis.call('SADD', KEYS[4], ARGV[1])
    redis.call('EXPIRE', KEYS[4], tonumber(ARGV[8]))
    redis.call('HDEL', KEYS[1], 'waiting_reason')
  end
  redis.call('HSET', KEYS[1], 'state', 'running', 'started_at_ms', ms(now), 'runner_id', ARGV[2], 'heartbeat_at_ms', ms(now), 'lease_expires_at_ms', lease_until)
  return {'claimed', r[2]}
end
if r[1] == 'running' then
  -- the same runner again (its earlier claim's reply was lost): still its run
  if r[3] == ARGV[2] then
    redis.call('HSET', KEYS[1], 'heartbeat_at_ms', ms(now), 'lease_expires_at_ms', lease_until)
    return {'claimed', r[2]}
  end
  if (tonumber(r[4]) or 0) < now then return {'expired', r[2]} end
  return {'owned', r[3] or ''}
end
return {'ended', r[1] or ''}`;

/**
 * Renews the leases a runner holds. KEYS: records. ARGV: runner_id, lease_ms.
 * Returns per key 'renewed' | 'ended' (terminal) | 'lost' (gone, or not this runner's any more).
 */
const RENEW = `${PRELUDE}
local now = now_ms()
local out = {}
for i, key in ipairs(KEYS) do
  local r = redis.call('HMGET', key, 'state', 'runner_id')
  if r[1] == 'running' and r[2] == ARGV[1] then
    redis.call('HSET', key, 'heartbeat_at_ms', ms(now), 'lease_expires_at_ms', ms(now + tonumber(ARGV[2])))
    out[i] = 'renewed'
  elseif r[1] == 'succeeded' or r[1] == 'failed' or r[1] == 'cancelled' then
    out[i] = 'ended'
  else
    out[i] = 'lost'
  end
end
return out`;

/** Records a cancel request on an active run. KEYS: record. ARGV: reason. Returns the state ('' when unknown). */
const REQUEST_CANCEL = `
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return '' end
if state == 'queued' or state == 'running' then redis.call('HSETNX', KEYS[1], 'cancel_reason', ARGV[1]) end
return state`;

/** Now by Redis's clock, in ms. */
const NOW = `${PRELUDE}
return ms(now_ms())`;

/** One Lua script, run with EVALSHA (falling back to EVAL once per connection when Redis does not know it yet). */
export class RedisScript {
  private readonly sha: string;

  constructor(
    readonly name: string,
    private readonly source: string,
  ) {
    this.sha = createHash("sha1").update(source).digest("hex");
  }

  async run(redis: Redis, keys: readonly string[], args: ReadonlyArray<string | number>): Promise<unknown> {
    try {
      return await redis.evalsha(this.sha, keys.length, ...keys, ...args);
    } catch (error) {
      if (!(error instanceof Error) || !error.message.startsWith("NOSCRIPT")) throw error;
      return redis.eval(this.source, keys.length, ...keys, ...args);
    }
  }
}

export const RUN_SCRIPTS = {
  append: new RedisScript("append_events", APPEND),
  endRun: new RedisScript("end_run", END_RUN),
  create: new RedisScript("create_run", CREATE),
  discard: new RedisScript("discard_run", DISCARD),
  claim: new RedisScript("claim_run", CLAIM),
  renew: new RedisScript("renew_leases", RENEW),
  requestCancel: new RedisScript("request_cancel", REQUEST_CANCEL),
  now: new RedisScript("now", NOW),
} as const;
