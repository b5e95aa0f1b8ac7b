import { Logger } from '@nestjs/common';
import { ClientProxy, type Deserializer, type ReadPacket, type Serializer, type WritePacket } from '@nestjs/microservices';
import type { Observable, Observer } from 'rxjs';
import type { ClientJob } from '../client/client-job.js';
import { GearmanClient, type GearmanClientOptions } from '../client/gearman-client.js';
import type { SubmitOptions } from '../client/submit-options.js';
import { GearmanConnectionError, GearmanJobExceptionError, GearmanJobTimeoutError } from '../common/errors.js';
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
        client.submitBackgroundJob(functionName, payload, options).then(
          (handle) => {
            this.endSpan(span);
            callback({ response: handle, isDisposed: true });
          },
          (error: unknown) => {
            this.endSpan(span, error);
            callback({ err: error, isDisposed: true });
          },
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
    try {
      const handle = await this.connectedClient().submitBackgroundJob(functionName, payload, options);
      this.endSpan(span);
      return handle as T;
    } catch (error) {
      this.endSpan(span, error);
      throw error;
    }
  }

  private endSpan(span: OtelSpan | undefined, error?: unknown): void {
    if (span && this.otel) endSpan(this.otel, span, error);
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
