import { EventEmitter } from 'node:events';
import { connectAny } from '../connection/connect-any.js';
import { resolveServerAddresses } from '../connection/server-address.js';
import { GearmanConnectionError } from '../common/errors.js';
import type { GearmanPeerOptions } from '../connection/peer-options.js';
import { defaultLogger, type GearmanLogger } from '../common/logger.js';
import { WorkerJob } from './worker-job.js';
import { WorkerSession, type RegisteredFunction, type WorkerSessionOwner } from './worker-session.js';

export interface GearmanWorkerOptions extends GearmanPeerOptions {
  /** Jobs in flight per server connection; default 1. */
  concurrency?: number;
  /** How long stop() waits for in-flight jobs before closing anyway (the server then requeues them); default 30 000 ms. */
  stopTimeoutMs?: number;
  /**
   * How a throwing handler ends its job. true (default): WORK_EXCEPTION with the error message.
   * false: WORK_WARNING with the message, then WORK_FAIL, which every client understands. Use false
   * with gearmand 1.1 when clients that do not ask for exceptions (the gearman CLI, Perl, PHP) call
   * this worker: gearmand 1.1 passes them a malformed WORK_FAIL in place of the exception.
   */
  exceptions?: boolean;
}

/** Runs one job. Its result completes the job unless the handler already ended it (see GearmanWorker). */
export type JobHandler = (job: WorkerJob) => unknown | Promise<unknown>;

interface Registration extends RegisteredFunction {
  readonly handler: JobHandler;
}

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
 * 'error' (Error; logged instead when nobody listens), 'job' (WorkerJob).
 */
export class GearmanWorker extends EventEmitter {
  private readonly registrations = new Map<string, Registration>();
  private readonly sessions: WorkerSession[];
  private readonly logger: GearmanLogger;
  private readonly stopTimeoutMs: number;
  private readonly exceptions: boolean;
  private state: WorkerState = 'created';
  private stopping: Promise<void> | undefined;
  private idleWaiters: (() => void)[] = [];

  constructor(options: GearmanWorkerOptions = {}) {
    super();
    const concurrency = options.concurrency ?? 1;
    if (!Number.isInteger(concurrency) || concurrency < 1)
      throw new TypeError(`concurrency must be a positive integer, got ${concurrency}`);
    this.logger = options.logger ?? defaultLogger;
    this.stopTimeoutMs = options.stopTimeoutMs ?? 30_000;
    if (!(this.stopTimeoutMs >= 0)) throw new TypeError(`stopTimeoutMs must be a number ≥ 0, got ${options.stopTimeoutMs}`);
    this.exceptions = options.exceptions ?? true;
    const connectionOptions = {
      connectTimeoutMs: options.connectTimeoutMs,
      reconnect: options.reconnect,
      keepAliveMs: options.keepAliveMs,
      maxPacketSize: options.maxPacketSize,
    };
    const owner: WorkerSessionOwner = {
      functions: this.registrations,
      concurrency,
      clientId: options.clientId,
      isStopping: () => this.state === 'stopping' || this.state === 'stopped',
      runJob: (job) => this.runJob(job),
      sessionConnected: (session) => this.emit('connect', session.label),
      sessionDisconnected: (session, error) => {
        if (this.state === 'started') this.emit('disconnect', session.label, error);
      },
      sessionReconnecting: (session, delayMs) => this.emit('reconnecting', session.label, delayMs),
      sessionError: (_session, error) => this.reportError(error),
      sessionIdle: () => this.checkIdle(),
    };
    this.sessions = resolveServerAddresses(options.servers, options.tls).map(
      (address) => new WorkerSession(address, connectionOptions, owner),
    );
  }

  /** Registers a handler (CAN_DO, or CAN_DO_TIMEOUT with timeoutMs); before or after start(). Replaces an earlier one. */
  register(functionName: string, handler: JobHandler, options: { timeoutMs?: number } = {}): void {
    if (typeof functionName !== 'string' || functionName.length === 0) throw new TypeError('A function name must be a non-empty string');
    if (typeof handler !== 'function') throw new TypeError(`The handler of ${functionName} must be a function`);
    const { timeoutMs } = options;
    if (timeoutMs !== undefined && (!Number.isInteger(timeoutMs) || timeoutMs < 1)) {
      throw new TypeError(`timeoutMs of ${functionName} must be a positive integer, got ${timeoutMs}`);
    }
    const registration: Registration = { handler, timeoutMs };
    this.registrations.set(functionName, registration);
    for (const session of this.sessions) session.announce(functionName, registration);
  }

  /** Stops taking jobs of a function (CANT_DO). */
  unregister(functionName: string): void {
    if (!this.registrations.delete(functionName)) return;
    for (const session of this.sessions) if (session.connection.isConnected) session.withdraw(functionName);
  }

  /**
   * Connects to every server, registers and starts grabbing. Resolves when at least one server is
   * connected (the others keep trying); rejects with GearmanConnectionError when none can be reached.
   */
  async start(): Promise<void> {
    if (this.state === 'stopping' || this.state === 'stopped') throw new GearmanConnectionError('Worker stopped');
    this.state = 'started';
    try {
      await connectAny(this.sessions.map((session) => session.connection));
    } catch (error) {
      if (this.state === 'started') this.state = 'created';
      throw error;
    }
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

  /** Jobs running now, over every connection. */
  get jobsInFlight(): number {
    return this.sessions.reduce((sum, session) => sum + session.jobsInFlight, 0);
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
    const reason = new GearmanConnectionError('Worker stopped');
    await Promise.all(this.sessions.map((session) => session.connection.end(reason)));
  }

  private checkIdle(): void {
    if (this.state !== 'stopping' || !this.sessions.every((session) => session.isIdle)) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private runJob(job: WorkerJob): void {
    const registration = this.registrations.get(job.functionName);
    if (!registration) {
      this.logger.warn(`GearmanWorker: got job ${job.handle} of ${job.functionName}, which is not registered; failing it`);
      job.fail();
      return;
    }
    let result: unknown;
    try {
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
      this.logger.error(`GearmanWorker: the handler of ${job.functionName} threw after job ${job.handle} ended: ${message}`);
      return;
    }
    this.logger.warn(`GearmanWorker: job ${job.handle} (${job.functionName}) threw: ${message}`);
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
