import { randomUUID } from 'node:crypto';
import { Logger } from '@nestjs/common';
import { ClientProxy, type Deserializer, type MsPattern, type ReadPacket, type Serializer, type WritePacket } from '@nestjs/microservices';
import { Observable, type Observer } from 'rxjs';
import type { ClientJob } from '../client/client-job.js';
import {
  DEFAULT_RESULT_TIMEOUT_MS,
  GearmanClient,
  type GearmanClientOptions,
  type WaitForResultOptions,
} from '../client/gearman-client.js';
import type { JobResult } from '../client/job-result.js';
import type { JobWatch } from '../client/result-watch.js';
import type { JobPriority, SubmitOptions } from '../client/submit-options.js';
import { BATCH_FUNCTION, checkBatchUnique, encodeBatchRequest } from '../protocol/batch.js';
import {
  GearmanBatchError,
  GearmanConnectionError,
  GearmanJobExceptionError,
  GearmanJobTimeoutError,
  GearmanJobUnknownError,
  GearmanResultTimeoutError,
} from '../common/errors.js';
import type { GearmanResultStore } from '../results/result-store.js';
import { toGearmanJobState, type GearmanBatchOutcome, type GearmanJobEvent, type GearmanJobState } from './gearman-job-state.js';
import { GearmanRecord } from './gearman-record-builder.js';
import { GearmanStatus, type GearmanEventsMap } from './gearman-status.js';
import { sealJobPayload, type GearmanJobMetadata } from './job-metadata.js';
import { endSpan, isTracingActive, loadOpenTelemetry, startClientSpan, type OpenTelemetryApi, type OtelSpan } from './open-telemetry.js';
import { decodePayload, encodePayload } from './payload-codec.js';
import { isJobTimeoutBody } from './wire-errors.js';

export interface GearmanClientProxyOptions extends GearmanClientOptions {
  /** Shapes each outgoing packet (`{ pattern, data, id? }`) before its `data` is encoded. */
  serializer?: Serializer;
  /** Shapes each incoming reply packet (`{ response, isDisposed? }` / `{ err }`) before it is emitted. */
  deserializer?: Deserializer;
  /**
   * Send metadata (trace context, a dispatch hook's `packet.metadata`, `GearmanRecordBuilder.setMetadata()`)
   * ahead of the payload in a job envelope, for the functions given: `true` for all, or a predicate
   * on the function name. Default false. Only `ServerGearman` reads envelopes: turn it on only for
   * functions Nest workers serve, since a plain Gearman worker (CLI, PHP, Perl) would see the
   * envelope's bytes ahead of the payload. Jobs without metadata go out bare either way.
   */
  envelope?: boolean | ((functionName: string) => boolean);
  /**
   * With `@opentelemetry/api` installed (default true): a span per job, a child of the active
   * context, whose trace context the envelope carries. false: no spans, whatever is installed.
   */
  openTelemetry?: boolean;
  /**
   * Where job results are kept when the job servers keep none (gearmand), e.g. a `RedisResultStore`:
   * `getResult()` and friends read it, and `emit()` records each job there as queued (with a
   * generated unique id when none is given) before it emits the handle. Without it, results are
   * fetched from the job servers (this package's job server keeps them).
   */
  resultStore?: GearmanResultStore;
}

/** A message pattern, as `send()` takes it: a string, a number, or an object (normalised as Nest does). */
export type GearmanPattern = string | number | Record<string, unknown>;

/** Options of `sendBatch()`. */
export interface GearmanBatchOptions {
  /** Items in flight at once; default 100. */
  concurrency?: number;
  /** Stop at the first failed item (the Observable errors with GearmanBatchError); default true. `false` emits every outcome. */
  failFast?: boolean;
}

export const DEFAULT_BATCH_CONCURRENCY = 100;

/** Options of `emitBatch()`. */
export interface GearmanEmitBatchOptions {
  /** The pattern whose handler receives the ordered outcomes (`{ index, value }` / `{ index, error }`); its result becomes the batch's. */
  gather?: GearmanPattern;
  /**
   * `true` (default): the batch fails at the first failed item, with that item's error, and the
   * items not started yet do not run. `false`: every item runs, and the failures are handed to the
   * gather step with the values.
   */
  failFast?: boolean;
  /** Priority of the item jobs and of the gather job; default normal. */
  priority?: JobPriority;
  /** At most this many items queued or running at once (this package's job server); default all. */
  concurrency?: number;
  /** The batch's unique id (at most 48 bytes); default a random UUID. */
  unique?: string;
}

