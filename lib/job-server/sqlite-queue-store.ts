import { GearmanQueueStoreError } from '../common/errors.js';
import { loadOptionalPeer } from '../common/optional-peer.js';
import { Priority } from './job.js';
import type { CommitCallback, QueueStore, SqliteQueueOptions, StoredJob } from './queue-store.js';

/** The part of better-sqlite3 12.x this store uses (its own types are not a dependency). */
interface SqliteStatement {
  run(...params: unknown[]): { changes: number };
  iterate(...params: unknown[]): IterableIterator<unknown[]>;
  all(...params: unknown[]): unknown[];
  raw(toggle?: boolean): SqliteStatement;
}
interface SqliteDatabase {
  prepare(sql: string): SqliteStatement;
  pragma(source: string, options?: { simple?: boolean }): unknown;
  exec(sql: string): SqliteDatabase;
  close(): SqliteDatabase;
}
type SqliteDatabaseConstructor = new (file: string, options?: { timeout?: number }) => SqliteDatabase;

export const SQLITE_PEER = { name: 'better-sqlite3', range: '^12.0.0' } as const;
export const DEFAULT_QUEUE_TABLE = 'gearman_queue';
const DEFAULT_BUSY_TIMEOUT_MS = 2000;
const COLUMNS = ['unique_key', 'function_name', 'priority', 'data', 'when_to_run'];
/**
 * How long deletes alone wait to share a transaction, and how many may wait: the jobs a crash may
 * run again besides those running. Each commit writes every page it changed, and rows keyed by
 * random unique ids sit on random pages, so a commit of a few dozen deletes writes about a page per
 * delete; hundreds share pages and cost about half as much each.
 */
const DELETE_DELAY_MS = 20;
const MAX_DELAYED_DELETES = 1024;
/**
 * Pages the log may hold before they are copied into the file (SQLite's default is 1,000). Random
 * keys spread every batch over the whole table, so a checkpoint copies nearly every page of the
 * file and syncs twice; 8,192 pages (32 MiB at 4 KiB) make that eight times rarer for a queue of
 * up to that size. The log is emptied at close.
 */
const CHECKPOINT_PAGES = 8192;

/** Opens (creating when missing) gearmand's SQLite queue table in `options.file`. Loads better-sqlite3 first. */
export async function openSqliteQueueStore(
  options: SqliteQueueOptions,
  onWriteError: (error: GearmanQueueStoreError) => void = () => undefined,
): Promise<SqliteQueueStore> {
  const Database = await loadOptionalPeer<SqliteDatabaseConstructor>(SQLITE_PEER.name, SQLITE_PEER.range, 'The sqlite job queue');
  return new SqliteQueueStore(Database, options, onWriteError);
}

interface PendingWrite {
  readonly add: StoredJob | undefined;
  readonly unique: string;
  readonly functionName: string;
  /** An add whose job ended before it was written: nothing to write, its callback still waits for the commit. */
  cancelled: boolean;
  readonly committed: CommitCallback | undefined;
}

/**
 * gearmand's `-q libsqlite3` queue, compatible both ways: the same table and columns, so a file
 * written by gearmand 1.1.20 is replayed here and the reverse (handles are not kept: like gearmand,
 * the table has no column for them, and a restarted server hands out new ones). Unlike gearmand (one transaction and
 * one sync per job, rollback journal), it runs in WAL mode and writes everything asked for in one
 * event-loop turn in one transaction (group commit): a burst of submits costs one sync. The file is
 * locked for this process alone (`locking_mode=EXCLUSIVE`): a second server on it refuses to start
 * instead of replaying the same jobs.
 */
export class SqliteQueueStore implements QueueStore {
  readonly type = 'sqlite';
  readonly description: string;
  private readonly db: SqliteDatabase;
  private readonly file: string;
  private readonly table: string;
  private readonly onShutdownOnly: boolean;
  private readonly insert: SqliteStatement;
  private readonly delete: SqliteStatement;
  private pending: PendingWrite[] = [];
  /** Adds not yet written, by job key, so that a job ending in the same turn cancels its own write. */
  private readonly pendingAdds = new Map<string, PendingWrite>();
  private immediate: NodeJS.Immediate | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;
  /** 'full': commits that store jobs sync the log; commits that only delete do not (see flush). */
  private readonly syncAdds: boolean = false;
  private syncing = false;
  /** Run before each commit of the queue (see beforeCommit). */
  private readonly commitHooks: (() => void)[] = [];

