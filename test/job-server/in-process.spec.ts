import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanConnectionError } from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { adminCommand } from '../client/support/admin.js';
import { adminQuery as adminReply } from './support/raw-peer.js';
import { quietLogger } from '../client/support/harness.js';
import { run, startPeerWorker, type PeerWorker } from '../client/support/peers.js';
import { sleep, waitFor } from '../client/support/wait.js';
import { describeWithPeers } from '../support/gearmand.js';
import { makeTestPki } from '../support/certificates.js';
import { connectInProcess } from '../../lib/connection/in-process-servers.js';
import type { InMemorySocket } from '../../lib/connection/in-memory-socket.js';
import { encodeRequest, PacketType } from '../../lib/protocol/index.js';

/** `workers` rows as { ip, clientId, functions }. */
async function workerRows(port: number) {
  return (await adminCommand(port, 'workers')).map((line) => {
    const [head, functions = ''] = line.split(' : ');
    const [, ip, clientId] = head.split(' ');
    return { ip, clientId, functions: functions.trim().split(' ').filter(Boolean) };
  });
}

describe('Clients and workers of the job server’s own process', () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  async function startServer(options: ConstructorParameters<typeof GearmanJobServer>[0] = {}) {
    const server = new GearmanJobServer({ port: 0, logger: false, ...options });
    await server.listen();
    closing.push(() => server.close());
    return server;
  }

  function client(port: number) {
    const created = new GearmanClient({ servers: [`127.0.0.1:${port}`], logger: quietLogger });
    closing.push(() => created.close());
    return created;
  }

  async function worker(port: number, clientId: string, fn = 'upper') {
    const created = new GearmanWorker({ servers: [`127.0.0.1:${port}`], logger: quietLogger, clientId });
    created.register(fn, (job) => job.data.toString().toUpperCase());
    await created.start();
    closing.push(() => created.stop());
    return created;
  }

  test('connect in memory: the workers listing shows them as in-process; jobs flow as over TCP', async () => {
    const server = await startServer();
    const { port } = server.address();
    await worker(port, 'local-worker');
    expect((await client(port).submitJob('upper', 'in memory').result).toString()).toBe('IN MEMORY');
    const rows = await workerRows(port);
    expect(rows).toContainEqual({ ip: 'in-process', clientId: 'local-worker', functions: ['upper'] });
    // The admin query itself came over TCP.
    expect(rows.some((row) => row.ip === '127.0.0.1')).toBe(true);
  });

  test('inProcess: false makes every peer use TCP', async () => {
    const server = await startServer({ inProcess: false });
    const { port } = server.address();
    await worker(port, 'tcp-worker');
    expect((await client(port).submitJob('upper', 'over tcp').result).toString()).toBe('OVER TCP');
    expect(await workerRows(port)).toContainEqual({ ip: '127.0.0.1', clientId: 'tcp-worker', functions: ['upper'] });
  });

  test('TLS always goes over TCP: an in-process peer asking for TLS fails as it would against a plain TCP port', async () => {
    const server = await startServer();
    const tlsClient = new GearmanClient({
      servers: [{ host: '127.0.0.1', port: server.address().port, tls: true }],
      connectTimeoutMs: 2000,
      logger: quietLogger,
    });
    closing.push(() => tlsClient.close());
    await expect(tlsClient.connect()).rejects.toBeInstanceOf(GearmanConnectionError);
    expect((await workerRows(server.address().port)).every((row) => row.ip !== 'in-process')).toBe(true);
  });

  test('when the server closes, in-process peers see the loss as TCP peers do, and come back in memory after a restart', async () => {
    const first = new GearmanJobServer({ port: 0, logger: false });
    await first.listen();
    const { port } = first.address();
    const reconnecting = new GearmanClient({
      servers: [`127.0.0.1:${port}`],
      reconnect: { initialDelayMs: 20, maxDelayMs: 100 },
      logger: quietLogger,
    });
    closing.push(() => reconnecting.close());
    const lost = new Promise<Error>((resolve) => reconnecting.once('disconnect', (_server: string, error: Error) => resolve(error)));
    await reconnecting.connect();
    await first.close();
    expect(await lost).toMatchObject({ name: 'GearmanConnectionError', code: 'ECONNRESET' });
    await sleep(100); // a few refused TCP attempts meanwhile
    const second = await startServer({ port });
    await waitFor(() => reconnecting.connectedServers.length === 1, 'the reconnect');
    await worker(port, 'back');
    expect((await reconnecting.submitJob('upper', 'again').result).toString()).toBe('AGAIN');
    expect((await workerRows(second.address().port)).filter((row) => row.ip === 'in-process').length).toBe(2);
  });
});

