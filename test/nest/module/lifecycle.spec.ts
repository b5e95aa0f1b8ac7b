import 'reflect-metadata';
import { Controller, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { connect } from 'node:net';
import { lastValueFrom } from 'rxjs';
import {
  ClientGearman,
  GEARMAN_CLIENT,
  GEARMAN_JOB_SERVER,
  GEARMAN_SERVERS,
  GearmanConnectionError,
  GearmanJobServer,
  GearmanModule,
} from '../../../lib/index.js';
import { appModule, GreetingService, startHybridApp } from './apps.js';

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

function embeddedPort(app: INestApplication): number {
  return app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address().port;
}

describe('GearmanModule lifecycle', () => {
  const opened: INestApplication[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((app) => app.close()));
  });

  it('starts the embedded server on a free port before providers are built, and points the client at it', async () => {
    const app = await startHybridApp(appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } })));
    opened.push(app);
    const port = embeddedPort(app);
    expect(port).toBeGreaterThan(0);
    expect(app.get(GEARMAN_SERVERS)).toEqual([{ host: '127.0.0.1', port }]);
    expect(await app.get(GreetingService).greet('Ada')).toBe('hello Ada');
  });

  it('gives the same client by class and by token', async () => {
    const app = await NestFactory.create(appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } })), {
      logger: false,
    });
    opened.push(app);
    await app.init();
    expect(app.get(GEARMAN_CLIENT)).toBeInstanceOf(ClientGearman);
    expect(app.get(GEARMAN_CLIENT)).toBe(app.get(ClientGearman));
  });

  it('starts and stops twice, releasing the port each time', async () => {
    let port = 0;
    for (let round = 1; round <= 2; round++) {
      // The second round binds the very port the first one released.
      const app = await startHybridApp(appModule(GearmanModule.forRoot({ embeddedServer: { port, logger: false } })));
      port = embeddedPort(app);
      expect(await app.get(GreetingService).greet(`round ${round}`)).toBe(`hello round ${round}`);
      await app.close();
      expect(await accepts(port)).toBe(false);
    }
  });

  it('keeps two apps in one process apart, each on its own port with its own workers', async () => {
    @Controller()
    class WhoAmI {
      static names = new Map<unknown, string>();
      @MessagePattern('module.whoami')
      whoami(): string {
        return WhoAmI.names.get(this) ?? 'unknown';
      }
    }
    const first = await startHybridApp(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } }), { controllers: [WhoAmI] }),
    );
    const second = await startHybridApp(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } }), { controllers: [WhoAmI] }),
    );
    opened.push(first, second);
    WhoAmI.names.set(first.get(WhoAmI), 'first');
    WhoAmI.names.set(second.get(WhoAmI), 'second');
    expect(embeddedPort(first)).not.toBe(embeddedPort(second));
    expect(await lastValueFrom(first.get(ClientGearman).send('module.whoami', {}))).toBe('first');
    expect(await lastValueFrom(second.get(ClientGearman).send('module.whoami', {}))).toBe('second');
  });

  it('on close, lets a running job finish and deliver its result before the embedded server stops', async () => {
    let jobStarted!: () => void;
    const started = new Promise<void>((resolve) => (jobStarted = resolve));
    @Controller()
    class Slow {
      @MessagePattern('module.slow')
      async slow(@Payload() input: number): Promise<number> {
        jobStarted();
        await new Promise((resolve) => setTimeout(resolve, 400));
        return input * 2;
      }
    }
    const app = await startHybridApp(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } }), { controllers: [Slow] }),
    );
    const port = embeddedPort(app);
    const reply = lastValueFrom(app.get(ClientGearman).send<number>('module.slow', 21));
    await started;
    const closed = app.close();
    await expect(reply).resolves.toBe(42);
    await closed;
    expect(await accepts(port)).toBe(false);
  });

  it('on close, waits for a reply still being computed by a worker of another app', async () => {
    let jobStarted!: () => void;
    const started = new Promise<void>((resolve) => (jobStarted = resolve));
    @Controller()
    class Slow {
      @MessagePattern('module.slow-elsewhere')
      async slow(@Payload() input: string): Promise<string> {
        jobStarted();
        await new Promise((resolve) => setTimeout(resolve, 300));
        return input.toUpperCase();
      }
    }
    // The gateway owns the job server and the client; the worker lives in a second app.
    const gateway = await NestFactory.create(appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } })), {
      logger: false,
    });
    await gateway.init();
    const port = embeddedPort(gateway);
    const worker = await startHybridApp(appModule(GearmanModule.forRoot({ servers: [`127.0.0.1:${port}`] }), { controllers: [Slow] }));
    opened.push(worker);
    const reply = lastValueFrom(gateway.get(ClientGearman).send<string>('module.slow-elsewhere', 'done'));
    await started;
    const closed = gateway.close();
    await expect(reply).resolves.toBe('DONE');
    await closed;
    expect(await accepts(port)).toBe(false);
  });

  it('does not wait past shutdownTimeoutMs for a reply that cannot come, and fails it', async () => {
    const app = await NestFactory.create(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, shutdownTimeoutMs: 200 })),
      { logger: false },
    );
    await app.init();
    const port = embeddedPort(app);
    const client = app.get(ClientGearman);
    await client.connect();
    // No worker serves this function: the job waits in the queue, its reply never comes.
    const reply = lastValueFrom(client.send('module.nobody-serves-this', 1));
    const failed = expect(reply).rejects.toBeInstanceOf(GearmanConnectionError);
    await app.close();
    await failed;
    expect(await accepts(port)).toBe(false);
  });

  it('explains an embedded port already in use', async () => {
    const occupant = new GearmanJobServer({ port: 0, logger: false });
    await occupant.listen();
    try {
      const module = appModule(GearmanModule.forRoot({ embeddedServer: { port: occupant.address().port, logger: false } }));
      await expect(NestFactory.create(module, { logger: false, abortOnError: false })).rejects.toThrow(
        /could not listen on 127\.0\.0\.1:\d+.*already listens there/,
      );
    } finally {
      await occupant.close();
    }
  });

  it('connects to 127.0.0.1:4730 by default and to the given servers otherwise, starting no server', async () => {
    const byDefault = await NestFactory.createApplicationContext(appModule(GearmanModule.forRoot()), { logger: false });
    const given = await NestFactory.createApplicationContext(
      appModule(GearmanModule.forRoot({ servers: ['gearman-a:4730', 'gearman-b'] })),
      { logger: false },
    );
    try {
      expect(byDefault.get(GEARMAN_SERVERS)).toEqual(['127.0.0.1:4730']);
      expect(byDefault.get(GEARMAN_JOB_SERVER)).toBeNull();
      expect(given.get(GEARMAN_SERVERS)).toEqual(['gearman-a:4730', 'gearman-b']);
    } finally {
      await byDefault.close();
      await given.close();
    }
  });
});
