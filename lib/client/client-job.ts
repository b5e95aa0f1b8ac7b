import { EventEmitter } from 'node:events';
import { GearmanJobReleasedError } from '../common/errors.js';

/** Marks a promise as handled so a job nobody awaits cannot crash the process; awaiting it still sees the rejection. */
function quiet<T>(promise: Promise<T>): Promise<T> {
  promise.catch(() => undefined);
  return promise;
}

/**
 * A foreground job as the client sees it.
 * Events: 'created' (handle), 'data' (Buffer), 'warning' (Buffer), 'status' (numerator, denominator).
 * `created` and `result` never cause unhandled-rejection warnings when left unawaited.
 */
export class ClientJob extends EventEmitter {
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

  constructor(
    readonly functionName: string,
    readonly unique: string,
  ) {
    super();
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

  /** The job handle, set at JOB_CREATED. */
  get handle(): string | undefined {
    return this.currentHandle;
  }

  /** Whether the job ended (result, failure, release or connection loss). */
  get isSettled(): boolean {
    return this.settled;
  }

  /**
   * Stops listening locally: Gearman has no client-side cancel, so the job may still run.
   * Later packets for it are dropped; `result` rejects with GearmanJobReleasedError unless already settled.
   */
  release(): void {
    if (this.settled) return;
    this.detach?.();
    this.detach = undefined;
    this.fail(new GearmanJobReleasedError(this.functionName, this.currentHandle));
  }

  /** @internal The connection carrying the job: `detach` forgets its routing entry. */
  attach(detach: () => void): void {
    this.detach = detach;
  }

  /** @internal JOB_CREATED arrived. */
  markCreated(handle: string): void {
    this.currentHandle = handle;
    this.resolveCreated(handle);
    this.emit('created', handle);
  }

  /** @internal WORK_COMPLETE arrived. */
  complete(data: Buffer): void {
    if (this.settled) return;
    this.settled = true;
    this.detach = undefined;
    this.resolveResult(data);
  }

  /** @internal The job ended without a result: failure, exception, server error, connection loss, release. */
  fail(error: Error): void {
    if (this.settled) return;
    this.settled = true;
    this.detach = undefined;
    if (this.currentHandle === undefined) this.rejectCreated(error);
    this.rejectResult(error);
  }
}
