/**
 * The Lua scripts of the Redis result store. Each change of a job or batch is one script, so that
 * readers never see half of it, and every change is announced on the job's channel.
 *
 * A retried job (a Nest retry policy: each attempt has a unique id of its own and names the first
 * in its envelope) is recorded under its first attempt's unique id, whichever attempt runs.
 *
 * Keys, under the store's prefix: `job:<unique>` a hash (state, handle, function, progress, times,
 * outcome; a batch adds its counts), `parts:<unique>` the WORK_DATA parts, `handle:<handle>` the
 * unique id a handle names, `outcomes:<batch unique>` a batch's item outcomes by index (a kind byte,
 * `c` completed, `e` exception, `f` failed, then the payload). The channel `events:<unique>` carries
 * `status`, `data`, `end`, or `w` and a warning.
 */

/** KEYS: job, handle. ARGV: handle, function, now, pendingTtl, unique. A job a worker already took keeps its state. */
export const QUEUED = `
if redis.call('HSETNX', KEYS[1], 'state', 'queued') == 1 then
  redis.call('HSET', KEYS[1], 'handle', ARGV[1], 'function', ARGV[2], 'createdAt', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
end
return 1`;

/** KEYS: job, handle, parts. ARGV: handle, function, now, pendingTtl, unique, channel. A run starts afresh. */
export const STARTED = `
redis.call('HSET', KEYS[1], 'state', 'running', 'handle', ARGV[1], 'function', ARGV[2], 'startedAt', ARGV[3],
  'numerator', '0', 'denominator', '0', 'parts', '0')
redis.call('HDEL', KEYS[1], 'payload', 'failure', 'endedAt', 'dropped')
redis.call('HSETNX', KEYS[1], 'createdAt', ARGV[3])
redis.call('DEL', KEYS[3])
redis.call('PEXPIRE', KEYS[1], ARGV[4])
redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
redis.call('PUBLISH', ARGV[6], 'status')
return 1`;

/** KEYS: job. ARGV: numerator, denominator, channel. */
export const STATUS = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'numerator', ARGV[1], 'denominator', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'status')
return 1`;

/** KEYS: job, parts. ARGV: part, pendingTtl, channel. */
export const DATA = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'parts', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'data')
return 1`;

/** KEYS: job, handle, parts. ARGV: state, failure, payload, now, ttl, dropped, handle, function, unique, channel. */
export const ENDED = `
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'failure', ARGV[2], 'payload', ARGV[3], 'endedAt', ARGV[4],
  'dropped', ARGV[6], 'handle', ARGV[7], 'function', ARGV[8])
redis.call('HSETNX', KEYS[1], 'createdAt', ARGV[4])
if ARGV[6] == '1' then
  redis.call('DEL', KEYS[3])
  redis.call('HSET', KEYS[1], 'parts', '0')
end
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[3], ARGV[5])
redis.call('SET', KEYS[2], ARGV[9], 'PX', ARGV[5])
redis.call('PUBLISH', ARGV[10], 'end')
return 1`;

/**
 * KEYS: job, parts. ARGV: handle, pendingTtl, channel. The attempt under `handle` failed and the
 * next one is queued (a retry): the job is queued again, its parts start afresh. Nothing changes
 * when a later attempt already started (the record names its handle).
 */
export const RETRYING = `
if redis.call('HGET', KEYS[1], 'handle') ~= ARGV[1] or redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'queued', 'numerator', '0', 'denominator', '0', 'parts', '0')
redis.call('HINCRBY', KEYS[1], 'retries', 1)
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'status')
return 1`;

/**
 * KEYS: batch job, handle. ARGV: handle, item function, now, total, failFast, gather, pendingTtl,
 * unique, channel. A batch that already ended stays as it is (0); one started before (its
 * coordinator ran again after a crash) keeps its counts.
 */
