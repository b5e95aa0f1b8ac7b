import { createServer, type Server, type Socket } from 'node:net';
import { GearmanAdminClient } from '../../lib/client/admin-client.js';
import { inspectJobServer } from '../../lib/client/job-server-snapshot.js';
import { GearmanConnectionError, GearmanServerError } from '../../lib/common/errors.js';
import { describeWithPeers, freePort } from '../support/gearmand.js';
import { useJobServer } from './support/harness.js';
import { JOB_SERVER_KINDS } from './support/job-servers.js';
import { deferred, waitFor } from './support/wait.js';

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `GearmanAdminClient and inspectJobServer on ${kind.name}`, () => {
    const t = useJobServer(kind);

    test('status, prioritystatus, workers, version and ECHO on one connection', async () => {
      const worker = t.worker({ clientId: 'resizer-1' });
      worker.register('resize', () => 'done');
      await worker.start();
      const client = t.client();
      await client.submitBackgroundJob('archive', 'a', { priority: 'high' });
      await client.submitBackgroundJob('archive', 'b', { priority: 'low' });
      await client.submitBackgroundJob('archive', 'c', { priority: 'low' });
      await waitFor(async () => (await inspectJobServer(t.server.address)).workers.length === 1, 'the worker to register');

      const admin = await GearmanAdminClient.connect(t.server.address);
      try {
        expect(await admin.ping()).toBeGreaterThanOrEqual(0);
        const status = await admin.status();
        expect(status).toEqual(
          expect.arrayContaining([
            { name: 'archive', total: 3, running: 0, workers: 0 },
            { name: 'resize', total: 0, running: 0, workers: 1 },
          ]),
        );
        expect(await admin.priorityStatus()).toEqual(expect.arrayContaining([{ name: 'archive', high: 1, normal: 0, low: 2, workers: 0 }]));
        const workers = await admin.workers();
        expect(workers.filter((row) => row.functions.length > 0)).toEqual([
          expect.objectContaining({ clientId: 'resizer-1', functions: ['resize'] }),
        ]);
        expect(await admin.version()).toMatch(/^\d+\.\d+/);
        expect(await admin.jobs()).toHaveLength(3);
      } finally {
        admin.close();
      }
    });

    test('inspectJobServer reads functions, workers and running jobs with their progress', async () => {
      const release = deferred();
      const started = deferred();
      const worker = t.worker({ clientId: 'slow-worker' });
      worker.register('slow', async (job) => {
        job.sendStatus(3, 10);
        started.resolve();
        await release.promise;
        return 'ok';
      });
      await worker.start();
      const job = t.client().submitJob('slow', 'x');
      await started.promise;
      const handle = await job.created;
      await waitFor(async () => (await t.client().getStatus(handle)).numerator === 3, 'the progress to reach the server');

      const snapshot = await inspectJobServer(t.server.address, { runningJobs: 10 });
      expect(snapshot).toMatchObject({ server: t.server.address, reachable: true });
      expect(snapshot.rttMs).toBeGreaterThanOrEqual(0);
      expect(snapshot.functions).toEqual([
        { name: 'slow', queued: 0, running: 1, workers: 1, queuedByPriority: { high: 0, normal: 0, low: 0 } },
      ]);
      expect(snapshot.workers).toEqual([expect.objectContaining({ clientId: 'slow-worker', functions: ['slow'] })]);
      expect(snapshot.runningJobs).toEqual([{ handle, numerator: 3, denominator: 10 }]);
      release.resolve();
      expect((await job.result).toString()).toBe('ok');
    });

    test('keptResults and runningBatches: totals, and a running batch with its progress (none on gearmand)', async () => {
      const admin = await GearmanAdminClient.connect(t.server.address);
      try {
        if (kind.name === 'gearmand') {
          expect(await admin.keptResults()).toBeUndefined();
          expect(await admin.runningBatches()).toBeUndefined();
          return;
        }
        const client = t.client();
        await client.submitBackgroundJob('tally', 'kept');
        const { handle } = await client.submitBatch({ function: 'tally', failFast: false }, [Buffer.from('a'), Buffer.from('b')]);
        expect(await admin.runningBatches()).toEqual([{ handle, functionName: 'tally', ended: 0, total: 2, failed: 0, gathering: false }]);
        expect(await admin.keptResults()).toEqual({ kept: 0, bytes: 0, batchesRunning: 1 });

        const worker = t.worker();
        worker.register('tally', (job) => `counted ${job.data.toString()}`);
        await worker.start();
        await waitFor(async () => (await admin.keptResults())?.batchesRunning === 0, 'the batch to end');
        expect(await admin.runningBatches()).toEqual([]);
        expect((await admin.keptResults())!.kept).toBeGreaterThanOrEqual(2);
      } finally {
        admin.close();
      }
    });

    test('cancel job drops a queued job; a handle it does not know is the server error UNKNOWN_JOB', async () => {
      const client = t.client();
      const handle = await client.submitBackgroundJob('never-run', 'x');
      const admin = await GearmanAdminClient.connect(t.server.address);
      try {
        await admin.cancelJob(handle);
        // gearmand keeps the cancelled job listed as ignored; ours drops it.
        expect((await admin.jobs()).filter((job) => !job.ignored)).toEqual([]);
        await expect(admin.cancelJob('H:nowhere:999999')).rejects.toMatchObject({ name: 'GearmanServerError', code: 'UNKNOWN_JOB' });
        // The connection is still usable after an ERR reply (gearmand 1.1 still counts the cancelled job in status).
        expect((await admin.status()).map((row) => row.name)).toContain('never-run');
        await expect(admin.cancelJob('H:x:1\nshutdown')).rejects.toThrow(TypeError);
      } finally {
        admin.close();
      }
    });
  });
}

