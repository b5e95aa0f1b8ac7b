import type { CommitCallback, QueueStore, StoredJob } from './queue-store.js';

/**
 * The default: jobs live only in the server's memory and die with it. Writes "commit" at once, so
 * the broker's reply path is the same for every store.
 */
export class MemoryQueueStore implements QueueStore {
  readonly type = 'memory';
  readonly description = 'memory (not persisted)';

  replay(_visit: (job: StoredJob) => void): void {}

  add(_job: StoredJob, committed: CommitCallback): void {
    committed();
  }

  remove(_unique: string, _functionName: string, committed?: CommitCallback): void {
    committed?.();
  }

  storeOnShutdown(_jobs: Iterable<StoredJob>): void {}

  close(): void {}
}
