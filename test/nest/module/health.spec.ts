import 'reflect-metadata';
import { Controller, Get, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { HealthCheck, HealthCheckService, TerminusModule } from '@nestjs/terminus';
import { ClientGearman, GearmanHealthIndicator, GearmanModule } from '../../../lib/index.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from '../job-servers.js';

@Controller()
class ResizeHandlers {
  @MessagePattern('health.resize')
  resize(): string {
    return 'resized';
  }
}

/** Health routes as an app writes them: Terminus's HealthCheckService around GearmanHealthIndicator. */
@Controller('health')
class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly gearman: GearmanHealthIndicator,
  ) {}

  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.gearman.isHealthy('gearman', { requireWorkers: ['health.resize'], timeoutMs: 1000 })]);
  }

  @Get('strict')
  @HealthCheck()
  strict() {
    return this.health.check([
      () =>
        this.gearman.isHealthy('gearman', { requireWorkers: ['health.thumbnail'], maxQueued: { 'health.archive': 1 }, timeoutMs: 1000 }),
    ]);
  }

  @Get('soft')
  @HealthCheck()
  soft() {
    return this.health.check([
      () => this.gearman.isHealthy('gearman', { requireWorkers: 'queued', thresholdStatus: 'degraded', timeoutMs: 1000 }),
    ]);
  }
}

async function startApp(servers: string[]): Promise<INestApplication> {
  @Module({
    imports: [GearmanModule.forRoot({ servers, worker: { reconnect: { initialDelayMs: 50, maxDelayMs: 200 } } }), TerminusModule],
    controllers: [ResizeHandlers, HealthController],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  app.connectMicroservice(GearmanModule.microservice());
  await app.startAllMicroservices();
  await app.listen(0, '127.0.0.1');
  return app;
}

interface HealthBody {
  status: string;
  details: {
    gearman: {
      status: string;
      servers: Record<string, Record<string, unknown>>;
      workers: { connectedServers: string[] }[];
      problems?: string[];
    };
  };
}

async function getHealth(app: INestApplication, path: string): Promise<{ code: number; body: HealthBody }> {
  const response = await fetch(`${await app.getUrl()}${path}`);
  return { code: response.status, body: (await response.json()) as HealthBody };
}

describeOnJobServers('GearmanHealthIndicator with Terminus', (kind) => {
  let server: JobServerUnderTest;
  let app: INestApplication | undefined;

  beforeEach(async () => {
    server = await startJobServer(kind);
  });
  afterEach(async () => {
    await app?.close();
    app = undefined;
    await server.stop();
  });

  it('up: the job server answers, and the function the check requires has this app as its worker', async () => {
    app = await startApp(server.servers);
    const { code, body } = await getHealth(app, '/health');
    expect(code).toBe(200);
    expect(body.status).toBe('ok');
    const gearman = body.details.gearman;
    expect(gearman.status).toBe('up');
    expect(gearman.problems).toBeUndefined();
    const [address] = server.servers;
    expect(gearman.servers[address]).toMatchObject({
      reachable: true,
      functions: { 'health.resize': { queued: 0, running: 0, workers: 1 } },
    });
    expect(gearman.servers[address].rttMs).toEqual(expect.any(Number));
    expect(gearman.workers).toEqual([{ listening: true, functions: ['health.resize'], connectedServers: [address], jobsInFlight: 0 }]);
  });

  it('degraded: no worker for a required function, or too many queued jobs, is down with the reasons', async () => {
    app = await startApp(server.servers);
    const low = await app.get(ClientGearman).connect();
    await low.submitBackgroundJob('health.archive', 'a');
    await low.submitBackgroundJob('health.archive', 'b');

    const strict = await getHealth(app, '/health/strict');
    expect(strict.code).toBe(503);
    expect(strict.body.details.gearman.status).toBe('down');
    expect(strict.body.details.gearman.problems).toEqual(['no worker for health.thumbnail', 'health.archive has 2 queued jobs, over 1']);

    // 'queued': every function with queued jobs needs a worker. Terminus 12 reports degraded (200); 11 has no such status.
    const soft = await getHealth(app, '/health/soft');
    expect(soft.body.details.gearman.problems).toEqual(['no worker for health.archive']);
    if (process.env.EXPECTED_NEST_MAJOR === '11') {
      expect(soft.code).toBe(503);
      expect(soft.body.details.gearman.status).toBe('down');
    } else {
      expect(soft.code).toBe(200);
      expect(soft.body.status).toBe('degraded');
      expect(soft.body.details.gearman.status).toBe('degraded');
    }
  });

  it('down: with the job server stopped, the check says so and the worker is connected nowhere', async () => {
    app = await startApp(server.servers);
    expect((await getHealth(app, '/health')).code).toBe(200);
    await server.stop();
    // The worker notices the closed connection on its own schedule: ask until it has.
    let health = await getHealth(app, '/health');
    await eventually(async () => {
      health = await getHealth(app!, '/health');
      return health.body.details.gearman.workers[0]?.connectedServers.length === 0;
    }, 'the worker to see the job server gone');
    const { code, body } = health;
    expect(code).toBe(503);
    const gearman = body.details.gearman;
    expect(gearman.status).toBe('down');
    const [address] = server.servers;
    expect(gearman.servers[address]).toMatchObject({ reachable: false, error: expect.stringContaining('Cannot connect') });
    expect(gearman.problems).toEqual([`no job server answers (${address})`, 'worker 1 (health.resize) is connected to no job server']);
  });
});
