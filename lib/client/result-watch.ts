import { EventEmitter } from 'node:events';
import { GearmanResultTimeoutError } from '../common/errors.js';
import { decodeResultReply, type ResultRequest } from '../protocol/result-fetch.js';
import type { ClientJob } from './client-job.js';
import { isFinalJobResult, jobResultFrom, type JobResult } from './job-result.js';

/** The events of a followed job, as the job sends them (see ClientJobEvents). */
export interface JobWatchEvents {
  status: [numerator: number, denominator: number];
  data: [data: Buffer];
  warning: [data: Buffer];
}

/**
 * A wait for one job's state, wherever it is kept. `state` settles once; while following, the job's
 * WORK_STATUS, WORK_WARNING and WORK_DATA are emitted as they happen. `release()` stops listening
 * (`state` then rejects unless it had settled).
 */
export class JobWatch extends EventEmitter<JobWatchEvents> {
  readonly state: Promise<JobResult>;
  private resolveState!: (result: JobResult) => void;
  private rejectState!: (error: Error) => void;
  private settled = false;
  private readonly cleanups: (() => void)[] = [];

  constructor(
    /** The handle or unique id watched. */
    readonly id: string,
  ) {
    super();
    this.state = new Promise<JobResult>((resolve, reject) => {
      this.resolveState = resolve;
      this.rejectState = reject;
    });
    this.state.catch(() => undefined);
  }

  get isSettled(): boolean {
    return this.settled;
  }

  release(): void {
    this.reject(new Error(`Stopped waiting for the job ${this.id}`));
  }

  /** @internal Settles with a state. */
  resolve(result: JobResult): void {
    if (this.finish()) this.resolveState(result);
  }

  /** @internal Settles with an error. */
  reject(error: Error): void {
    if (this.finish()) this.rejectState(error);
  }

  /** @internal Runs when the watch settles (at once when it already has). */
  onSettled(cleanup: () => void): void {
    if (this.settled) cleanup();
    else this.cleanups.push(cleanup);
  }

  private finish(): boolean {
    if (this.settled) return false;
    this.settled = true;
    for (const cleanup of this.cleanups.splice(0)) cleanup();
    return true;
  }
}

/** How much longer than the job server's own limit the client waits for its answer. */
const ANSWER_GRACE_MS = 2_000;

/**
 * A fetch of a job's state from the job servers (`gearman.result`), asked of every server that keeps
 * results: the job lives on one of them, the others answer `unknown` at once. Settles with the first
 * answer that knows the job, or `unknown` when none does.
 */
export class ResultFetch {
  private readonly jobs = new Set<ClientJob>();
  private answersExpected: number | undefined;
  private answers = 0;
  private unknown: JobResult | undefined;
  private firstError: Error | undefined;
  private lastState: JobResult | undefined;

  constructor(
    readonly watch: JobWatch,
    private readonly request: ResultRequest,
  ) {
    watch.onSettled(() => {
      for (const job of this.jobs) job.release();
      this.jobs.clear();
    });
    if (request.wait && request.timeoutMs !== undefined) {
      // The job server answers at its limit; this only covers a server that never does.
      const timer = setTimeout(() => this.timeOut(), request.timeoutMs + ANSWER_GRACE_MS);
      timer.unref?.();
      watch.onSettled(() => clearTimeout(timer));
    }
  }

  /** A fetch job submitted to one job server. */
  track(job: ClientJob): void {
    if (this.watch.isSettled) return job.release();
    this.jobs.add(job);
    const parts: Buffer[] = [];
    const follow = this.request.follow === true;
    job.on('data', (data) => {
      parts.push(data);
      if (follow) this.watch.emit('data', data);
    });
    if (follow) {
      job.on('status', (numerator, denominator) => this.watch.emit('status', numerator, denominator));
      job.on('warning', (data) => this.watch.emit('warning', data));
    }
    job.result.then(
      (reply) => {
        let result: JobResult;
        try {
          const { record, payload } = decodeResultReply(reply);
          result = jobResultFrom(this.watch.id, record, payload, parts);
        } catch (error) {
          return this.failed(job, error as Error);
        }
        this.answered(job, result);
      },
      (error: Error) => this.failed(job, error),
    );
  }

  /** No more fetch jobs will be tracked; `count` were. */
  expect(count: number): void {
    this.answersExpected = count;
    this.checkAllAnswered();
  }

  private answered(job: ClientJob, result: JobResult): void {
    this.jobs.delete(job);
    this.answers++;
    if (result.state === 'unknown') {
      // `expired` says more than `not-found`: some server did have it.
      if (!this.unknown || result.reason === 'expired') this.unknown = result;
      return this.checkAllAnswered();
    }
    this.lastState = result;
    if (this.request.wait && !isFinalJobResult(result)) {
      // A wait the job server ended at its time limit.
      return this.watch.reject(new GearmanResultTimeoutError<JobResult>(this.watch.id, this.request.timeoutMs ?? 0, result));
    }
    this.watch.resolve(result);
  }

  private failed(job: ClientJob, error: Error): void {
    this.jobs.delete(job);
    this.answers++;
    this.firstError ??= error;
    this.checkAllAnswered();
  }

  private checkAllAnswered(): void {
    if (this.answersExpected === undefined || this.answers < this.answersExpected) return;
    // A server that failed to answer might have been the one that knows the job.
    if (this.firstError) return this.watch.reject(this.firstError);
    this.watch.resolve(this.unknown ?? { state: 'unknown', id: this.watch.id, reason: 'not-found' });
  }

  private timeOut(): void {
    this.watch.reject(new GearmanResultTimeoutError<JobResult | undefined>(this.watch.id, this.request.timeoutMs ?? 0, this.lastState));
  }
}
