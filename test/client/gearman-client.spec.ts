import { GearmanClient } from '../../lib/client/gearman-client.js';
import {
  GearmanConnectionError,
  GearmanJobExceptionError,
  GearmanJobFailedError,
  GearmanJobReleasedError,
  GearmanServerError,
} from '../../lib/common/errors.js';
import type { WorkerJob } from '../../lib/worker/worker-job.js';
import { describeWithPeers } from '../support/gearmand.js';
import { quietLogger, useJobServer } from './support/harness.js';
import { JOB_SERVER_KINDS } from './support/job-servers.js';
import { deferred, waitFor } from './support/wait.js';

const reverse = (job: WorkerJob) => job.data.toString('utf8').split('').reverse().join('');

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanClient on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('a foreground job returns the worker result', async () => {
      const worker = t.worker();
      worker.register('reverse', reverse);
      await worker.start();
      const client = t.client();
      const job = client.submitJob('reverse', 'hello');
      const handle = await job.created;
      expect(handle).toMatch(/^H:/);
      expect(job.handle).toBe(handle);
      expect((await job.result).toString()).toBe('olleh');
    });

    test('binary payloads with NUL bytes travel untouched both ways', async () => {
      const worker = t.worker();
      worker.register('double', (job) => Buffer.concat([job.data, job.data]));
      await worker.start();
      const payload = Buffer.from([0, 1, 2, 0, 255, 0]);
      const result = await t.client().submitJob('double', payload).result;
      expect(result).toEqual(Buffer.concat([payload, payload]));
    });

    test('a background job resolves with its handle and runs', async () => {
      const ran = deferred<string>();
      const worker = t.worker();
      worker.register('note', (job) => {
        ran.resolve(job.data.toString());
      });
      await worker.start();
      const handle = await t.client().submitBackgroundJob('note', 'in the background');
      expect(handle).toMatch(/^H:/);
      expect(await ran.promise).toBe('in the background');
    });

    test('a background job without a unique id is queued under a generated UUID; a given one is kept', async () => {
      const seen: string[] = [];
      const worker = t.worker();
      worker.register('uniques', (job) => {
        seen.push(job.unique);
      });
      await worker.start();
      const client = t.client();
      const generated = await client.submitBackground('uniques', 'a');
      const emptyGiven = await client.submitBackground('uniques', 'b', { unique: '' });
      const epoch = await client.submitBackground('uniques', 'c', { runAt: 0 });
      const given = await client.submitBackground('uniques', 'd', { unique: 'order-42' });
      const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
      for (const job of [generated, emptyGiven, epoch]) expect(job.unique).toMatch(uuid);
      expect(new Set([generated.unique, emptyGiven.unique, epoch.unique]).size).toBe(3);
      expect(given.unique).toBe('order-42');
      await waitFor(() => seen.length === 4, 'four jobs');
      expect(seen.sort()).toEqual([generated.unique, emptyGiven.unique, epoch.unique, 'order-42'].sort());
    });

    test('queued jobs run high, then normal, then low priority', async () => {
      const client = t.client();
      await client.submitBackgroundJob('order', 'low', { priority: 'low' });
      await client.submitBackgroundJob('order', 'normal', { priority: 'normal' });
      await client.submitBackgroundJob('order', 'high', { priority: 'high' });
      const foregroundLow = client.submitJob('order', 'fg-low', { priority: 'low' });
      const foregroundHigh = client.submitJob('order', 'fg-high', { priority: 'high' });
      await Promise.all([foregroundLow.created, foregroundHigh.created]);

      const seen: string[] = [];
      const worker = t.worker();
      worker.register('order', (job) => {
        seen.push(job.data.toString());
        return 'ok';
      });
      await worker.start();
      await Promise.all([foregroundLow.result, foregroundHigh.result]);
      await waitFor(() => seen.length === 5, 'five jobs');
      expect(seen).toEqual(['high', 'fg-high', 'normal', 'low', 'fg-low']);
    });

    test('submits with the same unique id coalesce into one job', async () => {
      const client = t.client();
      const other = t.client();
      const first = client.submitJob('slow-square', '7', { unique: 'square-7' });
      const second = client.submitJob('slow-square', '7', { unique: 'square-7' });
      const third = other.submitJob('slow-square', '7', { unique: 'square-7' });
      const distinct = client.submitJob('slow-square', '8', { unique: 'square-8' });
      const handles = await Promise.all([first.created, second.created, third.created, distinct.created]);
      expect(handles[1]).toBe(handles[0]);
      expect(handles[2]).toBe(handles[0]);
      expect(handles[3]).not.toBe(handles[0]);

      let runs = 0;
      const worker = t.worker();
      worker.register('slow-square', (job) => {
        runs++;
        return String(Number(job.data.toString()) ** 2);
      });
      await worker.start();
      const results = await Promise.all([first.result, second.result, third.result, distinct.result]);
      expect(results.map(String)).toEqual(['49', '49', '49', '64']);
      expect(runs).toBe(2);
    });

    test('coalesced jobs on one connection each see every WORK_DATA exactly once', async () => {
      const client = t.client();
      const first = client.submitJob('stream', 'x', { unique: 'stream-1' });
      const second = client.submitJob('stream', 'x', { unique: 'stream-1' });
      await Promise.all([first.created, second.created]);
      const seen: string[][] = [[], []];
      first.on('data', (data: Buffer) => seen[0].push(data.toString()));
      second.on('data', (data: Buffer) => seen[1].push(data.toString()));
      const worker = t.worker();
      worker.register('stream', (job) => {
        job.sendData('a');
        job.sendData('b');
        return 'end';
      });
      await worker.start();
      expect((await Promise.all([first.result, second.result])).map(String)).toEqual(['end', 'end']);
      expect(seen).toEqual([
        ['a', 'b'],
        ['a', 'b'],
      ]);
    });

    test('releasing one of several coalesced jobs on a connection leaves the others whole', async () => {
      const client = t.client();
      const jobs = [0, 1, 2, 3].map(() => client.submitJob('stream', 'x', { unique: 'stream-2' }));
      jobs[3].release(); // before JOB_CREATED
      await Promise.all(jobs.slice(0, 3).map((job) => job.created));
      jobs[1].release(); // after
      const seen: string[][] = [[], [], [], []];
      jobs.forEach((job, i) => job.on('data', (data: Buffer) => seen[i].push(data.toString())));
      const worker = t.worker();
      worker.register('stream', (job) => {
        job.sendData('a');
        job.sendStatus(1, 2);
        job.sendData('b');
        return 'end';
      });
      await worker.start();
      expect((await Promise.all([jobs[0].result, jobs[2].result])).map(String)).toEqual(['end', 'end']);
      expect(seen).toEqual([['a', 'b'], [], ['a', 'b'], []]);
      expect((await client.echo('after')).toString()).toBe('after');
    });

    test("unique '-' coalesces on the payload", async () => {
      const client = t.client();
      const a = client.submitJob('echo-back', 'same bytes', { unique: '-' });
      const b = client.submitJob('echo-back', 'same bytes', { unique: '-' });
      const c = client.submitJob('echo-back', 'other bytes', { unique: '-' });
      const [ha, hb, hc] = await Promise.all([a.created, b.created, c.created]);
      expect(hb).toBe(ha);
      expect(hc).not.toBe(ha);
      const worker = t.worker();
      worker.register('echo-back', (job) => job.data);
      await worker.start();
      expect((await Promise.all([a.result, b.result, c.result])).map(String)).toEqual(['same bytes', 'same bytes', 'other bytes']);
    });

    test('an epoch job in the past runs; one in the future waits while later jobs run', async () => {
      const ran: string[] = [];
      const worker = t.worker();
      worker.register('at', (job) => {
        ran.push(job.data.toString());
      });
      await worker.start();
      const client = t.client();
      const later = await client.submitBackgroundJob('at', 'next hour', { runAt: new Date(Date.now() + 3_600_000) });
      await client.submitBackgroundJob('at', 'already due', { runAt: Math.floor(Date.now() / 1000) - 5 });
      await waitFor(() => ran.includes('already due'), 'the due epoch job');
      await client.submitJob('at', 'plain job').result;
      expect(ran).not.toContain('next hour');
      const status = await client.getStatus(later);
      expect(status).toMatchObject({ handle: later, known: true, running: false });
    });

    test('WORK_DATA, WORK_WARNING and WORK_STATUS stream as events before the result', async () => {
      const worker = t.worker();
      worker.register('chatty', (job) => {
        job.sendData('part 1');
        job.sendWarning('careful');
        job.sendStatus(1, 2);
        job.sendData(Buffer.from([0, 1]));
        job.sendStatus(2, 2);
        return 'all done';
      });
      await worker.start();
      const job = t.client().submitJob('chatty', '');
      const events: unknown[] = [];
      job.on('data', (data: Buffer) => events.push(['data', data.toString('hex')]));
      job.on('warning', (data: Buffer) => events.push(['warning', data.toString()]));
      job.on('status', (numerator: number, denominator: number) => events.push(['status', numerator, denominator]));
      expect((await job.result).toString()).toBe('all done');
      expect(events).toEqual([
        ['data', Buffer.from('part 1').toString('hex')],
        ['warning', 'careful'],
        ['status', 1, 2],
        ['data', '0001'],
        ['status', 2, 2],
      ]);
    });

    test('WORK_FAIL rejects with GearmanJobFailedError', async () => {
      const worker = t.worker();
      worker.register('refuse', (job) => job.fail());
      await worker.start();
      const job = t.client().submitJob('refuse', 'x');
      const error = await job.result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanJobFailedError);
      expect(error).toMatchObject({ code: 'JOB_FAILED', functionName: 'refuse', handle: await job.created });
    });

    test('a handler that throws reaches the client as WORK_EXCEPTION with the message, and the job ends', async () => {
      const worker = t.worker();
      worker.register('explode', () => {
        throw new Error('it broke');
      });
      await worker.start();
      const client = t.client();
      const job = client.submitJob('explode', 'x');
      const error = await job.result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanJobExceptionError);
      expect((error as GearmanJobExceptionError).code).toBe('JOB_EXCEPTION');
      expect((error as GearmanJobExceptionError).data.toString()).toBe('it broke');
      expect(await client.getStatus(await job.created)).toMatchObject({ known: false });
    });

    test('without the exceptions option an exception arrives as a failure', async () => {
      const worker = t.worker();
      worker.register('explode', (job) => job.exception('details'));
      await worker.start();
      const error = await t
        .client({ exceptions: false })
        .submitJob('explode', 'x')
        .result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanJobFailedError);
    });

    test('GET_STATUS and GET_STATUS_UNIQUE report a running job, then forget it', async () => {
      const release = deferred();
      const worker = t.worker();
      worker.register('progress', async (job) => {
        job.sendStatus(3, 10);
        await release.promise;
        return 'finished';
      });
      await worker.start();
      const client = t.client();
      const job = client.submitJob('progress', 'x', { unique: 'progress-1' });
      await new Promise((resolve) => job.once('status', resolve));
      const handle = await job.created;
      expect(await client.getStatus(handle)).toEqual({ handle, known: true, running: true, numerator: 3, denominator: 10 });
      const byUnique = await client.getStatusUnique('progress-1');
      expect(byUnique).toMatchObject({ unique: 'progress-1', known: true, running: true, numerator: 3, denominator: 10 });
      expect(byUnique.waitingClients).toBeGreaterThanOrEqual(1);
      release.resolve();
      await job.result;
      expect(await client.getStatus(handle)).toMatchObject({ handle, known: false, running: false });
      expect(await client.getStatusUnique('progress-1')).toMatchObject({ known: false });
    });

    test('an ERROR answer (a full queue) rejects that submit only, with the server code', async () => {
      const { adminLine } = await import('./support/admin.js');
      const client = t.client();
      // maxqueue applies to functions the server knows: queue one job first.
      await expect(client.submitBackgroundJob('limited', 'one')).resolves.toMatch(/^H:/);
      expect(await adminLine(t.server.port, 'maxqueue limited 1')).toBe('OK');
      const second = client.submitBackgroundJob('limited', 'two');
      const third = client.submitJob('limited', 'three');
      const other = client.submitBackgroundJob('unlimited', 'four');
      const error = await second.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanServerError);
      expect((error as GearmanServerError).code).toBe('QUEUE_ERROR');
      await expect(third.created).rejects.toMatchObject({ code: 'QUEUE_ERROR' });
      await expect(third.result).rejects.toMatchObject({ code: 'QUEUE_ERROR' });
      await expect(other).resolves.toMatch(/^H:/);
    });

    test('GET_STATUS of a handle nobody knows', async () => {
      expect(await t.client().getStatus('H:nowhere:1')).toEqual({
        handle: 'H:nowhere:1',
        known: false,
        running: false,
        numerator: 0,
        denominator: 0,
      });
    });

    test('ECHO returns the bytes sent', async () => {
      const client = t.client();
      expect(await client.echo(Buffer.from([0, 1, 2, 3]))).toEqual(Buffer.from([0, 1, 2, 3]));
      expect((await client.echo('text')).toString()).toBe('text');
    });

    test('hundreds of jobs in flight on one connection are each matched to their result', async () => {
      const worker = t.worker({ concurrency: 16 });
      worker.register('tag', async (job) => {
        await new Promise((resolve) => setImmediate(resolve));
        return `${job.data.toString()}!`;
      });
      await worker.start();
      const client = t.client();
      const jobs = Array.from({ length: 400 }, (_, i) => client.submitJob('tag', `job-${i}`));
      const results = await Promise.all(jobs.map((job) => job.result));
      expect(results.map(String)).toEqual(jobs.map((_, i) => `job-${i}!`));
      expect(new Set(await Promise.all(jobs.map((job) => job.created))).size).toBe(400);
    });

    test('release() stops listening: the result rejects, later packets are dropped, other jobs go on', async () => {
      const release = deferred();
      const worker = t.worker({ concurrency: 2 });
      worker.register('wait', async (job) => {
        job.sendData('started');
        await release.promise;
        return 'late';
      });
      worker.register('quick', (job) => job.data);
      await worker.start();
      const client = t.client();
      const job = client.submitJob('wait', 'x');
      const afterRelease: string[] = [];
      await new Promise((resolve) => job.once('data', resolve));
      job.on('data', () => afterRelease.push('data'));
      job.release();
      await expect(job.result).rejects.toBeInstanceOf(GearmanJobReleasedError);
      release.resolve();
      expect((await client.submitJob('quick', 'still fine').result).toString()).toBe('still fine');
      expect(afterRelease).toEqual([]);
    });

    test('a job released before JOB_CREATED is dropped when its handle arrives', async () => {
      const worker = t.worker();
      worker.register('quick', (job) => job.data);
      await worker.start();
      const client = t.client();
      const released = client.submitJob('quick', 'first');
      released.release();
      const kept = client.submitJob('quick', 'second');
      await expect(released.result).rejects.toBeInstanceOf(GearmanJobReleasedError);
      await expect(released.created).rejects.toBeInstanceOf(GearmanJobReleasedError);
      expect((await kept.result).toString()).toBe('second');
    });

    test('an oversized unique id rejects the job without sending it', async () => {
      const client = t.client();
      const job = client.submitJob('f', 'x', { unique: 'u'.repeat(65) });
      await expect(job.result).rejects.toMatchObject({ code: 'ARGUMENT_TOO_LARGE' });
      await expect(client.submitBackgroundJob('', 'x')).rejects.toThrow(TypeError);
      await expect(client.submitJob('f', 'x', { runAt: new Date() }).result).rejects.toThrow(/background/);
      await expect(client.submitJob('f', 'x', { unique: 7 as never }).result).rejects.toThrow(/unique must be a string/);
      await expect(client.submitBackgroundJob('f', 'x', { priority: 'urgent' as never })).rejects.toThrow(/Unknown job priority/);
      await expect(client.submitBackgroundJob('f', 'x', { runAt: new Date(), priority: 'high' })).rejects.toThrow(/normal priority/);
      await expect(client.submitBackgroundJob('f', 'x', { runAt: Number.NaN })).rejects.toThrow(/Invalid runAt/);
      await expect(client.submitJob('f', 42 as never).result).rejects.toThrow(/Buffer or a string/);
      expect((await client.echo('connection still fine')).toString()).toBe('connection still fine');
    });

    test('a job in flight when the server dies fails promptly with GearmanConnectionError', async () => {
      const started = deferred();
      const worker = t.worker({ reconnect: { maxAttempts: 0 } });
      worker.register('forever', () => {
        started.resolve();
        return new Promise(() => undefined);
      });
      await worker.start();
      const client = t.client({ reconnect: { maxAttempts: 0 } });
      const disconnected = new Promise((resolve) => client.once('disconnect', resolve));
      const job = client.submitJob('forever', 'x');
      const handle = await job.created;
      await started.promise;
      await t.server.stop();
      const error = await job.result.catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect((error as GearmanConnectionError).message).toContain(handle);
      // The job server went away with the job in flight: reported as Node reports a peer that hangs up.
      expect((error as GearmanConnectionError).code).toBe('ECONNRESET');
      await disconnected;
    });

    test('after the server restarts, the client reconnects and the worker registers again; both log it as warnings', async () => {
      const warnings: string[] = [];
      const logger = { ...quietLogger, warn: (message: unknown) => warnings.push(String(message)) };
      const options = { reconnect: { initialDelayMs: 20, maxDelayMs: 200 }, logger };
      const worker = t.worker(options);
      worker.register('reverse', reverse);
      const workerConnects: string[] = [];
      worker.on('connect', (server: string) => workerConnects.push(server));
      await worker.start();
      const client = t.client(options);
      expect((await client.submitJob('reverse', 'before').result).toString()).toBe('erofeb');

      const reconnecting = new Promise((resolve) => worker.once('reconnecting', resolve));
      await t.server.stop();
      await reconnecting;
      await t.server.start();
      await waitFor(() => workerConnects.length === 2, 'the worker to reconnect');
      expect((await client.submitJob('reverse', 'after').result).toString()).toBe('retfa');
      expect(workerConnects).toEqual([t.server.address, t.server.address]);
      const lost = (who: string) => new RegExp(`^${who}: lost the connection to ${t.server.address} \\(ECONNRESET: .*\\); reconnecting$`);
      expect(warnings).toContainEqual(expect.stringMatching(lost('GearmanWorker')));
      expect(warnings).toContainEqual(expect.stringMatching(lost('GearmanClient')));
      expect(warnings).toContain(`GearmanWorker: reconnected to ${t.server.address}`);
      expect(warnings).toContain(`GearmanClient: reconnected to ${t.server.address}`);
      // The exceptions option was asked for again on the new connection.
      worker.register('explode', () => {
        throw new Error('after restart');
      });
      await expect(client.submitJob('explode', '').result).rejects.toBeInstanceOf(GearmanJobExceptionError);
    });

    test('a submit while the server is down fails at once; once it is back, submits work again', async () => {
      const worker = t.worker({ reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      worker.register('reverse', reverse);
      await worker.start();
      const client = t.client({ reconnect: { initialDelayMs: 20, maxDelayMs: 100 } });
      await client.connect();
      const lost = new Promise((resolve) => client.once('disconnect', resolve));
      await t.server.stop();
      await lost;
      await expect(client.submitJob('reverse', 'nobody home').result).rejects.toBeInstanceOf(GearmanConnectionError);
      await expect(client.submitBackgroundJob('reverse', 'nobody home')).rejects.toBeInstanceOf(GearmanConnectionError);
      await t.server.start();
      await waitFor(() => client.connectedServers.length === 1 && worker.connectedServers.length === 1, 'both to reconnect');
      expect((await client.submitJob('reverse', 'back').result).toString()).toBe('kcab');
    });

    test('close() fails the jobs still in flight with GearmanConnectionError', async () => {
      const worker = t.worker();
      worker.register('forever', () => new Promise(() => undefined));
      await worker.start();
      const client = t.client();
      const job = client.submitJob('forever', '');
      await job.created;
      await client.close();
      await expect(job.result).rejects.toThrow(/Client closed/);
      await expect(job.result).rejects.toBeInstanceOf(GearmanConnectionError);
    });
  });
}

