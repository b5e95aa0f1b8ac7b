import { DEFAULT_MAX_QUEUED_BYTES } from '../common/defaults.js';
import { EventEmitter } from 'node:events';
import { awaitedJobs, onAwaitedJobs } from '../common/awaited-jobs.js';
import { connectAny } from '../connection/connect-any.js';
import { resolveServerAddresses } from '../connection/server-address.js';
import { GearmanConnectionError, GearmanJobTimeoutError } from '../common/errors.js';
import type { GearmanPeerOptions } from '../connection/peer-options.js';
import { defaultLogger, type GearmanLogger } from '../common/logger.js';
import { performance } from 'node:perf_hooks';
import type { GearmanWorkerObserver } from './worker-observer.js';
import { WorkerJob, type WorkerJobRecorder } from './worker-job.js';
import { WorkerSession, type RegisteredFunction, type WorkerSessionOwner } from './worker-session.js';

export interface GearmanWorkerOptions extends GearmanPeerOptions {
  /**
   * Jobs this worker runs at once, over all its job-server connections; default 1, Gearman's
   * classic one job per worker. Each foreground job of one of its functions that a client of this
   * same process waits for adds a slot while it runs (see `awaited-jobs`), so a handler may call
   * its own worker through Gearman without deadlocking.
   */
  concurrency?: number;
  /** How long stop() waits for in-flight jobs before closing anyway (the server then requeues them); default 30 000 ms. */
  stopTimeoutMs?: number;
  /**
   * How long start() keeps trying to reach a job server, with the reconnect back-off, before it
   * rejects (a worker started before its job server, as in a rolling deploy); default 30 000 ms.
   * 0 gives each server one attempt.
   */
  startTimeoutMs?: number;
  /**
   * How a throwing handler ends its job. true (default): WORK_EXCEPTION with the error message.
   * false: WORK_WARNING with the message, then WORK_FAIL, which every client understands. Use false
   * with gearmand 1.1 when clients that do not ask for exceptions (the gearman CLI, Perl, PHP) call
   * this worker: gearmand 1.1 passes them a malformed WORK_FAIL in place of the exception.
   */
  exceptions?: boolean;
  /** Told of every job this worker runs and how it ended (metrics: see `GearmanMetrics`). */
  observer?: GearmanWorkerObserver;
  /**
   * Bytes per connection written and not yet taken by the job server past which a job's
   * sendData, sendWarning and sendStatus throw GearmanQueueFullError (its end always goes out);
   * default 64 MiB. The worker also takes no new job while a connection is backed up.
   */
  maxQueuedBytes?: number;
  /**
   * Sees every job as it runs (start, WORK_STATUS, WORK_DATA, its end), e.g. a result store's
   * recorder so that clients can fetch the outcome later; the end is recorded before it is sent.
   */
  recorder?: WorkerJobRecorder;
}

/** Runs one job. Its result completes the job unless the handler already ended it (see GearmanWorker). */
export type JobHandler = (job: WorkerJob) => unknown | Promise<unknown>;

export interface RegisterOptions {
  /**
   * The job's time limit in ms. Past it the worker ends the job with WORK_EXCEPTION (a
   * GearmanJobTimeoutError message), aborts `job.signal`, logs a warning and frees the slot; the
   * handler may still be running, and what it sends afterwards is dropped. The worker also
   * registers CAN_DO_TIMEOUT with a second more, so that a job server that enforces it (ours,
   * gearmand 2.0) requeues the job if this worker is too stuck to end it.
   */
  timeoutMs?: number;
}

interface Registration extends RegisteredFunction {
  readonly handler: JobHandler;
}

export const DEFAULT_START_TIMEOUT_MS = 30_000;

type WorkerState = 'created' | 'started' | 'stopping' | 'stopped';

/**
 * A Gearman worker: registers functions on every job server, grabs jobs (GRAB_JOB_UNIQ), runs
 * their handlers, and sleeps (PRE_SLEEP) until woken (NOOP) when there is nothing to do.
 *
 * When a handler settles and the job is not done yet: a Buffer or string result completes the job
 * with it (undefined or null: an empty result); a throw or rejection ends it with WORK_EXCEPTION
 * carrying the error message (see the `exceptions` option); any other result ends it with
 * WORK_EXCEPTION saying so.
 *
 * Events: 'connect' (server), 'disconnect' (server, error?), 'reconnecting' (server, delayMs),
 * 'error' (Error; logged instead when nobody listens), 'job' (WorkerJob). Losing a job server and
 * getting it back are also logged as warnings.
 */
