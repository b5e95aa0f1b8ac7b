import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { awaitedJobEnded, awaitingJob } from '../common/awaited-jobs.js';
import { connectAny } from '../connection/connect-any.js';
import type { GearmanPeerOptions } from '../connection/peer-options.js';
import { resolveServerAddresses } from '../connection/server-address.js';
import { encodeRequest } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';
import { performance } from 'node:perf_hooks';
import { TrackedJob, type ClientJob } from './client-job.js';
import { clientJobOutcome, type GearmanClientObserver } from './client-observer.js';
import { ClientSession, type ClientSessionOwner } from './client-session.js';
import { DEFAULT_MAX_QUEUED_BYTES } from '../common/defaults.js';
import { GearmanConnectionError, GearmanResultsUnavailableError } from '../common/errors.js';
import { BATCH_CANCEL_FUNCTION, BATCH_FUNCTION, checkBatchUnique, encodeBatchRequest, type BatchRequest } from '../protocol/batch.js';
import { checkJobId, encodeResultRequest, RESULT_FUNCTION, type ResultRequest } from '../protocol/result-fetch.js';
import type { JobResult } from './job-result.js';
import { JobWatch, ResultFetch } from './result-watch.js';
import type { JobStatus, UniqueJobStatus } from './job-status.js';
import { defaultLogger, type GearmanLogger } from '../common/logger.js';
import { ServerSelector } from './server-selector.js';
import { epochSeconds, submitPacketType, type SubmitOptions } from './submit-options.js';

export interface GearmanClientOptions extends GearmanPeerOptions {
  /**
   * Bytes of requests held in memory per connection while its socket is backed up (the job server
   * reads slower than jobs are submitted); default 64 MiB. Past it a submit fails at once with
   * GearmanQueueFullError. `needsDrain` and the 'drain' event let a producer wait instead.
   */
  maxQueuedBytes?: number;
  /**
   * Ask each server for WORK_EXCEPTION packets (OPTION_REQ `exceptions`) before any submit; default true.
   * Without it the server reports a worker's exception as a plain WORK_FAIL.
   */
  exceptions?: boolean;
  /** Told of every job submitted and how it ended (metrics: see `GearmanMetrics`). */
  observer?: GearmanClientObserver;
  /**
   * On a connection that sent no request for this long, an ECHO_REQ, so that a job server that
   * closes idle connections (ours after 5 minutes by default, `idleTimeoutMs`) keeps it open;
   * default 60 000 ms, 0 turns it off.
   */
  heartbeatMs?: number;
}

export const DEFAULT_HEARTBEAT_MS = 60_000;

/** A background job the server has queued. */
export interface BackgroundJob {
  /** The handle from JOB_CREATED (a server's counter: a restarted server hands out new ones). */
  readonly handle: string;
  /** The unique id it was queued under: the caller's, or the generated one. Stable across server restarts. */
  readonly unique: string;
}

/** How long `waitForResult` and `followResult` wait for a job to end unless told otherwise. */
export const DEFAULT_RESULT_TIMEOUT_MS = 60_000;

/** Options of `waitForResult` and `followResult`. */
export interface WaitForResultOptions {
  /** Give up after this long (rejecting with GearmanResultTimeoutError); default 60 000 ms. */
  timeoutMs?: number;
}

/** Options of `watchResult`. */
export interface WatchResultOptions extends WaitForResultOptions {
  /** Emit the job's WORK_STATUS, WORK_WARNING and WORK_DATA while waiting; default false. */
  follow?: boolean;
}

/**
 * A Gearman client: submits jobs and asks about them, over one connection per job server.
 * Events: 'connect' (server), 'disconnect' (server, error?), 'reconnecting' (server, delayMs),
 * 'drain' (after `needsDrain` was true, once it is false again), 'error' (Error; logged instead
 * when nobody listens). Losing a job server and getting it back are also logged as warnings.
 */
