import { ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';

/**
 * Real peers from Debian (gearmand, the gearman CLI, Perl's Gearman::Client).
 * Without them a test skips with a printed reason; under CI (CI set) it fails instead,
 * so a fresh machine passes and CI proves interop.
 */
export function findExecutable(name: string): string | undefined {
  for (const dir of ['/usr/sbin', '/usr/bin', '/usr/local/sbin', '/usr/local/bin', ...(process.env.PATH ?? '').split(':')]) {
    const candidate = `${dir}/${name}`;
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

export function hasPerlGearman(): boolean {
  try {
    execFileSync('perl', ['-MGearman::Client', '-MGearman::Worker', '-e', '1'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The Debian package that brings each peer. */
const DEBIAN_PACKAGES: Record<string, string> = {
  gearmand: 'gearman-job-server',
  gearman: 'gearman-tools',
  gearadmin: 'gearman-tools',
  'perl-gearman': 'libgearman-client-perl',
  php: 'php-cli php-gearman',
  'redis-server': 'redis-server',
};

/**
 * `describe` that runs only when the named peers exist. Missing peers: skipped with a printed
 * reason, or a failing test under CI.
 */
export function describeWithPeers(peers: string[], title: string, body: () => void): void {
  const missing = peers.filter((peer) => (peer === 'perl-gearman' ? !hasPerlGearman() : !findExecutable(peer)));
  if (missing.length === 0) {
    describe(title, body);
    return;
  }
  const packages = [...new Set(missing.map((peer) => DEBIAN_PACKAGES[peer] ?? peer))];
  const reason = `needs ${missing.join(', ')} (apt-get install ${packages.join(' ')}; .ci/run installs every Debian package the tests use)`;
  if (process.env.CI) {
    describe(title, () => {
      test(`peers are installed: ${reason}`, () => {
        throw new Error(`CI must prove interop, but this machine lacks ${missing.join(', ')}`);
      });
    });
  } else {
    console.warn(`skipping "${title}": ${reason}`);
    describe.skip(title, body);
  }
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export function waitForPort(port: number, host = '127.0.0.1', timeoutMs = 10000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  return new Promise((resolve, reject) => {
    const attempt = () => {
      const socket = connect(port, host);
      socket.once('connect', () => {
        socket.destroy();
        resolve();
      });
      socket.once('error', () => {
        socket.destroy();
        if (Date.now() > deadline) reject(new Error(`nothing listens on ${host}:${port} after ${timeoutMs} ms`));
        else setTimeout(attempt, 25);
      });
    };
    attempt();
  });
}

export interface RunningGearmand {
  readonly port: number;
  readonly host: string;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** A server program of this machine on a free loopback port, until stop() (SIGTERM, then the exit). */
export interface RunningDaemon {
  readonly port: number;
  readonly process: ChildProcess;
  stop(): Promise<void>;
}

/** Starts `program` with the arguments `args(port)` gives for a free port, and waits until that port accepts. */
export async function startDaemon(program: string, args: (port: number) => string[]): Promise<RunningDaemon> {
  const binary = findExecutable(program);
  if (!binary) throw new Error(`${program} is not installed`);
  const port = await freePort();
  const child = spawn(binary, args(port), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  try {
    await waitForPort(port);
  } catch (error) {
    child.kill('SIGKILL');
    throw new Error(`${program} did not start: ${(error as Error).message}\n${stderr}`, { cause: error });
  }
  return {
    port,
    process: child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** Starts Debian's gearmand on a free loopback port with the given extra flags. */
export async function startGearmand(extraArgs: string[] = []): Promise<RunningGearmand> {
  const daemon = await startDaemon('gearmand', (port) => [
    '--listen',
    '127.0.0.1',
    '--port',
    String(port),
    '--log-file',
    'none',
    '--threads',
    '0',
    ...extraArgs,
  ]);
  return { ...daemon, host: '127.0.0.1' };
}

/** Two gearmand servers, their handles prefixed `H:a` and `H:b` (a handle tells which made it), and their addresses. */
export async function startGearmandPair(): Promise<{ gearmands: RunningGearmand[]; servers: string[] }> {
  const gearmands = await Promise.all(['H:a', 'H:b'].map((prefix) => startGearmand(['--job-handle-prefix', prefix])));
  return { gearmands, servers: gearmands.map((gearmand) => `127.0.0.1:${gearmand.port}`) };
}
