import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createServer as createTlsServer, type Server as TlsServer } from 'node:tls';
import { GearmanClient } from '../../lib/client/gearman-client.js';
import { GearmanConnectionError } from '../../lib/common/errors.js';
import { GearmanConnection, type GearmanConnectionHandler } from '../../lib/connection/gearman-connection.js';
import { resolveServerAddress } from '../../lib/connection/server-address.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { encodeResponse, PacketType } from '../../lib/protocol/index.js';
import { GearmanWorker } from '../../lib/worker/gearman-worker.js';
import { quietLogger } from '../client/support/harness.js';
import { waitFor } from '../client/support/wait.js';
import { findExecutable } from '../support/gearmand.js';

function listen<T extends Server | TlsServer>(server: T): Promise<number> {
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve((server.address() as { port: number }).port)));
}

function closeServer(server: Server | TlsServer, sockets: Set<Socket>): Promise<void> {
  for (const socket of sockets) socket.destroy();
  return new Promise((resolve) => server.close(() => resolve()));
}

/** A raw TCP server whose behaviour per connection the test decides. */
async function rawServer(onConnection: (socket: Socket) => void) {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    onConnection(socket);
  });
  const port = await listen(server);
  return { port, close: () => closeServer(server, sockets) };
}

function recordingHandler() {
  const events: string[] = [];
  const errors: GearmanConnectionError[] = [];
  const handler: GearmanConnectionHandler = {
    onConnect: () => events.push('connect'),
    onPacket: (packet) => events.push(`packet ${PacketType[packet.type]}`),
    onDisconnect: (error) => {
      events.push('disconnect');
      errors.push(error);
    },
    onReconnecting: (delayMs, attempt) => events.push(`reconnecting ${delayMs} #${attempt}`),
    onGiveUp: (error) => {
      events.push('give up');
      errors.push(error);
    },
  };
  return { events, errors, handler };
}

describe('GearmanConnection', () => {
  test('a connect that never completes (a TLS handshake nobody answers) fails after the timeout', async () => {
    const silent = await rawServer(() => undefined);
    try {
      const { handler } = recordingHandler();
      const connection = new GearmanConnection(resolveServerAddress(`127.0.0.1:${silent.port}`, true), { connectTimeoutMs: 200 }, handler);
      const error = await connection.open().catch((e: unknown) => e);
      connection.halt();
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect((error as Error).message).toMatch(/timed out after 200 ms/);
    } finally {
      await silent.close();
    }
  });

  test('a server that breaks the protocol is dropped with a clear error, then reconnected', async () => {
    let connections = 0;
    const garbage = await rawServer((socket) => {
      connections++;
      if (connections === 1) socket.write(Buffer.from('\0XYZ\0\0\0\x01\0\0\0\0', 'latin1'));
      else socket.write(encodeResponse(PacketType.NOOP));
    });
    try {
      const { events, errors, handler } = recordingHandler();
      const connection = new GearmanConnection(
        resolveServerAddress(`127.0.0.1:${garbage.port}`),
        { reconnect: { initialDelayMs: 10 } },
        handler,
      );
      await connection.open();
      await waitFor(() => events.includes('packet NOOP'), 'the reconnect');
      connection.halt();
      expect(events.slice(0, 5)).toEqual(['connect', 'disconnect', 'reconnecting 10 #1', 'connect', 'packet NOOP']);
      expect(errors[0].message).toMatch(/broke the protocol: Bad magic/);
    } finally {
      await garbage.close();
    }
  });

  test('a text line where packets are expected drops the connection', async () => {
    const chatty = await rawServer((socket) => socket.write('hello there\n'));
    try {
      const { errors, handler } = recordingHandler();
      const connection = new GearmanConnection(
        resolveServerAddress(`127.0.0.1:${chatty.port}`),
        { reconnect: { maxAttempts: 0 } },
        handler,
      );
      await connection.open();
      await waitFor(() => errors.length === 2, 'the drop and the give-up');
      expect(errors[0].message).toMatch(/text line where a binary packet was expected/);
      expect(errors[1].message).toMatch(/Gave up reconnecting/);
    } finally {
      await chatty.close();
    }
  });

  test('reconnect attempts back off and stop at maxAttempts', async () => {
    const server = await rawServer((socket) => socket.destroy());
    const { events, handler } = recordingHandler();
    const connection = new GearmanConnection(
      resolveServerAddress(`127.0.0.1:${server.port}`),
      { reconnect: { initialDelayMs: 5, maxDelayMs: 20, maxAttempts: 4 } },
      handler,
    );
    await connection.open();
    await server.close();
    await waitFor(() => events.includes('give up'), 'the give-up');
    expect(events.filter((e) => e.startsWith('reconnecting'))).toEqual([
      'reconnecting 5 #1',
      'reconnecting 10 #2',
      'reconnecting 20 #3',
      'reconnecting 20 #4',
    ]);
    expect(connection.isConnected).toBe(false);
  });

  test('end() flushes what was written before closing', async () => {
    const received: Buffer[] = [];
    const sink = await rawServer((socket) => socket.on('data', (chunk: Buffer) => received.push(chunk)));
    try {
      const { handler } = recordingHandler();
      const connection = new GearmanConnection(resolveServerAddress(`127.0.0.1:${sink.port}`), {}, handler);
      await connection.open();
      const packet = Buffer.alloc(1 << 20, 7);
      connection.write(packet);
      await connection.end();
      await waitFor(() => Buffer.concat(received).length === packet.length, 'every byte');
      expect(Buffer.concat(received).equals(packet)).toBe(true);
    } finally {
      await sink.close();
    }
  });
});

