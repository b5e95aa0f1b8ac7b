import {
  Server,
  type CustomTransportStrategy,
  type Deserializer,
  type MessageHandler,
  type OutgoingResponse,
  type ReadPacket,
  type Serializer,
  type Transport,
  type WritePacket,
} from '@nestjs/microservices';
import { isObservable, lastValueFrom, type Observable, type Subscription } from 'rxjs';
import { GearmanJobTimeoutError } from '../common/errors.js';
import { GearmanClient } from '../client/gearman-client.js';
import { BATCH_FUNCTION } from '../protocol/batch.js';
import { sealEnvelope, type EnvelopeMetadata } from '../protocol/envelope.js';
import type { BatchSubmitter, GearmanResultStore } from '../results/result-store.js';
import { GearmanWorker, type GearmanWorkerOptions } from '../worker/gearman-worker.js';
import type { WorkerJob, WorkerJobRecorder } from '../worker/worker-job.js';
import { ClientGearman } from './client-gearman.js';
import { checkJobTimeout, JOB_TIMEOUT_EXTRA } from './gearman-job-timeout.decorator.js';
import { RETRY_EXTRA } from './gearman-retry.decorator.js';
import { GearmanContext } from './gearman.context.js';
import { GEARMAN_TRANSPORT, GearmanStatus, type GearmanEventsMap } from './gearman-status.js';
import { openJobPayload } from './job-metadata.js';
import { endSpan, isTracingActive, loadOpenTelemetry, startServerSpan, type OpenTelemetryApi } from './open-telemetry.js';
import { decodePayload, encodePayload } from './payload-codec.js';
import { checkRetryOptions, readRetryEnvelope, retryDelayMs, retryUnique, type GearmanRetryOptions } from './retry-policy.js';
import { INTERNAL_SERVER_ERROR, NO_MESSAGE_HANDLER, toWireError } from './wire-errors.js';

export interface GearmanServerOptions extends GearmanWorkerOptions {
  /**
   * Jobs this app runs at once, over all its job-server connections; default 64, so that a slow
   * or stuck handler never holds up the others (why 64: docs/nest-transport.md, Concurrency).
   * Jobs a client of this same process waits for (a handler or an HTTP route calling a pattern this
   * app serves) get a slot of their own on top. `concurrency: 1` is Gearman's classic flow: one
   * job at a time, scaled by running more processes.
   */
  concurrency?: number;
  /**
   * Time limit of every job, in ms; default none (0). A job still running past it ends with a
   * `GearmanJobTimeoutError` for its caller, its `AbortSignal` (`ctx.getSignal()`) is aborted, a
   * warning is logged and its slot is free for the next job. One pattern sets its own with
   * `@GearmanJobTimeout(ms)` or `@MessagePattern(pattern, { jobTimeoutMs })`.
   */
  jobTimeoutMs?: number;
  /** Shapes each outgoing reply packet (`{ response }` / `{ err }`) before it is encoded. */
  serializer?: Serializer;
  /** Shapes each incoming job (`{ pattern, data }`, data decoded by the payload rules) before routing. */
  deserializer?: Deserializer;
  /**
   * With `@opentelemetry/api` installed (default true): run each handler in a span that continues
   * the trace the job carried. false: no spans, whatever is installed.
   */
  openTelemetry?: boolean;
  /**
   * Where each job's state and outcome are recorded for clients to fetch later, when the job servers
   * keep none (gearmand), e.g. a `RedisResultStore` shared with the clients. Jobs with a unique id are
   * recorded (background jobs from this package's clients always have one); the outcome is written
   * before the job server hears that the job ended.
   */
  resultStore?: GearmanResultStore;
  /**
   * The client handlers split their jobs with (`ctx.sendBatch()` / `ctx.emitBatch()`) and that
   * submits a batch's jobs; `GearmanModule` gives its own. Default: one of the strategy's own,
   * connected like its worker, opened on first use and closed with it.
   */
  client?: ClientGearman;
}

type PendingListener = { event: string; callback: (...args: any[]) => void };

