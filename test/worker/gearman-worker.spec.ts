import {
  GearmanConnectionError,
  GearmanJobExceptionError,
  GearmanJobFailedError,
  GearmanJobTimeoutError,
} from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { type WorkerJob } from '../../lib/worker/worker-job.js';
import { adminCommand } from '../client/support/admin.js';
import { CountingProxy } from '../client/support/counting-proxy.js';
import { quietLogger, useJobServer } from '../client/support/harness.js';
import { JOB_SERVER_KINDS } from '../client/support/job-servers.js';
import { submitFromOutside } from '../client/support/outside-client.js';
import { deferred, sleep, waitFor } from '../client/support/wait.js';
import { describeWithPeers, freePort } from '../support/gearmand.js';

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanWorker on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('keeps up to `concurrency` jobs in flight and grabs again as a slot frees', async () => {
      let running = 0;
      let mostAtOnce = 0;
      const worker = t.worker({ concurrency: 4 });
      worker.register('busy', async (job) => {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        await sleep(20);
        running--;
        return job.data;
      });
      await worker.start();
      const payloads = Array.from({ length: 20 }, (_, i) => String(i));
      expect(await submitFromOutside(t.server.port, 'busy', payloads)).toEqual(payloads);
      expect(mostAtOnce).toBe(4);
    });

    test('concurrency is shared by all its job servers', async () => {
      const other = await kind.launch();
      t.defer(() => other.stop());
      let running = 0;
      let mostAtOnce = 0;
      const worker = t.worker({ servers: [t.server.address, other.address], concurrency: 3 });
      worker.register('busy', async (job) => {
        running++;
        mostAtOnce = Math.max(mostAtOnce, running);
        await sleep(20);
        running--;
        return job.data;
      });
      await worker.start();
      await waitFor(() => worker.connectedServers.length === 2, 'both servers');
      const payloads = Array.from({ length: 12 }, (_, i) => String(i));
      const results = await Promise.all([
        submitFromOutside(t.server.port, 'busy', payloads),
        submitFromOutside(other.port, 'busy', payloads),
      ]);
      expect(results).toEqual([payloads, payloads]);
      expect(mostAtOnce).toBe(3);
    });

    test('a job this process waits for brings its own slot: a handler may call its own function at concurrency 1', async () => {
      const worker = t.worker({ concurrency: 1 });
      const client = t.client();
      worker.register('outer', async (job) => `outer(${(await client.submitJob('inner', job.data).result).toString()})`);
      worker.register('inner', (job) => `inner(${job.data.toString()})`);
      await worker.start();
      expect((await client.submitJob('outer', 'x').result).toString()).toBe('outer(inner(x))');
      // Called from outside, the outer job holds the only slot; the inner job it waits for still runs.
      expect(await submitFromOutside(t.server.port, 'outer', ['y', 'z'])).toEqual(['outer(inner(y))', 'outer(inner(z))']);
      expect(worker.capacity).toBe(1);
    });

    test('large results from several jobs at once all arrive whole', async () => {
      const worker = t.worker({ concurrency: 4 });
      worker.register('big', (job) => Buffer.alloc(2 * 1024 * 1024, Number(job.data.toString())));
      await worker.start();
      const client = t.client();
      const results = await Promise.all(Array.from({ length: 12 }, (_, i) => client.submitJob('big', String(i)).result));
      results.forEach((result, i) => {
        expect(result.length).toBe(2 * 1024 * 1024);
        expect(result[0]).toBe(i);
        expect(result[result.length - 1]).toBe(i);
      });
    });

    test('an idle worker sends nothing after PRE_SLEEP, and wakes on NOOP when a job arrives', async () => {
      const proxy = await CountingProxy.start(t.server.port);
      t.defer(() => proxy.close());
      const worker = t.worker({ servers: [proxy.address], concurrency: 3 });
      worker.register('wake', (job) => job.data);
      await worker.start();
      // CAN_DO, GRAB_JOB_UNIQ ×3 (answered NO_JOB), PRE_SLEEP: then silence.
      const sleeps = () => proxy.packetsToServer().filter((name) => name === 'PRE_SLEEP').length;
      await waitFor(() => sleeps() === 1, 'PRE_SLEEP');
      const settled = proxy.bytesToServer;
      await sleep(500);
      expect(proxy.bytesToServer).toBe(settled);
      expect(proxy.packetsToServer()).toEqual(['CAN_DO', 'GRAB_JOB_UNIQ', 'GRAB_JOB_UNIQ', 'GRAB_JOB_UNIQ', 'PRE_SLEEP']);

      expect((await t.client().submitJob('wake', 'up').result).toString()).toBe('up');
      await waitFor(() => sleeps() === 2, 'the worker to sleep again');
      const quiet = proxy.bytesToServer;
      await sleep(500);
      expect(proxy.bytesToServer).toBe(quiet);
    });

    test('stop() lets in-flight jobs finish, grabs nothing more, then closes', async () => {
      const started = deferred();
      const finish = deferred();
      const worker = t.worker({ concurrency: 2 });
      const seen: string[] = [];
      worker.register('long', async (job) => {
        seen.push(job.data.toString());
        started.resolve();
        await finish.promise;
        return `done ${job.data}`;
      });
      await worker.start();
      const client = t.client();
      const inFlight = client.submitJob('long', 'first');
      await started.promise;
      expect(worker.jobsInFlight).toBe(1);
      let stopped = false;
      const stopping = worker.stop().then(() => (stopped = true));
      await sleep(50);
      const queued = client.submitJob('long', 'second');
      await queued.created;
      await sleep(100);
      expect(stopped).toBe(false);
      finish.resolve();
      expect((await inFlight.result).toString()).toBe('done first');
      await stopping;
      expect(seen).toEqual(['first']);
      expect(await client.getStatus(await queued.created)).toMatchObject({ known: true, running: false });
      await worker.stop();

      const next = t.worker();
      next.register('long', (job) => `picked up ${job.data}`);
      await next.start();
      expect((await queued.result).toString()).toBe('picked up second');
    });

    test('handler results: string, Buffer, undefined, an object, a throw, and a handler that ends the job itself', async () => {
      const worker = t.worker();
      worker.register('text', () => 'text');
      worker.register('bytes', () => Buffer.from([1, 2, 3]));
      worker.register('nothing', () => undefined);
      worker.register('object', () => ({ not: 'bytes' }));
      worker.register('reject', async () => {
        throw new Error('async failure');
      });
      worker.register('self', (job) => {
        job.complete('by hand');
        expect(() => job.complete('twice')).toThrow(/already ended/);
        return 'ignored';
      });
      await worker.start();
      const client = t.client();
      expect((await client.submitJob('text', '').result).toString()).toBe('text');
      expect(await client.submitJob('bytes', '').result).toEqual(Buffer.from([1, 2, 3]));
      expect((await client.submitJob('nothing', '').result).length).toBe(0);
      const objectError = await client.submitJob('object', '').result.catch((e: unknown) => e);
      expect(objectError).toBeInstanceOf(GearmanJobExceptionError);
      expect((objectError as GearmanJobExceptionError).data.toString()).toMatch(/returned an object/);
      const rejected = await client.submitJob('reject', '').result.catch((e: unknown) => e);
      expect((rejected as GearmanJobExceptionError).data.toString()).toBe('async failure');
      expect((await client.submitJob('self', '').result).toString()).toBe('by hand');
    });

    test('with exceptions off, a throw sends the message as a warning, then WORK_FAIL', async () => {
      const worker = t.worker({ exceptions: false });
      worker.register('plain-fail', () => {
        throw new Error('disk full');
      });
      await worker.start();
      const job = t.client().submitJob('plain-fail', '');
      const warnings: string[] = [];
      job.on('warning', (data: Buffer) => warnings.push(data.toString()));
      await expect(job.result).rejects.toBeInstanceOf(GearmanJobFailedError);
      expect(warnings).toEqual(['disk full']);
    });

    test('the job carries handle, function name, unique id and data', async () => {
      const received = deferred<WorkerJob>();
      const worker = t.worker();
      worker.register('inspect', (job) => received.resolve(job));
      const jobEvents: WorkerJob[] = [];
      worker.on('job', (job: WorkerJob) => jobEvents.push(job));
      await worker.start();
      const submitted = t.client().submitJob('inspect', Buffer.from([0, 42]), { unique: 'unique-1' });
      const job = await received.promise;
      expect(job).toMatchObject({
        handle: await submitted.created,
        functionName: 'inspect',
        unique: 'unique-1',
        data: Buffer.from([0, 42]),
      });
      await submitted.result;
      expect(job.isDone).toBe(true);
      expect(jobEvents).toEqual([job]);
    });

    test('SET_CLIENT_ID names the worker; register and unregister after start change its functions', async () => {
      const worker = t.worker({ clientId: 'worker-under-test' });
      worker.register('first', () => 'one');
      await worker.start();
      const line = async () => (await adminCommand(t.server.port, 'workers')).find((l) => l.includes('worker-under-test')) ?? '';
      await waitFor(async () => (await line()).includes('first'), 'the worker to be listed');

      // Queued before its function is registered: the worker must look for it on registering.
      const client = t.client();
      const waiting = client.submitJob('second', 'x');
      await waiting.created;
      worker.register('second', () => 'two');
      expect((await waiting.result).toString()).toBe('two');

      worker.unregister('first');
      await waitFor(async () => !(await line()).includes('first'), 'first to be dropped');
      expect(await line()).toMatch(/worker-under-test : .*second/);
    });

    test('a job past its timeout ends with an exception, its signal aborts, a warning is logged and its slot frees', async () => {
      const warnings: string[] = [];
      const worker = t.worker({ concurrency: 1, logger: { ...quietLogger, warn: (message: unknown) => warnings.push(String(message)) } });
      const aborted: unknown[] = [];
      let lateResult: unknown = 'none';
      worker.register(
        'hang',
        async (job) => {
          job.signal.addEventListener('abort', () => aborted.push(job.signal.reason));
          await sleep(400);
          lateResult = job.isDone;
          return 'too late';
        },
        { timeoutMs: 150 },
      );
      worker.register('quick', (job) => `quick ${job.data}`);
      await worker.start();
      const failure = await t
        .client()
        .submitJob('hang', 'x')
        .result.catch((error: unknown) => error);
      expect(failure).toBeInstanceOf(GearmanJobExceptionError);
      const handle = (failure as GearmanJobExceptionError).handle;
      expect((failure as GearmanJobExceptionError).data.toString()).toBe(`Job ${handle} (hang) timed out after 150 ms`);
      expect(aborted).toHaveLength(1);
      expect(aborted[0]).toBeInstanceOf(GearmanJobTimeoutError);
      expect(aborted[0]).toMatchObject({ code: 'JOB_TIMEOUT', functionName: 'hang', timeoutMs: 150, handle });
      expect(warnings).toContainEqual(expect.stringContaining(`Job ${handle} (hang) timed out after 150 ms`));
      // The handler still runs, but its slot is free: with concurrency 1 the next job runs at once.
      expect(worker.jobsInFlight).toBe(0);
      expect(await submitFromOutside(t.server.port, 'quick', ['next'])).toEqual(['quick next']);
      await waitFor(() => lateResult !== 'none', 'the late handler');
      expect(lateResult).toBe(true); // it found its job already ended; its result was dropped
    });

    test('with exceptions off a timed-out job ends with WORK_WARNING and WORK_FAIL', async () => {
      const worker = t.worker({ exceptions: false });
      worker.register('hang', () => new Promise(() => undefined), { timeoutMs: 100 });
      await worker.start();
      const job = t.client().submitJob('hang', 'x');
      const warnings: string[] = [];
      job.on('warning', (warning: Buffer) => warnings.push(warning.toString()));
      await expect(job.result).rejects.toBeInstanceOf(GearmanJobFailedError);
      expect(warnings).toEqual([`Job ${job.handle} (hang) timed out after 100 ms`]);
    });

    test("the timeout is registered with CAN_DO_TIMEOUT a second later, as the job server's backstop", async () => {
      const proxy = await CountingProxy.start(t.server.port);
      t.defer(() => proxy.close());
      const worker = t.worker({ servers: [proxy.address] });
      worker.register('timed', (job) => job.data, { timeoutMs: 2500 });
      await worker.start();
      await waitFor(() => proxy.packetsToServer().includes('PRE_SLEEP'), 'the registration');
      expect(proxy.requestsToServer()[0]).toEqual({ type: 'CAN_DO_TIMEOUT', args: ['timed', '3500'] });
    });

    test('a function registered with a timeout (CAN_DO_TIMEOUT) is listed and runs', async () => {
      const worker = t.worker({ clientId: 'timed-worker' });
      worker.register('timed', (job) => `timed ${job.data}`, { timeoutMs: 5000 });
      await worker.start();
      expect((await t.client().submitJob('timed', 'x').result).toString()).toBe('timed x');
      const workers = await adminCommand(t.server.port, 'workers');
      expect(workers.find((l) => l.includes('timed-worker'))).toMatch(/: timed$/);
    });

    test('jobs are spread over every server the worker is given', async () => {
      const second = await kind.launch();
      t.defer(() => second.stop());
      const worker = t.worker({ servers: [t.server.address, second.address] });
      const served: string[] = [];
      worker.register('where', (job) => {
        served.push(job.data.toString());
        return job.data;
      });
      await worker.start();
      const clientA = t.client({ servers: [t.server.address] });
      const clientB = t.client({ servers: [second.address] });
      expect((await clientA.submitJob('where', 'a').result).toString()).toBe('a');
      expect((await clientB.submitJob('where', 'b').result).toString()).toBe('b');
      expect(served.sort()).toEqual(['a', 'b']);
    });

    test('start() resolves with one server down, and the worker picks it up when it comes back', async () => {
      const second = await kind.launch();
      t.defer(() => second.stop());
      await second.stop();
      const worker = t.worker({ servers: [t.server.address, second.address], reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      worker.register('late', (job) => job.data);
      const connected: string[] = [];
      worker.on('connect', (server: string) => connected.push(server));
      await worker.start();
      await second.start();
      await waitFor(() => connected.includes(second.address), 'the second server to be connected');
      expect((await t.client({ servers: [second.address] }).submitJob('late', 'ok').result).toString()).toBe('ok');
    });
  });
}