export class GearmanClient extends EventEmitter {
  private readonly sessions: ClientSession[];
  private readonly selector: ServerSelector<ClientSession>;
  private readonly logger: GearmanLogger;
  private readonly observer: GearmanClientObserver | undefined;
  private closing: Promise<void> | undefined;
  /** Servers lost since they were last connected: getting one back is logged. */
  private readonly lost = new Set<string>();

  constructor(options: GearmanClientOptions = {}) {
    super();
    this.logger = options.logger ?? defaultLogger;
    this.observer = options.observer;
    const maxQueuedBytes = options.maxQueuedBytes ?? DEFAULT_MAX_QUEUED_BYTES;
    const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
    if (!Number.isInteger(heartbeatMs) || heartbeatMs < 0) {
      throw new TypeError(`heartbeatMs must be a whole number of ms ≥ 0, got ${String(options.heartbeatMs)}`);
    }
    if (!Number.isInteger(maxQueuedBytes) || maxQueuedBytes < 0) {
      throw new TypeError(`maxQueuedBytes must be a whole number ≥ 0, got ${String(options.maxQueuedBytes)}`);
    }
    const connectionOptions = {
      connectTimeoutMs: options.connectTimeoutMs,
      reconnect: options.reconnect,
      keepAliveMs: options.keepAliveMs,
      maxPacketSize: options.maxPacketSize,
    };
    const owner: ClientSessionOwner = {
      sessionConnected: (session) => {
        if (this.lost.delete(session.label)) this.logger.warn(`GearmanClient: reconnected to ${session.label}`);
        this.emit('connect', session.label);
      },
      sessionDrained: () => {
        if (!this.needsDrain) this.emit('drain');
      },
      sessionDisconnected: (session, error) => {
        if (this.closing) return;
        this.lost.add(session.label);
        const next = session.connection.isWanted ? '; reconnecting' : '';
        this.logger.warn(`GearmanClient: lost the connection to ${session.label} (${error.code}: ${error.message})${next}`);
        this.emit('disconnect', session.label, error);
      },
      sessionReconnecting: (session, delayMs) => {
        this.logger.debug?.(`GearmanClient: reconnecting to ${session.label} in ${delayMs} ms`);
        this.emit('reconnecting', session.label, delayMs);
      },
      sessionError: (_session, error) => this.reportError(error),
    };
    this.sessions = resolveServerAddresses(options.servers, options.tls).map(
      (address) =>
        new ClientSession(address, connectionOptions, owner, options.clientId, options.exceptions ?? true, maxQueuedBytes, heartbeatMs),
    );
    this.selector = new ServerSelector(this.sessions);
  }

  /** The servers (`host:port`) connected now, in the order they were given. */
  get connectedServers(): string[] {
    return this.sessions.filter((session) => session.isConnected).map((session) => session.label);
  }

  /**
   * Whether requests made now would wait in memory: a connection's socket is backed up because its
   * job server reads slower than jobs are submitted. A producer that waits for 'drain' while this is
   * true keeps memory bounded by the socket buffers; one that does not is stopped by `maxQueuedBytes`.
   */
  get needsDrain(): boolean {
    return this.sessions.some((session) => session.needsDrain);
  }

  /** Resolves when at least one server is connected; rejects with GearmanConnectionError when none can be reached. */
  connect(): Promise<void> {
    if (this.closing) return Promise.reject(this.closedError());
    return connectAny(this.sessions.map((session) => session.connection));
  }

  /** Closes every connection; jobs still in flight fail with GearmanConnectionError('client closed'). Safe twice. */
  close(): Promise<void> {
    this.closing ??= Promise.all(this.sessions.map((session) => session.connection.end(this.closedError()))).then(() => undefined);
    return this.closing;
  }

