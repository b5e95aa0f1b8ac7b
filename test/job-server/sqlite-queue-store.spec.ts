import { jest } from '@jest/globals';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { GearmanMissingPeerError, GearmanQueueStoreError } from '../../lib/common/errors.js';
import { loadOptionalPeer } from '../../lib/common/optional-peer.js';
import { MemoryQueueStore } from '../../lib/job-server/memory-queue-store.js';
import { openQueueStore } from '../../lib/job-server/open-queue-store.js';
import type { StoredJob } from '../../lib/job-server/queue-store.js';
import { SqliteQueueStore } from '../../lib/job-server/sqlite-queue-store.js';
import { tempQueueDir } from '../support/queue-files.js';

type Database = ConstructorParameters<typeof SqliteQueueStore>[0];
const BetterSqlite = createRequire(`${process.cwd()}/package.json`)('better-sqlite3') as Database;

const files = tempQueueDir();
afterAll(() => files.remove());
let fileCount = 0;
const newFile = () => files.file(`q${++fileCount}.db`);

const opened: SqliteQueueStore[] = [];
afterEach(() => {
  for (const store of opened.splice(0)) store.close();
});
function open(file: string, options: Partial<ConstructorParameters<typeof SqliteQueueStore>[1]> = {}, Db: Database = BetterSqlite) {
  const store = new SqliteQueueStore(Db, { type: 'sqlite', file, ...options });
  opened.push(store);
  return store;
}
function closeAll(): void {
  for (const store of opened.splice(0)) store.close();
}
function replayed(store: SqliteQueueStore): StoredJob[] {
  const jobs: StoredJob[] = [];
  store.replay((job) => jobs.push(job));
  return jobs;
}
const job = (unique: string, extra: Partial<StoredJob> = {}): StoredJob => ({
  functionName: 'fn',
  unique,
  data: `payload-${unique}`,
  priority: 1,
  ...extra,
});
const committed = (store: SqliteQueueStore, stored: StoredJob) =>
  new Promise<void>((resolve, reject) => store.add(stored, (error) => (error ? reject(error) : resolve())));
/** better-sqlite3 that notes every COMMIT in `commits`. */
function countingCommits(commits: string[]): Database {
  class CountingDatabase extends (BetterSqlite as unknown as new (file: string, options?: object) => { exec(sql: string): unknown }) {
    override exec(sql: string) {
      if (sql === 'COMMIT') commits.push(sql);
      return super.exec(sql);
    }
  }
  return CountingDatabase as unknown as Database;
}
/** Rows as the sqlite3 CLI sees them, another program than ours. */
const sqlite3 = (file: string, sql: string) => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

