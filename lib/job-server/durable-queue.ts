import type { JobLifecycle, JobView } from './job-lifecycle.js';
import type { QueueStore, StoredJob } from './queue-store.js';

/**
 * Plugs a queue store into the broker's lifecycle: a background job is stored when accepted (its
 * JOB_CREATED waits for the commit) and deleted when it ends, however it ends (complete, fail,
 * exception, retries exhausted, cancelled). Foreground jobs are never stored: their caller waits on
 * the connection. A store that writes only at shutdown is given the jobs still here then.
 */
export class DurableQueue implements JobLifecycle {
  /** Background jobs alive now, for a store that writes at shutdown only; undefined otherwise. */
  private readonly live: Map<string, StoredJob> | undefined;
  private store: QueueStore | undefined;

  /** The store is opened later (it may load a package and read a file): see attach(). */
  constructor(writesAtShutdown: boolean) {
    this.live = writesAtShutdown ? new Map() : undefined;
  }

  /** Before the server accepts its first connection; puts the stored jobs back through `restore`. */
  attach(store: QueueStore, restore: (job: StoredJob) => void): void {
    this.store = store;
    store.replay((job) => {
      restore(job);
      this.live?.set(`${job.functionName}\0${job.unique}`, job);
    });
  }

  accepted(job: JobView, runAt: number): Promise<void> | undefined {
    if (!job.background) return undefined;
    const stored = storedJob(job, runAt);
    if (this.live) {
      this.live.set(keyOf(job), stored);
      return undefined;
    }
    const store = this.store!;
    return new Promise<void>((resolve, reject) => store.add(stored, (error) => (error ? reject(error) : resolve())));
  }

  ended(job: JobView): void {
    if (!job.background) return;
    if (this.live) this.live.delete(keyOf(job));
    else this.store?.remove(job.unique, job.functionName);
  }

  /** At a clean shutdown: hands the jobs still here to a store that writes only then, and closes the store. */
  close(): void {
    const store = this.store;
    this.store = undefined;
    if (!store) return;
    if (this.live) store.storeOnShutdown(this.live.values());
    store.close();
  }
}

function keyOf(job: JobView): string {
  return `${job.functionName}\0${job.unique}`;
}

function storedJob(job: JobView, runAt: number): StoredJob {
  const stored = { functionName: job.functionName, unique: job.unique, data: job.data, priority: job.priority };
  return runAt > Date.now() ? { ...stored, runAt } : stored;
}
