import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanJobExceptionError, GearmanResultTimeoutError, GearmanResultsUnavailableError } from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { describeWithPeers, startGearmand } from '../support/gearmand.js';
import { quietLogger } from './support/harness.js';
import { waitUntil } from '../support/processes.js';

/** GearmanClient's results API against job servers of this package (which keep results) and gearmand (which does not). */
describe('GearmanClient results', () => {
  const servers: GearmanJobServer[] = [];
  const closing: (() => Promise<unknown>)[] = [];
  let addresses: string[];
  let release: () => void = () => undefined;

  beforeAll(async () => {
    for (const prefix of ['H:a', 'H:b']) {
      const server = new GearmanJobServer({ port: 0, logger: false, jobHandlePrefix: prefix });
      await server.listen();
      servers.push(server);
    }
    addresses = servers.map((server) => `127.0.0.1:${server.address().port}`);
    const worker = new GearmanWorker({ servers: addresses, logger: quietLogger, concurrency: 4, stopTimeoutMs: 500 });
    worker.register('slow', async (job) => {
      job.sendStatus(1, 3);
      job.sendData('first');
      await new Promise<void>((resolve) => (release = resolve));
      job.sendWarning('late');
      job.sendData('second');
      return `done ${job.data}`;
    });
    worker.register('throws', (job) => job.exception('{"code":"NO"}'));
    worker.register('quick', (job) => `quick ${job.data}`);
    await worker.start();
    closing.push(() => worker.stop());
  });
  afterAll(async () => {
    release();
    for (const close of closing.reverse()) await close();
    for (const server of servers) await server.close();
  });

  function client(): GearmanClient {
    const created = new GearmanClient({ servers: addresses, logger: quietLogger });
    closing.push(() => created.close());
    return created;
  }

  test('finds a job on whichever of two servers has it: queued or running, then completed with its parts', async () => {
    const submitter = client();
    await submitter.connect();
    await waitUntil(() => submitter.connectedServers.length === 2, 'both servers to connect', 5000);
    const handles = await Promise.all(['x', 'y', 'z', 'w'].map((unique) => submitter.submitBackgroundJob('quick', unique, { unique })));
    expect(new Set(handles.map((handle) => handle.split(':')[1]))).toEqual(new Set(['a', 'b']));
    const reader = client();
    for (const [index, handle] of handles.entries()) {
      const state = await reader.waitForResult(handle, { timeoutMs: 5000 });
      expect(state).toMatchObject({ state: 'completed', handle, functionName: 'quick', data: [] });
      expect(state.state === 'completed' && state.result.toString()).toBe(`quick ${['x', 'y', 'z', 'w'][index]}`);
    }
    expect(await reader.getResult('z')).toMatchObject({ state: 'completed', unique: 'z' });
  });

  test('watchResult follows a running job: its progress, data and warnings, then its end; a short wait times out with the last state', async () => {
    const reader = client();
    const handle = await reader.submitBackgroundJob('slow', 'job', { unique: 'slow-1' });
    await waitUntil(async () => (await reader.getResult(handle)).state === 'running', 'the job to run', 5000);
    const timedOut = await reader.waitForResult(handle, { timeoutMs: 50 }).catch((error: unknown) => error);
    expect(timedOut).toBeInstanceOf(GearmanResultTimeoutError);
    expect(timedOut).toMatchObject({ lastState: { state: 'running', progress: { numerator: 1, denominator: 3 } } });
    const watch = reader.watchResult('slow-1', { follow: true, timeoutMs: 5000 });
    const events: string[] = [];
    watch.on('status', (numerator, denominator) => events.push(`status ${numerator}/${denominator}`));
    watch.on('data', (data) => events.push(`data ${data}`));
    watch.on('warning', (data) => events.push(`warning ${data}`));
    await waitUntil(() => events.length === 2, 'two events', 5000);
    release();
    const ended = await watch.state;
    expect(events).toEqual(['status 1/3', 'data first', 'warning late', 'data second']);
    expect(ended).toMatchObject({ state: 'completed', progress: { numerator: 1, denominator: 3 } });
    expect(ended.state === 'completed' && ended.data.map(String)).toEqual(['first', 'second']);
  });

  test('a failed job carries the error a foreground job would have failed with; an unknown id is unknown', async () => {
    const reader = client();
    const handle = await reader.submitBackgroundJob('throws', '', { unique: 'throws-1' });
    const state = await reader.waitForResult(handle, { timeoutMs: 5000 });
    expect(state.state).toBe('failed');
    expect(state.state === 'failed' && state.error).toBeInstanceOf(GearmanJobExceptionError);
    expect(state.state === 'failed' && (state.error as GearmanJobExceptionError).data.toString()).toBe('{"code":"NO"}');
    expect(await reader.getResult('H:a:999999')).toEqual({ state: 'unknown', id: 'H:a:999999', reason: 'not-found' });
  });

  test('bad input is refused before anything is sent', async () => {
    const reader = client();
    await expect(reader.getResult('')).rejects.toBeInstanceOf(TypeError);
    await expect(reader.getResult('x'.repeat(65))).rejects.toThrow(/1-64 bytes/);
    await expect(reader.getResult(42 as unknown as string)).rejects.toBeInstanceOf(TypeError);
    await expect(reader.waitForResult('x', { timeoutMs: -1 })).rejects.toThrow(/timeoutMs/);
    await expect(reader.submitBatch({ function: 'quick', failFast: true }, [], { unique: 'u'.repeat(49) })).rejects.toThrow(/48 bytes/);
  });

  test('submitBatch() and cancelBatch() at the low level', async () => {
    const reader = client();
    const { handle, unique } = await reader.submitBatch({ function: 'quick', failFast: true }, [Buffer.from('1'), Buffer.from('2')]);
    const state = await reader.waitForResult(handle, { timeoutMs: 5000 });
    expect(state).toMatchObject({ state: 'completed', unique, batch: { total: 2, ended: 2, failed: 0 } });
    expect(state.state === 'completed' && JSON.parse(state.result.toString())).toEqual([
      { index: 0, value: 'quick 1' },
      { index: 1, value: 'quick 2' },
    ]);
    expect(await reader.cancelBatch(handle)).toBe(false);
  });
});

describeWithPeers(['gearmand'], 'GearmanClient results on gearmand, which keeps none', () => {
  test('every fetch rejects with GearmanResultsUnavailableError (RESULTS_UNAVAILABLE), and so does a batch', async () => {
    const gearmand = await startGearmand();
    const reader = new GearmanClient({ servers: [`127.0.0.1:${gearmand.port}`], logger: quietLogger });
    try {
      const error = await reader.getResult('H:x:1').catch((caught: unknown) => caught);
      expect(error).toBeInstanceOf(GearmanResultsUnavailableError);
      expect(error).toMatchObject({ code: 'RESULTS_UNAVAILABLE', servers: [`127.0.0.1:${gearmand.port}`] });
      await expect(reader.submitBatch({ function: 'f', failFast: true }, [])).rejects.toBeInstanceOf(GearmanResultsUnavailableError);
      // The connection stays usable: gearmand refused the option with ERROR and kept it.
      expect((await reader.echo('still here')).toString()).toBe('still here');
    } finally {
      await reader.close();
      await gearmand.stop();
    }
  });
});
