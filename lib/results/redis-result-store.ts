import type { ChainableCommander, Redis, RedisOptions } from 'ioredis';
import { isFinalJobResult, jobResultFrom, type JobResult } from '../client/job-result.js';
import { JobWatch } from '../client/result-watch.js';
import { GearmanResultTimeoutError } from '../common/errors.js';
import { consoleLogger, type GearmanLogger } from '../common/logger.js';
import type { JobStateRecord } from '../protocol/result-fetch.js';
import type { WorkerJob, WorkerJobEnd, WorkerJobRecorder } from '../worker/worker-job.js';
import { loadIoredis } from './load-ioredis.js';
import { retryOriginOf } from '../protocol/retry-origin.js';
import { RedisBatches } from './redis-batches.js';
import { RedisKeyspace, SCRIPTS, type ScriptName } from './redis-scripts.js';
import type { BatchSubmitter, GearmanResultStore, QueuedJob } from './result-store.js';

/**
 * An ioredis client (`new Redis(…)` from the `ioredis` package), described here by the one method
 * the store checks, so that these declarations do not need ioredis installed.
 */
export interface RedisClient {
  duplicate(): unknown;
}

/** ioredis connection options (`host`, `port`, `password`, `db`, `tls`, …), passed to `new Redis(options)` as they are. */
export type RedisConnectionOptions = Record<string, unknown>;

export interface RedisResultStoreOptions {
  /**
   * The Redis to use: an ioredis client (shared: the store neither closes it nor uses it for
   * subscribing, for which it opens a duplicate), or the options or URL of one the store opens and
   * closes. Default `redis://127.0.0.1:6379`.
   */
  redis?: RedisClient | RedisConnectionOptions | string;
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

/** What the recorder keeps of a job while it runs. */
interface RunningJob {
  /** The job's unique id; for a later attempt of a retried job, the first attempt's. */
  readonly unique: string;
  /** Its next attempt is queued: its WORK_FAIL is not the job's end. */
  retrying: boolean;
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
  private readonly keys: RedisKeyspace;
  private readonly ttlMs: number;
  private readonly pendingTtlMs: number;
  private readonly maxResultBytes: number;
  private readonly logger: GearmanLogger;
  private readonly batches: RedisBatches;
  private commands: Promise<Redis> | undefined;
  private subscriber: Promise<Redis> | undefined;
  private readonly ownConnections: Promise<Redis>[] = [];
  private readonly running = new Map<WorkerJob, RunningJob>();
  private readonly listeners = new Map<string, Set<Listener>>();
  private readonly watches = new Set<JobWatch>();
  private closed = false;

  constructor(private readonly options: RedisResultStoreOptions = {}) {
    this.keys = new RedisKeyspace(options.keyPrefix ?? 'gearman:');
    this.ttlMs = positive('ttlMs', options.ttlMs, DEFAULT_RESULT_TTL_MS);
    this.pendingTtlMs = positive('pendingTtlMs', options.pendingTtlMs, DEFAULT_PENDING_TTL_MS);
    this.maxResultBytes = positive('maxResultBytes', options.maxResultBytes, DEFAULT_MAX_RESULT_BYTES);
    this.logger = options.logger ?? consoleLogger('RedisResultStore');
    this.batches = new RedisBatches({
      keys: this.keys,
      ttlMs: this.ttlMs,
      pendingTtlMs: this.pendingTtlMs,
      logger: this.logger,
      run: (script, keys, args) => this.run(script, keys, args),
      peek: (hash, fields, other) => this.peek(hash, fields, other),
      hashOf: async (key) => (await this.connection()).hgetallBuffer(key),
    });
  }

  recorder(submitter?: BatchSubmitter): WorkerJobRecorder {
    return {
      started: (job) => this.started(job),
      status: (job, numerator, denominator) => this.status(job, numerator, denominator),
      data: (job, data) => this.data(job, data),
      warning: (job, data) => this.warning(job, data),
      ended: (job, outcome) => this.ended(job, outcome, submitter),
      retrying: (job) => {
        const run = this.running.get(job);
        if (run) run.retrying = true;
      },
    };
  }

  startBatch(job: WorkerJob, submitter: BatchSubmitter): Promise<void> {
    return this.batches.start(job, submitter);
  }

  shouldRun(job: WorkerJob): Promise<boolean> {
    return this.batches.shouldRun(recordedUnique(job));
  }

  async cancelBatch(handleOrUnique: string): Promise<boolean> {
    const { unique } = await this.read(handleOrUnique);
    return unique !== undefined && (await this.batches.cancel(unique));
  }