  /** Submits a foreground job; connects first when needed. */
  submitJob(functionName: string, data: Buffer | string, options: SubmitOptions = {}): ClientJob {
    const unique = options.unique ?? '';
    if (typeof unique !== 'string') {
      const job = new TrackedJob(functionName, String(unique), undefined, this.observer);
      job.fail(new TypeError(`unique must be a string, got ${typeof unique}`));
      return job;
    }
    let packet: Buffer;
    try {
      if (options.runAt !== undefined) throw new TypeError('runAt (an epoch job) is for background jobs only: use submitBackgroundJob');
      packet = encodeRequest(submitPacketType(options.priority, false), checkFunctionName(functionName), unique, checkData(data));
    } catch (error) {
      const refused = new TrackedJob(functionName, unique, undefined, this.observer);
      refused.fail(error as Error);
      return refused;
    }
    // Counted while it runs: a worker of this process serving the function lends it a slot.
    awaitingJob(functionName);
    const job = new TrackedJob(functionName, unique, () => awaitedJobEnded(functionName), this.observer);
    const session = this.closing ? undefined : this.selector.pick(unique, data);
    if (session) {
      session.submit(job, packet);
    } else {
      this.whenConnected(() => this.selector.pick(unique, data)).then(
        (picked) => picked.submit(job, packet),
        (error: Error) => job.fail(error),
      );
    }
    return job;
  }

  /**
   * Submits a background job; resolves with its handle once the server has queued it (JOB_CREATED).
   * Without a unique id the job gets a generated one (see `SubmitOptions.unique`); `submitBackground`
   * tells which. On a connected client the request is made at once, so `needsDrain` right after reflects it.
   */
  submitBackgroundJob(functionName: string, data: Buffer | string, options: SubmitOptions = {}): Promise<string> {
    return this.submitBackground(functionName, data, options).then((created) => created.handle);
  }

  /** `submitBackgroundJob`, resolving with the handle and the unique id the job was queued under (generated or given). */
  submitBackground(functionName: string, data: Buffer | string, options: SubmitOptions = {}): Promise<BackgroundJob> {
    const observer = this.observer;
    if (!observer) return this.queueBackground(functionName, data, options);
    const submittedAt = performance.now();
    observer.jobSubmitted(functionName, true);
    return this.queueBackground(functionName, data, options).then(
      (created) => {
        observer.jobEnded(functionName, true, 'completed', (performance.now() - submittedAt) / 1000);
        return created;
      },
      (error: unknown) => {
        observer.jobEnded(functionName, true, clientJobOutcome(error), (performance.now() - submittedAt) / 1000);
        throw error;
      },
    );
  }

  private queueBackground(functionName: string, data: Buffer | string, options: SubmitOptions): Promise<BackgroundJob> {
    let packet: Buffer;
    const given = options.unique ?? '';
    if (typeof given !== 'string') return Promise.reject(new TypeError(`unique must be a string, got ${typeof given}`));
    const unique = given === '' ? randomUUID() : given;
    try {
      if (options.runAt !== undefined) {
        if ((options.priority ?? 'normal') !== 'normal') throw new TypeError('An epoch job (runAt) always runs at normal priority');
        packet = encodeRequest(
          PacketType.SUBMIT_JOB_EPOCH,
          checkFunctionName(functionName),
          unique,
          String(epochSeconds(options.runAt)),
          checkData(data),
        );
      } else {
        packet = encodeRequest(submitPacketType(options.priority, true), checkFunctionName(functionName), unique, checkData(data));
      }
    } catch (error) {
      return Promise.reject(error);
    }
    // A generated id coalesces with nothing, so it does not steer the job: round-robin as before.
    const routing = given;
    const session = this.closing ? undefined : this.selector.pick(routing, data);
    const reply = session
      ? session.request(packet, PacketType.JOB_CREATED)
      : this.whenConnected(() => this.selector.pick(routing, data)).then((picked) => picked.request(packet, PacketType.JOB_CREATED));
    return reply.then(([handle]) => ({ handle: handle.toString('utf8'), unique }));
  }

