import type { WorkerJobOutcome } from '../worker/worker-job.js';
import type { GearmanWorkerObserver } from '../worker/worker-observer.js';
import type { JobCounts, ThroughputSource } from './dashboard-state.js';

/** Counts the jobs workers end, for the dashboard's chart when there are no metrics to read them from. */
export class WorkerJobCounter implements GearmanWorkerObserver, ThroughputSource {
  readonly label = "this app's workers";
  private completed = 0;
  private failed = 0;

  jobStarted(): void {}

  jobEnded(_functionName: string, outcome: WorkerJobOutcome | 'timeout'): void {
    if (outcome === 'completed') this.completed++;
    else this.failed++;
  }

  read(): JobCounts {
    return { completed: this.completed, failed: this.failed };
  }
}