  constructor(
    Database: SqliteDatabaseConstructor,
    options: SqliteQueueOptions,
    private readonly onWriteError: (error: GearmanQueueStoreError) => void = () => undefined,
  ) {
    this.file = options.file;
    if (typeof this.file !== 'string' || this.file === '') throw new TypeError('The sqlite job queue needs a file name (option file)');
    this.table = options.table ?? DEFAULT_QUEUE_TABLE;
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,255}$/.test(this.table)) {
      throw new TypeError(`Queue table name must be letters, digits and _ (not starting with a digit), got ${JSON.stringify(this.table)}`);
    }
    const synchronous = options.synchronous ?? 'normal';
    if (synchronous !== 'full' && synchronous !== 'normal') {
      throw new TypeError(`synchronous must be 'full' or 'normal', got ${JSON.stringify(synchronous)}`);
    }
    this.onShutdownOnly = options.storeOnShutdown === true;
    this.description = `sqlite ${this.file} (table ${this.table}${this.onShutdownOnly ? ', stored on shutdown only' : ''})`;
    let db: SqliteDatabase | undefined;
    try {
      db = new Database(this.file, { timeout: options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS });
      // Exclusive before WAL: the lock is then never shared, and no shared-memory index is made.
      db.pragma('locking_mode = EXCLUSIVE');
      const mode = db.pragma('journal_mode = WAL', { simple: true });
      if (mode !== 'wal') throw new Error(`SQLite kept journal mode ${String(mode)} instead of WAL`);
      db.pragma(`synchronous = ${synchronous.toUpperCase()}`);
      this.syncAdds = synchronous === 'full';
      db.pragma(`wal_autocheckpoint = ${CHECKPOINT_PAGES}`);
      // Takes the exclusive lock now (held until close), so a locked file is refused at start.
      db.exec('BEGIN EXCLUSIVE; COMMIT');
      const problems = db.pragma('quick_check', { simple: false }) as { quick_check: string }[];
      if (problems.length !== 1 || problems[0].quick_check !== 'ok') {
        throw new Error(`the file is damaged: ${problems.map((row) => row.quick_check).join('; ')}`);
      }
      // gearmand's own statement, so both servers see the same table.
      db.exec(
        `CREATE TABLE IF NOT EXISTS ${this.table} ( unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name))`,
      );
      const columns = (db.pragma(`table_info(${this.table})`) as { name: string }[]).map((column) => column.name);
      const missing = COLUMNS.filter((name) => !columns.includes(name));
      if (missing.length > 0) throw new Error(`table ${this.table} is not gearmand's queue table: it lacks ${missing.join(', ')}`);
      // The key as bytes: CAST(blob AS TEXT) keeps them as they are, and gearmand binds them as text too.
      // SQLite gives each row the next rowid: rowid order is submission order, as with gearmand's rows.
      this.insert = db.prepare(
        `INSERT OR REPLACE INTO ${this.table} (unique_key, function_name, priority, data, when_to_run) VALUES (CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, ?)`,
      );
      this.delete = db.prepare(`DELETE FROM ${this.table} WHERE unique_key = CAST(? AS TEXT) AND function_name = CAST(? AS TEXT)`);
    } catch (error) {
      db?.close();
      throw this.storeError('cannot be opened', error);
    }
    this.db = db;
  }

  /**
   * The open database, for tables kept beside the queue in the same file (the job server's
   * results: see sqlite-results.ts). Closed with the store.
   */
  get database(): unknown {
    return this.db;
  }

  /**
   * Runs `hook` in each of the queue's transactions, before the queue's own writes, so that writes
   * kept beside it (the results' tables) reach the file no later than the queue's: a result with or
   * before its job's delete, a handle with or before its job's JOB_CREATED.
   */
  beforeCommit(hook: () => void): void {
    this.commitHooks.push(hook);
  }

  replay(visit: (job: StoredJob) => void): void {
    // Submission order is rowid order; the broker's per-priority queues restore the priority order.
    const rows = this.db
      .prepare(
        `SELECT CAST(unique_key AS BLOB), CAST(function_name AS BLOB), priority, data, when_to_run FROM ${this.table} ORDER BY rowid`,
      )
      .raw(true);
    try {
      for (const [unique, functionName, priority, data, whenToRun] of rows.iterate()) {
        const seconds = Math.max(0, Number(whenToRun) || 0);
        visit({
          functionName: byteString(functionName),
          unique: byteString(unique),
          data: byteString(data),
          priority: clampPriority(priority),
          ...(seconds > 0 ? { runAt: seconds * 1000 } : {}),
        });
      }
      // Written at the next clean shutdown; a crash before then must not replay this old copy.
      if (this.onShutdownOnly) this.db.exec(`DELETE FROM ${this.table}`);
    } catch (error) {
      throw this.storeError('cannot be read', error);
    }
  }

  add(job: StoredJob, committed: CommitCallback): void {
    if (this.onShutdownOnly) return committed();
    if (this.closed) return committed(this.storeError('is closed', undefined));
    const write: PendingWrite = { add: job, unique: job.unique, functionName: job.functionName, cancelled: false, committed };
    this.pending.push(write);
    this.pendingAdds.set(keyOf(job.unique, job.functionName), write);
    this.scheduleFlush(true);
  }

  remove(unique: string, functionName: string, committed?: CommitCallback): void {
    if (this.onShutdownOnly || this.closed) return committed?.();
    const key = keyOf(unique, functionName);
    const add = this.pendingAdds.get(key);
    if (add) {
      // Stored and ended within one turn: nothing reaches the file.
      add.cancelled = true;
      this.pendingAdds.delete(key);
      if (committed) this.pending.push({ add: undefined, unique, functionName, cancelled: true, committed });
    } else {
      this.pending.push({ add: undefined, unique, functionName, cancelled: false, committed });
    }
    this.scheduleFlush(false);
  }

  storeOnShutdown(jobs: Iterable<StoredJob>): void {
    if (!this.onShutdownOnly || this.closed) return;
    try {
      this.db.exec('BEGIN');
      this.db.exec(`DELETE FROM ${this.table}`);
      for (const job of jobs) this.write(job);
      this.db.exec('COMMIT');
    } catch (error) {
      this.rollback();
      this.onWriteError(this.storeError('could not store the queue at shutdown', error));
    }
  }

  close(): void {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    try {
      this.db.pragma('wal_checkpoint(TRUNCATE)');
    } catch {
      // The log is replayed at the next open anyway.
    }
    this.db.close();
  }

  /** Commits every write of this turn now (also run by close()). */
  flush(): void {
    if (this.immediate) clearImmediate(this.immediate);
    if (this.timer) clearTimeout(this.timer);
    this.immediate = undefined;
    this.timer = undefined;
    const batch = this.pending;
    if (batch.length === 0) return;
    this.pending = [];
    this.pendingAdds.clear();
    let failure: GearmanQueueStoreError | undefined;
    try {
      if (this.syncAdds) {
        // A lost delete only runs a job again, so a commit of deletes alone skips the sync; the
        // next sync of the log (the next stored job, or a checkpoint) makes it durable as well.
        const syncNow = batch.some((write) => write.add !== undefined && !write.cancelled);
        if (syncNow !== this.syncing) {
          this.db.pragma(`synchronous = ${syncNow ? 'FULL' : 'NORMAL'}`);
          this.syncing = syncNow;
        }
      }
      this.db.exec('BEGIN');
      // Writes kept beside the queue join its transaction (one commit a turn, not two), ahead of its own.
      for (const hook of this.commitHooks) hook();
      for (const write of batch) {
        if (write.cancelled) continue;
        if (write.add) this.write(write.add);
        else this.delete.run(bytesParameter(write.unique), bytesParameter(write.functionName));
      }
      this.db.exec('COMMIT');
    } catch (error) {
      this.rollback();
      failure = this.storeError(`could not store ${batch.length} change(s)`, error);
      this.onWriteError(failure);
    }
    for (const write of batch) write.committed?.(failure);
  }

  private write(job: StoredJob): void {
    this.insert.run(
      bytesParameter(job.unique),
      bytesParameter(job.functionName),
      job.priority,
      Buffer.from(job.data, 'latin1'),
      // gearmand's when_to_run: whole seconds, 0 = at once.
      job.runAt ? Math.floor(job.runAt / 1000) : 0,
    );
  }

  /**
   * Stored jobs wait for their commit (their JOB_CREATED does), so they commit after this turn's I/O
   * callbacks: every packet read in this turn joins the transaction. Deletes alone wait up to
   * DELETE_DELAY_MS for company (or the next stored job), so that a drain does not pay one
   * transaction per completed job; a crash in between only runs those jobs again.
   */
  private scheduleFlush(urgent: boolean): void {
    if (urgent || this.pending.length >= MAX_DELAYED_DELETES) {
      if (this.immediate) return;
      this.immediate = setImmediate(() => this.flush());
    } else if (!this.immediate && !this.timer) {
      this.timer = setTimeout(() => this.flush(), DELETE_DELAY_MS);
    }
  }

  private rollback(): void {
    try {
      this.db.exec('ROLLBACK');
    } catch {
      // No transaction was open.
    }
  }

  private storeError(what: string, cause: unknown): GearmanQueueStoreError {
    const code = (cause as { code?: string } | undefined)?.code;
    const reason = cause instanceof Error ? cause.message : '';
    const hint =
      code === 'SQLITE_BUSY'
        ? ': it is locked by another process (another job server on the same file?)'
        : code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT'
          ? `: it is not a usable SQLite database (${reason}); move it aside to start with an empty queue`
          : reason
            ? `: ${reason}`
            : '';
    return new GearmanQueueStoreError(this.file, `Job queue file ${this.file} ${what}${hint}`, { cause });
  }
}

function keyOf(unique: string, functionName: string): string {
  return `${functionName}\0${unique}`;
}

/** ASCII goes as text as it is; other byte strings as their bytes (CAST to TEXT in the statement). */
function bytesParameter(bytes: string): string | Buffer {
  return NON_ASCII.test(bytes) ? Buffer.from(bytes, 'latin1') : bytes;
}
const NON_ASCII = /[\u0080-\uffff]/;

/** A column as a byte string: blobs as their bytes, text as its UTF-8 bytes, NULL as empty. */
function byteString(value: unknown): string {
  if (Buffer.isBuffer(value)) return value.toString('latin1');
  if (value === null || value === undefined) return '';
  return Buffer.from(String(value), 'utf8').toString('latin1');
}

function clampPriority(value: unknown): Priority {
  const priority = Number(value);
  return priority === Priority.HIGH || priority === Priority.LOW ? priority : Priority.NORMAL;
}