describe('connection errors carry the system code, as Nest’s own clients report it', () => {
  async function closedPort(): Promise<number> {
    const server = await rawServer(() => undefined);
    await server.close();
    return server.port;
  }

  test('refused: ECONNREFUSED, the socket error as cause', async () => {
    const port = await closedPort();
    const { handler } = recordingHandler();
    const connection = new GearmanConnection(resolveServerAddress(`127.0.0.1:${port}`), { reconnect: { maxAttempts: 0 } }, handler);
    const error = (await connection.open().catch((e: unknown) => e)) as GearmanConnectionError;
    expect(error).toBeInstanceOf(GearmanConnectionError);
    expect(error.code).toBe('ECONNREFUSED');
    expect(error.server).toBe(`127.0.0.1:${port}`);
    expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
    expect((error.cause as NodeJS.ErrnoException).syscall).toBe('connect');
  });

  test('a connect that times out: ETIMEDOUT', async () => {
    const silent = await rawServer(() => undefined);
    try {
      const { handler } = recordingHandler();
      const address = resolveServerAddress(`127.0.0.1:${silent.port}`, true); // a TLS handshake nobody answers
      const connection = new GearmanConnection(address, { connectTimeoutMs: 100, reconnect: { maxAttempts: 0 } }, handler);
      const error = (await connection.open().catch((e: unknown) => e)) as GearmanConnectionError;
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect(error.code).toBe('ETIMEDOUT');
    } finally {
      await silent.close();
    }
  });

  test('reset by the peer: ECONNRESET with the socket error; closed by the peer: ECONNRESET too; closed by us: CONNECTION_ERROR', async () => {
    let accepted = 0;
    const server = await rawServer((socket) => {
      accepted++;
      if (accepted === 1) setTimeout(() => socket.resetAndDestroy(), 20);
      else if (accepted === 2) setTimeout(() => socket.end(), 20);
    });
    try {
      const { errors, handler } = recordingHandler();
      const connection = new GearmanConnection(
        resolveServerAddress(`127.0.0.1:${server.port}`),
        { reconnect: { initialDelayMs: 5 } },
        handler,
      );
      await connection.open();
      await waitFor(() => errors.length === 2, 'a reset, then a close');
      await waitFor(() => connection.isConnected, 'the third connection');
      connection.halt();
      await waitFor(() => errors.length === 3, 'the close by us');
      expect(errors.map((error) => error.code)).toEqual(['ECONNRESET', 'ECONNRESET', 'CONNECTION_ERROR']);
      expect((errors[0].cause as NodeJS.ErrnoException).code).toBe('ECONNRESET');
      expect(errors[1].cause).toBeUndefined();
      expect(errors[1].message).toMatch(/closed by the job server/);
    } finally {
      await server.close();
    }
  });

  test('no server of several reachable: the first one’s code, each failure in an AggregateError cause', async () => {
    const ports = [await closedPort(), await closedPort()];
    const client = new GearmanClient({ servers: ports.map((port) => `127.0.0.1:${port}`), logger: quietLogger });
    const error = (await client.connect().catch((e: unknown) => e)) as GearmanConnectionError;
    await client.close();
    expect(error).toBeInstanceOf(GearmanConnectionError);
    expect(error.code).toBe('ECONNREFUSED');
    expect((error.cause as AggregateError).errors.map((failure: GearmanConnectionError) => failure.server)).toEqual(
      ports.map((port) => `127.0.0.1:${port}`),
    );
  });
});

