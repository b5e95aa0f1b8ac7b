import type { JobEnd, JobLifecycle, JobView } from '../job-server/job-lifecycle.js';
import type { JobCounts, ThroughputSource } from './dashboard-state.js';

/** Counts the jobs a job server of this process ends (its lifecycle), for the dashboard's chart when there are no metrics. */
export class ServerJobCounter implements JobLifecycle, ThroughputSource {
  readonly label = 'the job server';
  private completed = 0;
  private failed = 0;

  ended(_job: JobView, end: JobEnd): void {
    if (end.outcome.kind === 'complete') this.completed++;
    else this.failed++;
  }

  read(): JobCounts {
    return { completed: this.completed, failed: this.failed };
  }
}
