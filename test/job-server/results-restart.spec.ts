import { execFileSync } from 'node:child_process';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { PacketType } from '../../lib/protocol/packet-types.js';
import { quietLogger } from '../client/support/harness.js';
import { freePort } from '../support/gearmand.js';
import { requireBuild, startCliServer, type RunningCliServer } from '../support/processes.js';
import { tempQueueDir } from '../support/queue-files.js';
import { adminQuery, RawPeer } from './support/raw-peer.js';

const files = tempQueueDir('results-restart-');
afterAll(() => files.remove());
let fileCount = 0;
const newFile = () => files.file(`results-${++fileCount}.db`);
const sqlite3 = (file: string, sql: string) => execFileSync('sqlite3', [file, sql], { encoding: 'utf8' }).trim();

const closing: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const close of closing.splice(0).reverse()) await close();
});

async function client(address: string): Promise<GearmanClient> {
  const created = new GearmanClient({ servers: [address], logger: quietLogger });
  closing.push(() => created.close());
  await created.connect();
  return created;
}

async function rawPeer(port: number): Promise<RawPeer> {
  const peer = await RawPeer.connect(port);
  closing.push(() => peer.close());
  return peer;
}

/** Runs the next job of `fn` a raw worker grabs: completes it with `answer(data)`, after one WORK_DATA part. Returns [handle, unique, data]. */
async function runOne(worker: RawPeer, answer: (data: string) => string): Promise<string[]> {
  worker.send(PacketType.GRAB_JOB_UNIQ);
  const [handle, , unique, data] = await worker.expect(PacketType.JOB_ASSIGN_UNIQ);
  worker.send(PacketType.WORK_DATA, handle, `part of ${data}`);
  worker.send(PacketType.WORK_COMPLETE, handle, answer(data));
  await worker.sync(); // the server has handled the end
  return [handle, unique, data];
}

const squareItems = ['1', '2', '3', '4'].map((n) => Buffer.from(n));

/**
 * With the sqlite queue, what the server keeps of jobs outlives it: kept results, the handles of
 * queued background jobs and running batches go to tables of their own in the queue's file.
 */
