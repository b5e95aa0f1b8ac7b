import { ChildProcess, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

// `npm test` builds dist/ first: the server runs as users run it, in a process of its own whose memory is its own.
export const CLI = join(process.cwd(), 'dist/cjs/cli/main.js');

/** The CLI's job server in a child process. */
export interface ServerProcess {
  readonly pid: number;
  readonly port: number;
  /** Resident memory now, in bytes (VmRSS). */
  rss(): number;
  /** Whether it is still running. */
  alive(): boolean;
  /** What it wrote to stderr. */
  stderr(): string;
  /** SIGTERM, then SIGKILL after 5 s; resolves once it exited. */
  stop(): Promise<void>;
}

export function rssOf(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = /^VmRSS:\s+(\d+) kB$/m.exec(status);
  if (!kib) throw new Error(`no VmRSS for process ${pid}`);
  return Number(kib[1]) * 1024;
}

export async function startServerProcess(args: string[], nodeArgs: string[] = []): Promise<ServerProcess> {
  if (!existsSync(CLI)) throw new Error(`${CLI} is missing: run npm run build first`);
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, CLI, 'server', '-p', '0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout!.on('data', (chunk) => (stdout += chunk));
  child.stderr!.on('data', (chunk) => (stderr = (stderr + chunk).slice(-64 * 1024)));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const deadline = Date.now() + 10_000;
  let port: number | undefined;
  while (port === undefined) {
    const match = /^listening on [^\n]*:(\d+)/.exec(stdout);
    if (match) port = Number(match[1]);
    else if (child.exitCode !== null || Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`the server did not start: ${stderr}`);
    } else await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return {
    pid: child.pid!,
    port,
    rss: () => rssOf(child.pid!),
    alive: () => child.exitCode === null && child.signalCode === null,
    stderr: () => stderr,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

export const MiB = 1024 * 1024;
export const mib = (bytes: number) => `${(bytes / MiB).toFixed(1)} MiB`;