type PendingListener = { event: string; callback: (...args: any[]) => void };

/**
 * The Gearman `ClientProxy`: `send()` submits a foreground job and streams its reply (each WORK_DATA
 * a value, WORK_COMPLETE the last value, WORK_FAIL / WORK_EXCEPTION an error); `emit()` submits a
 * background job and resolves once the job server has queued it. Per-message priority, unique id
 * and run time come from a `GearmanRecord` (see `GearmanRecordBuilder`).
 */
// Status stays `string` (as in `ClientProxy`) so that `ClientsModule.register({ customClass: ClientGearman })` type-checks.
export class ClientGearman extends ClientProxy<GearmanEventsMap> {
  protected readonly logger = new Logger(ClientProxy.name);
  private client: GearmanClient | undefined;
  private connecting: Promise<GearmanClient> | undefined;
  private listeners: PendingListener[] = [];
  private otel: OpenTelemetryApi | undefined;
  /** Keys of `routingMap`: only this process sees them, so a counter will do. */
  private lastRequestId = 0;

  constructor(protected readonly options: GearmanClientProxyOptions = {}) {
    super();
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
  }

  /** Connects once (later calls share the connection); rejects when no job server can be reached. */
  connect(): Promise<GearmanClient> {
    this.connecting ??= this.openClient();
    return this.connecting;
  }

  /** Closes the connection; replies still awaited end with a connection error. Connects again on the next call. */
  async close(): Promise<void> {
    const client = this.client;
    this.client = undefined;
    this.connecting = undefined;
    this.listeners = [];
    if (!client) return;
    await client.close();
    this._status$.next(GearmanStatus.DISCONNECTED);
  }

  override on<K extends keyof GearmanEventsMap>(event: K, callback: GearmanEventsMap[K]): void {
    // Kept until close(), so a client created by a later connect() gets it as well.
    this.listeners.push({ event, callback });
    this.client?.on(event, callback);
  }

  /** The underlying `GearmanClient`. */
  unwrap<T = GearmanClient>(): T {
    if (!this.client) throw new Error('Not initialized. Please call the "connect" method first.');
    return this.client as T;
  }

  protected publish(packet: ReadPacket, callback: (packet: WritePacket) => void): () => void {
    try {
      const { functionName, payload, options, background, span } = this.prepare(packet);
      const client = this.connectedClient();
      if (background) {
        this.submitBackground(client, functionName, payload, options, span).then(
          ({ handle }) => callback({ response: handle, isDisposed: true }),
          (error: unknown) => callback({ err: error, isDisposed: true }),
        );
        return () => undefined;
      }
      const id = String(++this.lastRequestId);
      const job = client.submitJob(functionName, payload, options);
      if (span)
        job.result.then(
          () => this.endSpan(span),
          (error: unknown) => this.endSpan(span, error),
        );
      this.routingMap.set(id, callback);
      this.routeReplies(id, job);
      return () => {
        if (this.routingMap.delete(id)) job.release();
      };
    } catch (error) {
      callback({ err: error, isDisposed: true });
      return () => undefined;
    }
  }

  protected async dispatchEvent<T = string>(packet: ReadPacket): Promise<T> {
    const { functionName, payload, options, span } = this.prepare(packet, true);
    const { handle } = await this.submitBackground(this.connectedClient(), functionName, payload, options, span);
    return handle as T;
  }

  /**
   * A background submit as every path makes it: recorded as queued in the result store (if any)
   * under the unique id the job got (generated when none was given), its span ended with it.
   */
  private async submitBackground(
    client: GearmanClient,
    functionName: string,
    payload: Buffer,
    options: SubmitOptions,
    span?: OtelSpan,
  ): Promise<{ handle: string; unique: string }> {
    try {
      const submitted = await client.submitBackground(functionName, payload, options);
      await this.options.resultStore?.jobQueued({ ...submitted, functionName });
      this.endSpan(span);
      return submitted;
    } catch (error) {
      this.endSpan(span, error);
      throw error;
    }
  }

