import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { adminCommand } from '../client/support/admin.js';
import { quietLogger } from '../client/support/harness.js';
import { freePort } from '../support/gearmand.js';
import {
  requireBuild,
  startCliServer,
  startLoggingWorker,
  startProcess,
  waitUntil,
  CLI_MAIN,
  type RunningCliServer,
  type RunningProcess,
} from '../support/processes.js';
import { tempQueueDir } from '../support/queue-files.js';

const JOBS = 10_000;

async function held(port: number, fn: string): Promise<{ total: number; running: number }> {
  const line = (await adminCommand(port, 'status')).find((row) => row.split('\t')[0] === fn);
  return line ? { total: Number(line.split('\t')[1]), running: Number(line.split('\t')[2]) } : { total: 0, running: 0 };
}
const lines = (file: string) => (existsSync(file) ? readFileSync(file, 'latin1').split('\n').slice(0, -1) : []);

/**
 * The standalone server with `-q libsqlite3`, SIGKILLed as a crash would kill it, restarted on the
 * same file: no background job that got its JOB_CREATED is lost.
 */
describe('the standalone server with the sqlite queue, SIGKILLed', () => {
  const files = tempQueueDir('durable-kills-');
  const running: RunningProcess[] = [];
  beforeAll(() => requireBuild());
  afterEach(async () => {
    for (const process of running.splice(0).reverse()) await process.kill();
  });
  afterAll(() => files.remove());

  async function server(file: string, port: number): Promise<RunningCliServer> {
    const started = await startCliServer(['--port', String(port), '-q', 'libsqlite3', '--libsqlite3-db', file]);
    running.push(started);
    return started;
  }

  test(`${JOBS} jobs, killed while workers drain: every job completes, only jobs started just before the kill run twice`, async () => {
    const file = files.file('drain.db');
    const port = await freePort();
    let broker = await server(file, port);
    const client = new GearmanClient({ servers: [broker.address], logger: quietLogger });
    await Promise.all(Array.from({ length: JOBS }, (_, i) => client.submitBackgroundJob('durable.work', String(i))));
    await client.close();

    // Two workers (4 jobs in flight each) drain; they reconnect to the restarted server by themselves.
    const logs = [files.file('runs-a.log'), files.file('runs-b.log')];
    for (const log of logs) running.push(startLoggingWorker([broker.address], 'durable.work', log, 1, 4));
    await waitUntil(() => logs.flatMap(lines).length >= JOBS / 3, 'a third of the jobs done');
    await broker.kill();
    const startedBeforeKill = logs.map((log) => lines(log).length);

    broker = await server(file, port);
    await waitUntil(async () => (await held(broker.port, 'durable.work')).total === 0, 'the queue drained after the restart', 120_000);

    const runs = logs.flatMap(lines);
    const counts = new Map<string, number>();
    for (const line of runs) counts.set(line, (counts.get(line) ?? 0) + 1);
    const missing = Array.from({ length: JOBS }, (_, i) => String(i)).filter((i) => !counts.has(i));
    const twice = [...counts].filter(([, count]) => count > 1).map(([job]) => job);
    // Where each worker's first run of a duplicated job sits in its log, counted back from the kill.
    const distanceFromKill = twice.map((job) =>
      Math.min(
        ...logs.map((log, i) => {
          const at = lines(log).indexOf(job);
          return at === -1 || at >= startedBeforeKill[i] ? Infinity : startedBeforeKill[i] - at;
        }),
      ),
    );
    console.log(
      `sqlite queue, server SIGKILLed mid-drain: ${JOBS} jobs, ${counts.size} completed, ${runs.length} runs, ${twice.length} ran twice (started at most ${Math.max(0, ...distanceFromKill)} runs before the kill in their worker's log)`,
    );
    expect(missing).toEqual([]);
    expect(counts.size).toBe(JOBS);
    // Only jobs the workers held (4 each) or had just finished when the server died: the store
    // commits deletes in groups, of up to 20 ms or 1,024 jobs, so at most those ended unrecorded.
    expect(twice.length).toBeLessThanOrEqual(1024 + 8);
    for (const distance of distanceFromKill) expect(distance).toBeLessThanOrEqual(1024 + 16);
  }, 240_000);

  test('a SIGKILL between submits and their JOB_CREATED: every submitter that got a handle finds its job after the restart', async () => {
    const file = files.file('submits.db');
    const port = await freePort();
    let broker = await server(file, port);
    const client = new GearmanClient({ servers: [broker.address], logger: quietLogger, reconnect: { maxAttempts: 0 } });
    const created = new Set<string>();
    let refused = 0;
    let submitted = 0;
    const pending: Promise<void>[] = [];
    // Keeps up to 500 submits in flight, so that many wait for their commit when the kill comes.
    const submitMore = (): Promise<void> => {
      const unique = `s-${submitted++}`;
      return client.submitBackground('durable.submits', unique, { unique }).then(
        () => {
          created.add(unique);
          if (created.size < 30_000) return submitMore();
        },
        () => {
          refused++;
        },
      );
    };
    for (let i = 0; i < 500; i++) pending.push(submitMore());
    await waitUntil(() => created.size >= 3000, 'submits under way');
    await broker.kill();
    await Promise.all(pending);
    await client.close();

    broker = await server(file, port);
    const restored = new Set<string>();
    const log = files.file('submits.log');
    running.push(startLoggingWorker([broker.address], 'durable.submits', log, 0, 16));
    await waitUntil(async () => (await held(broker.port, 'durable.submits')).total === 0, 'the restored queue drained', 120_000);
    for (const line of lines(log)) restored.add(line);
    const lost = [...created].filter((unique) => !restored.has(unique));
    console.log(
      `sqlite queue, server SIGKILLed mid-submit: ${submitted} submits, ${created.size} got JOB_CREATED, ${refused} saw an error, ${restored.size} restored (${restored.size - created.size} of them stored but unconfirmed)`,
    );
    expect(refused).toBeGreaterThan(0);
    expect(lost).toEqual([]);
  }, 240_000);

  test('a corrupt queue file or one another server holds: the server refuses to start, naming the file', async () => {
    const corrupt = files.file('corrupt.db');
    writeFileSync(corrupt, 'definitely not SQLite '.repeat(300));
    const refused = startProcess([CLI_MAIN, 'server', '--port', '0', '-q', 'libsqlite3', `--libsqlite3-db=${corrupt}`]);
    running.push(refused);
    expect((await refused.exited).code).toBe(1);
    expect(refused.stderr()).toContain(`Job queue file ${corrupt} cannot be opened: it is not a usable SQLite database`);
    expect(refused.stdout()).toBe('');

    const shared = files.file('shared.db');
    await server(shared, await freePort());
    const second = startProcess([CLI_MAIN, 'server', '--port', '0', '-q', 'libsqlite3', '--libsqlite3-db', shared]);
    running.push(second);
    expect((await second.exited).code).toBe(1);
    expect(second.stderr()).toContain(`Job queue file ${shared} cannot be opened: it is locked by another process`);
    expect(second.stdout()).toBe('');
  }, 60_000);
});
