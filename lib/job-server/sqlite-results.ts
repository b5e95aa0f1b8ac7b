import type { BatchItemOutcome } from '../protocol/batch.js';
import type { ResultPersistence, StoredResult } from './stored-results.js';

/** Where the job server's background jobs' handles go, so that a restart gives each its old one back. */
export interface JobPersistence {
  /** A background job was accepted (not a batch's item); `id` is the broker's number for it. Byte strings. */
  jobAccepted(id: number, handle: string, unique: string, functionName: string, createdAt: number): void;
  /** It ended (its result, if kept, is saved with its handle). */
  jobEnded(id: number): void;
}

/** Where the batches the job server coordinates go, so that a restart carries them on. */
export interface BatchPersistence {
  /** `request` is the BatchRequest as JSON; `items` byte strings. */
  batchStarted(handle: string, unique: string, request: string, items: readonly string[], createdAt: number): void;
  itemEnded(handle: string, index: number, outcome: BatchItemOutcome): void;
  batchEnded(handle: string): void;
}

/** The part of better-sqlite3 12.x these tables use (the queue store opens the database). */
export interface ResultsDatabase {
  prepare(sql: string): { run(...params: unknown[]): unknown; all(...params: unknown[]): unknown[]; raw(toggle?: boolean): unknown };
  exec(sql: string): unknown;
  transaction<T extends (...args: never[]) => unknown>(fn: T): T;
}

const RESULTS_TABLE = 'gearman_results';
const BATCHES_TABLE = 'gearman_batches';
const ITEMS_TABLE = 'gearman_batch_items';
const HANDLES_TABLE = 'gearman_job_handles';
/**
 * Keyed by the broker's number for the job (its rowid), which only grows while the server runs: a
 * row is appended when a job is accepted and goes when it ends, nearly in the same order, so the
 * pages a commit writes are few. Keyed by unique id (random, as the queue table is), each commit
 * wrote a page per job and halved the sqlite queue's submit rate. The numbers start again at each
 * start, so the table is rewritten then (replaceHandles).
 */
const CREATE_HANDLES_TABLE = `CREATE TABLE IF NOT EXISTS ${HANDLES_TABLE} (unique_key TEXT, function_name TEXT, handle TEXT, created_at INTEGER)`;

/** A byte string (latin1) as the bytes SQLite keeps, and back. */
const bytes = (text: string) => Buffer.from(text, 'latin1');
const text = (value: unknown) => (Buffer.isBuffer(value) ? value.toString('latin1') : String(value ?? ''));