describeWithPeers(['gearman', 'gearadmin'], 'In-process and remote peers of one job server', () => {
  const closing: (() => Promise<void>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  test('gearadmin --workers lists the in-process worker beside a remote one; both take jobs of the same function', async () => {
    const server = new GearmanJobServer({ port: 0, logger: false });
    await server.listen();
    closing.push(() => server.close());
    const { port } = server.address();

    const local = new GearmanWorker({ servers: [`127.0.0.1:${port}`], logger: quietLogger, clientId: 'nest-app', concurrency: 4 });
    // The in-process worker holds its jobs until the remote one has answered one (or 10 s went by):
    // on a loaded machine it could otherwise run all 60 before the CLI worker grabs its first.
    let remoteAnswered!: () => void;
    const remoteSeen = new Promise<void>((resolve) => (remoteAnswered = resolve));
    local.register('shared', async () => {
      await Promise.race([remoteSeen, new Promise((resolve) => setTimeout(resolve, 10_000).unref())]);
      return 'in-process';
    });
    await local.start();
    closing.push(() => local.stop());
    // A remote worker: the gearman CLI, a process of its own over TCP, answering every job with "remote".
    const remote: PeerWorker = await startPeerWorker(port, 'shared', 'gearman', [
      '-w',
      '-h',
      '127.0.0.1',
      '-p',
      String(port),
      '-f',
      'shared',
      '--',
      'printf',
      'remote',
    ]);
    closing.push(() => remote.stop());

    const listing = await run('gearadmin', ['-h', '127.0.0.1', '-p', String(port), '--workers']);
    const lines = listing.stdout.split('\n');
    expect(lines.some((line) => /^\d+ in-process nest-app : shared$/.test(line))).toBe(true);
    expect(lines.some((line) => /^\d+ 127\.0\.0\.1 \S+ : shared$/.test(line))).toBe(true);

    const client = new GearmanClient({ servers: [`127.0.0.1:${port}`], logger: quietLogger });
    closing.push(() => client.close());
    const results = await Promise.all(
      Array.from({ length: 60 }, (_, i) =>
        client.submitJob('shared', String(i)).result.then((result) => {
          if (result.toString() === 'remote') remoteAnswered();
          return result;
        }),
      ),
    );
    const counts = { 'in-process': 0, remote: 0 };
    for (const result of results) counts[result.toString() as keyof typeof counts]++;
    expect(counts['in-process'] + counts.remote).toBe(60);
    expect(counts['in-process']).toBeGreaterThan(0);
    expect(counts.remote).toBeGreaterThan(0);
  });
});

describe('the job server’s protections on connections from its own process', () => {
  const closing: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  async function startServer(options: ConstructorParameters<typeof GearmanJobServer>[0] = {}) {
    const server = new GearmanJobServer({ port: 0, logger: false, ...options });
    await server.listen();
    closing.push(() => server.close());
    return server;
  }

  /** The client's end of an in-memory channel, and what it received. */
  function channel(port: number): { socket: InMemorySocket; received: () => Buffer } {
    const socket = connectInProcess('127.0.0.1', port);
    if (!socket) throw new Error('no job server of this process listens there');
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    closing.push(async () => socket.destroy());
    return { socket, received: () => Buffer.concat(chunks) };
  }

  test('they may run every admin command whatever adminCommands says; a TCP connection from 127.0.0.1 may not', async () => {
    const server = await startServer();
    const inMemory = channel(server.address().port);
    inMemory.socket.write(Buffer.from('show jobs\n'));
    await waitFor(async () => inMemory.received().length > 0, 'the reply');
    expect(inMemory.received().toString()).toBe('.\n');
    expect(await adminReply(server.address().port, 'show jobs', true)).toMatch(/^ERR PERMISSION_DENIED /);
  });

  test('a peer that never reads its replies is no longer read from, in memory as over TCP; it gets every reply once it reads', async () => {
    const server = await startServer({ limits: { outputBufferSoftBytes: 64 * 1024, outputBufferHardBytes: 0 } });
    const { socket, received } = channel(server.address().port);
    socket.pause();
    const request = encodeRequest(PacketType.ECHO_REQ, 'e'.repeat(1000));
    let written = 0;
    // The server's end stops reading: the client's writes stay backed up.
    for (let i = 0; i < 4096 && !(socket.writableNeedDrain && written > 256 * 1024); i++) {
      socket.write(request);
      written += request.length;
      if (i % 32 === 31) await sleep(1);
    }
    await sleep(100);
    expect(socket.writableNeedDrain).toBe(true);
    expect(written).toBeLessThan(4096 * request.length);
    socket.resume();
    await waitFor(async () => received().length >= written, 'every ECHO_RES');
    expect(received().length).toBe(written);
  });

  test('idleTimeoutMs closes an idle in-memory connection as it does a TCP one', async () => {
    const server = await startServer({ limits: { idleTimeoutMs: 200 } });
    const { socket } = channel(server.address().port);
    let closed = false;
    socket.on('close', () => (closed = true));
    await waitFor(async () => closed, 'the idle channel to be closed');
  });

  test('the channel stands for plaintext listeners only: beside a TLS listener, an in-process client reaches the plaintext one in memory and the TLS one over TCP', async () => {
    const pki = makeTestPki();
    closing.push(async () => pki.remove());
    const server = new GearmanJobServer({
      logger: false,
      tls: { key: pki.server.key, cert: pki.server.cert },
      listeners: [
        { host: '127.0.0.1', port: 0, tls: true },
        { host: '127.0.0.1', port: 0 },
      ],
    });
    await server.listen();
    closing.push(() => server.close());
    const [secure, plain] = server.addresses();
    expect(connectInProcess('127.0.0.1', secure.port)).toBeUndefined();
    const inMemory = connectInProcess('127.0.0.1', plain.port);
    expect(inMemory).toBeDefined();
    inMemory!.destroy();
    // A plaintext client of this process on the TLS port is refused as a remote one would be.
    const client = new GearmanClient({ servers: [`127.0.0.1:${secure.port}`], logger: quietLogger, reconnect: { maxAttempts: 0 } });
    const errors: { code: string }[] = [];
    client.on('error', (error: { code: string }) => errors.push(error));
    closing.push(() => client.close());
    await expect(client.submitBackgroundJob('f', 'x')).rejects.toThrow(GearmanConnectionError);
    expect(errors[0]).toMatchObject({ code: 'TLS_REQUIRED' });
  });
});
