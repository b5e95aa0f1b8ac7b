import type { WorkerJobOutcome } from './worker-job.js';

/**
 * Told of every job a `GearmanWorker` runs and of how it ended; metrics use it. It runs on the job
 * path, so it must be cheap and must not throw.
 */
export interface GearmanWorkerObserver {
  jobStarted(functionName: string): void;
  /**
   * `outcome`: how the job ended, or `timeout` when the worker ended it because it ran past its
   * function's `timeoutMs`. `seconds`: from the job's arrival to its end.
   */
  jobEnded(functionName: string, outcome: WorkerJobOutcome | 'timeout', seconds: number): void;
}
