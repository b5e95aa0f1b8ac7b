import 'reflect-metadata';
import { Controller, Injectable, type INestApplication } from '@nestjs/common';
import { MessagePattern, Payload } from '@nestjs/microservices';
import { firstValueFrom, timeout } from 'rxjs';
import { ClientGearman, GEARMAN_JOB_SERVER, GearmanJobServer, GearmanModule } from '../../../lib/index.js';
import { adminCommand } from '../../client/support/admin.js';
import { appModule, startHybridApp } from './apps.js';

/** Calls this same app's patterns through Gearman, as a service of the app would. */
@Injectable()
class Pricing {
  constructor(private readonly gearman: ClientGearman) {}

  priceWithTax(net: number): Promise<number> {
    return firstValueFrom(this.gearman.send<number>('quick.tax', net)).then((tax) => net + tax);
  }
}

@Controller()
class QuickHandlers {
  constructor(private readonly pricing: Pricing) {}

  @MessagePattern('quick.price')
  price(@Payload() net: number) {
    return this.pricing.priceWithTax(net);
  }

  @MessagePattern('quick.tax')
  tax(@Payload() net: number) {
    return net / 5;
  }

  @MessagePattern('quick.never')
  never() {
    return new Promise(() => undefined);
  }

  @MessagePattern('quick.echo')
  echo(@Payload() value: unknown) {
    return value;
  }
}

describe("The quick start's layout with its defaults: embedded job server, handlers and client in one app", () => {
  let app: INestApplication;
  let client: ClientGearman;

  beforeAll(async () => {
    const module = appModule(GearmanModule.forRoot({ embeddedServer: { port: 0, logger: false }, worker: { stopTimeoutMs: 1000 } }), {
      controllers: [QuickHandlers],
      providers: [Pricing],
    });
    app = await startHybridApp(module);
    client = app.get(ClientGearman);
  });

  afterAll(async () => {
    await app?.close();
  });

  it('serves a handler that calls, through Gearman, a pattern of its own app, while handlers that never answer hold slots', async () => {
    for (let i = 0; i < 3; i++) await expect(firstValueFrom(client.send('quick.never', i).pipe(timeout(50)))).rejects.toThrow(/Timeout/);
    await expect(firstValueFrom(client.send('quick.price', 100))).resolves.toBe(120);
  });

  it('answers 2,000 requests made 64 at a time', async () => {
    let next = 0;
    let correct = 0;
    const caller = async () => {
      while (next < 2000) {
        const value = next++;
        if ((await firstValueFrom(client.send<number>('quick.price', value * 5))) === value * 6) correct++;
      }
    };
    await Promise.all(Array.from({ length: 64 }, caller));
    expect(correct).toBe(2000);
  });

  it('its client and worker reach the job server in memory: the workers admin command lists them as in-process', async () => {
    const jobServer = app.get<GearmanJobServer>(GEARMAN_JOB_SERVER);
    const rows = await adminCommand(jobServer.address().port, 'workers');
    const inProcess = rows.filter((row) => row.split(' ')[1] === 'in-process');
    expect(inProcess.length).toBe(2); // the client's connection and the worker's
    expect(inProcess.some((row) => row.split(' : ')[1]?.split(' ').includes('quick.price'))).toBe(true);
  });
});