describe('GearmanWorker without a server', () => {
  test('started before its job server, start() keeps trying and resolves once it is up; both are logged as warnings', async () => {
    const port = await freePort();
    const warnings: string[] = [];
    const logger = { ...quietLogger, warn: (message: unknown) => warnings.push(String(message)) };
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${port}`], logger, reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    worker.register('late', (job) => job.data);
    let started = false;
    const starting = worker.start().then(() => (started = true));
    await waitFor(() => warnings.length > 0, 'the first failed attempt');
    expect(started).toBe(false);
    const server = new GearmanJobServer({ port, logger: false });
    await server.listen();
    try {
      await starting;
      expect(worker.connectedServers).toEqual([`127.0.0.1:${port}`]);
      expect(warnings[0]).toMatch(new RegExp(`cannot reach 127.0.0.1:${port} yet \\(ECONNREFUSED`));
      expect(warnings[warnings.length - 1]).toBe(`GearmanWorker: connected to 127.0.0.1:${port}`);
    } finally {
      await worker.stop();
      await server.close();
    }
  });

  test('start() against a closed port rejects with ECONNREFUSED after startTimeoutMs', async () => {
    const port = await freePort();
    const worker = new GearmanWorker({
      servers: [`127.0.0.1:${port}`],
      logger: quietLogger,
      startTimeoutMs: 200,
      reconnect: { initialDelayMs: 20 },
    });
    const error = await worker.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GearmanConnectionError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', server: `127.0.0.1:${port}`, cause: { code: 'ECONNREFUSED' } });
    expect((error as Error).message).toMatch(/kept trying for up to 200 ms/);
    await worker.stop();
  });

  test('startTimeoutMs: 0 gives one attempt', async () => {
    const port = await freePort();
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${port}`], logger: quietLogger, startTimeoutMs: 0 });
    await expect(worker.start()).rejects.toMatchObject({ code: 'ECONNREFUSED', message: expect.not.stringMatching(/kept trying/) });
    await worker.stop();
  });

  test('stop() during a start() that cannot connect ends both promptly', async () => {
    const { createServer } = await import('node:net');
    // Accepts TCP but never finishes a TLS handshake: start() would wait for the connect timeout.
    const accepted: import('node:net').Socket[] = [];
    const silent = createServer((socket) => accepted.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const port = (silent.address() as { port: number }).port;
    const worker = new GearmanWorker({ servers: [{ host: '127.0.0.1', port, tls: true }], connectTimeoutMs: 60_000, logger: quietLogger });
    const starting = worker.start();
    await sleep(50);
    await worker.stop();
    await expect(starting).rejects.toMatchObject({ name: 'GearmanConnectionError', message: expect.stringMatching(/Worker stopped/) });
    await expect(worker.start()).rejects.toThrow(/Worker stopped/);
    for (const socket of accepted) socket.destroy();
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  });

  test('bad options and registrations are refused with clear errors', () => {
    expect(() => new GearmanWorker({ concurrency: 0 })).toThrow(/concurrency/);
    expect(() => new GearmanWorker({ concurrency: 2.5 })).toThrow(/concurrency/);
    expect(() => new GearmanWorker({ stopTimeoutMs: -1 })).toThrow(/stopTimeoutMs/);
    const worker = new GearmanWorker();
    expect(() => worker.register('', () => 'x')).toThrow(/function name/);
    expect(() => worker.register('f', 'nope' as never)).toThrow(/must be a function/);
    expect(() => worker.register('f', () => 'x', { timeoutMs: -1 })).toThrow(/timeoutMs/);
  });
});
