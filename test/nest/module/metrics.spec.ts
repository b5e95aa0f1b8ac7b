import 'reflect-metadata';
import { Controller, Get, Header, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { register } from 'prom-client';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GEARMAN_JOB_SERVER, GearmanJobServer, GearmanMetrics, GearmanModule } from '../../../lib/index.js';
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

  it('without the metrics option the module has none', async () => {
    @Module({ imports: [GearmanModule.forRoot({ servers: ['127.0.0.1:1'] })] })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    expect(app.get(GearmanMetrics, { strict: false })).toBeNull();
    expect(await register.metrics()).not.toContain('gearman_');
  });
});