  private endSpan(span: OtelSpan | undefined, error?: unknown): void {
    if (span && this.otel) endSpan(this.otel, span, error);
  }

  /**
   * The state of a background job, by the handle `emit()` gave or by its unique id: `queued`,
   * `running` (with progress), `completed` (with its value), `failed` (with the error a `send()` would
   * have reported) or `unknown`. Read from the result store when one is configured, else from the
   * job servers.
   */
  async getResult<T = unknown>(handleOrUnique: string): Promise<GearmanJobState<T>> {
    const store = this.options.resultStore;
    const result = store ? await store.get(handleOrUnique) : await (await this.connect()).getResult(handleOrUnique);
    return this.toState<T>(result);
  }

  /**
   * Resolves once the job has ended (`completed` or `failed`; `unknown` at once for an id nobody
   * knows). Checking and waiting are one step, so a job ending meanwhile is never missed. Rejects with
   * GearmanResultTimeoutError after `timeoutMs` (default 60 s); its `lastState` is the job's state then.
   */
  async waitForResult<T = unknown>(handleOrUnique: string, options: WaitForResultOptions = {}): Promise<GearmanJobState<T>> {
    await this.connectIfNeeded();
    try {
      return await this.toState<T>(await this.watch(handleOrUnique, options, false).state);
    } catch (error) {
      throw await this.withDecodedState(error);
    }
  }

  /**
   * Follows a background job by its handle or unique id, as `follow()` follows a foreground one:
   * progress, data and warnings as they happen, then its result (and completion), or its error as
   * `send()` would report it. An unknown job errors with GearmanJobUnknownError, a wait longer than
   * `timeoutMs` (default 60 s) with GearmanResultTimeoutError. Unsubscribing stops following.
   */
  followResult<T = unknown>(handleOrUnique: string, options: WaitForResultOptions = {}): Observable<GearmanJobEvent<T>> {
    return new Observable<GearmanJobEvent<T>>((subscriber) => {
      let watch: JobWatch | undefined;
      let stopped = false;
      this.connectIfNeeded()
        .then(() => {
          if (stopped) return;
          watch = this.watch(handleOrUnique, options, true);
          this.relayWatch(watch, subscriber);
        })
        .catch((error: unknown) => subscriber.error(error));
      return () => {
        stopped = true;
        watch?.release();
      };
    });
  }

  /**
   * Submits one job and follows it: an Observable of its events (`created` with the handle,
   * `progress`, each `data` value, `warning`s, then `result`, after which it completes), or an error
   * exactly as `send()` would report it. A background record (`setBackground()`) is followed through
   * its stored state. Cold, as `send()`: each subscription submits; unsubscribing releases the job.
   */
  follow<T = unknown>(pattern: GearmanPattern, data: unknown): Observable<GearmanJobEvent<T>> {
    return new Observable<GearmanJobEvent<T>>((subscriber) => {
      let job: ClientJob | undefined;
      let following: { unsubscribe(): void } | undefined;
      let stopped = false;
      this.connect()
        .then(async (client) => {
          if (stopped) return;
          const { functionName, payload, options, background, span } = this.prepare({ pattern, data }, this.isBackground(data));
          if (background) {
            const { handle, unique } = await this.submitBackground(client, functionName, payload, options, span);
            if (stopped) return;
            subscriber.next({ type: 'created', handle });
            following = this.followResult<T>(unique).subscribe(subscriber);
            return;
          }
          job = client.submitJob(functionName, payload, options);
          if (span)
            job.result.then(
              () => this.endSpan(span),
              (error: unknown) => this.endSpan(span, error),
            );
          this.relayJob(job, subscriber);
        })
        .catch((error: unknown) => subscriber.error(error));
      return () => {
        stopped = true;
        job?.release();
        following?.unsubscribe();
      };
    });
  }

