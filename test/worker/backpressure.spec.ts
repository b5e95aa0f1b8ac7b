import { GearmanQueueFullError } from '../../lib/common/errors.js';
import { useJobServer } from '../client/support/harness.js';
import { ourServerKind } from '../client/support/job-servers.js';
import { SlowReaderProxy } from '../client/support/slow-reader-proxy.js';
import { deferred } from '../client/support/wait.js';

describe('worker backpressure: a job server that stops reading cannot make a worker buffer without limit', () => {
  const t = useJobServer(ourServerKind);

  test("a handler's sendData throws GearmanQueueFullError past maxQueuedBytes unsent; its result still goes out, and every update sent arrives", async () => {
    const proxy = await SlowReaderProxy.start(t.server.port);
    t.defer(() => proxy.close());
    const maxQueuedBytes = 1024 * 1024;
    const chunk = Buffer.alloc(64 * 1024, 7);
    const stopped = deferred<{ sent: number; error: unknown }>();
    const worker = t.worker({ servers: [proxy.address], maxQueuedBytes });
    worker.register('stream', async (job) => {
      let sent = 0;
      try {
        // Up to 1 GiB of partial results, as fast as the worker takes them.
        for (; sent < 16 * 1024; sent++) {
          job.sendData(chunk);
          await new Promise((resolve) => setImmediate(resolve));
        }
        stopped.resolve({ sent, error: undefined });
      } catch (error) {
        stopped.resolve({ sent, error });
      }
      return 'done';
    });
    await worker.start();
    const client = t.client();
    const received: number[] = [];
    const job = client.submitJob('stream', 'go');
    job.on('data', (data: Buffer) => received.push(data.length));
    // Once the job runs, the server stops reading the worker's connection.
    await new Promise<void>((resolve) => job.on('data', () => resolve()));
    proxy.stopReading();
    const { sent, error } = await stopped.promise;
    expect(error).toBeInstanceOf(GearmanQueueFullError);
    expect(error).toMatchObject({ code: 'QUEUE_FULL', maxQueuedBytes });
    // What the worker held stayed near the limit: the kernel's socket buffers hold the rest.
    console.log(`worker backpressure: ${sent} updates of 64 KiB sent before GearmanQueueFullError (maxQueuedBytes 1 MiB)`);
    expect(sent).toBeLessThan(16 * 1024);
    proxy.readAgain();
    expect((await job.result).toString()).toBe('done');
    expect(received).toHaveLength(sent);
  });
});
