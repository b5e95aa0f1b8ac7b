import { startDaemon } from './gearmand.js';

export interface RunningRedis {
  readonly port: number;
  /** `redis://127.0.0.1:<port>`. */
  readonly url: string;
  stop(): Promise<void>;
}

/** Starts Debian's redis-server on a free loopback port, persistence off; `describeWithPeers(['redis-server'], …)` guards its use. */
export async function startRedis(): Promise<RunningRedis> {
  const daemon = await startDaemon('redis-server', (port) => [
    '--port',
    String(port),
    '--bind',
    '127.0.0.1',
    '--save',
    '',
    '--appendonly',
    'no',
  ]);
  return { port: daemon.port, url: `redis://127.0.0.1:${daemon.port}`, stop: () => daemon.stop() };
}