export const BATCH_START = `
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'completed' or state == 'failed' then return 0 end
redis.call('HSET', KEYS[1], 'state', 'running', 'batch', '1', 'handle', ARGV[1], 'function', ARGV[2], 'total', ARGV[4],
  'denominator', ARGV[4], 'failFast', ARGV[5], 'gather', ARGV[6])
redis.call('HSETNX', KEYS[1], 'createdAt', ARGV[3])
redis.call('HSETNX', KEYS[1], 'ended', '0')
redis.call('HSETNX', KEYS[1], 'failed', '0')
redis.call('HSETNX', KEYS[1], 'numerator', '0')
redis.call('PEXPIRE', KEYS[1], ARGV[7])
redis.call('SET', KEYS[2], ARGV[8], 'PX', ARGV[7])
redis.call('PUBLISH', ARGV[9], 'status')
return 1`;

/**
 * KEYS: batch job, outcomes. ARGV: index, outcome, pendingTtl, channel. Counts an item's first
 * outcome (a re-run's is ignored) while the batch runs. Returns {counted (1, 0, or -1: no batch),
 * ended, total, failed, state, failFast, gather, gatherSubmitted}.
 */
export const ITEM_ENDED = `
if redis.call('HGET', KEYS[1], 'batch') ~= '1' then return {-1} end
local state = redis.call('HGET', KEYS[1], 'state')
local counted = 0
if state == 'running' then
  counted = redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
  if counted == 1 then
    local ended = redis.call('HINCRBY', KEYS[1], 'ended', 1)
    if string.sub(ARGV[2], 1, 1) ~= 'c' then redis.call('HINCRBY', KEYS[1], 'failed', 1) end
    redis.call('HSET', KEYS[1], 'numerator', ended)
    redis.call('PUBLISH', ARGV[4], 'status')
  end
end
local field = function(name) return redis.call('HGET', KEYS[1], name) or '' end
return {counted, tonumber(field('ended')) or 0, tonumber(field('total')) or 0, tonumber(field('failed')) or 0, state or '',
  field('failFast'), field('gather'), field('gatherSubmitted')}`;

/** KEYS: batch job. Marks the gather job as submitted (a re-run then does not submit it again). */
export const GATHER_SUBMITTED = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'gatherSubmitted', '1')
return 1`;

/**
 * KEYS: batch job, outcomes. ARGV: state, failure, payload, now, ttl, channel. Ends a batch that is
 * still queued or running: its result, its failure, or its cancellation (1; 0 when it had ended,
 * -1 when the key holds no batch).
 */
export const BATCH_END = `
if redis.call('HGET', KEYS[1], 'batch') ~= '1' then return -1 end
local state = redis.call('HGET', KEYS[1], 'state')
if state ~= 'running' and state ~= 'queued' then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'failure', ARGV[2], 'payload', ARGV[3], 'endedAt', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('PEXPIRE', KEYS[2], ARGV[5])
redis.call('PUBLISH', ARGV[6], 'end')
return 1`;

/** Every script, with the number of keys it takes. */
export const SCRIPTS = {
  QUEUED: { lua: QUEUED, keys: 2 },
  STARTED: { lua: STARTED, keys: 3 },
  STATUS: { lua: STATUS, keys: 1 },
  DATA: { lua: DATA, keys: 2 },
  ENDED: { lua: ENDED, keys: 3 },
  RETRYING: { lua: RETRYING, keys: 2 },
  BATCH_START: { lua: BATCH_START, keys: 2 },
  ITEM_ENDED: { lua: ITEM_ENDED, keys: 2 },
  GATHER_SUBMITTED: { lua: GATHER_SUBMITTED, keys: 1 },
  BATCH_END: { lua: BATCH_END, keys: 2 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

/** Key and channel names under a prefix. */
export class RedisKeyspace {
  constructor(private readonly prefix: string) {}

  job(unique: string): string {
    return `${this.prefix}job:${unique}`;
  }

  parts(unique: string): string {
    return `${this.prefix}parts:${unique}`;
  }

  handle(handle: string): string {
    return `${this.prefix}handle:${handle}`;
  }

  outcomes(batchUnique: string): string {
    return `${this.prefix}outcomes:${batchUnique}`;
  }

  channel(unique: string): string {
    return `${this.prefix}events:${unique}`;
  }
}
