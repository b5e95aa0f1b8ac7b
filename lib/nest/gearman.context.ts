import { BaseRpcContext } from '@nestjs/microservices';
import type { EnvelopeMetadata } from '../protocol/envelope.js';
import type { Observable } from 'rxjs';
import type { WorkerJob } from '../worker/worker-job.js';
import type { ClientGearman, GearmanBatchOptions, GearmanEmitBatchOptions, GearmanPattern } from './client-gearman.js';
import type { GearmanBatchOutcome } from './gearman-job-state.js';
import { metadataOf, traceContextOf, type GearmanJobMetadata, type TraceContext } from './job-metadata.js';
import { encodePayload } from './payload-codec.js';
import { readRetryEnvelope } from './retry-policy.js';

/**
 * The job being handled, the pattern it was routed by, the fields of its envelope (none for a
 * plain Gearman client's job): `retry` (retries), `metadata` (a Nest client's metadata), and the
 * client to split it with (ServerGearman gives it).
 */
export type GearmanContextArgs = [job: WorkerJob, pattern: string, envelope?: EnvelopeMetadata, client?: () => ClientGearman];

/**
 * What `@Ctx()` gives a Gearman handler: the job's identity, and ways to report from inside the
 * handler while it runs (progress, warnings, partial results).
 */
export class GearmanContext extends BaseRpcContext<GearmanContextArgs> {
  constructor(args: GearmanContextArgs) {
    super(args);
  }

  /** The Gearman function the job was submitted to (the normalised pattern). */
  getFunctionName(): string {
    return this.args[0].functionName;
  }

  /** The pattern the handler was chosen by (the function name unless a deserializer changed it). */
  getPattern(): string {
    return this.args[1];
  }

  /** The job handle the job server assigned, e.g. `H:host:42`. */
  getHandle(): string {
    return this.args[0].handle;
  }

  /** The unique id the client submitted (empty when none). */
  getUnique(): string {
    return this.args[0].unique;
  }

  /**
   * Aborted when the job ends without the handler: it ran past its timeout (reason:
   * `GearmanJobTimeoutError`), its connection dropped, or the app stopped before it finished. Pass it
   * to `fetch()` and other cancellable calls.
   */
  getSignal(): AbortSignal {
    return this.args[0].signal;
  }

  /**
   * Which run of the job this is: 1 for the first, 2 for the first retry (see `GearmanRetryOptions`).
   * A retry is a new Gearman job: its handle and unique id differ from the first attempt's, which
   * `getOrigin()` gives.
   */
  getAttempt(): number {
    return readRetryEnvelope(this.args[2]?.retry)?.attempt ?? 1;
  }

  /** The first attempt's unique id and handle, for a retry; for a first attempt, this job's own. */
  getOrigin(): { unique: string; handle: string } {
    const origin = readRetryEnvelope(this.args[2]?.retry)?.origin;
    return origin ? { ...origin } : { unique: this.getUnique(), handle: this.getHandle() };
  }

  /**
   * The metadata a Nest client sent with the job (a Nest 12 dispatch hook's `packet.metadata`,
   * `GearmanRecordBuilder.setMetadata()`, and the trace context), string values by name as Nest's
   * `PacketMetadata`; undefined for a job without any, such as one from a plain Gearman client.
   */
  getMetadata(): Readonly<GearmanJobMetadata> | undefined {
    return metadataOf(this.args[2]);
  }

  /** The W3C trace context (`traceparent`, `tracestate`) the job carried, when it carried a valid one. */
  getTraceContext(): TraceContext | undefined {
    return traceContextOf(metadataOf(this.args[2]));
  }

  /** Every field of the job's envelope (`retry`, `metadata`, ...); empty for a plain Gearman client's job. */
  getEnvelope(): Readonly<EnvelopeMetadata> {
    return this.args[2] ?? {};
  }

  /** The low-level job, with the payload bytes as they came in `data` (the envelope included, when there is one). */
  getJob(): WorkerJob {
    return this.args[0];
  }

  /** WORK_STATUS: progress as numerator / denominator, seen by `getStatus()` and waiting clients. */
  sendStatus(numerator: number, denominator: number): void {
    this.args[0].sendStatus(numerator, denominator);
  }

  /** WORK_WARNING: a note for the waiting clients, sent as is (a string as UTF-8). */
  sendWarning(message: string | Buffer): void {
    this.args[0].sendWarning(message);
  }

  /** WORK_DATA: a partial result, encoded by the payload rules; a Nest client receives it as a `next` value. */
  sendData(value: unknown): void {
    this.args[0].sendData(encodePayload(value));
  }

  /**
   * Splits the job into sub-jobs and gathers them here: `ClientGearman.sendBatch()` through the
   * strategy's client. The handler holds its slot while they run, so the worker needs free slots
   * (or other workers) for them.
   */
  sendBatch<T = unknown>(
    pattern: GearmanPattern,
    items: Iterable<unknown>,
    options?: GearmanBatchOptions,
  ): Observable<GearmanBatchOutcome<T>> {
    return this.splitter().sendBatch<T>(pattern, items, options);
  }

  /**
   * Splits the job into a background batch that lives on without this handler:
   * `ClientGearman.emitBatch()` through the strategy's client. Resolves with the batch's handle,
   * which the handler may return so that its caller can wait for the gathered result.
   */
  emitBatch(pattern: GearmanPattern, items: Iterable<unknown>, options?: GearmanEmitBatchOptions): Promise<string> {
    return this.splitter().emitBatch(pattern, items, options);
  }

  private splitter(): ClientGearman {
    const client = this.args[3];
    if (!client) throw new Error('This GearmanContext has no client to split its job with (it was not made by ServerGearman)');
    return client();
  }
}
