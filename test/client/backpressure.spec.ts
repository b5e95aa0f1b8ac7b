import { once } from 'node:events';
import { type ClientJob } from '../../lib/client/client-job.js';
import { type GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanConnectionError, GearmanQueueFullError } from '../../lib/common/errors.js';
import { describeWithPeers } from '../support/gearmand.js';
import { useJobServer } from './support/harness.js';
import { JOB_SERVER_KINDS } from './support/job-servers.js';
import { SlowReaderProxy } from './support/slow-reader-proxy.js';
import { waitFor } from './support/wait.js';

const CHUNK = 256 * 1024;

/** A payload whose every byte is its index, to check each result is its own job's. */
const payload = (index: number) => Buffer.alloc(CHUNK, index % 256);

/** Submits until the connection backs up (kernel buffers full, then the socket's own); returns the jobs. */
async function submitUntilBackedUp(client: GearmanClient): Promise<ClientJob[]> {
  const jobs: ClientJob[] = [];
  while (!client.needsDrain) {
    if (jobs.length >= 400) throw new Error('the connection never backed up');
    jobs.push(client.submitJob('echo', payload(jobs.length)));
    // Let the batch leave, so the kernel buffers fill before the socket's own does.
    await new Promise((resolve) => setImmediate(resolve));
  }
  return jobs;
}

async function expectEchoed(jobs: ClientJob[]): Promise<void> {
  const results = await Promise.all(jobs.map((job) => job.result));
  results.forEach((result, index) => expect(result.equals(payload(index))).toBe(true));
}

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `client backpressure, on ${kind.name}`, () => {
    const t = useJobServer(kind);
    let proxy: SlowReaderProxy;

    beforeEach(async () => {
      proxy = await SlowReaderProxy.start(t.server.port);
      t.defer(() => proxy.close());
      const worker = t.worker({ concurrency: 8 });
      worker.register('echo', (job) => job.data);
      await worker.start();
    });

    test('while the server does not read, submits wait in memory; once it reads again every job runs, in order, and drain is emitted', async () => {
      const client = t.client({ servers: [proxy.address] });
      await client.connect();
      proxy.stopReading();

      const jobs = await submitUntilBackedUp(client);
      const drains: number[] = [];
      client.on('drain', () => drains.push(drains.length));
      const forwardedWhenBackedUp = proxy.bytesForwarded;
      // These are held by the client, not pushed into the socket.
      for (let i = 0; i < 20; i++) jobs.push(client.submitJob('echo', payload(jobs.length)));
      expect(client.needsDrain).toBe(true);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(proxy.bytesForwarded).toBe(forwardedWhenBackedUp);
      expect(drains).toEqual([]);

      proxy.readAgain();
      await expectEchoed(jobs);
      expect(client.needsDrain).toBe(false);
      expect(drains.length).toBeGreaterThanOrEqual(1);
    });

    test('past maxQueuedBytes a submit fails at once with GearmanQueueFullError; the others all run', async () => {
      // Room for four requests (a chunk and its packet header each).
      const client = t.client({ servers: [proxy.address], maxQueuedBytes: 4 * (CHUNK + 64) });
      await client.connect();
      proxy.stopReading();
      const accepted = await submitUntilBackedUp(client);

      const more = Array.from({ length: 8 }, (_, i) => client.submitJob('echo', payload(accepted.length + i)));
      expect(more.map((job) => job.isSettled)).toEqual([false, false, false, false, true, true, true, true]);
      const errors = await Promise.all(more.slice(4).map((job) => job.result.catch((error: unknown) => error)));
      for (const error of errors) {
        expect(error).toBeInstanceOf(GearmanQueueFullError);
        expect((error as GearmanQueueFullError).code).toBe('QUEUE_FULL');
        expect((error as GearmanQueueFullError).server).toBe(proxy.address);
      }

      proxy.readAgain();
      await expectEchoed(accepted);
      const held = await Promise.all(more.slice(0, 4).map((job) => job.result));
      held.forEach((result, i) => expect(result.equals(payload(accepted.length + i))).toBe(true));
    });

    test('a producer that waits for drain whenever needsDrain is true never hits the bound', async () => {
      const client = t.client({ servers: [proxy.address], maxQueuedBytes: 2 * CHUNK });
      await client.connect();
      proxy.stopReading();
      setTimeout(() => proxy.readAgain(), 200);
      const handles: Promise<string>[] = [];
      for (let i = 0; i < 60; i++) {
        handles.push(client.submitBackgroundJob('echo', payload(i)));
        if (client.needsDrain) await once(client, 'drain');
      }
      const created = await Promise.all(handles);
      expect(new Set(created).size).toBe(60);
    });

    test('a connection lost while submits wait fails each of them with GearmanConnectionError and emits drain', async () => {
      const client = t.client({ servers: [proxy.address], reconnect: { maxAttempts: 0 } });
      client.on('error', () => undefined);
      await client.connect();
      proxy.stopReading();
      const jobs = await submitUntilBackedUp(client);
      for (let i = 0; i < 5; i++) jobs.push(client.submitJob('echo', payload(jobs.length)));
      const drained = once(client, 'drain');
      proxy.cut();
      await drained;
      const errors = await Promise.all(
        jobs.map((job) =>
          job.result.then(
            () => undefined,
            (error: unknown) => error,
          ),
        ),
      );
      expect(errors.every((error) => error instanceof GearmanConnectionError)).toBe(true);
      await waitFor(() => !client.needsDrain, 'needsDrain to clear');
    });
  });
}
