import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { adminCommand } from '../client/support/admin.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

const PROCESSES = 4;
/** Four times what the four processes run at once (64 each by default): every process works through several waves. */
const JOBS = 1024;

/** Starts a default-configured worker app in a process of its own; resolves once it printed "ready". */
function startWorkerProcess(server: string, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, [join(process.cwd(), 'test', 'nest', 'fixtures', 'sharing-nest-worker.cjs'), server, name], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let stderr = '';
    const timer = setTimeout(() => reject(new Error(`${name} did not start within 15 s: ${stderr}`)), 15_000);
    child.stderr!.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.stdout!.on('data', (chunk: Buffer) => {
      if (!chunk.toString().includes('ready')) return;
      clearTimeout(timer);
      resolve(child);
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`${name} exited with ${code}: ${stderr}`));
    });
  });
}

describeOnJobServers('Worker processes with slow handlers', (kind) => {
  let jobServer: JobServerUnderTest;
  const children: ChildProcess[] = [];

  beforeAll(() => {
    if (!existsSync(join(process.cwd(), 'dist', 'cjs', 'index.js'))) throw new Error('dist/cjs is missing: run `npm run build` first');
  });
  beforeEach(async () => {
    jobServer = await startJobServer(kind);
  });
  afterEach(async () => {
    await Promise.all(
      children.splice(0).map((child) => {
        if (child.exitCode !== null || child.signalCode !== null) return undefined;
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGKILL');
        return exited;
      }),
    );
    await jobServer.stop();
  });

  test(`${PROCESSES} default-configured processes share a burst of ${JOBS} jobs evenly: none hoards what another could run`, async () => {
    const names = Array.from({ length: PROCESSES }, (_, i) => `worker-${i + 1}`);
    children.push(...(await Promise.all(names.map((name) => startWorkerProcess(jobServer.servers[0], name)))));
    const port = Number(jobServer.servers[0].split(':')[1]);
    await eventually(
      async () => (await adminCommand(port, 'workers')).filter((line) => line.endsWith(': share.work')).length === PROCESSES,
      'every worker to register',
    );

    const client = new GearmanClient({ servers: jobServer.servers });
    try {
      const results = await Promise.all(Array.from({ length: JOBS }, () => client.submitJob('share.work', '').result));
      const shares = new Map(names.map((name) => [name, 0]));
      for (const result of results) {
        const name = JSON.parse(result.toString()) as string;
        shares.set(name, shares.get(name)! + 1);
      }
      console.log(
        `${kind}: ${JOBS} jobs over ${PROCESSES} processes: ${[...shares].map(([name, count]) => `${name} ${count}`).join(', ')}`,
      );
      expect([...shares.values()].reduce((a, b) => a + b)).toBe(JOBS);
      // An even share is 256; a process that hoarded would leave another far below it.
      for (const count of shares.values()) expect(count).toBeGreaterThanOrEqual(JOBS / PROCESSES / 2);
    } finally {
      await client.close();
    }
  }, 60_000);
});
