import type { JobResult } from '../client/job-result.js';
import type { JobWatch } from '../client/result-watch.js';
import type { WorkerJob, WorkerJobRecorder } from '../worker/worker-job.js';

/** A background job the job server just queued, as its submitter knows it. */
export interface QueuedJob {
  readonly handle: string;
  readonly unique: string;
  readonly functionName: string;
}

/** How a worker submits the jobs of a batch: its items and its gather job, as background jobs. */
export interface BatchSubmitter {
  submitBackground(functionName: string, data: Buffer, options: { unique: string; priority?: 'high' | 'normal' | 'low' }): Promise<string>;
}

/**
 * Where jobs' states and outcomes are kept when the job servers keep none (gearmand): workers write
 * (through `recorder`), clients read. A job is stored under its unique id (and found by its handle
 * too), so it is found whichever job server ran it. Jobs without a unique id (or with `-`) are not
 * stored: background jobs submitted by this package's clients always have one.
 */
export interface GearmanResultStore {
  /**
   * What a worker records through (`GearmanWorker`'s `recorder` option; `ServerGearman` does it
   * itself). `submitter` lets the worker that ends a batch's last item submit its gather job.
   */
  recorder(submitter?: BatchSubmitter): WorkerJobRecorder;
  /** Runs a `gearman.batch` job on a worker: records the batch and submits its items (see RedisBatches). */
  startBatch(job: WorkerJob, submitter: BatchSubmitter): Promise<void>;
  /** Whether a job should run: false for an item of a batch that failed or was cancelled, or that ended before. */
  shouldRun(job: WorkerJob): Promise<boolean>;
  /** Cancels a batch: it fails, and its items not started yet do not run. False when it had ended or is unknown. */
  cancelBatch(handleOrUnique: string): Promise<boolean>;
  /** A client queued a background job: recorded so that it reads as `queued` until a worker takes it. */
  jobQueued(job: QueuedJob): Promise<void>;
  /** The job's state now. */
  get(handleOrUnique: string): Promise<JobResult>;
  /**
   * Settles once the job has ended (or at once when it is unknown); rejects with
   * GearmanResultTimeoutError after `timeoutMs`. With `follow`, the watch emits the job's progress,
   * data and warnings as they are recorded.
   */
  watch(handleOrUnique: string, options: { timeoutMs: number; follow?: boolean }): JobWatch;
  /** Closes the connections the store opened itself. */
  close(): Promise<void>;
}
