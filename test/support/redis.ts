import { spawn } from 'node:child_process';
import { findExecutable, freePort, waitForPort } from './gearmand.js';

export interface RunningRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts Debian's redis-server on a free loopback port, persistence off; `describeWithPeers(['redis-server'], …)` guards its use. */
export async function startRedis(): Promise<RunningRedis> {
  const binary = findExecutable('redis-server');
  if (!binary) throw new Error('redis-server is not installed');
  const port = await freePort();
  const child = spawn(binary, ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`redis-server did not start: ${(error as Error).message}\n${stderr}`, { cause: error });
  }
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}