  /**
   * GET_STATUS. A handle followed by this client is asked of its own server; any other handle of
   * every connected server, preferring the one that knows it.
   */
  async getStatus(handle: string): Promise<JobStatus> {
    const owner = this.sessions.find((session) => session.isConnected && session.hasJob(handle));
    if (owner) return owner.getStatus(handle);
    const answers = await this.askEveryServer((session) => session.getStatus(handle));
    return answers.find((status) => status.known) ?? answers[0];
  }

  /** GET_STATUS_UNIQUE, of every connected server, preferring the one that knows the unique id. */
  async getStatusUnique(unique: string): Promise<UniqueJobStatus> {
    const answers = await this.askEveryServer((session) => session.getStatusUnique(unique));
    return answers.find((status) => status.known) ?? answers[0];
  }

  /**
   * The state of a job, by the handle `submitBackgroundJob` returned or by its unique id: queued,
   * running (with progress), completed (with its result and WORK_DATA parts), failed (with the error
   * a foreground job would have failed with) or unknown. Asks every connected job server that keeps
   * results (`gearman.result`); rejects with GearmanResultsUnavailableError when none does (gearmand).
   */
  getResult(handleOrUnique: string): Promise<JobResult> {
    return this.fetchResult(handleOrUnique, { wait: false }).state;
  }

  /**
   * Resolves once the job has ended (completed or failed), or at once when it is unknown. The job
   * server checks and waits in one step, so a job that ends meanwhile is never missed. Rejects with
   * GearmanResultTimeoutError (its `lastState` says how far the job got) after `timeoutMs`.
   */
  waitForResult(handleOrUnique: string, options: WaitForResultOptions = {}): Promise<JobResult> {
    return this.watchResult(handleOrUnique, options).state;
  }

  /**
   * `waitForResult` as a `JobWatch`: `state` settles as waitForResult's promise, `release()` stops
   * waiting. With `follow`, it emits the job's WORK_STATUS ('status'), WORK_WARNING ('warning') and
   * WORK_DATA ('data') meanwhile (WORK_DATA parts sent before the watch started come first).
   */
  watchResult(handleOrUnique: string, options: WatchResultOptions = {}): JobWatch {
    return this.fetchResult(handleOrUnique, { wait: true, follow: options.follow === true }, options);
  }

  private fetchResult(id: string, asked: ResultRequest, options?: WaitForResultOptions): JobWatch {
    let request = asked;
    let payload: Buffer;
    try {
      // encodeResultRequest checks it.
      if (options) request = { ...asked, timeoutMs: options.timeoutMs ?? DEFAULT_RESULT_TIMEOUT_MS };
      if (typeof id !== 'string') throw new TypeError(`A job handle or unique id must be a string, got ${typeof id}`);
      payload = encodeResultRequest(id, request);
    } catch (error) {
      const watch = new JobWatch(String(id));
      watch.reject(error instanceof TypeError ? error : new TypeError((error as Error).message));
      return watch;
    }
    const fetch = new ResultFetch(new JobWatch(id), request);
    this.askForResult(fetch, encodeRequest(PacketType.SUBMIT_JOB, RESULT_FUNCTION, '', payload)).catch((error: Error) =>
      fetch.watch.reject(error),
    );
    return fetch.watch;
  }

  /**
   * Submits a background batch (`gearman.batch`) to the job server its unique id hashes to, which
   * coordinates it: one background job of `request.function` per item, then the gather step. Resolves
   * with the batch's handle and unique id (generated when not given; at most 48 bytes) once the job
   * server has taken it. Rejects with GearmanResultsUnavailableError when that server does not keep
   * results (gearmand: batches there need a result store, see ClientGearman.emitBatch).
   */
  async submitBatch(
    request: BatchRequest,
    items: readonly Buffer[],
    options: { unique?: string } = {},
  ): Promise<{ handle: string; unique: string }> {
    const unique = checkBatchUnique(options.unique ?? randomUUID());
    const payload = encodeBatchRequest(request, items);
    const session = await this.whenConnected(() => this.selector.pick(unique, payload));
    if (!(await session.supportsResults())) throw new GearmanResultsUnavailableError([session.label]);
    const [handle] = await session.request(
      encodeRequest(PacketType.SUBMIT_JOB_BG, BATCH_FUNCTION, unique, payload),
      PacketType.JOB_CREATED,
    );
    return { handle: handle.toString('utf8'), unique };
  }

