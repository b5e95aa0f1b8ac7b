import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { createServer, type Server, type Socket } from 'node:net';
import { firstValueFrom } from 'rxjs';
import { GearmanConnectionError } from '../../lib/common/errors.js';
import { GearmanJobServer } from '../../lib/job-server/gearman-job-server.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { CountingProxy } from '../client/support/counting-proxy.js';
import { freePort } from '../support/gearmand.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

let release: (() => void) | undefined;

@Controller()
class SlowController {
  @MessagePattern('slow.echo')
  async echo(@Payload() value: unknown) {
    await new Promise<void>((resolve) => (release = resolve));
    return value;
  }
}

@Module({ controllers: [SlowController] })
class SlowModule {}

/** Nest's Logger as a recorder of what the app would print. */
function recordingLogger() {
  const lines: { level: string; message: string }[] = [];
  const record = (level: string) => (message: unknown) => lines.push({ level, message: String(message) });
  return {
    lines,
    logger: { log: record('log'), error: record('error'), warn: record('warn'), debug: record('debug'), verbose: record('verbose') },
  };
}

describe('ClientGearman errors carry the system code, as Nest’s TCP and Redis clients’ do', () => {
  test('a refused connection: ECONNREFUSED on err.code, a GearmanConnectionError with the socket error as cause', async () => {
    const port = await freePort();
    const client = new ClientGearman({ servers: [`127.0.0.1:${port}`] });
    try {
      const error = (await firstValueFrom(client.send('anything', 1)).catch((e: unknown) => e)) as GearmanConnectionError;
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect(error.code).toBe('ECONNREFUSED');
      expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNREFUSED');
      await expect(client.connect()).rejects.toMatchObject({ code: 'ECONNREFUSED' });
    } finally {
      await client.close();
    }
  });

  test('a connect that times out: ETIMEDOUT', async () => {
    // Accepts TCP but never answers the TLS handshake.
    const sockets: Socket[] = [];
    const silent: Server = createServer((socket) => sockets.push(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const { port } = silent.address() as { port: number };
    const client = new ClientGearman({ servers: [{ host: '127.0.0.1', port, tls: true }], connectTimeoutMs: 200 });
    try {
      const error = (await firstValueFrom(client.send('anything', 1)).catch((e: unknown) => e)) as GearmanConnectionError;
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect(error.code).toBe('ETIMEDOUT');
    } finally {
      await client.close();
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });

  test('emit() to an unreachable job server logs the error even when nobody subscribed', async () => {
    const port = await freePort();
    const { lines, logger } = recordingLogger();
    const client = new ClientGearman({ servers: [`127.0.0.1:${port}`] });
    (client as unknown as { logger: typeof logger }).logger = logger;
    try {
      client.emit('audit.entry', { who: 'ann' });
      await eventually(() => lines.some((line) => line.level === 'error'), 'the logged failure');
      expect(lines.find((line) => line.level === 'error')?.message).toMatch(
        /^emit\("audit\.entry"\) could not queue its job: .*ECONNREFUSED.* \(ECONNREFUSED\)$/,
      );
    } finally {
      await client.close();
    }
  });
});

describeOnJobServers('A connection reset in the middle of a call', (kind) => {
  let jobServer: JobServerUnderTest;
  let app: INestMicroservice;

  beforeEach(async () => {
    jobServer = await startJobServer(kind);
    app = await NestFactory.createMicroservice(SlowModule, { strategy: new ServerGearman({ servers: jobServer.servers }), logger: false });
    await app.listen();
  });
  afterEach(async () => {
    release?.();
    await app.close();
    await jobServer.stop();
  });

  test('fails the call with ECONNRESET, the socket error as cause', async () => {
    const proxy = await CountingProxy.start(Number(jobServer.servers[0].split(':')[1]));
    const client = new ClientGearman({ servers: [proxy.address], reconnect: { maxAttempts: 0 } });
    (client as unknown as { logger: unknown }).logger = recordingLogger().logger;
    try {
      release = undefined;
      const reply = firstValueFrom(client.send('slow.echo', 1)).catch((e: unknown) => e);
      await eventually(() => release !== undefined, 'the handler to start');
      proxy.reset();
      const error = (await reply) as GearmanConnectionError;
      expect(error).toBeInstanceOf(GearmanConnectionError);
      expect(error.code).toBe('ECONNRESET');
      expect((error.cause as NodeJS.ErrnoException).code).toBe('ECONNRESET');
      expect(error.message).toMatch(/\(slow\.echo\) was in flight on it/);
    } finally {
      await client.close();
      await proxy.close();
    }
  });
});

describe('A microservice started before its job server', () => {
  const closing: (() => Promise<unknown>)[] = [];
  afterEach(async () => {
    for (const close of closing.splice(0).reverse()) await close();
  });

  test('listen() keeps trying and resolves once the job server is up; the wait and the connect are logged as warnings', async () => {
    const port = await freePort();
    const { lines, logger } = recordingLogger();
    const strategy = new ServerGearman({ servers: [`127.0.0.1:${port}`], reconnect: { initialDelayMs: 20, maxDelayMs: 50 } });
    const app = await NestFactory.createMicroservice(SlowModule, { strategy, logger });
    closing.push(() => app.close());
    let listening = false;
    const listened = app.listen().then(() => (listening = true));
    await eventually(() => lines.some((line) => line.level === 'warn'), 'the first failed attempt');
    expect(listening).toBe(false);
    const server = new GearmanJobServer({ port, logger: false });
    await server.listen();
    closing.push(() => server.close());
    await listened;
    const warnings = lines.filter((line) => line.level === 'warn').map((line) => line.message);
    expect(warnings[0]).toMatch(/cannot reach 127\.0\.0\.1:\d+ yet \(ECONNREFUSED/);
    expect(warnings).toContain(`GearmanWorker: connected to 127.0.0.1:${port}`);
  });

  test('listen() rejects with ECONNREFUSED once startTimeoutMs has passed', async () => {
    const port = await freePort();
    const strategy = new ServerGearman({ servers: [`127.0.0.1:${port}`], startTimeoutMs: 300, reconnect: { initialDelayMs: 20 } });
    const app = await NestFactory.createMicroservice(SlowModule, { strategy, logger: false });
    closing.push(() => app.close());
    const error = await app.listen().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GearmanConnectionError);
    expect(error).toMatchObject({ code: 'ECONNREFUSED' });
  });
});
