import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { lastValueFrom, toArray } from 'rxjs';
import { GearmanJobFailedError } from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import type { GearmanJobState } from '../../lib/nest/gearman-job-state.js';
import { adminCommand } from '../client/support/admin.js';
import { batchItems, settle, startBatchWorkers, sumOfSquares, type BatchWorkerProcess } from '../support/batch-workers.js';
import { waitUntil } from '../support/processes.js';

const run = promisify(execFile);

/**
 * Background batches coordinated by our job server, run by worker processes of their own
 * (test/support/fixtures/batch-worker.cjs), with real kills.
 */
describe('emitBatch() on our job server, over worker processes', () => {
  let server: GearmanJobServer;
  let servers: string[];
  let client: ClientGearman;
  let workers: BatchWorkerProcess[] = [];

  beforeEach(async () => {
    server = new GearmanJobServer({ port: 0, logger: false });
    await server.listen();
    servers = [`127.0.0.1:${server.address().port}`];
    client = new ClientGearman({ servers });
  });
  afterEach(async () => {
    await client.close();
    await Promise.all(workers.splice(0).map((worker) => worker.stop()));
    await server.close();
  });

  const allRan = () => workers.flatMap((worker) => worker.ran);

  test('1,000 items over 3 worker processes: each runs once, and the gather step gets them in order', async () => {
    workers = await startBatchWorkers(3, servers);
    const handle = await client.emitBatch('batch.square', batchItems(1000), { gather: 'batch.sum' });
    expect(handle).toMatch(/^H:.+:[0-9a-z]+-[0-9a-f]{16}$/); // unguessable, as a job's handle
    const state = await client.waitForResult(handle, { timeoutMs: 60_000 });
    expect(state).toMatchObject({
      state: 'completed',
      value: { count: 1000, sum: sumOfSquares(1000), failed: 0, order: true },
      batch: { total: 1000, ended: 1000, failed: 0 },
      progress: { numerator: 1000, denominator: 1000 },
    });
    expect([...allRan()].sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, n) => n));
    for (const worker of workers) expect(worker.ran.length).toBeGreaterThan(0);
  });

  test('a worker SIGKILLed mid-batch: its items go to the others and the batch completes', async () => {
    workers = await startBatchWorkers(3, servers);
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(600, () => ({ sleepMs: 50 })),
      { gather: 'batch.sum' },
    );
    await waitUntil(() => allRan().length >= 150, 'a quarter of the items to start');
    await workers[0].kill();
    expect(await client.waitForResult(handle, { timeoutMs: 60_000 })).toMatchObject({
      state: 'completed',
      value: { count: 600, sum: sumOfSquares(600), failed: 0, order: true },
    });
    const ran = allRan();
    expect(new Set(ran).size).toBe(600);
    console.log(`server batch, worker SIGKILLed: ${ran.length} runs for 600 items (${ran.length - 600} started again after the kill)`);
    // The killed worker held items (up to 16 at a time): they ran again elsewhere, and only they did.
    expect(ran.length - 600).toBeGreaterThan(0);
    expect(ran.length - 600).toBeLessThanOrEqual(16);
  });

  test('one sub-job lost to each of three worker deaths: the batch still completes', async () => {
    workers = await startBatchWorkers(1, servers, undefined, { concurrency: 1 });
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(4, () => ({ sleepMs: 1000 })),
      { gather: 'batch.sum' },
    );
    for (let death = 1; death <= 3; death++) {
      const dying = workers[workers.length - 1];
      // Killed within the second its item takes: that item goes back to its queue.
      await waitUntil(() => dying.ran.length === 1, `worker ${death} to take an item`);
      await dying.kill();
      workers.push(...(await startBatchWorkers(1, servers, undefined, { concurrency: 1 })));
    }
    expect(await client.waitForResult(handle, { timeoutMs: 30_000 })).toMatchObject({
      state: 'completed',
      value: { count: 4, sum: sumOfSquares(4), failed: 0 },
    });
    // Each of the three killed workers started one item, which then ran again on the next worker.
    expect(allRan().length).toBe(7);
    expect(new Set(allRan()).size).toBe(4);
  });

  test('failFast: the first failure fails the batch, and its queued items never run', async () => {
    workers = await startBatchWorkers(2, servers, undefined, { concurrency: 2 });
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(200, (n) => ({ sleepMs: 5, fail: n === 3 })),
      { gather: 'batch.sum' },
    );
    const state = await client.waitForResult(handle, { timeoutMs: 30_000 });
    expect(state).toMatchObject({ state: 'failed', error: { code: 'FAILED', n: 3 } });
    await settle(allRan);
    expect(allRan().length).toBeLessThan(20);
    expect(await adminCommand(server.address().port, 'status')).toContain('batch.square\t0\t0\t2');
  });

  test('cancelBatch() fails the batch and cancels its queued items', async () => {
    workers = await startBatchWorkers(1, servers, undefined, { concurrency: 2 });
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(100, () => ({ sleepMs: 50 })),
      { gather: 'batch.sum' },
    );
    await waitUntil(() => allRan().length >= 2, 'the first items to start');
    expect(await client.cancelBatch(handle)).toBe(true);
    expect(await client.waitForResult(handle, { timeoutMs: 10_000 })).toMatchObject({
      state: 'failed',
      error: expect.any(GearmanJobFailedError),
    });
    await settle(allRan);
    expect(allRan().length).toBeLessThan(10);
    expect(await client.cancelBatch(handle)).toBe(false);
  });

  test('a batch whose caller exits at once completes all the same, found by its unique id', async () => {
    workers = await startBatchWorkers(2, servers);
    const caller = join(process.cwd(), 'test', 'support', 'fixtures', 'batch-caller.mjs');
    const { stdout } = await run(process.execPath, [caller, servers.join(','), '-', '300'], { timeout: 20_000 });
    const { handle, unique } = JSON.parse(stdout) as { handle: string; unique: string };
    const state = (await client.waitForResult(unique, { timeoutMs: 30_000 })) as Extract<GearmanJobState, { state: 'completed' }>;
    expect(state).toMatchObject({ handle, value: { count: 300, sum: sumOfSquares(300), failed: 0, order: true } });
  });

  test('followResult() of a batch: its progress as items end, then the gathered result', async () => {
    workers = await startBatchWorkers(1, servers, undefined, { concurrency: 1 });
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(4, () => ({ sleepMs: 20 })),
      { gather: 'batch.sum' },
    );
    const events = await lastValueFrom(client.followResult(handle, { timeoutMs: 10_000 }).pipe(toArray()));
    // Where the batch was when the follow began (0 or more items ended), then each item as it ends.
    const progress = events.flatMap((event) => (event.type === 'progress' ? [event.numerator] : []));
    expect(progress[progress.length - 1]).toBe(4);
    expect(progress).toEqual(Array.from({ length: progress.length }, (_, i) => 4 - progress.length + 1 + i));
    expect(events[events.length - 1]).toEqual({ type: 'result', value: { count: 4, sum: 14, failed: 0, order: true } });
  });
});
