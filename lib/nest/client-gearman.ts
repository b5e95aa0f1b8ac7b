import { Logger } from '@nestjs/common';
import { ClientProxy, type Deserializer, type ReadPacket, type Serializer, type WritePacket } from '@nestjs/microservices';
import type { Observable, Observer } from 'rxjs';
import type { ClientJob } from '../client/client-job.js';
import { GearmanClient, type GearmanClientOptions } from '../client/gearman-client.js';
import type { SubmitOptions } from '../client/submit-options.js';
import { GearmanConnectionError, GearmanJobExceptionError, GearmanJobTimeoutError } from '../common/errors.js';
import { sealEnvelope } from '../protocol/envelope.js';
import { GearmanRecord } from './gearman-record-builder.js';
import { GearmanStatus, type GearmanEventsMap } from './gearman-status.js';
import { decodePayload, encodePayload } from './payload-codec.js';
import { isJobTimeoutBody } from './wire-errors.js';

export interface GearmanClientProxyOptions extends GearmanClientOptions {
  /** Shapes each outgoing packet (`{ pattern, data, id? }`) before its `data` is encoded. */
  serializer?: Serializer;
  /** Shapes each incoming reply packet (`{ response, isDisposed? }` / `{ err }`) before it is emitted. */
  deserializer?: Deserializer;
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
      const { functionName, payload, options, background } = this.prepare(packet);
      const client = this.connectedClient();
      if (background) {
        client.submitBackgroundJob(functionName, payload, options).then(
          (handle) => callback({ response: handle, isDisposed: true }),
          (error: unknown) => callback({ err: error, isDisposed: true }),
        );
        return () => undefined;
      }
      const id = String(++this.lastRequestId);
      const job = client.submitJob(functionName, payload, options);
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
    const { functionName, payload, options } = this.prepare(packet, true);
    return (await this.connectedClient().submitBackgroundJob(functionName, payload, options)) as T;
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
    const { serializer: _serializer, deserializer: _deserializer, ...clientOptions } = this.options;
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

  /** Unwraps a GearmanRecord, runs the serializer, and encodes the payload. `emitted`: from emit(), always background. */
  private prepare(packet: ReadPacket, emitted = false) {
    const record = packet.data instanceof GearmanRecord ? packet.data : undefined;
    const data = record ? record.data : packet.data;
    const serialized = this.serializer.serialize({ ...packet, data });
    let payload =
      Buffer.isBuffer(serialized) || typeof serialized === 'string'
        ? Buffer.from(serialized)
        : encodePayload((serialized as ReadPacket).data);
    const { priority, unique, runAt, retry } = record?.options ?? {};
    const background = emitted || (record?.isBackground ?? false);
    if (retry) {
      // Retries resubmit in the background; a caller waiting on a foreground job would see only the first attempt.
      if (!background) throw new TypeError('retry is for background jobs: use emit(), or setBackground() with send()');
      payload = sealEnvelope({ retry: { ...retry, attempt: 1 } }, payload);
    }
    const options: SubmitOptions = { priority, unique, runAt };
    return { functionName: this.normalizePattern(packet.pattern), payload, options, background };
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
