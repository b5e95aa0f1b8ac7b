import { spawn } from 'node:child_process';
import { GearmanJobServer } from '../../../lib/job-server/gearman-job-server.js';
import { findExecutable, freePort, waitForPort } from '../../support/gearmand.js';

/** A job server running for a test, on a loopback port that survives restarts. */
export interface RunningJobServer {
  readonly port: number;
  /** `127.0.0.1:<port>`. */
  readonly address: string;
  /** Stops it; the port stays reserved for start(). */
  stop(): Promise<void>;
  /** Starts it again on the same port. */
  start(): Promise<void>;
}

export interface JobServerKind {
  readonly name: string;
  /** Peers the kind needs, for describeWithPeers. */
  readonly peers: string[];
  launch(): Promise<RunningJobServer>;
}

async function runGearmand(port: number): Promise<() => Promise<void>> {
  const binary = findExecutable('gearmand');
  if (!binary) throw new Error('gearmand is not installed');
  const child = spawn(binary, ['--listen', '127.0.0.1', '--port', String(port), '--log-file', 'none', '--threads', '0'], {
    stdio: ['ignore', 'ignore', 'ignore'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  };
}

/** Debian's gearmand, killed hard on stop() as a crash would. */
export const gearmandKind: JobServerKind = {
  name: 'gearmand',
  peers: ['gearmand'],
  async launch() {
    const port = await freePort();
    let stopCurrent: (() => Promise<void>) | undefined = await runGearmand(port);
    return {
      port,
      address: `127.0.0.1:${port}`,
      async stop() {
        const stop = stopCurrent;
        stopCurrent = undefined;
        await stop?.();
      },
      async start() {
        stopCurrent ??= await runGearmand(port);
      },
    };
  },
};

/**
 * Our own GearmanJobServer, in this process: the clients and workers of the test reach it over the
 * in-memory channel (`inProcess`), or over TCP as peers in other processes do.
 */
function ourServer(name: string, inProcess: boolean): JobServerKind {
  return {
    name,
    peers: [],
    async launch() {
      // Tests change queues with admin commands from this machine, as gearmand lets them.
      const options = { logger: false, inProcess, adminCommands: 'loopback' } as const;
      let server: GearmanJobServer | undefined = new GearmanJobServer({ ...options, port: 0 });
      await server.listen();
      const port = server.address().port;
      return {
        port,
        address: `127.0.0.1:${port}`,
        async stop() {
          const current = server;
          server = undefined;
          await current?.close();
        },
        async start() {
          if (server) return;
          server = new GearmanJobServer({ ...options, port });
          await server.listen();
        },
      };
    },
  };
}

export const ourServerKind = ourServer('GearmanJobServer', true);
export const ourServerOverTcpKind = ourServer('GearmanJobServer over TCP', false);

export const JOB_SERVER_KINDS: JobServerKind[] = [gearmandKind, ourServerKind, ourServerOverTcpKind];
