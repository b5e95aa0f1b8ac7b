import { ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/** The built CLI and library: `npm test` builds dist/ first, and these tests run them as users do. */
export const CLI_MAIN = join(process.cwd(), 'dist/cjs/cli/main.js');
export const BUILT_LIBRARY = join(process.cwd(), 'dist/cjs/index.js');

export function requireBuild(): void {
  for (const file of [CLI_MAIN, BUILT_LIBRARY]) if (!existsSync(file)) throw new Error(`${file} is missing: run npm run build first`);
}

/** A child process with its output collected, ended by kill() or stop(). */
export interface RunningProcess {
  readonly child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  stdout(): string;
  stderr(): string;
  /** SIGKILL (a crash), then waits for the exit. */
  kill(): Promise<void>;
}

export function startProcess(args: string[], options: { env?: NodeJS.ProcessEnv } = {}): RunningProcess {
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...options.env } });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once('exit', (code, signal) => resolve({ code, signal })),
  );
  return {
    child,
    exited,
    stdout: () => stdout,
    stderr: () => stderr,
    async kill() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

/** The standalone server (`nestjs-gearman server ...`), once it says where it listens. */
export interface RunningCliServer extends RunningProcess {
  readonly port: number;
  readonly address: string;
}

export async function startCliServer(args: string[], timeoutMs = 15_000): Promise<RunningCliServer> {
  const running = startProcess([CLI_MAIN, 'server', '--port', '0', ...args]);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const match = /^listening on 127\.0\.0\.1:(\d+)\n/.exec(running.stdout());
    if (match) {
      const port = Number(match[1]);
      return { ...running, port, address: `127.0.0.1:${port}` };
    }
    if (running.child.exitCode !== null || Date.now() > deadline) {
      await running.kill();
      throw new Error(`the server did not start: ${running.stderr()}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * A worker process for background jobs of `functionName`: each job appends its payload and a newline
 * to `logFile` (O_APPEND: one whole line a write, whoever writes), waits `holdMs`, then completes.
 * A kill between the append and WORK_COMPLETE makes the job run again: the log then has it twice.
 */
export function startLoggingWorker(servers: string[], functionName: string, logFile: string, holdMs = 2, concurrency = 4): RunningProcess {
  const script = `
    const { appendFileSync } = require('node:fs');
    const { GearmanWorker } = require(${JSON.stringify(BUILT_LIBRARY)});
    const [servers, fn, log, hold, concurrency] = process.argv.slice(1);
    const quiet = { log() {}, warn() {}, error() {}, debug() {} };
    const worker = new GearmanWorker({ servers: servers.split(','), concurrency: Number(concurrency), logger: quiet });
    worker.register(fn, async (job) => {
      appendFileSync(log, job.data.toString('latin1') + '\\n');
      if (Number(hold) > 0) await new Promise((resolve) => setTimeout(resolve, Number(hold)));
    });
    worker.start().then(() => process.stdout.write('started\\n'));
  `;
  return startProcess(['-e', script, servers.join(','), functionName, logFile, String(holdMs), String(concurrency)]);
}

export async function waitUntil(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
