import 'reflect-metadata';
import { Controller, Module, type INestApplication } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { MessagePattern } from '@nestjs/microservices';
import { lastValueFrom } from 'rxjs';
import { ClientGearman, GEARMAN_DASHBOARD, GearmanDashboard, GearmanModule } from '../../../lib/index.js';
import type { DashboardState } from '../../../lib/dashboard/dashboard-state.js';
import { eventually } from '../job-servers.js';

@Controller()
class Handlers {
  @MessagePattern('dashboard.double')
  double(n: number): number {
    return n * 2;
  }
}

describe("GearmanModule's dashboard option", () => {
  let app: INestApplication | undefined;
  afterEach(async () => {
    await app?.close();
    app = undefined;
  });

  it("serves the dashboard for the module's job servers, with this app's workers and their throughput", async () => {
    @Module({
      imports: [GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, dashboard: { intervalMs: 100 } })],
      controllers: [Handlers],
    })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    app.connectMicroservice(GearmanModule.microservice());
    await app.startAllMicroservices();
    await app.init();

    const dashboard = app.get<GearmanDashboard>(GEARMAN_DASHBOARD);
    expect(dashboard).toBeInstanceOf(GearmanDashboard);
    const client = app.get(ClientGearman);
    for (let n = 0; n < 5; n++) expect(await lastValueFrom(client.send<number>('dashboard.double', n))).toBe(n * 2);

    const base = `http://127.0.0.1:${dashboard.address().port}/`;
    let state: DashboardState | undefined;
    await eventually(async () => {
      state = (await (await fetch(`${base}api/state`)).json()) as DashboardState;
      return (state.throughput?.points ?? []).reduce((sum, point) => sum + point[1], 0) === 5;
    }, 'the five jobs in the chart');
    expect(state!.throughput!.source).toBe("this app's workers");
    expect(state!.appWorkers).toEqual([expect.objectContaining({ listening: true, functions: ['dashboard.double'], jobsInFlight: 0 })]);
    expect(state!.servers[0]).toMatchObject({ reachable: true });
    expect(state!.servers[0].functions).toEqual([expect.objectContaining({ name: 'dashboard.double', workers: 1 })]);
    // No metrics option: no /metrics.
    expect((await fetch(`${base}metrics`)).status).toBe(404);

    await app.close();
    app = undefined;
    await expect(fetch(`${base}api/state`)).rejects.toThrow();
  });

  it('is off unless asked for', async () => {
    @Module({ imports: [GearmanModule.forRoot({ servers: ['127.0.0.1:1'] })] })
    class AppModule {}
    app = await NestFactory.create(AppModule, { logger: false });
    expect(app.get(GEARMAN_DASHBOARD)).toBeNull();
  });
});
