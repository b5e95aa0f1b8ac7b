import 'reflect-metadata';
import { Controller, Get, Injectable, Module, Param, type INestApplication, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, EventPattern, MessagePattern, Payload } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import {
  ClientGearman,
  GEARMAN_JOB_SERVER,
  GearmanContext,
  GearmanJobServer,
  GearmanModule,
  GearmanStrategyFactory,
  ServerGearman,
} from '../../../lib/index.js';
import { describeWithPeers, startGearmand, type RunningGearmand } from '../../support/gearmand.js';
import { tempQueueDir } from '../../support/queue-files.js';
import { appModule, GreetingService, startHybridApp, startMicroservice } from './apps.js';

/** Records what event handlers received, for the test to read. */
const received: string[] = [];

@Controller()
class Handlers {
  @MessagePattern('module.job-info')
  info(@Payload() data: unknown, @Ctx() context: GearmanContext) {
    return { data, functionName: context.getFunctionName(), handleLooksRight: /^H:/.test(context.getHandle()) };
  }

  @EventPattern('module.noted')
  noted(@Payload() note: string) {
    received.push(note);
  }
}

/** An HTTP controller that calls a worker through the injected client. */
@Controller('greet')
class GreetController {
  constructor(private readonly greetings: GreetingService) {}
  @Get(':name')
  async greet(@Param('name') name: string) {
    return { greeting: await this.greetings.greet(name) };
  }
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('GearmanModule in Nest apps', () => {
  const opened: (INestApplication | INestMicroservice)[] = [];
  afterEach(async () => {
    // Workers and clients first, job-server owners last.
    for (const app of opened.splice(0).reverse()) await app.close();
  });

  it('serves HTTP and Gearman from one hybrid app: an HTTP route calls a handler through ClientGearman', async () => {
    const app = await startHybridApp(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } }), { controllers: [GreetController] }),
    );
    opened.push(app);
    const response = await fetch(`${await app.getUrl()}/greet/Grace`);
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({ greeting: 'hello Grace' });
  });

  it('runs as a pure microservice that owns the embedded server, called from another app', async () => {
    const worker = await startMicroservice(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false } }), { controllers: [Handlers] }),
    );
    opened.push(worker);
    const port = worker.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address().port;
    const caller = await NestFactory.create(appModule(GearmanModule.forRoot({ servers: [`127.0.0.1:${port}`] })), { logger: false });
    opened.push(caller);
    await caller.init();
    const client = caller.get(ClientGearman);
    expect(await lastValueFrom(client.send('module.job-info', { n: 1 }))).toEqual({
      data: { n: 1 },
      functionName: 'module.job-info',
      handleLooksRight: true,
    });
    await lastValueFrom(client.emit('module.noted', 'from another app'));
    await until(() => received.includes('from another app'), 'the event handler');
  });

  it('hands the module worker defaults to every strategy, and lets one strategy override them', async () => {
    const app = await NestFactory.create(
      appModule(
        GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, worker: { concurrency: 3, clientId: 'module-default' } }),
      ),
      { logger: false },
    );
    opened.push(app);
    await app.init();
    const factory = app.get(GearmanStrategyFactory);
    const port = app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address().port;
    const options = (strategy: ServerGearman) => (strategy as unknown as { options: Record<string, unknown> }).options;
    expect(factory.create()).toBeInstanceOf(ServerGearman);
    expect(options(factory.create())).toMatchObject({ concurrency: 3, clientId: 'module-default', servers: [{ host: '127.0.0.1', port }] });
    expect(options(factory.create({ concurrency: 8 }))).toMatchObject({ concurrency: 8, clientId: 'module-default' });
  });

  it('with isGlobal, feature modules inject ClientGearman without importing GearmanModule', async () => {
    @Injectable()
    class FeatureService {
      constructor(readonly client: ClientGearman) {}
    }
    @Module({ providers: [FeatureService], exports: [FeatureService] })
    class FeatureModule {}
    const app = await startHybridApp(
      appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, isGlobal: true }), { imports: [FeatureModule] }),
    );
    opened.push(app);
    const feature = app.get(FeatureService);
    expect(feature.client).toBe(app.get(ClientGearman));
    expect(await lastValueFrom(feature.client.send('module.greet', 'global'))).toBe('hello global');
  });

  it("keeps the embedded server's background jobs in a SQLite file: events emitted before a restart reach the handler after it", async () => {
    const files = tempQueueDir('module-queue-');
    try {
      const embeddedServer = { port: 0, logger: false as const, queue: { type: 'sqlite' as const, file: files.file('queue.db') } };
      // An app without workers: its events wait in the queue when it stops.
      const producer = await NestFactory.create(appModule(GearmanModule.forRoot({ embeddedServer })), { logger: false });
      await producer.init();
      for (const note of ['one', 'two', 'three']) await lastValueFrom(producer.get(ClientGearman).emit('module.noted', note));
      await producer.close();

      received.length = 0;
      const worker = await startMicroservice(appModule(GearmanModule.forRoot({ embeddedServer }), { controllers: [Handlers] }));
      opened.push(worker);
      await until(() => received.length === 3, 'the three stored events');
      expect(received).toEqual(['one', 'two', 'three']);
    } finally {
      files.remove();
    }
  });
});

describeWithPeers(['gearmand'], 'GearmanModule against gearmand', () => {
  let gearmand: RunningGearmand;
  beforeAll(async () => {
    gearmand = await startGearmand();
  });
  afterAll(async () => {
    await gearmand?.stop();
  });

  it('connects a worker microservice and a calling app to gearmand with `servers`', async () => {
    const servers = [`127.0.0.1:${gearmand.port}`];
    const worker = await startMicroservice(appModule(GearmanModule.forRoot({ servers })));
    const caller = await NestFactory.create(appModule(GearmanModule.forRoot({ servers })), { logger: false });
    try {
      await caller.init();
      expect(await caller.get(GreetingService).greet('gearmand')).toBe('hello gearmand');
    } finally {
      await worker.close();
      await caller.close();
    }
  });
});
