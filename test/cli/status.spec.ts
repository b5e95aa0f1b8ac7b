import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { useJobServer } from '../client/support/harness.js';
import { JOB_SERVER_KINDS } from '../client/support/job-servers.js';
import { waitFor } from '../client/support/wait.js';
import { describeWithPeers, freePort } from '../support/gearmand.js';

// `npm test` builds dist/ first; the CLI is tested as users run it.
const MAIN = join(process.cwd(), 'dist/cjs/cli/main.js');

interface Finished {
  code: number | null;
  stdout: string;
  stderr: string;
}

function launch(args: string[]): { child: ChildProcess; finished: Promise<Finished>; output: () => string } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const finished = new Promise<Finished>((resolve) => child.once('exit', (code) => resolve({ code, stdout, stderr })));
  return { child, finished, output: () => stdout };
}

/** The rows of the functions table: name → [queued, running, workers, high, normal, low]. */
function functionRows(screen: string): Map<string, string[]> {
  const lines = screen.split('\n');
  const start = lines.findIndex((line) => line.startsWith('FUNCTION '));
  const rows = new Map<string, string[]>();
  if (start === -1) return rows;
  for (const line of lines.slice(start + 1)) {
    if (line.trim() === '') break;
    const [name, ...counts] = line.split(/\s+/);
    rows.set(name, counts);
  }
  return rows;
}

beforeAll(() => {
  if (!existsSync(MAIN)) throw new Error(`${MAIN} is missing: run npm run build first`);
});

for (const kind of JOB_SERVER_KINDS) {
  describeWithPeers(kind.peers, `nestjs-gearman status on ${kind.name}`, () => {
    const t = useJobServer(kind);
    const running: ChildProcess[] = [];
    afterEach(() => {
      for (const child of running.splice(0)) if (child.exitCode === null) child.kill('SIGKILL');
    });

    test('prints functions with queued, running, workers and priorities, then the workers', async () => {
      const worker = t.worker({ clientId: 'thumbnailer' });
      worker.register('thumbnail', () => 'ok');
      await worker.start();
      const client = t.client();
      await client.submitBackgroundJob('report', 'a', { priority: 'high' });
      await client.submitBackgroundJob('report', 'b', { priority: 'low' });
      await client.submitBackgroundJob('report', 'c');

      const result = await launch(['status', '-h', '127.0.0.1', '-p', String(t.server.port)]).finished;
      expect(result.code).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`^Job server 127\\.0\\.0\\.1:${t.server.port}: up, version \\S+, echo [\\d.]+ ms\\n`));
      const rows = functionRows(result.stdout);
      expect(rows.get('report')).toEqual(['3', '0', '0', '1', '1', '1']);
      expect(rows.get('thumbnail')).toEqual(['0', '0', '1', '0', '0', '0']);
      expect(result.stdout).toContain('2 functions, 3 queued, 0 running');
      // A worker in the server's own process reaches it over the in-memory channel.
      expect(result.stdout).toMatch(/\n(127\.0\.0\.1|in-process)\s+thumbnailer\s+thumbnail\n/);
    });

    test('lists running jobs with their progress', async () => {
      const worker = t.worker();
      let release!: () => void;
      const released = new Promise<void>((resolve) => (release = resolve));
      let started = false;
      worker.register('report.build', async (job) => {
        job.sendStatus(5, 10);
        started = true;
        await released;
        return 'done';
      });
      await worker.start();
      const job = t.client().submitJob('report.build', 'x');
      const handle = await job.created;
      await waitFor(() => started, 'the job to start');
      await waitFor(async () => (await t.client().getStatus(handle)).numerator === 5, 'the progress to reach the server');
      const result = await launch(['status', '-p', String(t.server.port)]).finished;
      expect(result.stdout).toMatch(new RegExp(`RUNNING JOB\\s+PROGRESS\\n${handle}\\s+\\[#{10}\\.{10}\\] 5/10\\n`));
      release();
      await job.result;
    });

    test('--watch redraws with the new counts until SIGINT, then exits 0', async () => {
      const { child, finished, output } = launch(['status', '-p', String(t.server.port), '--watch', '--interval', '0.1']);
      running.push(child);
      const lastScreen = () => output().split('\x1b[H\x1b[2J').at(-1) ?? '';
      await waitFor(() => lastScreen().includes('No functions.'), 'a first screen without functions');
      await t.client().submitBackgroundJob('watched', 'x');
      await waitFor(() => functionRows(lastScreen()).get('watched')?.[0] === '1', 'a screen with one queued watched job');
      await t.client().submitBackgroundJob('watched', 'y');
      await waitFor(() => functionRows(lastScreen()).get('watched')?.[0] === '2', 'a screen with two queued watched jobs');
      child.kill('SIGINT');
      expect((await finished).code).toBe(0);
    });
  });
}

describe('nestjs-gearman status without a server', () => {
  test('an unreachable server exits 1 and says why', async () => {
    const port = await freePort();
    const result = await launch(['status', '-p', String(port), '--timeout', '2000']).finished;
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(new RegExp(`^Job server 127\\.0\\.0\\.1:${port}: unreachable \\(Cannot connect`));
  });

  test('bad flags exit 2 with the status usage; --help exits 0', async () => {
    const bad = await launch(['status', '-p', 'many']).finished;
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--port takes 1 to 65535, got "many"');
    expect(bad.stderr).toContain('Usage: nestjs-gearman status');
    const help = await launch(['status', '--help']).finished;
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('--watch');
  });
});