describe('results across a restart of GearmanJobServer with the sqlite queue', () => {
  async function start(
    file: string,
    results: { maxCount?: number; maxAgeMs?: number } = {},
    jobHandles: 'unguessable' | 'sequential' = 'unguessable',
  ): Promise<GearmanJobServer> {
    const server = new GearmanJobServer({
      port: 0,
      logger: false,
      jobHandlePrefix: 'H:test',
      jobHandles,
      queue: { type: 'sqlite', file },
      results,
    });
    await server.listen();
    return server;
  }

  test('results, queued jobs (found by the handle their caller holds) and a half-done batch all carry on', async () => {
    const file = newFile();
    let server = await start(file);
    let address = `127.0.0.1:${server.address().port}`;
    let caller = await client(address);
    const done = await caller.submitBackground('echo', 'hello', { unique: 'u-done' });
    const waiting = await caller.submitBackground('later', 'tomorrow', { unique: 'u-later' });
    const batch = await caller.submitBatch({ function: 'square', failFast: false }, squareItems, { unique: 'b-restart' });
    const worker = await rawPeer(server.address().port);
    worker.send(PacketType.CAN_DO, 'echo');
    expect(await runOne(worker, (data) => data.toUpperCase())).toEqual([done.handle, 'u-done', 'hello']);
    worker.send(PacketType.CAN_DO, 'square');
    // Two of the batch's four items end before the restart.
    for (let i = 0; i < 2; i++) await runOne(worker, (n) => String(Number(n) ** 2));
    expect(await caller.waitForResult(done.handle, { timeoutMs: 5000 })).toMatchObject({ state: 'completed' });
    expect(await caller.getResult(batch.handle)).toMatchObject({ state: 'running', batch: { total: 4, ended: 2 } });
    await worker.close();
    await caller.close();
    await server.close();

    // The queue's own table is as gearmand lays it out; ours sit beside it.
    expect(sqlite3(file, "SELECT group_concat(name, ',') FROM pragma_table_info('gearman_queue')")).toBe(
      'unique_key,function_name,priority,data,when_to_run',
    );
    expect(sqlite3(file, "SELECT name FROM sqlite_master WHERE type = 'table'").split('\n').sort()).toEqual([
      'gearman_batch_items',
      'gearman_batches',
      'gearman_job_handles',
      'gearman_queue',
      'gearman_results',
    ]);

    server = await start(file);
    address = `127.0.0.1:${server.address().port}`;
    caller = await client(address);
    const kept = await caller.getResult(done.handle);
    expect(kept).toMatchObject({ state: 'completed', handle: done.handle, unique: 'u-done', functionName: 'echo' });
    expect(kept.state === 'completed' && [kept.result.toString(), kept.data.map(String)]).toEqual(['HELLO', ['part of hello']]);
    expect(await caller.getResult('u-done')).toEqual(kept);
    // The queued job has a new handle; the one its caller holds leads to it, also after another restart.
    const queued = await caller.getResult(waiting.handle);
    expect(queued).toMatchObject({ state: 'queued', unique: 'u-later', functionName: 'later' });
    expect(queued.state === 'queued' && queued.handle).not.toBe(waiting.handle);
    expect(await caller.getResult(batch.handle)).toMatchObject({ state: 'running', batch: { total: 4, ended: 2, failed: 0 } });
    await caller.close();
    await server.close();
    server = await start(file);
    address = `127.0.0.1:${server.address().port}`;
    caller = await client(address);
    const stillQueued = await caller.getResult(waiting.handle);
    expect(stillQueued).toMatchObject({ state: 'queued', unique: 'u-later' });

    const again = await rawPeer(server.address().port);
    again.send(PacketType.CAN_DO, 'later');
    const [newHandle] = await runOne(again, () => 'ran');
    expect(stillQueued.state === 'queued' && stillQueued.handle).toBe(newHandle);
    again.send(PacketType.CAN_DO, 'square');
    for (let i = 0; i < 2; i++) await runOne(again, (n) => String(Number(n) ** 2));
    const later = await caller.waitForResult(waiting.handle, { timeoutMs: 5000 });
    expect(later.state === 'completed' && later.result.toString()).toBe('ran');
    // Its outcome is kept under both handles.
    expect(await caller.getResult(newHandle)).toMatchObject({ state: 'completed', unique: 'u-later' });
    const gathered = await caller.waitForResult(batch.handle, { timeoutMs: 5000 });
    expect(gathered).toMatchObject({ state: 'completed', batch: { total: 4, ended: 4, failed: 0 } });
    expect(gathered.state === 'completed' && JSON.parse(gathered.result.toString())).toEqual([
      { index: 0, value: 1 },
      { index: 1, value: 4 },
      { index: 2, value: 9 },
      { index: 3, value: 16 },
    ]);
    // New jobs take handles nothing kept answers to.
    const fresh = await caller.submitBackground('echo', 'new');
    expect([done.handle, waiting.handle, newHandle]).not.toContain(fresh.handle);
    await caller.close();
    await server.close();
    // Ended: nothing of the batch, nor of the ended jobs' handles, is left; the results are (the
    // restored job's under its two handles).
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_batches; SELECT count(*) FROM gearman_batch_items')).toBe('0\n0');
    expect(sqlite3(file, 'SELECT CAST(unique_key AS TEXT) FROM gearman_job_handles ORDER BY 1')).toBe(fresh.unique);
    expect(sqlite3(file, "SELECT CAST(unique_key AS TEXT) || ' ' || outcome FROM gearman_results ORDER BY 1").split('\n')).toEqual([
      'b-restart complete',
      'u-done complete',
      'u-later complete',
      'u-later complete',
    ]);
  });

  test('an item whose outcome was kept does not run again when its job comes back from the queue (its delete was lost)', async () => {
    const file = newFile();
    let server = await start(file);
    let caller = await client(`127.0.0.1:${server.address().port}`);
    const batch = await caller.submitBatch({ function: 'square', failFast: true }, squareItems.slice(0, 2), { unique: 'b-stale' });
    const worker = await rawPeer(server.address().port);
    worker.send(PacketType.CAN_DO, 'square');
    expect((await runOne(worker, (n) => String(Number(n) ** 2)))[1]).toBe('b-stale/0');
    await caller.close();
    await server.close();
    // As if the kill came before the delete's commit: item 0's row is back in gearman_queue.
    sqlite3(
      file,
      "INSERT INTO gearman_queue SELECT replace(unique_key, 'b-stale/1', 'b-stale/0'), function_name, priority, CAST('1' AS BLOB), when_to_run FROM gearman_queue WHERE unique_key = 'b-stale/1'",
    );
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_queue')).toBe('2');

    server = await start(file);
    caller = await client(`127.0.0.1:${server.address().port}`);
    expect((await adminQuery(server.address().port, 'status', true)).split('\n')).toContain('square\t1\t0\t0');
    const again = await rawPeer(server.address().port);
    again.send(PacketType.CAN_DO, 'square');
    expect((await runOne(again, (n) => String(Number(n) ** 2)))[1]).toBe('b-stale/1');
    const gathered = await caller.waitForResult(batch.handle, { timeoutMs: 5000 });
    expect(gathered.state === 'completed' && JSON.parse(gathered.result.toString())).toEqual([
      { index: 0, value: 1 },
      { index: 1, value: 4 },
    ]);
    await caller.close();
    await server.close();
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_queue')).toBe('0');
  });

  test('a binary result and its binary parts (every byte value) come back byte for byte, before a restart and after', async () => {
    const file = newFile();
    let server = await start(file);
    let caller = await client(`127.0.0.1:${server.address().port}`);
    const job = await caller.submitBackground('bytes', 'in', { unique: 'u-bytes' });
    const everyByte = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
    const part = Buffer.from([0, 0xff, 0x80, 0x0a, 0xc3, 0x28]);
    const worker = await rawPeer(server.address().port);
    worker.send(PacketType.CAN_DO, 'bytes');
    worker.send(PacketType.GRAB_JOB);
    const [handle] = await worker.expect(PacketType.JOB_ASSIGN);
    worker.send(PacketType.WORK_DATA, handle, part);
    worker.send(PacketType.WORK_COMPLETE, handle, everyByte);
    await worker.sync();
    const expectBytes = async () => {
      const kept = await caller.getResult(job.handle);
      expect(kept.state).toBe('completed');
      if (kept.state !== 'completed') return;
      expect(kept.result.equals(everyByte)).toBe(true);
      expect(kept.data.map((bytes) => bytes.toString('hex'))).toEqual([part.toString('hex')]);
    };
    await expectBytes();
    await caller.close();
    await server.close();
    server = await start(file);
    caller = await client(`127.0.0.1:${server.address().port}`);
    await expectBytes();
    await caller.close();
    await server.close();
  });

  test('the handles table holds one row per queued background job, appended as jobs are accepted; a restart rewrites it from the queue', async () => {
    const file = newFile();
    let server = await start(file);
    let caller = await client(`127.0.0.1:${server.address().port}`);
    const submitted = [];
    for (const unique of ['h-1', 'h-2', 'h-3']) submitted.push(await caller.submitBackground('later', unique, { unique }));
    await caller.close();
    await server.close();
    // In the order the jobs were accepted, by rowid: rows are appended, not placed by their random unique id.
    const rows = () =>
      sqlite3(file, "SELECT CAST(unique_key AS TEXT) || ' ' || CAST(handle AS TEXT) FROM gearman_job_handles ORDER BY rowid");
    expect(rows().split('\n')).toEqual(submitted.map((job, i) => `h-${i + 1} ${job.handle}`));
    expect(sqlite3(file, "SELECT count(*) FROM pragma_index_list('gearman_job_handles')")).toBe('0');
    // A job that left the queue while its handle stayed (as after a crash between their commits): its row is not kept.
    sqlite3(file, "DELETE FROM gearman_queue WHERE unique_key = 'h-2'");

    server = await start(file);
    caller = await client(`127.0.0.1:${server.address().port}`);
    // The two still queued answer to the handles their caller holds, now under this run's rows.
    for (const job of [submitted[0], submitted[2]]) expect(await caller.getResult(job.handle)).toMatchObject({ state: 'queued' });
    expect(await caller.getResult(submitted[1].handle)).toMatchObject({ state: 'unknown' });
    const worker = await rawPeer(server.address().port);
    worker.send(PacketType.CAN_DO, 'later');
    await runOne(worker, () => 'ran');
    await caller.close();
    await server.close();
    expect(rows()).toBe(`h-3 ${submitted[2].handle}`);
  });

  test('sequential handles: a restarted server counts on above every handle something kept answers to', async () => {
    const file = newFile();
    let server = await start(file, {}, 'sequential');
    let caller = await client(`127.0.0.1:${server.address().port}`);
    const done = await caller.submitBackground('echo', 'kept');
    const waiting = await caller.submitBackground('later', 'queued');
    const worker = await rawPeer(server.address().port);
    worker.send(PacketType.CAN_DO, 'echo');
    await runOne(worker, (data) => data);
    await caller.waitForResult(done.handle, { timeoutMs: 5000 });
    await caller.close();
    await server.close();

    server = await start(file, {}, 'sequential');
    caller = await client(`127.0.0.1:${server.address().port}`);
    const fresh = await caller.submitBackground('echo', 'new');
    const counter = (handle: string) => Number(handle.split(':').pop());
    const restored = await caller.getResult(waiting.handle);
    expect(restored.state === 'queued' && counter(restored.handle ?? '')).toBeGreaterThan(counter(waiting.handle));
    expect(counter(fresh.handle)).toBeGreaterThan(counter(waiting.handle));
    // The kept handle still names the kept result, not a new job.
    const kept = await caller.getResult(done.handle);
    expect(kept.state === 'completed' && kept.result.toString()).toBe('kept');
    await caller.close();
    await server.close();
  });

  test('retention holds across restarts: what is over the count or past its age is gone at start, from the file too', async () => {
    const file = newFile();
    const server = await start(file);
    const caller = await client(`127.0.0.1:${server.address().port}`);
    const first = await caller.submitBackground('echo', 'first');
    const second = await caller.submitBackground('echo', 'second');
    const worker = await rawPeer(server.address().port);
    worker.send(PacketType.CAN_DO, 'echo');
    await runOne(worker, (data) => data);
    await runOne(worker, (data) => data);
    await caller.waitForResult(second.handle, { timeoutMs: 5000 });
    await caller.close();
    await server.close();
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_results')).toBe('2');

    const fewer = await start(file, { maxCount: 1 });
    let reader = await client(`127.0.0.1:${fewer.address().port}`);
    expect(await reader.getResult(first.handle)).toMatchObject({ state: 'unknown' });
    expect(await reader.getResult(second.handle)).toMatchObject({ state: 'completed' });
    await reader.close();
    await fewer.close();
    expect(sqlite3(file, 'SELECT CAST(unique_key AS TEXT) FROM gearman_results')).toBe(second.unique);

    const younger = await start(file, { maxAgeMs: 1 });
    reader = await client(`127.0.0.1:${younger.address().port}`);
    expect(await reader.getResult(second.handle)).toMatchObject({ state: 'unknown' });
    await reader.close();
    await younger.close();
    expect(sqlite3(file, 'SELECT count(*) FROM gearman_results')).toBe('0');
  });
});