  async jobQueued(job: QueuedJob): Promise<void> {
    if (!storable(job.unique)) return;
    await this.run(
      'QUEUED',
      [this.keys.job(job.unique), this.keys.handle(job.handle)],
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
    let attemptHandle: string | undefined;
    // One read at a time, in order: each catches up with whatever changed since the one before.
    let reading: Promise<void> = Promise.resolve();
    const catchUp = () => {
      reading = reading.then(async () => {
        if (watch.isSettled) return;
        let read = await this.read(unique, parts.length);
        const attempt = read.result.state === 'unknown' ? undefined : read.result.handle;
        if (attempt !== undefined && attempt !== attemptHandle) {
          // Another attempt of a retried job (or the first read): its parts start afresh.
          if (attemptHandle !== undefined && parts.length > 0) {
            parts.length = 0;
            read = await this.read(unique, 0);
          }
          attemptHandle = attempt;
        }
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
        if (!isFinalJobResult(result)) return;
        // Warnings come only over pub/sub: those published before the end are delivered before the
        // reply to a PING sent now on the same connection, so the follower gets them before the end.
        if (emitEvents) await (await this.subscriberConnection()).ping();
        watch.resolve(result.state === 'unknown' ? result : { ...result, data: parts });
      });
      reading.catch((error: Error) => watch.reject(error));
    };
    const channel = this.keys.channel(unique);
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
    const [fields, parts, unique] = (await execAll(
      redis.pipeline().hgetallBuffer(this.keys.job(id)).lrangeBuffer(this.keys.parts(id), fromPart, -1).get(this.keys.handle(id)),
    )) as [Record<string, Buffer>, Buffer[], string | null];
    if (Object.keys(fields).length > 0) return { result: resultFrom(id, id, fields, parts), unique: id, parts };
    if (unique && unique !== id && fromPart === 0) {
      const [byHandle, handleParts] = (await execAll(
        redis.pipeline().hgetallBuffer(this.keys.job(unique)).lrangeBuffer(this.keys.parts(unique), 0, -1),
      )) as [Record<string, Buffer>, Buffer[]];
      if (Object.keys(byHandle).length > 0) return { result: resultFrom(id, unique, byHandle, handleParts), unique, parts: handleParts };
    }
    return { result: { state: 'unknown', id, reason: 'not-found' }, parts: [] };
  }

  private started(job: WorkerJob): void {
    if (this.batches.isCoordinator(job)) return;
    const unique = recordedUnique(job);
    if (!storable(unique)) return;
    this.running.set(job, { unique, retrying: false, partBytes: 0, dropped: false, pendingStatus: undefined, statusInFlight: false });
    this.write(
      'STARTED',
      [this.keys.job(unique), this.keys.handle(job.handle), this.keys.parts(unique)],
      [job.handle, job.functionName, Date.now(), this.pendingTtlMs, unique, this.keys.channel(unique)],
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
    this.run('STATUS', [this.keys.job(run.unique)], [pending[0], pending[1], this.keys.channel(run.unique)])
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
    this.write('DATA', [this.keys.job(run.unique), this.keys.parts(run.unique)], [data, this.pendingTtlMs, this.keys.channel(run.unique)]);
  }

  private warning(job: WorkerJob, data: Buffer): void {
    const run = this.running.get(job);
    if (!run) return;
    void this.connection()
      .then((redis) => redis.publish(this.keys.channel(run.unique), Buffer.concat([WARNING_TAG, data])))
      .catch((error: Error) => this.logger.warn(`could not pass on a warning of ${run.unique}: ${error.message}`));
  }

  private async ended(job: WorkerJob, outcome: WorkerJobEnd, submitter: BatchSubmitter | undefined): Promise<void> {
    const run = this.running.get(job);
    if (!run) return;
    this.running.delete(job);
    if (run.retrying && outcome.type === 'fail') {
      // Not the job's end: it goes on in its next attempt, queued already.
      await this.run(
        'RETRYING',
        [this.keys.job(run.unique), this.keys.parts(run.unique)],
        [job.handle, this.pendingTtlMs, this.keys.channel(run.unique)],
      );
      return;
    }
    await this.record(job, run, outcome);
    await this.batches.ended(run.unique, outcome, submitter);
  }

  private async record(job: WorkerJob, run: RunningJob, outcome: WorkerJobEnd): Promise<void> {
    const payload = outcome.type === 'fail' ? EMPTY : outcome.data;
    const dropped = run.dropped || run.partBytes + payload.length > this.maxResultBytes;
    await this.run(
      'ENDED',
      [this.keys.job(run.unique), this.keys.handle(job.handle), this.keys.parts(run.unique)],
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
        this.keys.channel(run.unique),
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

  private async peek(
    hash: string,
    fields: string[],
    other?: { hash: string; field: string },
  ): Promise<{ values: (string | null)[]; exists: boolean }> {
    const redis = await this.connection();
    const pipeline = redis.pipeline().hmget(hash, ...fields);
    if (other) pipeline.hexists(other.hash, other.field);
    const replies = await execAll(pipeline);
    return { values: replies[0] as (string | null)[], exists: replies[1] === 1 };
  }

  private connection(): Promise<Redis> {
    if (this.closed) return Promise.reject(new Error('The Redis result store is closed'));
    this.commands ??= this.open(false).then((redis) => {
      for (const [name, { lua, keys }] of Object.entries(SCRIPTS)) redis.defineCommand(`gearman${name}`, { numberOfKeys: keys, lua });
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
      return typeof given === 'string' ? new Redis(given) : new Redis((given ?? {}) as RedisOptions);
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
}

/** Runs a pipeline; its replies in order, or the first command's error thrown. */
async function execAll(pipeline: ChainableCommander): Promise<unknown[]> {
  return (await pipeline.exec())!.map(([error, value]) => {
    if (error) throw error;
    return value;
  });
}

const EMPTY = Buffer.alloc(0);
const WARNING_TAG = Buffer.from('w');

/** The unique id a job is recorded under: its own, or for a later attempt of a retried job, the first attempt's. */
function recordedUnique(job: WorkerJob): string {
  return retryOriginOf(job.data)?.unique ?? job.unique;
}

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
  return typeof value === 'object' && value !== null && typeof (value as RedisClient).duplicate === 'function';
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
    batch: text('batch') === '1' ? { total: number('total') ?? 0, ended: number('ended') ?? 0, failed: number('failed') ?? 0 } : undefined,
  };
  return jobResultFrom(id, record, fields.payload ?? EMPTY, parts);
}
