import { performance } from 'node:perf_hooks';
import { encodeRequest } from '../protocol/encoder.js';
import { PacketType } from '../protocol/packet-types.js';

/** How a job ended, as a recorder sees it: its final packet. */
export type WorkerJobEnd =
  { readonly type: 'complete'; readonly data: Buffer } | { readonly type: 'fail' } | { readonly type: 'exception'; readonly data: Buffer };

/**
 * Sees each job of a worker as it runs, e.g. to keep its state in a result store. `ended` is awaited
 * before the final packet goes to the job server, so a job's outcome is recorded before the job
 * server (and whoever waits on it) learns that it ended; a rejection is logged and the job ends anyway.
 */
export interface WorkerJobRecorder {
  started(job: WorkerJob): void;
  status(job: WorkerJob, numerator: number, denominator: number): void;
  data(job: WorkerJob, data: Buffer): void;
  warning(job: WorkerJob, data: Buffer): void;
  ended(job: WorkerJob, end: WorkerJobEnd): Promise<void>;
  /**
   * The job failed and its next attempt is queued (a Nest retry policy): the WORK_FAIL that follows
   * is not the job's outcome. Called before that WORK_FAIL.
   */
  retrying?(job: WorkerJob): void;
}

/** Where a job's packets go: the connection that handed it out. */
export interface WorkerJobChannel {
  /** Writes a packet for the job; false when the connection it came on is gone. */
  send(packet: Buffer): boolean;
  /**
   * Writes a WORK_DATA, WORK_WARNING or WORK_STATUS; throws GearmanQueueFullError when the job
   * server has not taken `maxQueuedBytes` of what was written already (it reads slower than the
   * handler reports, or not at all).
   */
  sendUpdate(packet: Buffer): void;
  /** The job ended (or was abandoned); its slot is free. */
  jobEnded(job: WorkerJob): void;
  /** Sees the job's packets before they are sent, when the worker has one. */
  readonly recorder?: WorkerJobRecorder;
  /** Where a recorder's failure is reported. */
  recorderFailed?(job: WorkerJob, error: unknown): void;
}

/** How a job ended: WORK_COMPLETE, WORK_FAIL, WORK_EXCEPTION, or its connection dropped first. */
export type WorkerJobOutcome = 'completed' | 'failed' | 'exception' | 'abandoned';

/**
 * A job handed to a worker. Send data, warnings and status while it runs; end it once with
 * complete, fail or exception (later calls throw). If the connection it came on drops, the
 * server requeues it and what is sent for it afterwards is dropped.
 */
export class WorkerJob {
  private done = false;
  /** The connection dropped while the job ran: calls are accepted and dropped. */
  private abandoned = false;
  /** Made on first use of `signal`: most jobs never need one. */
  private abortController: AbortController | undefined;
  private abortReason: Error | undefined;
  private lastDataSent: Buffer | string | undefined;
  private ended: (() => void) | undefined;
  private ending: WorkerJobOutcome | undefined;
  /** performance.now() when the job was handed to this worker. */
  readonly receivedAt = performance.now();

  constructor(
    private readonly channel: WorkerJobChannel,
    readonly handle: string,
    readonly functionName: string,
    readonly unique: string,
    readonly data: Buffer,
  ) {}

  get isDone(): boolean {
    return this.done;
  }

  /** How the job ended; undefined while it runs. */
  get outcome(): WorkerJobOutcome | undefined {
    return this.ending;
  }

  /**
   * Aborted when the worker gives up on the job while its handler may still run: the job timed out
   * (reason: GearmanJobTimeoutError), its connection dropped (the job server requeues it), or the
   * worker stopped before it ended. Pass it to `fetch()` and the like so their work stops too.
   */
  get signal(): AbortSignal {
    if (!this.abortController) {
      this.abortController = new AbortController();
      if (this.abortReason) this.abortController.abort(this.abortReason);
    }
    return this.abortController.signal;
  }

  /** @internal Why the worker gave up on the job (the reason `signal` was or will be aborted with), if it did. */
  get abortedWith(): Error | undefined {
    return this.abortReason;
  }

  /** @internal Called once when the job ends or is abandoned. */
  onEnd(callback: () => void): void {
    this.ended = callback;
  }

  /** @internal The payload of the last WORK_DATA sent for this job, if any. */
  get lastData(): Buffer | string | undefined {
    return this.lastDataSent;
  }