  /**
   * Cancels a batch by its handle or unique id (`gearman.batch.cancel`, asked of every server that
   * keeps results): it fails, and its items not started yet never run. Resolves with whether a
   * batch was cancelled (false: it had ended, or no server knows it).
   */
  async cancelBatch(handleOrUnique: string): Promise<boolean> {
    try {
      checkJobId(handleOrUnique);
    } catch (error) {
      throw new TypeError((error as Error).message, { cause: error });
    }
    const keeping = await this.resultServers();
    const packet = encodeRequest(PacketType.SUBMIT_JOB, BATCH_CANCEL_FUNCTION, '', handleOrUnique);
    const answers = await Promise.all(
      keeping.map((session) => {
        const job = new TrackedJob(BATCH_CANCEL_FUNCTION, '');
        session.submit(job, packet);
        return job.result;
      }),
    );
    return answers.some((answer) => answer.toString('latin1') === '1');
  }

  /**
   * The servers to ask about a job: every one connected that keeps results, once those still
   * making their first connection have got there (or failed): the job may be on any of them.
   * Throws GearmanResultsUnavailableError when none keeps results.
   */
  private async resultServers(): Promise<ClientSession[]> {
    await this.whenConnected(() => this.sessions.find((session) => session.isConnected));
    await Promise.allSettled(this.sessions.map((session) => session.connection.pendingAttempt));
    const connected = this.sessions.filter((session) => session.isConnected);
    const keeps = await Promise.all(connected.map((session) => session.supportsResults().catch(() => false)));
    const keeping = connected.filter((_session, index) => keeps[index]);
    if (keeping.length === 0) throw new GearmanResultsUnavailableError(connected.map((session) => session.label));
    return keeping;
  }

  /** Submits the fetch to every connected server that keeps results. */
  private async askForResult(fetch: ResultFetch, packet: Buffer): Promise<void> {
    const keeping = await this.resultServers();
    for (const session of keeping) {
      const job = new TrackedJob(RESULT_FUNCTION, '');
      fetch.track(job);
      session.submit(job, packet);
    }
    fetch.expect(keeping.length);
  }

  /** ECHO_REQ to one server; resolves with the echoed bytes. */
  async echo(data: Buffer | string): Promise<Buffer> {
    const session = await this.whenConnected(() => this.selector.pick('', data));
    return session.echo(checkData(data));
  }

  private async askEveryServer<T>(ask: (session: ClientSession) => Promise<T>): Promise<T[]> {
    await this.whenConnected(() => this.sessions.find((session) => session.isConnected));
    return Promise.all(this.sessions.filter((session) => session.isConnected).map(ask));
  }

  /** A connected session from pick(), connecting first when none is up. */
  private async whenConnected(pick: () => ClientSession | undefined): Promise<ClientSession> {
    if (this.closing) throw this.closedError();
    let session = pick();
    if (session) return session;
    await this.connect();
    if (this.closing) throw this.closedError();
    session = pick();
    if (!session) throw new GearmanConnectionError('No job server is connected');
    return session;
  }

  private closedError(): GearmanConnectionError {
    return new GearmanConnectionError('Client closed');
  }

  private reportError(error: Error): void {
    if (this.listenerCount('error') > 0) this.emit('error', error);
    else this.logger.error(`GearmanClient: ${error.message}`);
  }
}

function checkFunctionName(name: string): string {
  if (typeof name !== 'string' || name.length === 0) throw new TypeError('A function name must be a non-empty string');
  return name;
}

function checkData(data: Buffer | string): Buffer | string {
  if (typeof data !== 'string' && !Buffer.isBuffer(data)) {
    throw new TypeError(`Job data must be a Buffer or a string, got ${data === null ? 'null' : typeof data}`);
  }
  return data;
}
