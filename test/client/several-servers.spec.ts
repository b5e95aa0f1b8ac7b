import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { quietLogger } from './support/harness.js';
import { waitFor } from './support/wait.js';

/** Three job servers whose handles name them (H:s0:1, H:s1:1, ...), a worker on all, a client on all. */
describe('GearmanClient with several job servers', () => {
  let servers: GearmanJobServer[];
  let addresses: string[];
  let client: GearmanClient;
  let worker: GearmanWorker;

  beforeEach(async () => {
    servers = [0, 1, 2].map((i) => new GearmanJobServer({ port: 0, jobHandlePrefix: `H:s${i}`, logger: false }));
    await Promise.all(servers.map((server) => server.listen()));
    addresses = servers.map((server) => `127.0.0.1:${server.address().port}`);
    worker = new GearmanWorker({ servers: addresses, logger: quietLogger, concurrency: 4 });
    worker.register('where', (job) => job.handle.split(':')[1]);
    await worker.start();
    await waitFor(() => worker.connectedServers.length === 3, 'the worker on every server');
    client = new GearmanClient({ servers: addresses, logger: quietLogger, reconnect: { maxAttempts: 0 } });
    await client.connect();
    await waitFor(() => client.connectedServers.length === 3, 'the client on every server');
  });

  afterEach(async () => {
    await client.close();
    await worker.stop();
    await Promise.all(servers.map((server) => server.close()));
  });

  const run = (count: number, unique?: (i: number) => string) =>
    Promise.all(Array.from({ length: count }, (_, i) => client.submitJob('where', String(i), { unique: unique?.(i) }).result.then(String)));

  const countBy = (values: string[]) =>
    values.reduce<Record<string, number>>((counts, v) => ({ ...counts, [v]: (counts[v] ?? 0) + 1 }), {});

  test('jobs without a unique id go round-robin', async () => {
    expect(countBy(await run(30))).toEqual({ s0: 10, s1: 10, s2: 10 });
  });

  test('jobs with the same unique id always meet on the same server, so they coalesce', async () => {
    const first = await run(6, () => 'the-same-key');
    const second = await run(6, () => 'the-same-key');
    expect(new Set([...first, ...second]).size).toBe(1);
    const spread = await run(60, (i) => `key-${i}`);
    expect(Object.keys(countBy(spread)).sort()).toEqual(['s0', 's1', 's2']);
  });

  test('a server that is down is skipped, for round-robin and keyed jobs alike', async () => {
    await servers[1].close();
    await waitFor(() => client.connectedServers.length === 2, 'the client to notice');
    const plain = await run(20);
    const keyed = await run(20, (i) => `key-${i}`);
    expect(new Set([...plain, ...keyed])).toEqual(new Set(['s0', 's2']));
    expect(client.connectedServers).toEqual([addresses[0], addresses[2]]);
  });
});
