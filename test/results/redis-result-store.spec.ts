import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobExceptionError, GearmanJobFailedError, GearmanResultTimeoutError } from '../../lib/common/errors.js';
import { RedisResultStore } from '../../lib/results/redis-result-store.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import type { WorkerJob } from '../../lib/worker/worker-job.js';
import { describeWithPeers, startGearmandPair, type RunningGearmand } from '../support/gearmand.js';
import { startRedis, type RunningRedis } from '../support/redis.js';
import { quietLogger } from '../client/support/harness.js';

/**
 * The Redis result store as gearmand deployments use it: workers record, clients read, over two
 * gearmand servers that share nothing. Real redis-server, real gearmand, real sockets.
 */
describeWithPeers(['gearmand', 'redis-server'], 'RedisResultStore over two gearmand servers', () => {
  let redis: RunningRedis;
  let gearmands: RunningGearmand[];
  let servers: string[];
  const closing: (() => Promise<unknown>)[] = [];

  beforeAll(async () => {
    redis = await startRedis();
    // Two servers on one host: distinct handle prefixes, as the docs ask (gearmand's default, H:<hostname>, would collide).
    ({ gearmands, servers } = await startGearmandPair());
  }, 30_000);
  afterAll(async () => {
    await Promise.all(gearmands.map((gearmand) => gearmand.stop()));
    await redis.stop();
  });
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  function store(options: ConstructorParameters<typeof RedisResultStore>[0] = {}): RedisResultStore {
    // Every test its own key prefix: nothing one test wrote is seen by the next.
    const created = new RedisResultStore({ redis: redis.url, keyPrefix: `t${Math.random()}:`, logger: quietLogger, ...options });
    closing.push(() => created.close());
    return created;
  }

  function client(): GearmanClient {
    const created = new GearmanClient({ servers, logger: quietLogger });
    closing.push(() => created.close());
    return created;
  }

  async function worker(results: RedisResultStore, handlers: Record<string, (job: WorkerJob) => unknown>): Promise<GearmanWorker> {
    const created = new GearmanWorker({ servers, logger: quietLogger, concurrency: 4, recorder: results.recorder(), stopTimeoutMs: 1000 });
    for (const [name, handler] of Object.entries(handlers)) created.register(name, handler);
    await created.start();
    closing.push(() => created.stop());
    return created;
  }

  it('finds a result whichever server ran the job, by handle and by unique id', async () => {
    const results = store();
    await worker(results, {
      double: (job) => {
        job.sendStatus(1, 2);
        job.sendData(`half of ${job.data}`);
        return String(Number(job.data) * 2);
      },
    });
    const submitter = client();
    await submitter.connect();
    await waitUntil(
      async () => submitter.connectedServers.length,
      (count) => count === 2,
    );
    const jobs = await Promise.all(
      Array.from({ length: 12 }, async (_, index) => {
        const unique = `job-${index}`;
        const handle = await submitter.submitBackgroundJob('double', String(index), { unique });
        await results.jobQueued({ handle, unique, functionName: 'double' });
        return { index, unique, handle };
      }),
    );
    expect(new Set(jobs.map((job) => job.handle.split(':')[1]))).toEqual(new Set(['a', 'b']));
    for (const { index, unique, handle } of jobs) {
      const ended = await results.watch(handle, { timeoutMs: 10_000 }).state;
      expect(ended).toMatchObject({
        state: 'completed',
        handle,
        unique,
        functionName: 'double',
        progress: { numerator: 1, denominator: 2 },
      });
      if (ended.state !== 'completed') throw new Error('not completed');
      expect(ended.result.toString()).toBe(String(index * 2));
      expect(ended.data.map(String)).toEqual([`half of ${index}`]);
      expect(ended.endedAt).toBeInstanceOf(Date);
      expect(await results.get(unique)).toEqual(ended);
    }
  });

  it('reports queued, running with progress, failed and unknown', async () => {
    const results = store();
    const submitter = client();
    const handle = await submitter.submitBackgroundJob('slow', 'x', { unique: 'slow-1' });
    await results.jobQueued({ handle, unique: 'slow-1', functionName: 'slow' });
    expect(await results.get(handle)).toMatchObject({ state: 'queued', handle, unique: 'slow-1', functionName: 'slow' });

    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    await worker(results, {
      slow: async (job) => {
        job.sendStatus(3, 10);
        await released;
        return 'done';
      },
      throws: (job) => job.exception('{"status":"error","message":"no"}'),
      fails: (job) => job.fail(),
    });
    const running = await waitUntil(
      () => results.get('slow-1'),
      (state) => state.state === 'running' && state.progress.numerator === 3,
    );
    expect(running).toMatchObject({ state: 'running', progress: { numerator: 3, denominator: 10 } });
    release();
    expect(await results.watch('slow-1', { timeoutMs: 5000 }).state).toMatchObject({ state: 'completed' });

    for (const name of ['throws', 'fails']) {
      const queued = await submitter.submitBackgroundJob(name, '', { unique: `${name}-1` });
      // As ClientGearman.emit() does: a wait right after the submit then finds the job.
      await results.jobQueued({ handle: queued, unique: `${name}-1`, functionName: name });
    }
    const thrown = await results.watch('throws-1', { timeoutMs: 5000 }).state;
    expect(thrown.state).toBe('failed');
    if (thrown.state !== 'failed') throw new Error('not failed');
    expect(thrown.error).toBeInstanceOf(GearmanJobExceptionError);
    expect((thrown.error as GearmanJobExceptionError).data.toString()).toBe('{"status":"error","message":"no"}');
    const failed = await results.watch('fails-1', { timeoutMs: 5000 }).state;
    expect(failed).toMatchObject({ state: 'failed', error: expect.any(GearmanJobFailedError) });

    expect(await results.get('H:a:999999')).toEqual({ state: 'unknown', id: 'H:a:999999', reason: 'not-found' });
    expect(await results.watch('nobody', { timeoutMs: 5000 }).state).toMatchObject({ state: 'unknown' });
  });

  it('never misses an end between its read and its wait, and times out with the last state', async () => {
    const results = store();
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => (finish = resolve));
    await worker(results, {
      gated: async (job) => {
        job.sendStatus(1, 4);
        await finished;
        return 'late';
      },
    });
    const submitter = client();
    const handle = await submitter.submitBackgroundJob('gated', '', { unique: 'gated-1' });
    await waitUntil(
      () => results.get(handle),
      (state) => state.state === 'running',
    );
    const short = results.watch(handle, { timeoutMs: 200 }).state;
    await expect(short).rejects.toBeInstanceOf(GearmanResultTimeoutError);
    await expect(short).rejects.toMatchObject({ code: 'RESULT_TIMEOUT', lastState: { state: 'running', progress: { numerator: 1 } } });
    // Many waits started just before the end: every one of them sees it.
    const waits = Array.from({ length: 20 }, () => results.watch(handle, { timeoutMs: 10_000 }).state);
    finish();
    for (const state of await Promise.all(waits)) expect(state).toMatchObject({ state: 'completed' });
  });

  it('follows a job: its progress, data and warnings as they are recorded, then its end', async () => {
    const results = store();
    const steps: (() => void)[] = [];
    const step = () => new Promise<void>((resolve) => steps.push(resolve));
    await worker(results, {
      stream: async (job) => {
        for (let part = 1; part <= 3; part++) {
          await step();
          job.sendStatus(part, 3);
          job.sendData(`part ${part}`);
          // Warnings are passed on, not stored: only those sent once the follower listens reach it.
          if (part > 1) job.sendWarning(`warning ${part}`);
        }
        return 'all';
      },
    });
    const submitter = client();
    const handle = await submitter.submitBackgroundJob('stream', '', { unique: 'stream-1' });
    await waitUntil(
      () => results.get(handle),
      (state) => state.state === 'running',
    );
    const watch = results.watch(handle, { timeoutMs: 10_000, follow: true });
    const events: string[] = [];
    watch.on('status', (numerator, denominator) => events.push(`status ${numerator}/${denominator}`));
    watch.on('data', (data) => events.push(`data ${data}`));
    watch.on('warning', (data) => events.push(`warning ${data}`));
    for (let part = 1; part <= 3; part++) {
      while (steps.length === 0) await new Promise((resolve) => setTimeout(resolve, 10));
      const count = events.length;
      steps.shift()!();
      await waitUntil(
        async () => events.length,
        (length) => length >= count + (part > 1 ? 3 : 2),
      );
    }
    const ended = await watch.state;
    expect(ended).toMatchObject({ state: 'completed' });
    if (ended.state !== 'completed') throw new Error('not completed');
    expect(ended.data.map(String)).toEqual(['part 1', 'part 2', 'part 3']);
    // Warnings travel on their own (pub/sub, not stored), so their place among the others may vary.
    expect(events.filter((event) => !event.startsWith('warning'))).toEqual([
      'status 1/3',
      'data part 1',
      'status 2/3',
      'data part 2',
      'status 3/3',
      'data part 3',
    ]);
    expect(events.filter((event) => event.startsWith('warning'))).toEqual(['warning warning 2', 'warning warning 3']);
  });

  it('bounds what it keeps: every key expires, and a result over maxResultBytes is dropped, saying so', async () => {
    const results = store({ ttlMs: 300, maxResultBytes: 16 });
    await worker(results, { echo: (job) => job.data });
    const submitter = client();
    for (const [unique, data] of [
      ['small', 'small'],
      ['large', 'x'.repeat(17)],
    ]) {
      const handle = await submitter.submitBackgroundJob('echo', data, { unique });
      // As ClientGearman.emit() does: a wait right after the submit then finds the job.
      await results.jobQueued({ handle, unique, functionName: 'echo' });
    }
    const small = await results.watch('small', { timeoutMs: 5000 }).state;
    expect(small).toMatchObject({ state: 'completed', resultDropped: false });
    const large = await results.watch('large', { timeoutMs: 5000 }).state;
    expect(large).toMatchObject({ state: 'completed', resultDropped: true, result: Buffer.alloc(0) });
    // Each expires ttlMs after its own end (they need not end at once on a loaded machine).
    for (const id of ['small', 'large']) {
      await waitUntil(
        () => results.get(id),
        (state) => state.state === 'unknown',
      );
    }
  });

  it('records nothing for a job without a unique id (a foreground one: nothing would find it again)', async () => {
    const results = store();
    await worker(results, { plain: (job) => `ran ${job.data}` });
    const submitter = client();
    // Background jobs from this package's clients always get one (a generated UUID); a foreground job need not.
    const job = submitter.submitJob('plain', 'x');
    expect((await job.result).toString()).toBe('ran x');
    expect(await results.get(job.handle!)).toMatchObject({ state: 'unknown' });
    const background = await submitter.submitBackground('plain', 'y');
    expect(background.unique).toMatch(/^[0-9a-f-]{36}$/);
    await results.jobQueued({ ...background, functionName: 'plain' });
    expect(await results.watch(background.handle, { timeoutMs: 5000 }).state).toMatchObject({
      state: 'completed',
      unique: background.unique,
    });
  });
});

async function waitUntil<T>(read: () => Promise<T>, done: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (done(value)) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting; last value ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}
