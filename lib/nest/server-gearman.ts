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
import { GearmanWorker, type GearmanWorkerOptions } from '../worker/gearman-worker.js';
import type { WorkerJob } from '../worker/worker-job.js';
import { GearmanContext } from './gearman.context.js';
import { GEARMAN_TRANSPORT, GearmanStatus, type GearmanEventsMap } from './gearman-status.js';
import { decodePayload, encodePayload } from './payload-codec.js';
import { INTERNAL_SERVER_ERROR, NO_MESSAGE_HANDLER, toWireError } from './wire-errors.js';

export interface GearmanServerOptions extends GearmanWorkerOptions {
  /** Shapes each outgoing reply packet (`{ response }` / `{ err }`) before it is encoded. */
  serializer?: Serializer;
  /** Shapes each incoming job (`{ pattern, data }`, data decoded by the payload rules) before routing. */
  deserializer?: Deserializer;
}

type PendingListener = { event: string; callback: (...args: any[]) => void };

/**
 * The Gearman transport strategy. Every `@MessagePattern` / `@EventPattern` becomes a Gearman
 * function named by the normalised pattern; the jobs the job server hands out run the handlers, and
 * each job ends with the handler's outcome:
 *
 * - a value: WORK_COMPLETE with it; an Observable: WORK_DATA for every value but the last, which
 *   ends the job with WORK_COMPLETE (no value at all: an empty WORK_COMPLETE);
 * - an error: WORK_EXCEPTION with the error as Nest's exception filters shaped it (job servers turn it
 *   into WORK_FAIL for clients that did not ask for exceptions);
 * - an event handler: an empty WORK_COMPLETE once it finished, WORK_EXCEPTION when it failed.
 */
export class ServerGearman extends Server<GearmanEventsMap, GearmanStatus> implements CustomTransportStrategy {
  override transportId: Transport | symbol = GEARMAN_TRANSPORT;
  /** An event handler's failure ends its Gearman job with WORK_EXCEPTION (and is logged here). */
  override readonly propagatesEventHandlerErrors = true;

  private worker: GearmanWorker | undefined;
  private pendingListeners: PendingListener[] = [];
  /** Reply streams still running (with what settles their job), ended by close() once the worker gave up on them. */
  private readonly replyStreams = new Map<Subscription, () => void>();

  constructor(private readonly options: GearmanServerOptions = {}) {
    super();
    this.initializeSerializer(options);
    this.initializeDeserializer(options);
  }

  async listen(callback: (error?: unknown) => void): Promise<void> {
    try {
      const worker = this.createWorker();
      for (const functionName of this.messageHandlers.keys()) {
        worker.register(functionName, (job) => this.handleJob(job));
      }
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

  private createWorker(): GearmanWorker {
    const { serializer: _serializer, deserializer: _deserializer, ...workerOptions } = this.options;
    const worker = new GearmanWorker({ logger: this.logger, ...workerOptions });
    worker.on('connect', () => this._status$.next(GearmanStatus.CONNECTED));
    worker.on('disconnect', () => this._status$.next(GearmanStatus.DISCONNECTED));
    worker.on('reconnecting', () => this._status$.next(GearmanStatus.RECONNECTING));
    worker.on('error', (error: Error) => this.logger.error(error.message, error.stack));
    for (const { event, callback } of this.pendingListeners) worker.on(event, callback);
    this.pendingListeners = [];
    this.worker = worker;
    return worker;
  }

  /** Runs one job to its end; the worker counts it in flight until this settles. */
  private async handleJob(job: WorkerJob): Promise<void> {
    try {
      const deserialized = this.deserializer.deserialize(
        { pattern: job.functionName, data: decodePayload(job.data) },
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
      const context = new GearmanContext([job, pattern]);
      await this.withProcessingHooks(context, () =>
        handler.isEventHandler ? this.runEvent(handler, packet, context) : this.runRequest(handler, packet, context),
      );
    } catch (error) {
      this.endWithError(job, error);
    }
  }

  private async runRequest(handler: MessageHandler, packet: ReadPacket, context: GearmanContext): Promise<void> {
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
    // The last value is held back until the stream ends, so that it (not an empty payload) is the
    // job's result: a plain Gearman client calling a single-value handler gets that value.
    await new Promise<void>((resolve) => {
      let held: { value: unknown } | undefined;
      let settled = false;
      // Assigned after subscribe() returns: a stream that ends synchronously settles before that.
      let subscription: Subscription | undefined = undefined;
      const settle = () => {
        settled = true;
        if (subscription) this.replyStreams.delete(subscription);
        resolve();
      };
      subscription = reply$.subscribe({
        next: (value) => {
          if (held) this.sendPacket(job, { response: held.value });
          held = { value };
        },
        error: (error: unknown) => {
          this.endWithError(job, error);
          settle();
        },
        complete: () => {
          this.sendPacket(job, { response: held?.value, isDisposed: true });
          settle();
        },
      });
      if (!settled) this.replyStreams.set(subscription, settle);
    });
  }

  private async runEvent(handler: MessageHandler, packet: ReadPacket, context: GearmanContext): Promise<void> {
    const job = context.getJob();
    try {
      const result = await handler(packet.data, context);
      if (isObservable(result)) await lastValueFrom(result, { defaultValue: undefined });
    } catch (error) {
      this.logger.error(`Event handler for ${context.getPattern()} failed (job ${job.handle}): ${describeError(error)}`);
      return this.endWithError(job, error);
    }
    if (!job.isDone) job.complete();
  }

  /** Encodes one reply packet and sends it: WORK_DATA, or WORK_COMPLETE when it is the last. */
  private sendPacket(job: WorkerJob, packet: WritePacket): void {
    if (job.isDone) return;
    try {
      const payload = this.encodeReply(packet, 'response');
      if (packet.isDisposed) job.complete(payload);
      else job.sendData(payload);
    } catch (error) {
      this.endWithError(job, error);
    }
  }

  private endWithError(job: WorkerJob, error: unknown): void {
    if (job.isDone) {
      this.logger.error(`Gearman job ${job.handle} (${job.functionName}) failed after it ended: ${describeError(error)}`);
      return;
    }
    if (error instanceof Error) this.logger.error(error.message, error.stack);
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

function describeError(error: unknown): string {
  if (error instanceof Error) return error.message;
  try {
    return JSON.stringify(error);
  } catch {
    return String(error);
  }
}
