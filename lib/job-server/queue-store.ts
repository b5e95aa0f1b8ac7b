/**
 * Where background jobs are kept so that they outlive the process: the seam between the broker and
 * a persistent queue. Only background jobs are stored (foreground callers wait on their connection
 * and lose their job with it, as on gearmand). Strings are byte strings (latin1, one character a
 * byte), as the broker holds them, so ids and payloads go to disk byte for byte.
 */

import type { StoredJob } from './job-broker.js';

/**
 * A stored background job is the broker's StoredJob (what JobBroker.restore takes): a row of
 * gearmand's table (`gearman_queue`), `runAt` kept in whole seconds as its `when_to_run`.
 */
export type { StoredJob };

/** Called once a write is durable (error undefined) or has failed. */
export type CommitCallback = (error?: Error) => void;

export interface QueueStore {
  /** 'memory' keeps nothing; 'sqlite' writes gearmand's table. */
  readonly type: QueueStoreType;
  /** What is written where, for logs (`sqlite /var/lib/gearman/queue.db`). */
  readonly description: string;

  /**
   * Visits the stored jobs in submission order (the order rows were written), for the broker to
   * queue again. Runs once, at start, before any other call.
   */
  replay(visit: (job: StoredJob) => void): void;

  /**
   * Stores a job. `committed` runs once it is durable (or failed): the submitter's JOB_CREATED
   * must wait for it. Writes made in one event-loop turn share one transaction (group commit).
   */
  add(job: StoredJob, committed: CommitCallback): void;

  /** Forgets a job (completed, failed, cancelled). Durable with the next commit; errors are reported to `committed` if given. */
  remove(unique: string, functionName: string, committed?: CommitCallback): void;

  /**
   * At a clean shutdown: every background job still queued, for stores that write only then
   * (`--store-queue-on-shutdown`). Other stores ignore it.
   */
  storeOnShutdown(jobs: Iterable<StoredJob>): void;

  /** Commits what is pending and releases the file. Safe twice. */
  close(): void;
}

export type QueueStoreType = 'memory' | 'sqlite';

/** How `GearmanJobServer` keeps background jobs: the option `queue`. */
export type QueueStoreOptions = MemoryQueueOptions | SqliteQueueOptions;

export interface MemoryQueueOptions {
  readonly type: 'memory';
}

export interface SqliteQueueOptions {
  readonly type: 'sqlite';
  /** The database file, created when missing; gearmand's `--libsqlite3-db`. */
  readonly file: string;
  /** The table; default `gearman_queue`, gearmand's `--libsqlite3-table`. */
  readonly table?: string;
  /**
   * Write the queue only at a clean shutdown (gearmand's `--store-queue-on-shutdown`): fast, but a
   * crash loses every job. Default false: each job is stored before its JOB_CREATED.
   */
  readonly storeOnShutdown?: boolean;
  /**
   * How far a stored job is durable before its JOB_CREATED. 'normal' (default; SQLite's advice for
   * WAL mode): the commit is in the operating system's hands, so a crash or SIGKILL of the process
   * loses nothing, but a power loss or an OS crash may lose the last commits. 'full': each commit
   * that stores jobs also syncs the log to the disk (one fsync per event-loop turn), which survives
   * power loss at the cost of the disk's sync latency; commits that only delete jobs never sync (a
   * lost delete only runs a job again).
   */
  readonly synchronous?: 'full' | 'normal';
  /** How long to wait for a lock held by another process before refusing to start, ms; default 2000. */
  readonly busyTimeoutMs?: number;
}
