// Brokers the benchmarks measure against, each started as a process of its own on a free loopback
// port: Debian's gearmand and redis-server. Resolves once the broker accepts connections.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { connect, createServer } from 'node:net';

export const GEARMAND = ['/usr/sbin/gearmand', '/usr/local/sbin/gearmand'].find((path) => existsSync(path));
export const REDIS_SERVER = ['/usr/bin/redis-server', '/usr/local/bin/redis-server'].find((path) => existsSync(path));

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** A TCP port nothing listens on now (the OS picks it). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

/** Resolves once something accepts connections on the port; rejects after 10 s. */
export async function waitForPort(port) {
  for (let attempt = 0; attempt < 400; attempt++) {
    const ok = await new Promise((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => (socket.destroy(), resolve(true)));
      socket.once('error', () => (socket.destroy(), resolve(false)));
    });
    if (ok) return;
    await sleep(25);
  }
  throw new Error(`nothing listens on ${port}`);
}

/** Starts `command args` and waits for it to listen on `port`: `{ port, child, stop() }` (stop: SIGTERM, then wait for exit). */
export async function startListeningProcess(command, args, port) {
  const child = spawn(command, args, { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  const failed = exited.then((code) => Promise.reject(new Error(`${command} exited with ${code} before listening on ${port}`)));
  failed.catch(() => undefined);
  await Promise.race([waitForPort(port), failed]);
  return {
    port,
    child,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
    },
  };
}

/** gearmand on a free loopback port, logging nowhere. */
export async function startGearmand() {
  if (!GEARMAND) throw new Error('gearmand is not installed (apt-get install gearman-job-server)');
  const port = await freePort();
  const broker = await startListeningProcess(GEARMAND, ['--listen', '127.0.0.1', '--port', String(port), '--log-file', 'none'], port);
  return { name: 'gearmand 1.1.20', ...broker };
}

/** redis-server on a free loopback port, with persistence off. */
export async function startRedis() {
  if (!REDIS_SERVER) throw new Error('redis-server is not installed (apt-get install redis-server)');
  const port = await freePort();
  const broker = await startListeningProcess(
    REDIS_SERVER,
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'],
    port,
  );
  return { name: 'redis-server', ...broker };
}