describe('GearmanClient without a server', () => {
  test('connect() to a closed port rejects with GearmanConnectionError, and so does a job', async () => {
    const { freePort } = await import('../support/gearmand.js');
    const port = await freePort();
    const client = new GearmanClient({ servers: [`127.0.0.1:${port}`] });
    try {
      const error = await client.connect().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect((error as Error).message).toContain(`127.0.0.1:${port}`);
      await expect(client.submitJob('f', 'x').result).rejects.toBeInstanceOf(GearmanConnectionError);
      await expect(client.submitBackgroundJob('f', 'x')).rejects.toBeInstanceOf(GearmanConnectionError);
      await expect(client.echo('x')).rejects.toBeInstanceOf(GearmanConnectionError);
    } finally {
      await client.close();
    }
  });

  test('close() is safe twice and fails later submits', async () => {
    const client = new GearmanClient();
    await client.close();
    await client.close();
    await expect(client.submitJob('f', 'x').result).rejects.toThrow('Client closed');
    await expect(client.connect()).rejects.toBeInstanceOf(GearmanConnectionError);
  });

  test('a server error has the server code', () => {
    const error = new GearmanServerError('QUEUE_ERROR', 'queue full');
    expect(error.code).toBe('QUEUE_ERROR');
    expect(error.message).toContain('queue full');
  });
});
