import type { Redis, RedisOptions } from 'ioredis';
import { isFinalJobResult, jobResultFrom, type JobResult } from '../client/job-result.js';
import { JobWatch } from '../client/result-watch.js';
import { GearmanResultTimeoutError } from '../common/errors.js';
import { consoleLogger, type GearmanLogger } from '../common/logger.js';
import type { JobStateRecord } from '../protocol/result-fetch.js';
import type { WorkerJob, WorkerJobEnd, WorkerJobRecorder } from '../worker/worker-job.js';
import { loadIoredis } from './load-ioredis.js';
import type { GearmanResultStore, QueuedJob } from './result-store.js';

export interface RedisResultStoreOptions {
  /**
   * The Redis to use: an ioredis client (shared: the store neither closes it nor uses it for
   * subscribing, for which it opens a duplicate), or the options or URL of one the store opens and
   * closes. Default `redis://127.0.0.1:6379`.
   */
  redis?: Redis | RedisOptions | string;
  /** Prefix of every key and channel; default `gearman:`. */
  keyPrefix?: string;
  /** How long an ended job's state and result are kept; default 24 hours. */
  ttlMs?: number;
  /** How long a queued or running job's record lives without news from it; default 7 days. */
  pendingTtlMs?: number;
  /** A result (with its WORK_DATA parts) larger than this is not kept: the state says so; default 16 MiB. */
  maxResultBytes?: number;
  /** Where failed writes are reported; default warnings and errors to the console. */
  logger?: GearmanLogger;
}

const HOUR_MS = 3_600_000;
export const DEFAULT_RESULT_TTL_MS = 24 * HOUR_MS;
export const DEFAULT_PENDING_TTL_MS = 7 * 24 * HOUR_MS;
export const DEFAULT_MAX_RESULT_BYTES = 16 * 1024 * 1024;

// The record of a job is a hash `<prefix>job:<unique>`, its WORK_DATA parts a list
// `<prefix>parts:<unique>`, and `<prefix>handle:<handle>` names its unique id. Every change is
// announced on the channel `<prefix>events:<unique>`: `status`, `data`, `end`, or `w` + a warning.
// Each change is one script, so that readers never see half of it.

/** KEYS: job, handle. ARGV: handle, function, now, pendingTtl, unique. A job a worker already took keeps its state. */
const QUEUED = `
if redis.call('HSETNX', KEYS[1], 'state', 'queued') == 1 then
  redis.call('HSET', KEYS[1], 'handle', ARGV[1], 'function', ARGV[2], 'createdAt', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
  redis.call('SET', KEYS[2], ARGV[5], 'PX', ARGV[4])
end
return 1`;

/** KEYS: job, handle, parts. ARGV: handle, function, now, pendingTtl, unique, channel. A run starts afresh. */
const STARTED = `
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
const STATUS = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('HSET', KEYS[1], 'numerator', ARGV[1], 'denominator', ARGV[2])
redis.call('PUBLISH', ARGV[3], 'status')
return 1`;

/** KEYS: job, parts. ARGV: part, pendingTtl, channel. */
const DATA = `
if redis.call('HGET', KEYS[1], 'state') ~= 'running' then return 0 end
redis.call('RPUSH', KEYS[2], ARGV[1])
redis.call('HINCRBY', KEYS[1], 'parts', 1)
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], 'data')
return 1`;