/**
 * Jobs a `ServerGearman` runs at once unless told otherwise. Measured (docs/nest-transport.md,
 * bench/concurrency.bench.mjs): the smallest limit at which an app serves 64 callers of an I/O-bound
 * handler at once, while four apps still share a burst of jobs evenly.
 */
export const DEFAULT_SERVER_CONCURRENCY = 64;

/**
 * The Gearman transport strategy. Every `@MessagePattern` / `@EventPattern` becomes a Gearman
 * function named by the normalised pattern; the jobs the job server hands out run the handlers, and
 * each job ends with the handler's outcome:
 *
 * - a value: WORK_COMPLETE with it; an Observable: its values as WORK_DATA, the last one as the
 *   job's WORK_COMPLETE (no value at all: an empty WORK_COMPLETE). Values that follow each other
 *   within one turn of the event loop leave together, the last held back for WORK_COMPLETE; a
 *   value the stream emits and then waits after goes out at once as WORK_DATA, and WORK_COMPLETE
 *   then repeats it (ClientGearman knows a repeat from its bytes, and does not emit it twice);
 * - an error: WORK_EXCEPTION with the error as Nest's exception filters shaped it (job servers turn it
 *   into WORK_FAIL for clients that did not ask for exceptions);
 * - an event handler: an empty WORK_COMPLETE once it finished, WORK_EXCEPTION when it failed —
 *   unless a retry policy (`@EventPattern(name, { retry })`, or the caller's `setRetry`) has attempts
 *   left: the next attempt is queued first, then this one ends with WORK_FAIL (see retry-policy.ts).
 */
export class ServerGearman extends Server<GearmanEventsMap, GearmanStatus> implements CustomTransportStrategy {
  override transportId: Transport | symbol = GEARMAN_TRANSPORT;
  /** An event handler's failure ends its Gearman job with WORK_EXCEPTION (and is logged here). */
  override readonly propagatesEventHandlerErrors = true;

  private worker: GearmanWorker | undefined;
  private otel: OpenTelemetryApi | undefined;
  private pendingListeners: PendingListener[] = [];
  /** Reply streams still running (with what settles their job), ended by close() once the worker gave up on them. */
  private readonly replyStreams = new Map<Subscription, () => void>();
  /** Retry policies of event patterns, from `@EventPattern(name, { retry })`. */
  private readonly patternRetries = new Map<MessageHandler, GearmanRetryOptions>();
  /** Submits retries; made at the first one. */
  private retryClient: GearmanClient | undefined;
  /** Wake-ups of this worker when a delayed retry it queued falls due (gearmand 1.1 wakes nobody for it). */
  private readonly retryWakeups = new Set<NodeJS.Timeout>();
  /** The client of `client()` when the options gave none. */
  private ownClient: ClientGearman | undefined;
  /** What the result store records this worker's jobs with, when there is a store. */
  private recorder: WorkerJobRecorder | undefined;
  /** Submits a batch's item and gather jobs (gearmand deployments with a result store). */
  private readonly submitter: BatchSubmitter = {
    submitBackground: async (functionName, data, { unique, priority }) =>
      (await this.client().connect()).submitBackgroundJob(functionName, data, { unique, priority }),
  };