  /**
   * Fan-out and gather on the caller's side: one foreground job per item (an item may be a
   * `GearmanRecord`), at most `concurrency` in flight, spread over every job server and so every
   * worker. Emits each item's outcome as it ends, `{ index, value }` or `{ index, error }` (the
   * error as `send()` reports it), and completes when all have ended (`toArray()` gathers them).
   * With `failFast` (default) the first failure errors the Observable with GearmanBatchError and
   * releases the rest. Unsubscribing releases the jobs in flight and submits no more.
   */
  sendBatch<T = unknown>(
    pattern: GearmanPattern,
    items: Iterable<unknown>,
    options: GearmanBatchOptions = {},
  ): Observable<GearmanBatchOutcome<T>> {
    return new Observable<GearmanBatchOutcome<T>>((subscriber) => {
      let list: unknown[];
      let concurrency: number;
      try {
        list = Array.from(items);
        concurrency = options.concurrency ?? DEFAULT_BATCH_CONCURRENCY;
        if (!Number.isInteger(concurrency) || concurrency < 1)
          throw new TypeError(`concurrency must be a whole number ≥ 1, got ${options.concurrency}`);
      } catch (error) {
        subscriber.error(error);
        return;
      }
      const failFast = options.failFast ?? true;
      const inFlight = new Set<ClientJob>();
      let next = 0;
      let ended = 0;
      let stopped = false;
      const stop = () => {
        stopped = true;
        for (const job of inFlight) job.release();
        inFlight.clear();
      };
      const outcome = (index: number, reply: { value: unknown } | { error: unknown }) => {
        if (stopped) return;
        ended++;
        if ('error' in reply && failFast) {
          stop();
          return subscriber.error(new GearmanBatchError(index, reply.error));
        }
        subscriber.next('error' in reply ? { index, error: reply.error } : { index, value: reply.value as T });
        if (ended === list.length) {
          stopped = true;
          return subscriber.complete();
        }
        fill();
      };
      let client: GearmanClient;
      const fill = () => {
        while (!stopped && next < list.length && inFlight.size < concurrency) {
          const index = next++;
          let job: ClientJob;
          try {
            const { functionName, payload, options: submit, span } = this.prepare({ pattern, data: list[index] }, false);
            job = client.submitJob(functionName, payload, submit);
            if (span)
              job.result.then(
                () => this.endSpan(span),
                (error: unknown) => this.endSpan(span, error),
              );
          } catch (error) {
            outcome(index, { error });
            continue;
          }
          inFlight.add(job);
          // The slot frees when the outcome is handed on, so unsubscribing after n outcomes stops the refills there.
          const settle = (reply: { data: Buffer } | { error: unknown }) => {
            if (stopped) return;
            void this.decodeReply(reply).then((decoded) => {
              inFlight.delete(job);
              outcome(index, decoded);
            });
          };
          job.result.then(
            (data) => settle({ data }),
            (error: unknown) => settle({ error }),
          );
        }
      };
      if (list.length === 0) {
        subscriber.complete();
        return;
      }
      this.connect().then(
        (connected) => {
          client = connected;
          fill();
        },
        (error: unknown) => {
          stopped = true;
          subscriber.error(error);
        },
      );
      return stop;
    });
  }

  /**
   * As Nest's: submits at once, and the Observable emits the job handle once the job server queued
   * the job. A job that could not be queued (no job server, a full queue) is also logged, so that
   * the failure shows even when nobody subscribed.
   */
  override emit<TResult = string, TInput = unknown>(pattern: unknown, data: TInput): Observable<TResult> {
    const queued = super.emit<TResult, TInput>(pattern, data);
    queued.subscribe({
      error: (error: unknown) => {
        const reason = error instanceof Error ? `${error.message}${'code' in error ? ` (${String(error.code)})` : ''}` : String(error);
        this.logger.error(`emit(${JSON.stringify(this.normalizePattern(pattern as string))}) could not queue its job: ${reason}`);
      },
    });
    return queued;
  }