/** WORK_DATA parts (byte strings) as one blob: each a 4-byte big-endian length and its bytes. */
function packParts(parts: readonly string[]): Buffer {
  const packed = Buffer.allocUnsafe(parts.reduce((total, part) => total + 4 + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    packed.writeUInt32BE(part.length, offset);
    packed.write(part, offset + 4, 'latin1');
    offset += 4 + part.length;
  }
  return packed;
}

function unpackParts(packed: Buffer): string[] {
  const parts: string[] = [];
  for (let offset = 0; offset + 4 <= packed.length;) {
    const length = packed.readUInt32BE(offset);
    parts.push(packed.toString('latin1', offset + 4, offset + 4 + length));
    offset += 4 + length;
  }
  return parts;
}

/** A batch item's outcome as one blob: a kind byte (c, e, f) and the payload (or, for f, the reason). */
export function packOutcome(outcome: BatchItemOutcome): Buffer {
  const tag = { complete: 'c', exception: 'e', fail: 'f' }[outcome.kind];
  const body = outcome.kind === 'fail' ? Buffer.from(outcome.reason ?? '', 'utf8') : outcome.data;
  return Buffer.concat([Buffer.from(tag), body]);
}

export function unpackOutcome(packed: Buffer): BatchItemOutcome {
  const body = Buffer.from(packed.subarray(1));
  switch (String.fromCharCode(packed[0])) {
    case 'c':
      return { kind: 'complete', data: body };
    case 'e':
      return { kind: 'exception', data: body };
    default:
      return body.length > 0 ? { kind: 'fail', reason: body.toString('utf8') } : { kind: 'fail' };
  }
}

/** A batch as it was when the server stopped. Byte strings for ids and payloads. */
export interface PersistedBatch {
  readonly handle: string;
  readonly unique: string;
  /** The batch's options (BatchRequest) as JSON. */
  readonly request: string;
  readonly total: number;
  readonly createdAt: number;
  /** Items not ended yet, with their payload. */
  readonly pending: { index: number; data: string }[];
  /** Items ended, with their outcome. */
  readonly ended: { index: number; outcome: BatchItemOutcome }[];
}

/** A queued job's handle as replaceHandles() writes it: `id` is the broker's number for the job. */
export interface QueuedHandle {
  readonly id: number;
  readonly handle: string;
  readonly unique: string;
  readonly functionName: string;
  readonly createdAt: number;
}

/** A queued job's handle as kept, by its key in the queue: function and unique id. */
export interface PersistedHandle {
  readonly handle: string;
  readonly createdAt: number;
}

/**
 * Kept results, the handles of queued background jobs and running batches, in the sqlite queue's
 * own database file, in tables of their own beside gearmand's `gearman_queue` (which they leave
 * alone): `gearman_results`, `gearman_job_handles`, `gearman_batches` and `gearman_batch_items`.
 * Writes made in one event-loop turn are committed together after its I/O (group commit, as the
 * queue does), and always before the queue's own commit (the queue calls flush() first, see
 * SqliteQueueStore.beforeCommit): a result is on disk before the queue deletes its job, and a
 * queued job's handle before its JOB_CREATED. A crash in between runs the job again, never loses
 * its result.
 */
export class SqliteResults implements ResultPersistence, JobPersistence, BatchPersistence {
  private pending: (() => void)[] = [];
  private scheduled: NodeJS.Immediate | undefined;
  private readonly commit: () => void;
  private readonly statements;
  private closed = false;

  constructor(
    private readonly db: ResultsDatabase,
    private readonly onError: (error: Error) => void,
  ) {
    db.exec(
      `CREATE TABLE IF NOT EXISTS ${RESULTS_TABLE} (handle TEXT PRIMARY KEY, unique_key TEXT, function_name TEXT, outcome TEXT,
         payload BLOB, parts BLOB, numerator INTEGER, denominator INTEGER, created_at INTEGER, ended_at INTEGER, dropped INTEGER, batch TEXT);
       CREATE TABLE IF NOT EXISTS ${BATCHES_TABLE} (handle TEXT PRIMARY KEY, unique_key TEXT, request TEXT, total INTEGER, created_at INTEGER);
       CREATE TABLE IF NOT EXISTS ${ITEMS_TABLE} (handle TEXT, idx INTEGER, data BLOB, outcome BLOB, PRIMARY KEY (handle, idx));
       ${CREATE_HANDLES_TABLE};`,
    );
    this.statements = {
      saveResult: db.prepare(
        `INSERT OR REPLACE INTO ${RESULTS_TABLE} VALUES (CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      deleteResult: db.prepare(`DELETE FROM ${RESULTS_TABLE} WHERE handle = CAST(? AS TEXT)`),
      saveBatch: db.prepare(`INSERT OR REPLACE INTO ${BATCHES_TABLE} VALUES (CAST(? AS TEXT), CAST(? AS TEXT), ?, ?, ?)`),
      saveItem: db.prepare(`INSERT OR REPLACE INTO ${ITEMS_TABLE} VALUES (CAST(? AS TEXT), ?, ?, NULL)`),
      itemEnded: db.prepare(`UPDATE ${ITEMS_TABLE} SET data = NULL, outcome = ? WHERE handle = CAST(? AS TEXT) AND idx = ?`),
      deleteBatch: db.prepare(`DELETE FROM ${BATCHES_TABLE} WHERE handle = CAST(? AS TEXT)`),
      deleteItems: db.prepare(`DELETE FROM ${ITEMS_TABLE} WHERE handle = CAST(? AS TEXT)`),
      saveHandle: db.prepare(
        `INSERT OR REPLACE INTO ${HANDLES_TABLE} (rowid, unique_key, function_name, handle, created_at) VALUES (?, CAST(? AS TEXT), CAST(? AS TEXT), CAST(? AS TEXT), ?)`,
      ),
      deleteHandle: db.prepare(`DELETE FROM ${HANDLES_TABLE} WHERE rowid = ?`),
    };
    this.commit = db.transaction(() => {
      for (const write of this.pending.splice(0)) write();
    });
  }

  /** Every kept result, oldest first (to put back into StoredResults). */
  loadResults(): StoredResult[] {
    const rows = (
      this.db.prepare(`SELECT CAST(handle AS BLOB), CAST(unique_key AS BLOB), CAST(function_name AS BLOB), outcome, payload, parts,
        numerator, denominator, created_at, ended_at, dropped, batch FROM ${RESULTS_TABLE} ORDER BY ended_at`) as unknown as {
        raw(toggle: boolean): { all(): unknown[][] };
      }
    )
      .raw(true)
      .all();
    return rows.map(
      ([handle, unique, functionName, outcome, payload, parts, numerator, denominator, createdAt, endedAt, dropped, batch]) => ({
        handle: text(handle),
        unique: text(unique),
        functionName: text(functionName),
        outcome: String(outcome) as StoredResult['outcome'],
        payload: Buffer.isBuffer(payload) ? payload.toString('latin1') : '',
        parts: Buffer.isBuffer(parts) ? unpackParts(parts) : [],
        numerator: Number(numerator),
        denominator: Number(denominator),
        createdAt: Number(createdAt),
        endedAt: Number(endedAt),
        dropped: Number(dropped) === 1,
        ...(typeof batch === 'string' && batch !== '' ? { batch: JSON.parse(batch) as StoredResult['batch'] } : {}),
      }),
    );
  }

  /** The handles of the background jobs that were queued, by `<function>\0<unique>`. */
  loadHandles(): Map<string, PersistedHandle> {
    const rows = (
      this.db.prepare(
        `SELECT CAST(unique_key AS BLOB), CAST(function_name AS BLOB), CAST(handle AS BLOB), created_at FROM ${HANDLES_TABLE}`,
      ) as unknown as { raw(toggle: boolean): { all(): unknown[][] } }
    )
      .raw(true)
      .all();
    const handles = new Map<string, PersistedHandle>();
    for (const [unique, functionName, handle, createdAt] of rows) {
      handles.set(handleKey(text(unique), text(functionName)), { handle: text(handle), createdAt: Number(createdAt) });
    }
    return handles;
  }

  /** The batches that were running, with their items. */
  loadBatches(): PersistedBatch[] {
    const batches = (
      this.db.prepare(
        `SELECT CAST(handle AS BLOB), CAST(unique_key AS BLOB), request, total, created_at FROM ${BATCHES_TABLE} ORDER BY created_at`,
      ) as unknown as { raw(toggle: boolean): { all(): unknown[][] } }
    )
      .raw(true)
      .all();
    const items = this.db.prepare(
      `SELECT idx, data, outcome FROM ${ITEMS_TABLE} WHERE handle = CAST(? AS TEXT) ORDER BY idx`,
    ) as unknown as {
      raw(toggle: boolean): { all(handle: Buffer): unknown[][] };
    };
    return batches.map(([handle, unique, request, total, createdAt]) => {
      const pending: PersistedBatch['pending'] = [];
      const ended: PersistedBatch['ended'] = [];
      for (const [index, data, outcome] of items.raw(true).all(handle as Buffer)) {
        if (Buffer.isBuffer(outcome)) ended.push({ index: Number(index), outcome: unpackOutcome(outcome) });
        else pending.push({ index: Number(index), data: text(data) });
      }
      return {
        handle: text(handle),
        unique: text(unique),
        request: String(request),
        total: Number(total),
        createdAt: Number(createdAt),
        pending,
        ended,
      };
    });
  }

  saved(result: StoredResult): void {
    this.write(() =>
      this.statements.saveResult.run(
        bytes(result.handle),
        bytes(result.unique),
        bytes(result.functionName),
        result.outcome,
        bytes(result.payload),
        packParts(result.parts),
        result.numerator,
        result.denominator,
        result.createdAt,
        result.endedAt,
        result.dropped ? 1 : 0,
        result.batch ? JSON.stringify(result.batch) : '',
      ),
    );
  }

  deleted(handles: readonly string[]): void {
    this.write(() => {
      for (const handle of handles) this.statements.deleteResult.run(bytes(handle));
    });
  }

  jobAccepted(id: number, handle: string, unique: string, functionName: string, createdAt: number): void {
    this.write(() => this.statements.saveHandle.run(id, bytes(unique), bytes(functionName), bytes(handle), createdAt));
  }

  jobEnded(id: number): void {
    this.write(() => this.statements.deleteHandle.run(id));
  }

  /**
   * Replaces every kept handle with those of the jobs restored at start, numbered as this run's
   * broker numbers them (rows are keyed by that number, see CREATE_HANDLES_TABLE). Run once, after
   * loadHandles() and before any job is accepted; in one transaction, at once.
   */
  replaceHandles(jobs: Iterable<QueuedHandle>): void {
    this.flush();
    this.db.transaction(() => {
      this.db.exec(`DROP TABLE IF EXISTS ${HANDLES_TABLE}; ${CREATE_HANDLES_TABLE}`);
      for (const job of jobs) {
        this.statements.saveHandle.run(job.id, bytes(job.unique), bytes(job.functionName), bytes(job.handle), job.createdAt);
      }
    })();
  }

  batchStarted(handle: string, unique: string, request: string, items: readonly string[], createdAt: number): void {
    this.write(() => {
      this.statements.saveBatch.run(bytes(handle), bytes(unique), request, items.length, createdAt);
      items.forEach((data, index) => this.statements.saveItem.run(bytes(handle), index, bytes(data)));
    });
  }

  itemEnded(handle: string, index: number, outcome: BatchItemOutcome): void {
    this.write(() => this.statements.itemEnded.run(packOutcome(outcome), bytes(handle), index));
  }

  batchEnded(handle: string): void {
    this.write(() => {
      this.statements.deleteItems.run(bytes(handle));
      this.statements.deleteBatch.run(bytes(handle));
    });
  }

  /** Commits what is pending now. */
  flush(): void {
    if (this.scheduled) clearImmediate(this.scheduled);
    this.scheduled = undefined;
    if (this.pending.length === 0 || this.closed) return;
    try {
      this.commit();
    } catch (error) {
      this.onError(error as Error);
    }
  }

  /** Commits what is pending; later writes are dropped (the database closes with the queue). */
  close(): void {
    this.flush();
    this.closed = true;
  }

  private write(run: () => unknown): void {
    if (this.closed) return;
    this.pending.push(() => void run());
    this.scheduled ??= setImmediate(() => this.flush());
  }
}

/** A job's key in the queue table, as loadHandles() keys it. */
export function handleKey(unique: string, functionName: string): string {
  return `${functionName}\0${unique}`;
}
