import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import type { StoredJob } from '../../lib/job-server/queue-store.js';
import { SqliteQueueStore } from '../../lib/job-server/sqlite-queue-store.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { adminCommand } from '../client/support/admin.js';
import { quietLogger } from '../client/support/harness.js';
import { waitFor } from '../client/support/wait.js';
import { describeWithPeers, startGearmand, type RunningGearmand } from '../support/gearmand.js';
import { tempQueueDir } from '../support/queue-files.js';

type Database = ConstructorParameters<typeof SqliteQueueStore>[0];
const BetterSqlite = createRequire(`${process.cwd()}/package.json`)('better-sqlite3') as Database;
const BUILT_STORE = join(process.cwd(), 'dist/cjs/job-server/sqlite-queue-store.js');

/**
 * Our SQLite queue and gearmand 1.1.20's `-q libsqlite3` share one file format: a queue written by
 * either server is taken over by the other, after a SIGKILL of the writer.
 */
describeWithPeers(['gearmand'], 'the SQLite queue file, shared with gearmand -q libsqlite3', () => {
  const files = tempQueueDir();
  let gearmand: RunningGearmand | undefined;
  afterEach(async () => {
    await gearmand?.stop();
    gearmand = undefined;
  });
  afterAll(() => files.remove());

  test('a queue gearmand wrote (then SIGKILLed) is replayed by our store with every field, in submission order', async () => {
    const file = files.file('from-gearmand.db');
    gearmand = await startGearmand(['-q', 'libsqlite3', `--libsqlite3-db=${file}`]);
    const client = new GearmanClient({ servers: [`127.0.0.1:${gearmand.port}`], logger: quietLogger });
    const runAt = Math.floor(Date.now() / 1000) + 3600;
    await client.submitBackgroundJob('report', 'low one', { unique: 'r-low', priority: 'low' });
    await client.submitBackgroundJob('report', Buffer.from([0, 1, 0xfe, 0xff]), { unique: 'r-binary' });
    await client.submitBackgroundJob('mail', 'urgent', { unique: 'm-high', priority: 'high' });
    await client.submitBackgroundJob('mail', 'later', { unique: 'm-later', runAt });
    const generated = await client.submitBackground('mail', 'no unique given');
    await client.close();
    gearmand.process.kill('SIGKILL');
    await gearmand.stop();

    const store = new SqliteQueueStore(BetterSqlite, { type: 'sqlite', file });
    const jobs: StoredJob[] = [];
    store.replay((job) => jobs.push(job));
    store.close();
    expect(jobs).toEqual([
      { unique: 'r-low', functionName: 'report', priority: 2, data: 'low one' },
      { unique: 'r-binary', functionName: 'report', priority: 1, data: '\0\x01\xfe\xff' },
      { unique: 'm-high', functionName: 'mail', priority: 0, data: 'urgent' },
      { unique: 'm-later', functionName: 'mail', priority: 1, data: 'later', runAt: runAt * 1000 },
      { unique: generated.unique, functionName: 'mail', priority: 1, data: 'no unique given' },
    ]);
  });

  test('a queue our store wrote, in a process then SIGKILLed, is replayed by gearmand in priority order', async () => {
    if (!existsSync(BUILT_STORE)) throw new Error('dist/cjs is missing: run `npm run build` first');
    const file = files.file('from-us.db');
    // A separate process writes the jobs, waits for the commit, and dies without closing the file.
    const writer = `
      const Database = require('better-sqlite3');
      const { SqliteQueueStore } = require(${JSON.stringify(BUILT_STORE)});
      const store = new SqliteQueueStore(Database, { type: 'sqlite', file: process.argv[1] });
      const jobs = [
        { unique: 'n-1', functionName: 'work', priority: 1, data: 'normal 1' },
        { unique: 'l-1', functionName: 'work', priority: 2, data: 'low 1' },
        { unique: 'h-1', functionName: 'work', priority: 0, data: 'high 1' },
        { unique: 'gone', functionName: 'work', priority: 0, data: 'completed' },
        { unique: 'n-2', functionName: 'work', priority: 1, data: 'normal 2' },
        { unique: 'h-2', functionName: 'work', priority: 0, data: 'high \\u00ff' },
      ];
      let left = jobs.length;
      for (const job of jobs) store.add(job, (error) => {
        if (error) throw error;
        if (--left === 0) {
          store.remove('gone', 'work', () => process.kill(process.pid, 'SIGKILL'));
        }
      });
    `;
    const child = spawn(process.execPath, ['-e', writer, file], { cwd: process.cwd(), stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk) => (stderr += chunk));
    const signal = await new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, sig) => resolve(sig)));
    expect({ signal, stderr }).toEqual({ signal: 'SIGKILL', stderr: '' });

    gearmand = await startGearmand(['-q', 'libsqlite3', `--libsqlite3-db=${file}`]);
    const status = await adminCommand(gearmand.port, 'status');
    expect(status.find((line) => line.startsWith('work\t'))).toBe('work\t5\t0\t0');
    const seen: string[] = [];
    const worker = new GearmanWorker({ servers: [`127.0.0.1:${gearmand.port}`], logger: quietLogger });
    worker.register('work', (job) => {
      seen.push(`${job.unique}:${job.data.toString('latin1')}`);
    });
    await worker.start();
    try {
      await waitFor(() => seen.length === 5, 'five replayed jobs', 10_000);
    } finally {
      await worker.stop();
    }
    expect(seen).toEqual(['h-1:high 1', 'h-2:high \xff', 'n-1:normal 1', 'n-2:normal 2', 'l-1:low 1']);
  });
});
