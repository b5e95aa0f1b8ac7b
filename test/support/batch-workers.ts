import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

/** A worker process of test/support/fixtures/batch-worker.cjs, and the items it started. */
export interface BatchWorkerProcess {
  readonly process: ChildProcess;
  /** The `n` of every item it started, in order. */
  readonly ran: number[];
  /** SIGKILL, as a crash would. */
  kill(): Promise<void>;
  /** SIGTERM, then waits for the exit. */
  stop(): Promise<void>;
}

/** Starts `count` batch worker processes on the job servers (recording into Redis when a URL is given); resolves once all listen. */
export async function startBatchWorkers(
  count: number,
  servers: string[],
  redisUrl?: string,
  options: { concurrency?: number } = {},
): Promise<BatchWorkerProcess[]> {
  const script = join(process.cwd(), 'test', 'support', 'fixtures', 'batch-worker.cjs');
  const started = Array.from({ length: count }, () => {
    const child = spawn(process.execPath, [script, servers.join(','), ...(redisUrl ? [redisUrl] : [])], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...(options.concurrency ? { BATCH_WORKER_CONCURRENCY: String(options.concurrency) } : {}) },
    });
    const ran: number[] = [];
    let stderr = '';
    child.stderr!.on('data', (chunk) => (stderr += chunk));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line === 'ready') resolve();
        else if (line.startsWith('ran ')) ran.push(Number(line.slice(4)));
      });
      void exited.then(() => reject(new Error(`a batch worker exited before it was ready: ${stderr}`)));
    });
    const end = async (signal: NodeJS.Signals) => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      await exited;
    };
    const worker: BatchWorkerProcess = { process: child, ran, kill: () => end('SIGKILL'), stop: () => end('SIGTERM') };
    return { worker, ready };
  });
  try {
    await Promise.all(started.map(({ ready }) => ready));
  } catch (error) {
    await Promise.all(started.map(({ worker }) => worker.kill()));
    throw error;
  }
  return started.map(({ worker }) => worker);
}

/** Items for the fixture's `batch.square`: `{ n }` for n from 0, with `extra(n)` (sleepMs, fail) merged in. */
export function batchItems(
  count: number,
  extra: (n: number) => Record<string, unknown> = () => ({}),
): ({ n: number } & Record<string, unknown>)[] {
  return Array.from({ length: count }, (_, n) => ({ n, ...extra(n) }));
}

/** What the fixture's `batch.sum` gathers from `count` squared items: 0² + 1² + … + (count - 1)². */
export function sumOfSquares(count: number): number {
  return Array.from({ length: count }, (_, n) => n * n).reduce((a, b) => a + b, 0);
}

/** Waits until what `ran` lists stops growing (the items already running have ended). */
export async function settle(ran: () => unknown[], stepMs = 300): Promise<void> {
  let last = -1;
  while (ran().length !== last) {
    last = ran().length;
    await new Promise((resolve) => setTimeout(resolve, stepMs));
  }
}
