import { lastValueFrom } from 'rxjs';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { describeWithPeers, startGearmand, type RunningGearmand } from '../support/gearmand.js';
import { tempQueueDir } from '../support/queue-files.js';
import { eventually } from './job-servers.js';

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined };
const JOBS = 10_000;

/**
 * `emit()` without a unique id on gearmand's SQLite queue: each event is its own row (a generated
 * unique id), so a crash of gearmand loses none of them.
 */
describeWithPeers(['gearmand'], 'ClientGearman.emit() on gearmand -q libsqlite3', () => {
  const files = tempQueueDir();
  let gearmand: RunningGearmand | undefined;
  afterEach(async () => {
    await gearmand?.stop();
    gearmand = undefined;
  });
  afterAll(() => files.remove());

  test(`${JOBS} emitted events all come back after gearmand is SIGKILLed and restarted`, async () => {
    const file = files.file('emit.db');
    const queueFlags = ['-q', 'libsqlite3', `--libsqlite3-db=${file}`];
    gearmand = await startGearmand(queueFlags);
    const client = new ClientGearman({ servers: [`127.0.0.1:${gearmand.port}`], logger: quiet });
    await client.connect();
    const handles = await Promise.all(Array.from({ length: JOBS }, (_, i) => lastValueFrom(client.emit('durable.note', { n: i }))));
    await client.close();
    expect(new Set(handles).size).toBe(JOBS);

    gearmand.process.kill('SIGKILL');
    await gearmand.stop();
    gearmand = await startGearmand(queueFlags);

    const seen = new Set<number>();
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${gearmand.port}`], logger: quiet });
    worker.register('durable.note', (job) => {
      seen.add((JSON.parse(job.data.toString()) as { n: number }).n);
    });
    await worker.start();
    try {
      await eventually(() => seen.size === JOBS, `the ${JOBS} replayed events`, 120_000);
    } finally {
      await worker.stop();
    }
    expect(seen.size).toBe(JOBS);
    expect(Math.min(...seen)).toBe(0);
    expect(Math.max(...seen)).toBe(JOBS - 1);
  }, 180_000);
});