describe('SqliteQueueStore', () => {
  test('a stored job is committed after this turn, and replayed by the next store with every field', async () => {
    const file = newFile();
    const store = open(file);
    const calls: string[] = [];
    store.add(job('u-7', { priority: 0, runAt: 1_900_000_000_000 }), (error) => calls.push(error ? error.message : 'committed'));
    expect(calls).toEqual([]); // not before the commit
    await new Promise((resolve) => setImmediate(resolve));
    expect(calls).toEqual(['committed']);
    closeAll();
    expect(replayed(open(file))).toEqual([job('u-7', { priority: 0, runAt: 1_900_000_000_000 })]);
  });

  test('gearmand’s table and columns, WAL mode', async () => {
    const file = newFile();
    const store = open(file);
    await committed(store, job('u-1'));
    closeAll();
    expect(sqlite3(file, '.schema')).toBe(
      'CREATE TABLE gearman_queue ( unique_key TEXT, function_name TEXT, priority INTEGER, data BLOB, when_to_run INTEGER, PRIMARY KEY (unique_key, function_name));',
    );
    expect(sqlite3(file, 'PRAGMA journal_mode')).toBe('wal');
    expect(sqlite3(file, 'SELECT rowid, unique_key, function_name, priority, typeof(data), data, when_to_run FROM gearman_queue')).toBe(
      '1|u-1|fn|1|blob|payload-u-1|0',
    );
  });

  test('replays in submission order, whatever was removed in between, also after the newest row went', async () => {
    const file = newFile();
    const store = open(file);
    for (let n = 1; n <= 6; n++) store.add(job(`u-${n}`, { priority: n % 3 }), () => undefined);
    await committed(store, job('u-7'));
    store.remove('u-2', 'fn');
    store.remove('u-7', 'fn');
    await committed(store, job('u-8', { priority: 2 }));
    await committed(store, job('u-9', { priority: 0 }));
    closeAll();
    expect(replayed(open(file)).map((stored) => stored.unique)).toEqual(['u-1', 'u-3', 'u-4', 'u-5', 'u-6', 'u-8', 'u-9']);
  });

  test('every write of one turn is one transaction (group commit)', async () => {
    const commits: string[] = [];
    const store = open(newFile(), {}, countingCommits(commits));
    const before = commits.length;
    const writes = Array.from({ length: 500 }, (_, i) => committed(store, job(`u-${i}`)));
    store.remove('u-3', 'fn');
    await Promise.all(writes);
    expect(commits.length - before).toBe(1);
    await Promise.all([committed(store, job('later'))]);
    expect(commits.length - before).toBe(2);
    // Deletes alone wait a moment for company; an add meanwhile takes them along in its commit.
    const deleted = new Promise<void>((resolve) => store.remove('u-4', 'fn', () => resolve()));
    store.remove('u-5', 'fn');
    await new Promise((resolve) => setImmediate(resolve));
    expect(commits.length - before).toBe(2);
    await committed(store, job('carrier'));
    await deleted;
    expect(commits.length - before).toBe(3);
    // And without one they commit on their own.
    await new Promise<void>((resolve, reject) => store.remove('u-6', 'fn', (error) => (error ? reject(error) : resolve())));
    expect(commits.length - before).toBe(4);
  });

  test('deletes alone share one commit for up to 20 ms, and 1,024 waiting commit at once', async () => {
    const commits: string[] = [];
    const file = newFile();
    const store = open(file, {}, countingCommits(commits));
    for (let n = 0; n < 1100; n++) store.add(job(`u-${n}`), () => undefined);
    store.flush();
    jest.useFakeTimers();
    try {
      const before = commits.length;
      // A drain: a few deletes a turn, turn after turn.
      for (let turn = 0; turn < 19; turn++) {
        store.remove(`u-${2 * turn}`, 'fn');
        store.remove(`u-${2 * turn + 1}`, 'fn');
        await jest.advanceTimersByTimeAsync(1);
      }
      expect(commits.length).toBe(before);
      await jest.advanceTimersByTimeAsync(1);
      expect(commits.length).toBe(before + 1);
      // A faster drain fills a transaction before the time is up.
      for (let n = 38; n < 38 + 1024; n++) store.remove(`u-${n}`, 'fn');
      await jest.advanceTimersByTimeAsync(0);
      expect(commits.length).toBe(before + 2);
    } finally {
      jest.useRealTimers();
    }
    closeAll();
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_queue')).toBe(String(1100 - 38 - 1024));
  });

  test('the log holds up to 8,192 pages before they are copied into the file, and is emptied at close', async () => {
    const file = newFile();
    const store = open(file);
    // About 3,000 pages of rows, in commits of 100 rows: SQLite's default (1,000 pages) would have
    // copied them into the file and started the log over twice.
    const payload = 'p'.repeat(4000);
    for (let batch = 0; batch < 30; batch++) {
      await Promise.all(Array.from({ length: 100 }, (_, i) => committed(store, job(`b${batch}-${i}`, { data: payload }))));
    }
    expect(statSync(`${file}-wal`).size).toBeGreaterThan(2500 * 4096);
    closeAll();
    expect(existsSync(`${file}-wal`) ? statSync(`${file}-wal`).size : 0).toBe(0);
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_queue')).toBe('3000');
  });

  test("synchronous 'full' stores and replays the same; a bad value is refused", async () => {
    const file = newFile();
    const store = open(file, { synchronous: 'full' });
    await committed(store, job('synced'));
    store.remove('synced', 'fn');
    await committed(store, job('kept'));
    closeAll();
    expect(replayed(open(file)).map((stored) => stored.unique)).toEqual(['kept']);
    expect(() => open(newFile(), { synchronous: 'always' as 'full' })).toThrow("synchronous must be 'full' or 'normal'");
  });

  test('a job stored and ended in the same turn writes nothing, and its submitter still hears of the commit', async () => {
    const file = newFile();
    const store = open(file);
    const done = committed(store, job('brief'));
    store.remove('brief', 'fn');
    await committed(store, job('kept'));
    await done;
    closeAll();
    expect(replayed(open(file)).map((stored) => stored.unique)).toEqual(['kept']);
  });

  test('unique ids, function names and payloads go to disk byte for byte (NUL, non-UTF-8)', async () => {
    const file = newFile();
    const store = open(file);
    const odd = job('caf\xe9\xff', { functionName: 'f\xc3\xa9', data: '\0\x01\xfe\xff\0' });
    await committed(store, odd);
    await committed(store, job('plain'));
    store.remove('caf\xe9\xff', 'f\xc3\xa9');
    await committed(store, job('caf\xe9\xff', { functionName: 'f\xc3\xa9', data: 'again' }));
    closeAll();
    expect(
      sqlite3(file, "SELECT typeof(unique_key), hex(unique_key), function_name FROM gearman_queue WHERE CAST(data AS TEXT) = 'again'"),
    ).toBe('text|636166E9FF|fé');
    expect(replayed(open(file))).toEqual([job('plain'), job('caf\xe9\xff', { functionName: 'f\xc3\xa9', data: 'again' })]);
  });

  test('a corrupt file is refused with an error naming it; it is left as it was', () => {
    const file = newFile();
    const garbage = 'not a database, just bytes '.repeat(200);
    writeFileSync(file, garbage);
    let error: unknown;
    try {
      open(file);
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(GearmanQueueStoreError);
    expect((error as GearmanQueueStoreError).code).toBe('QUEUE_STORE_ERROR');
    expect((error as GearmanQueueStoreError).file).toBe(file);
    expect((error as Error).message).toContain(file);
    expect((error as Error).message).toMatch(/not a usable SQLite database/);
    expect(execFileSync('cat', [file], { encoding: 'latin1' })).toBe(garbage);
  });

  test('a damaged database (a page overwritten) is refused, not started empty', async () => {
    const file = newFile();
    const store = open(file);
    for (let id = 1; id <= 2000; id++) store.add(job(`u-${id}`, { data: 'x'.repeat(200) }), () => undefined);
    await committed(store, job('last'));
    closeAll();
    // Overwrite the third page (of 4096 bytes) with zeros, as a torn write or a bad disk would.
    execFileSync('dd', ['if=/dev/zero', `of=${file}`, 'bs=4096', 'seek=2', 'count=1', 'conv=notrunc'], { stdio: 'ignore' });
    expect(() => open(file)).toThrow(GearmanQueueStoreError);
    expect(() => open(file)).toThrow(file);
  });

  test('a file another store holds is refused as locked', () => {
    const file = newFile();
    open(file);
    expect(() => open(file, { busyTimeoutMs: 50 })).toThrow(/locked by another process/);
    expect(() => open(file, { busyTimeoutMs: 50 })).toThrow(file);
  });

  test('a file another process holds locked (sqlite3 in a transaction) is refused as locked', async () => {
    const file = newFile();
    open(file);
    closeAll();
    const holder = spawn('sqlite3', [file], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      holder.stdin.write("BEGIN EXCLUSIVE;\nSELECT 'held';\n");
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      expect(() => open(file, { busyTimeoutMs: 50 })).toThrow(/Job queue file .* cannot be opened: it is locked by another process/);
    } finally {
      holder.kill('SIGKILL');
    }
  });

  test('a table of another layout is refused, naming the file and the table', () => {
    const file = newFile();
    sqlite3(file, 'CREATE TABLE gearman_queue (id INTEGER PRIMARY KEY, payload BLOB)');
    expect(() => open(file)).toThrow(`Job queue file ${file} cannot be opened: table gearman_queue is not gearmand's queue table`);
  });

  test('another table name, as --libsqlite3-table', async () => {
    const file = newFile();
    const store = open(file, { table: 'jobs_b' });
    await committed(store, job('u'));
    closeAll();
    expect(sqlite3(file, 'SELECT unique_key FROM jobs_b')).toBe('u');
    expect(() => open(file, { table: 'jobs; DROP TABLE x' })).toThrow(TypeError);
  });

  test('store on shutdown: nothing is written while running; the queue at close; a crash after replay loses it, as on gearmand', async () => {
    const file = newFile();
    const store = open(file, { storeOnShutdown: true });
    await committed(store, job('a'));
    closeAll(); // as a crash would: the shutdown step never ran
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_queue')).toBe('0');
    open(file, { storeOnShutdown: true }).storeOnShutdown([job('a'), job('b')]);
    closeAll();
    expect(sqlite3(file, 'SELECT group_concat(unique_key) FROM gearman_queue')).toBe('a,b');
    expect(replayed(open(file, { storeOnShutdown: true })).map((stored) => stored.unique)).toEqual(['a', 'b']);
    closeAll();
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_queue')).toBe('0');
  });

  test('writes after close fail their callback instead of vanishing', async () => {
    const store = open(newFile());
    closeAll();
    await expect(committed(store, job('late'))).rejects.toThrow(/is closed/);
  });

  test('the memory store keeps nothing and commits at once', () => {
    const store = new MemoryQueueStore();
    const calls: string[] = [];
    store.add(job('m'), () => calls.push('committed'));
    expect(calls).toEqual(['committed']);
    const jobs: StoredJob[] = [];
    store.replay((stored) => jobs.push(stored));
    expect(jobs).toEqual([]);
  });

  test('openQueueStore: memory by default, sqlite on request, an unknown type refused', async () => {
    expect((await openQueueStore(undefined)).type).toBe('memory');
    const sqlite = await openQueueStore({ type: 'sqlite', file: newFile() });
    expect(sqlite.type).toBe('sqlite');
    sqlite.close();
    await expect(openQueueStore({ type: 'redis' } as never)).rejects.toThrow("Unknown job queue type \"redis\": use 'memory' or 'sqlite'");
  });

  test('a missing optional package is named with the command that installs it', async () => {
    const error = await loadOptionalPeer('better-sqlite3-not-installed', '^12.0.0', 'The sqlite job queue').catch(
      (caught: unknown) => caught,
    );
    expect(error).toBeInstanceOf(GearmanMissingPeerError);
    expect((error as GearmanMissingPeerError).packageName).toBe('better-sqlite3-not-installed');
    expect((error as Error).message).toBe(
      'The sqlite job queue needs the optional package better-sqlite3-not-installed, which is not installed: npm install better-sqlite3-not-installed@^12.0.0',
    );
  });
});
