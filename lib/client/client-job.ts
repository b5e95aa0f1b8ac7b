import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import { GearmanJobReleasedError } from '../common/errors.js';
import { clientJobOutcome, type GearmanClientObserver } from './client-observer.js';

/** Marks a promise as handled so a job nobody awaits cannot crash the process; awaiting it still sees the rejection. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/** The events of a `ClientJob`, with their listeners' arguments. */
export interface ClientJobEvents {
  /** JOB_CREATED: the job server queued the job under this handle. */
  created: (handle: string) => void;
  /** WORK_DATA: a partial result. */
  data: (data: Buffer) => void;
  /** WORK_WARNING. */
  warning: (data: Buffer) => void;
  /** WORK_STATUS: progress as the worker reported it. */
  status: (numerator: number, denominator: number) => void;
}

/**
 * A foreground job as the client sees it (`GearmanClient.submitJob()` returns one).
 * `created` and `result` never cause unhandled-rejection warnings when left unawaited.
 */
export interface ClientJob {
  readonly functionName: string;
  readonly unique: string;
  /** The handle the job server gave the job; rejects on ERROR or connection loss before JOB_CREATED. */
  readonly created: Promise<string>;
  /** The WORK_COMPLETE payload; rejects with the job's failure (see the error classes). */
  readonly result: Promise<Buffer>;
  /** The job handle, set at JOB_CREATED. */
  readonly handle: string | undefined;
  /** Whether the job ended (result, failure, release or connection loss). */
  readonly isSettled: boolean;
  /**
   * Stops listening locally: Gearman has no client-side cancel, so the job may still run.
   * Later packets for it are dropped; `result` rejects with GearmanJobReleasedError unless already settled.
   */
  release(): void;
  on<E extends keyof ClientJobEvents>(event: E, listener: ClientJobEvents[E]): this;
  once<E extends keyof ClientJobEvents>(event: E, listener: ClientJobEvents[E]): this;
  off<E extends keyof ClientJobEvents>(event: E, listener: ClientJobEvents[E]): this;
}

/**
 * The client's own side of a `ClientJob`: the session that carries the job settles it through
 * the methods below, which users never see (they get the `ClientJob` interface).
 */
export class TrackedJob extends EventEmitter implements ClientJob {
  readonly created: Promise<string>;
  readonly result: Promise<Buffer>;
  private currentHandle: string | undefined;
  private settled = false;
  private resolveCreated!: (handle: string) => void;
  private rejectCreated!: (error: Error) => void;
  private resolveResult!: (data: Buffer) => void;
  private rejectResult!: (error: Error) => void;
  /** Set by the connection that carries the job: forgets its routing entry. */
  private detach: (() => void) | undefined;
  /** When observed: performance.now() at the submit. */
  private readonly submittedAt: number = 0;

  constructor(
    readonly functionName: string,
    readonly unique: string,
    /** Called once when the job settles. */
    private onSettled?: () => void,
    private readonly observer?: GearmanClientObserver,
  ) {
    super();
    if (observer) {
      this.submittedAt = performance.now();
      observer.jobSubmitted(functionName, false);
    }
    this.created = quiet(
      new Promise<string>((resolve, reject) => {
        this.resolveCreated = resolve;
        this.rejectCreated = reject;
      }),
    );
    this.result = quiet(
      new Promise<Buffer>((resolve, reject) => {
        this.resolveResult = resolve;
        this.rejectResult = reject;
      }),
    );
  }

  get handle(): string | undefined {
    return this.currentHandle;
  }

  get isSettled(): boolean {
    return this.settled;
  }

  release(): void {
    if (this.settled) return;
    this.detach?.();
    this.detach = undefined;
    this.fail(new GearmanJobReleasedError(this.functionName, this.currentHandle));
  }

  /** The connection carrying the job: `detach` forgets its routing entry. */
  attach(detach: () => void): void {
    this.detach = detach;
  }

  /** JOB_CREATED arrived. */
  markCreated(handle: string): void {
    this.currentHandle = handle;
    this.resolveCreated(handle);
    this.emit('created', handle);
  }

  /** WORK_COMPLETE arrived. */
  complete(data: Buffer): void {
    if (this.settled) return;
    this.settle();
    this.resolveResult(data);
    this.observer?.jobEnded(this.functionName, false, 'completed', (performance.now() - this.submittedAt) / 1000);
  }

  /** The job ended without a result: failure, exception, server error, connection loss, release. */
  fail(error: Error): void {
    if (this.settled) return;
    this.settle();
    if (this.currentHandle === undefined) this.rejectCreated(error);
    this.rejectResult(error);
    this.observer?.jobEnded(this.functionName, false, clientJobOutcome(error), (performance.now() - this.submittedAt) / 1000);
  }

  private settle(): void {
    this.settled = true;
    this.detach = undefined;
    const onSettled = this.onSettled;
    this.onSettled = undefined;
    onSettled?.();
  }
}
