import { existsSync, readFileSync } from 'node:fs';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { adminCommand } from '../client/support/admin.js';
import { quietLogger } from '../client/support/harness.js';
import {
  requireBuild,
  startCliServer,
  startLoggingWorker,
  waitUntil,
  type RunningCliServer,
  type RunningProcess,
} from '../support/processes.js';
import { tempQueueDir } from '../support/queue-files.js';

const JOBS = 6000;
const KILLS = 20;

/** Jobs the server holds for `fn` (admin `status`: total, running). */
async function held(port: number, fn: string): Promise<{ total: number; running: number }> {
  const line = (await adminCommand(port, 'status')).find((row) => row.split('\t')[0] === fn);
  return line ? { total: Number(line.split('\t')[1]), running: Number(line.split('\t')[2]) } : { total: 0, running: 0 };
}

function logLines(file: string): string[] {
  return existsSync(file) ? readFileSync(file, 'latin1').split('\n').slice(0, -1) : [];
}

/**
 * A job whose worker dies mid-job is handed to another worker (the standalone server, real worker
 * processes, real SIGKILL); `--job-retries N` fails it after N such losses.
 */
describe('worker processes SIGKILLed mid-job', () => {
  const files = tempQueueDir('worker-kills-');
  let server: RunningCliServer | undefined;
  const workers: RunningProcess[] = [];

  beforeAll(() => requireBuild());
  afterEach(async () => {
    for (const worker of workers.splice(0)) await worker.kill();
    await server?.kill();
    server = undefined;
  });
  afterAll(() => files.remove());

  test(`${KILLS} kills in a row under load lose no job; duplicates are counted`, async () => {
    server = await startCliServer([]);
    const client = new GearmanClient({ servers: [server.address], logger: quietLogger });
    await Promise.all(Array.from({ length: JOBS }, (_, i) => client.submitBackgroundJob('kill.work', String(i))));
    await client.close();

    // Each worker logs to its own file. A slow worker runs throughout, so the load goes on through every kill.
    const logs: string[] = [];
    const worker = (holdMs: number, concurrency = 4) => {
      const log = files.file(`runs-${logs.length}.log`);
      logs.push(log);
      const started = startLoggingWorker([server!.address], 'kill.work', log, holdMs, concurrency);
      workers.push(started);
      return { started, log };
    };
    worker(20);
    let killedMidJob = 0;
    for (let kill = 0; kill < KILLS; kill++) {
      const victim = worker(5);
      await waitUntil(() => logLines(victim.log).length >= 10, `worker ${kill} at work`);
      if ((await held(server.port, 'kill.work')).running > 0) killedMidJob++;
      await victim.started.kill();
    }
    worker(0, 16);
    await waitUntil(async () => (await held(server!.port, 'kill.work')).total === 0, 'every job done', 120_000);

    const runs = logs.flatMap(logLines);
    const counts = new Map<string, number>();
    for (const line of runs) counts.set(line, (counts.get(line) ?? 0) + 1);
    const missing = Array.from({ length: JOBS }, (_, i) => String(i)).filter((i) => !counts.has(i));
    const twice = [...counts.values()].filter((count) => count > 1).length;
    console.log(
      `worker kills: ${KILLS} SIGKILLs (${killedMidJob} with jobs running), ${JOBS} jobs, ${runs.length} runs, ${twice} jobs ran more than once`,
    );
    expect(missing).toEqual([]);
    expect(counts.size).toBe(JOBS);
    // Only a job a killed worker held can run twice: at most its concurrency (4) per kill.
    expect(runs.length - JOBS).toBeLessThanOrEqual(KILLS * 4);
    expect(killedMidJob).toBeGreaterThan(0);
  }, 180_000);

  test('--job-retries 3: a job whose worker is killed three times fails, and the server drops it', async () => {
    server = await startCliServer(['--job-retries', '3']);
    const log = files.file('stuck.log');
    const client = new GearmanClient({ servers: [server.address], logger: quietLogger });
    await client.submitBackgroundJob('kill.stuck', 'hangs');
    await client.close();
    for (let kill = 1; kill <= 3; kill++) {
      // Holds the job for far longer than the test: only the kill ends its run.
      const worker = startLoggingWorker([server.address], 'kill.stuck', log, 600_000, 1);
      workers.push(worker);
      await waitUntil(() => logLines(log).length === kill, `run ${kill}`);
      expect(await held(server.port, 'kill.stuck')).toEqual({ total: 1, running: 1 });
      await worker.kill();
    }
    await waitUntil(async () => (await held(server!.port, 'kill.stuck')).total === 0, 'the job dropped after three losses');
    expect(logLines(log)).toEqual(['hangs', 'hangs', 'hangs']);
  }, 60_000);
});
