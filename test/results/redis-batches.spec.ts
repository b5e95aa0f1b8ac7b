import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { GearmanJobFailedError } from '../../lib/common/errors.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import type { GearmanJobState } from '../../lib/nest/gearman-job-state.js';
import { RedisResultStore } from '../../lib/results/redis-result-store.js';
import { adminCommand } from '../client/support/admin.js';
import { batchItems, settle, startBatchWorkers, sumOfSquares, type BatchWorkerProcess } from '../support/batch-workers.js';
import { describeWithPeers, startGearmandPair, type RunningGearmand } from '../support/gearmand.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { waitUntil } from '../support/processes.js';
import { quietLogger } from '../client/support/harness.js';

const run = promisify(execFile);

/**
 * Background batches on gearmand, which keeps nothing: the workers coordinate them through Redis.
 * Two gearmand servers, worker processes of their own (test/support/fixtures/batch-worker.cjs), real kills.
 */
describeWithPeers(['gearmand', 'redis-server'], 'emitBatch() on gearmand with a Redis result store', () => {
  let redis: RunningRedis;
  let gearmands: RunningGearmand[];
  let servers: string[];
  let workers: BatchWorkerProcess[] = [];
  let store: RedisResultStore;
  let client: ClientGearman;

  beforeAll(async () => {
    redis = await startRedis();
    store = new RedisResultStore({ redis: redis.url, logger: quietLogger });
  }, 30_000);
  // Fresh gearmand servers for every test: items a failed or cancelled batch left queued (skipped
  // when a worker takes them) must not queue ahead of the next test's.
  beforeEach(async () => {
    ({ gearmands, servers } = await startGearmandPair());
    client = new ClientGearman({ servers, resultStore: store });
    await client.connect();
    workers = await startBatchWorkers(3, servers, redis.url);
  }, 30_000);
  afterEach(async () => {
    await Promise.all(workers.map((worker) => worker.stop()));
    await client.close();
    await Promise.all(gearmands.map((gearmand) => gearmand.stop()));
  });
  afterAll(async () => {
    await store?.close();
    await redis?.stop();
  });

  const allRan = () => workers.flatMap((worker) => worker.ran);

  test('1,000 items over 3 worker processes: each runs once, and the gather step gets them in order', async () => {
    const handle = await client.emitBatch('batch.square', batchItems(1000), { gather: 'batch.sum' });
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
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(600, () => ({ sleepMs: 50 })),
      { gather: 'batch.sum' },
    );
    await waitUntil(() => allRan().length >= 150, 'a quarter of the items to start');
    await workers[0].kill();
    const state = await client.waitForResult(handle, { timeoutMs: 60_000 });
    expect(state).toMatchObject({ state: 'completed', value: { count: 600, sum: sumOfSquares(600), failed: 0, order: true } });
    const ran = allRan();
    expect(new Set(ran).size).toBe(600);
    // Only items the killed worker held when it died can have started twice.
    const twice = ran.length - 600;
    console.log(`redis batch, worker SIGKILLed: ${ran.length} runs for 600 items (${twice} started again after the kill)`);
    // The killed worker held items (up to 16 at a time): they ran again elsewhere, and only they did.
    expect(ran.length - 600).toBeGreaterThan(0);
    expect(ran.length - 600).toBeLessThanOrEqual(2 * 16);
  });

  test('failFast (the default): the first failure fails the batch with its error, and the items not started do not run', async () => {
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(2000, (n) => ({ sleepMs: 5, fail: n === 10 })),
      { gather: 'batch.sum' },
    );
    const state = await client.waitForResult(handle, { timeoutMs: 60_000 });
    expect(state).toMatchObject({ state: 'failed', error: { code: 'FAILED', n: 10 } });
    await settle(allRan, 200);
    expect(allRan().length).toBeLessThan(2000);
  });

  test('failFast: false hands the failures to the gather step with the values', async () => {
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(100, (n) => ({ fail: n % 10 === 3 })),
      {
        gather: 'batch.sum',
        failFast: false,
      },
    );
    const sum = batchItems(100)
      .filter(({ n }) => n % 10 !== 3)
      .reduce((total, { n }) => total + n * n, 0);
    expect(await client.waitForResult(handle, { timeoutMs: 30_000 })).toMatchObject({
      state: 'completed',
      value: { count: 100, sum, failed: 10, order: true },
      batch: { total: 100, ended: 100, failed: 10 },
    });
  });

  test('without a gather step, the result is the ordered outcomes', async () => {
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(5, (n) => ({ fail: n === 2 })),
      { failFast: false },
    );
    const state = (await client.waitForResult(handle, { timeoutMs: 30_000 })) as Extract<GearmanJobState, { state: 'completed' }>;
    expect(state.value).toEqual([
      { index: 0, value: 0 },
      { index: 1, value: 1 },
      { index: 2, error: { code: 'FAILED', n: 2 } },
      { index: 3, value: 9 },
      { index: 4, value: 16 },
    ]);
  });

  test('cancelBatch() fails the batch and its items not started never run', async () => {
    const handle = await client.emitBatch(
      'batch.square',
      batchItems(400, () => ({ sleepMs: 20 })),
      { gather: 'batch.sum' },
    );
    await waitUntil(() => allRan().length >= 20, 'some items to start');
    expect(await client.cancelBatch(handle)).toBe(true);
    const state = await client.waitForResult(handle, { timeoutMs: 10_000 });
    expect(state).toMatchObject({ state: 'failed', error: expect.any(GearmanJobFailedError) });
    await settle(allRan, 200);
    expect(allRan().length).toBeLessThan(400);
    expect(await client.cancelBatch(handle)).toBe(false);
  });

  test('a batch whose caller exits at once completes all the same', async () => {
    const caller = join(process.cwd(), 'test', 'support', 'fixtures', 'batch-caller.mjs');
    const { stdout } = await run(process.execPath, [caller, servers.join(','), redis.url, '300'], { timeout: 20_000 });
    const { handle, unique } = JSON.parse(stdout) as { handle: string; unique: string };
    expect(await client.waitForResult(unique, { timeoutMs: 30_000 })).toMatchObject({
      state: 'completed',
      handle,
      value: { count: 300, sum: sumOfSquares(300), failed: 0, order: true },
    });
  });

  test('bad input: zero items end at once; an item that cannot be encoded is refused before anything is sent', async () => {
    const none = await client.emitBatch('batch.square', [], { gather: 'batch.sum' });
    expect(await client.waitForResult(none, { timeoutMs: 10_000 })).toMatchObject({ state: 'completed', value: { count: 0, sum: 0 } });
    const bare = await client.emitBatch('batch.square', []);
    expect(await client.waitForResult(bare, { timeoutMs: 10_000 })).toMatchObject({ state: 'completed', value: [] });
    await expect(client.emitBatch('batch.square', [{ n: 1 }, { n: 2n }])).rejects.toThrow(/^Batch item 1 cannot be sent/);
  });

  test('a gather pattern nobody serves waits like any job, visible in status', async () => {
    const handle = await client.emitBatch('batch.square', batchItems(3), { gather: 'nobody.gathers' });
    await waitUntil(async () => {
      const state = await client.getResult(handle);
      return state.state === 'running' && state.batch?.ended === 3;
    }, 'the items to end');
    const queued = async () => {
      const rows = await Promise.all(gearmands.map((gearmand) => adminCommand(gearmand.port, 'status')));
      return rows.flat().some((row) => /^nobody\.gathers\t1\t0\t0$/.test(row));
    };
    await waitUntil(queued, 'the gather job to be queued');
    expect(await client.getResult(handle)).toMatchObject({ state: 'running', progress: { numerator: 3, denominator: 3 } });
  });
});