  constructor(private readonly options: GearmanServerOptions = {}) {
    super();
    if (options.jobTimeoutMs !== undefined) checkJobTimeout(options.jobTimeoutMs, 'ServerGearman jobTimeoutMs');
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      this.readPatternRetries();
      if (this.options.openTelemetry !== false) this.otel = await loadOpenTelemetry();
      const worker = this.createWorker();
      for (const [functionName, handler] of this.messageHandlers) {
        const timeoutMs = this.jobTimeoutOf(functionName, handler);
        worker.register(functionName, (job) => this.handleJob(job, timeoutMs > 0), timeoutMs > 0 ? { timeoutMs } : {});
      }
      const store = this.options.resultStore;
      // gearmand keeps no batches: with a result store, these workers coordinate them.
      if (store) worker.register(BATCH_FUNCTION, async (job) => void (await store.startBatch(job, this.submitter)));
      await worker.start();
    } catch (error) {
      this._status$.next(GearmanStatus.DISCONNECTED);
      return callback(error);
    }
    this._status$.next(GearmanStatus.CONNECTED);
    callback();
  }

  /**
   * Stops taking jobs, lets the jobs in flight finish (up to the worker's `stopTimeoutMs`), then
   * disconnects; reply streams still running then are unsubscribed (the job server requeues their jobs).
   */
  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    this.pendingListeners = [];
    if (!worker) return;
    await worker.stop();
    for (const [subscription, settle] of this.replyStreams) {
      subscription.unsubscribe();
      settle();
    }
    for (const timer of this.retryWakeups) clearTimeout(timer);
    this.retryWakeups.clear();
    const retryClient = this.retryClient;
    this.retryClient = undefined;
    await retryClient?.close();
    const own = this.ownClient;
    this.ownClient = undefined;
    await own?.close();
    this._status$.next(GearmanStatus.DISCONNECTED);
  }

  on<K extends keyof GearmanEventsMap>(event: K, callback: GearmanEventsMap[K]): void {
    if (this.worker) this.worker.on(event, callback);
    else this.pendingListeners.push({ event, callback });
  }

  /** The underlying `GearmanWorker`. */
  unwrap<T = GearmanWorker>(): T {
    if (!this.worker) {
      throw new Error('Not initialized. Please call the "listen"/"startAllMicroservices" method before accessing the server.');
    }
    return this.worker as T;
  }

  /** The client handlers split jobs with: the one given in the options, or the strategy's own. */
  client(): ClientGearman {
    if (this.options.client) return this.options.client;
    this.ownClient ??= new ClientGearman({ ...this.connectionOptions(), resultStore: this.options.resultStore });
    return this.ownClient;
  }

  /** How a client of this strategy's job servers connects (its own client, the retries' client). */
  private connectionOptions() {
    const { servers, tls, connectTimeoutMs, reconnect, keepAliveMs, clientId, maxPacketSize } = this.options;
    return { servers, tls, connectTimeoutMs, reconnect, keepAliveMs, clientId, maxPacketSize };
  }

  private createWorker(): GearmanWorker {
    const {
      serializer: _serializer,
      deserializer: _deserializer,
      jobTimeoutMs: _jobTimeoutMs,
      openTelemetry: _openTelemetry,
      resultStore,
      client: _client,
      ...workerOptions
    } = this.options;
    this.recorder = resultStore?.recorder(this.submitter);
    const worker = new GearmanWorker({
      logger: this.logger,
      concurrency: DEFAULT_SERVER_CONCURRENCY,
      recorder: this.recorder,
      ...workerOptions,
    });
    worker.on('connect', () => this._status$.next(GearmanStatus.CONNECTED));
    worker.on('disconnect', () => this._status$.next(GearmanStatus.DISCONNECTED));
    worker.on('reconnecting', () => this._status$.next(GearmanStatus.RECONNECTING));
    worker.on('error', (error: Error) => this.logger.error(error.message, error.stack));
    for (const { event, callback } of this.pendingListeners) worker.on(event, callback);
    this.pendingListeners = [];
    this.worker = worker;
    return worker;
  }

  /** The pattern's own timeout (its extras), else the transport's; 0 when none. */
  private jobTimeoutOf(functionName: string, handler: MessageHandler): number {
    const own = (handler.extras as Record<string, unknown> | undefined)?.[JOB_TIMEOUT_EXTRA];
    if (own === undefined) return this.options.jobTimeoutMs ?? 0;
    checkJobTimeout(own, `The ${JOB_TIMEOUT_EXTRA} of ${functionName}`);
    return own;
  }

  /** Checks `retry` in each handler's extras, once, so that a bad policy stops listen() instead of a job. */
  private readPatternRetries(): void {
    this.patternRetries.clear();
    for (const [pattern, handler] of this.messageHandlers) {
      const retry = (handler.extras as Record<string, unknown> | undefined)?.[RETRY_EXTRA] as GearmanRetryOptions | undefined;
      if (retry === undefined) continue;
      if (!handler.isEventHandler) {
        throw new TypeError(`Pattern ${pattern}: retry is for @EventPattern handlers (background jobs), not @MessagePattern`);
      }
      this.patternRetries.set(handler, checkRetryOptions(retry, `Pattern ${pattern}`));
    }
  }

  /** Runs one job to its end; the worker counts it in flight until this settles. */
  private async handleJob(job: WorkerJob, timed: boolean): Promise<void> {
    // Past its timeout the worker aborts the signal: the job ends with the timeout error, Nest-shaped.
    if (timed) job.signal.addEventListener('abort', () => this.onTimeout(job), { once: true });
    try {
      // An item of a batch that failed, was cancelled, or already ended (a re-run after a crash) does not run again.
      if (this.options.resultStore && !(await this.options.resultStore.shouldRun(job))) return job.complete();
      // Nest clients may wrap the payload in an envelope (retry policy, metadata and trace context); plain clients never do.
      const { payload: body, envelope } = openJobPayload(job.data);
      const deserialized = this.deserializer.deserialize(
        { pattern: job.functionName, data: decodePayload(body) },
        { channel: job.functionName },
      );
      const packet: ReadPacket = deserialized instanceof Promise ? await deserialized : deserialized;
      const pattern = this.getPatternAsString(packet.pattern ?? job.functionName);
      // A function name is already a normalised route: look it up as is before parsing it as Nest does.
      const handler = this.messageHandlers.get(pattern) ?? this.getHandlerByPattern(pattern);
      if (!handler) {
        this.logger.error(`No handler for Gearman job ${job.handle} with pattern ${pattern}`);
        job.exception(encodePayload({ status: 'error', err: NO_MESSAGE_HANDLER }));
        return;
      }
      const context = new GearmanContext([job, pattern, envelope, () => this.client()]);
      const run = () =>
        handler.isEventHandler ? this.runEvent(handler, packet, context, body) : this.runRequest(handler, packet, context, timed);
      const otel = this.otel && isTracingActive(this.otel) ? this.otel : undefined;
      const traced = otel ? this.traced(otel, context, handler.isEventHandler === true, run) : run;
      // A job that timed out has ended, whether or not its handler ever returns: so has its processing.
      await this.withProcessingHooks(context, timed ? () => Promise.race([traced(), aborted(job.signal)]) : traced);
    } catch (error) {
      this.endWithError(job, error);
    }
  }

  private async runRequest(handler: MessageHandler, packet: ReadPacket, context: GearmanContext, timed: boolean): Promise<void> {
    const job = context.getJob();
    let result: unknown;
    try {
      result = await handler(packet.data, context);
    } catch (error) {
      return this.endWithError(job, error);
    }
    // A plain value (no interceptor turned it into a stream) is the whole reply.
    if (!isObservable(result)) return this.sendPacket(job, { response: result, isDisposed: true });
    const reply$: Observable<unknown> = result;
    await new Promise<void>((resolve) => {
      /** The newest value, not sent yet: it ends the job if the stream completes before the next turn of the event loop. */
      let held: { value: unknown } | undefined;
      let sentAny = false;
      let settled = false;
      let flushScheduled = false;
      let subscribing = true;
      // Assigned after subscribe() returns: a stream that ends synchronously settles before that.
      let subscription: Subscription | undefined = undefined;
      const settle = () => {
        if (settled) return;
        settled = true;
        if (subscription) this.replyStreams.delete(subscription);
        resolve();
      };
      const sendHeld = () => {
        if (!held) return;
        const { value } = held;
        held = undefined;
        sentAny = true;
        this.sendPacket(job, { response: value });
      };
      const flush = () => {
        flushScheduled = false;
        if (!settled) sendHeld();
      };
      subscription = reply$.subscribe({
        next: (value) => {
          sendHeld();
          held = { value };
          // A stream that pauses after a value (a live feed) sends it now rather than at the next value.
          if (!subscribing && !flushScheduled) {
            flushScheduled = true;
            setImmediate(flush);
          }
        },
        error: (error: unknown) => {
          this.endWithError(job, error);
          settle();
        },
        complete: () => {
          if (held) this.sendPacket(job, { response: held.value, isDisposed: true });
          else if (sentAny) this.repeatLastData(job);
          else this.sendPacket(job, { response: undefined, isDisposed: true });
          settle();
        },
      });
      subscribing = false;
      if (settled) return;
      this.replyStreams.set(subscription, settle);
      if (held && !flushScheduled) {
        flushScheduled = true;
        setImmediate(flush);
      }
      if (timed) {
        const stream = subscription;
        job.signal.addEventListener('abort', () => {
          stream.unsubscribe();
          settle();
        });
      }
    });
  }

  private async runEvent(handler: MessageHandler, packet: ReadPacket, context: GearmanContext, body: Buffer): Promise<void> {
    const job = context.getJob();
    try {
      const result = await handler(packet.data, context);
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
    } catch (error) {
      if (await this.retryLater(handler, context, body, error)) return;
      this.logger.error(`Event handler for ${context.getPattern()} failed (job ${job.handle}): ${describeError(error)}`);
      return this.endWithError(job, error);
    }
    if (!job.isDone) job.complete();
  }

  /**
   * When the job's retry policy (the caller's, else the pattern's) has attempts left: queues the
   * next attempt, and only once the job server has it (JOB_CREATED: stored, with a persistent
   * queue) ends this one with WORK_FAIL. False when there is no retry to make or it could not be
   * queued; the job then fails for good.
   */
  private async retryLater(handler: MessageHandler, context: GearmanContext, body: Buffer, error: unknown): Promise<boolean> {
    const job = context.getJob();
    if (job.isDone) return false;
    const metadata: EnvelopeMetadata = context.getEnvelope();
    const carried = readRetryEnvelope(metadata.retry);
    const policy = carried ?? this.patternRetries.get(handler);
    if (!policy) return false;
    const attempt = carried?.attempt ?? 1;
    if (attempt >= policy.attempts) {
      this.logger.error(`Job ${job.handle} (${job.functionName}) failed its last attempt (${attempt} of ${policy.attempts})`);
      return false;
    }
    const origin = carried?.origin ?? { unique: job.unique || job.handle, handle: job.handle };
    const next = attempt + 1;
    const delayMs = retryDelayMs(policy.backoff, attempt);
    const retry = { attempts: policy.attempts, ...(policy.backoff ? { backoff: policy.backoff } : {}), attempt: next, origin };
    const unique = retryUnique(origin.unique, next);
    try {
      const payload = sealEnvelope({ ...metadata, retry }, body);
      // Job servers schedule in whole seconds: a wait rounds up, none at all queues at once.
      const runAt = delayMs > 0 ? Math.ceil((Date.now() + delayMs) / 1000) : undefined;
      await this.getRetryClient().submitBackgroundJob(job.functionName, payload, { unique, runAt });
      if (runAt !== undefined) this.wakeAt(runAt * 1000);
    } catch (submitError) {
      this.logger.error(`Job ${job.handle} (${job.functionName}): attempt ${next} could not be queued: ${describeError(submitError)}`);
      return false;
    }
    this.logger.warn(
      `Job ${job.handle} (${job.functionName}) attempt ${attempt} of ${policy.attempts} failed: ${describeError(error)}; attempt ${next} queued as ${unique}${delayMs > 0 ? ` to run in ${delayMs} ms` : ''}`,
    );
    if (!job.isDone) {
      // The job goes on in its next attempt: a result store must not take this WORK_FAIL for its end.
      this.recorder?.retrying?.(job);
      job.fail();
    }
    return true;
  }

  private wakeAt(epochMs: number): void {
    const timer = setTimeout(
      () => {
        this.retryWakeups.delete(timer);
        this.worker?.wake();
      },
      Math.max(0, epochMs - Date.now()) + RETRY_WAKE_MARGIN_MS,
    );
    timer.unref();
    this.retryWakeups.add(timer);
  }

  private getRetryClient(): GearmanClient {
    if (!this.retryClient) {
      this.retryClient = new GearmanClient({ ...this.connectionOptions(), logger: this.logger });
      this.retryClient.on('error', (error: Error) => this.logger.error(error.message, error.stack));
    }
    return this.retryClient;
  }

  /**
   * Encodes one reply packet and sends it: WORK_DATA, or WORK_COMPLETE when it is the last. A
   * WORK_COMPLETE whose bytes equal the last WORK_DATA's would read as its repeat to ClientGearman:
   * when it is a new value, it goes out as WORK_DATA first.
   */
  private sendPacket(job: WorkerJob, packet: WritePacket): void {
    if (job.isDone) return;
    try {
      const payload = this.encodeReply(packet, 'response');
      if (!packet.isDisposed) return job.sendData(payload);
      if (job.lastData !== undefined && payload.equals(Buffer.from(job.lastData))) job.sendData(payload);
      job.complete(payload);
    } catch (error) {
      this.endWithError(job, error);
    }
  }

  /** The stream's last value already went out as WORK_DATA: WORK_COMPLETE repeats it, so that plain clients get it as the result. */
  private repeatLastData(job: WorkerJob): void {
    if (!job.isDone) job.complete(job.lastData ?? '');
  }

  /** The worker gave up on a job past its timeout: it ends with the timeout error, as Nest's error shape. */
  private onTimeout(job: WorkerJob): void {
    const reason = job.abortedWith;
    if (reason instanceof GearmanJobTimeoutError) this.endWithError(job, reason);
  }

  private endWithError(job: WorkerJob, error: unknown): void {
    if (job.isDone) {
      // After a timeout the handler may well fail on its own (it was aborted): the timeout was the news.
      if (!(job.abortedWith instanceof GearmanJobTimeoutError)) {
        this.logger.error(`Gearman job ${job.handle} (${job.functionName}) failed after it ended: ${describeError(error)}`);
      }
      return;
    }
    // A timeout was logged by the worker already.
    if (error instanceof Error && !(error instanceof GearmanJobTimeoutError)) this.logger.error(error.message, error.stack);
    let payload: Buffer;
    try {
      payload = this.encodeReply({ err: toWireError(error), isDisposed: true }, 'err');
    } catch {
      payload = encodePayload(INTERNAL_SERVER_ERROR);
    }
    job.exception(payload);
  }

  /** Runs the serializer (it may reshape the packet, or return raw bytes), then the payload rules. */
  private encodeReply(packet: WritePacket, field: 'response' | 'err'): Buffer {
    const serialized = this.serializer.serialize(packet as OutgoingResponse);
    if (Buffer.isBuffer(serialized) || typeof serialized === 'string') return Buffer.from(serialized);
    return encodePayload((serialized as WritePacket)[field]);
  }

  /** Runs the job inside a span that continues the trace the job carried; the span ends with the job. */
  private traced(otel: OpenTelemetryApi, context: GearmanContext, event: boolean, work: () => Promise<void>): () => Promise<void> {
    return async () => {
      const job = context.getJob();
      const { span, context: spanContext } = startServerSpan(otel, job.functionName, job.handle, event, context.getMetadata());
      try {
        await otel.context.with(spanContext, work);
      } catch (error) {
        endSpan(otel, span, error);
        throw error;
      }
      endSpan(otel, span, job.outcome === 'completed' ? undefined : `the job ended ${job.outcome ?? 'without an answer'}`);
    };
  }

  /**
   * The processing start/end hooks (Nest 11.1.4+ and 12) around one job; the end hook runs once,
   * when the job has ended. Older Nest versions have neither hook, and the job simply runs.
   */
  private withProcessingHooks(context: GearmanContext, work: () => Promise<void>): Promise<void> {
    return new Promise<void>((resolve) => {
      const run = async () => {
        try {
          await work();
        } catch (error) {
          this.endWithError(context.getJob(), error);
        } finally {
          this.onProcessingEndHook?.(this.transportId!, context);
          resolve();
        }
      };
      if (typeof this.onProcessingStartHook === 'function') this.onProcessingStartHook(this.transportId!, context, run);
      else void run();
    });
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Past a retry's due second, so that the job server sees it due when asked. */
const RETRY_WAKE_MARGIN_MS = 50;

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