describe('results across a SIGKILL of the standalone server with -q libsqlite3', () => {
  beforeAll(() => requireBuild());
  const servers: RunningCliServer[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) await server.kill();
  });

  async function cli(file: string, port: number): Promise<RunningCliServer> {
    const started = await startCliServer([
      '--port',
      String(port),
      '--job-handle-prefix',
      'H:cli',
      '-q',
      'libsqlite3',
      '--libsqlite3-db',
      file,
    ]);
    servers.push(started);
    return started;
  }

  test('a completed result, a queued job and a running batch survive the kill', async () => {
    const file = newFile();
    const port = await freePort();
    const killed = await cli(file, port);
    const caller = await client(killed.address);
    const done = await caller.submitBackground('echo', 'before the kill', { unique: 'k-done' });
    const waiting = await caller.submitBackground('later', 'after the kill', { unique: 'k-later' });
    const batch = await caller.submitBatch({ function: 'square', failFast: true }, squareItems, { unique: 'k-batch' });
    const worker = await rawPeer(port);
    worker.send(PacketType.CAN_DO, 'echo');
    await runOne(worker, (data) => `${data}!`);
    worker.send(PacketType.CAN_DO, 'square');
    await runOne(worker, (n) => String(Number(n) ** 2));
    expect(await caller.waitForResult(done.handle, { timeoutMs: 5000 })).toMatchObject({ state: 'completed' });
    expect(await caller.getResult(batch.handle)).toMatchObject({ batch: { ended: 1 } });
    await killed.kill(); // SIGKILL

    await cli(file, port);
    // The client reconnects by itself.
    const kept = await caller.waitForResult(done.handle, { timeoutMs: 10_000 });
    expect(kept.state === 'completed' && kept.result.toString()).toBe('before the kill!');
    expect(await caller.getResult(waiting.handle)).toMatchObject({ state: 'queued', unique: 'k-later' });
    // The item that had ended is not queued again, whether or not its delete had reached the file.
    expect((await adminQuery(port, 'status', true)).split('\n')).toContain('square\t3\t0\t0');
    const after = await rawPeer(port);
    after.send(PacketType.CAN_DO, 'square');
    for (let i = 0; i < 3; i++) await runOne(after, (n) => String(Number(n) ** 2));
    const gathered = await caller.waitForResult(batch.handle, { timeoutMs: 10_000 });
    expect(gathered.state === 'completed' && JSON.parse(gathered.result.toString()).map((o: { value: number }) => o.value)).toEqual([
      1, 4, 9, 16,
    ]);
    after.send(PacketType.CAN_DO, 'later');
    await runOne(after, () => 'ran after the kill');
    const later = await caller.waitForResult(waiting.handle, { timeoutMs: 10_000 });
    expect(later.state === 'completed' && later.result.toString()).toBe('ran after the kill');
  }, 60_000);
});
