import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { describeWithPeers, startGearmand, type RunningGearmand } from '../support/gearmand.js';
import { tempQueueDir } from '../support/queue-files.js';
import { adminCommand } from './support/admin.js';
import { quietLogger } from './support/harness.js';
import { waitFor } from './support/wait.js';

/** Jobs of `fn` gearmand reports as queued (admin `status`: name, total, running, workers). */
async function queuedCount(port: number, fn: string): Promise<number> {
  const line = (await adminCommand(port, 'status')).find((row) => row.split('\t')[0] === fn);
  return line ? Number(line.split('\t')[1]) : 0;
}

/**
 * gearmand's SQLite queue is keyed on (unique, function): background jobs submitted without a
 * unique id would overwrite one another. The client gives each one a generated id, so every job
 * survives a crash of gearmand.
 */
describeWithPeers(['gearmand'], 'background jobs on gearmand -q libsqlite3', () => {
  const files = tempQueueDir();
  let gearmand: RunningGearmand | undefined;
  const startOn = async (file: string) => {
    gearmand = await startGearmand(['-q', 'libsqlite3', `--libsqlite3-db=${file}`]);
    return gearmand;
  };
  afterEach(async () => {
    await gearmand?.stop();
    gearmand = undefined;
  });
  afterAll(() => files.remove());

  test('100 jobs without a unique id all come back after gearmand is SIGKILLed and restarted', async () => {
    const file = files.file('hundred.db');
    const first = await startOn(file);
    const client = new GearmanClient({ servers: [`127.0.0.1:${first.port}`], logger: quietLogger });
    const payloads = Array.from({ length: 100 }, (_, i) => `job-${i}`);
    const created = await Promise.all(payloads.map((payload) => client.submitBackground('durable-100', payload)));
    await client.close();
    expect(new Set(created.map((job) => job.unique)).size).toBe(100);

    first.process.kill('SIGKILL');
    await first.stop();
    const second = await startOn(file);
    expect(await queuedCount(second.port, 'durable-100')).toBe(100);

    const seen = new Map<string, string>();
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${second.port}`], logger: quietLogger });
    worker.register('durable-100', (job) => {
      seen.set(job.data.toString(), job.unique);
    });
    await worker.start();
    try {
      await waitFor(() => seen.size === 100, 'the 100 replayed jobs', 30_000);
    } finally {
      await worker.stop();
    }
    expect([...seen.keys()].sort()).toEqual([...payloads].sort());
    // Replayed under the ids they were submitted with.
    expect(new Set(seen.values())).toEqual(new Set(created.map((job) => job.unique)));
  });
});