  /**
   * WORK_DATA: a partial result, passed on to the clients waiting. Throws GearmanQueueFullError
   * when the job server has not taken the worker's `maxQueuedBytes` yet (so do sendWarning and sendStatus).
   */
  sendData(data: Buffer | string): void {
    this.sendUpdate('sendData', PacketType.WORK_DATA, data);
    if (!this.abandoned) this.lastDataSent = data;
  }

  /** WORK_WARNING. */
  sendWarning(data: Buffer | string): void {
    this.sendUpdate('sendWarning', PacketType.WORK_WARNING, data);
  }

  /** WORK_STATUS: progress as numerator / denominator. */
  sendStatus(numerator: number, denominator: number): void {
    if (!this.isRunning('sendStatus')) return;
    if (!Number.isFinite(numerator) || !Number.isFinite(denominator)) {
      throw new TypeError(`sendStatus needs finite numbers, got ${numerator}/${denominator}`);
    }
    this.channel.recorder?.status(this, numerator, denominator);
    this.channel.sendUpdate(encodeRequest(PacketType.WORK_STATUS, this.handle, String(numerator), String(denominator)));
  }

  /** WORK_COMPLETE with the result (empty by default); ends the job. */
  complete(data: Buffer | string = ''): void {
    const bytes = checkData('complete', data);
    this.end('complete', 'completed', encodeRequest(PacketType.WORK_COMPLETE, this.handle, bytes), () => ({
      type: 'complete',
      data: asBuffer(bytes),
    }));
  }

  /** WORK_FAIL; ends the job. */
  fail(): void {
    this.end('fail', 'failed', encodeRequest(PacketType.WORK_FAIL, this.handle), () => ({ type: 'fail' }));
  }

  /** WORK_EXCEPTION with the payload; ends the job (clients without the exceptions option see WORK_FAIL). */
  exception(data: Buffer | string): void {
    const bytes = checkData('exception', data);
    this.end('exception', 'exception', encodeRequest(PacketType.WORK_EXCEPTION, this.handle, bytes), () => ({
      type: 'exception',
      data: asBuffer(bytes),
    }));
  }

  /** @internal The connection dropped: the server has requeued the job, nothing more is sent for it. */
  abandon(reason: Error): void {
    if (!this.done) this.ending = 'abandoned';
    this.abandoned = true;
    this.done = true;
    this.runEnded();
    this.abort(reason);
  }

  /** @internal The worker gives up on the job: aborts `signal` (its listeners run now). */
  abort(reason: Error): void {
    if (this.abortReason) return;
    this.abortReason = reason;
    this.abortController?.abort(reason);
  }

  private sendUpdate(method: string, type: PacketType, data: Buffer | string): void {
    if (!this.isRunning(method)) return;
    const bytes = checkData(method, data);
    const recorder = this.channel.recorder;
    if (recorder) {
      if (type === PacketType.WORK_DATA) recorder.data(this, asBuffer(bytes));
      else recorder.warning(this, asBuffer(bytes));
    }
    this.channel.sendUpdate(encodeRequest(type, this.handle, bytes));
  }

  private end(method: string, outcome: WorkerJobOutcome, packet: Buffer, end: () => WorkerJobEnd): void {
    if (!this.isRunning(method)) return;
    this.done = true;
    this.ending = outcome;
    this.runEnded();
    const recorder = this.channel.recorder;
    if (!recorder) return this.sendFinal(packet);
    // The slot stays taken until the outcome is recorded, so a slow store slows the worker down instead of piling up.
    let recorded: Promise<void>;
    try {
      recorded = recorder.ended(this, end());
    } catch (error) {
      recorded = Promise.reject(error);
    }
    recorded.then(
      () => this.sendFinal(packet),
      (error: unknown) => {
        this.channel.recorderFailed?.(this, error);
        this.sendFinal(packet);
      },
    );
  }

  private sendFinal(packet: Buffer): void {
    if (!this.abandoned) this.channel.send(packet);
    this.channel.jobEnded(this);
  }

  private runEnded(): void {
    const ended = this.ended;
    this.ended = undefined;
    ended?.();
  }

  /** False when the job was abandoned; throws when it already ended. */
  private isRunning(method: string): boolean {
    if (this.abandoned) return false;
    if (this.done) throw new Error(`Job ${this.handle} (${this.functionName}) has already ended: ${method}() is too late`);
    return true;
  }
}

function asBuffer(data: Buffer | string): Buffer {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

function checkData(method: string, data: Buffer | string): Buffer | string {
  if (typeof data !== 'string' && !Buffer.isBuffer(data)) {
    throw new TypeError(`${method}() takes a Buffer or a string, got ${data === null ? 'null' : typeof data}`);
  }
  return data;
}
