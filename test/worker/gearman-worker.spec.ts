import { GearmanConnectionError, GearmanJobExceptionError, GearmanJobFailedError } from '../../lib/common/errors.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { type WorkerJob } from '../../lib/worker/worker-job.js';
import { adminCommand } from '../client/support/admin.js';
import { CountingProxy } from '../client/support/counting-proxy.js';
import { quietLogger, useJobServer } from '../client/support/harness.js';
import { JOB_SERVER_KINDS } from '../client/support/job-servers.js';
import { deferred, sleep, waitFor } from '../client/support/wait.js';
import { describeWithPeers, freePort } from '../support/gearmand.js';

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanWorker on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('keeps up to `concurrency` jobs in flight on its connection and grabs again as a slot frees', async () => {
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
      const client = t.client();
      const jobs = Array.from({ length: 20 }, (_, i) => client.submitJob('busy', String(i)));
      expect((await Promise.all(jobs.map((job) => job.result))).map(String)).toEqual(jobs.map((_, i) => String(i)));
      expect(mostAtOnce).toBe(4);
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
  test('start() against a closed port rejects with GearmanConnectionError', async () => {
    const port = await freePort();
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${port}`], logger: quietLogger });
    const error = await worker.start().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GearmanConnectionError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED', server: `127.0.0.1:${port}`, cause: { code: 'ECONNREFUSED' } });
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