  /**
   * A background batch that lives where the jobs do, not in the caller: resolves with the batch's
   * handle as soon as it is submitted. One job of `pattern` per item runs on whatever workers serve
   * it; when all have ended, the `gather` pattern (if any) receives the ordered outcomes and its
   * result becomes the batch's, otherwise the outcomes are. `getResult()` / `waitForResult()` /
   * `followResult()` take the batch handle (progress: items ended / total); `cancelBatch()` cancels.
   *
   * On this package's job server the server coordinates the batch (it survives the caller's exit,
   * and a restart with the sqlite store). On gearmand it needs a `resultStore`: the workers
   * coordinate it through the store (see docs/results-and-batches.md); without one it rejects with
   * GearmanResultsUnavailableError. An item that cannot be encoded rejects the whole call, naming
   * its index, before anything is sent.
   */
  async emitBatch(pattern: GearmanPattern, items: Iterable<unknown>, options: GearmanEmitBatchOptions = {}): Promise<string> {
    const list = Array.from(items);
    const payloads = list.map((item, index) => {
      try {
        // An item's job is not this call's trace: its span ends at once.
        const { payload, span } = this.prepare({ pattern, data: item });
        this.endSpan(span);
        return payload;
      } catch (error) {
        throw new TypeError(`Batch item ${index} cannot be sent: ${(error as Error).message}`, { cause: error });
      }
    });
    const unique = checkBatchUnique(options.unique ?? randomUUID());
    const request = {
      function: this.normalizePattern(pattern as MsPattern),
      failFast: options.failFast ?? true,
      ...(options.gather === undefined ? {} : { gather: this.normalizePattern(options.gather as MsPattern) }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
      ...(options.concurrency === undefined ? {} : { concurrency: options.concurrency }),
    };
    const client = await this.connect();
    const store = this.options.resultStore;
    if (!store) return (await client.submitBatch(request, payloads, { unique })).handle;
    // gearmand: the batch is a job of gearman.batch that a worker with the store takes up.
    return (await this.submitBackground(client, BATCH_FUNCTION, encodeBatchRequest(request, payloads), { unique })).handle;
  }

  /**
   * Cancels a batch by its handle or unique id: it fails, and its items not started yet never run
   * (items already running finish, their outcome unused). Resolves with whether it was cancelled
   * (false: it had ended, or nothing knows it).
   */
  async cancelBatch(handleOrUnique: string): Promise<boolean> {
    const store = this.options.resultStore;
    if (store) return store.cancelBatch(handleOrUnique);
    return (await this.connect()).cancelBatch(handleOrUnique);
  }

  /** The client send() and emit() connected; gone only when close() ran in between. */
  private connectedClient(): GearmanClient {
    if (!this.client) throw new GearmanConnectionError('ClientGearman was closed before the message could be sent');
    return this.client;
  }

  /**
   * Every reply packet carries one value (Gearman has no job without a result), so each is a
   * `next`; except the final packet of a job whose WORK_COMPLETE repeated the value already
   * delivered as its last WORK_DATA, which only completes.
   */
  protected override createObserver<T>(observer: Observer<T>): (packet: WritePacket) => void {
    return (packet) => {
      const { err, response, isDisposed } = packet;
      if (err !== undefined) return observer.error(this.serializeError(err));
      if ('response' in packet) observer.next(this.serializeResponse(response));
      if (isDisposed) observer.complete();
    };
  }

  private async openClient(): Promise<GearmanClient> {
    const {
      serializer: _serializer,
      deserializer: _deserializer,
      envelope: _envelope,
      openTelemetry: _openTelemetry,
      resultStore: _resultStore,
      ...clientOptions
    } = this.options;
    if (this.options.openTelemetry !== false) this.otel = await loadOpenTelemetry();
    const client = new GearmanClient({ logger: this.logger, ...clientOptions });
    client.on('connect', () => this._status$.next(GearmanStatus.CONNECTED));
    client.on('disconnect', () => this._status$.next(GearmanStatus.DISCONNECTED));
    client.on('reconnecting', () => this._status$.next(GearmanStatus.RECONNECTING));
    client.on('error', (error: Error) => this.logger.error(error.message, error.stack));
    for (const { event, callback } of this.listeners) client.on(event, callback);
    this.client = client;
    try {
      await client.connect();
    } catch (error) {
      // Let the next call try again with a fresh client.
      if (this.client === client) {
        this.client = undefined;
        this.connecting = undefined;
      }
      await client.close();
      throw error;
    }
    return client;
  }

  /** Feeds the job's WORK_DATA and its end to the routing entry, for as long as the entry exists. */
  private routeReplies(id: string, job: ClientJob): void {
    const deliver = (packet: WritePacket) => {
      const callback = this.routingMap.get(id) as ((packet: WritePacket) => void) | undefined;
      if (!callback) return;
      if (packet.isDisposed) this.routingMap.delete(id);
      let incoming: WritePacket | Promise<WritePacket>;
      try {
        incoming = this.deserializer.deserialize(packet);
      } catch (error) {
        return callback({ err: error, isDisposed: true });
      }
      if (!(incoming instanceof Promise)) return callback(incoming);
      incoming.then(callback, (error: unknown) => callback({ err: error, isDisposed: true }));
    };
    let lastData: Buffer | undefined;
    job.on('data', (data: Buffer) => {
      lastData = data;
      deliver({ response: decodePayload(data), isDisposed: false });
    });
    job.result.then(
      // Bytes equal to the last WORK_DATA: ServerGearman repeated a value already delivered.
      (data) =>
        deliver(
          lastData !== undefined && data.equals(lastData) ? { isDisposed: true } : { response: decodePayload(data), isDisposed: true },
        ),
      (error: unknown) => deliver({ err: replyError(error), isDisposed: true }),
    );
  }

  /**
   * Unwraps a GearmanRecord, runs the serializer, and encodes the payload; starts the job's span and
   * puts an envelope ahead of the payload when there is something to carry: the retry policy, and
   * where the `envelope` option covers the function the metadata and trace context.
   * `emitted`: from emit(), always background.
   */
  private prepare(packet: ReadPacket, emitted = false) {
    const record = packet.data instanceof GearmanRecord ? packet.data : undefined;
    const data = record ? record.data : packet.data;
    const serialized = this.serializer.serialize({ ...packet, data });
    const encoded =
      Buffer.isBuffer(serialized) || typeof serialized === 'string'
        ? Buffer.from(serialized)
        : encodePayload((serialized as ReadPacket).data);
    const { priority, unique, runAt, retry, metadata } = record?.options ?? {};
    const background = emitted || (record?.isBackground ?? false);
    // Retries resubmit in the background; a caller waiting on a foreground job would see only the first attempt.
    if (retry && !background) throw new TypeError('retry is for background jobs: use emit(), or setBackground() with send()');
    const options: SubmitOptions = { priority, unique, runAt };
    const functionName = this.normalizePattern(packet.pattern);
    const traced = this.otel && isTracingActive(this.otel) ? startClientSpan(this.otel, functionName, background) : undefined;
    // A dispatch hook's metadata (Nest 12), the record's, then the span's trace context (a child of both).
    const merged: GearmanJobMetadata | undefined = this.sendsEnvelope(functionName)
      ? { ...(packet as { metadata?: GearmanJobMetadata }).metadata, ...metadata, ...traced?.carrier }
      : undefined;
    let payload: Buffer;
    try {
      payload = sealJobPayload(encoded, merged, retry ? { retry: { ...retry, attempt: 1 } } : {});
    } catch (error) {
      this.endSpan(traced?.span, error);
      throw error;
    }
    return { functionName, payload, options, background, span: traced?.span };
  }

  private sendsEnvelope(functionName: string): boolean {
    const envelope = this.options.envelope;
    return typeof envelope === 'function' ? envelope(functionName) : envelope === true;
  }

  private isBackground(data: unknown): boolean {
    return data instanceof GearmanRecord && data.isBackground;
  }

  /** A result watch on the store, or on the job servers. */
  private watch(id: string, options: WaitForResultOptions, follow: boolean): JobWatch {
    const store = this.options.resultStore;
    if (store) return store.watch(id, { timeoutMs: options.timeoutMs ?? DEFAULT_RESULT_TIMEOUT_MS, follow });
    return this.connectedClient().watchResult(id, { ...options, follow });
  }

  private async connectIfNeeded(): Promise<void> {
    if (!this.options.resultStore) await this.connect();
  }

  /** A job's events to a subscriber, values decoded as send() decodes them. */
  private relayJob<T>(job: ClientJob, subscriber: Observer<GearmanJobEvent<T>>): void {
    // Decoding may be asynchronous (a deserializer): a queue keeps the events in order.
    let order: Promise<unknown> = Promise.resolve();
    const inOrder = (produce: () => Promise<void> | void) => {
      order = order.then(produce).catch((error: unknown) => subscriber.error(error));
    };
    job.on('created', (handle) => inOrder(() => subscriber.next({ type: 'created', handle })));
    job.on('status', (numerator, denominator) => inOrder(() => subscriber.next({ type: 'progress', numerator, denominator })));
    job.on('warning', (data) => inOrder(() => subscriber.next({ type: 'warning', message: data.toString('utf8') })));
    job.on('data', (data) =>
      inOrder(async () => {
        const reply = await this.decodeReply({ data });
        if ('error' in reply) subscriber.error(reply.error);
        else subscriber.next({ type: 'data', value: reply.value });
      }),
    );
    job.result.then(
      (data) =>
        inOrder(async () => {
          const reply = await this.decodeReply({ data });
          if ('error' in reply) return subscriber.error(reply.error);
          subscriber.next({ type: 'result', value: reply.value as T });
          subscriber.complete();
        }),
      (error: unknown) =>
        inOrder(async () => {
          const reply = await this.decodeReply({ error });
          subscriber.error('error' in reply ? reply.error : reply.value);
        }),
    );
  }

  /** A result watch's events to a subscriber; its final state becomes `result` or an error. */
  private relayWatch<T>(watch: JobWatch, subscriber: Observer<GearmanJobEvent<T>>): void {
    let order: Promise<unknown> = Promise.resolve();
    const inOrder = (produce: () => Promise<void> | void) => {
      order = order.then(produce).catch((error: unknown) => subscriber.error(error));
    };
    watch.on('status', (numerator, denominator) => inOrder(() => subscriber.next({ type: 'progress', numerator, denominator })));
    watch.on('warning', (data) => inOrder(() => subscriber.next({ type: 'warning', message: data.toString('utf8') })));
    watch.on('data', (data) =>
      inOrder(async () => {
        const reply = await this.decodeReply({ data });
        subscriber.next({ type: 'data', value: 'error' in reply ? reply.error : reply.value });
      }),
    );
    watch.state.then(
      (result) =>
        inOrder(async () => {
          const state = await this.toState<T>(result);
          if (state.state === 'completed') {
            subscriber.next({ type: 'result', value: state.value });
            subscriber.complete();
          } else if (state.state === 'failed') subscriber.error(state.error);
          else if (state.state === 'unknown') subscriber.error(new GearmanJobUnknownError(state.id, state.reason));
          else subscriber.error(new Error(`The wait for job ${watch.id} ended while it was ${state.state}`));
        }),
      (error: unknown) => inOrder(async () => subscriber.error(await this.withDecodedState(error))),
    );
  }

  private toState<T>(result: JobResult): Promise<GearmanJobState<T>> {
    return toGearmanJobState<T>(result, (reply) => this.decodeReply(reply));
  }

  /** A GearmanResultTimeoutError whose last state is decoded like any other state. */
  private async withDecodedState(error: unknown): Promise<unknown> {
    if (!(error instanceof GearmanResultTimeoutError) || error.lastState === undefined) return error;
    const state = await this.toState(error.lastState as JobResult);
    return new GearmanResultTimeoutError<GearmanJobState>(error.id, error.timeoutMs, state);
  }

  /** One reply decoded exactly as send() decodes it: payload rules, the deserializer, then the proxy's response/error hooks. */
  private async decodeReply(reply: { data: Buffer } | { error: unknown }): Promise<{ value: unknown } | { error: unknown }> {
    const packet: WritePacket =
      'data' in reply ? { response: decodePayload(reply.data), isDisposed: true } : { err: replyError(reply.error), isDisposed: true };
    try {
      const incoming = await this.deserializer.deserialize(packet);
      if (incoming.err !== undefined) return { error: this.serializeError(incoming.err) };
      return { value: this.serializeResponse(incoming.response) };
    } catch (error) {
      return { error };
    }
  }
}

/**
 * What a failed job reports to the subscriber: for WORK_EXCEPTION the error body the worker sent
 * (decoded by the payload rules, e.g. `{ status: 'error', message }` from a Nest handler), or a
 * GearmanJobTimeoutError when ServerGearman ended the job at its timeout; for anything else
 * (WORK_FAIL, connection loss, a server ERROR) the Gearman error itself.
 */
function replyError(error: unknown): unknown {
  if (!(error instanceof GearmanJobExceptionError)) return error;
  const body = decodePayload(error.data);
  if (isJobTimeoutBody(body)) return new GearmanJobTimeoutError(error.functionName, body.timeoutMs, error.handle);
  return body ?? error;
}
