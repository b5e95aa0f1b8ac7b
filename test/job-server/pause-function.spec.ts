import { GearmanAdminClient } from '../../lib/client/admin-client.js';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { waitFor } from '../client/support/wait.js';
import { describeWithPeers, startGearmand } from '../support/gearmand.js';

const quiet = { log: () => undefined, warn: () => undefined, error: () => undefined };

describe('admin `pause function` / `resume function` (an extension of this job server)', () => {
  let server: GearmanJobServer;
  let address: string;
  const opened: { close(): Promise<void> | void }[] = [];

  beforeEach(async () => {
    server = new GearmanJobServer({ port: 0, logger: false });
    await server.listen();
    address = `127.0.0.1:${server.address().port}`;
  });
  afterEach(async () => {
    for (const item of opened.splice(0).reverse()) await item.close();
    await server.close();
  });

  async function admin(): Promise<GearmanAdminClient> {
    const client = await GearmanAdminClient.connect(address);
    opened.push(client);
    return client;
  }

  it('holds the function’s jobs back from a sleeping worker until resumed; other functions run meanwhile', async () => {
    const ran: string[] = [];
    const worker = new GearmanWorker({ servers: [address], logger: quiet });
    opened.push({ close: () => worker.stop() });
    worker.register('paused.fn', (job) => {
      ran.push(job.data.toString());
      return 'ok';
    });
    worker.register('free.fn', () => 'free');
    await worker.start();
    const control = await admin();
    await control.pauseFunction('paused.fn');
    expect(await control.pausedFunctions()).toEqual(['paused.fn']);

    const client = new GearmanClient({ servers: [address], logger: quiet });
    opened.push(client);
    await client.submitBackgroundJob('paused.fn', 'a');
    await client.submitBackgroundJob('paused.fn', 'b');
    // Another function of the same worker still runs: the worker is awake and asking.
    expect((await client.submitJob('free.fn', 'x').result).toString()).toBe('free');
    expect(ran).toEqual([]);
    expect(await control.status()).toEqual(expect.arrayContaining([{ name: 'paused.fn', total: 2, running: 0, workers: 1 }]));

    await control.resumeFunction('paused.fn');
    await waitFor(() => ran.length === 2, 'both jobs to run after resume');
    expect(ran).toEqual(['a', 'b']);
    expect(await control.pausedFunctions()).toEqual([]);
  });

  it('a function not seen yet can be paused ahead; resuming one that does not exist is an error; bad arguments too', async () => {
    const control = await admin();
    await control.pauseFunction('later.fn');
    expect(await control.pausedFunctions()).toEqual(['later.fn']);
    expect((await control.status()).map((row) => row.name)).toContain('later.fn');
    await expect(control.resumeFunction('never.seen')).rejects.toMatchObject({ name: 'GearmanServerError', code: 'function' });
    await expect(control.pauseFunction('two words')).rejects.toThrow(TypeError);
    await control.resumeFunction('later.fn');
    expect(await control.pausedFunctions()).toEqual([]);
  });
});

describeWithPeers(['gearmand'], 'gearmand has no pause', () => {
  it('answers UNKNOWN_COMMAND to pause, and the admin client reads "no paused list" from it', async () => {
    const gearmand = await startGearmand();
    const control = await GearmanAdminClient.connect(`127.0.0.1:${gearmand.port}`);
    try {
      await expect(control.pauseFunction('fn')).rejects.toMatchObject({ code: 'UNKNOWN_COMMAND' });
      expect(await control.pausedFunctions()).toBeUndefined();
    } finally {
      control.close();
      await gearmand.stop();
    }
  });
});