/** KEYS: job, handle, parts. ARGV: state, failure, payload, now, ttl, dropped, handle, function, unique, channel. */
const ENDED = `
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

const SCRIPTS = { QUEUED, STARTED, STATUS, DATA, ENDED } as const;
type ScriptName = keyof typeof SCRIPTS;

/** What the recorder keeps of a job while it runs. */
interface RunningJob {
  readonly unique: string;
  partBytes: number;
  dropped: boolean;
  /** Progress not written yet; one STATUS write at a time, the newest wins. */
  pendingStatus: [number, number] | undefined;
  statusInFlight: boolean;
}

type Listener = (message: Buffer) => void;

/**
 * A result store in Redis (through ioredis, an optional peer dependency loaded when the store first
 * connects). Workers write each job's state as it runs and its outcome before the job server hears
 * of it; clients read it, wait for it (pub/sub, subscribed before the state is read, so an end is
 * never missed) and follow it. Bounded retention: every key expires (`ttlMs` once ended,
 * `pendingTtlMs` while queued or running), and results over `maxResultBytes` are not kept.
 */
export class RedisResultStore implements GearmanResultStore {
  readonly recorder: WorkerJobRecorder;
  private readonly prefix: string;
  private readonly ttlMs: number;
  private readonly pendingTtlMs: number;
  private readonly maxResultBytes: number;
  private readonly logger: GearmanLogger;
  private commands: Promise<Redis> | undefined;
  private subscriber: Promise<Redis> | undefined;
  private readonly ownConnections: Promise<Redis>[] = [];
  private readonly running = new Map<WorkerJob, RunningJob>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly watches = new Set<JobWatch>();
  private closed = false;

  constructor(private readonly options: RedisResultStoreOptions = {}) {
    this.prefix = options.keyPrefix ?? 'gearman:';
    this.ttlMs = positive('ttlMs', options.ttlMs, DEFAULT_RESULT_TTL_MS);
    this.pendingTtlMs = positive('pendingTtlMs', options.pendingTtlMs, DEFAULT_PENDING_TTL_MS);
    this.maxResultBytes = positive('maxResultBytes', options.maxResultBytes, DEFAULT_MAX_RESULT_BYTES);
    this.logger = options.logger ?? consoleLogger('RedisResultStore');
    this.recorder = {
      started: (job) => this.started(job),
      status: (job, numerator, denominator) => this.status(job, numerator, denominator),
      data: (job, data) => this.data(job, data),
      warning: (job, data) => this.warning(job, data),
      ended: (job, outcome) => this.ended(job, outcome),
    };
  }

  async jobQueued(job: QueuedJob): Promise<void> {
    if (!storable(job.unique)) return;
    await this.run(
      'QUEUED',
      [this.jobKey(job.unique), this.handleKey(job.handle)],
      [job.handle, job.functionName, Date.now(), this.pendingTtlMs, job.unique],
    );
  }

  async get(handleOrUnique: string): Promise<JobResult> {
    return (await this.read(handleOrUnique)).result;
  }

  watch(handleOrUnique: string, options: { timeoutMs: number; follow?: boolean }): JobWatch {
    const watch = new JobWatch(handleOrUnique);
    if (this.closed) {
      watch.reject(new Error('The Redis result store is closed'));
      return watch;
    }
    this.watches.add(watch);
    watch.onSettled(() => this.watches.delete(watch));
    this.follow(watch, options.timeoutMs, options.follow === true).catch((error: Error) => watch.reject(error));
    return watch;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const watch of [...this.watches]) watch.reject(new Error('The Redis result store was closed'));
    const own = this.ownConnections.splice(0);
    await Promise.all(own.map(async (connecting) => (await connecting.catch(() => undefined))?.quit().catch(() => undefined)));
  }

  private async follow(watch: JobWatch, timeoutMs: number, emitEvents: boolean): Promise<void> {
    const first = await this.read(watch.id);
    if (isFinalJobResult(first.result)) return watch.resolve(first.result);
    const unique = first.unique!;
    let last: JobResult = first.result;
    const parts: Buffer[] = [];
    let progress = { numerator: 0, denominator: 0 };
    // One read at a time, in order: each catches up with whatever changed since the one before.
    let reading: Promise<void> = Promise.resolve();
    const catchUp = () => {
      reading = reading.then(async () => {
        if (watch.isSettled) return;
        const read = await this.read(unique, parts.length);
        const result = read.result;
        last = result;
        parts.push(...read.parts);
        if (emitEvents) {
          // A worker sends its progress before the data it goes with.
          if (result.state !== 'unknown') {
            const now = result.progress;
            if (now.numerator !== progress.numerator || now.denominator !== progress.denominator) {
              progress = now;
              watch.emit('status', now.numerator, now.denominator);
            }
          }
          for (const part of read.parts) watch.emit('data', part);
        }
        if (isFinalJobResult(result)) watch.resolve(result.state === 'unknown' ? result : { ...result, data: parts });
      });
      reading.catch((error: Error) => watch.reject(error));
    };
    const channel = this.channel(unique);
    const listener: Listener = (message) => {
      if (message[0] !== WARNING_TAG[0]) return catchUp();
      if (emitEvents) watch.emit('warning', message.subarray(1));
    };
    await this.listen(channel, listener);
    watch.onSettled(() => this.unlisten(channel, listener));
    const timer = setTimeout(() => watch.reject(new GearmanResultTimeoutError<JobResult>(watch.id, timeoutMs, last)), timeoutMs);
    timer.unref?.();
    watch.onSettled(() => clearTimeout(timer));
    // Subscribed now: read again, so that whatever happened since the first read counts.
    catchUp();
  }

  /** Reads a job by unique id, or by handle through its index; parts from `fromPart` on. */
  private async read(id: string, fromPart = 0): Promise<{ result: JobResult; unique?: string; parts: Buffer[] }> {
    const redis = await this.connection();
    const [[, fields], [, parts], [, unique]] = (await redis
      .pipeline()
      .hgetallBuffer(this.jobKey(id))
      .lrangeBuffer(this.partsKey(id), fromPart, -1)
      .get(this.handleKey(id))
      .exec())!.map(([error, value]) => {
      if (error) throw error;
      return [error, value];
    }) as [[null, Record<string, Buffer>], [null, Buffer[]], [null, string | null]];
    if (Object.keys(fields).length > 0) return { result: resultFrom(id, id, fields, parts), unique: id, parts };
    if (unique && unique !== id && fromPart === 0) {
      const [[, byHandle], [, handleParts]] = (await redis
        .pipeline()
        .hgetallBuffer(this.jobKey(unique))
        .lrangeBuffer(this.partsKey(unique), 0, -1)
        .exec())!.map(([error, value]) => {
        if (error) throw error;
        return [error, value];
      }) as [[null, Record<string, Buffer>], [null, Buffer[]]];
      if (Object.keys(byHandle).length > 0) return { result: resultFrom(id, unique, byHandle, handleParts), unique, parts: handleParts };
    }
    return { result: { state: 'unknown', id, reason: 'not-found' }, parts: [] };
  }

  private started(job: WorkerJob): void {
    if (!storable(job.unique)) return;
    this.running.set(job, { unique: job.unique, partBytes: 0, dropped: false, pendingStatus: undefined, statusInFlight: false });
    this.write(
      'STARTED',
      [this.jobKey(job.unique), this.handleKey(job.handle), this.partsKey(job.unique)],
      [job.handle, job.functionName, Date.now(), this.pendingTtlMs, job.unique, this.channel(job.unique)],
    );
  }

  private status(job: WorkerJob, numerator: number, denominator: number): void {
    const run = this.running.get(job);
    if (!run) return;
    run.pendingStatus = [numerator, denominator];
    if (!run.statusInFlight) this.writeStatus(run);
  }

  private writeStatus(run: RunningJob): void {
    const pending = run.pendingStatus;
    if (!pending) return;
    run.pendingStatus = undefined;
    run.statusInFlight = true;
    this.run('STATUS', [this.jobKey(run.unique)], [pending[0], pending[1], this.channel(run.unique)])
      .catch((error: Error) => this.logger.warn(`could not record the progress of ${run.unique}: ${error.message}`))
      .finally(() => {
        run.statusInFlight = false;
        this.writeStatus(run);
      });
  }

  private data(job: WorkerJob, data: Buffer): void {
    const run = this.running.get(job);
    if (!run || run.dropped) return;
    run.partBytes += data.length;
    if (run.partBytes > this.maxResultBytes) {
      run.dropped = true;
      return;
    }
    this.write('DATA', [this.jobKey(run.unique), this.partsKey(run.unique)], [data, this.pendingTtlMs, this.channel(run.unique)]);
  }

  private warning(job: WorkerJob, data: Buffer): void {
    const run = this.running.get(job);
    if (!run) return;
    void this.connection()
      .then((redis) => redis.publish(this.channel(run.unique), Buffer.concat([WARNING_TAG, data])))
      .catch((error: Error) => this.logger.warn(`could not pass on a warning of ${run.unique}: ${error.message}`));
  }

  private async ended(job: WorkerJob, outcome: WorkerJobEnd): Promise<void> {
    const run = this.running.get(job);
    if (!run) return;
    this.running.delete(job);
    const payload = outcome.type === 'fail' ? EMPTY : outcome.data;
    const dropped = run.dropped || run.partBytes + payload.length > this.maxResultBytes;
    await this.run(
      'ENDED',
      [this.jobKey(run.unique), this.handleKey(job.handle), this.partsKey(run.unique)],
      [
        outcome.type === 'complete' ? 'completed' : 'failed',
        outcome.type === 'complete' ? '' : outcome.type,
        dropped ? EMPTY : payload,
        Date.now(),
        this.ttlMs,
        dropped ? '1' : '0',
        job.handle,
        job.functionName,
        run.unique,
        this.channel(run.unique),
      ],
    );
  }

  /** A write nobody waits for: its failure is logged. */
  private write(script: ScriptName, keys: string[], args: (string | number | Buffer)[]): void {
    this.run(script, keys, args).catch((error: Error) =>
      this.logger.warn(`could not record ${script.toLowerCase()} of ${keys[0]}: ${error.message}`),
    );
  }

  private async run(script: ScriptName, keys: string[], args: (string | number | Buffer)[]): Promise<unknown> {
    const redis = await this.connection();
    return (redis as unknown as Record<string, (...args: unknown[]) => Promise<unknown>>)[`gearman${script}`](...keys, ...args);
  }

  private connection(): Promise<Redis> {
    if (this.closed) return Promise.reject(new Error('The Redis result store is closed'));
    this.commands ??= this.open(false).then((redis) => {
      for (const [name, lua] of Object.entries(SCRIPTS)) {
        const numberOfKeys = name === 'STATUS' ? 1 : name === 'DATA' || name === 'QUEUED' ? 2 : 3;
        redis.defineCommand(`gearman${name}`, { numberOfKeys, lua });
      }
      return redis;
    });
    return this.commands;
  }

  /** Opens (or, for a client given, duplicates for subscribing) a connection. */
  private open(forSubscribing: boolean): Promise<Redis> {
    const given = this.options.redis;
    const opening = (async () => {
      if (isRedisClient(given)) return forSubscribing ? given.duplicate() : given;
      const Redis = await loadIoredis();
      return typeof given === 'string' ? new Redis(given) : new Redis(given ?? {});
    })();
    if (forSubscribing || !isRedisClient(given)) this.ownConnections.push(opening);
    return opening;
  }

  private async listen(channel: string, listener: Listener): Promise<void> {
    let set = this.listeners.get(channel);
    const first = !set;
    if (!set) {
      set = new Set();
      this.listeners.set(channel, set);
    }
    set.add(listener);
    const subscriber = await this.subscriberConnection();
    if (first) await subscriber.subscribe(channel);
  }

  private unlisten(channel: string, listener: Listener): void {
    const set = this.listeners.get(channel);
    if (!set) return;
    set.delete(listener);
    if (set.size > 0) return;
    this.listeners.delete(channel);
    void this.subscriber?.then((subscriber) => subscriber.unsubscribe(channel)).catch(() => undefined);
  }

  private subscriberConnection(): Promise<Redis> {
    if (this.closed) return Promise.reject(new Error('The Redis result store is closed'));
    this.subscriber ??= this.open(true).then((subscriber) => {
      subscriber.on('messageBuffer', (channel: Buffer, message: Buffer) => {
        for (const listener of this.listeners.get(channel.toString()) ?? []) listener(message);
      });
      return subscriber;
    });
    return this.subscriber;
  }

  private jobKey(unique: string): string {
    return `${this.prefix}job:${unique}`;
  }

  private partsKey(unique: string): string {
    return `${this.prefix}parts:${unique}`;
  }

  private handleKey(handle: string): string {
    return `${this.prefix}handle:${handle}`;
  }

  private channel(unique: string): string {
    return `${this.prefix}events:${unique}`;
  }
}

const EMPTY = Buffer.alloc(0);
const WARNING_TAG = Buffer.from('w');

/** `''` never identifies a job, and `-` means "coalesce on the payload": neither can key a result. */
function storable(unique: string): boolean {
  return unique !== '' && unique !== '-';
}

function positive(name: string, value: number | undefined, fallback: number): number {
  const chosen = value ?? fallback;
  if (!Number.isInteger(chosen) || chosen < 1) throw new TypeError(`${name} must be a whole number ≥ 1, got ${value}`);
  return chosen;
}

function isRedisClient(value: RedisResultStoreOptions['redis']): value is Redis {
  return typeof value === 'object' && value !== null && typeof (value as Redis).duplicate === 'function';
}

function resultFrom(id: string, unique: string, fields: Record<string, Buffer>, parts: Buffer[]): JobResult {
  const text = (name: string) => fields[name]?.toString('utf8');
  const number = (name: string) => (fields[name] === undefined ? undefined : Number(text(name)));
  const failure = text('failure');
  const record: JobStateRecord = {
    state: text('state') as JobStateRecord['state'],
    handle: text('handle'),
    unique,
    function: text('function'),
    numerator: number('numerator'),
    denominator: number('denominator'),
    parts: number('parts'),
    createdAt: number('createdAt'),
    endedAt: number('endedAt'),
    failure: failure === 'fail' || failure === 'exception' ? failure : undefined,
    dropped: text('dropped') === '1',
  };
  return jobResultFrom(id, record, fields.payload ?? EMPTY, parts);
}
