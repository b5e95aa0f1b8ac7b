import 'reflect-metadata';
import { Controller, Module, type INestMicroservice } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { Ctx, MessagePattern, Payload, RpcException } from '@nestjs/microservices';
import { firstValueFrom, lastValueFrom, toArray } from 'rxjs';
import { GearmanResultsUnavailableError } from '../../lib/common/errors.js';
import { ClientGearman } from '../../lib/nest/client-gearman.js';
import { GearmanContext } from '../../lib/nest/gearman.context.js';
import { ServerGearman } from '../../lib/nest/server-gearman.js';
import { describeOnJobServers, eventually, startJobServer, type JobServerUnderTest } from './job-servers.js';

let started = 0;
let release: () => void = () => undefined;

@Controller()
class ReportController {
  @MessagePattern('follow.report')
  async report(@Payload() request: { sections: number; hold?: boolean }, @Ctx() ctx: GearmanContext) {
    started++;
    if (request.hold) await new Promise<void>((resolve) => (release = resolve));
    for (let section = 1; section <= request.sections; section++) {
      ctx.sendStatus(section, request.sections);
      ctx.sendData({ section });
    }
    ctx.sendWarning('disk almost full');
    return { sections: request.sections };
  }

  @MessagePattern('follow.refuse')
  refuse() {
    throw new RpcException({ code: 'NO' });
  }
}

@Module({ controllers: [ReportController] })
class ReportModule {}

describeOnJobServers('ClientGearman.follow()', (kind) => {
  let jobServer: JobServerUnderTest;
  let app: INestMicroservice;
  let client: ClientGearman;

  beforeAll(async () => {
    jobServer = await startJobServer(kind);
    app = await NestFactory.createMicroservice(ReportModule, {
      strategy: new ServerGearman({ servers: jobServer.servers, concurrency: 4 }),
      logger: false,
    });
    await app.listen();
    client = new ClientGearman({ servers: jobServer.servers });
  });
  afterAll(async () => {
    release();
    await client?.close();
    await app?.close();
    await jobServer?.stop();
  });

  test('emits the job as it happens: created, progress and decoded data, warnings, then the result', async () => {
    const events = await lastValueFrom(client.follow<{ sections: number }>('follow.report', { sections: 2 }).pipe(toArray()));
    expect(events[0]).toEqual({ type: 'created', handle: expect.stringMatching(/^H:/) });
    expect(events.slice(1)).toEqual([
      { type: 'progress', numerator: 1, denominator: 2 },
      { type: 'data', value: { section: 1 } },
      { type: 'progress', numerator: 2, denominator: 2 },
      { type: 'data', value: { section: 2 } },
      { type: 'warning', message: 'disk almost full' },
      { type: 'result', value: { sections: 2 } },
    ]);
  });

  test('errors exactly as send() does', async () => {
    const sent = await lastValueFrom(client.send('follow.refuse', {})).catch((error: unknown) => error);
    const followed = await lastValueFrom(client.follow('follow.refuse', {})).catch((error: unknown) => error);
    expect(followed).toEqual({ code: 'NO' });
    expect(followed).toEqual(sent);
  });

  test('unsubscribing releases the job: nothing more arrives', async () => {
    started = 0;
    const seen: string[] = [];
    const subscription = client.follow('follow.report', { sections: 3, hold: true }).subscribe((event) => seen.push(event.type));
    await eventually(() => started === 1, 'the job to start');
    subscription.unsubscribe();
    release();
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual(['created']);
  });

  if (kind === 'gearmand') {
    test('a background job cannot be followed on gearmand without a result store', async () => {
      const handle = await firstValueFrom(client.emit<string>('follow.report', { sections: 1 }));
      await expect(lastValueFrom(client.followResult(handle))).rejects.toBeInstanceOf(GearmanResultsUnavailableError);
      await expect(client.getResult(handle)).rejects.toMatchObject({ code: 'RESULTS_UNAVAILABLE' });
    });
  }
});
