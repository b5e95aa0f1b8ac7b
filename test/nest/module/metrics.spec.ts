import 'reflect-metadata';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Controller, Get, Header, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { register } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GEARMAN_JOB_SERVER, GearmanJobServer, GearmanMetrics, GearmanModule } from '../../../lib/index.js';
import { requireBuild } from '../../support/processes.js';
import { parsePrometheusText, sampleValue } from '../../support/prometheus-text.js';

@Controller()
class Handlers {
  @MessagePattern('metrics.square')
  square(@Payload() n: number): number {
    if (n < 0) throw new RpcException('negative');
    return n * n;
  }
}

/** How an app serves its metrics without another package: the injected GearmanMetrics' registry. */
@Controller('metrics')
class MetricsController {
  constructor(private readonly metrics: GearmanMetrics) {}

  @Get()
  @Header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
  scrape(): Promise<string> {
    return this.metrics.metrics();
  }
}

describe('GearmanModule metrics', () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
    register.clear();
  });

  it("registers the client's and workers' metrics in prom-client's default registry, with the embedded server's gauges", async () => {
    @Module({
      imports: [GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, metrics: true })],
      controllers: [Handlers, MetricsController],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    app.connectMicroservice(GearmanModule.microservice());
    await app.startAllMicroservices();
    await app.listen(0, '127.0.0.1');

    const client = app.get(ClientGearman);
    for (let n = 1; n <= 10; n++) expect(await lastValueFrom(client.send<number>('metrics.square', n))).toBe(n * n);
    await expect(lastValueFrom(client.send('metrics.square', -1))).rejects.toEqual({ status: 'error', message: 'negative' });

    const response = await fetch(`${await app.getUrl()}/metrics`);
    expect(response.status).toBe(200);
    const samples = parsePrometheusText(await response.text());
    const fg = { function: 'metrics.square', mode: 'foreground' };
    expect(sampleValue(samples, 'gearman_client_jobs_submitted_total', fg)).toBe(11);
    expect(sampleValue(samples, 'gearman_client_replies_total', fg)).toBe(10);
    expect(sampleValue(samples, 'gearman_client_failures_total', { ...fg, reason: 'exception' })).toBe(1);
    expect(sampleValue(samples, 'gearman_worker_jobs_total', { function: 'metrics.square' })).toBe(11);
    expect(sampleValue(samples, 'gearman_worker_failures_total', { function: 'metrics.square', reason: 'exception' })).toBe(1);
    const { port } = app.get<GearmanJobServer>(GEARMAN_JOB_SERVER).address();
    const server = `127.0.0.1:${port}`;
    expect(sampleValue(samples, 'gearman_server_up', { server })).toBe(1);
    expect(sampleValue(samples, 'gearman_server_workers', { server, function: 'metrics.square' })).toBe(1);

    // The default registry is what @willsoto/nestjs-prometheus serves: the same samples are there.
    const fromDefault = parsePrometheusText(await register.metrics());
    expect(sampleValue(fromDefault, 'gearman_client_replies_total', fg)).toBe(10);
  });

  it('works with @willsoto/nestjs-prometheus: its /metrics serves the Gearman metrics beside its own', async () => {
    const { replies, status, body } = await scrapeThroughPrometheusModule();
    expect(replies).toEqual([1, 4, 9]);
    expect(status).toBe(200);
    const samples = parsePrometheusText(body);
    expect(sampleValue(samples, 'gearman_client_replies_total', { function: 'metrics.square', mode: 'foreground' })).toBe(3);
    expect(sampleValue(samples, 'gearman_worker_jobs_total', { function: 'metrics.square' })).toBe(3);
    // prom-client's default metrics, which PrometheusModule collects, are served beside ours.
    expect(samples.some((sample) => sample.name === 'process_cpu_user_seconds_total')).toBe(true);
  });

  it('without the metrics option the module has none', async () => {
    @Module({ imports: [GearmanModule.forRoot({ servers: ['127.0.0.1:1'] })] })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    expect(app.get(GearmanMetrics, { strict: false })).toBeNull();
    expect(await register.metrics()).not.toContain('gearman_');
  });
});

/**
 * An app with PrometheusModule.register() and the module's metrics: three jobs, then a scrape of
 * the package's /metrics. In this process on Nest 11; on Nest 12 in a process of its own (see
 * support/prometheus-module-app.mjs for why).
 */
async function scrapeThroughPrometheusModule(): Promise<{ replies: number[]; status: number; body: string }> {
  if (process.env.EXPECTED_NEST_MAJOR !== '11') {
    requireBuild();
    const app = join(process.cwd(), 'test/nest/module/support/prometheus-module-app.mjs');
    const { stdout } = await promisify(execFile)(process.execPath, [app], { timeout: 30_000 });
    return JSON.parse(stdout) as { replies: number[]; status: number; body: string };
  }
  const { PrometheusModule } = await import('@willsoto/nestjs-prometheus');
  @Module({
    imports: [PrometheusModule.register(), GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, metrics: true })],
    controllers: [Handlers],
  })
  class AppModule {}
  const app = await NestFactory.create(AppModule, { logger: false });
  try {
    app.connectMicroservice(GearmanModule.microservice());
    await app.startAllMicroservices();
    await app.listen(0, '127.0.0.1');
    const client = app.get(ClientGearman);
    const replies: number[] = [];
    for (let n = 1; n <= 3; n++) replies.push(await lastValueFrom(client.send<number>('metrics.square', n)));
    const response = await fetch(`${await app.getUrl()}/metrics`);
    return { replies, status: response.status, body: await response.text() };
  } finally {
    await app.close();
  }
}