describe('connection options', () => {
  test.each([
    [{ connectTimeoutMs: 0 }, /connectTimeoutMs/],
    [{ connectTimeoutMs: Number.NaN }, /connectTimeoutMs/],
    [{ keepAliveMs: -1 }, /keepAliveMs/],
    [{ maxPacketSize: 1.5 }, /maxPacketSize/],
    [{ reconnect: { initialDelayMs: -5 } }, /reconnect.initialDelayMs/],
    [{ reconnect: { maxAttempts: -1 } }, /reconnect.maxAttempts/],
  ])('%j is refused when the client or worker is built', (options, message) => {
    expect(() => new GearmanClient(options)).toThrow(message);
    expect(() => new GearmanWorker(options)).toThrow(message);
  });

  test('unlimited reconnect attempts may be written as Infinity', () => {
    expect(() => new GearmanClient({ reconnect: { maxAttempts: Infinity } })).not.toThrow();
  });
});

describe('GearmanClient and GearmanWorker over TLS', () => {
  const openssl = findExecutable('openssl');
  const maybe = openssl ? test : test.skip;

  maybe('a job round-trips through a TLS front of the job server, with events on the way', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gearman-tls-'));
    const jobServer = new GearmanJobServer({ port: 0, logger: false });
    const sockets = new Set<Socket>();
    let front: TlsServer | undefined;
    let tlsClient: GearmanClient | undefined;
    let worker: GearmanWorker | undefined;
    try {
      execFileSync(
        openssl!,
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-keyout',
          join(dir, 'key.pem'),
          '-out',
          join(dir, 'cert.pem'),
          '-days',
          '1',
          '-subj',
          '/CN=localhost',
        ],
        {
          stdio: 'ignore',
        },
      );
      const cert = readFileSync(join(dir, 'cert.pem'));
      await jobServer.listen();
      front = createTlsServer({ key: readFileSync(join(dir, 'key.pem')), cert }, (secure) => {
        const plain = netConnect(jobServer.address().port, '127.0.0.1');
        sockets.add(secure).add(plain);
        secure.pipe(plain).pipe(secure);
        const close = () => {
          secure.destroy();
          plain.destroy();
        };
        secure.on('error', close).on('close', close);
        plain.on('error', close).on('close', close);
      });
      const port = await listen(front);
      const tls = { ca: cert, servername: 'localhost' };
      worker = new GearmanWorker({ servers: [{ host: '127.0.0.1', port, tls }], logger: quietLogger });
      worker.register('secret', (job) => `sealed ${job.data}`);
      await worker.start();
      tlsClient = new GearmanClient({ servers: [`127.0.0.1:${port}`], tls, logger: quietLogger });
      const connected: string[] = [];
      tlsClient.on('connect', (server: string) => connected.push(server));
      expect((await tlsClient.submitJob('secret', 'letter').result).toString()).toBe('sealed letter');
      expect(connected).toEqual([`127.0.0.1:${port}`]);

      const untrusting = new GearmanClient({ servers: [`127.0.0.1:${port}`], tls: true, logger: quietLogger });
      await expect(untrusting.connect()).rejects.toThrow(/self[- ]signed|certificate/i);
      await untrusting.close();
    } finally {
      await tlsClient?.close();
      await worker?.stop();
      if (front) await closeServer(front, sockets);
      await jobServer.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