describe('GearmanAdminClient and inspectJobServer when the server is not there or does not answer', () => {
  let silent: Server | undefined;
  const sockets: Socket[] = [];

  afterEach(async () => {
    for (const socket of sockets.splice(0)) socket.destroy();
    await new Promise<void>((resolve) => (silent ? silent.close(() => resolve()) : resolve()));
    silent = undefined;
  });

  test('nothing listening: connect rejects with GearmanConnectionError, inspect reports unreachable', async () => {
    const port = await freePort();
    await expect(GearmanAdminClient.connect(`127.0.0.1:${port}`)).rejects.toBeInstanceOf(GearmanConnectionError);
    const snapshot = await inspectJobServer(`127.0.0.1:${port}`);
    expect(snapshot).toMatchObject({ server: `127.0.0.1:${port}`, reachable: false, functions: [], workers: [] });
    expect(snapshot.error).toMatch(/Cannot connect/);
  });

  test('a server that accepts and never answers: the request times out and the connection closes', async () => {
    silent = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const admin = await GearmanAdminClient.connect(`127.0.0.1:${port}`, { timeoutMs: 200 });
    const status = admin.status();
    const version = admin.version();
    await expect(status).rejects.toThrow(/did not answer within 200 ms/);
    await expect(version).rejects.toThrow(/did not answer within 200 ms/);
    await expect(admin.ping()).rejects.toBeInstanceOf(GearmanConnectionError);
    expect((await inspectJobServer(`127.0.0.1:${port}`, { timeoutMs: 200 })).reachable).toBe(false);
  });

  test('an ERR line is a GearmanServerError with its code and text', async () => {
    silent = createServer((socket) => {
      sockets.push(socket);
      socket.on('data', () => socket.write('ERR UNKNOWN_COMMAND Unknown+server+command\r\n'));
    });
    await new Promise<void>((resolve) => silent!.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const admin = await GearmanAdminClient.connect(`127.0.0.1:${port}`);
    try {
      const error = await admin.status().catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(GearmanServerError);
      expect(error).toMatchObject({ code: 'UNKNOWN_COMMAND', text: 'Unknown server command' });
      // prioritystatus is optional: an older server's UNKNOWN_COMMAND reads as "not known".
      expect(await admin.priorityStatus()).toBeUndefined();
    } finally {
      admin.close();
    }
  });
});