export class GearmanWorker extends EventEmitter {
  private readonly registrations = new Map<string, Registration>();
  private readonly sessions: WorkerSession[];
  private readonly logger: GearmanLogger;
  private readonly stopTimeoutMs: number;
  private readonly startTimeoutMs: number;
  private readonly exceptions: boolean;
  private readonly concurrency: number;
  /** Slots lent to jobs of this worker's functions that clients of this process wait for. */
  private lent = 0;
  private stopListening: (() => void) | undefined;
  /** Which session gets the first chance at a freed slot: turns go round, so every server is served. */
  private nextSession = 0;
  /** Servers not connected now that were lost, or never reached yet: getting one is logged. */
  private readonly down = new Map<string, 'lost' | 'not reached'>();
  private readonly observer: GearmanWorkerObserver | undefined;
  private readonly recorder: WorkerJobRecorder | undefined;
  private state: WorkerState = 'created';
  private stopping: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(options: GearmanWorkerOptions = {}) {
    super();
    this.concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1)
      throw new TypeError(`concurrency must be a positive integer, got ${options.concurrency}`);
    this.logger = options.logger ?? defaultLogger;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
    if (!(this.stopTimeoutMs >= 0)) throw new TypeError(`stopTimeoutMs must be a number ≥ 0, got ${options.stopTimeoutMs}`);
    this.startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    if (!(this.startTimeoutMs >= 0)) throw new TypeError(`startTimeoutMs must be a number ≥ 0, got ${options.startTimeoutMs}`);
    this.exceptions = options.exceptions ?? true;
    this.observer = options.observer;
    this.recorder = options.recorder;
    const connectionOptions = {
      connectTimeoutMs: options.connectTimeoutMs,
      reconnect: options.reconnect,
      keepAliveMs: options.keepAliveMs,
      maxPacketSize: options.maxPacketSize,
    };
    const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    if (!Number.isInteger(maxQueuedBytes) || maxQueuedBytes < 0) {
      throw new TypeError(`maxQueuedBytes must be a whole number ≥ 0, got ${String(options.maxQueuedBytes)}`);
    }
    const owner: WorkerSessionOwner = {
      functions: this.registrations,
      maxQueuedBytes,
      clientId: options.clientId,
      capacity: () => this.capacity,
      freeSlots: () => this.freeSlots(),
      recorder: options.recorder,
      recorderFailed: (job, error) =>
        this.logger.error(
          `GearmanWorker: could not record the end of job ${job.handle} (${job.functionName}): ${error instanceof Error ? error.message : String(error)}`,
        ),
      isStopping: () => this.state === 'stopping' || this.state === 'stopped',
      runJob: (job) => this.runJob(job),
      jobEnded: () => this.grabEverywhere(),
      sessionConnected: (session) => {
        const was = this.down.get(session.label);
        this.down.delete(session.label);
        if (was) this.logger.warn(`GearmanWorker: ${was === 'lost' ? 'reconnected' : 'connected'} to ${session.label}`);
        this.emit('connect', session.label);
      },
      sessionDisconnected: (session, error) => {
        if (this.state !== 'started') return;
        this.down.set(session.label, 'lost');
        const next = session.connection.isWanted ? '; reconnecting' : '';
        this.logger.warn(`GearmanWorker: lost the connection to ${session.label} (${error.code}: ${error.message})${next}`);
        this.emit('disconnect', session.label, error);
      },
      sessionReconnecting: (session, delayMs) => this.onReconnecting(session, delayMs),
      sessionError: (_session, error) => this.reportError(error),
      sessionIdle: () => this.checkIdle(),
      jobFinished: (job) => this.jobFinished(job),
    };
    this.sessions = resolveServerAddresses(options.servers, options.tls).map(
      (address) => new WorkerSession(address, connectionOptions, owner),
    );
  }

  /** Registers a handler (CAN_DO, or CAN_DO_TIMEOUT with timeoutMs); before or after start(). Replaces an earlier one. */
  register(functionName: string, handler: JobHandler, options: RegisterOptions = {}): void {
    if (typeof functionName !== 'string' || functionName.length === 0) throw new TypeError('A function name must be a non-empty string');
    if (typeof handler !== 'function') throw new TypeError(`The handler of ${functionName} must be a function`);
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1)) {
      throw new TypeError(`timeoutMs of ${functionName} must be a positive integer, got ${timeoutMs}`);
    }
    const registration: Registration = { handler, timeoutMs };
    if (!this.registrations.has(functionName) && this.stopListening) this.lent += awaitedJobs(functionName);
    this.registrations.set(functionName, registration);
    for (const session of this.sessions) session.announce(functionName, registration);
  }

  /** Stops taking jobs of a function (CANT_DO). */
  unregister(functionName: string): void {
    if (!this.registrations.delete(functionName)) return;
    if (this.stopListening) this.lent -= awaitedJobs(functionName);
    for (const session of this.sessions) if (session.connection.isConnected) session.withdraw(functionName);
  }

  /**
   * Connects to every server, registers and starts grabbing. Resolves when at least one server is
   * connected (the others keep trying); while none is, keeps trying with the reconnect back-off
   * for up to `startTimeoutMs`, then rejects with GearmanConnectionError (`code` ECONNREFUSED, ...).
   */
  async start(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') throw new GearmanConnectionError('Worker stopped');
    this.state = 'started';
    this.listenToAwaitedJobs();
    try {
      await connectAny(
        this.sessions.map((session) => session.connection),
        this.startTimeoutMs,
      );
    } catch (error) {
      if (this.state === 'started') {
        this.state = 'created';
        this.stopListeningToAwaitedJobs();
      }
      throw error;
    }
  }

  /**
   * Asks every server for jobs now, as if it had sent NOOP. For epoch jobs on gearmand 1.1, which
   * wakes no sleeping worker when one falls due (only when a job of the function arrives).
   */
  wake(): void {
    for (const session of this.sessions) session.wake();
  }

  /** Graceful: stops grabbing, lets in-flight jobs finish (up to stopTimeoutMs), then closes. Safe twice. */
  stop(): Promise<void> {
    this.stopping ??= this.drainAndClose();
    return this.stopping;
  }

  /** The servers (`host:port`) connected now, in the order they were given. */
  get connectedServers(): string[] {
    return this.sessions.filter((session) => session.connection.isConnected).map((session) => session.label);
  }

  /** The functions registered, in registration order. */
  get functions(): string[] {
    return [...this.registrations.keys()];
  }

  /** Jobs running now, over every connection. */
  get jobsInFlight(): number {
    return this.sessions.reduce((sum, session) => sum + session.jobsInFlight, 0);
  }

  /** Jobs it may run at once now: `concurrency`, plus the slots lent to jobs of its functions that this process waits for. */
  get capacity(): number {
    return this.concurrency + this.lent;
  }

  private freeSlots(): number {
    let used = 0;
    for (const session of this.sessions) used += session.jobsInFlight + session.pendingGrabs;
    return this.capacity - used;
  }

  /** A slot freed (or was lent): every connection may take a job, the first chance going round. */
  private grabEverywhere(): void {
    const count = this.sessions.length;
    if (count === 1) return this.sessions[0].grab();
    const first = this.nextSession;
    this.nextSession = (first + 1) % count;
    for (let i = 0; i < count; i++) this.sessions[(first + i) % count].grab();
  }

  private listenToAwaitedJobs(): void {
    if (this.stopListening) return;
    this.lent = 0;
    for (const name of this.registrations.keys()) this.lent += awaitedJobs(name);
    this.stopListening = onAwaitedJobs((functionName, change) => {
      if (!this.registrations.has(functionName)) return;
      this.lent += change;
      if (change > 0) this.grabEverywhere();
    });
  }

  private stopListeningToAwaitedJobs(): void {
    this.stopListening?.();
    this.stopListening = undefined;
    this.lent = 0;
  }

  private onReconnecting(session: WorkerSession, delayMs: number): void {
    const error = session.connection.lastError;
    // The first failed attempt of a server never connected yet (started before its job server) is worth a warning.
    if (this.state === 'started' && !this.down.has(session.label) && error) {
      this.down.set(session.label, 'not reached');
      this.logger.warn(`GearmanWorker: cannot reach ${session.label} yet (${error.code}: ${error.message}); retrying`);
    } else {
      this.logger.debug?.(`GearmanWorker: reconnecting to ${session.label} in ${delayMs} ms`);
    }
    this.emit('reconnecting', session.label, delayMs);
  }

  private async drainAndClose(): Promise<void> {
    this.state = 'stopping';
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, this.stopTimeoutMs);
      this.idleWaiters.push(() => {
        clearTimeout(timer);
        resolve();
      });
      this.checkIdle();
    });
    this.state = 'stopped';
    this.stopListeningToAwaitedJobs();
    const reason = new GearmanConnectionError('Worker stopped');
    await Promise.all(this.sessions.map((session) => session.connection.end(reason)));
  }

  private checkIdle(): void {
    if (this.state !== 'stopping' || !this.sessions.every((session) => session.isIdle)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private jobFinished(job: WorkerJob): void {
    if (!this.observer) return;
    const seconds = (performance.now() - job.receivedAt) / 1000;
    // A job past its timeoutMs was ended by this worker (see expire), with the timeout as the reason.
    const timedOut = job.abortedWith instanceof GearmanJobTimeoutError;
    this.observer.jobEnded(job.functionName, timedOut ? 'timeout' : (job.outcome ?? 'abandoned'), seconds);
  }

  private runJob(job: WorkerJob): void {
    this.observer?.jobStarted(job.functionName);
    const registration = this.registrations.get(job.functionName);
    if (!registration) {
      this.logger.warn(`GearmanWorker: got job ${job.handle} of ${job.functionName}, which is not registered; failing it`);
      job.fail();
      return;
    }
    const { timeoutMs } = registration;
    let timer: NodeJS.Timeout | undefined;
    if (timeoutMs !== undefined) {
      timer = setTimeout(() => this.expire(job, timeoutMs), timeoutMs);
      job.onEnd(() => clearTimeout(timer));
    }
    let result: unknown;
    try {
      this.recorder?.started(job);
      if (this.listenerCount('job') > 0) this.emit('job', job);
      result = registration.handler(job);
    } catch (error) {
      this.finishWithError(job, error);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        (value) => this.finishWithResult(job, value),
        (error: unknown) => this.finishWithError(job, error),
      );
    } else {
      this.finishWithResult(job, result);
    }
  }

  /** The job ran past its timeout: abort its signal (whose listeners may end it their way), else end it with the timeout error. */
  private expire(job: WorkerJob, timeoutMs: number): void {
    if (job.isDone) return;
    const error = new GearmanJobTimeoutError(job.functionName, timeoutMs, job.handle);
    this.logger.warn(`GearmanWorker: ${error.message}; the job ends and its slot is free (the handler may still be running)`);
    job.abort(error);
    if (!job.isDone) this.endWithException(job, error.message);
  }

  private finishWithResult(job: WorkerJob, value: unknown): void {
    if (job.isDone) return;
    if (value === undefined || value === null) job.complete();
    else if (typeof value === 'string' || Buffer.isBuffer(value)) job.complete(value);
    else if (value instanceof Uint8Array) job.complete(Buffer.from(value.buffer, value.byteOffset, value.byteLength));
    else {
      const message = `The handler of ${job.functionName} returned ${describe(value)}; return a Buffer or a string, or end the job itself`;
      this.logger.error(`GearmanWorker: ${message}`);
      job.exception(message);
    }
  }

  private finishWithError(job: WorkerJob, error: unknown): void {
    const message = error instanceof Error ? error.message : String(error);
    if (job.isDone) {
      // A timed-out job's handler failing later is the expected end of the story.
      if (!(job.abortedWith instanceof GearmanJobTimeoutError))
        this.logger.error(`GearmanWorker: the handler of ${job.functionName} threw after job ${job.handle} ended: ${message}`);
      return;
    }
    this.logger.warn(`GearmanWorker: job ${job.handle} (${job.functionName}) threw: ${message}`);
    this.endWithException(job, message);
  }

  /** WORK_EXCEPTION with the message, or with exceptions off WORK_WARNING with it then WORK_FAIL. */
  private endWithException(job: WorkerJob, message: string): void {
    if (this.exceptions) {
      job.exception(message);
    } else {
      job.sendWarning(message);
      job.fail();
    }
  }

  private reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.logger.error(`GearmanWorker: ${error.message}`);
  }
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === 'object' && value !== null && typeof (value as PromiseLike<unknown>).then === 'function';
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}
